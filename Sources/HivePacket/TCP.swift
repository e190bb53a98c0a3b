/// Namespace for the Transmission Control Protocol (RFC 9293).
public enum TCP {}

extension TCP {
    /// The nine TCP flag bits.
    public struct Flags: OptionSet, Hashable, Sendable {
        public var rawValue: UInt16
        @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue & 0x1FF }

        public static let fin = Flags(rawValue: 0x001)
        public static let syn = Flags(rawValue: 0x002)
        public static let rst = Flags(rawValue: 0x004)
        public static let psh = Flags(rawValue: 0x008)
        public static let ack = Flags(rawValue: 0x010)
        public static let urg = Flags(rawValue: 0x020)
        public static let ece = Flags(rawValue: 0x040)
        public static let cwr = Flags(rawValue: 0x080)
        /// ECN nonce (RFC 3540, historic).
        public static let ns = Flags(rawValue: 0x100)
    }

    /// A TCP header, options kept inline.
    public struct Header: Hashable, Sendable {
        public var sourcePort: UInt16
        public var destinationPort: UInt16
        public var sequenceNumber: UInt32
        public var acknowledgmentNumber: UInt32
        public var flags: Flags
        public var window: UInt16
        public var checksum: UInt16
        public var urgentPointer: UInt16
        /// Options, a multiple of four bytes (padding included).
        public var options: OptionBytes

        public static let minimumLength = 20

        @inlinable
        public init(
            sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32, acknowledgmentNumber: UInt32 = 0, flags: Flags,
            window: UInt16 = 0, checksum: UInt16 = 0, urgentPointer: UInt16 = 0, options: OptionBytes = OptionBytes()
        ) {
            self.sourcePort = sourcePort
            self.destinationPort = destinationPort
            self.sequenceNumber = sequenceNumber
            self.acknowledgmentNumber = acknowledgmentNumber
            self.flags = flags
            self.window = window
            self.checksum = checksum
            self.urgentPointer = urgentPointer
            self.options = options
        }

        /// Header bytes including options (the data offset × 4): 20...60.
        @inlinable public var headerLength: Int { 20 + options.count }
    }
}

extension TCP.Header {
    /// Parses the header at the start of `segment` (an IP payload). The
    /// payload is `segment[headerLength...]`; TCP has no length of its own.
    /// - Throws: `.truncated`; `.badHeaderLength` when the data offset is
    ///   below 5 words.
    /// - Complexity: O(1)
    public init(parsing segment: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(20, in: segment, layer: .tcp)
        let headerLength = Int(segment[12] >> 4) * 4
        guard headerLength >= 20 else { throw .badHeaderLength(layer: .tcp, length: headerLength) }
        try PacketError.require(headerLength, in: segment, layer: .tcp)
        sourcePort = segment.bigEndianUInt16(at: 0)
        destinationPort = segment.bigEndianUInt16(at: 2)
        sequenceNumber = segment.bigEndianUInt32(at: 4)
        acknowledgmentNumber = segment.bigEndianUInt32(at: 8)
        flags = TCP.Flags(rawValue: segment.bigEndianUInt16(at: 12))
        window = segment.bigEndianUInt16(at: 14)
        checksum = segment.bigEndianUInt16(at: 16)
        urgentPointer = segment.bigEndianUInt16(at: 18)
        options = headerLength == 20 ? OptionBytes() : OptionBytes(segment.slice(20..<headerLength))
    }

    public init(parsing segment: [UInt8]) throws(PacketError) {
        self = try withBytes(of: segment) { (bytes) throws(PacketError) in try TCP.Header(parsing: bytes) }
    }

    /// Writes the header at `offset` (checksum as stored); returns
    /// `headerLength`.
    /// - Precondition: it fits; `options.count` is a multiple of 4.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) -> Int {
        precondition(options.count % 4 == 0, "TCP options of \(options.count) bytes are not padded to a multiple of 4")
        let length = headerLength
        buffer.requireRoom(length, at: offset, for: "TCP header")
        buffer.storeBigEndian(sourcePort, at: offset)
        buffer.storeBigEndian(destinationPort, at: offset + 2)
        buffer.storeBigEndian(sequenceNumber, at: offset + 4)
        buffer.storeBigEndian(acknowledgmentNumber, at: offset + 8)
        buffer.storeBigEndian(UInt16(length / 4) << 12 | flags.rawValue, at: offset + 12)
        buffer.storeBigEndian(window, at: offset + 14)
        buffer.storeBigEndian(checksum, at: offset + 16)
        buffer.storeBigEndian(urgentPointer, at: offset + 18)
        options.withUnsafeBytes { buffer.copy($0, to: offset + 20) }
        return length
    }

    public func write(to bytes: inout [UInt8]) {
        bytes.appendZeros(headerLength) { write(to: $0) }
    }
}

// MARK: - Options

extension TCP.Header {
    /// The data of the first option of `kind`, or nil when absent or when the
    /// option list is malformed before it (a length that runs past the end).
    /// End-of-list (0) stops the scan; no-operation (1) is one byte.
    /// - Complexity: O(options.count)
    public func option(kind: UInt8) -> [UInt8]? {
        options.withUnsafeBytes { bytes -> [UInt8]? in
            var offset = 0
            while offset < bytes.count {
                let current = bytes[offset]
                if current == 0 { return nil }
                if current == 1 {
                    offset += 1
                    continue
                }
                guard bytes.count - offset >= 2 else { return nil }
                let length = Int(bytes[offset + 1])
                guard length >= 2, bytes.count - offset >= length else { return nil }
                if current == kind { return Array(bytes.slice((offset + 2)..<(offset + length))) }
                offset += length
            }
            return nil
        }
    }

    /// The maximum segment size option (kind 2), sent with SYN.
    public var maximumSegmentSize: UInt16? {
        guard let data = option(kind: 2), data.count == 2 else { return nil }
        return UInt16(data[0]) << 8 | UInt16(data[1])
    }

    /// The window scale shift (kind 3, RFC 7323), sent with SYN.
    public var windowScale: UInt8? {
        guard let data = option(kind: 3), data.count == 1 else { return nil }
        return data[0]
    }

    /// True when the SYN offers selective acknowledgment (kind 4).
    public var sackPermitted: Bool { option(kind: 4) != nil }
}

// MARK: - Checksums

extension TCP {
    /// The checksum of a TCP segment over IPv4 (header with checksum field
    /// zero, then payload).
    public static func checksum(segment: UnsafeRawBufferPointer, source: IPv4.Address, destination: IPv4.Address) -> UInt16 {
        InternetChecksum.checksum(segment: segment, protocol: .tcp, source: source, destination: destination)
    }

    /// True when the segment's checksum verifies over IPv4.
    public static func checksumVerifies(segment: UnsafeRawBufferPointer, source: IPv4.Address, destination: IPv4.Address) -> Bool {
        InternetChecksum.verifies(segment: segment, protocol: .tcp, source: source, destination: destination)
    }

    /// The checksum of a TCP segment over IPv6.
    public static func checksum(segment: UnsafeRawBufferPointer, source: IPv6.Address, destination: IPv6.Address) -> UInt16 {
        InternetChecksum.checksum(segment: segment, nextHeader: .tcp, source: source, destination: destination)
    }
}

extension TCP.Flags: CustomStringConvertible {
    public var description: String {
        let names: [(TCP.Flags, String)] = [
            (.ns, "NS"), (.cwr, "CWR"), (.ece, "ECE"), (.urg, "URG"), (.ack, "ACK"), (.psh, "PSH"), (.rst, "RST"), (.syn, "SYN"), (.fin, "FIN"),
        ]
        let set = names.filter { contains($0.0) }.map(\.1)
        return set.isEmpty ? "none" : set.joined(separator: "|")
    }
}
