import HiveModel
import HivePacket

// Security groups, compiled for the simulation's hot path.
//
// Every distinct set of groups a port lists becomes one *policy* (ports with
// the same groups share it). A policy's rules are indexed by (policy,
// direction, IP version, protocol, port); a `PolicyHead` per (policy,
// direction, version) holds the rules of any protocol and bitmaps of the
// protocols with rules on no exact port (ranges, ICMP types, no port) and
// on an exact one, so only an existing bucket costs a hash lookup (at most
// two), then a remote check for each candidate: a
// network's mask compare, or a remote group's member addresses by binary
// search (host addresses) and a short scan (networks of allowed address
// pairs). Nothing allocates; the cost grows with the rules that share a
// protocol and port, not with the rules of the policy.

/// A rule as the index keeps it: trivial.
struct PolicyRule: Sendable {
    var id: SecurityGroupRuleID
    var ports: PortRange
    /// -1: any.
    var icmpType: Int16
    var icmpCode: Int16
    var remote: RemoteKind
    var prefix: MaskedPrefix
    /// Remote group index (into `SecurityPolicyTable.groupIDs`).
    var group: Int32

    enum RemoteKind: UInt8, Sendable { case any, prefix, group }
}

/// (policy, direction, IP version, protocol, port) -> candidate rules.
struct PolicyKey: Hashable, Sendable {
    var policy: Int32
    /// 0 ingress, 1 egress.
    var direction: UInt8
    /// 4 or 6.
    var version: UInt8
    /// 0...255, or `anyProtocol`.
    var ipProtocol: UInt16
    /// An exact destination port, or `generalPort`.
    var port: Int32

    static let anyProtocol: UInt16 = 256
    static let generalPort: Int32 = -1

    // One word into the hasher.
    func hash(into hasher: inout Hasher) {
        hasher.combine(UInt64(UInt32(bitPattern: policy)) << 32 | UInt64(direction) << 31 | UInt64(version & 0x7) << 28
            | UInt64(ipProtocol) << 17 | UInt64(UInt32(bitPattern: port) & 0x1FFFF))
    }
}

/// A 256-bit set of IP protocol numbers.
struct ProtocolSet: Sendable {
    var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    @inline(__always)
    func contains(_ number: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(number & 63)
        switch number >> 6 {
        case 0: return words.0 & bit != 0
        case 1: return words.1 & bit != 0
        case 2: return words.2 & bit != 0
        default: return words.3 & bit != 0
        }
    }

    mutating func insert(_ number: UInt8) {
        let bit = UInt64(1) << UInt64(number & 63)
        switch number >> 6 {
        case 0: words.0 |= bit
        case 1: words.1 |= bit
        case 2: words.2 |= bit
        default: words.3 |= bit
        }
    }
}

/// What one (policy, direction, IP version) has, found without hashing.
struct PolicyHead: Sendable {
    /// Rules of any protocol.
    var any = IndexRange.empty
    /// Protocols with rules on no exact port.
    var general = ProtocolSet()
    /// Protocols with rules on an exact port.
    var exact = ProtocolSet()
}

/// The compiled security groups, held by the topology in a final class
/// with a constant property: one retain to read, no exclusivity checks.
final class SecurityPolicyTable: Sendable {
    let data: SecurityPolicyData

    init(_ data: SecurityPolicyData) { self.data = data }

    /// `SecurityPolicyData.allowingRule`, called on the class so the data is not copied.
    @inline(__always)
    func allowingRule(
        policy: Int32, direction: TrafficDirection, version: UInt8, ipProtocol: UInt8, port: UInt16?,
        icmpType: UInt8?, icmpCode: UInt8, remote: IPv4.Address?
    ) -> SecurityGroupRuleID? {
        data.allowingRule(
            policy: policy, direction: direction, version: version, ipProtocol: ipProtocol, port: port, icmpType: icmpType,
            icmpCode: icmpCode, remote: remote)
    }
}

struct SecurityPolicyData: Sendable {
    /// By `head(policy:direction:version:)`.
    var heads: [PolicyHead] = []
    var index: [PolicyKey: IndexRange] = [:]
    var rules: [PolicyRule] = []
    /// Each policy's groups and the remote groups its rules name, for tags.
    var policyTags: [IndexRange] = []
    var tagGroups: [SecurityGroupID] = []
    var tagRemotes: [IndexRange] = []
    var tagRemoteGroups: [SecurityGroupID] = []
    /// Members of each group: host addresses (sorted) and networks.
    var groupIDs: [SecurityGroupID] = []
    var groupHosts: [IndexRange] = []
    var hostAddresses: [UInt32] = []
    var groupNetworks: [IndexRange] = []
    var networks: [MaskedPrefix] = []

    @inline(__always)
    static func head(policy: Int32, direction: UInt8, version: UInt8) -> Int {
        Int(policy) &* 4 &+ Int(direction) &* 2 &+ (version == 6 ? 1 : 0)
    }

    /// Whether `address` is one of group `group`'s members' addresses.
    /// - Complexity: O(log hosts + networks); no allocation.
    @inline(__always)
    func groupContains(_ group: Int32, _ address: IPv4.Address) -> Bool {
        let hosts = groupHosts[Int(group)]
        var low = Int(hosts.start)
        var high = Int(hosts.end)
        let value = address.value
        while low < high {
            let middle = (low + high) >> 1
            let candidate = hostAddresses[middle]
            if candidate == value { return true }
            if candidate < value { low = middle + 1 } else { high = middle }
        }
        for index in groupNetworks[Int(group)].range where networks[index].contains(address) { return true }
        return false
    }

    /// The rule of `policy` that allows the packet, or nil.
    /// - Parameters:
    ///   - remote: the peer's address (the source for ingress, the destination for egress).
    /// - Complexity: at most three hash lookups and the candidates' checks; no allocation.
    func allowingRule(
        policy: Int32, direction: TrafficDirection, version: UInt8, ipProtocol: UInt8, port: UInt16?,
        icmpType: UInt8?, icmpCode: UInt8, remote: IPv4.Address?
    ) -> SecurityGroupRuleID? {
        let directionCode: UInt8 = direction == .ingress ? 0 : 1
        let head = heads[Self.head(policy: policy, direction: directionCode, version: version)]
        if !head.any.isEmpty, let rule = firstAllowing(head.any, port: port, icmpType: icmpType, icmpCode: icmpCode, remote: remote) {
            return rule
        }
        var key = PolicyKey(policy: policy, direction: directionCode, version: version, ipProtocol: UInt16(ipProtocol), port: PolicyKey.generalPort)
        if head.general.contains(ipProtocol), let range = index[key],
           let rule = firstAllowing(range, port: port, icmpType: icmpType, icmpCode: icmpCode, remote: remote) {
            return rule
        }
        if let port, head.exact.contains(ipProtocol) {
            key.port = Int32(port)
            if let range = index[key], let rule = firstAllowing(range, port: port, icmpType: icmpType, icmpCode: icmpCode, remote: remote) {
                return rule
            }
        }
        return nil
    }

    @inline(__always)
    private func firstAllowing(_ range: IndexRange, port: UInt16?, icmpType: UInt8?, icmpCode: UInt8, remote: IPv4.Address?) -> SecurityGroupRuleID? {
        for index in range.range {
            let rule = rules[index]
            if rule.ports.start != 0 || rule.ports.end != 65535 {
                guard let port, rule.ports.contains(port) else { continue }
            }
            if rule.icmpType >= 0 {
                guard let icmpType, rule.icmpType == Int16(icmpType) else { continue }
                if rule.icmpCode >= 0, rule.icmpCode != Int16(icmpCode) { continue }
            }
            switch rule.remote {
            case .any: return rule.id
            case .prefix: if let remote, rule.prefix.contains(remote) { return rule.id }
            case .group: if let remote, groupContains(rule.group, remote) { return rule.id }
            }
        }
        return nil
    }
}

/// Builds the policies of a snapshot's ports.
struct SecurityPolicyBuilder {
    var table = SecurityPolicyData()
    private var policyByGroups: [[SecurityGroupID]: Int32] = [:]
    private let groupIndex: [SecurityGroupID: Int32]
    private let rulesByGroup: [SecurityGroupID: [SecurityGroupRule]]

    init(groups: [SecurityGroup], rules: [SecurityGroupRule], ports: [Port]) {
        groupIndex = Dictionary(uniqueKeysWithValues: groups.enumerated().map { ($1.id, Int32($0)) })
        rulesByGroup = Dictionary(grouping: rules, by: \.securityGroupId)
        table.groupIDs = groups.map(\.id)
        // Members' addresses: fixed IPs and allowed address pairs of ports with port security.
        var hosts: [Int32: [UInt32]] = [:]
        var networks: [Int32: [MaskedPrefix]] = [:]
        for port in ports where port.deviceKind == .bridge && port.portSecurity {
            for group in port.securityGroupIds {
                guard let index = groupIndex[group] else { continue }
                for address in port.fixedIPs where address != Port.automaticAddress { hosts[index, default: []].append(address.value) }
                for pair in port.allowedAddressPairs {
                    if pair.prefix.length == 32 {
                        hosts[index, default: []].append(pair.prefix.address.value)
                    } else {
                        networks[index, default: []].append(MaskedPrefix(pair.prefix))
                    }
                }
            }
        }
        for index in groups.indices {
            let start = Int32(table.hostAddresses.count)
            table.hostAddresses += Array(Set(hosts[Int32(index)] ?? [])).sorted()
            table.groupHosts.append(IndexRange(start: start, end: Int32(table.hostAddresses.count)))
            let networkStart = Int32(table.networks.count)
            table.networks += networks[Int32(index)] ?? []
            table.groupNetworks.append(IndexRange(start: networkStart, end: Int32(table.networks.count)))
        }
    }

    /// The policy of a port listing `groups` (shared by ports listing the same
    /// set); `noIndex` when it lists none that exists.
    mutating func policy(for groups: [SecurityGroupID]) -> Int32 {
        let known = groups.filter { groupIndex[$0] != nil }.sorted()
        guard !known.isEmpty else { return noIndex }
        if let existing = policyByGroups[known] { return existing }
        let policy = Int32(table.policyTags.count)
        policyByGroups[known] = policy
        table.heads += Array(repeating: PolicyHead(), count: 4)
        let tagStart = Int32(table.tagGroups.count)
        table.tagGroups += known
        table.policyTags.append(IndexRange(start: tagStart, end: Int32(table.tagGroups.count)))

        var buckets: [PolicyKey: [PolicyRule]] = [:]
        var remotes: Set<SecurityGroupID> = []
        for group in known {
            for rule in rulesByGroup[group] ?? [] {
                var compiled = PolicyRule(
                    id: rule.id, ports: rule.ports ?? PortRange(start: 0, end: 65535),
                    icmpType: rule.icmpType.map(Int16.init) ?? -1, icmpCode: rule.icmpCode.map(Int16.init) ?? -1,
                    remote: .any, prefix: MaskedPrefix(IPv4.Prefix(address: .any, length: 0)), group: noIndex)
                if let prefix = rule.remotePrefix {
                    compiled.remote = .prefix
                    compiled.prefix = MaskedPrefix(prefix)
                } else if let remote = rule.remoteGroupId {
                    // A remote group missing from the snapshot has no members: the rule matches nothing.
                    guard let index = groupIndex[remote] else { continue }
                    compiled.remote = .group
                    compiled.group = index
                    remotes.insert(remote)
                }
                var key = PolicyKey(
                    policy: policy, direction: rule.direction == .ingress ? 0 : 1, version: rule.etherType == .ipv4 ? 4 : 6,
                    ipProtocol: rule.ipProtocol.map(UInt16.init) ?? PolicyKey.anyProtocol, port: PolicyKey.generalPort)
                if let ports = rule.ports, ports.start == ports.end { key.port = Int32(ports.start) }
                buckets[key, default: []].append(compiled)
            }
        }
        // Rules with any remote first: they allow without a member lookup.
        for (key, rules) in buckets {
            let start = Int32(table.rules.count)
            table.rules += rules.filter { $0.remote == .any } + rules.filter { $0.remote != .any }
            let range = IndexRange(start: start, end: Int32(table.rules.count))
            let head = SecurityPolicyData.head(policy: policy, direction: key.direction, version: key.version)
            if key.ipProtocol == PolicyKey.anyProtocol {
                table.heads[head].any = range
            } else {
                table.index[key] = range
                if key.port == PolicyKey.generalPort {
                    table.heads[head].general.insert(UInt8(key.ipProtocol))
                } else {
                    table.heads[head].exact.insert(UInt8(key.ipProtocol))
                }
            }
        }
        let remoteStart = Int32(table.tagRemoteGroups.count)
        table.tagRemoteGroups += remotes.sorted()
        table.tagRemotes.append(IndexRange(start: remoteStart, end: Int32(table.tagRemoteGroups.count)))
        return policy
    }
}
