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
    ///
    /// A deletion that fits in one transaction of the store
    /// (`maxOperationsPerTransaction`) is one transaction. A larger one (a
    /// chain with hundreds of rules on etcd) is a sequence: the object is
    /// marked as being deleted (no new reference to it may be written), its
    /// dependents are deleted in batches, leaves first, each batch a
    /// transaction that leaves every reference whole, and the object goes
    /// last with its marker. Each step re-reads what it deletes.
    public func delete<T: TopologyObject>(_ type: T.Type, id: ObjectID<T>, expectedRevision: Revision? = nil) async throws {
        let marker = TopologyKeys.deletionMarker(of: id)
        var failedRounds = 0
        while true {
            let step: DeletionStep
            do {
                step = try await deletionStep(T.kind, id.description, expectedRevision: expectedRevision)
            } catch RepositoryError.inUse(let kind, let id, let referrers) {
                // Refused: a mark left by this deletion (or an earlier one) goes, the object stays.
                _ = try? await store.transaction(Transaction(compares: [.present(marker)], success: [.delete(.key(marker))]))
                throw RepositoryError.inUse(kind, id, referrers: referrers)
            }
            switch step {
            case .deleted:
                return
            case .progressed:
                continue
            case .retry:
                failedRounds += 1
                guard failedRounds < maxAttempts else { throw RepositoryError.contention("delete \(T.kind.rawValue) \(id)") }
                // Back off a little, randomly, so racing writers spread out.
                try await Task.sleep(for: .microseconds(Int.random(in: 0...(200 << min(failedRounds, 6)))))
            }
        }
    }

    enum DeletionStep {
        /// The object and everything that went with it are gone.
        case deleted
        /// A step of a large deletion committed (the marker, or a batch).
        case progressed
        /// Something read changed meanwhile: plan again.
        case retry
    }

    /// An object doomed by a deletion: its share of the plan, and which
    /// other doomed objects name it (they must go first, or with it).
    private struct DoomedObject {
        var loaded: LoadedObject
        var plan: ChangePlan
        var doomedReferrers: Set<String>
    }

    /// Plans the deletion from a fresh read and commits it whole if it fits
    /// in one transaction; otherwise commits its next step.
    private func deletionStep(_ kind: ObjectKind, _ id: String, expectedRevision: Revision?) async throws -> DeletionStep {
        let markerKey = TopologyKeys.deletionMarker(of: id)
        let marker = try await store.get(markerKey)
        guard let root = try await load(kind, id) else { throw RepositoryError.notFound(kind, id) }
        // Once marked, the caller's revision was checked by the marking
        // transaction; batches since then changed the object (a chain's rule list).
        let expectedRevision = marker == nil ? expectedRevision : nil
        if let expectedRevision, expectedRevision != root.revision {
            throw RepositoryError.staleRevision(kind, id, expected: expectedRevision, actual: root.revision)
        }
        var doomed: [DoomedObject] = []
        var indexOfKey: [String: Int] = [:]
        var blockers: [RepositoryError.Referrer] = []
        var queue = [root]
        while !queue.isEmpty {
            let current = queue.removeFirst()
            let currentKey = TopologyKeys.object(current.kind, current.id)
            guard indexOfKey[currentKey] == nil else { continue }
            var plan = ChangePlan()
            let isRoot = current.kind == root.kind && current.id == root.id
            let prefix = TopologyKeys.referrers(of: current.id)
            let referrers = try await store.range(.prefix(prefix))
            // No new referrer may appear before the deletion commits.
            plan.require(Compare(.prefix(prefix), .modRevision(referrers.revision + 1), .less), .concurrent)
            plan.require(
                .unchanged(currentKey, since: current.revision),
                isRoot ? expectedRevision.map { .callerRevision(kind: kind, id: current.id, expected: $0) } ?? .concurrent : .concurrent)
            plan.delete(currentKey)
            if let binding = current.object as? Binding, let port = try await find(binding.portId) {
                plan.portDevices[binding.portId] = port.object.deviceId
            }
            if let peer = (current.object as? Port)?.peerId, let linked = try await find(peer) {
                plan.portDevices[peer] = linked.object.deviceId
            }
            plan.updateScopedCopies(kind: current.kind, id: current.id, old: current.object, new: nil)
            plan.updateReferences(of: current.kind, current.id, old: current.object.references, new: [])
            try plan.updateUniqueKeys(of: current.kind, current.id, old: current.object.uniqueKeys, new: [])
            if let key = current.object.allocatedTunnelKey, key != 0 {
                plan.delete(TopologyKeys.tunnelKey(key))
            }
            if current.kind == .host {
                plan.delete(prefix: TopologyKeys.hosts + current.id + "/")
            }
            indexOfKey[currentKey] = doomed.count
            doomed.append(DoomedObject(loaded: current, plan: plan, doomedReferrers: []))
            for keyValue in referrers.keyValues {
                guard let referrer = IndexedReferrer(key: keyValue.key, value: keyValue.value, target: current.id) else { continue }
                if referrer.cascade {
                    guard let owned = try await load(referrer.kind, referrer.id) else { return .retry }
                    // `owned` names `current`: it goes before, or with it.
                    doomed[indexOfKey[currentKey]!].doomedReferrers.insert(TopologyKeys.object(owned.kind, owned.id))
                    queue.append(owned)
                } else {
                    blockers.append(.init(kind: referrer.kind, id: referrer.id, field: referrer.field))
                }
            }
        }
        blockers.removeAll { indexOfKey[TopologyKeys.object($0.kind, $0.id)] != nil }
        if !blockers.isEmpty {
            throw RepositoryError.inUse(kind, id, referrers: blockers.uniqued(by: \.self))
        }

        var whole = ChangePlan()
        for object in doomed { whole.append(object.plan) }
        // A rule deleted on its own leaves its chain's order list.
        if let rule = root.object as? Rule, indexOfKey[TopologyKeys.object(.chain, rule.chainId)] == nil,
           let chain = try await find(rule.chainId) {
            var updated = chain.object
            updated.ruleIds.removeAll { $0 == rule.id }
            try addUpdate(chain, to: updated, plan: &whole)
        }
        if marker != nil { whole.delete(markerKey) }
        if whole.size <= store.maxOperationsPerTransaction {
            return try await commit(whole).step(done: .deleted)
        }

        guard marker != nil else {
            // Too large for one transaction: mark the object first, if no
            // referrer appeared since the referrers were read.
            var marking = ChangePlan(requiring: doomed[0].plan)
            marking.require(.absent(markerKey), .concurrent)
            marking.put(markerKey, Array("\(kind.rawValue)/\(id)".utf8))
            return try await commit(marking).step(done: .progressed)
        }

        // The next batch: objects no other doomed object names, the root last.
        let limit = store.maxOperationsPerTransaction - 1  // room for the chain update below
        var batch = ChangePlan()
        var rulesLeaving: [ChainID: [RuleID]] = [:]
        for object in doomed.dropFirst() where object.doomedReferrers.isEmpty {
            var candidate = batch
            candidate.append(object.plan)
            guard candidate.size <= limit || batch.size == 0 else { break }
            batch = candidate
            if let rule = object.loaded.object as? Rule {
                rulesLeaving[rule.chainId, default: []].append(rule.id)
            }
        }
        // A chain that stays for now keeps an order list of rules it has.
        guard batch.size > 0 else {
            throw RepositoryError.contention("delete \(kind.rawValue) \(id): nothing of it fits in one store transaction")
        }
        for (chainID, ruleIds) in rulesLeaving {
            guard let chain = try await find(chainID) else { continue }
            var updated = chain.object
            let leaving = Set(ruleIds)
            updated.ruleIds.removeAll { leaving.contains($0) }
            try addUpdate(chain, to: updated, plan: &batch)
        }
        return try await commit(batch).step(done: .progressed)
    }
}

extension TopologyRepository.CommitOutcome {
    fileprivate func step(done: TopologyRepository.DeletionStep) -> TopologyRepository.DeletionStep {
        switch self {
        case .committed: return done
        case .retry: return .retry
        }
    }
}

extension ChangePlan {
    /// Only the compares of `plan`: a transaction that requires what it read.
    fileprivate init(requiring plan: ChangePlan) {
        self.init()
        for (compare, reason) in zip(plan.compares, plan.reasons) { require(compare, reason) }
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
