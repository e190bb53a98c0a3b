import struct Foundation.UUID
import HiveModel
import HiveSimulation
import HiveStore
import Synchronization

/// What an agent loads: the scopes (`TopologyScopes`) its bound ports reach.
///
/// From the host's own scope (its bindings) to the devices of its ports,
/// then through their links, then from routers to the bridges linked to
/// them. A router linked to a router (a tenant router's link to a provider
/// router) or to a bridge the agent reached through another router (an
/// external network with every tenant's router on it) is loaded only when
/// a packet crosses to it (`demanded`): the bridge knows the router ports
/// behind its links from their copies in its scope. With the chains, security groups,
/// port groups and address groups they use. A scope read can reveal more
/// (a port's peer, a rule's jump target), so the agent repeats until
/// nothing new is wanted.
struct ScopePlan: Equatable {
    enum Kind: Equatable {
        case host, bridge, router, other
    }

    var scopes: [UUID: Kind] = [:]
    /// Ports named (bound here, linked, floating) whose device is not known
    /// yet: the agent reads them to learn it.
    var unresolvedPorts: Set<PortID> = []

    /// The ranges watched for a scope: its objects, and a device's learned entries.
    static func ranges(of scope: UUID, _ kind: Kind) -> [KeyRange] {
        var ranges = [KeyRange.prefix(TopologyScopes.prefix(of: scope))]
        switch kind {
        case .bridge: ranges.append(.prefix(TopologyKeys.learnedMACs + scope.uuidString.lowercased() + "/"))
        case .router: ranges.append(.prefix(TopologyKeys.learnedARP + scope.uuidString.lowercased() + "/"))
        case .host, .other: break
        }
        return ranges
    }
}

extension NSDBMirror {
    /// The scopes `host` needs, from what the mirror holds now.
    /// `portDevices`: devices of ports read on their own (not in the mirror).
    func wantedScopes(
        of host: HostID, portDevices: [PortID: (device: UUID, kind: DeviceKind)], demanded: Set<PendingObject> = []
    ) -> ScopePlan {
        var plan = ScopePlan()
        plan.scopes[host.uuid] = .host
        var portsOfDevice: [UUID: [Port]] = [:]
        for port in ports.values { portsOfDevice[port.deviceId, default: []].append(port) }
        var queue: [UUID] = []
        /// The devices of local ports and those packets crossed to: every link of theirs is followed.
        var roots: Set<UUID> = []
        func add(_ scope: UUID, _ kind: ScopePlan.Kind) {
            guard plan.scopes[scope] == nil else { return }
            plan.scopes[scope] = kind
            queue.append(scope)
        }
        /// `from`: the device linking to the port, nil for a root.
        func addDevice(of port: PortID, from: (kind: DeviceKind, root: Bool)? = nil) {
            let device: (id: UUID, kind: DeviceKind)
            if let known = ports[port] {
                device = (known.deviceId, known.deviceKind)
            } else if let known = portDevices[port] {
                device = (known.device, known.kind)
            } else {
                plan.unresolvedPorts.insert(port)
                return
            }
            if let from, device.kind == .router, from.kind == .router || !from.root { return }
            if from == nil { roots.insert(device.id) }
            add(device.id, device.kind == .bridge ? .bridge : .router)
        }
        func addChains(_ ids: ChainID?...) {
            for id in ids { if let id { add(id.uuid, .other) } }
        }
        for binding in bindings.values where binding.hostId == host { addDevice(of: binding.portId) }
        for object in demanded {
            switch object {
            case .port(let port): addDevice(of: port)
            case .chain(let chain): add(chain.uuid, .other)
            }
        }

        var rulesOfChain: [ChainID: [Rule]] = [:]
        for rule in rules.values { rulesOfChain[rule.chainId, default: []].append(rule) }
        var rulesOfGroup: [SecurityGroupID: [SecurityGroupRule]] = [:]
        for rule in securityGroupRules.values { rulesOfGroup[rule.securityGroupId, default: []].append(rule) }
        var floatingOfRouter: [RouterID: [FloatingIP]] = [:]
        for floating in floatingIPs.values { floatingOfRouter[floating.routerId, default: []].append(floating) }

        while let scope = queue.popLast() {
            if let bridge = bridges[BridgeID(scope)] { addChains(bridge.inboundChainId, bridge.outboundChainId) }
            if let router = routers[RouterID(scope)] {
                addChains(router.inboundChainId, router.outboundChainId)
                for floating in floatingOfRouter[router.id] ?? [] { if let port = floating.portId { addDevice(of: port) } }
            }
            if bridges[BridgeID(scope)] != nil || routers[RouterID(scope)] != nil {
                for port in portsOfDevice[scope] ?? [] {
                    addChains(port.inboundChainId, port.outboundChainId)
                    for group in port.securityGroupIds { add(group.uuid, .other) }
                    for group in port.portGroupIds { add(group.uuid, .other) }
                    if let peer = port.peerId { addDevice(of: peer, from: (port.deviceKind, roots.contains(scope))) }
                }
            }
            for rule in rulesOfChain[ChainID(scope)] ?? [] {
                if case .jump(let target) = rule.action { add(target.uuid, .other) }
                let conditions = rule.conditions
                for group in [conditions.inPortGroup?.value, conditions.outPortGroup?.value].compactMap({ $0 }) { add(group.uuid, .other) }
                for group in [conditions.sourceAddressGroup?.value, conditions.destinationAddressGroup?.value].compactMap({ $0 }) {
                    add(group.uuid, .other)
                }
            }
            for rule in rulesOfGroup[SecurityGroupID(scope)] ?? [] {
                if let remote = rule.remoteGroupId { add(remote.uuid, .other) }
            }
        }
        return plan
    }
}

extension NSDBMirror {
    /// The tags of loaded objects naming one of `scopes`: ports and devices
    /// using a chain or group, rules jumping to a chain, ports linked to a device.
    func referrers(of scopes: Set<UUID>) -> Set<InvalidationTag> {
        var tags: Set<InvalidationTag> = []
        func names(_ ids: UUID?...) -> Bool { ids.contains { $0.map(scopes.contains) ?? false } }
        for port in ports.values {
            let peerDevice = port.peerId.flatMap { ports[$0]?.deviceId }
            if names(port.inboundChainId?.uuid, port.outboundChainId?.uuid, peerDevice)
                || port.securityGroupIds.contains(where: { scopes.contains($0.uuid) })
                || port.portGroupIds.contains(where: { scopes.contains($0.uuid) }) {
                tags.insert(.port(port.id))
            }
        }
        for bridge in bridges.values where names(bridge.inboundChainId?.uuid, bridge.outboundChainId?.uuid) { tags.insert(.bridge(bridge.id)) }
        for router in routers.values where names(router.inboundChainId?.uuid, router.outboundChainId?.uuid) { tags.insert(.router(router.id)) }
        for rule in rules.values {
            let conditions = rule.conditions
            var named: [UUID?] = [conditions.inPortGroup?.value.uuid, conditions.outPortGroup?.value.uuid,
                                  conditions.sourceAddressGroup?.value.uuid, conditions.destinationAddressGroup?.value.uuid]
            if case .jump(let target) = rule.action { named.append(target.uuid) }
            if named.contains(where: { $0.map(scopes.contains) ?? false }) { tags.insert(.chain(rule.chainId)) }
        }
        for rule in securityGroupRules.values where rule.remoteGroupId.map({ scopes.contains($0.uuid) }) ?? false {
            tags.insert(.securityGroup(rule.securityGroupId))
        }
        return tags
    }
}

/// Which scopes an agent has loaded (or is loading), and the devices of
/// ports it read on their own; owned by the agent's control state.
struct ScopeLoader {
    var loaded: [UUID: ScopePlan.Kind] = [:]
    var portDevices: [PortID: (device: UUID, kind: DeviceKind)] = [:]
    /// Ports read (found or not): not read again until the next full read.
    var triedPorts: Set<PortID> = []
    /// Ports packets crossed to and chains they met: loaded too.
    var demanded: Set<PendingObject> = []

    /// What to read next for `plan`, marked as under way; nil when nothing.
    mutating func work(for plan: ScopePlan) -> ScopeWork? {
        let scopes = plan.scopes.filter { loaded[$0.key] == nil }
        let ports = plan.unresolvedPorts.subtracting(triedPorts)
        guard !scopes.isEmpty || !ports.isEmpty else { return nil }
        loaded.merge(scopes) { old, _ in old }
        triedPorts.formUnion(ports)
        return ScopeWork(scopes: scopes, ports: ports)
    }

    /// A read failed: its scopes and ports are wanted again.
    mutating func failed(_ work: ScopeWork) {
        for scope in work.scopes.keys { loaded[scope] = nil }
        triedPorts.subtract(work.ports)
    }

    mutating func finished(_ reads: ScopeReads) {
        portDevices.merge(reads.portDevices) { _, new in new }
    }
}

struct ScopeWork: Sendable {
    var scopes: [UUID: ScopePlan.Kind]
    var ports: Set<PortID>
}

/// What reading a `ScopeWork` found: the scopes' keys, the ranges to watch
/// (each from after its read), and the devices of the ports read.
struct ScopeReads: Sendable {
    var keyValues: [KeyValue] = []
    var ranges: [WatchedRange] = []
    var portDevices: [PortID: (device: UUID, kind: DeviceKind)] = [:]
    var revision: Revision = 0

    /// Reads every range of the work's scopes, and its ports, a few at a time.
    static func read(_ work: ScopeWork, from store: any Store) async throws -> ScopeReads {
        let ranges = work.scopes.flatMap { ScopePlan.ranges(of: $0.key, $0.value) }
        return try await read(ranges, ports: work.ports, from: store)
    }

    static func read(_ ranges: [KeyRange], ports: Set<PortID> = [], from store: any Store) async throws -> ScopeReads {
        enum Result: Sendable {
            case range(KeyRange, RangeResult)
            case port(PortID, KeyValue?)
        }
        var reads = ScopeReads()
        try await withThrowingTaskGroup(of: Result.self) { group in
            var pending = ranges.map { Either.range($0) } + ports.map { Either.port($0) }
            var running = 0
            func startNext() {
                guard let next = pending.popLast() else { return }
                running += 1
                switch next {
                case .range(let range): group.addTask { .range(range, try await store.range(range)) }
                case .port(let port): group.addTask { .port(port, try await store.get(TopologyKeys.object(.port, port))) }
                }
            }
            for _ in 0..<16 { startNext() }
            while running > 0, let result = try await group.next() {
                running -= 1
                switch result {
                case .range(let range, let read):
                    reads.keyValues += read.keyValues
                    reads.ranges.append(WatchedRange(range, from: read.revision + 1))
                    reads.revision = max(reads.revision, read.revision)
                case .port(let id, let keyValue):
                    if let keyValue, let port = try? Port.decode(jsonBytes: keyValue.value) {
                        reads.portDevices[id] = (port.deviceId, port.deviceKind)
                    }
                }
                startNext()
            }
        }
        return reads
    }

    private enum Either {
        case range(KeyRange)
        case port(PortID)
    }
}

/// Lets the control state wake the NSDB task when a packet needs a scope
/// read (no NSDB change would): the task sets its current coalescer here.
final class ScopeKicker: Sendable {
    private let target = Mutex<Coalescer<WatchBatch>?>(nil)

    func attach(_ coalescer: Coalescer<WatchBatch>?) { target.withLock { $0 = coalescer } }

    /// An empty batch: the NSDB task's turn looks for scopes to read.
    func kick() { target.withLock { $0 }?.push(WatchBatch(events: [], revision: 0)) }
}
