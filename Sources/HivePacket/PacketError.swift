/// Why a packet could not be parsed.
///
/// Every parser in `HivePacket` reports malformed or truncated input with one
/// of these cases and never traps or reads outside the buffer it was given.
/// The datapath turns them into drop reasons and counters, so each case names
/// the layer and carries the offending value.
public enum PacketError: Error, Hashable, Sendable {
    /// The buffer ends before the layer does: `needed` bytes from the start of
    /// the layer, `available` there.
    case truncated(layer: PacketLayer, needed: Int, available: Int)
    /// A version field holds something this layer is not (IPv4 ≠ 4, IPv6 ≠ 6,
    /// Geneve ≠ 0).
    case badVersion(layer: PacketLayer, version: UInt8)
    /// A header-length field is below the layer's minimum (IPv4 IHL < 5,
    /// TCP data offset < 5) or disagrees with the rest of the header.
    case badHeaderLength(layer: PacketLayer, length: Int)
    /// A length field disagrees with the header or with the bytes present
    /// (IPv4 total length shorter than its header, UDP length below 8).
    case badLength(layer: PacketLayer, length: Int, available: Int)
    /// A well-formed packet of a kind this layer does not handle (ARP over
    /// something other than Ethernet/IPv4, a DHCP message without the magic
    /// cookie). `value` is the field that decided.
    case unsupported(layer: PacketLayer, value: UInt32)
    /// An option's type-length-value framing is broken at `offset` (from the
    /// start of the layer): zero length where that is illegal, or a length
    /// that runs past the option area.
    case badOption(layer: PacketLayer, offset: Int)
}

/// The protocol layer a `PacketError` is about.
public enum PacketLayer: UInt8, Hashable, Sendable, CaseIterable {
    case ethernet, vlan, arp
    case ipv4, icmpv4, udp, tcp
    case ipv6, ipv6Extension, icmpv6, neighborDiscovery
    case dhcpv4, geneve, vxlan
}

extension PacketLayer: CustomStringConvertible {
    public var description: String {
        switch self {
        case .ethernet: "Ethernet"
        case .vlan: "802.1Q tag"
        case .arp: "ARP"
        case .ipv4: "IPv4"
        case .icmpv4: "ICMPv4"
        case .udp: "UDP"
        case .tcp: "TCP"
        case .ipv6: "IPv6"
        case .ipv6Extension: "IPv6 extension header"
        case .icmpv6: "ICMPv6"
        case .neighborDiscovery: "neighbor discovery option"
        case .dhcpv4: "DHCPv4"
        case .geneve: "Geneve"
        case .vxlan: "VXLAN"
        }
    }
}

extension PacketError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .truncated(let layer, let needed, let available):
            "\(layer) truncated: needs \(needed) bytes, \(available) available"
        case .badVersion(let layer, let version):
            "\(layer) version \(version) is not supported"
        case .badHeaderLength(let layer, let length):
            "\(layer) header length \(length) is invalid"
        case .badLength(let layer, let length, let available):
            "\(layer) length field \(length) is invalid with \(available) bytes present"
        case .unsupported(let layer, let value):
            "\(layer) value \(value) is not supported"
        case .badOption(let layer, let offset):
            "\(layer) option at offset \(offset) is malformed"
        }
    }
}

extension PacketError {
    /// Throws `.truncated` unless `bytes` holds at least `needed` bytes.
    /// Out of line so the error construction stays off the hot path.
    @usableFromInline @inline(__always)
    static func require(_ needed: Int, in bytes: UnsafeRawBufferPointer, layer: PacketLayer) throws(PacketError) {
        if _slowPath(bytes.count < needed) { throw truncated(layer, needed, bytes.count) }
    }

    @usableFromInline @inline(never)
    static func truncated(_ layer: PacketLayer, _ needed: Int, _ available: Int) -> PacketError {
        .truncated(layer: layer, needed: needed, available: available)
    }
}
