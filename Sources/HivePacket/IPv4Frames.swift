// Whole IPv4 frames the simulation generates: ICMP echo replies and errors,
// TCP resets. These allocate the frame they return; they run for packets
// the agent answers itself, not on the forwarding fast path.

/// Which checksum the transport bytes of an assembled frame carry.
enum TransportChecksum {
    case none, icmp, tcp, udp
}

extension IPv4 {
    /// An Ethernet + IPv4 frame around `transport`, with the IPv4 total
    /// length, the header checksum and the transport checksum filled in
    /// (over the transport bytes as given, checksum field zero).
    static func assembleFrame(
        ethernet: Ethernet.Header, ip: IPv4.Header, transport: [UInt8], checksum: TransportChecksum
    ) -> [UInt8] {
        var ip = ip
        ip.totalLength = UInt16(ip.headerLength + transport.count)
        ip.checksum = 0
        ip.updateChecksum()
        var transport = transport
        transport.withUnsafeMutableBytes { bytes in
            switch checksum {
            case .none:
                break
            case .icmp:
                bytes.storeBigEndian(UInt16(0), at: 2)
                bytes.storeBigEndian(InternetChecksum.checksum(UnsafeRawBufferPointer(bytes)), at: 2)
            case .tcp:
                bytes.storeBigEndian(UInt16(0), at: 16)
                bytes.storeBigEndian(TCP.checksum(segment: UnsafeRawBufferPointer(bytes), source: ip.source, destination: ip.destination), at: 16)
            case .udp:
                bytes.storeBigEndian(UInt16(0), at: 6)
                bytes.storeBigEndian(UDP.checksum(datagram: UnsafeRawBufferPointer(bytes), source: ip.source, destination: ip.destination), at: 6)
            }
        }
        var frame: [UInt8] = []
        frame.reserveCapacity(ethernet.length + ip.headerLength + transport.count)
        ethernet.write(to: &frame)
        ip.write(to: &frame)
        frame.append(contentsOf: transport)
        return frame
    }

    /// The layers of a frame carrying IPv4, parsed for a reply.
    struct ParsedFrame {
        var ethernet: Ethernet.Header
        var ip: IPv4.Header
        /// Offset of the IPv4 header in the frame.
        var ipOffset: Int
        /// The IPv4 payload, bounded by the total length.
        var payload: UnsafeRawBufferPointer

        init(parsing frame: UnsafeRawBufferPointer) throws(PacketError) {
            ethernet = try Ethernet.Header(parsing: frame)
            guard ethernet.etherType == .ipv4 else {
                throw .unsupported(layer: .ethernet, value: UInt32(ethernet.etherType.rawValue))
            }
            ipOffset = ethernet.length
            let packet = frame.dropping(ipOffset)
            ip = try IPv4.Header(parsing: packet)
            payload = ip.payload(in: packet)
        }

        /// Ethernet header of a reply: addresses swapped, tags kept.
        var replyEthernet: Ethernet.Header {
            var reply = ethernet
            reply.source = ethernet.destination
            reply.destination = ethernet.source
            return reply
        }
    }
}

extension ICMPv4 {
    /// The echo reply to the echo request in `frame`: addresses swapped at
    /// both layers, identifier, sequence and data kept, TTL 64.
    /// - Throws: the frame's parse errors; `.unsupported(layer: .icmpv4,
    ///   value: type)` when it is not an echo request.
    public static func echoReplyFrame(to frame: UnsafeRawBufferPointer) throws(PacketError) -> [UInt8] {
        let request = try IPv4.ParsedFrame(parsing: frame)
        guard request.ip.protocol == .icmp else { throw .unsupported(layer: .ipv4, value: UInt32(request.ip.protocol.rawValue)) }
        let icmp = try ICMPv4.Header(parsing: request.payload)
        guard icmp.type == .echoRequest else { throw .unsupported(layer: .icmpv4, value: UInt32(icmp.type.rawValue)) }

        var message: [UInt8] = []
        ICMPv4.Header(type: .echoReply, code: 0, restOfHeader: icmp.restOfHeader).write(to: &message)
        message.append(contentsOf: request.payload.dropping(8))
        let ip = IPv4.Header(
            typeOfService: request.ip.typeOfService, payloadLength: message.count, protocol: .icmp,
            source: request.ip.destination, destination: request.ip.source)
        return IPv4.assembleFrame(ethernet: request.replyEthernet, ip: ip, transport: message, checksum: .icmp)
    }

    public static func echoReplyFrame(to frame: [UInt8]) throws(PacketError) -> [UInt8] {
        try withBytes(of: frame) { (bytes) throws(PacketError) in try echoReplyFrame(to: bytes) }
    }

    /// An ICMP error about the packet in `frame`, sent back to its source from
    /// `source` (the router port's addresses). It quotes the original IP
    /// header and the first 8 bytes of its payload (RFC 792).
    ///
    /// The caller decides whether an error may be sent at all
    /// (`mayReportError(about:)`).
    /// - Throws: the frame's parse errors.
    public static func errorFrame(
        type: MessageType, code: UInt8, restOfHeader: UInt32 = 0, about frame: UnsafeRawBufferPointer,
        sourceMAC: EthernetAddress, sourceIP: IPv4.Address, timeToLive: UInt8 = 64
    ) throws(PacketError) -> [UInt8] {
        let original = try IPv4.ParsedFrame(parsing: frame)
        let quoteLength = original.ip.headerLength + min(8, original.payload.count)
        var message: [UInt8] = []
        message.reserveCapacity(8 + quoteLength)
        ICMPv4.Header(type: type, code: code, restOfHeader: restOfHeader).write(to: &message)
        message.append(contentsOf: frame.slice(original.ipOffset..<(original.ipOffset + quoteLength)))
        var ethernet = original.replyEthernet
        ethernet.source = sourceMAC
        let ip = IPv4.Header(
            typeOfService: 0, payloadLength: message.count, timeToLive: timeToLive, protocol: .icmp,
            source: sourceIP, destination: original.ip.source)
        return IPv4.assembleFrame(ethernet: ethernet, ip: ip, transport: message, checksum: .icmp)
    }

    /// Destination unreachable about `frame`; `nextHopMTU` only for
    /// `.fragmentationNeeded`.
    public static func unreachableFrame(
        code: UnreachableCode, nextHopMTU: UInt16 = 0, about frame: [UInt8], sourceMAC: EthernetAddress, sourceIP: IPv4.Address
    ) throws(PacketError) -> [UInt8] {
        try withBytes(of: frame) { (bytes) throws(PacketError) in
            try errorFrame(
                type: .destinationUnreachable, code: code.rawValue, restOfHeader: UInt32(nextHopMTU), about: bytes,
                sourceMAC: sourceMAC, sourceIP: sourceIP)
        }
    }

    /// Time exceeded about `frame` (TTL expired in transit, by default).
    public static func timeExceededFrame(
        code: TimeExceededCode = .timeToLive, about frame: [UInt8], sourceMAC: EthernetAddress, sourceIP: IPv4.Address
    ) throws(PacketError) -> [UInt8] {
        try withBytes(of: frame) { (bytes) throws(PacketError) in
            try errorFrame(type: .timeExceeded, code: code.rawValue, about: bytes, sourceMAC: sourceMAC, sourceIP: sourceIP)
        }
    }

    /// RFC 1812 §4.3.2.7: no ICMP error about an ICMP error, a non-first
    /// fragment, or a packet to or from a broadcast or multicast address.
    /// - Parameter payload: the packet's IPv4 payload (for the ICMP type).
    public static func mayReportError(about header: IPv4.Header, payload: UnsafeRawBufferPointer) -> Bool {
        if header.fragmentOffset != 0 { return false }
        if header.destination.isMulticast || header.destination == .broadcast { return false }
        if header.source.isMulticast || header.source == .broadcast || header.source.isUnspecified { return false }
        if header.protocol == .icmp {
            guard let icmp = try? ICMPv4.Header(parsing: payload) else { return false }
            return !icmp.type.isError
        }
        return true
    }
}

extension TCP {
    /// The reset answering the segment in `frame` (RFC 9293 §3.10.7.1, as a
    /// closed port would): with ACK set, `<SEQ=SEG.ACK><CTL=RST>`; without,
    /// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`, where SYN and FIN count
    /// in SEG.LEN. Nil when the segment is itself a reset, which is never
    /// answered.
    /// - Throws: the frame's parse errors; `.unsupported(layer: .ipv4, ...)`
    ///   when it is not TCP.
    public static func resetFrame(for frame: UnsafeRawBufferPointer) throws(PacketError) -> [UInt8]? {
        let segment = try IPv4.ParsedFrame(parsing: frame)
        guard segment.ip.protocol == .tcp else { throw .unsupported(layer: .ipv4, value: UInt32(segment.ip.protocol.rawValue)) }
        let tcp = try TCP.Header(parsing: segment.payload)
        if tcp.flags.contains(.rst) { return nil }

        var reset = TCP.Header(sourcePort: tcp.destinationPort, destinationPort: tcp.sourcePort, sequenceNumber: 0, flags: .rst)
        if tcp.flags.contains(.ack) {
            reset.sequenceNumber = tcp.acknowledgmentNumber
        } else {
            var length = UInt32(segment.payload.count - tcp.headerLength)
            if tcp.flags.contains(.syn) { length &+= 1 }  // length < 65536: no overflow
            if tcp.flags.contains(.fin) { length &+= 1 }  // length < 65537: no overflow
            reset.acknowledgmentNumber = tcp.sequenceNumber &+ length  // sequence space wraps modulo 2³²
            reset.flags = [.rst, .ack]
        }
        var bytes: [UInt8] = []
        reset.write(to: &bytes)
        let ip = IPv4.Header(
            typeOfService: segment.ip.typeOfService, payloadLength: bytes.count, protocol: .tcp,
            source: segment.ip.destination, destination: segment.ip.source)
        return IPv4.assembleFrame(ethernet: segment.replyEthernet, ip: ip, transport: bytes, checksum: .tcp)
    }

    public static func resetFrame(for frame: [UInt8]) throws(PacketError) -> [UInt8]? {
        try withBytes(of: frame) { (bytes) throws(PacketError) in try resetFrame(for: bytes) }
    }
}
