import struct Foundation.UUID
import HiveModel
import HiveSimulation

/// The agent's compiled topology, one `TopologySnapshot` per island: the
/// devices joined by links, with the chains, groups and routes they use. A
/// packet never leaves its island (links are the only way between
/// devices), so each simulates on its ingress port's island alone, and a
/// change recompiles only the islands whose inputs changed: a rule of one
/// tenant's chain costs that tenant's topology, not the host's.
struct TopologyIslands: Sendable {
    private(set) var parts: [TopologySnapshot] = []
    /// What each part was compiled from, to reuse it while they stay the same.
    private var inputs: [IslandInputs] = []
    private var partOfTunnelKey: [UInt32: Int] = [:]
    private var partOfPort: [PortID: Int] = [:]
    private var partOfBridge: [BridgeID: Int] = [:]
    private var bridgeOfFloodKey: [UInt32: BridgeID] = [:]
    private var partOfRouter: [RouterID: Int] = [:]
    private var partOfChain: [ChainID: Int] = [:]
    private var partOfRule: [RuleID: Int] = [:]
    private static let none = TopologySnapshot()

    init() {}

    /// One island holding all of `snapshot` (tests build views this way).
    init(_ snapshot: TopologySnapshot) {
        parts = [snapshot]
        var input = IslandInputs()
        input.bridges = Array(snapshot.bridges.values)
        input.routers = Array(snapshot.routers.values)
        input.ports = Array(snapshot.ports.values)
        input.chains = Array(snapshot.chains.values)
        input.rules = Array(snapshot.rules.values)
        inputs = [input]
        index(input, as: 0)
    }

    private mutating func index(_ input: IslandInputs, as index: Int) {
        for port in input.ports {
            partOfPort[port.id] = index
            if port.tunnelKey != 0 { partOfTunnelKey[port.tunnelKey] = index }
        }
        for bridge in input.bridges {
            partOfBridge[bridge.id] = index
            if bridge.tunnelKey != 0 { bridgeOfFloodKey[bridge.tunnelKey] = bridge.id }
        }
        for router in input.routers { partOfRouter[router.id] = index }
        for chain in input.chains { partOfChain[chain.id] = index }
        for rule in input.rules { partOfRule[rule.id] = index }
    }

    /// The island of an in-port (an empty snapshot for a key no port has).
    func snapshot(inPort tunnelKey: UInt32) -> TopologySnapshot {
        partOfTunnelKey[tunnelKey].map { parts[$0] } ?? Self.none
    }

    func snapshot(of port: PortID) -> TopologySnapshot { partOfPort[port].map { parts[$0] } ?? Self.none }

    func port(_ id: PortID) -> Port? { partOfPort[id].flatMap { parts[$0].ports[id] } }
    func port(tunnelKey: UInt32) -> Port? { partOfTunnelKey[tunnelKey].flatMap { parts[$0].port(tunnelKey: tunnelKey) } }

    /// The bridge whose floods travel on `floodKey` (its tunnel key).
    func bridge(floodKey: UInt32) -> BridgeID? { bridgeOfFloodKey[floodKey] }

    func name(of port: PortID) -> String { snapshot(of: port).name(of: port) }
    func name(of bridge: BridgeID) -> String { (partOfBridge[bridge].map { parts[$0] } ?? Self.none).name(of: bridge) }
    func name(of router: RouterID) -> String { (partOfRouter[router].map { parts[$0] } ?? Self.none).name(of: router) }
    func name(of chain: ChainID) -> String { (partOfChain[chain].map { parts[$0] } ?? Self.none).name(of: chain) }
    func name(of rule: RuleID) -> String { (partOfRule[rule].map { parts[$0] } ?? Self.none).name(of: rule) }

    func connectionZone(of router: RouterID) -> UInt32 { Self.none.connectionZone(of: router) }

    /// The islands of `mirror`, reusing the parts of `previous` whose inputs
    /// did not change; also how many objects were compiled.
    static func build(from mirror: NSDBMirror, reusing previous: TopologyIslands) -> (TopologyIslands, compiled: Int) {
        var reusable: [IslandInputs: TopologySnapshot] = [:]
        for (index, input) in previous.inputs.enumerated() { reusable[input] = previous.parts[index] }
        var islands = TopologyIslands()
        var compiled = 0
        for input in IslandInputs.partition(mirror) {
            let part: TopologySnapshot
            if let kept = reusable[input] {
                part = kept
            } else {
                part = input.snapshot()
                compiled += input.objectCount
            }
            islands.index(input, as: islands.parts.count)
            islands.parts.append(part)
            islands.inputs.append(input)
        }
        return (islands, compiled)
    }
}

/// Everything one island is compiled from, sorted by id (so equal inputs compare equal).
struct IslandInputs: Hashable, Sendable {
    var bridges: [Bridge] = []
    var routers: [Router] = []
    var ports: [Port] = []
    var routes: [Route] = []
    var chains: [Chain] = []
    var rules: [Rule] = []
    var portGroups: [PortGroup] = []
    var ipAddressGroups: [IPAddressGroup] = []
    var dhcpSubnets: [DHCPSubnet] = []
    var securityGroups: [SecurityGroup] = []
    var securityGroupRules: [SecurityGroupRule] = []
    var floatingIPs: [FloatingIP] = []
    /// Members of the island's security groups on other islands, or on no loaded device.
    var memberPorts: [Port] = []
    /// Ports on devices not loaded, linked to the island's bridges: what a bridge knows of the router behind a link.
    var linkedPorts: [Port] = []

    var objectCount: Int {
        bridges.count + routers.count + ports.count + routes.count + chains.count + rules.count + portGroups.count
            + ipAddressGroups.count + dhcpSubnets.count + securityGroups.count + securityGroupRules.count + floatingIPs.count
    }

    func snapshot() -> TopologySnapshot {
        TopologySnapshot(
            bridges: bridges, routers: routers, ports: ports, routes: routes, chains: chains, rules: rules,
            portGroups: portGroups, ipAddressGroups: ipAddressGroups, dhcpSubnets: dhcpSubnets,
            securityGroups: securityGroups, securityGroupRules: securityGroupRules, floatingIPs: floatingIPs,
            memberPorts: memberPorts, linkedPorts: linkedPorts)
    }

    /// The mirror's devices grouped by links, each group with what it uses.
    static func partition(_ mirror: NSDBMirror) -> [IslandInputs] {
        // Union-find over loaded devices, joined by links between loaded ports.
        var parent: [UUID: UUID] = [:]
        func find(_ device: UUID) -> UUID {
            var root = device
            while let up = parent[root], up != root { root = up }
            var node = device
            while let up = parent[node], up != root { parent[node] = root; node = up }
            return root
        }
        for id in mirror.bridges.keys { parent[id.uuid] = id.uuid }
        for id in mirror.routers.keys { parent[id.uuid] = id.uuid }
        var devicePorts: [UUID: [Port]] = [:]
        for port in mirror.ports.values {
            // A port on a device not loaded counts only as a group member.
            guard parent[port.deviceId] != nil else { continue }
            devicePorts[port.deviceId, default: []].append(port)
            if let peer = port.peerId.flatMap({ mirror.ports[$0] }), parent[peer.deviceId] != nil {
                let (a, b) = (find(port.deviceId), find(peer.deviceId))
                if a != b { parent[a] = b }
            }
        }
        var members: [UUID: [UUID]] = [:]
        for device in parent.keys { members[find(device), default: []].append(device) }

        var rulesOfChain: [ChainID: [Rule]] = [:]
        for rule in mirror.rules.values { rulesOfChain[rule.chainId, default: []].append(rule) }
        var rulesOfGroup: [SecurityGroupID: [SecurityGroupRule]] = [:]
        for rule in mirror.securityGroupRules.values { rulesOfGroup[rule.securityGroupId, default: []].append(rule) }
        var routesOfRouter: [RouterID: [Route]] = [:]
        for route in mirror.routes.values { routesOfRouter[route.routerId, default: []].append(route) }
        var subnetsOfBridge: [BridgeID: [DHCPSubnet]] = [:]
        for subnet in mirror.dhcpSubnets.values { subnetsOfBridge[subnet.bridgeId, default: []].append(subnet) }
        var floatingOfRouter: [RouterID: [FloatingIP]] = [:]
        for floating in mirror.floatingIPs.values { floatingOfRouter[floating.routerId, default: []].append(floating) }
        var portsOfSecurityGroup: [SecurityGroupID: [Port]] = [:]
        for port in mirror.ports.values {
            for group in port.securityGroupIds { portsOfSecurityGroup[group, default: []].append(port) }
        }

        var islands: [IslandInputs] = []
        for devices in members.values {
            var island = IslandInputs()
            var chainIDs: Set<ChainID> = []
            var portGroupIDs: Set<PortGroupID> = []
            var addressGroupIDs: Set<IPAddressGroupID> = []
            var securityGroupIDs: Set<SecurityGroupID> = []
            func useChains(_ ids: ChainID?...) { for id in ids { if let id { chainIDs.insert(id) } } }
            for device in devices {
                if let bridge = mirror.bridges[BridgeID(device)] {
                    island.bridges.append(bridge)
                    useChains(bridge.inboundChainId, bridge.outboundChainId)
                    island.dhcpSubnets += subnetsOfBridge[bridge.id] ?? []
                }
                if let router = mirror.routers[RouterID(device)] {
                    island.routers.append(router)
                    useChains(router.inboundChainId, router.outboundChainId)
                    island.routes += routesOfRouter[router.id] ?? []
                    island.floatingIPs += floatingOfRouter[router.id] ?? []
                }
                for port in devicePorts[device] ?? [] {
                    island.ports.append(port)
                    if let peer = port.peerId.flatMap({ mirror.ports[$0] }), parent[peer.deviceId] == nil { island.linkedPorts.append(peer) }
                    useChains(port.inboundChainId, port.outboundChainId)
                    portGroupIDs.formUnion(port.portGroupIds)
                    securityGroupIDs.formUnion(port.securityGroupIds)
                }
            }
            // Chains a rule jumps to, and the groups rules name.
            var pending = Array(chainIDs)
            while let chain = pending.popLast() {
                for rule in rulesOfChain[chain] ?? [] {
                    island.rules.append(rule)
                    if case .jump(let target) = rule.action, chainIDs.insert(target).inserted { pending.append(target) }
                    let conditions = rule.conditions
                    for group in [conditions.inPortGroup?.value, conditions.outPortGroup?.value].compactMap({ $0 }) { portGroupIDs.insert(group) }
                    for group in [conditions.sourceAddressGroup?.value, conditions.destinationAddressGroup?.value].compactMap({ $0 }) {
                        addressGroupIDs.insert(group)
                    }
                }
            }
            // Security groups, the groups their rules name, and their members elsewhere.
            var groups = Array(securityGroupIDs)
            while let group = groups.popLast() {
                for rule in rulesOfGroup[group] ?? [] {
                    island.securityGroupRules.append(rule)
                    if let remote = rule.remoteGroupId, securityGroupIDs.insert(remote).inserted { groups.append(remote) }
                }
            }
            let own = Set(island.ports.map(\.id))
            var elsewhere: [PortID: Port] = [:]
            for group in securityGroupIDs {
                for port in portsOfSecurityGroup[group] ?? [] where !own.contains(port.id) { elsewhere[port.id] = port }
            }
            island.chains = chainIDs.compactMap { mirror.chains[$0] }
            island.portGroups = portGroupIDs.compactMap { mirror.portGroups[$0] }
            island.ipAddressGroups = addressGroupIDs.compactMap { mirror.ipAddressGroups[$0] }
            island.securityGroups = securityGroupIDs.compactMap { mirror.securityGroups[$0] }
            island.memberPorts = Array(elsewhere.values)
            island.sort()
            islands.append(island)
        }
        return islands
    }

    private mutating func sort() {
        bridges.sort { $0.id < $1.id }
        routers.sort { $0.id < $1.id }
        ports.sort { $0.id < $1.id }
        routes.sort { $0.id < $1.id }
        chains.sort { $0.id < $1.id }
        rules.sort { $0.id < $1.id }
        portGroups.sort { $0.id < $1.id }
        ipAddressGroups.sort { $0.id < $1.id }
        dhcpSubnets.sort { $0.id < $1.id }
        securityGroups.sort { $0.id < $1.id }
        securityGroupRules.sort { $0.id < $1.id }
        floatingIPs.sort { $0.id < $1.id }
        memberPorts.sort { $0.id < $1.id }
        linkedPorts.sort { $0.id < $1.id }
    }
}
