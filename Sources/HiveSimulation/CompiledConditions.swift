import HiveModel
import HivePacket

/// Which conditions of a rule are set (and, in `inverted`, which are negated).
struct ConditionSet: OptionSet, Hashable, Sendable {
    var rawValue: UInt32

    static let inPorts = ConditionSet(rawValue: 1 << 0)
    static let outPorts = ConditionSet(rawValue: 1 << 1)
    static let inPortGroup = ConditionSet(rawValue: 1 << 2)
    static let outPortGroup = ConditionSet(rawValue: 1 << 3)
    static let etherType = ConditionSet(rawValue: 1 << 4)
    static let sourceMAC = ConditionSet(rawValue: 1 << 5)
    static let destinationMAC = ConditionSet(rawValue: 1 << 6)
    static let ipProtocol = ConditionSet(rawValue: 1 << 7)
    static let sourcePrefix = ConditionSet(rawValue: 1 << 8)
    static let destinationPrefix = ConditionSet(rawValue: 1 << 9)
    static let sourceAddressGroup = ConditionSet(rawValue: 1 << 10)
    static let destinationAddressGroup = ConditionSet(rawValue: 1 << 11)
    static let sourcePorts = ConditionSet(rawValue: 1 << 12)
    static let destinationPorts = ConditionSet(rawValue: 1 << 13)
    static let icmpType = ConditionSet(rawValue: 1 << 14)
    static let icmpCode = ConditionSet(rawValue: 1 << 15)
    static let connectionState = ConditionSet(rawValue: 1 << 16)
    static let fragments = ConditionSet(rawValue: 1 << 17)

    static let portConditions = ConditionSet(rawValue: 0b1111)
    static let ipConditions = ConditionSet(rawValue: (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (0b1111 << 12))
    static let transportConditions = ConditionSet(rawValue: 0b1111 << 12)
}

/// `RuleConditions` flattened into a trivial value: a bit per set
/// condition, plain fields, and indices instead of ids.
struct CompiledConditions: Sendable {
    var present: ConditionSet = []
    var inverted: ConditionSet = []
    var inPorts = IndexRange.empty
    var outPorts = IndexRange.empty
    var inPortGroup = noIndex
    var outPortGroup = noIndex
    var etherType: UInt16 = 0
    var sourceMAC = EthernetAddress.zero
    var destinationMAC = EthernetAddress.zero
    var ipProtocol: UInt8 = 0
    var sourcePrefix = MaskedPrefix(IPv4.Prefix(address: .any, length: 0))
    var destinationPrefix = MaskedPrefix(IPv4.Prefix(address: .any, length: 0))
    var sourceAddressGroup = noIndex
    var destinationAddressGroup = noIndex
    var sourcePorts = PortRange(start: 0, end: 0)
    var destinationPorts = PortRange(start: 0, end: 0)
    var icmpType: UInt8 = 0
    var icmpCode: UInt8 = 0
    var connectionState = ConnectionState.new
    var fragments = FragmentPolicy.any

    mutating func set<V>(_ condition: ConditionSet, _ match: Match<V>?, _ store: (inout CompiledConditions, V) -> Void) {
        guard let match else { return }
        present.insert(condition)
        if match.invert { inverted.insert(condition) }
        store(&self, match.value)
    }
}
