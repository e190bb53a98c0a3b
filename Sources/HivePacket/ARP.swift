/// Namespace for the Address Resolution Protocol (RFC 826), Ethernet/IPv4
/// only: that is the only kind a virtual network carries.
public enum ARP {}

extension ARP {
    public struct Operation: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt16
        @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
        @inlinable public init(_ rawValue: UInt16) { self.rawValue = rawValue }

        public static let request = Operation(1)
        public static let reply = Operation(2)
    }

    /// An Ethernet/IPv4 ARP packet (28 bytes).
    public struct Packet: Hashable, Sendable {
        public var operation: Operation
        public var senderMAC: EthernetAddress
        public var senderIP: IPv4.Address
        public var targetMAC: EthernetAddress
        public var targetIP: IPv4.Address

        public static let length = 28

        @inlinable
        public init(operation: Operation, senderMAC: EthernetAddress, senderIP: IPv4.Address, targetMAC: EthernetAddress, targetIP: IPv4.Address) {
            self.operation = operation
            self.senderMAC = senderMAC
            self.senderIP = senderIP
            self.targetMAC = targetMAC
            self.targetIP = targetIP
        }

        /// A gratuitous ARP announces the sender's own binding.
        @inlinable
        public var isGratuitous: Bool { senderIP == targetIP }
    }
}

extension ARP.Packet {
    /// Parses the ARP packet at the start of `bytes` (an Ethernet payload).
    /// - Throws: `.truncated` under 28 bytes; `.unsupported` with
    ///   `hardware type << 16 | protocol type` for anything but
    ///   Ethernet (1) / IPv4 (0x0800) with lengths 6 and 4.
    /// - Complexity: O(1)
    public init(parsing bytes: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(28, in: bytes, layer: .arp)
        let hardwareType = bytes.bigEndianUInt16(at: 0)
        let protocolType = bytes.bigEndianUInt16(at: 2)
        guard hardwareType == 1, protocolType == 0x0800, bytes[4] == 6, bytes[5] == 4 else {
            throw Self.unsupported(hardwareType: hardwareType, protocolType: protocolType)
        }
        operation = ARP.Operation(bytes.bigEndianUInt16(at: 6))
        senderMAC = bytes.ethernetAddress(at: 8)
        senderIP = bytes.ipv4Address(at: 14)
        targetMAC = bytes.ethernetAddress(at: 18)
        targetIP = bytes.ipv4Address(at: 24)
    }

    public init(parsing bytes: [UInt8]) throws(PacketError) {
        self = try withBytes(of: bytes) { (raw) throws(PacketError) in try ARP.Packet(parsing: raw) }
    }

    @inline(never)
    static func unsupported(hardwareType: UInt16, protocolType: UInt16) -> PacketError {
        .unsupported(layer: .arp, value: UInt32(hardwareType) << 16 | UInt32(protocolType))
    }

    /// Writes the 28 bytes at `offset`; returns 28.
    /// - Precondition: they fit.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) -> Int {
        buffer.requireRoom(28, at: offset, for: "ARP packet")
        buffer.storeBigEndian(UInt16(1), at: offset)
        buffer.storeBigEndian(UInt16(0x0800), at: offset + 2)
        buffer.store(UInt8(6), at: offset + 4)
        buffer.store(UInt8(4), at: offset + 5)
        buffer.storeBigEndian(operation.rawValue, at: offset + 6)
        buffer.store(senderMAC, at: offset + 8)
        buffer.store(senderIP, at: offset + 14)
        buffer.store(targetMAC, at: offset + 18)
        buffer.store(targetIP, at: offset + 24)
        return 28
    }

    public func write(to bytes: inout [UInt8]) {
        bytes.appendZeros(28) { write(to: $0) }
    }
}

// MARK: - Frames the simulation generates

extension ARP {
    /// A broadcast request asking who has `targetIP`.
    public static func requestFrame(
        senderMAC: EthernetAddress, senderIP: IPv4.Address, targetIP: IPv4.Address, vlan: Ethernet.VLANTag? = nil
    ) -> [UInt8] {
        frame(
            Packet(operation: .request, senderMAC: senderMAC, senderIP: senderIP, targetMAC: .zero, targetIP: targetIP),
            destination: .broadcast, vlan: vlan)
    }

    /// The reply to `request` saying `targetIP` of the request is at `mac`,
    /// sent unicast to the requester.
    public static func replyFrame(to request: Packet, answeringWith mac: EthernetAddress, vlan: Ethernet.VLANTag? = nil) -> [UInt8] {
        frame(
            Packet(operation: .reply, senderMAC: mac, senderIP: request.targetIP, targetMAC: request.senderMAC, targetIP: request.senderIP),
            destination: request.senderMAC, vlan: vlan)
    }

    /// `packet` in an Ethernet frame from its sender MAC to `destination`,
    /// padded to the 60-byte Ethernet minimum (without FCS).
    public static func frame(_ packet: Packet, destination: EthernetAddress, vlan: Ethernet.VLANTag? = nil) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        Ethernet.Header(destination: destination, source: packet.senderMAC, tag: vlan, etherType: .arp).write(to: &bytes)
        packet.write(to: &bytes)
        if bytes.count < 60 { bytes.append(contentsOf: repeatElement(0, count: 60 - bytes.count)) }
        return bytes
    }
}
