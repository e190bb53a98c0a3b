/// Namespace for Ethernet II framing with IEEE 802.1Q and 802.1ad tags.
public enum Ethernet {}

extension Ethernet {
    /// The 16-bit type field after the addresses and tags. Values below
    /// 0x0600 are an 802.3 length, not a type; they are kept as they are.
    public struct EtherType: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt16
        @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
        @inlinable public init(_ rawValue: UInt16) { self.rawValue = rawValue }

        public static let ipv4 = EtherType(0x0800)
        public static let arp = EtherType(0x0806)
        /// An IEEE 802.1Q customer tag follows.
        public static let vlan = EtherType(0x8100)
        /// An IEEE 802.1ad service tag (QinQ outer tag) follows.
        public static let serviceVLAN = EtherType(0x88A8)
        public static let ipv6 = EtherType(0x86DD)

        /// True for the tag protocol identifiers the parser unwraps.
        @inlinable public var isVLANTag: Bool { rawValue == 0x8100 || rawValue == 0x88A8 }
    }

    /// One 802.1Q or 802.1ad tag: the TPID that introduced it and the TCI.
    public struct VLANTag: Hashable, Sendable {
        /// 0x8100 (customer tag) or 0x88A8 (service tag).
        public var tagProtocol: EtherType
        /// Priority code point, 0...7.
        public var priority: UInt8
        /// Drop eligible indicator.
        public var dropEligible: Bool
        /// VLAN identifier, 0...4095; 0 marks a priority-only tag.
        public var id: UInt16

        /// - Precondition: `priority <= 7`, `id <= 4095`.
        @inlinable
        public init(tagProtocol: EtherType = .vlan, priority: UInt8 = 0, dropEligible: Bool = false, id: UInt16) {
            precondition(priority <= 7 && id <= 0xFFF, "VLAN tag priority \(priority) (0...7) or id \(id) (0...4095) out of range")
            self.tagProtocol = tagProtocol
            self.priority = priority
            self.dropEligible = dropEligible
            self.id = id
        }

        /// Splits a tag control information word.
        @inlinable
        public init(tagProtocol: EtherType, controlInformation tci: UInt16) {
            self.tagProtocol = tagProtocol
            priority = UInt8(truncatingIfNeeded: tci >> 13)
            dropEligible = tci & 0x1000 != 0
            id = tci & 0x0FFF
        }

        /// The tag control information word.
        @inlinable
        public var controlInformation: UInt16 {
            UInt16(priority & 7) << 13 | (dropEligible ? 0x1000 : 0) | id & 0x0FFF
        }
    }

    /// An Ethernet II header with up to two VLAN tags.
    ///
    /// With one tag, an 0x8100 tag is `tag` and an 0x88A8 tag is `outerTag`.
    /// With two (QinQ), the first is `outerTag` and the second `tag`. A third
    /// tag is not unwrapped: `etherType` is then its TPID.
    public struct Header: Hashable, Sendable {
        public var destination: EthernetAddress
        public var source: EthernetAddress
        /// The service (outer) tag of a QinQ frame.
        public var outerTag: VLANTag?
        /// The customer tag, or the only 802.1Q tag.
        public var tag: VLANTag?
        /// The type of the payload, after any tags.
        public var etherType: EtherType

        public static let untaggedLength = 14

        @inlinable
        public init(destination: EthernetAddress, source: EthernetAddress, outerTag: VLANTag? = nil, tag: VLANTag? = nil, etherType: EtherType) {
            self.destination = destination
            self.source = source
            self.outerTag = outerTag
            self.tag = tag
            self.etherType = etherType
        }

        /// Header bytes including tags: 14, 18 or 22.
        @inlinable
        public var length: Int { 14 + (outerTag == nil ? 0 : 4) + (tag == nil ? 0 : 4) }

        /// The VLAN the frame belongs to for forwarding: the customer tag's
        /// id, 0 when untagged.
        @inlinable
        public var vlanID: UInt16 { tag?.id ?? 0 }
    }
}

extension Ethernet.Header {
    /// Parses the header at the start of `frame`. The payload is
    /// `frame[length...]`.
    /// - Throws: `.truncated` when the frame is shorter than its header.
    /// - Complexity: O(1)
    public init(parsing frame: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(14, in: frame, layer: .ethernet)
        destination = frame.ethernetAddress(at: 0)
        source = frame.ethernetAddress(at: 6)
        outerTag = nil
        tag = nil
        var type = Ethernet.EtherType(frame.bigEndianUInt16(at: 12))
        var offset = 14
        var first: Ethernet.VLANTag?
        // At most two tags; each needs four more bytes.
        while type.isVLANTag, offset < 22 {
            try PacketError.require(offset + 4, in: frame, layer: .vlan)
            let parsed = Ethernet.VLANTag(tagProtocol: type, controlInformation: frame.bigEndianUInt16(at: offset))
            type = Ethernet.EtherType(frame.bigEndianUInt16(at: offset + 2))
            if let first {
                outerTag = first
                tag = parsed
            } else {
                first = parsed
            }
            offset += 4
        }
        if tag == nil, let first {
            if first.tagProtocol == .serviceVLAN { outerTag = first } else { tag = first }
        }
        etherType = type
    }

    public init(parsing frame: [UInt8]) throws(PacketError) {
        self = try withBytes(of: frame) { (bytes) throws(PacketError) in try Ethernet.Header(parsing: bytes) }
    }

    /// Writes the header at `offset`; returns the bytes written (`length`).
    /// - Precondition: `length` bytes fit.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) -> Int {
        buffer.requireRoom(length, at: offset, for: "Ethernet header")
        buffer.store(destination, at: offset)
        buffer.store(source, at: offset + 6)
        var position = offset + 12
        if let outerTag {
            buffer.storeBigEndian(outerTag.tagProtocol.rawValue, at: position)
            buffer.storeBigEndian(outerTag.controlInformation, at: position + 2)
            position += 4
        }
        if let tag {
            buffer.storeBigEndian(tag.tagProtocol.rawValue, at: position)
            buffer.storeBigEndian(tag.controlInformation, at: position + 2)
            position += 4
        }
        buffer.storeBigEndian(etherType.rawValue, at: position)
        return length
    }

    /// Appends the header to `bytes`.
    public func write(to bytes: inout [UInt8]) {
        bytes.appendZeros(length) { write(to: $0) }
    }
}

extension Ethernet.EtherType: CustomStringConvertible {
    public var description: String {
        switch rawValue {
        case 0x0800: "IPv4"
        case 0x0806: "ARP"
        case 0x8100: "802.1Q"
        case 0x88A8: "802.1ad"
        case 0x86DD: "IPv6"
        default: "0x" + String(rawValue, radix: 16)
        }
    }
}

extension EthernetAddress {
    /// The IPv6 multicast MAC for `address` (RFC 2464 §7): 33:33 and the low
    /// 32 bits of the group address.
    @inlinable
    public init(multicastFor address: IPv6.Address) {
        self.init(0x3333_0000_0000 | address.low & 0xFFFF_FFFF)
    }

    /// The IPv4 multicast MAC for `address` (RFC 1112 §6.4): 01:00:5e and
    /// the low 23 bits of the group address.
    @inlinable
    public init(multicastFor address: IPv4.Address) {
        self.init(0x0100_5E00_0000 | UInt64(address.value & 0x7F_FFFF))
    }
}
