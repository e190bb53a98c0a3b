import HiveModel

extension TopologyRepository {
    /// An object of any kind, with what deletion needs to know about it.
    struct LoadedObject {
        var kind: ObjectKind
        var id: String
        var revision: Revision
        var object: any TopologyObject
    }

    func load(_ kind: ObjectKind, _ id: String) async throws -> LoadedObject? {
        let key = TopologyKeys.object(kind, id)
        guard let keyValue = try await store.get(key) else { return nil }
        let object: any TopologyObject
        do {
            object = try kind.objectType.decode(jsonBytes: keyValue.value)
        } catch {
            throw RepositoryError.corrupt(key: key, detail: describeDecodingError(error))
        }
        return LoadedObject(kind: kind, id: id, revision: keyValue.modRevision, object: object)
    }

    /// Deletes an object and what belongs to it (a router's routes, a chain's
    /// rules, a bridge's DHCP subnets, a port's binding and routes). Refuses,
    /// naming the referrers, while other objects still name it.
    public func delete<T: TopologyObject>(_ type: T.Type, id: ObjectID<T>, expectedRevision: Revision? = nil) async throws {
        _ = try await retrying("delete \(T.kind.rawValue) \(id)") { () -> Bool? in
            guard let root = try await load(T.kind, id.description) else {
                throw RepositoryError.notFound(T.kind, id.description)
            }
            if let expectedRevision, expectedRevision != root.revision {
                throw RepositoryError.staleRevision(T.kind, id.description, expected: expectedRevision, actual: root.revision)
            }
            var plan = ChangePlan()
            var doomed: [LoadedObject] = []
            var doomedKeys: Set<String> = []
            var blockers: [RepositoryError.Referrer] = []
            var queue = [root]
            while !queue.isEmpty {
                let current = queue.removeFirst()
                guard doomedKeys.insert(TopologyKeys.object(current.kind, current.id)).inserted else { continue }
                doomed.append(current)
                let prefix = TopologyKeys.referrers(of: current.id)
                let referrers = try await store.range(.prefix(prefix))
                // No new referrer may appear before the deletion commits.
                plan.require(Compare(.prefix(prefix), .modRevision(referrers.revision + 1), .less), .concurrent)
                for keyValue in referrers.keyValues {
                    guard let referrer = IndexedReferrer(key: keyValue.key, value: keyValue.value, target: current.id) else { continue }
                    if referrer.cascade {
                        guard let owned = try await load(referrer.kind, referrer.id) else { return nil }
                        queue.append(owned)
                    } else {
                        blockers.append(.init(kind: referrer.kind, id: referrer.id, field: referrer.field))
                    }
                }
            }
            blockers.removeAll { doomedKeys.contains(TopologyKeys.object($0.kind, $0.id)) }
            if !blockers.isEmpty {
                throw RepositoryError.inUse(T.kind, id.description, referrers: blockers.uniqued(by: \.self))
            }
            for object in doomed {
                let isRoot = object.kind == root.kind && object.id == root.id
                plan.require(
                    .unchanged(TopologyKeys.object(object.kind, object.id), since: object.revision),
                    isRoot ? expectedRevision.map { .callerRevision(kind: T.kind, id: object.id, expected: $0) } ?? .concurrent : .concurrent)
                plan.delete(TopologyKeys.object(object.kind, object.id))
                plan.updateReferences(of: object.kind, object.id, old: object.object.references, new: [])
                try plan.updateUniqueKeys(of: object.kind, object.id, old: object.object.uniqueKeys, new: [])
                if let key = object.object.allocatedTunnelKey, key != 0 {
                    plan.delete(TopologyKeys.tunnelKey(key))
                }
                if object.kind == .host {
                    plan.delete(prefix: TopologyKeys.hosts + object.id + "/")
                }
            }
            // A rule deleted on its own leaves its chain's order list.
            if let rule = root.object as? Rule, !doomedKeys.contains(TopologyKeys.object(.chain, rule.chainId)),
               let chain = try await find(rule.chainId) {
                var updated = chain.object
                updated.ruleIds.removeAll { $0 == rule.id }
                try addUpdate(chain, to: updated, plan: &plan)
            }
            switch try await commit(plan) {
            case .committed: return true
            case .retry: return nil
            }
        }
    }
}

extension TopologyObject {
    /// The tunnel key the object holds, if its kind has one.
    var allocatedTunnelKey: UInt32? {
        switch self {
        case let port as Port: return port.tunnelKey
        case let bridge as Bridge: return bridge.tunnelKey
        default: return nil
        }
    }
}

extension ObjectKind {
    /// The model type stored under this kind.
    var objectType: any TopologyObject.Type {
        switch self {
        case .bridge: return Bridge.self
        case .router: return Router.self
        case .port: return Port.self
        case .route: return Route.self
        case .chain: return Chain.self
        case .rule: return Rule.self
        case .portGroup: return PortGroup.self
        case .ipAddressGroup: return IPAddressGroup.self
        case .host: return Host.self
        case .tunnelZone: return TunnelZone.self
        case .binding: return Binding.self
        case .dhcpSubnet: return DHCPSubnet.self
        case .securityGroup: return SecurityGroup.self
        case .securityGroupRule: return SecurityGroupRule.self
        case .floatingIP: return FloatingIP.self
        }
    }
}
