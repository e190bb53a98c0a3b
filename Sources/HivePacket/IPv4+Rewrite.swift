// In-place rewrites of IPv4 packets that keep every checksum right without
// recomputing it: the actions of routing (TTL), NAT (addresses) and port
// translation. Each adjusts the checksums by RFC 1624 from the old and new
// field values, so the cost does not depend on the packet's length.
//
// Each function validates the packet as the parsers do and throws on a
// malformed one, so it is safe on any bytes. The transport checksum is only
// touched where the transport header is present: a later fragment carries
// none (its first fragment's checksum covers the pseudo-header), and an ICMP
// checksum does not cover the addresses.

extension IPv4 {
    /// Decrements the TTL of the packet whose IPv4 header starts at `offset`
    /// and updates the header checksum. Returns the new TTL; a TTL already
    /// 0 is left alone and 0 returned (the router sends time exceeded).
    /// - Complexity: O(1)
    @discardableResult
    public static func decrementTimeToLive(in buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(PacketError) -> UInt8 {
        let packet = UnsafeRawBufferPointer(buffer).dropping(offset)
        let header = try IPv4.Header(parsing: packet)
        guard header.timeToLive > 0 else { return 0 }
        let ttl = header.timeToLive - 1
        let old = UInt16(header.timeToLive) << 8 | UInt16(header.protocol.rawValue)
        let new = UInt16(ttl) << 8 | UInt16(header.protocol.rawValue)
        buffer.store(ttl, at: offset + 8)
        buffer.storeBigEndian(InternetChecksum.updated(header.checksum, replacing: old, with: new), at: offset + 10)
        return ttl
    }

    /// Replaces the source address (`source: true`) or the destination of
    /// the packet at `offset`, updating the header checksum and the TCP or
    /// UDP checksum over the pseudo-header.
    /// - Complexity: O(1)
    public static func rewriteAddress(
        source: Bool, to address: Address, in buffer: UnsafeMutableRawBufferPointer, at offset: Int
    ) throws(PacketError) {
        let packet = UnsafeRawBufferPointer(buffer).dropping(offset)
        let header = try IPv4.Header(parsing: packet)
        let old = source ? header.source : header.destination
        buffer.store(address, at: offset + (source ? 12 : 16))
        buffer.storeBigEndian(InternetChecksum.updated(header.checksum, replacing: old.value, with: address.value), at: offset + 10)
        guard let checksumOffset = try transportChecksumOffset(header, packet) else { return }
        let at = offset + header.headerLength + checksumOffset
        let current = packet.bigEndianUInt16(at: header.headerLength + checksumOffset)
        let updated = header.protocol == .udp
            ? UDP.updatedChecksum(current, replacing: old.value, with: address.value)
            : InternetChecksum.updated(current, replacing: old.value, with: address.value)
        buffer.storeBigEndian(updated, at: at)
    }

    /// Replaces the TCP or UDP source port (`source: true`) or destination
    /// port of the packet at `offset`, updating the transport checksum.
    /// Packets that are not TCP or UDP, and later fragments, are left alone.
    /// - Throws: the parse errors of the IPv4 or transport header.
    /// - Complexity: O(1)
    public static func rewritePort(
        source: Bool, to port: UInt16, in buffer: UnsafeMutableRawBufferPointer, at offset: Int
    ) throws(PacketError) {
        let packet = UnsafeRawBufferPointer(buffer).dropping(offset)
        let header = try IPv4.Header(parsing: packet)
        guard let checksumOffset = try transportChecksumOffset(header, packet) else { return }
        let transport = offset + header.headerLength
        let portOffset = transport + (source ? 0 : 2)
        let old = packet.bigEndianUInt16(at: portOffset - offset)
        let current = packet.bigEndianUInt16(at: header.headerLength + checksumOffset)
        buffer.storeBigEndian(port, at: portOffset)
        let updated = header.protocol == .udp
            ? UDP.updatedChecksum(current, replacing: old, with: port)
            : InternetChecksum.updated(current, replacing: old, with: port)
        buffer.storeBigEndian(updated, at: transport + checksumOffset)
    }

    /// Replaces the identifier of an ICMP echo request or reply (NAT's
    /// "port" for ICMP), updating the ICMP checksum. Other packets, and
    /// fragments, are left alone.
    /// - Complexity: O(1)
    public static func rewriteICMPIdentifier(to identifier: UInt16, in buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(PacketError) {
        let packet = UnsafeRawBufferPointer(buffer).dropping(offset)
        let header = try IPv4.Header(parsing: packet)
        guard header.protocol == .icmp, header.fragmentKind == .none else { return }
        let icmp = offset + header.headerLength
        guard buffer.count >= icmp + 8 else { throw .truncated(layer: .icmpv4, needed: 8, available: buffer.count - icmp) }
        let type = buffer[icmp]
        guard type == ICMPv4.MessageType.echoRequest.rawValue || type == ICMPv4.MessageType.echoReply.rawValue else { return }
        let old = UnsafeRawBufferPointer(buffer).bigEndianUInt16(at: icmp + 4)
        let checksum = UnsafeRawBufferPointer(buffer).bigEndianUInt16(at: icmp + 2)
        buffer.storeBigEndian(identifier, at: icmp + 4)
        buffer.storeBigEndian(InternetChecksum.updated(checksum, replacing: old, with: identifier), at: icmp + 2)
    }

    /// Replaces an address of the datagram an ICMP error quotes (the
    /// packet at `offset` is the error: IPv4, then ICMP, then the quoted
    /// IPv4 header), updating the quoted header's checksum and the ICMP
    /// checksum, which covers both: what NAT does to an error about a
    /// translated connection.
    /// - Complexity: O(1)
    public static func rewriteQuotedAddress(
        source: Bool, to address: Address, in buffer: UnsafeMutableRawBufferPointer, at offset: Int
    ) throws(PacketError) {
        let (icmp, inner, _) = try quotedOffsets(buffer, at: offset)
        let view = UnsafeRawBufferPointer(buffer)
        let field = inner + (source ? 12 : 16)
        let old = UInt32(view.bigEndianUInt16(at: field)) << 16 | UInt32(view.bigEndianUInt16(at: field + 2))
        let oldInnerChecksum = view.bigEndianUInt16(at: inner + 10)
        let newInnerChecksum = InternetChecksum.updated(oldInnerChecksum, replacing: old, with: address.value)
        buffer.store(address, at: field)
        buffer.storeBigEndian(newInnerChecksum, at: inner + 10)
        var icmpChecksum = view.bigEndianUInt16(at: icmp + 2)
        icmpChecksum = InternetChecksum.updated(icmpChecksum, replacing: old, with: address.value)
        icmpChecksum = InternetChecksum.updated(icmpChecksum, replacing: oldInnerChecksum, with: newInnerChecksum)
        buffer.storeBigEndian(icmpChecksum, at: icmp + 2)
    }

    /// Replaces a port of the quoted datagram (TCP or UDP source or
    /// destination port; the identifier of a quoted ICMP echo), updating the
    /// ICMP checksum. Other quoted protocols are left alone.
    /// - Complexity: O(1)
    public static func rewriteQuotedPort(
        source: Bool, to port: UInt16, in buffer: UnsafeMutableRawBufferPointer, at offset: Int
    ) throws(PacketError) {
        let (icmp, inner, transport) = try quotedOffsets(buffer, at: offset)
        let view = UnsafeRawBufferPointer(buffer)
        let field: Int
        switch view[inner + 9] {
        case IPProtocol.tcp.rawValue, IPProtocol.udp.rawValue: field = transport + (source ? 0 : 2)
        case IPProtocol.icmp.rawValue where view[transport] == ICMPv4.MessageType.echoRequest.rawValue || view[transport] == ICMPv4.MessageType.echoReply.rawValue:
            field = transport + 4
        default: return
        }
        let old = view.bigEndianUInt16(at: field)
        buffer.storeBigEndian(port, at: field)
        buffer.storeBigEndian(InternetChecksum.updated(view.bigEndianUInt16(at: icmp + 2), replacing: old, with: port), at: icmp + 2)
    }

    /// Where the ICMP header, the quoted IPv4 header and the quoted
    /// transport header (its first 8 bytes present) start.
    private static func quotedOffsets(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(PacketError) -> (Int, Int, Int) {
        let packet = UnsafeRawBufferPointer(buffer).dropping(offset)
        let header = try IPv4.Header(parsing: packet)
        guard header.protocol == .icmp, header.fragmentKind == .none else {
            throw .unsupported(layer: .icmpv4, value: UInt32(header.protocol.rawValue))
        }
        let icmp = offset + header.headerLength
        let inner = icmp + 8
        guard buffer.count >= inner + 20 else { throw .truncated(layer: .icmpv4, needed: 28, available: buffer.count - icmp) }
        let innerLength = Int(buffer[inner] & 0x0F) * 4
        guard buffer[inner] >> 4 == 4, innerLength >= 20 else { throw .badHeaderLength(layer: .ipv4, length: innerLength) }
        let transport = inner + innerLength
        guard buffer.count >= transport + 8 else { throw .truncated(layer: .icmpv4, needed: transport + 8 - icmp, available: buffer.count - icmp) }
        return (icmp, inner, transport)
    }

    /// Offset of the TCP or UDP checksum field within the transport header,
    /// after checking the header is there; nil for other protocols and later
    /// fragments.
    private static func transportChecksumOffset(_ header: IPv4.Header, _ packet: UnsafeRawBufferPointer) throws(PacketError) -> Int? {
        guard header.fragmentKind != .later else { return nil }
        switch header.protocol {
        case .tcp:
            _ = try TCP.Header(parsing: header.payload(in: packet))
            return 16
        case .udp:
            _ = try UDP.Header(parsing: header.payload(in: packet), wholeDatagram: header.fragmentKind == .none)
            return 6
        default:
            return nil
        }
    }
}

extension IPv4 {
    /// One NAT rewrite of a frame's IPv4 packet, checksums kept right: what
    /// the simulation's actions say and the datapath does, in one place.
    public enum Translation: Hashable, Sendable {
        case source(Address)
        case destination(Address)
        /// TCP or UDP ports.
        case sourcePort(UInt16)
        case destinationPort(UInt16)
        /// An ICMP echo's identifier.
        case icmpIdentifier(UInt16)
        /// The datagram an ICMP error quotes.
        case quotedAddress(source: Bool, Address)
        case quotedPort(source: Bool, UInt16)

        /// Applies the rewrite to the Ethernet frame in place; a frame it
        /// does not fit (not IPv4, malformed, no such header) is left alone.
        /// - Complexity: O(1), no allocation.
        @inlinable
        public func apply(toFrame frame: UnsafeMutableRawBufferPointer) {
            guard let ethernet = try? Ethernet.Header(parsing: UnsafeRawBufferPointer(frame)), ethernet.etherType == .ipv4 else { return }
            let offset = ethernet.length
            switch self {
            case .source(let address): try? IPv4.rewriteAddress(source: true, to: address, in: frame, at: offset)
            case .destination(let address): try? IPv4.rewriteAddress(source: false, to: address, in: frame, at: offset)
            case .sourcePort(let port): try? IPv4.rewritePort(source: true, to: port, in: frame, at: offset)
            case .destinationPort(let port): try? IPv4.rewritePort(source: false, to: port, in: frame, at: offset)
            case .icmpIdentifier(let identifier): try? IPv4.rewriteICMPIdentifier(to: identifier, in: frame, at: offset)
            case .quotedAddress(let source, let address): try? IPv4.rewriteQuotedAddress(source: source, to: address, in: frame, at: offset)
            case .quotedPort(let source, let port): try? IPv4.rewriteQuotedPort(source: source, to: port, in: frame, at: offset)
            }
        }
    }
}
