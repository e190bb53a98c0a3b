import HiveModel
import HivePacket

/// The virtual topology as one immutable value: the model objects by id, and
/// their compiled form for the simulation (dense indices, per-router
/// longest-prefix-match tables, chains with their rules in order, ports by
/// tunnel key).
///
/// Pure: the caller (the agent's topology cache, `hive trace`, tests) reads
/// the arrays from the store and builds a snapshot; building costs
/// O(objects + routes log routes) and allocates, simulating on it does not.
///
/// Inconsistent input (a port on a missing device, a chain listing a rule
/// that does not exist) does not stop the build: the object or reference is
/// left out and described in `problems`. The repository keeps the store
/// consistent, so in practice this only shows a snapshot taken mid-change.
public struct TopologySnapshot: Sendable {
    /// Everything, behind one reference: copying a snapshot (handing it to a
    /// worker, storing it in a run) is one retain.
    final class Storage: Sendable {
        let bridges: [BridgeID: Bridge]
        let routers: [RouterID: Router]
        let ports: [PortID: Port]
        let routes: [RouteID: Route]
        let chains: [ChainID: Chain]
        let rules: [RuleID: Rule]
        let portGroups: [PortGroupID: PortGroup]
        let ipAddressGroups: [IPAddressGroupID: IPAddressGroup]
        let dhcpSubnets: [DHCPSubnetID: DHCPSubnet]
        let securityGroups: [SecurityGroupID: SecurityGroup]
        let securityGroupRules: [SecurityGroupRuleID: SecurityGroupRule]
        let floatingIPs: [FloatingIPID: FloatingIP]
        let problems: [String]
        let compiled: CompiledTopology

        init(
            bridges: [Bridge], routers: [Router], ports: [Port], routes: [Route], chains: [Chain], rules: [Rule],
            portGroups: [PortGroup], ipAddressGroups: [IPAddressGroup], dhcpSubnets: [DHCPSubnet],
            securityGroups: [SecurityGroup], securityGroupRules: [SecurityGroupRule], floatingIPs: [FloatingIP],
            memberPorts: [Port], linkedPorts: [Port]
        ) {
            func byID<T: TopologyObject>(_ objects: [T]) -> [ObjectID<T>: T] {
                Dictionary(objects.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
            }
            self.bridges = byID(bridges)
            self.routers = byID(routers)
            self.ports = byID(ports)
            self.routes = byID(routes)
            self.chains = byID(chains)
            self.rules = byID(rules)
            self.portGroups = byID(portGroups)
            self.ipAddressGroups = byID(ipAddressGroups)
            self.dhcpSubnets = byID(dhcpSubnets)
            self.securityGroups = byID(securityGroups)
            self.securityGroupRules = byID(securityGroupRules)
            self.floatingIPs = byID(floatingIPs)
            var builder = SnapshotBuilder(
                bridges: bridges.sorted { $0.id < $1.id }, routers: routers.sorted { $0.id < $1.id },
                ports: ports.sorted { $0.id < $1.id }, routes: routes, chains: chains.sorted { $0.id < $1.id },
                rules: self.rules, portGroups: portGroups.sorted { $0.id < $1.id },
                ipAddressGroups: ipAddressGroups.sorted { $0.id < $1.id }, dhcpSubnets: dhcpSubnets.sorted { $0.id < $1.id },
                securityGroups: securityGroups.sorted { $0.id < $1.id }, securityGroupRules: securityGroupRules.sorted { $0.id < $1.id },
                floatingIPs: floatingIPs.sorted { $0.id < $1.id }, memberPorts: memberPorts,
                linkedPorts: linkedPorts)
            compiled = builder.build()
            problems = builder.problems
        }
    }

    let storage: Storage

    public var bridges: [BridgeID: Bridge] { storage.bridges }
    public var routers: [RouterID: Router] { storage.routers }
    public var ports: [PortID: Port] { storage.ports }
    public var routes: [RouteID: Route] { storage.routes }
    public var chains: [ChainID: Chain] { storage.chains }
    public var rules: [RuleID: Rule] { storage.rules }
    public var portGroups: [PortGroupID: PortGroup] { storage.portGroups }
    public var ipAddressGroups: [IPAddressGroupID: IPAddressGroup] { storage.ipAddressGroups }
    public var dhcpSubnets: [DHCPSubnetID: DHCPSubnet] { storage.dhcpSubnets }
    public var securityGroups: [SecurityGroupID: SecurityGroup] { storage.securityGroups }
    public var securityGroupRules: [SecurityGroupRuleID: SecurityGroupRule] { storage.securityGroupRules }
    public var floatingIPs: [FloatingIPID: FloatingIP] { storage.floatingIPs }
    /// What the build left out, and why.
    public var problems: [String] { storage.problems }

    var compiled: CompiledTopology { storage.compiled }

    /// Builds the snapshot: O(objects + routes log routes), allocates.
    /// `memberPorts`: ports on devices left out (an agent loads only what its
    /// ports reach) that count as members of security groups; `linkedPorts`:
    /// router ports on devices left out, linked to bridges held (their MACs
    /// and addresses are the bridges' static entries; crossing to them waits).
    public init(
        bridges: [Bridge] = [], routers: [Router] = [], ports: [Port] = [], routes: [Route] = [],
        chains: [Chain] = [], rules: [Rule] = [], portGroups: [PortGroup] = [],
        ipAddressGroups: [IPAddressGroup] = [], dhcpSubnets: [DHCPSubnet] = [],
        securityGroups: [SecurityGroup] = [], securityGroupRules: [SecurityGroupRule] = [], floatingIPs: [FloatingIP] = [],
        memberPorts: [Port] = [], linkedPorts: [Port] = []
    ) {
        storage = Storage(
            bridges: bridges, routers: routers, ports: ports, routes: routes, chains: chains, rules: rules,
            portGroups: portGroups, ipAddressGroups: ipAddressGroups, dhcpSubnets: dhcpSubnets,
            securityGroups: securityGroups, securityGroupRules: securityGroupRules, floatingIPs: floatingIPs,
            memberPorts: memberPorts, linkedPorts: linkedPorts)
    }

    /// The port the datapath numbers `inPort`: a port's tunnel key is its
    /// in-port number in `FlowKey`.
    public func port(tunnelKey: UInt32) -> Port? {
        guard let index = compiled.portByTunnelKey[tunnelKey] else { return nil }
        return ports[compiled.ports[Int(index)].id]
    }

    /// The connection-tracking zone of a router (where its NAT bindings live).
    public func connectionZone(of router: RouterID) -> UInt32 { SnapshotBuilder.zone(of: router) }

    /// The MAC a router port answers with: its `mac`, or one derived from its id when unset.
    public func effectiveMAC(of port: PortID) -> EthernetAddress? {
        guard let index = compiled.portIndex[port] else { return nil }
        return compiled.ports[Int(index)].mac
    }

    /// A readable name for an object id: its name, or the first 8 digits of the id.
    public func name(of port: PortID) -> String {
        guard let port = ports[port] else { return String(port.description.prefix(8)) }
        let device = port.bridgeId.flatMap { bridges[$0]?.name } ?? port.routerId.flatMap { routers[$0]?.name } ?? "?"
        return "\(device)/\(port.name ?? String(port.id.description.prefix(8)))"
    }

    public func name(of bridge: BridgeID) -> String { bridges[bridge]?.name ?? String(bridge.description.prefix(8)) }
    public func name(of router: RouterID) -> String { routers[router]?.name ?? String(router.description.prefix(8)) }
    public func name(of chain: ChainID) -> String { chains[chain]?.name ?? String(chain.description.prefix(8)) }

    /// A rule as "chain#position" (1-based), its position in its chain.
    public func name(of rule: RuleID) -> String {
        guard let rule = rules[rule], let chain = chains[rule.chainId],
              let position = chain.ruleIds.firstIndex(of: rule.id)
        else { return String(rule.description.prefix(8)) }
        return "\(chain.name)#\(position + 1)"
    }

    /// The MAC derived for a router port without one: locally administered,
    /// unicast, from the id's last five bytes, so it is stable across snapshots.
    static func derivedMAC(for id: PortID) -> EthernetAddress {
        let bytes = id.uuid.uuid
        return EthernetAddress(0x02, bytes.11, bytes.12, bytes.13, bytes.14, bytes.15)
    }
}

/// Builds the compiled form; collects what it left out.
private struct SnapshotBuilder {
    let bridges: [Bridge]
    let routers: [Router]
    let ports: [Port]
    let routes: [Route]
    let chains: [Chain]
    let rules: [RuleID: Rule]
    let portGroups: [PortGroup]
    let ipAddressGroups: [IPAddressGroup]
    let dhcpSubnets: [DHCPSubnet]
    let securityGroups: [SecurityGroup]
    let securityGroupRules: [SecurityGroupRule]
    let floatingIPs: [FloatingIP]
    let memberPorts: [Port]
    let linkedPorts: [Port]
    var problems: [String] = []

    init(
        bridges: [Bridge], routers: [Router], ports: [Port], routes: [Route], chains: [Chain], rules: [RuleID: Rule],
        portGroups: [PortGroup], ipAddressGroups: [IPAddressGroup], dhcpSubnets: [DHCPSubnet],
        securityGroups: [SecurityGroup], securityGroupRules: [SecurityGroupRule], floatingIPs: [FloatingIP],
        memberPorts: [Port], linkedPorts: [Port]
    ) {
        self.memberPorts = memberPorts
        self.linkedPorts = linkedPorts
        self.floatingIPs = floatingIPs
        self.securityGroups = securityGroups
        self.securityGroupRules = securityGroupRules
        self.bridges = bridges
        self.routers = routers
        self.ports = ports
        self.routes = routes
        self.chains = chains
        self.rules = rules
        self.portGroups = portGroups
        self.ipAddressGroups = ipAddressGroups
        self.dhcpSubnets = dhcpSubnets
    }

    /// A router's connection-tracking zone: from its id, above the 24-bit
    /// keys of ports and bridges, stable across snapshots.
    static func zone(of router: RouterID) -> UInt32 {
        let bytes = router.uuid.uuid
        return 0x0100_0000 | UInt32(bytes.13) << 16 | UInt32(bytes.14) << 8 | UInt32(bytes.15)
    }

    mutating func build() -> CompiledTopology {
        let bridgeIndex = Dictionary(uniqueKeysWithValues: bridges.enumerated().map { ($1.id, Int32($0)) })
        let routerIndex = Dictionary(uniqueKeysWithValues: routers.enumerated().map { ($1.id, Int32($0)) })
        let chainIndex = Dictionary(uniqueKeysWithValues: chains.enumerated().map { ($1.id, Int32($0)) })
        let groupIndex = Dictionary(uniqueKeysWithValues: portGroups.enumerated().map { ($1.id, Int32($0)) })
        let addressGroupIndex = Dictionary(uniqueKeysWithValues: ipAddressGroups.enumerated().map { ($1.id, Int32($0)) })

        // A chain named but not held (an agent has not loaded it yet) gets an
        // index past the chains: a packet meeting it waits, never passes.
        var notLoadedChains: [ChainID] = []
        var notLoadedChainIndex: [ChainID: Int32] = [:]
        func chain(_ id: ChainID?, of owner: String) -> Int32 {
            guard let id else { return noIndex }
            if let index = chainIndex[id] { return index }
            if let index = notLoadedChainIndex[id] { return index }
            problems.append("\(owner) names chain \(id), which is not loaded: packets meeting it wait for it")
            let index = Int32(chains.count + notLoadedChains.count)
            notLoadedChains.append(id)
            notLoadedChainIndex[id] = index
            return index
        }

        // Ports: only those whose device exists.
        var kept: [Port] = []
        var portIndex: [PortID: Int32] = [:]
        for port in ports {
            let known = port.deviceKind == .bridge
                ? bridgeIndex[BridgeID(port.deviceId)] != nil : routerIndex[RouterID(port.deviceId)] != nil
            guard known else {
                problems.append("port \(port.id) is on missing \(port.deviceKind.rawValue) \(port.deviceId): left out")
                continue
            }
            portIndex[port.id] = Int32(kept.count)
            kept.append(port)
        }

        var compiledPorts: [CompiledPort] = []
        var allowedSources: [AllowedSource] = []
        func allowedRange(of port: Port) -> IndexRange {
            guard port.deviceKind == .bridge, let mac = port.mac else { return .empty }
            let start = Int32(allowedSources.count)
            for (prefix, source) in port.allowedSources(portMAC: mac) {
                allowedSources.append(AllowedSource(prefix: MaskedPrefix(prefix), mac: source))
            }
            return IndexRange(start: start, end: Int32(allowedSources.count))
        }
        var memberships: [Int32] = []
        var byTunnelKey: [UInt32: Int32] = [:]
        var policies = SecurityPolicyBuilder(groups: securityGroups, rules: securityGroupRules, ports: kept + memberPorts)
        var notLoadedPeers: [Int32: PortID] = [:]
        for (index, port) in kept.enumerated() {
            let start = Int32(memberships.count)
            for group in port.portGroupIds {
                if let found = groupIndex[group] { memberships.append(found) }
            }
            var peer = noIndex
            if let peerId = port.peerId {
                if let found = portIndex[peerId] { peer = found } else {
                    problems.append("port \(port.id) is linked to port \(peerId), which is not loaded: packets leaving by it wait for it")
                    notLoadedPeers[Int32(index)] = peerId
                }
            }
            let isRouter = port.deviceKind == .router
            let device = isRouter ? routerIndex[RouterID(port.deviceId)]! : bridgeIndex[BridgeID(port.deviceId)]!
            compiledPorts.append(CompiledPort(
                id: port.id, deviceIndex: device, isRouterPort: isRouter, adminStateUp: port.adminStateUp,
                inboundChain: chain(port.inboundChainId, of: "port \(port.id)"),
                outboundChain: chain(port.outboundChainId, of: "port \(port.id)"),
                peer: peer, tunnelKey: port.tunnelKey,
                groups: IndexRange(start: start, end: Int32(memberships.count)),
                address: port.address ?? .any, subnet: port.subnet?.network ?? IPv4.Prefix(address: .any, length: 0),
                mac: port.mac ?? (isRouter ? TopologySnapshot.derivedMAC(for: port.id) : .zero),
                hasAddress: isRouter && port.address != nil && port.subnet != nil,
                portSecurity: !isRouter && port.portSecurity && port.mac != nil,
                allowedSources: allowedRange(of: port),
                linkLocal: port.mac.map { IPv6.Address.linkLocal(eui64: $0) } ?? .any,
                securityPolicy: !isRouter && port.portSecurity && port.mac != nil ? policies.policy(for: port.securityGroupIds) : noIndex))
            compiledPorts[compiledPorts.count - 1].peerNotLoaded = notLoadedPeers[Int32(index)] != nil
            if port.tunnelKey != 0 {
                if let other = byTunnelKey.updateValue(Int32(index), forKey: port.tunnelKey) {
                    problems.append("ports \(kept[Int(other)].id) and \(port.id) share tunnel key \(port.tunnelKey): the last wins")
                }
            }
        }

        // Bridges: flood sets (exterior ports), static MACs and ARP answers
        // from linked router ports, ARP answers from DHCP host entries.
        var floodPorts: [Int32] = []
        var compiledBridges: [CompiledBridge] = []
        var staticMACs: [BridgeMAC: Int32] = [:]
        var arpAnswers: [DeviceAddress: ARPAnswer] = [:]
        var routerAddresses: [DeviceAddress: Int32] = [:]
        var fixedIPAnswers: [(DeviceAddress, ARPAnswer)] = []
        var pairAnswers: [(DeviceAddress, ARPAnswer)] = []
        var portsOfDevice: [Int32: [Int32]] = [:]
        for (index, port) in compiledPorts.enumerated() where !port.isRouterPort {
            portsOfDevice[port.deviceIndex, default: []].append(Int32(index))
        }
        var routerLinks: [Int32] = []
        let linked = Dictionary(linkedPorts.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, bridge) in bridges.enumerated() {
            let start = Int32(floodPorts.count)
            let linksStart = Int32(routerLinks.count)
            for portIndex in portsOfDevice[Int32(index)] ?? [] {
                let port = compiledPorts[Int(portIndex)]
                if port.isInterior {
                    let peer = compiledPorts[Int(port.peer)]
                    if peer.isRouterPort {
                        routerLinks.append(port.peer)
                        staticMACs[BridgeMAC(bridge: Int32(index), mac: peer.mac)] = portIndex
                        if peer.hasAddress {
                            arpAnswers[DeviceAddress(device: Int32(index), address: peer.address)] =
                                ARPAnswer(mac: peer.mac, bridgePort: portIndex)
                        }
                    }
                } else if port.peerNotLoaded {
                    // A router not loaded behind the link: its port's MAC and address are still this bridge's to know.
                    if let peerID = notLoadedPeers[portIndex], let peer = linked[peerID], peer.deviceKind == .router {
                        let mac = peer.mac ?? TopologySnapshot.derivedMAC(for: peer.id)
                        staticMACs[BridgeMAC(bridge: Int32(index), mac: mac)] = portIndex
                        if let address = peer.address, peer.subnet != nil {
                            arpAnswers[DeviceAddress(device: Int32(index), address: address)] = ARPAnswer(mac: mac, bridgePort: portIndex)
                        }
                    }
                } else {
                    floodPorts.append(portIndex)
                    // A VM's known MAC and addresses: a static entry, and ARP answered for them.
                    if port.mac != .zero, staticMACs[BridgeMAC(bridge: Int32(index), mac: port.mac)] == nil {
                        staticMACs[BridgeMAC(bridge: Int32(index), mac: port.mac)] = portIndex
                    }
                    let model = kept[Int(portIndex)]
                    for address in model.fixedIPs where port.mac != .zero {
                        fixedIPAnswers.append((DeviceAddress(device: Int32(index), address: address), ARPAnswer(mac: port.mac, bridgePort: noIndex)))
                    }
                    for pair in model.allowedAddressPairs where pair.prefix.length == 32 {
                        guard let mac = pair.mac else { continue }
                        pairAnswers.append((DeviceAddress(device: Int32(index), address: pair.prefix.address), ARPAnswer(mac: mac, bridgePort: noIndex)))
                    }
                }
            }
            compiledBridges.append(CompiledBridge(
                id: bridge.id, adminStateUp: bridge.adminStateUp,
                inboundChain: chain(bridge.inboundChainId, of: "bridge \(bridge.name)"),
                outboundChain: chain(bridge.outboundChainId, of: "bridge \(bridge.name)"),
                arpSuppression: bridge.arpSuppression,
                servesDHCP: dhcpSubnets.contains { $0.enabled && $0.bridgeId == bridge.id },
                floodPorts: IndexRange(start: start, end: Int32(floodPorts.count)),
                routerLinks: IndexRange(start: linksStart, end: Int32(routerLinks.count)),
                zone: bridge.tunnelKey))
        }
        // Router ports first, then every VM's fixed IPs, then allowed pairs (a
        // pair never shadows another port's fixed IP), then DHCP host entries
        // and the DHCP servers' own addresses.
        for (key, answer) in fixedIPAnswers + pairAnswers where arpAnswers[key] == nil { arpAnswers[key] = answer }
        for subnet in dhcpSubnets where subnet.enabled {
            guard let bridge = bridgeIndex[subnet.bridgeId] else { continue }
            for entry in subnet.hostEntries {
                let key = DeviceAddress(device: bridge, address: entry.address)
                if arpAnswers[key] == nil { arpAnswers[key] = ARPAnswer(mac: entry.mac, bridgePort: noIndex) }
            }
            // A server without a gateway has an address of its own: clients renewing unicast must resolve it.
            if subnet.gateway == nil {
                let key = DeviceAddress(device: bridge, address: subnet.serverAddress)
                if arpAnswers[key] == nil { arpAnswers[key] = ARPAnswer(mac: DHCPTable.derivedMAC(for: subnet.id), bridgePort: noIndex) }
            }
        }
        for (index, port) in compiledPorts.enumerated() where port.isRouterPort && port.hasAddress {
            routerAddresses[DeviceAddress(device: port.deviceIndex, address: port.address)] = Int32(index)
        }

        // Routers and their tables.
        var compiledRouters: [CompiledRouter] = []
        var routesOfRouter: [Int32: [CompiledRoute]] = [:]
        for route in routes {
            guard let router = routerIndex[route.routerId] else {
                problems.append("route \(route.id) is on missing router \(route.routerId): left out")
                continue
            }
            var egress = noIndex
            if route.kind == .normal {
                if let id = route.egressPortId, let index = portIndex[id],
                   compiledPorts[Int(index)].isRouterPort, compiledPorts[Int(index)].deviceIndex == router {
                    egress = index
                } else {
                    problems.append("route \(route.id) leaves by a port that is not on its router: the route drops")
                }
            }
            routesOfRouter[router, default: []].append(CompiledRoute(
                id: route.id, destination: MaskedPrefix(route.destination), destinationLength: route.destination.length,
                source: MaskedPrefix(route.source), sourceLength: route.source.length, weight: route.weight,
                kind: route.kind, egressPort: egress, gateway: route.nextHopGateway ?? .any,
                hasGateway: route.nextHopGateway != nil))
        }
        var routeTables: [RouteTable] = []
        for (index, router) in routers.enumerated() {
            compiledRouters.append(CompiledRouter(
                id: router.id, adminStateUp: router.adminStateUp,
                inboundChain: chain(router.inboundChainId, of: "router \(router.name)"),
                outboundChain: chain(router.outboundChainId, of: "router \(router.name)"),
                zone: Self.zone(of: router.id)))
            routeTables.append(RouteTable(routes: routesOfRouter[Int32(index)] ?? []))
        }

        // Address groups.
        var groupMembers: [IndexRange] = []
        var groupPrefixes: [MaskedPrefix] = []
        for group in ipAddressGroups {
            let start = Int32(groupPrefixes.count)
            groupPrefixes += group.addresses.map(MaskedPrefix.init)
            groupMembers.append(IndexRange(start: start, end: Int32(groupPrefixes.count)))
        }

        // Chains and rules, in each chain's order.
        var nat = CompiledNAT()
        var compiledChains: [CompiledChain] = []
        var compiledRules: [CompiledRule] = []
        var portLists: [Int32] = []
        for (index, chain) in chains.enumerated() {
            let start = Int32(compiledRules.count)
            for ruleId in chain.ruleIds {
                guard let rule = rules[ruleId] else {
                    problems.append("chain \(chain.name) lists missing rule \(ruleId): skipped")
                    continue
                }
                let action: CompiledAction
                switch rule.action {
                case .accept: action = .accept
                case .drop: action = .drop
                case .reject: action = .reject
                case .return: action = .return
                case .continue: action = .continue
                case .snat(let target):
                    action = .snat(Int32(nat.targets.count))
                    nat.targets.append(target)
                case .dnat(let target):
                    action = .dnat(Int32(nat.targets.count))
                    nat.targets.append(target)
                case .jump(let target):
                    action = .jump(chainIndex[target] ?? noIndex)
                    if chainIndex[target] == nil {
                        problems.append("rule \(rule.id) jumps to missing chain \(target): it drops")
                    }
                }
                let conditions = compile(
                    rule.conditions, portIndex: portIndex, groupIndex: groupIndex,
                    addressGroupIndex: addressGroupIndex, portLists: &portLists)
                compiledRules.append(CompiledRule(id: rule.id, chain: Int32(index), conditions: conditions, action: action))
            }
            let tracks = compiledRules[Int(start)...].contains { $0.conditions.present.contains(.connectionState) }
            compiledChains.append(CompiledChain(
                id: chain.id, rules: IndexRange(start: start, end: Int32(compiledRules.count)), tracksConnections: tracks))
        }
        // A chain that jumps to a tracking chain tracks too; then the ports
        // and devices using one track both ways, so a reply meets its
        // connection whichever side the rule is on.
        var grew = true
        while grew {
            grew = false
            for index in compiledChains.indices where !compiledChains[index].tracksConnections {
                let jumps = compiledRules[compiledChains[index].rules.range].contains { rule in
                    if case .jump(let target) = rule.action, target != noIndex { compiledChains[Int(target)].tracksConnections } else { false }
                }
                if jumps {
                    compiledChains[index].tracksConnections = true
                    grew = true
                }
            }
        }
        func tracks(_ chain: Int32) -> Bool { chain != noIndex && Int(chain) < compiledChains.count && compiledChains[Int(chain)].tracksConnections }
        for index in compiledPorts.indices {
            compiledPorts[index].tracksConnections = tracks(compiledPorts[index].inboundChain) || tracks(compiledPorts[index].outboundChain)
        }
        for index in compiledBridges.indices {
            compiledBridges[index].tracksConnections = tracks(compiledBridges[index].inboundChain) || tracks(compiledBridges[index].outboundChain)
        }
        for index in compiledRouters.indices {
            compiledRouters[index].tracksConnections = tracks(compiledRouters[index].inboundChain) || tracks(compiledRouters[index].outboundChain)
        }
        compileNAT(into: &nat, routers: &compiledRouters, ports: compiledPorts, kept: kept, portIndex: portIndex,
                   routerIndex: routerIndex, chains: compiledChains, rules: compiledRules)

        return CompiledTopology(
            ports: compiledPorts, bridges: compiledBridges, routers: compiledRouters, chains: compiledChains,
            rules: compiledRules, routeTables: routeTables, bridgeFloodPorts: floodPorts, bridgeRouterLinks: routerLinks,
            allowedSources: allowedSources,
            dhcp: DHCPTable(ports: kept, bridgeIndex: bridgeIndex, subnets: dhcpSubnets, arpAnswers: arpAnswers),
            portGroupMemberships: memberships, rulePortLists: portLists, addressGroupMembers: groupMembers,
            addressGroupPrefixes: groupPrefixes, portByTunnelKey: byTunnelKey, portIndex: portIndex, routerIndex: routerIndex,
            staticMACs: staticMACs, bridgeARPAnswers: arpAnswers, routerAddresses: routerAddresses,
            addressGroupIDs: ipAddressGroups.map(\.id), securityPolicies: SecurityPolicyTable(policies.table), nat: nat,
            notLoadedPeers: notLoadedPeers, notLoadedChains: notLoadedChains)
    }

    /// Floating IPs, gateways and NAT rules: which routers translate, and
    /// what they answer ARP for.
    private mutating func compileNAT(
        into nat: inout CompiledNAT, routers compiledRouters: inout [CompiledRouter], ports compiledPorts: [CompiledPort], kept: [Port],
        portIndex: [PortID: Int32], routerIndex: [RouterID: Int32], chains: [CompiledChain], rules: [CompiledRule]
    ) {
        // A chain with a NAT rule (or jumping to one) makes the routers it is attached to translate.
        var translatingChains = Set<Int32>()
        for (index, chain) in chains.enumerated() {
            if rules[chain.rules.range].contains(where: { if case .snat = $0.action { true } else if case .dnat = $0.action { true } else { false } }) {
                translatingChains.insert(Int32(index))
            }
        }
        var grew = !translatingChains.isEmpty
        while grew {
            grew = false
            for (index, chain) in chains.enumerated() where !translatingChains.contains(Int32(index)) {
                let jumps = rules[chain.rules.range].contains { rule in
                    if case .jump(let target) = rule.action { translatingChains.contains(target) } else { false }
                }
                if jumps {
                    translatingChains.insert(Int32(index))
                    grew = true
                }
            }
        }
        func translatesChain(_ chain: Int32) -> Bool { chain != noIndex && translatingChains.contains(chain) }
        for router in compiledRouters.indices where translatesChain(compiledRouters[router].inboundChain) || translatesChain(compiledRouters[router].outboundChain) {
            compiledRouters[router].translates = true
        }
        for port in compiledPorts where port.isRouterPort && (translatesChain(port.inboundChain) || translatesChain(port.outboundChain)) {
            compiledRouters[Int(port.deviceIndex)].translates = true
        }

        // Gateways.
        for (index, router) in routers.enumerated() {
            guard let gateway = router.gateway else { continue }
            guard let port = portIndex[gateway.portId], compiledPorts[Int(port)].isRouterPort,
                  compiledPorts[Int(port)].deviceIndex == Int32(index)
            else {
                problems.append("router \(router.name)'s gateway port \(gateway.portId) is not one of its ports: no gateway")
                continue
            }
            compiledRouters[index].gatewayPort = port
            let start = Int32(nat.routerSubnets.count)
            for other in compiledPorts where other.isRouterPort && other.deviceIndex == Int32(index) && other.hasAddress && other.id != gateway.portId {
                nat.routerSubnets.append(MaskedPrefix(other.subnet))
            }
            compiledRouters[index].tenantSubnets = IndexRange(start: start, end: Int32(nat.routerSubnets.count))
            guard gateway.enableSNAT else { continue }
            let gatewayPort = compiledPorts[Int(port)]
            let address = gateway.snatAddress ?? (gatewayPort.hasAddress ? gatewayPort.address : .any)
            guard address != .any else {
                problems.append("router \(router.name)'s gateway has no SNAT address and its port none: no SNAT")
                continue
            }
            compiledRouters[index].gatewaySNAT = address
            compiledRouters[index].translates = true
            nat.addresses.insert(DeviceAddress(device: Int32(index), address: address))
        }

        // Floating IPs.
        for floating in floatingIPs {
            guard let router = routerIndex[floating.routerId] else {
                problems.append("floating IP \(floating.address) is on missing router \(floating.routerId): left out")
                continue
            }
            nat.addresses.insert(DeviceAddress(device: router, address: floating.address))
            compiledRouters[Int(router)].translates = true
            guard let portId = floating.portId else { continue }
            guard let port = portIndex[portId], let fixed = floating.fixedAddress ?? kept[Int(port)].fixedIPs.first else {
                problems.append("floating IP \(floating.address) names port \(portId), which is missing or has no fixed IP: not translated")
                continue
            }
            let index = Int32(nat.floatingIPs.count)
            nat.floatingIPs.append(CompiledFloatingIP(id: floating.id, router: router, address: floating.address, fixed: fixed, port: port))
            nat.floatingByAddress[DeviceAddress(device: router, address: floating.address)] = index
            if nat.floatingByPort[port] == nil { nat.floatingByPort[port] = index }
        }
        for index in compiledRouters.indices where compiledRouters[index].translates {
            compiledRouters[index].tracksConnections = true
        }
    }

    /// Flattens conditions; a named port or group missing from the snapshot
    /// is kept as an index that matches nothing.
    private func compile(
        _ conditions: RuleConditions, portIndex: [PortID: Int32], groupIndex: [PortGroupID: Int32],
        addressGroupIndex: [IPAddressGroupID: Int32], portLists: inout [Int32]
    ) -> CompiledConditions {
        var compiled = CompiledConditions()
        func list(_ ports: [PortID]) -> IndexRange {
            let start = Int32(portLists.count)
            portLists += ports.map { portIndex[$0] ?? noIndex }
            return IndexRange(start: start, end: Int32(portLists.count))
        }
        if let match = conditions.inPorts {
            compiled.present.insert(.inPorts)
            if match.invert { compiled.inverted.insert(.inPorts) }
            compiled.inPorts = list(match.value)
        }
        if let match = conditions.outPorts {
            compiled.present.insert(.outPorts)
            if match.invert { compiled.inverted.insert(.outPorts) }
            compiled.outPorts = list(match.value)
        }
        compiled.set(.inPortGroup, conditions.inPortGroup) { $0.inPortGroup = groupIndex[$1] ?? noIndex }
        compiled.set(.outPortGroup, conditions.outPortGroup) { $0.outPortGroup = groupIndex[$1] ?? noIndex }
        compiled.set(.etherType, conditions.etherType) { $0.etherType = $1 }
        compiled.set(.sourceMAC, conditions.sourceMAC) { $0.sourceMAC = $1 }
        compiled.set(.destinationMAC, conditions.destinationMAC) { $0.destinationMAC = $1 }
        compiled.set(.ipProtocol, conditions.ipProtocol) { $0.ipProtocol = $1 }
        compiled.set(.sourcePrefix, conditions.sourcePrefix) { $0.sourcePrefix = MaskedPrefix($1) }
        compiled.set(.destinationPrefix, conditions.destinationPrefix) { $0.destinationPrefix = MaskedPrefix($1) }
        compiled.set(.sourceAddressGroup, conditions.sourceAddressGroup) { $0.sourceAddressGroup = addressGroupIndex[$1] ?? noIndex }
        compiled.set(.destinationAddressGroup, conditions.destinationAddressGroup) {
            $0.destinationAddressGroup = addressGroupIndex[$1] ?? noIndex
        }
        compiled.set(.sourcePorts, conditions.sourcePorts) { $0.sourcePorts = $1 }
        compiled.set(.destinationPorts, conditions.destinationPorts) { $0.destinationPorts = $1 }
        compiled.set(.icmpType, conditions.icmpType) { $0.icmpType = $1 }
        compiled.set(.icmpCode, conditions.icmpCode) { $0.icmpCode = $1 }
        compiled.set(.connectionState, conditions.connectionState) { $0.connectionState = $1 }
        compiled.set(.fragments, conditions.fragments) { $0.fragments = $1 }
        return compiled
    }
}
