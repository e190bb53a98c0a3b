/// Namespace for the Internet Control Message Protocol for IPv4 (RFC 792).
public enum ICMPv4 {}

extension ICMPv4 {
    public struct MessageType: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt8
        @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
        @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }

        public static let echoReply = MessageType(0)
        public static let destinationUnreachable = MessageType(3)
        public static let redirect = MessageType(5)
        public static let echoRequest = MessageType(8)
        public static let timeExceeded = MessageType(11)
        public static let parameterProblem = MessageType(12)

        /// Error messages quote the packet that caused them.
        @inlinable
        public var isError: Bool {
            switch rawValue {
            case 3, 4, 5, 11, 12: true
            default: false
            }
        }
    }

    /// Codes of destination unreachable (type 3).
    public enum UnreachableCode: UInt8, Sendable {
        case network = 0, host = 1, `protocol` = 2, port = 3
        /// Fragmentation needed and DF set; carries the next-hop MTU.
        case fragmentationNeeded = 4
        case sourceRouteFailed = 5
        case networkProhibited = 9, hostProhibited = 10
        case administrativelyProhibited = 13
    }

    /// Codes of time exceeded (type 11).
    public enum TimeExceededCode: UInt8, Sendable {
        case timeToLive = 0
        case fragmentReassembly = 1
    }

    /// The 8-byte ICMP header: type, code, checksum and the 32 bits whose
    /// meaning depends on the type.
    public struct Header: Hashable, Sendable {
        public var type: MessageType
        public var code: UInt8
        public var checksum: UInt16
        /// Identifier and sequence (echo), unused and next-hop MTU
        /// (unreachable), pointer (parameter problem), gateway (redirect).
        public var restOfHeader: UInt32

        public static let length = 8

        @inlinable
        public init(type: MessageType, code: UInt8 = 0, checksum: UInt16 = 0, restOfHeader: UInt32 = 0) {
            self.type = type
            self.code = code
            self.checksum = checksum
            self.restOfHeader = restOfHeader
        }

        /// An echo request or reply header.
        @inlinable
        public init(echo type: MessageType, identifier: UInt16, sequenceNumber: UInt16) {
            self.init(type: type, restOfHeader: UInt32(identifier) << 16 | UInt32(sequenceNumber))
        }

        /// Echo identifier (types 0 and 8).
        @inlinable
        public var identifier: UInt16 {
            get { UInt16(truncatingIfNeeded: restOfHeader >> 16) }
            set { restOfHeader = UInt32(newValue) << 16 | restOfHeader & 0xFFFF }
        }

        /// Echo sequence number (types 0 and 8).
        @inlinable
        public var sequenceNumber: UInt16 {
            get { UInt16(truncatingIfNeeded: restOfHeader) }
            set { restOfHeader = restOfHeader & 0xFFFF_0000 | UInt32(newValue) }
        }

        /// Next-hop MTU of "fragmentation needed" (RFC 1191).
        @inlinable
        public var nextHopMTU: UInt16 {
            get { UInt16(truncatingIfNeeded: restOfHeader) }
            set { restOfHeader = UInt32(newValue) }
        }
    }

    /// The start of the packet an ICMP error quotes: its IP header and the
    /// first bytes of its payload (RFC 792 asks for 8, RFC 1812 allows more).
    public struct Quote: Hashable, Sendable {
        /// The quoted header. Its `totalLength` describes the original packet,
        /// most of which is not in the error.
        public var header: IPv4.Header
        /// Offset of the quoted transport bytes in the ICMP message.
        public var transportOffset: Int
        /// How many transport bytes were quoted.
        public var transportLength: Int

        /// The quoted source and destination ports, when the quote is of TCP
        /// or UDP and holds them.
        public func ports(in message: UnsafeRawBufferPointer) -> (source: UInt16, destination: UInt16)? {
            guard header.protocol == .tcp || header.protocol == .udp, transportLength >= 4,
                  message.count - transportOffset >= 4
            else { return nil }
            return (message.bigEndianUInt16(at: transportOffset), message.bigEndianUInt16(at: transportOffset + 2))
        }
    }
}

extension ICMPv4.Header {
    /// Parses the header at the start of `message` (an IPv4 payload).
    /// - Throws: `.truncated` under 8 bytes.
    /// - Complexity: O(1)
    public init(parsing message: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(8, in: message, layer: .icmpv4)
        type = ICMPv4.MessageType(message[0])
        code = message[1]
        checksum = message.bigEndianUInt16(at: 2)
        restOfHeader = message.bigEndianUInt32(at: 4)
    }

    public init(parsing message: [UInt8]) throws(PacketError) {
        self = try withBytes(of: message) { (bytes) throws(PacketError) in try ICMPv4.Header(parsing: bytes) }
    }

    /// Writes the 8 bytes at `offset`; returns 8.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) -> Int {
        buffer.requireRoom(8, at: offset, for: "ICMPv4 header")
        buffer.store(type.rawValue, at: offset)
        buffer.store(code, at: offset + 1)
        buffer.storeBigEndian(checksum, at: offset + 2)
        buffer.storeBigEndian(restOfHeader, at: offset + 4)
        return 8
    }

    public func write(to bytes: inout [UInt8]) {
        bytes.appendZeros(8) { write(to: $0) }
    }
}

extension ICMPv4.Quote {
    /// Parses the quoted packet of an ICMP error `message` (the whole ICMP
    /// message, header included).
    /// - Throws: `.truncated(layer: .icmpv4, ...)` when the message is too
    ///   short for its header; the IPv4 errors of the quoted header.
    public init(parsing message: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(8, in: message, layer: .icmpv4)
        let quoted = message.dropping(8)
        header = try IPv4.Header(parsing: quoted, wholePacket: false)
        transportOffset = 8 + header.headerLength
        transportLength = min(quoted.count - header.headerLength, max(0, header.payloadLength))
    }

    public init(parsing message: [UInt8]) throws(PacketError) {
        self = try withBytes(of: message) { (bytes) throws(PacketError) in try ICMPv4.Quote(parsing: bytes) }
    }
}

extension ICMPv4 {
    /// True when an ICMP message (header and data) verifies.
    public static func checksumVerifies(message: UnsafeRawBufferPointer) -> Bool {
        InternetChecksum.verifies(message)
    }
}
