import struct Foundation.UUID
import struct Foundation.Data
import class Foundation.JSONDecoder
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore

/// The agent's copy of the part of the NSDB it needs: the objects of the
/// scopes it loaded (`TopologyScopes`: its host's bindings, the devices its
/// ports reach, their chains and groups), the learned MAC and ARP tables of
/// those devices, every host and tunnel zone, and which hosts are alive.
///
/// A plain value owned by the agent's control loop. `apply(_:)` returns the
/// invalidation tags a batch of changes touched (the contract in
/// `InvalidationTag`), so the datapath drops exactly the flows they affect.
struct NSDBMirror: Sendable {
    var bridges: [BridgeID: Bridge] = [:]
    var routers: [RouterID: Router] = [:]
    var ports: [PortID: Port] = [:]
    var routes: [RouteID: Route] = [:]
    var chains: [ChainID: Chain] = [:]
    var rules: [RuleID: Rule] = [:]
    var portGroups: [PortGroupID: PortGroup] = [:]
    var ipAddressGroups: [IPAddressGroupID: IPAddressGroup] = [:]
    var dhcpSubnets: [DHCPSubnetID: DHCPSubnet] = [:]
    var securityGroups: [SecurityGroupID: SecurityGroup] = [:]
    var securityGroupRules: [SecurityGroupRuleID: SecurityGroupRule] = [:]
    var floatingIPs: [FloatingIPID: FloatingIP] = [:]
    var hosts: [HostID: Host] = [:]
    var tunnelZones: [TunnelZoneID: TunnelZone] = [:]
    var bindings: [BindingID: Binding] = [:]
    var aliveHosts: Set<HostID> = []
    /// SNAT port blocks and the host holding each (under its lease).
    var natBlocks: [NATBlockKey: HostID] = [:]
    /// Armed live traces and the lease each lives under.
    var traceRequests: [LiveTraceID: (request: LiveTraceRequest, lease: LeaseID)] = [:]
    var state = SimulationState()
    /// The last revision applied (the newest of any range watched).
    var revision: Revision = 0
    /// Per object ("kind/id"), the scopes whose copy the mirror holds: it
    /// goes when the last one does.
    var copies: [String: Set<UUID>] = [:]
    /// Per object, the revision of the version held (kept after a delete):
    /// copies come through separate watchers, in no order across them, so
    /// an older one never replaces a newer.
    var objectRevisions: [String: Revision] = [:]

    /// What one batch of changes touched.
    struct Changes {
        var tags: Set<InvalidationTag> = []
        var topologyChanged = false
        /// Hosts, tunnel zones, bindings or liveness: where ports are.
        var placementChanged = false
        /// A change no tag narrows (a tunnel zone, a port group): every flow goes.
        var flushAll = false
        var stateChanged = false
        /// ARP entries that appeared (packets may be waiting on them).
        var learnedARP: [(RouterID, IPv4.Address)] = []
        /// Floating IPs whose port changed, or that went: their connections end.
        var movedFloatingIPs: [(RouterID, IPv4.Address)] = []
        /// Live trace requests armed or gone.
        var tracesChanged = false
        var problems: [String] = []
    }

    /// What every agent watches whole: hosts and their liveness, tunnel
    /// zones, live trace requests, SNAT blocks. The rest comes by scope.
    static let globalPrefixes = [
        TopologyKeys.kindPrefix(.host), TopologyKeys.kindPrefix(.tunnelZone), TopologyKeys.hosts,
        TopologyKeys.traceRequests, natPrefix,
    ]
    static let macPrefix = TopologyKeys.learnedMACs
    static let arpPrefix = TopologyKeys.learnedARP
    static let natPrefix = TopologyKeys.root + "state/nat/"

    /// `/hive/v1/state/nat/<address>/<block>`: who holds SNAT ports block*64 ... block*64+63 of the address.
    static func natKey(_ block: NATBlockKey) -> String { natPrefix + block.address.description + "/" + String(block.block) }
    static func natAddressPrefix(_ address: IPv4.Address) -> String { natPrefix + address.description + "/" }

    static func macKey(_ bridge: BridgeID, _ mac: EthernetAddress) -> String { macPrefix + bridge.description + "/" + mac.description }
    static func arpKey(_ router: RouterID, _ address: IPv4.Address) -> String { arpPrefix + router.description + "/" + address.description }

    /// Applies one put or delete; unknown keys (indexes) are ignored.
    mutating func apply(_ event: WatchEvent, into changes: inout Changes) {
        let key = event.keyValue.key
        let deleted = event.kind == .delete
        if let (scope, kind, id) = TopologyScopes.parse(key) {
            applyCopy(in: scope, kind: kind, id: id, event: event, into: &changes)
        } else if key.hasPrefix(TopologyKeys.topology) {
            let rest = key.dropFirst(TopologyKeys.topology.count).split(separator: "/")
            guard rest.count == 2, let kind = ObjectKind(rawValue: String(rest[0])) else { return }
            applyTopology(kind: kind, idText: String(rest[1]), value: event.keyValue.value, deleted: deleted, into: &changes)
        } else if key.hasPrefix(Self.macPrefix) {
            let parts = key.dropFirst(Self.macPrefix.count).split(separator: "/")
            guard parts.count == 2, let bridge = BridgeID(parsing: String(parts[0])), let mac = EthernetAddress(parsing: parts[1]) else { return }
            let port = deleted ? nil : PortID(parsing: event.keyValue.text)
            if state.port(of: mac, in: bridge) != port {
                if let port { state.learn(mac, on: port, in: bridge) } else { state.macTables[bridge]?[mac] = nil }
                changes.tags.insert(.macEntry(bridge, mac))
                changes.stateChanged = true
            }
        } else if key.hasPrefix(Self.arpPrefix) {
            let parts = key.dropFirst(Self.arpPrefix.count).split(separator: "/")
            guard parts.count == 2, let router = RouterID(parsing: String(parts[0])), let address = IPv4.Address(parsing: parts[1]) else { return }
            let mac = deleted ? nil : EthernetAddress(parsing: event.keyValue.text)
            if state.mac(of: address, in: router) != mac {
                if let mac {
                    state.learn(address, at: mac, in: router)
                    changes.learnedARP.append((router, address))
                } else {
                    state.arpTables[router]?[address] = nil
                }
                changes.tags.insert(.arpEntry(router, address))
                changes.stateChanged = true
            }
        } else if key.hasPrefix(Self.natPrefix) {
            let parts = key.dropFirst(Self.natPrefix.count).split(separator: "/")
            guard parts.count == 2, let address = IPv4.Address(parsing: parts[0]), let block = UInt16(parts[1]) else { return }
            let held = NATBlockKey(address: address, block: block)
            let holder = deleted ? nil : HostID(parsing: event.keyValue.text)
            if natBlocks[held] != holder {
                natBlocks[held] = holder
                changes.stateChanged = true
            }
        } else if key.hasPrefix(TopologyKeys.traceRequests) {
            guard let id = LiveTraceID(parsing: String(key.dropFirst(TopologyKeys.traceRequests.count))) else { return }
            if deleted {
                traceRequests[id] = nil
            } else if let request = try? JSONDecoder().decode(LiveTraceRequest.self, from: Data(event.keyValue.value)) {
                traceRequests[id] = (request, event.keyValue.lease)
            } else {
                changes.problems.append("ignoring an undecodable live trace request \(id)")
                return
            }
            changes.tracesChanged = true
        } else if key.hasPrefix(TopologyKeys.hosts), key.hasSuffix("/alive") {
            let text = key.dropFirst(TopologyKeys.hosts.count).dropLast("/alive".count)
            guard let host = HostID(parsing: String(text)) else { return }
            if deleted { aliveHosts.remove(host) } else { aliveHosts.insert(host) }
            changes.placementChanged = true
            tagPorts(boundTo: host, into: &changes)
        }
    }

    /// One scope's copy of an object changed: the object changes if no
    /// newer version is held, and goes with its last copy.
    private mutating func applyCopy(in scope: UUID, kind: ObjectKind, id: String, event: WatchEvent, into changes: inout Changes) {
        let object = kind.rawValue + "/" + id
        let deleted = event.kind == .delete
        if deleted {
            copies[object]?.remove(scope)
            if let left = copies[object], !left.isEmpty { return }
            copies[object] = nil
        } else {
            copies[object, default: []].insert(scope)
        }
        let revision = event.keyValue.modRevision
        if let held = objectRevisions[object], revision < held || (revision == held && !deleted) { return }
        objectRevisions[object] = revision
        applyTopology(kind: kind, idText: id, value: event.keyValue.value, deleted: deleted, into: &changes)
    }

    private mutating func applyTopology(kind: ObjectKind, idText: String, value: [UInt8], deleted: Bool, into changes: inout Changes) {
        func update<T: TopologyObject>(_ table: inout [ObjectID<T>: T], _ type: T.Type) -> (old: T?, new: T?) {
            guard let id = ObjectID<T>(parsing: idText) else { return (nil, nil) }
            let old = table[id]
            if deleted {
                table[id] = nil
                return (old, nil)
            }
            do {
                let object = try T.decode(jsonBytes: value)
                table[id] = object
                return (old, object)
            } catch {
                changes.problems.append("ignoring undecodable \(kind.rawValue) \(idText): \(error)")
                return (old, old)
            }
        }
        switch kind {
        case .bridge:
            let (old, new) = update(&bridges, Bridge.self)
            if let id = (new ?? old)?.id { changes.tags.insert(.bridge(id)) }
            changes.topologyChanged = true
        case .router:
            let (old, new) = update(&routers, Router.self)
            if let id = (new ?? old)?.id { changes.tags.insert(.router(id)) }
            changes.topologyChanged = true
        case .port:
            let (old, new) = update(&ports, Port.self)
            if let id = (new ?? old)?.id { changes.tags.insert(.port(id)) }
            // A port's device floods to it: a new or gone port changes the device's flood set.
            for port in [old, new].compactMap({ $0 }) {
                if let bridge = port.bridgeId { changes.tags.insert(.bridge(bridge)) }
                if let router = port.routerId { changes.tags.insert(.router(router)) }
            }
            // Remote-group rules match members' addresses: only a change of those touches the groups' flows.
            if old?.fixedIPs != new?.fixedIPs || old?.allowedAddressPairs != new?.allowedAddressPairs
                || old?.securityGroupIds != new?.securityGroupIds || old?.portSecurity != new?.portSecurity {
                for group in Set((old?.securityGroupIds ?? []) + (new?.securityGroupIds ?? [])) {
                    changes.tags.insert(.securityGroupMembers(group))
                }
            }
            changes.topologyChanged = true
        case .route:
            let (old, new) = update(&routes, Route.self)
            for route in [old, new].compactMap({ $0 }) { changes.tags.insert(.routeTable(route.routerId)) }
            changes.topologyChanged = true
        case .chain:
            let (old, new) = update(&chains, Chain.self)
            if let id = (new ?? old)?.id { changes.tags.insert(.chain(id)) }
            changes.topologyChanged = true
        case .rule:
            let (old, new) = update(&rules, Rule.self)
            for rule in [old, new].compactMap({ $0 }) {
                changes.tags.insert(.rule(rule.id))
                changes.tags.insert(.chain(rule.chainId))
            }
            changes.topologyChanged = true
        case .portGroup:
            let (old, new) = update(&portGroups, PortGroup.self)
            // Rules match port groups through their ports' membership; a group's own change is rare.
            if (new ?? old) != nil {
                changes.placementChanged = true
                changes.flushAll = true
            }
            changes.topologyChanged = true
        case .ipAddressGroup:
            let (old, new) = update(&ipAddressGroups, IPAddressGroup.self)
            if let id = (new ?? old)?.id { changes.tags.insert(.ipAddressGroup(id)) }
            changes.topologyChanged = true
        case .dhcpSubnet:
            let (old, new) = update(&dhcpSubnets, DHCPSubnet.self)
            for subnet in [old, new].compactMap({ $0 }) { changes.tags.insert(.bridge(subnet.bridgeId)) }
            changes.topologyChanged = true
        case .securityGroup:
            let (old, new) = update(&securityGroups, SecurityGroup.self)
            if let id = (new ?? old)?.id { changes.tags.insert(.securityGroup(id)) }
            changes.topologyChanged = true
        case .securityGroupRule:
            let (old, new) = update(&securityGroupRules, SecurityGroupRule.self)
            for rule in [old, new].compactMap({ $0 }) { changes.tags.insert(.securityGroup(rule.securityGroupId)) }
            changes.topologyChanged = true
        case .floatingIP:
            let (old, new) = update(&floatingIPs, FloatingIP.self)
            // The router translates for it, and the port's VM is no longer default-SNATed.
            for ip in [old, new].compactMap({ $0 }) {
                changes.tags.insert(.router(ip.routerId))
                if let port = ip.portId { changes.tags.insert(.port(port)) }
            }
            if let old, new?.portId != old.portId || new?.fixedAddress != old.fixedAddress || new?.address != old.address {
                changes.movedFloatingIPs.append((old.routerId, old.address))
            }
            changes.topologyChanged = true
        case .host:
            let (old, new) = update(&hosts, Host.self)
            changes.placementChanged = true
            // Its addresses are where its ports' traffic is tunnelled.
            if let id = (new ?? old)?.id, old?.underlayAddresses != new?.underlayAddresses { tagPorts(boundTo: id, into: &changes) }
        case .tunnelZone:
            _ = update(&tunnelZones, TunnelZone.self)
            changes.placementChanged = true
            changes.flushAll = true
        case .binding:
            let (old, new) = update(&bindings, Binding.self)
            for binding in [old, new].compactMap({ $0 }) { changes.tags.insert(.port(binding.portId)) }
            changes.placementChanged = true
        }
    }

    /// Tags the ports bound to `host`: where they are, or whether they can forward, changed.
    private func tagPorts(boundTo host: HostID, into changes: inout Changes) {
        for binding in bindings.values where binding.hostId == host { changes.tags.insert(.port(binding.portId)) }
    }

    /// The ports of loaded devices; the others (members of a loaded group
    /// on a device not loaded) count only as group members.
    func snapshot() -> TopologySnapshot {
        var devicePorts: [Port] = []
        var memberPorts: [Port] = []
        for port in ports.values {
            let loaded = port.deviceKind == .bridge ? bridges[BridgeID(port.deviceId)] != nil : routers[RouterID(port.deviceId)] != nil
            if loaded { devicePorts.append(port) } else { memberPorts.append(port) }
        }
        return TopologySnapshot(
            bridges: Array(bridges.values), routers: Array(routers.values), ports: devicePorts,
            routes: Array(routes.values), chains: Array(chains.values), rules: Array(rules.values),
            portGroups: Array(portGroups.values), ipAddressGroups: Array(ipAddressGroups.values),
            dhcpSubnets: Array(dhcpSubnets.values), securityGroups: Array(securityGroups.values),
            securityGroupRules: Array(securityGroupRules.values), floatingIPs: Array(floatingIPs.values),
            memberPorts: memberPorts)
    }

    /// Every address another host may tunnel from: the members of the zones
    /// `local` is in, and every other host's registered addresses.
    func peerAddresses(of local: HostID) -> Set<IPv4.Address> {
        var addresses: Set<IPv4.Address> = []
        for zone in tunnelZones.values where zone.members.contains(where: { $0.hostId == local }) {
            for member in zone.members where member.hostId != local { addresses.insert(member.address) }
        }
        for host in hosts.values where host.id != local { addresses.formUnion(host.underlayAddresses) }
        return addresses
    }

    /// The underlay address of `host` as seen from `local`: its address in a
    /// tunnel zone they share, else its first registered address.
    func underlayAddress(of host: HostID, from local: HostID) -> IPv4.Address? {
        for zone in tunnelZones.values.sorted(by: { $0.id < $1.id }) where zone.members.contains(where: { $0.hostId == local }) {
            if let member = zone.members.first(where: { $0.hostId == host }) { return member.address }
        }
        return hosts[host]?.underlayAddresses.first
    }
}
