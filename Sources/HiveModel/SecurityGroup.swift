import Foundation
import HivePacket

/// A set of allow rules applied to every port that lists it
/// (`Port.securityGroupIds`), with OpenStack Neutron's semantics: stateful
/// (the replies of an allowed connection pass both ways), allow-only (a port
/// with groups drops what none of its groups' rules allow, in both
/// directions), and a rule's remote may be another group (its members'
/// addresses). Rules are objects of their own (`SecurityGroupRule`).
public struct SecurityGroup: TopologyObject {
    public static let kind = ObjectKind.securityGroup

    /// The name of the group whose members may reach each other: created with
    /// an ingress rule from its own members, as Neutron's per-tenant "default".
    public static let defaultName = "default"

    public var id: SecurityGroupID
    public var tenantId: String?
    /// Unique per tenant.
    public var name: String
    public var description: String?

    public init(id: SecurityGroupID = SecurityGroupID(), tenantId: String? = nil, name: String, description: String? = nil) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.description = description
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, name, description
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(SecurityGroupID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        name = try container.decode(String.self, forKey: .name)
        description = try container.decodeIfPresent(String.self, forKey: .description)
    }

    public var references: [ObjectReference] { [] }

    public var uniqueKeys: [String] {
        [UniqueKey.tenantScoped(tenantId: tenantId, name: name)]
    }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkTenant(tenantId)
        problems.checkName(name)
        if let description, description.utf8.count > 1024 {
            problems.add("description", "\(description.prefix(32))...", "is \(description.utf8.count) bytes long (expected at most 1024)")
        }
        try problems.check()
    }

    /// The rules a new group starts with: all egress (IPv4 and IPv6), and for
    /// the group named `defaultName`, ingress from its own members too.
    public func initialRules() -> [SecurityGroupRule] {
        var rules = [
            SecurityGroupRule(tenantId: tenantId, securityGroupId: id, direction: .egress, etherType: .ipv4),
            SecurityGroupRule(tenantId: tenantId, securityGroupId: id, direction: .egress, etherType: .ipv6),
        ]
        if name == Self.defaultName {
            rules.append(SecurityGroupRule(tenantId: tenantId, securityGroupId: id, direction: .ingress, etherType: .ipv4, remoteGroupId: id))
            rules.append(SecurityGroupRule(tenantId: tenantId, securityGroupId: id, direction: .ingress, etherType: .ipv6, remoteGroupId: id))
        }
        return rules
    }
}

/// Which traffic a security group rule is about, seen from the port.
public enum TrafficDirection: String, Codable, CaseIterable, Sendable {
    /// To the port (the VM receives it).
    case ingress
    /// From the port (the VM sends it).
    case egress
}

/// The IP version a security group rule applies to.
public enum RuleEtherType: String, Codable, CaseIterable, Sendable {
    case ipv4 = "IPv4"
    case ipv6 = "IPv6"
}

/// One allow rule of a security group. Unset fields match anything: a rule
/// with only a direction allows all of that direction's traffic.
public struct SecurityGroupRule: TopologyObject {
    public static let kind = ObjectKind.securityGroupRule

    public var id: SecurityGroupRuleID
    public var tenantId: String?
    /// The group the rule belongs to; deleting the group deletes its rules.
    public var securityGroupId: SecurityGroupID
    public var direction: TrafficDirection
    public var etherType: RuleEtherType
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...); nil: any.
    public var ipProtocol: UInt8?
    /// TCP, UDP or SCTP: the destination port range (of the connection's
    /// first packet, whichever the direction); nil: any port.
    public var ports: PortRange?
    /// ICMP or ICMPv6: the type; nil: any.
    public var icmpType: UInt8?
    /// ICMP or ICMPv6: the code; needs `icmpType`; nil: any.
    public var icmpCode: UInt8?
    /// The peer's addresses (the source for ingress, the destination for
    /// egress), in network form; IPv4 only. Nil with no `remoteGroupId`: any.
    public var remotePrefix: IPv4.Prefix?
    /// The peer is a member of this group: any of its ports' fixed IPs and
    /// allowed address pairs.
    public var remoteGroupId: SecurityGroupID?
    public var description: String?

    public init(
        id: SecurityGroupRuleID = SecurityGroupRuleID(), tenantId: String? = nil, securityGroupId: SecurityGroupID,
        direction: TrafficDirection, etherType: RuleEtherType = .ipv4, ipProtocol: UInt8? = nil, ports: PortRange? = nil,
        icmpType: UInt8? = nil, icmpCode: UInt8? = nil, remotePrefix: IPv4.Prefix? = nil, remoteGroupId: SecurityGroupID? = nil,
        description: String? = nil
    ) {
        self.id = id
        self.tenantId = tenantId
        self.securityGroupId = securityGroupId
        self.direction = direction
        self.etherType = etherType
        self.ipProtocol = ipProtocol
        self.ports = ports
        self.icmpType = icmpType
        self.icmpCode = icmpCode
        self.remotePrefix = remotePrefix
        self.remoteGroupId = remoteGroupId
        self.description = description
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, securityGroupId, direction, etherType, ipProtocol, ports, icmpType, icmpCode
        case remotePrefix, remoteGroupId, description
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(SecurityGroupRuleID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        securityGroupId = try container.decode(SecurityGroupID.self, forKey: .securityGroupId)
        direction = try container.decode(TrafficDirection.self, forKey: .direction)
        etherType = try container.decode(RuleEtherType.self, forKey: .etherType, default: .ipv4)
        ipProtocol = try container.decodeFieldIfPresent(UInt8.self, forKey: .ipProtocol)
        ports = try container.decodeIfPresent(PortRange.self, forKey: .ports)
        icmpType = try container.decodeFieldIfPresent(UInt8.self, forKey: .icmpType)
        icmpCode = try container.decodeFieldIfPresent(UInt8.self, forKey: .icmpCode)
        remotePrefix = try container.decodeIfPresent(IPv4.Prefix.self, forKey: .remotePrefix)
        remoteGroupId = try container.decodeIfPresent(SecurityGroupID.self, forKey: .remoteGroupId)
        description = try container.decodeIfPresent(String.self, forKey: .description)
    }

    public var references: [ObjectReference] {
        var references = [ObjectReference(securityGroupId, field: "securityGroupId", onTargetDeletion: .cascade)]
        // A rule of the group itself (the default group's "from my members")
        // goes with the group; another group's rule keeps it alive, as in Neutron.
        if let remoteGroupId, remoteGroupId != securityGroupId {
            references.append(ObjectReference(remoteGroupId, field: "remoteGroupId", onTargetDeletion: .refuse))
        }
        return references
    }

    /// Two rules of a group that allow the same traffic are one rule (Neutron
    /// refuses the second as a duplicate).
    public var uniqueKeys: [String] {
        [UniqueKey.securityGroupRule(self)]
    }

    /// The protocol numbers whose rules may name ports and ICMP fields.
    static let portProtocols: Set<UInt8> = [IPProtocolNumber.tcp, IPProtocolNumber.udp, IPProtocolNumber.sctp]
    static let icmpProtocols: Set<UInt8> = [IPProtocolNumber.icmp, IPProtocolNumber.icmpv6]

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkTenant(tenantId)
        let protocolNote = ipProtocol.map { "; ipProtocol is \($0)" } ?? "; ipProtocol is not set"
        if let ports {
            if ports.start > ports.end {
                problems.add("ports", ports, "has start above end (expected start <= end, like 8000-8080)")
            }
            if !Self.portProtocols.contains(ipProtocol ?? 0) {
                problems.add("ports", ports, "needs ipProtocol 6 (TCP), 17 (UDP) or 132 (SCTP)\(protocolNote)")
            }
        }
        let icmp = etherType == .ipv4 ? IPProtocolNumber.icmp : IPProtocolNumber.icmpv6
        for (name, value) in [("icmpType", icmpType), ("icmpCode", icmpCode)] {
            if let value, ipProtocol != icmp {
                problems.add(name, value, "needs ipProtocol \(icmp) (\(etherType == .ipv4 ? "ICMP" : "ICMPv6") for \(etherType.rawValue))\(protocolNote)")
            }
        }
        if let icmpCode, icmpType == nil {
            problems.add("icmpCode", icmpCode, "needs icmpType as well (a code only has meaning within a type)")
        }
        if let remotePrefix {
            problems.checkNetworkForm(remotePrefix, field: "remotePrefix")
            if etherType == .ipv6 {
                problems.add("remotePrefix", remotePrefix, "is an IPv4 network on an IPv6 rule (expected etherType IPv4, or a remoteGroupId or no remote)")
            }
            if remoteGroupId != nil {
                problems.add("remoteGroupId", remoteGroupId!, "cannot be combined with remotePrefix (expected one remote: a network, a group, or neither for any)")
            }
        }
        if let description, description.utf8.count > 1024 {
            problems.add("description", "\(description.prefix(32))...", "is \(description.utf8.count) bytes long (expected at most 1024)")
        }
        try problems.check()
    }
}
