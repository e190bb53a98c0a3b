/// Namespace for the User Datagram Protocol (RFC 768).
public enum UDP {}

extension UDP {
    /// The 8-byte UDP header.
    public struct Header: Hashable, Sendable {
        public var sourcePort: UInt16
        public var destinationPort: UInt16
        /// Header plus payload, in bytes.
        public var length: UInt16
        /// 0 over IPv4 means the sender computed none.
        public var checksum: UInt16

        public static let headerLength = 8

        /// A header for `payloadLength` bytes of payload, checksum 0.
        /// - Precondition: `payloadLength <= 65527`.
        @inlinable
        public init(sourcePort: UInt16, destinationPort: UInt16, payloadLength: Int, checksum: UInt16 = 0) {
            precondition(payloadLength >= 0 && payloadLength <= 0xFFFF - 8, "UDP payload of \(payloadLength) bytes does not fit")
            self.sourcePort = sourcePort
            self.destinationPort = destinationPort
            self.length = UInt16(8 + payloadLength)
            self.checksum = checksum
        }

        @inlinable public var payloadLength: Int { Int(length) - 8 }
    }

    public static let dhcpServerPort: UInt16 = 67
    public static let dhcpClientPort: UInt16 = 68
    public static let vxlanPort: UInt16 = 4789
    public static let genevePort: UInt16 = 6081
}

extension UDP.Header {
    /// Parses the header at the start of `segment` (an IP payload) and checks
    /// the length field against it. The payload is `segment[8..<length]`.
    /// - Throws: `.truncated`; `.badLength` when the length is below 8.
    /// - Complexity: O(1)
    public init(parsing segment: UnsafeRawBufferPointer) throws(PacketError) {
        try self.init(parsing: segment, wholeDatagram: true)
    }

    /// `wholeDatagram: false` parses the header of a first fragment, whose
    /// length field covers fragments not present.
    init(parsing segment: UnsafeRawBufferPointer, wholeDatagram: Bool) throws(PacketError) {
        try PacketError.require(8, in: segment, layer: .udp)
        sourcePort = segment.bigEndianUInt16(at: 0)
        destinationPort = segment.bigEndianUInt16(at: 2)
        length = segment.bigEndianUInt16(at: 4)
        checksum = segment.bigEndianUInt16(at: 6)
        guard length >= 8 else { throw .badLength(layer: .udp, length: Int(length), available: segment.count) }
        if wholeDatagram { try PacketError.require(Int(length), in: segment, layer: .udp) }
    }

    public init(parsing segment: [UInt8]) throws(PacketError) {
        self = try withBytes(of: segment) { (bytes) throws(PacketError) in try UDP.Header(parsing: bytes) }
    }

    /// The payload of the segment this header was parsed from.
    @inlinable
    public func payload(in segment: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        segment.slice(min(8, segment.count)..<min(Int(length), segment.count))
    }

    /// Writes the 8 bytes at `offset`; returns 8.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) -> Int {
        buffer.requireRoom(8, at: offset, for: "UDP header")
        buffer.storeBigEndian(sourcePort, at: offset)
        buffer.storeBigEndian(destinationPort, at: offset + 2)
        buffer.storeBigEndian(length, at: offset + 4)
        buffer.storeBigEndian(checksum, at: offset + 6)
        return 8
    }

    public func write(to bytes: inout [UInt8]) {
        bytes.appendZeros(8) { write(to: $0) }
    }
}

extension UDP {
    /// The checksum of a UDP datagram over IPv4 (header with checksum field
    /// zero, then payload), with 0 sent as 0xFFFF since 0 means none.
    public static func checksum(datagram: UnsafeRawBufferPointer, source: IPv4.Address, destination: IPv4.Address) -> UInt16 {
        let value = InternetChecksum.checksum(segment: datagram, protocol: .udp, source: source, destination: destination)
        return value == 0 ? 0xFFFF : value
    }

    /// True when the datagram's checksum verifies over IPv4, or it has none
    /// (checksum field 0).
    /// - Precondition: `datagram` is at least 8 bytes.
    public static func checksumVerifies(datagram: UnsafeRawBufferPointer, source: IPv4.Address, destination: IPv4.Address) -> Bool {
        if datagram.bigEndianUInt16(at: 6) == 0 { return true }
        return InternetChecksum.verifies(segment: datagram, protocol: .udp, source: source, destination: destination)
    }

    /// The checksum of a UDP datagram over IPv6, where it is mandatory; 0 is
    /// sent as 0xFFFF.
    public static func checksum(datagram: UnsafeRawBufferPointer, source: IPv6.Address, destination: IPv6.Address) -> UInt16 {
        let value = InternetChecksum.checksum(segment: datagram, nextHeader: .udp, source: source, destination: destination)
        return value == 0 ? 0xFFFF : value
    }
}
