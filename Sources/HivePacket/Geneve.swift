/// Namespace for Geneve, Generic Network Virtualization Encapsulation
/// (RFC 8926): Hive's tunnel between hosts, over UDP port 6081.
///
/// The header is parsed without allocating; its options are validated then
/// and can be looked up in place (`optionDataRange`) or copied out
/// (`options(in:)`).
public enum Geneve {}

extension Geneve {
    /// The fixed 8-byte Geneve header.
    public struct Header: Hashable, Sendable {
        /// 0 is the only version defined.
        public var version: UInt8
        /// Bytes of options after the fixed header (the 6-bit Opt Len × 4).
        public var optionsLength: Int
        /// O: an OAM (control) packet, not data for the VM.
        public var isOAM: Bool
        /// C: at least one option is critical; a receiver that does not
        /// understand one must drop the packet.
        public var hasCriticalOptions: Bool
        /// The type of the payload; 0x6558 (Transparent Ethernet Bridging)
        /// for an Ethernet frame.
        public var protocolType: Ethernet.EtherType
        /// 24-bit virtual network identifier; Hive puts the egress port's
        /// tunnel key here.
        public var vni: UInt32

        public static let fixedLength = 8
        /// Protocol type of an inner Ethernet frame.
        public static let transparentEthernetBridging = Ethernet.EtherType(0x6558)

        /// - Precondition: `vni` fits 24 bits; `optionsLength` is a multiple
        ///   of 4 up to 252.
        @inlinable
        public init(
            optionsLength: Int = 0, isOAM: Bool = false, hasCriticalOptions: Bool = false,
            protocolType: Ethernet.EtherType = transparentEthernetBridging, vni: UInt32
        ) {
            precondition(vni <= 0xFF_FFFF, "Geneve VNI \(vni) exceeds 24 bits")
            precondition(optionsLength >= 0 && optionsLength <= 252 && optionsLength % 4 == 0, "Geneve options length \(optionsLength) is not a multiple of 4 up to 252")
            self.version = 0
            self.optionsLength = optionsLength
            self.isOAM = isOAM
            self.hasCriticalOptions = hasCriticalOptions
            self.protocolType = protocolType
            self.vni = vni
        }

        /// Header bytes including options; the inner frame starts here.
        @inlinable public var length: Int { 8 + optionsLength }
    }

    /// One Geneve option: a TLV with a class (namespace), a type whose high
    /// bit marks it critical, and data in 4-byte units.
    public struct Option: Hashable, Sendable {
        public var optionClass: UInt16
        public var type: UInt8
        /// A multiple of 4 bytes, at most 124.
        public var data: [UInt8]

        /// - Precondition: `data.count` is a multiple of 4 up to 124.
        public init(optionClass: UInt16, type: UInt8, data: [UInt8]) {
            precondition(data.count % 4 == 0 && data.count <= 124, "Geneve option data of \(data.count) bytes is not a multiple of 4 up to 124")
            self.optionClass = optionClass
            self.type = type
            self.data = data
        }

        /// The receiver must drop the packet if it does not understand it.
        @inlinable public var isCritical: Bool { type & 0x80 != 0 }
        /// Bytes on the wire, option header included.
        @inlinable public var length: Int { 4 + data.count }

        /// Appends the option.
        public func write(to bytes: inout [UInt8]) {
            bytes.appendZeros(4) { buffer in
                buffer.storeBigEndian(optionClass, at: 0)
                buffer.store(type, at: 2)
                buffer.store(UInt8(data.count / 4), at: 3)
            }
            bytes.append(contentsOf: data)
        }
    }
}

extension Geneve.Header {
    /// Parses the header at the start of `packet` (a UDP payload) and
    /// validates the framing of its options. The inner frame is
    /// `packet[length...]`.
    /// - Throws: `.truncated`; `.badVersion` for a version other than 0;
    ///   `.badOption(layer: .geneve, offset:)` for an option whose length
    ///   runs past the options area.
    /// - Complexity: O(options), without allocating.
    public init(parsing packet: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(8, in: packet, layer: .geneve)
        let first = packet[0]
        version = first >> 6
        guard version == 0 else { throw .badVersion(layer: .geneve, version: version) }
        optionsLength = Int(first & 0x3F) * 4
        let flags = packet[1]
        isOAM = flags & 0x80 != 0
        hasCriticalOptions = flags & 0x40 != 0
        protocolType = Ethernet.EtherType(packet.bigEndianUInt16(at: 2))
        vni = packet.bigEndianUInt32(at: 4) >> 8
        try PacketError.require(8 + optionsLength, in: packet, layer: .geneve)
        var offset = 8
        let end = 8 + optionsLength
        while offset < end {
            guard end - offset >= 4 else { throw .badOption(layer: .geneve, offset: offset) }
            let optionLength = 4 + Int(packet[offset + 3] & 0x1F) * 4
            guard end - offset >= optionLength else { throw .badOption(layer: .geneve, offset: offset) }
            offset += optionLength
        }
    }

    public init(parsing packet: [UInt8]) throws(PacketError) {
        self = try withBytes(of: packet) { (bytes) throws(PacketError) in try Geneve.Header(parsing: bytes) }
    }

    /// Where the data of the first option with `optionClass` and `type` lies
    /// in `packet`, or nil.
    /// - Precondition: `packet` is the one this header was parsed from, so
    ///   the options are known to be well framed.
    /// - Complexity: O(options), without allocating.
    public func optionDataRange(optionClass: UInt16, type: UInt8, in packet: UnsafeRawBufferPointer) -> Range<Int>? {
        var offset = 8
        let end = min(8 + optionsLength, packet.count)
        while end - offset >= 4 {
            let dataLength = Int(packet[offset + 3] & 0x1F) * 4
            guard end - offset - 4 >= dataLength else { return nil }
            if packet.bigEndianUInt16(at: offset) == optionClass, packet[offset + 2] == type {
                return (offset + 4)..<(offset + 4 + dataLength)
            }
            offset += 4 + dataLength
        }
        return nil
    }

    /// The options of `packet`, copied out.
    /// - Precondition: as `optionDataRange`.
    public func options(in packet: UnsafeRawBufferPointer) -> [Geneve.Option] {
        var result: [Geneve.Option] = []
        var offset = 8
        let end = min(8 + optionsLength, packet.count)
        while end - offset >= 4 {
            let dataLength = Int(packet[offset + 3] & 0x1F) * 4
            guard end - offset - 4 >= dataLength else { break }
            result.append(Geneve.Option(
                optionClass: packet.bigEndianUInt16(at: offset), type: packet[offset + 2],
                data: Array(packet.slice((offset + 4)..<(offset + 4 + dataLength)))))
            offset += 4 + dataLength
        }
        return result
    }

    public func options(in packet: [UInt8]) -> [Geneve.Option] {
        packet.withUnsafeBytes { options(in: $0) }
    }

    /// Writes the fixed 8 bytes at `offset` (options follow, written by the
    /// caller); returns 8.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) -> Int {
        buffer.requireRoom(8, at: offset, for: "Geneve header")
        buffer.store(version << 6 | UInt8(optionsLength / 4) & 0x3F, at: offset)
        buffer.store((isOAM ? 0x80 : 0) | (hasCriticalOptions ? 0x40 : 0), at: offset + 1)
        buffer.storeBigEndian(protocolType.rawValue, at: offset + 2)
        buffer.storeBigEndian(vni << 8, at: offset + 4)
        return 8
    }

    /// Appends the header followed by `options`, whose total length must be
    /// `optionsLength`.
    public func write(to bytes: inout [UInt8], options: [Geneve.Option] = []) {
        precondition(options.reduce(0) { $0 + $1.length } == optionsLength, "Geneve options do not add up to optionsLength \(optionsLength)")
        bytes.appendZeros(8) { write(to: $0) }
        for option in options { option.write(to: &bytes) }
    }
}

// MARK: - Hive's own option

extension Geneve {
    /// Metadata Hive attaches to its tunnel packets: the ingress port's key
    /// and whether the packet is being traced.
    ///
    /// Carried as a non-critical option (receivers that do not know it may
    /// ignore it) of class 0xFFF0, from the experimental range RFC 8926 §9
    /// leaves for uses without an IANA allocation; type 1; one word of data:
    /// flags byte (bit 0: trace), then the 24-bit ingress port key.
    public struct HiveMetadata: Hashable, Sendable {
        public static let optionClass: UInt16 = 0xFFF0
        public static let optionType: UInt8 = 0x01

        /// 24 bits.
        public var ingressPortKey: UInt32
        public var trace: Bool

        /// - Precondition: `ingressPortKey` fits 24 bits.
        @inlinable
        public init(ingressPortKey: UInt32, trace: Bool = false) {
            precondition(ingressPortKey <= 0xFF_FFFF, "port key \(ingressPortKey) exceeds 24 bits")
            self.ingressPortKey = ingressPortKey
            self.trace = trace
        }

        /// The metadata in `packet` (a Geneve header and its options), nil
        /// when absent or of the wrong size.
        public init?(in packet: UnsafeRawBufferPointer, header: Header) {
            guard let range = header.optionDataRange(optionClass: Self.optionClass, type: Self.optionType, in: packet),
                  range.count == 4
            else { return nil }
            let word = packet.bigEndianUInt32(at: range.lowerBound)
            ingressPortKey = word & 0xFF_FFFF
            trace = word >> 24 & 1 != 0
        }

        public var option: Option {
            let word = (trace ? 1 : 0) << 24 | ingressPortKey
            return Option(
                optionClass: Self.optionClass, type: Self.optionType,
                data: [UInt8(word >> 24), UInt8(word >> 16 & 0xFF), UInt8(word >> 8 & 0xFF), UInt8(word & 0xFF)])
        }
    }
}
