/// Which `FlowKey` fields a cached flow matches on: a megaflow matches
/// every packet that agrees with it on these fields and ignores the rest.
///
/// The bits are those of `HiveSimulation.FlowFields` for the same fields
/// (a test checks they agree), so the fields a simulation read become the
/// flow's mask as they are. `outerVLANID` and `ipv6Destination`, which no
/// simulation reads apart, are always matched; `vlan` covers `vlanID`.
public struct FlowMask: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let inPort = FlowMask(rawValue: 1 << 0)
    public static let ethernetSource = FlowMask(rawValue: 1 << 1)
    public static let ethernetDestination = FlowMask(rawValue: 1 << 2)
    public static let vlan = FlowMask(rawValue: 1 << 3)
    public static let etherType = FlowMask(rawValue: 1 << 4)
    public static let arpOperation = FlowMask(rawValue: 1 << 5)
    public static let arpSenderMAC = FlowMask(rawValue: 1 << 6)
    public static let ipv4Source = FlowMask(rawValue: 1 << 7)
    public static let ipv4Destination = FlowMask(rawValue: 1 << 8)
    public static let ipProtocol = FlowMask(rawValue: 1 << 9)
    public static let typeOfService = FlowMask(rawValue: 1 << 10)
    public static let timeToLive = FlowMask(rawValue: 1 << 11)
    public static let fragmentKind = FlowMask(rawValue: 1 << 12)
    public static let sourcePort = FlowMask(rawValue: 1 << 13)
    public static let destinationPort = FlowMask(rawValue: 1 << 14)
    public static let tcpFlags = FlowMask(rawValue: 1 << 15)
    public static let icmpType = FlowMask(rawValue: 1 << 16)
    public static let icmpCode = FlowMask(rawValue: 1 << 17)
    public static let icmpIdentifier = FlowMask(rawValue: 1 << 18)
    public static let ipv6Source = FlowMask(rawValue: 1 << 20)

    /// Every field: an exact-match flow.
    public static let exact: FlowMask = [
        .inPort, .ethernetSource, .ethernetDestination, .vlan, .etherType, .arpOperation, .arpSenderMAC,
        .ipv4Source, .ipv4Destination, .ipProtocol, .typeOfService, .timeToLive, .fragmentKind,
        .sourcePort, .destinationPort, .tcpFlags, .icmpType, .icmpCode, .icmpIdentifier, .ipv6Source,
    ]

    /// Every field with its short name (Open vSwitch's spelling), in a fixed order.
    public static let all: [(FlowMask, String)] = [
        (.inPort, "in_port"), (.ethernetSource, "eth_src"), (.ethernetDestination, "eth_dst"), (.vlan, "vlan"),
        (.etherType, "eth_type"), (.arpOperation, "arp_op"), (.arpSenderMAC, "arp_sha"),
        (.ipv4Source, "ip_src"), (.ipv4Destination, "ip_dst"), (.ipProtocol, "ip_proto"), (.typeOfService, "ip_tos"),
        (.timeToLive, "ip_ttl"), (.fragmentKind, "ip_frag"), (.sourcePort, "tp_src"), (.destinationPort, "tp_dst"),
        (.tcpFlags, "tcp_flags"), (.icmpType, "icmp_type"), (.icmpCode, "icmp_code"), (.icmpIdentifier, "icmp_id"),
        (.ipv6Source, "ipv6_src"),
    ]

    /// Short names of the fields matched, in `all`'s order.
    public var names: [String] { Self.all.filter { contains($0.0) }.map(\.1) }
}

extension FlowKey {
    /// The key with the fields outside `mask` zero: what a megaflow with
    /// that mask stores and looks up. No allocation.
    @inlinable
    public func masked(by mask: FlowMask) -> FlowKey {
        var masked = FlowKey(inPort: mask.contains(.inPort) ? inPort : 0)
        masked.outerVLANID = outerVLANID
        masked.ipv6Destination = ipv6Destination
        if mask.contains(.ethernetSource) { masked.ethernetSource = ethernetSource }
        if mask.contains(.ethernetDestination) { masked.ethernetDestination = ethernetDestination }
        if mask.contains(.vlan) { masked.vlanID = vlanID }
        if mask.contains(.etherType) { masked.etherType = etherType }
        if mask.contains(.arpOperation) { masked.arpOperation = arpOperation }
        if mask.contains(.arpSenderMAC) { masked.arpSenderMAC = arpSenderMAC }
        if mask.contains(.ipv4Source) { masked.ipv4Source = ipv4Source }
        if mask.contains(.ipv4Destination) { masked.ipv4Destination = ipv4Destination }
        if mask.contains(.ipProtocol) { masked.ipProtocol = ipProtocol }
        if mask.contains(.typeOfService) { masked.typeOfService = typeOfService }
        if mask.contains(.timeToLive) { masked.timeToLive = timeToLive }
        if mask.contains(.fragmentKind) { masked.fragmentKind = fragmentKind }
        if mask.contains(.sourcePort) { masked.sourcePort = sourcePort }
        if mask.contains(.destinationPort) { masked.destinationPort = destinationPort }
        if mask.contains(.tcpFlags) { masked.tcpFlags = tcpFlags }
        if mask.contains(.icmpType) { masked.icmpType = icmpType }
        if mask.contains(.icmpCode) { masked.icmpCode = icmpCode }
        if mask.contains(.icmpIdentifier) { masked.icmpIdentifier = icmpIdentifier }
        if mask.contains(.ipv6Source) { masked.ipv6Source = ipv6Source }
        return masked
    }
}
