extension IPv4 {
    /// An IPv4 header (RFC 791), options kept inline.
    ///
    /// Parsing checks what forwarding relies on (version, header length,
    /// total length against the bytes present) but not the checksum: the
    /// datapath decides whether to verify (`checksumVerifies(in:)`), and a
    /// router simulation must see bad packets to drop them with a reason.
    public struct Header: Hashable, Sendable {
        /// DSCP (high six bits) and ECN (low two).
        public var typeOfService: UInt8
        /// Header plus payload, in bytes.
        public var totalLength: UInt16
        public var identification: UInt16
        /// The reserved flag bit; must be zero, kept so headers round-trip.
        public var reservedFlag: Bool
        public var dontFragment: Bool
        public var moreFragments: Bool
        /// Offset of this fragment's data in 8-byte units (13 bits).
        public var fragmentOffset: UInt16
        public var timeToLive: UInt8
        public var `protocol`: IPProtocol
        public var checksum: UInt16
        public var source: Address
        public var destination: Address
        /// Options, a multiple of four bytes (padding included).
        public var options: OptionBytes

        public static let minimumLength = 20

        /// A header with no options and a zero checksum; `totalLength`
        /// covers `payloadLength` more bytes.
        /// - Precondition: `20 + options.count + payloadLength <= 65535` and
        ///   `options.count` is a multiple of 4.
        @inlinable
        public init(
            typeOfService: UInt8 = 0, payloadLength: Int, identification: UInt16 = 0, dontFragment: Bool = false,
            moreFragments: Bool = false, fragmentOffset: UInt16 = 0, timeToLive: UInt8 = 64, protocol number: IPProtocol,
            source: Address, destination: Address, options: OptionBytes = OptionBytes()
        ) {
            precondition(options.count % 4 == 0, "IPv4 options of \(options.count) bytes are not padded to a multiple of 4")
            let total = 20 + options.count + payloadLength
            precondition(payloadLength >= 0 && total <= 0xFFFF, "IPv4 total length \(total) exceeds 65535")
            precondition(fragmentOffset <= 0x1FFF, "IPv4 fragment offset \(fragmentOffset) exceeds 13 bits")
            self.typeOfService = typeOfService
            self.totalLength = UInt16(total)
            self.identification = identification
            self.reservedFlag = false
            self.dontFragment = dontFragment
            self.moreFragments = moreFragments
            self.fragmentOffset = fragmentOffset
            self.timeToLive = timeToLive
            self.protocol = number
            self.checksum = 0
            self.source = source
            self.destination = destination
            self.options = options
        }

        /// Header bytes including options: 20...60.
        @inlinable public var headerLength: Int { 20 + options.count }
        /// Bytes after the header, by the total length field.
        @inlinable public var payloadLength: Int { Int(totalLength) - headerLength }
        /// Differentiated services code point.
        @inlinable public var dscp: UInt8 { typeOfService >> 2 }
        /// Explicit congestion notification bits.
        @inlinable public var ecn: UInt8 { typeOfService & 3 }

        @inlinable
        public var fragmentKind: FragmentKind {
            if fragmentOffset != 0 { return .later }
            return moreFragments ? .first : .none
        }

        /// The flags and fragment offset word as on the wire.
        @inlinable
        public var flagsAndFragmentOffset: UInt16 {
            (reservedFlag ? 0x8000 : 0) | (dontFragment ? 0x4000 : 0) | (moreFragments ? 0x2000 : 0) | fragmentOffset & 0x1FFF
        }
    }
}

extension IPv4.Header {
    /// Parses the header at the start of `packet` and checks the total
    /// length against it. Bytes after `totalLength` (Ethernet padding) are
    /// ignored; the payload is `packet[headerLength..<totalLength]`.
    /// - Throws: `.truncated`, `.badVersion`, `.badHeaderLength` (IHL < 5),
    ///   `.badLength` (total length shorter than the header).
    /// - Complexity: O(1)
    public init(parsing packet: UnsafeRawBufferPointer) throws(PacketError) {
        try self.init(parsing: packet, wholePacket: true)
    }

    public init(parsing packet: [UInt8]) throws(PacketError) {
        self = try withBytes(of: packet) { (bytes) throws(PacketError) in try IPv4.Header(parsing: bytes) }
    }

    /// `wholePacket: false` parses a header quoted in an ICMP error, whose
    /// total length describes a packet mostly not present.
    init(parsing packet: UnsafeRawBufferPointer, wholePacket: Bool) throws(PacketError) {
        try PacketError.require(20, in: packet, layer: .ipv4)
        let versionAndLength = packet[0]
        guard versionAndLength >> 4 == 4 else { throw .badVersion(layer: .ipv4, version: versionAndLength >> 4) }
        let headerLength = Int(versionAndLength & 0xF) * 4
        guard headerLength >= 20 else { throw .badHeaderLength(layer: .ipv4, length: headerLength) }
        try PacketError.require(headerLength, in: packet, layer: .ipv4)
        let total = packet.bigEndianUInt16(at: 2)
        guard Int(total) >= headerLength else { throw .badLength(layer: .ipv4, length: Int(total), available: packet.count) }
        if wholePacket { try PacketError.require(Int(total), in: packet, layer: .ipv4) }

        typeOfService = packet[1]
        totalLength = total
        identification = packet.bigEndianUInt16(at: 4)
        let flagsAndOffset = packet.bigEndianUInt16(at: 6)
        reservedFlag = flagsAndOffset & 0x8000 != 0
        dontFragment = flagsAndOffset & 0x4000 != 0
        moreFragments = flagsAndOffset & 0x2000 != 0
        fragmentOffset = flagsAndOffset & 0x1FFF
        timeToLive = packet[8]
        self.protocol = IPProtocol(packet[9])
        checksum = packet.bigEndianUInt16(at: 10)
        source = packet.ipv4Address(at: 12)
        destination = packet.ipv4Address(at: 16)
        options = headerLength == 20 ? OptionBytes() : OptionBytes(packet.slice(20..<headerLength))
    }

    /// The payload of the packet this header was parsed from.
    /// - Precondition: `packet` starts with this header.
    @inlinable
    public func payload(in packet: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        packet.slice(min(headerLength, packet.count)..<min(Int(totalLength), packet.count))
    }

    /// The header checksum computed from the fields (the `checksum` field
    /// itself counts as zero).
    /// - Complexity: O(header length)
    public var computedChecksum: UInt16 {
        var sum = InternetChecksum()
        sum.add(UInt16(0x40 | UInt8(headerLength / 4)) << 8 | UInt16(typeOfService))
        sum.add(totalLength)
        sum.add(identification)
        sum.add(flagsAndFragmentOffset)
        sum.add(UInt16(timeToLive) << 8 | UInt16(self.protocol.rawValue))
        sum.add(source.value)
        sum.add(destination.value)
        options.withUnsafeBytes { sum.add($0) }
        return sum.checksum
    }

    /// Sets `checksum` to the value computed from the other fields.
    @inlinable
    public mutating func updateChecksum() { checksum = computedChecksum }

    /// True when the header at the start of `packet` verifies.
    /// - Precondition: `packet` holds at least `headerLength` bytes, as it
    ///   does after a successful parse.
    public func checksumVerifies(in packet: UnsafeRawBufferPointer) -> Bool {
        InternetChecksum.verifies(packet.slice(0..<headerLength))
    }

    /// Writes the header at `offset` (checksum as stored); returns
    /// `headerLength`.
    /// - Precondition: `headerLength` bytes fit; `options.count` is a
    ///   multiple of 4.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) -> Int {
        precondition(options.count % 4 == 0, "IPv4 options of \(options.count) bytes are not padded to a multiple of 4")
        let length = headerLength
        buffer.requireRoom(length, at: offset, for: "IPv4 header")
        buffer.store(0x40 | UInt8(length / 4), at: offset)
        buffer.store(typeOfService, at: offset + 1)
        buffer.storeBigEndian(totalLength, at: offset + 2)
        buffer.storeBigEndian(identification, at: offset + 4)
        buffer.storeBigEndian(flagsAndFragmentOffset, at: offset + 6)
        buffer.store(timeToLive, at: offset + 8)
        buffer.store(self.protocol.rawValue, at: offset + 9)
        buffer.storeBigEndian(checksum, at: offset + 10)
        buffer.store(source, at: offset + 12)
        buffer.store(destination, at: offset + 16)
        options.withUnsafeBytes { buffer.copy($0, to: offset + 20) }
        return length
    }

    public func write(to bytes: inout [UInt8]) {
        bytes.appendZeros(headerLength) { write(to: $0) }
    }
}
