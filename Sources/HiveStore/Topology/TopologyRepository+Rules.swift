import Synchronization
import HiveModel
import HivePacket

/// Kind-specific rules: what a change of one kind needs from the others.
extension TopologyRepository {
    /// Fills the fields the repository manages and adds the compares and
    /// writes that tie a change to the objects around it.
    func applyTopologyRules<T: TopologyObject>(to object: inout T, previous: T?, plan: inout ChangePlan) async throws {
        switch object {
        case var port as Port:
            try await portRules(&port, previous: previous as? Port, plan: &plan)
            object = port as! T
        case var bridge as Bridge:
            if let previous = previous as? Bridge {
                bridge.tunnelKey = previous.tunnelKey
            } else {
                bridge.tunnelKey = try await allocateTunnelKey(for: .bridge, bridge.id.description, plan: &plan)
            }
            object = bridge as! T
        case var chain as Chain:
            try chainRules(&chain, previous: previous as? Chain)
            object = chain as! T
        case let rule as Rule:
            if let previous = previous as? Rule {
                guard previous.chainId == rule.chainId else {
                    throw RepositoryError.refused(field: "chainId", value: rule.chainId.description,
                                                  reason: "cannot change; create the rule in the other chain and delete this one")
                }
            } else {
                try await addRule(rule, at: nil, plan: &plan)
            }
        case let route as Route:
            try await routeRules(route, plan: &plan)
        case let router as Router:
            try await routerRules(router)
        case let floatingIP as FloatingIP:
            try await floatingIPRules(floatingIP, plan: &plan)
        case let binding as Binding:
            try await bindingRules(binding, plan: &plan)
            if let previous = previous as? Binding, previous.portId != binding.portId, let old = try await find(previous.portId) {
                plan.portDevices[previous.portId] = old.object.deviceId
            }
        case let group as SecurityGroup:
            try securityGroupRules(group, previous: previous as? SecurityGroup)
        case var rule as SecurityGroupRule:
            try await securityGroupRuleRules(&rule, previous: previous as? SecurityGroupRule, plan: plan)
            object = rule as! T
        default:
            break
        }
    }

    private func portRules(_ port: inout Port, previous: Port?, plan: inout ChangePlan) async throws {
        guard let previous else {
            if let peer = port.peerId {
                throw RepositoryError.refused(field: "peerId", value: peer.description,
                                              reason: "is set by linking two ports, not at creation")
            }
            port.tunnelKey = try await allocateTunnelKey(for: .port, port.id.description, plan: &plan)
            try await portSecurityGroupRules(port, plan: plan)
            if port.deviceKind == .bridge { try await portAddressRules(&port, plan: &plan) }
            return
        }
        guard previous.deviceId == port.deviceId, previous.deviceKind == port.deviceKind else {
            throw RepositoryError.refused(field: "deviceId", value: port.deviceId.uuidString.lowercased(),
                                          reason: "cannot change; a port stays on the device it was created on")
        }
        port.tunnelKey = previous.tunnelKey
        port.peerId = previous.peerId
        if let peer = port.peerId, let linked = try await find(peer) { plan.portDevices[peer] = linked.object.deviceId }
        if port.securityGroupIds != previous.securityGroupIds || port.tenantId != previous.tenantId {
            try await portSecurityGroupRules(port, plan: plan)
        }
        if port.deviceKind == .bridge, port.fixedIPs != previous.fixedIPs {
            try await portAddressRules(&port, plan: &plan)
            try await portFloatingIPRules(port, plan: &plan)
        }
    }

    /// The bridge's DHCP subnets, from its scope (one short read, whatever
    /// the cloud's size); a store not yet given its scoped copies is listed whole.
    func dhcpSubnets(of bridge: BridgeID) async throws -> [DHCPSubnet] {
        let scoped = try await store.range(.prefix(TopologyScopes.prefix(of: bridge.uuid) + ObjectKind.dhcpSubnet.rawValue + "/"))
        let complete = try await scopesComplete()
        if !scoped.keyValues.isEmpty || complete {
            return try scoped.keyValues.map { try decode(DHCPSubnet.self, $0) }
        }
        return try await list(DHCPSubnet.self).items.map(\.object).filter { $0.bridgeId == bridge }
    }

    /// Whether every object has its scoped copies; once so, always so (the
    /// marker is never removed), so it is read until first seen.
    func scopesComplete() async throws -> Bool {
        if knownScopesComplete.load(ordering: .relaxed) { return true }
        let complete = try await store.get(TopologyScopes.completeMarker) != nil
        if complete { knownScopesComplete.store(true, ordering: .relaxed) }
        return complete
    }

    /// A bridge port's fixed IPs: each inside a subnet of its bridge and not
    /// the subnet's gateway; "auto" becomes the first free address of a
    /// subnet's pool. Uniqueness on the bridge is the unique key's job; a
    /// freshly allocated address is claimed with a compare that plans again
    /// if another writer took it meanwhile.
    private func portAddressRules(_ port: inout Port, plan: inout ChangePlan) async throws {
        guard !port.fixedIPs.isEmpty else { return }
        let bridge = BridgeID(port.deviceId)
        let subnets = try await dhcpSubnets(of: bridge).sorted { $0.subnet.address < $1.subnet.address }
        for (index, address) in port.fixedIPs.enumerated() where address != Port.automaticAddress {
            guard let subnet = subnets.first(where: { $0.subnet.contains(address) }) else {
                let expected = subnets.isEmpty ? "the bridge has none; create one with 'hive dhcp create' first"
                    : "expected an address of " + subnets.map(\.subnet.description).joined(separator: ", ") + ", or \"auto\""
                throw RepositoryError.refused(field: "fixedIPs[\(index)]", value: address.description,
                                              reason: "is not inside a DHCP subnet of the bridge (\(expected))")
            }
            if let problem = subnet.portAddressProblem(address) {
                throw RepositoryError.refused(field: "fixedIPs[\(index)]", value: address.description, reason: problem)
            }
        }
        guard port.fixedIPs.contains(Port.automaticAddress) else { return }
        let prefix = TopologyKeys.unique(.port, "address/\(port.deviceId.uuidString.lowercased())/")
        var taken = Set(try await store.range(.prefix(prefix)).keyValues.compactMap {
            IPv4.Address(parsing: String($0.key.dropFirst(prefix.count)))
        })
        taken.formUnion(port.fixedIPs)
        for (index, address) in port.fixedIPs.enumerated() where address == Port.automaticAddress {
            var found: IPv4.Address?
            search: for subnet in subnets {
                guard let pool = subnet.range else { continue }
                let hostEntries = Set(subnet.hostEntries.map(\.address))
                var candidate = pool.lowerBound.value
                while candidate <= pool.upperBound.value {
                    let address = IPv4.Address(candidate)
                    if !taken.contains(address), !hostEntries.contains(address), subnet.portAddressProblem(address) == nil {
                        found = address
                        break search
                    }
                    if candidate == UInt32.max { break }
                    candidate += 1
                }
            }
            guard let found else {
                let pools = subnets.map { "\($0.rangeStart)-\($0.rangeEnd) of \($0.subnet)" }.joined(separator: ", ")
                throw RepositoryError.refused(
                    field: "fixedIPs[\(index)]", value: "auto",
                    reason: subnets.isEmpty
                        ? "cannot be allocated: the bridge has no DHCP subnet to allocate from (create one with 'hive dhcp create', or give an address)"
                        : "cannot be allocated: every address of the bridge's pools is taken (\(pools); widen a pool, free an address or give one outside the pools)")
            }
            port.fixedIPs[index] = found
            taken.insert(found)
            // Lost to a concurrent writer: plan again with a fresh read.
            plan.require(.absent(TopologyKeys.unique(.port, UniqueKey.portAddress(deviceId: port.deviceId, address: found))), .concurrent)
        }
    }

    private func chainRules(_ chain: inout Chain, previous: Chain?) throws {
        guard let previous else {
            guard chain.ruleIds.isEmpty else {
                throw RepositoryError.refused(field: "ruleIds", value: "\(chain.ruleIds.count) rules",
                                              reason: "must be empty when a chain is created; add rules by creating them")
            }
            return
        }
        guard Set(chain.ruleIds) == Set(previous.ruleIds), chain.ruleIds.count == previous.ruleIds.count else {
            throw RepositoryError.refused(field: "ruleIds", value: chain.ruleIds.map(\.description).joined(separator: ","),
                                          reason: "may only be reordered; rules are added and removed by creating and deleting them")
        }
    }

    private func routeRules(_ route: Route, plan: inout ChangePlan) async throws {
        guard let portID = route.egressPortId, let port = try await find(portID) else { return }
        guard port.object.deviceKind == .router, port.object.deviceId == route.routerId.uuid else {
            throw RepositoryError.refused(field: "egressPortId", value: portID.description,
                                          reason: "is not a port of router \(route.routerId)")
        }
    }

    private func bindingRules(_ binding: Binding, plan: inout ChangePlan) async throws {
        guard let port = try await find(binding.portId) else {
            throw RepositoryError.missingReference(field: "portId", kind: .port, id: binding.portId.description)
        }
        if let peer = port.object.peerId {
            throw RepositoryError.refused(field: "portId", value: binding.portId.description,
                                          reason: "is an interior port linked to port \(peer); only exterior ports can be bound")
        }
        plan.portDevices[binding.portId] = port.object.deviceId
        // The port must stay unlinked until this binding is in.
        plan.require(.unchanged(TopologyKeys.object(.port, binding.portId), since: port.revision), .concurrent)
    }

    // MARK: Rules in chains

    /// Creates a rule at `position` in its chain (nil: at the end).
    public func insertRule(_ rule: Rule, at position: Int?) async throws -> Stored<Rule> {
        try check(rule)
        return try await retrying("insert rule \(rule.id)") {
            var plan = ChangePlan()
            plan.require(.absent(TopologyKeys.object(.rule, rule.id)), .newObject(kind: .rule, id: rule.id.description))
            try await addRule(rule, at: position, plan: &plan)
            try addWrites(of: rule, previous: nil, plan: &plan)
            switch try await commit(plan) {
            case .committed(let revision): return Stored(object: rule, revision: revision)
            case .retry: return nil
            }
        }
    }

    private func addRule(_ rule: Rule, at position: Int?, plan: inout ChangePlan) async throws {
        guard let chain = try await find(rule.chainId) else {
            throw RepositoryError.missingReference(field: "chainId", kind: .chain, id: rule.chainId.description)
        }
        var updated = chain.object
        let index = position ?? updated.ruleIds.count
        guard (0...updated.ruleIds.count).contains(index) else {
            throw RepositoryError.refused(field: "position", value: "\(index)",
                                          reason: "is outside the chain's rules; use 0...\(updated.ruleIds.count)")
        }
        updated.ruleIds.insert(rule.id, at: index)
        try addUpdate(chain, to: updated, plan: &plan)
    }

    // MARK: Links

    /// Links two ports into an interior link (router to bridge, router to router, ...).
    public func link(_ first: PortID, _ second: PortID) async throws -> (Stored<Port>, Stored<Port>) {
        guard first != second else {
            throw RepositoryError.refused(field: "peerId", value: second.description, reason: "cannot link a port to itself")
        }
        return try await retrying("link \(first) and \(second)") {
            let a = try await get(first)
            let b = try await get(second)
            for (port, other) in [(a, b), (b, a)] {
                if let peer = port.object.peerId {
                    throw RepositoryError.refused(field: "peerId", value: port.object.id.description,
                                                  reason: "is already linked to port \(peer); unlink it first")
                }
                guard port.object.deviceId != other.object.deviceId else {
                    throw RepositoryError.refused(field: "peerId", value: other.object.id.description,
                                                  reason: "is on the same device as port \(port.object.id)")
                }
            }
            var plan = ChangePlan()
            for port in [a, b] {
                plan.require(.absent(TopologyKeys.unique(.binding, UniqueKey.boundPort(port.object.id))),
                             .refusal(.refused(field: "peerId", value: port.object.id.description,
                                               reason: "is bound to a host interface; unbind it before linking")))
            }
            plan.portDevices[first] = a.object.deviceId
            plan.portDevices[second] = b.object.deviceId
            var newA = a.object
            var newB = b.object
            newA.peerId = second
            newB.peerId = first
            try addUpdate(a, to: newA, plan: &plan)
            try addUpdate(b, to: newB, plan: &plan)
            switch try await commit(plan) {
            case .committed(let revision):
                return (Stored(object: newA, revision: revision), Stored(object: newB, revision: revision))
            case .retry: return nil
            }
        }
    }

    /// Unlinks a port from its peer; both become exterior.
    public func unlink(_ port: PortID) async throws -> Stored<Port> {
        try await retrying("unlink \(port)") {
            let a = try await get(port)
            guard let peerID = a.object.peerId else {
                throw RepositoryError.refused(field: "peerId", value: port.description, reason: "is not linked")
            }
            var plan = ChangePlan()
            plan.portDevices[port] = a.object.deviceId
            let b = try await find(peerID)
            if let b { plan.portDevices[peerID] = b.object.deviceId }
            var newA = a.object
            newA.peerId = nil
            try addUpdate(a, to: newA, plan: &plan)
            if let b, b.object.peerId == port {
                var newB = b.object
                newB.peerId = nil
                try addUpdate(b, to: newB, plan: &plan)
            }
            switch try await commit(plan) {
            case .committed(let revision): return Stored(object: newA, revision: revision)
            case .retry: return nil
            }
        }
    }

    // MARK: Tunnel keys

    /// Keys Hive keeps for itself (flow-state messages and the like).
    public static let reservedTunnelKeys: ClosedRange<UInt32> = 0xFFFF00...0xFFFFFF
    static let allocatableTunnelKeys: ClosedRange<UInt32> = 1...0xFFFEFF

    /// Picks a free tunnel key and claims it in the plan. A racing writer
    /// that claims the same key makes the plan fail and run again.
    ///
    /// Keys come from this repository's own cursor, which reads a block of
    /// 256 at a time from a random start and hands out the free ones:
    /// concurrent creates through one API process never try the same key,
    /// two processes meet only where their walks cross, and a create reads
    /// nothing for its key. (A shared "next key" in the store made every
    /// concurrent create try the same key, and all but one run again.)
    func allocateTunnelKey(for kind: ObjectKind, _ id: String, plan: inout ChangePlan) async throws -> UInt32 {
        let candidate = try await tunnelKeyCursor.next(reading: store)
        plan.require(.absent(TopologyKeys.tunnelKey(candidate)), .concurrent)
        plan.put(TopologyKeys.tunnelKey(candidate), Array("\(kind.rawValue)/\(id)".utf8))
        return candidate
    }
}

/// Where one repository takes its next tunnel key: blocks of 256 read in
/// turn from a random start, their free keys handed out one by one.
final class TunnelKeyCursor: Sendable {
    private struct State {
        var block: UInt32
        var free: [UInt32] = []
    }

    private static let blocks = (TopologyRepository.allocatableTunnelKeys.lowerBound >> 8)...(TopologyRepository.allocatableTunnelKeys.upperBound >> 8)
    private let state = Mutex(State(block: UInt32.random(in: TunnelKeyCursor.blocks)))

    /// A key free when its block was read (the claim's compare decides).
    /// After a few full blocks in a row the walk jumps to a random block: a
    /// store filled from key 1 up (as the shared hint did) is crossed, not walked.
    func next(reading store: any Store) async throws -> UInt32 {
        var fullInARow = 0
        for _ in 0..<1024 {
            let (key, block): (UInt32?, UInt32) = state.withLock { state in
                if !state.free.isEmpty { return (state.free.removeFirst(), 0) }
                if fullInARow >= 4 { state.block = UInt32.random(in: Self.blocks) }
                defer { state.block = state.block >= Self.blocks.upperBound ? Self.blocks.lowerBound : state.block + 1 }
                return (nil, state.block)
            }
            if let key { return key }
            if fullInARow >= 4 { fullInARow = 0 }
            let taken = Set(try await store.range(.prefix(TopologyKeys.tunnelKeyBlock(block))).keyValues.map(\.key))
            let free = (block << 8...block << 8 | 0xFF).filter {
                TopologyRepository.allocatableTunnelKeys.contains($0) && !taken.contains(TopologyKeys.tunnelKey($0))
            }
            if free.isEmpty { fullInARow += 1 }
            state.withLock { $0.free += free }
        }
        throw RepositoryError.tunnelKeysExhausted
    }
}
