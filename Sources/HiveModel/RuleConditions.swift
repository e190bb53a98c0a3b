import HivePacket

/// An inclusive range of L4 ports; a single port is `start == end`.
public struct PortRange: Codable, Hashable, Sendable {
    public var start: UInt16
    public var end: UInt16

    public init(start: UInt16, end: UInt16) {
        self.start = start
        self.end = end
    }

    public init(_ port: UInt16) { self.init(start: port, end: port) }

    enum CodingKeys: String, CodingKey {
        case start, end
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        start = try container.decodeField(UInt16.self, forKey: .start)
        end = try container.decodeField(UInt16.self, forKey: .end)
    }

    public func contains(_ port: UInt16) -> Bool { start <= port && port <= end }
}

extension PortRange: CustomStringConvertible {
    public var description: String { start == end ? "\(start)" : "\(start)-\(end)" }
}

/// A connection-tracking state a rule matches. A packet may be in several at
/// once (a reply is also established), as with Linux's and Open vSwitch's
/// ct_state: `established` matches every packet of a connection that has
/// seen traffic both ways, replies included; `reply` only the return
/// direction.
public enum ConnectionState: String, Codable, CaseIterable, Sendable {
    /// A connection's first packet, or a later one in the same direction
    /// before any reply.
    case new
    /// A packet of a connection that has seen traffic in both directions.
    case established
    /// Related to a tracked connection (an ICMP error about it).
    case related
    /// A packet in the return direction of a tracked connection.
    case reply
    /// Not part of a valid connection: a TCP packet other than a SYN with no
    /// connection, impossible flag combinations (SYN+FIN, SYN+RST, none).
    case invalid
}

/// Which IP fragments a rule matches. Later fragments carry no L4 header, so
/// rules on ports or ICMP fields cannot match them.
public enum FragmentPolicy: String, Codable, CaseIterable, Sendable {
    case any
    case unfragmented
    /// The first fragment, which holds the L4 header.
    case first
    /// Any fragment but the first.
    case later
}

/// IP protocol numbers the conditions need to name.
public enum IPProtocolNumber {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let sctp: UInt8 = 132
    public static let icmpv6: UInt8 = 58
}

/// The packet properties a rule matches; a rule matches when every set
/// condition does. No conditions match every packet.
public struct RuleConditions: Codable, Hashable, Sendable {
    /// The port the packet entered the device by.
    public var inPorts: Match<[PortID]>?
    /// The port the packet will leave the device by (outbound chains).
    public var outPorts: Match<[PortID]>?
    public var inPortGroup: Match<PortGroupID>?
    public var outPortGroup: Match<PortGroupID>?
    public var etherType: Match<UInt16>?
    public var sourceMAC: Match<EthernetAddress>?
    public var destinationMAC: Match<EthernetAddress>?
    public var ipProtocol: Match<UInt8>?
    /// In network form.
    public var sourcePrefix: Match<IPv4.Prefix>?
    /// In network form.
    public var destinationPrefix: Match<IPv4.Prefix>?
    public var sourceAddressGroup: Match<IPAddressGroupID>?
    public var destinationAddressGroup: Match<IPAddressGroupID>?
    /// Needs `ipProtocol` TCP, UDP or SCTP, not inverted.
    public var sourcePorts: Match<PortRange>?
    /// Needs `ipProtocol` TCP, UDP or SCTP, not inverted.
    public var destinationPorts: Match<PortRange>?
    /// Needs `ipProtocol` ICMP, not inverted.
    public var icmpType: Match<UInt8>?
    /// Needs `icmpType` too.
    public var icmpCode: Match<UInt8>?
    public var connectionState: Match<ConnectionState>?
    public var fragments: Match<FragmentPolicy>?

    public init(
        inPorts: Match<[PortID]>? = nil, outPorts: Match<[PortID]>? = nil,
        inPortGroup: Match<PortGroupID>? = nil, outPortGroup: Match<PortGroupID>? = nil,
        etherType: Match<UInt16>? = nil,
        sourceMAC: Match<EthernetAddress>? = nil, destinationMAC: Match<EthernetAddress>? = nil,
        ipProtocol: Match<UInt8>? = nil,
        sourcePrefix: Match<IPv4.Prefix>? = nil, destinationPrefix: Match<IPv4.Prefix>? = nil,
        sourceAddressGroup: Match<IPAddressGroupID>? = nil, destinationAddressGroup: Match<IPAddressGroupID>? = nil,
        sourcePorts: Match<PortRange>? = nil, destinationPorts: Match<PortRange>? = nil,
        icmpType: Match<UInt8>? = nil, icmpCode: Match<UInt8>? = nil,
        connectionState: Match<ConnectionState>? = nil, fragments: Match<FragmentPolicy>? = nil
    ) {
        self.inPorts = inPorts
        self.outPorts = outPorts
        self.inPortGroup = inPortGroup
        self.outPortGroup = outPortGroup
        self.etherType = etherType
        self.sourceMAC = sourceMAC
        self.destinationMAC = destinationMAC
        self.ipProtocol = ipProtocol
        self.sourcePrefix = sourcePrefix
        self.destinationPrefix = destinationPrefix
        self.sourceAddressGroup = sourceAddressGroup
        self.destinationAddressGroup = destinationAddressGroup
        self.sourcePorts = sourcePorts
        self.destinationPorts = destinationPorts
        self.icmpType = icmpType
        self.icmpCode = icmpCode
        self.connectionState = connectionState
        self.fragments = fragments
    }

    // Synthesized coding: every field is optional, decoded with decodeIfPresent
    // and omitted when nil. These names are the JSON contract.
    enum CodingKeys: String, CodingKey {
        case inPorts, outPorts, inPortGroup, outPortGroup, etherType, sourceMAC, destinationMAC
        case ipProtocol, sourcePrefix, destinationPrefix, sourceAddressGroup, destinationAddressGroup
        case sourcePorts, destinationPorts, icmpType, icmpCode, connectionState, fragments
    }

    /// True when no condition is set, so the rule matches every packet.
    public var isEmpty: Bool { self == RuleConditions() }
}

// MARK: References

extension RuleConditions {
    /// Ports, port groups and address groups named; each must exist, and
    /// cannot be deleted while a rule names it. Fields are prefixed "conditions.".
    public var references: [ObjectReference] {
        var references: [ObjectReference] = []
        func add<Target: TopologyObject>(_ id: ObjectID<Target>?, _ field: String) {
            if let id {
                references.append(ObjectReference(id, field: "conditions.\(field)", onTargetDeletion: .refuse))
            }
        }
        for (index, port) in (inPorts?.value ?? []).enumerated() { add(port, "inPorts[\(index)]") }
        for (index, port) in (outPorts?.value ?? []).enumerated() { add(port, "outPorts[\(index)]") }
        add(inPortGroup?.value, "inPortGroup")
        add(outPortGroup?.value, "outPortGroup")
        add(sourceAddressGroup?.value, "sourceAddressGroup")
        add(destinationAddressGroup?.value, "destinationAddressGroup")
        return references
    }
}

// MARK: Validation

extension RuleConditions {
    /// Adds problems with field paths prefixed "conditions.".
    func validate(into problems: inout ValidationProblems) {
        let field = { (name: String) in "conditions.\(name)" }

        for (name, ports) in [("inPorts", inPorts), ("outPorts", outPorts)] {
            guard let ports else { continue }
            if ports.value.isEmpty {
                problems.add(field(name), "[]", "lists no ports (expected at least one port id, or omit the condition)")
            }
            problems.checkNoDuplicates(ports.value, field: field(name), what: "port")
        }
        for (name, prefix) in [("sourcePrefix", sourcePrefix), ("destinationPrefix", destinationPrefix)] {
            if let prefix { problems.checkNetworkForm(prefix.value, field: field(name)) }
        }

        // L4 ports only exist for TCP, UDP and SCTP; an inverted protocol admits others.
        let transport: Set<UInt8> = [IPProtocolNumber.tcp, IPProtocolNumber.udp, IPProtocolNumber.sctp]
        let hasPortProtocol = ipProtocol.map { !$0.invert && transport.contains($0.value) } ?? false
        for (name, range) in [("sourcePorts", sourcePorts), ("destinationPorts", destinationPorts)] {
            guard let range else { continue }
            if range.value.start > range.value.end {
                problems.add(field(name), range.value, "has start above end (expected start <= end, like 80-443)")
            }
            if !hasPortProtocol {
                problems.add(field(name), range, "needs ipProtocol 6 (TCP), 17 (UDP) or 132 (SCTP), not inverted\(protocolNote)")
            }
        }

        let hasICMP = ipProtocol.map { !$0.invert && $0.value == IPProtocolNumber.icmp } ?? false
        for (name, match) in [("icmpType", icmpType), ("icmpCode", icmpCode)] {
            if let match, !hasICMP {
                problems.add(field(name), match, "needs ipProtocol 1 (ICMP), not inverted\(protocolNote)")
            }
        }
        if let icmpCode, icmpType == nil {
            problems.add(field("icmpCode"), icmpCode, "needs icmpType as well (a code only has meaning within a type)")
        }

        if let fragments, fragments.value == .later, !fragments.invert,
           sourcePorts != nil || destinationPorts != nil || icmpType != nil || icmpCode != nil {
            problems.add(field("fragments"), fragments, "cannot be combined with port or ICMP conditions: later fragments carry no L4 header (expected 'first', 'unfragmented' or 'any')")
        }
    }

    /// What ipProtocol currently says, for the messages above.
    private var protocolNote: String {
        guard let ipProtocol else { return "; ipProtocol is not set" }
        return "; ipProtocol is \(ipProtocol)"
    }
}
