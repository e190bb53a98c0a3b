import HivePacket

/// The flow key fields a simulation read: a bit per `FlowKey` field (plus
/// the connection state, an input that is not in the key).
///
/// A cached flow may wildcard every field not in this set: any packet that
/// agrees with the simulated one on these fields takes the same path and gets
/// the same actions. A field is marked whenever a device, a rule condition or
/// the ECMP hash looks at it, even when the look found nothing (a rule that
/// did not match still read its fields); a rule's conditions are checked in a
/// fixed order and stop at the first that fails, so the fields after it are
/// not marked, because the result did not depend on them.
public struct FlowFields: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let inPort = FlowFields(rawValue: 1 << 0)
    public static let ethernetSource = FlowFields(rawValue: 1 << 1)
    public static let ethernetDestination = FlowFields(rawValue: 1 << 2)
    public static let vlan = FlowFields(rawValue: 1 << 3)
    public static let etherType = FlowFields(rawValue: 1 << 4)
    public static let arpOperation = FlowFields(rawValue: 1 << 5)
    public static let arpSenderMAC = FlowFields(rawValue: 1 << 6)
    /// IPv4 source, or ARP sender IP.
    public static let ipv4Source = FlowFields(rawValue: 1 << 7)
    /// IPv4 destination, or ARP target IP.
    public static let ipv4Destination = FlowFields(rawValue: 1 << 8)
    public static let ipProtocol = FlowFields(rawValue: 1 << 9)
    public static let typeOfService = FlowFields(rawValue: 1 << 10)
    public static let timeToLive = FlowFields(rawValue: 1 << 11)
    public static let fragmentKind = FlowFields(rawValue: 1 << 12)
    public static let sourcePort = FlowFields(rawValue: 1 << 13)
    public static let destinationPort = FlowFields(rawValue: 1 << 14)
    public static let tcpFlags = FlowFields(rawValue: 1 << 15)
    public static let icmpType = FlowFields(rawValue: 1 << 16)
    public static let icmpCode = FlowFields(rawValue: 1 << 17)
    public static let icmpIdentifier = FlowFields(rawValue: 1 << 18)
    /// Not a `FlowKey` field: the conntrack state the caller passed in.
    public static let connectionState = FlowFields(rawValue: 1 << 19)
    public static let ipv6Source = FlowFields(rawValue: 1 << 20)

    /// Every field, in the order `names` lists them: the key's fields as
    /// the datapath's `FlowMask` names them (the same bits), with the
    /// connection state before the IPv6 source, as traces have always shown.
    public static let all: [(FlowFields, String)] = {
        var fields = FlowMask.all.map { (FlowFields(rawValue: $0.0.rawValue), $0.1) }
        fields.insert((.connectionState, "ct_state"), at: fields.count - 1)
        return fields
    }()

    /// Short names of the fields in the set (Open vSwitch's spelling), in a fixed order.
    public var names: [String] { Self.all.filter { contains($0.0) }.map(\.1) }
}

extension FlowFields: CustomStringConvertible {
    public var description: String { names.joined(separator: ",") }
}
