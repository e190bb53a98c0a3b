/// Namespace for ICMPv6 (RFC 4443) and IPv6 neighbor discovery (RFC 4861).
public enum ICMPv6 {}

extension ICMPv6 {
    public struct MessageType: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt8
        @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
        @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }

        public static let destinationUnreachable = MessageType(1)
        public static let packetTooBig = MessageType(2)
        public static let timeExceeded = MessageType(3)
        public static let parameterProblem = MessageType(4)
        public static let echoRequest = MessageType(128)
        public static let echoReply = MessageType(129)
        public static let routerSolicitation = MessageType(133)
        public static let routerAdvertisement = MessageType(134)
        public static let neighborSolicitation = MessageType(135)
        public static let neighborAdvertisement = MessageType(136)

        /// Types below 128 are errors.
        @inlinable public var isError: Bool { rawValue < 128 }
    }

    /// The 4-byte ICMPv6 header plus the 32 bits that follow it in every
    /// message (echo identifier and sequence, NA flags, MTU, pointer).
    public struct Header: Hashable, Sendable {
        public var type: MessageType
        public var code: UInt8
        public var checksum: UInt16
        public var restOfHeader: UInt32

        public static let length = 8

        @inlinable
        public init(type: MessageType, code: UInt8 = 0, checksum: UInt16 = 0, restOfHeader: UInt32 = 0) {
            self.type = type
            self.code = code
            self.checksum = checksum
            self.restOfHeader = restOfHeader
        }

        /// Echo identifier (types 128, 129).
        @inlinable public var identifier: UInt16 { UInt16(truncatingIfNeeded: restOfHeader >> 16) }
        /// Echo sequence number (types 128, 129).
        @inlinable public var sequenceNumber: UInt16 { UInt16(truncatingIfNeeded: restOfHeader) }
    }

    /// A neighbor solicitation (type 135): who has `target`?
    public struct NeighborSolicitation: Hashable, Sendable {
        public var target: IPv6.Address
        /// The source link-layer address option (type 1); absent when the
        /// source is unspecified (duplicate address detection).
        public var sourceLinkLayerAddress: EthernetAddress?

        @inlinable
        public init(target: IPv6.Address, sourceLinkLayerAddress: EthernetAddress?) {
            self.target = target
            self.sourceLinkLayerAddress = sourceLinkLayerAddress
        }
    }

    /// A neighbor advertisement (type 136): `target` is at this link-layer
    /// address.
    public struct NeighborAdvertisement: Hashable, Sendable {
        public var isRouter: Bool
        public var isSolicited: Bool
        public var isOverride: Bool
        public var target: IPv6.Address
        /// The target link-layer address option (type 2).
        public var targetLinkLayerAddress: EthernetAddress?

        @inlinable
        public init(isRouter: Bool, isSolicited: Bool, isOverride: Bool, target: IPv6.Address, targetLinkLayerAddress: EthernetAddress?) {
            self.isRouter = isRouter
            self.isSolicited = isSolicited
            self.isOverride = isOverride
            self.target = target
            self.targetLinkLayerAddress = targetLinkLayerAddress
        }
    }
}

extension ICMPv6.Header {
    /// Parses the header at the start of `message` (the upper-layer payload).
    /// - Throws: `.truncated` under 8 bytes.
    public init(parsing message: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(8, in: message, layer: .icmpv6)
        type = ICMPv6.MessageType(message[0])
        code = message[1]
        checksum = message.bigEndianUInt16(at: 2)
        restOfHeader = message.bigEndianUInt32(at: 4)
    }

    public init(parsing message: [UInt8]) throws(PacketError) {
        self = try withBytes(of: message) { (bytes) throws(PacketError) in try ICMPv6.Header(parsing: bytes) }
    }

    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) -> Int {
        buffer.requireRoom(8, at: offset, for: "ICMPv6 header")
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

// MARK: - Neighbor discovery

extension ICMPv6 {
    /// Option types of neighbor discovery (RFC 4861 §4.6).
    static let sourceLinkLayerOption: UInt8 = 1
    static let targetLinkLayerOption: UInt8 = 2

    /// Finds the link-layer address option of `type` among the options
    /// starting at `offset` of `message`, checking the framing of all of
    /// them: every option's length (in 8-byte units) must be nonzero and fit.
    /// An option of the right type with room for a MAC yields it; the last
    /// one wins, as in most implementations.
    /// - Complexity: O(options), without allocating.
    static func linkLayerAddress(option type: UInt8, in message: UnsafeRawBufferPointer, from offset: Int) throws(PacketError) -> EthernetAddress? {
        var offset = offset
        var found: EthernetAddress?
        while offset < message.count {
            guard message.count - offset >= 2 else { throw PacketError.truncated(.neighborDiscovery, offset + 2, message.count) }
            let length = Int(message[offset + 1]) * 8
            guard length > 0 else { throw .badOption(layer: .neighborDiscovery, offset: offset) }
            guard message.count - offset >= length else { throw .badOption(layer: .neighborDiscovery, offset: offset) }
            if message[offset] == type, length >= 8 { found = message.ethernetAddress(at: offset + 2) }
            offset += length
        }
        return found
    }

    static func writeLinkLayerOption(type: UInt8, address: EthernetAddress, to bytes: inout [UInt8]) {
        bytes.appendZeros(8) { buffer in
            buffer.store(type, at: 0)
            buffer.store(UInt8(1), at: 1)
            buffer.store(address, at: 2)
        }
    }
}

extension ICMPv6.NeighborSolicitation {
    /// Parses a neighbor solicitation `message` (ICMPv6 header included).
    /// - Throws: `.truncated` under 24 bytes; `.unsupported(layer: .icmpv6,
    ///   value: type)` for another type; `.badOption` for broken options.
    public init(parsing message: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(24, in: message, layer: .icmpv6)
        guard message[0] == ICMPv6.MessageType.neighborSolicitation.rawValue else {
            throw .unsupported(layer: .icmpv6, value: UInt32(message[0]))
        }
        target = message.ipv6Address(at: 8)
        sourceLinkLayerAddress = try ICMPv6.linkLayerAddress(option: ICMPv6.sourceLinkLayerOption, in: message, from: 24)
    }

    public init(parsing message: [UInt8]) throws(PacketError) {
        self = try withBytes(of: message) { (bytes) throws(PacketError) in try ICMPv6.NeighborSolicitation(parsing: bytes) }
    }

    /// The ICMPv6 message with a zero checksum (fill it in with the IPv6
    /// pseudo-header, as `ICMPv6.frame` does).
    public var message: [UInt8] {
        var bytes: [UInt8] = []
        ICMPv6.Header(type: .neighborSolicitation).write(to: &bytes)
        bytes.appendZeros(16) { $0.store(target, at: 0) }
        if let sourceLinkLayerAddress {
            ICMPv6.writeLinkLayerOption(type: ICMPv6.sourceLinkLayerOption, address: sourceLinkLayerAddress, to: &bytes)
        }
        return bytes
    }
}

extension ICMPv6.NeighborAdvertisement {
    /// Parses a neighbor advertisement `message` (ICMPv6 header included).
    /// - Throws: as `NeighborSolicitation(parsing:)`.
    public init(parsing message: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(24, in: message, layer: .icmpv6)
        guard message[0] == ICMPv6.MessageType.neighborAdvertisement.rawValue else {
            throw .unsupported(layer: .icmpv6, value: UInt32(message[0]))
        }
        let flags = message[4]
        isRouter = flags & 0x80 != 0
        isSolicited = flags & 0x40 != 0
        isOverride = flags & 0x20 != 0
        target = message.ipv6Address(at: 8)
        targetLinkLayerAddress = try ICMPv6.linkLayerAddress(option: ICMPv6.targetLinkLayerOption, in: message, from: 24)
    }

    public init(parsing message: [UInt8]) throws(PacketError) {
        self = try withBytes(of: message) { (bytes) throws(PacketError) in try ICMPv6.NeighborAdvertisement(parsing: bytes) }
    }

    /// The ICMPv6 message with a zero checksum.
    public var message: [UInt8] {
        var bytes: [UInt8] = []
        let flags = (isRouter ? 0x8000_0000 : 0) | (isSolicited ? 0x4000_0000 : 0) | (isOverride ? 0x2000_0000 : 0) as UInt32
        ICMPv6.Header(type: .neighborAdvertisement, restOfHeader: flags).write(to: &bytes)
        bytes.appendZeros(16) { $0.store(target, at: 0) }
        if let targetLinkLayerAddress {
            ICMPv6.writeLinkLayerOption(type: ICMPv6.targetLinkLayerOption, address: targetLinkLayerAddress, to: &bytes)
        }
        return bytes
    }
}

// MARK: - Frames

extension ICMPv6 {
    /// An Ethernet + IPv6 frame carrying the ICMPv6 `message`, with the
    /// checksum filled in over the IPv6 pseudo-header. Neighbor discovery
    /// requires hop limit 255 (RFC 4861 §7.1), the default here.
    public static func frame(
        _ message: [UInt8], sourceMAC: EthernetAddress, destinationMAC: EthernetAddress,
        source: IPv6.Address, destination: IPv6.Address, hopLimit: UInt8 = 255, vlan: Ethernet.VLANTag? = nil
    ) -> [UInt8] {
        var message = message
        message.withUnsafeMutableBytes { bytes in
            bytes.storeBigEndian(UInt16(0), at: 2)
            let sum = InternetChecksum.checksum(segment: UnsafeRawBufferPointer(bytes), nextHeader: .icmpv6, source: source, destination: destination)
            bytes.storeBigEndian(sum, at: 2)
        }
        var frame: [UInt8] = []
        Ethernet.Header(destination: destinationMAC, source: sourceMAC, tag: vlan, etherType: .ipv6).write(to: &frame)
        IPv6.Header(payloadLength: message.count, nextHeader: .icmpv6, hopLimit: hopLimit, source: source, destination: destination)
            .write(to: &frame)
        frame.append(contentsOf: message)
        return frame
    }

    /// A solicitation for `target` from `source`, to its solicited-node
    /// multicast group.
    public static func neighborSolicitationFrame(
        target: IPv6.Address, sourceMAC: EthernetAddress, source: IPv6.Address, vlan: Ethernet.VLANTag? = nil
    ) -> [UInt8] {
        let group = target.solicitedNodeMulticast
        let solicitation = NeighborSolicitation(target: target, sourceLinkLayerAddress: source.isUnspecified ? nil : sourceMAC)
        return frame(
            solicitation.message, sourceMAC: sourceMAC, destinationMAC: EthernetAddress(multicastFor: group),
            source: source, destination: group, vlan: vlan)
    }

    /// The solicited advertisement answering `solicitation` (sent from
    /// `requesterMAC`/`requester`): `target` is at `mac`. A solicitation
    /// from the unspecified address (duplicate address detection) is
    /// answered to all nodes, unsolicited (RFC 4861 §7.2.4).
    public static func neighborAdvertisementFrame(
        answering solicitation: NeighborSolicitation, requesterMAC: EthernetAddress, requester: IPv6.Address,
        mac: EthernetAddress, isRouter: Bool, vlan: Ethernet.VLANTag? = nil
    ) -> [UInt8] {
        let toAll = requester.isUnspecified
        let advertisement = NeighborAdvertisement(
            isRouter: isRouter, isSolicited: !toAll, isOverride: true, target: solicitation.target, targetLinkLayerAddress: mac)
        return frame(
            advertisement.message, sourceMAC: mac,
            destinationMAC: toAll ? EthernetAddress(multicastFor: IPv6.Address.allNodes) : requesterMAC,
            source: solicitation.target, destination: toAll ? .allNodes : requester, vlan: vlan)
    }
}
