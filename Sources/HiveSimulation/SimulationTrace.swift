import HiveModel
import HivePacket

/// Where a chain was applied.
public enum ChainHook: String, Hashable, Sendable {
    case portInbound = "port inbound"
    case deviceInbound = "device inbound"
    case deviceOutbound = "device outbound"
    case portOutbound = "port outbound"
}

/// A chain's outcome.
public enum ChainVerdict: Hashable, Sendable {
    /// A rule accepted, or the chain (or a `return` at its top) ended.
    case accept(RuleID?)
    case drop(RuleID)
    case reject(RuleID)
    /// Stopped by a jump loop, a too-deep jump, or a missing chain.
    case error(RuleID)
}

/// One typed step of a simulation.
public enum TraceEvent: Hashable, Sendable {
    /// The packet enters a device through `port`.
    case enterPort(PortID)
    case bridge(BridgeID)
    case router(RouterID)
    /// A chain starts; `port` is the port of a port hook.
    case chain(ChainID, ChainHook, port: PortID?)
    /// A rule was evaluated; `matched` says whether its conditions held.
    case rule(RuleID, matched: Bool, action: RuleAction)
    case jump(from: ChainID, to: ChainID)
    case returnTo(ChainID)
    case chainVerdict(ChainID, ChainVerdict)
    case learnMAC(EthernetAddress, PortID)
    /// A destination MAC lookup: `port` nil when unknown; `isStatic` for router ports behind interior links.
    case macLookup(EthernetAddress, port: PortID?, isStatic: Bool)
    case arpSuppressed(IPv4.Address, EthernetAddress)
    /// The bridge's DHCP server answered (with the address it handed out), or kept silent.
    case dhcpAnswered(IPv4.Address?)
    /// An ARP request for a linked router port's address sent to that port only.
    case arpToRouterPort(IPv4.Address, PortID)
    case arpReplyLearned(IPv4.Address, EthernetAddress)
    case routeLookup(IPv4.Address, route: RouteID?, equalCost: Int)
    case ecmp(chosen: Int, of: Int, hash: UInt64)
    case decrementTimeToLive(to: UInt8)
    case nextHop(IPv4.Address, mac: EthernetAddress?)
    case generated(GeneratedPacket.Kind, PortID)
    case flood(BridgeID, ports: Int)
    case leavePort(PortID)
    case link(from: PortID, to: PortID)
    case decision(SimulationDecision)
    /// Connection tracking in a zone: the packet's states there.
    case connection(zone: UInt32, ConnectionStates)
    /// A port's security groups: the rule that allowed the packet, or none
    /// (allowed by its connection's state, or dropped).
    case securityGroup(PortID, TrafficDirection, rule: SecurityGroupRuleID?, allowed: Bool)
    /// NAT translated the packet; `to` is its addresses and ports after the
    /// router (for a new connection as decided so far).
    case nat(NATStepKind, to: ConnectionKey)
}

/// Why NAT translated a packet.
public enum NATStepKind: String, Hashable, Sendable {
    case existing = "by its connection"
    case floatingDestination = "floating IP DNAT"
    case floatingSource = "floating IP SNAT"
    case gatewaySource = "gateway SNAT"
    case ruleDestination = "DNAT rule"
    case ruleSource = "SNAT rule"
    case error = "an ICMP error about a translated connection; the quoted datagram as sent"
}

/// A step and its depth in the trace tree: devices at 1, their chains at 2,
/// rules at 3, and one more per jump.
public struct TraceStep: Hashable, Sendable {
    public var depth: Int
    public var event: TraceEvent

    /// True for the steps a summary keeps: ports, devices, matched rules,
    /// verdicts that stopped the packet, learning, routing and the decision.
    public var isSummary: Bool {
        switch event {
        case .rule(_, let matched, let action): matched && action != .continue
        case .chainVerdict(_, let verdict): if case .accept = verdict { false } else { true }
        case .chain, .jump, .returnTo, .macLookup, .ecmp, .decrementTimeToLive: false
        default: true
        }
    }
}

/// The steps of one simulation, recorded when asked for.
public struct SimulationTrace: Hashable, Sendable {
    public internal(set) var steps: [TraceStep] = []

    public init() {}

    public enum Detail: Sendable {
        case full
        case summary
    }

    /// One line per step, indented by depth, naming objects as `snapshot` knows them.
    public func lines(in snapshot: TopologySnapshot, detail: Detail = .full) -> [String] {
        var lines: [String] = []
        for step in steps where detail == .full || step.isSummary {
            let indent = String(repeating: "  ", count: detail == .full ? max(0, step.depth - 1) : (step.depth > 1 ? 1 : 0))
            lines.append(indent + step.event.text(in: snapshot))
        }
        return lines
    }

    public func rendered(in snapshot: TopologySnapshot, detail: Detail = .full) -> String {
        lines(in: snapshot, detail: detail).joined(separator: "\n")
    }
}

extension TraceEvent {
    /// A short machine-readable kind, for JSON.
    public var kind: String {
        switch self {
        case .enterPort: "enter-port"
        case .bridge: "bridge"
        case .router: "router"
        case .chain: "chain"
        case .rule: "rule"
        case .jump: "jump"
        case .returnTo: "return"
        case .chainVerdict: "chain-verdict"
        case .learnMAC: "learn-mac"
        case .macLookup: "mac-lookup"
        case .arpSuppressed: "arp-suppressed"
        case .dhcpAnswered: "dhcp"
        case .arpToRouterPort: "arp-to-router-port"
        case .arpReplyLearned: "arp-reply-learned"
        case .routeLookup: "route-lookup"
        case .ecmp: "ecmp"
        case .decrementTimeToLive: "dec-ttl"
        case .nextHop: "next-hop"
        case .generated: "generated"
        case .flood: "flood"
        case .leavePort: "leave-port"
        case .link: "link"
        case .decision: "decision"
        case .connection: "conntrack"
        case .securityGroup: "security-group"
        case .nat: "nat"
        }
    }

    /// The step as a person reads it.
    public func text(in snapshot: TopologySnapshot) -> String {
        switch self {
        case .enterPort(let port): return "port \(snapshot.name(of: port)): in"
        case .bridge(let id): return "bridge \(snapshot.name(of: id))"
        case .router(let id): return "router \(snapshot.name(of: id))"
        case .chain(let id, let hook, let port?): return "chain \(snapshot.name(of: id)) (\(hook.rawValue) of \(snapshot.name(of: port)))"
        case .chain(let id, let hook, nil): return "chain \(snapshot.name(of: id)) (\(hook.rawValue))"
        case .rule(let id, let matched, let action):
            let conditions = snapshot.rules[id].map { describe($0.conditions, in: snapshot) } ?? "?"
            return "rule \(snapshot.name(of: id)) [\(conditions)] -> \(actionText(action, in: snapshot)): \(matched ? "matched" : "no match")"
        case .jump(let from, let to): return "jump from \(snapshot.name(of: from)) to chain \(snapshot.name(of: to))"
        case .returnTo(let chain): return "return to chain \(snapshot.name(of: chain))"
        case .chainVerdict(let chain, let verdict):
            switch verdict {
            case .accept(let rule?): return "chain \(snapshot.name(of: chain)): ACCEPT by rule \(snapshot.name(of: rule))"
            case .accept(nil): return "chain \(snapshot.name(of: chain)): ACCEPT (no rule decided)"
            case .drop(let rule): return "chain \(snapshot.name(of: chain)): DROP by rule \(snapshot.name(of: rule))"
            case .reject(let rule): return "chain \(snapshot.name(of: chain)): REJECT by rule \(snapshot.name(of: rule))"
            case .error(let rule): return "chain \(snapshot.name(of: chain)): stopped at rule \(snapshot.name(of: rule))"
            }
        case .learnMAC(let mac, let port): return "learn \(mac) on port \(snapshot.name(of: port))"
        case .macLookup(let mac, let port?, let isStatic):
            return "\(mac) is behind port \(snapshot.name(of: port))\(isStatic ? " (static entry)" : " (learned)")"
        case .macLookup(let mac, nil, _): return "\(mac) unknown: flood"
        case .arpSuppressed(let ip, let mac): return "ARP suppression: \(ip) is at \(mac), answered by the bridge"
        case .dhcpAnswered(let address?): return "DHCP: answered by the bridge (address \(address))"
        case .dhcpAnswered(nil): return "DHCP: taken by the bridge without a reply"
        case .arpToRouterPort(let ip, let port): return "ARP for \(ip) sent to router port behind \(snapshot.name(of: port))"
        case .arpReplyLearned(let ip, let mac): return "ARP reply: learn \(ip) at \(mac)"
        case .routeLookup(let ip, let route?, let count):
            return "route to \(ip): \(routeText(route, in: snapshot))\(count > 1 ? " (\(count) equal-cost routes)" : "")"
        case .routeLookup(let ip, nil, _): return "route to \(ip): none"
        case .ecmp(let chosen, let count, let hash): return "ECMP: flow hash \(hash) picks path \(chosen + 1) of \(count)"
        case .decrementTimeToLive(let ttl): return "TTL decremented to \(ttl)"
        case .nextHop(let ip, let mac?): return "next hop \(ip) is at \(mac)"
        case .nextHop(let ip, nil): return "next hop \(ip): MAC unknown, ARP request sent"
        case .generated(let kind, let port): return "generated \(kind.rawValue) out of port \(snapshot.name(of: port))"
        case .flood(let bridge, let count): return "flood on bridge \(snapshot.name(of: bridge)) to \(count) port\(count == 1 ? "" : "s")"
        case .leavePort(let port): return "port \(snapshot.name(of: port)): out"
        case .link(let from, let to): return "link \(snapshot.name(of: from)) -> \(snapshot.name(of: to))"
        case .decision(let decision): return "=> " + decisionText(decision, in: snapshot)
        case .connection(let zone, let states): return "conntrack zone \(zone): \(states.isEmpty ? "untracked" : states.description)"
        case .securityGroup(let port, let direction, let rule?, _):
            return "security groups of \(snapshot.name(of: port)) (\(direction.rawValue)): allowed by rule \(securityRuleText(rule, in: snapshot))"
        case .securityGroup(let port, let direction, nil, let allowed):
            return "security groups of \(snapshot.name(of: port)) (\(direction.rawValue)): " + (allowed ? "allowed by connection state" : "no rule allows it")
        case .nat(let kind, let key):
            let ports = key.ipProtocol == IPProtocolNumber.tcp || key.ipProtocol == IPProtocolNumber.udp || key.ipProtocol == IPProtocolNumber.icmp
            return "NAT (\(kind.rawValue)): " + (ports ? "\(key.source):\(key.sourcePort) > \(key.destination):\(key.destinationPort)" : "\(key.source) > \(key.destination)")
        }
    }
}

/// The final decision as a person reads it.
public func decisionText(_ decision: SimulationDecision, in snapshot: TopologySnapshot) -> String {
    switch decision {
    case .output(let port): return "OUTPUT to port \(snapshot.name(of: port))"
    case .flood(let bridge): return "FLOOD on bridge \(snapshot.name(of: bridge))"
    case .drop(let reason): return "DROP: \(dropText(reason, in: snapshot))"
    case .consumed: return "CONSUMED: answered by the agent"
    case .pendingARP(let router, let ip, let port):
        return "PENDING ARP: router \(snapshot.name(of: router)) asks for \(ip) out of port \(snapshot.name(of: port))"
    case .pendingAddress(let port):
        return "PENDING ADDRESS: port \(snapshot.name(of: port)) gets an address from its subnet's pool, then DHCP answers"
    case .pendingNATPorts(let address, let first, let last, _):
        return "PENDING NAT PORTS: this host leases a block of SNAT ports of \(address) (\(first)-\(last)), then translates"
    case .pendingTopology(.port(let port)):
        return "PENDING TOPOLOGY: the link leads to port \(port), on a device this host has not loaded yet; it loads it, then simulates again"
    case .pendingTopology(.chain(let chain)):
        return "PENDING TOPOLOGY: chain \(chain) is not loaded yet; the host loads it, then simulates again"
    }
}

/// A drop reason with objects named.
public func dropText(_ reason: DropReason, in snapshot: TopologySnapshot) -> String {
    switch reason {
    case .unknownInPort(let key): return "no port has in-port number (tunnel key) \(key)"
    case .portDown(let port): return "port \(snapshot.name(of: port)) is administratively down"
    case .bridgeDown(let bridge): return "bridge \(snapshot.name(of: bridge)) is administratively down"
    case .routerDown(let router): return "router \(snapshot.name(of: router)) is administratively down"
    case .ruleDropped(let chain, let rule): return "dropped by rule \(snapshot.name(of: rule)) in chain \(snapshot.name(of: chain))"
    case .ruleRejected(let chain, let rule): return "rejected by rule \(snapshot.name(of: rule)) in chain \(snapshot.name(of: chain))"
    case .jumpLoop(let chain, let rule, let target):
        return "jump loop: rule \(snapshot.name(of: rule)) in chain \(snapshot.name(of: chain)) jumps to chain \(snapshot.name(of: target)), which is already being evaluated"
    case .jumpTooDeep(let chain, let rule, let limit):
        return "rule \(snapshot.name(of: rule)) in chain \(snapshot.name(of: chain)) jumps deeper than \(limit) chains"
    case .chainNotLoaded(let chain):
        return "chain \(snapshot.name(of: chain)) is not loaded yet"
    case .jumpToMissingChain(let chain, let rule):
        return "rule \(snapshot.name(of: rule)) in chain \(snapshot.name(of: chain)) jumps to a chain that does not exist"
    case .sameIngressAndEgress(let bridge, let port):
        return "bridge \(snapshot.name(of: bridge)) would send the frame back out of its ingress port \(snapshot.name(of: port))"
    case .notForRouterMAC(let router, let mac): return "router \(snapshot.name(of: router)) does not accept frames to \(mac) (not its port's MAC)"
    case .arpNotForRouter(let router, let ip): return "router \(snapshot.name(of: router)) does not answer ARP for \(ip)"
    case .notIPv4(let router, let type): return "router \(snapshot.name(of: router)) routes IPv4 only (ethertype 0x\(String(type, radix: 16)))"
    case .addressedToRouter(let router, let ip):
        return "addressed to router \(snapshot.name(of: router))'s own address \(ip) and not an echo request"
    case .timeToLiveExpired(let router): return "TTL expired at router \(snapshot.name(of: router))"
    case .noRoute(let router, let ip): return "router \(snapshot.name(of: router)) has no route to \(ip)"
    case .blackholeRoute(let route): return "blackhole route \(routeText(route, in: snapshot))"
    case .rejectRoute(let route): return "reject route \(routeText(route, in: snapshot))"
    case .routeWithoutPort(let route): return "route \(routeText(route, in: snapshot)) has no egress port on its router"
    case .hopLimitExceeded(let limit): return "crossed more than \(limit) devices (a forwarding loop?)"
    case .spoofed(let port, let kind): return "port security of \(snapshot.name(of: port)): \(kind.rawValue.replacingUnderscores)"
    case .securityGroup(let port, let direction):
        return "no security group rule of \(snapshot.name(of: port)) allows it (\(direction.rawValue))"
    case .connectionInvalid(let port): return "\(snapshot.name(of: port)) has security groups and the packet is part of no valid connection (conntrack invalid)"
    case .hostDown(let port): return "port \(snapshot.name(of: port)) is bound to a host whose agent is not alive (its lease lapsed): nothing there would receive it"
    }
}

/// A security group rule as "group: ingress IPv4 tcp 80 from 0.0.0.0/0".
func securityRuleText(_ id: SecurityGroupRuleID, in snapshot: TopologySnapshot) -> String {
    guard let rule = snapshot.securityGroupRules[id] else { return String(id.description.prefix(8)) }
    let group = snapshot.securityGroups[rule.securityGroupId]?.name ?? String(rule.securityGroupId.description.prefix(8))
    var text = "\(group): \(rule.direction.rawValue) \(rule.etherType.rawValue)"
    text += rule.ipProtocol.map { " proto \($0)" } ?? " any"
    if let ports = rule.ports { text += " port \(ports)" }
    if let type = rule.icmpType { text += " type \(type)" + (rule.icmpCode.map { "/\($0)" } ?? "") }
    let peer = rule.direction == .ingress ? "from" : "to"
    if let prefix = rule.remotePrefix { text += " \(peer) \(prefix)" }
    if let remote = rule.remoteGroupId { text += " \(peer) group \(snapshot.securityGroups[remote]?.name ?? remote.description)" }
    return text
}

func routeText(_ id: RouteID, in snapshot: TopologySnapshot) -> String {
    guard let route = snapshot.routes[id] else { return String(id.description.prefix(8)) }
    var text = "\(route.destination)"
    if route.source.length > 0 { text += " from \(route.source)" }
    switch route.kind {
    case .normal:
        if let gateway = route.nextHopGateway { text += " via \(gateway)" }
        if let port = route.egressPortId { text += " dev \(snapshot.name(of: port))" }
    case .blackhole: text += " blackhole"
    case .reject: text += " reject"
    }
    if route.weight != Route.defaultWeight { text += " weight \(route.weight)" }
    return text
}

func actionText(_ action: RuleAction, in snapshot: TopologySnapshot) -> String {
    if case .jump(let chain) = action { return "jump \(snapshot.name(of: chain))" }
    return action.type.rawValue
}

/// A rule's conditions in one line ("proto 6, dst port 80, !src 10.0.0.0/8").
public func describe(_ conditions: RuleConditions, in snapshot: TopologySnapshot) -> String {
    var parts: [String] = []
    func add<V>(_ name: String, _ match: Match<V>?, _ text: (V) -> String) {
        guard let match else { return }
        parts.append((match.invert ? "!" : "") + name + " " + text(match.value))
    }
    add("in", conditions.inPorts) { $0.map { snapshot.name(of: $0) }.joined(separator: ",") }
    add("out", conditions.outPorts) { $0.map { snapshot.name(of: $0) }.joined(separator: ",") }
    add("in-group", conditions.inPortGroup) { snapshot.portGroups[$0]?.name ?? $0.description }
    add("out-group", conditions.outPortGroup) { snapshot.portGroups[$0]?.name ?? $0.description }
    add("ethertype", conditions.etherType) { "0x" + String($0, radix: 16) }
    add("eth-src", conditions.sourceMAC) { $0.description }
    add("eth-dst", conditions.destinationMAC) { $0.description }
    add("proto", conditions.ipProtocol) { IPProtocol($0).description }
    add("src", conditions.sourcePrefix) { $0.description }
    add("dst", conditions.destinationPrefix) { $0.description }
    add("src-group", conditions.sourceAddressGroup) { snapshot.ipAddressGroups[$0]?.name ?? $0.description }
    add("dst-group", conditions.destinationAddressGroup) { snapshot.ipAddressGroups[$0]?.name ?? $0.description }
    add("src-port", conditions.sourcePorts) { $0.description }
    add("dst-port", conditions.destinationPorts) { $0.description }
    add("icmp-type", conditions.icmpType) { "\($0)" }
    add("icmp-code", conditions.icmpCode) { "\($0)" }
    add("ct", conditions.connectionState) { $0.rawValue }
    add("frag", conditions.fragments) { $0.rawValue }
    return parts.isEmpty ? "any" : parts.joined(separator: ", ")
}
