import struct Foundation.UUID
import HiveModel

/// The compares and writes of one topology change, with the reason behind
/// each compare, so a failed transaction can say what went wrong.
struct ChangePlan {
    enum Reason {
        /// A referenced object must exist.
        case reference(field: String, kind: ObjectKind, id: String)
        /// A unique key must be free (or still ours).
        case unique(kind: ObjectKind, key: String)
        /// The caller's revision must still be current.
        case callerRevision(kind: ObjectKind, id: String, expected: Revision)
        /// The object must be absent (a create).
        case newObject(kind: ObjectKind, id: String)
        /// Something read while planning changed: plan again.
        case concurrent
        /// A refusal to report as it is if the compare fails.
        case refusal(RepositoryError)
    }

    private(set) var compares: [Compare] = []
    private(set) var reasons: [Reason] = []
    private(set) var operations: [Operation] = []
    private var writtenKeys: Set<String> = []
    /// Objects this plan creates, by object key: references to them need no
    /// compare (they cannot exist before the transaction does).
    private(set) var created: [String: any TopologyObject] = [:]
    /// Unique keys claimed so far, so two objects of one plan cannot share one.
    private var claimedUniqueKeys: [String: String] = [:]
    /// Devices of ports this plan's objects name: a binding's copy goes
    /// under its port's device, a linked port's under its peer's device too.
    var portDevices: [PortID: UUID] = [:]

    mutating func noteCreated<T: TopologyObject>(_ object: T) {
        created[TopologyKeys.object(T.kind, object.id)] = object
    }

    mutating func require(_ compare: Compare, _ reason: Reason) {
        compares.append(compare)
        reasons.append(reason)
    }

    mutating func put(_ key: String, _ value: [UInt8]) {
        writtenKeys.insert(key)
        operations.append(.put(key: key, value: value, lease: 0))
    }

    mutating func delete(_ key: String) {
        guard writtenKeys.insert(key).inserted else { return }
        operations.append(.delete(.key(key)))
    }

    mutating func delete(prefix: String) {
        operations.append(.delete(.prefix(prefix)))
    }

    /// Adds another plan's compares and writes to this one.
    mutating func append(_ other: ChangePlan) {
        for (compare, reason) in zip(other.compares, other.reasons) { require(compare, reason) }
        for operation in other.operations {
            switch operation {
            case .put(let key, let value, _): put(key, value)
            case .delete(.key(let key)): delete(key)
            case .delete(.prefix(let prefix)): delete(prefix: prefix)
            case .get: break
            }
        }
    }

    /// The larger of its compares and its writes: what a store's
    /// `maxOperationsPerTransaction` is measured against.
    var size: Int { max(compares.count, operations.count) }

    /// Requires and records the references of `new` that `old` did not have,
    /// and drops the index entries of those it no longer has.
    mutating func updateReferences(
        of kind: ObjectKind, _ id: String, old: [ObjectReference], new: [ObjectReference]
    ) {
        let oldSet = Set(old.map(IndexedReference.init))
        let newSet = Set(new.map(IndexedReference.init))
        for reference in new.uniqued(by: IndexedReference.init) where !oldSet.contains(IndexedReference(reference)) {
            let target = TopologyKeys.object(reference.kind, reference.id.uuidString)
            if created[target] == nil {
                let targetID = reference.id.uuidString.lowercased()
                require(.present(target), .reference(field: reference.field, kind: reference.kind, id: targetID))
                // A target whose deletion is under way takes no new referrer.
                require(.absent(TopologyKeys.deletionMarker(of: targetID)), .refusal(.refused(
                    field: reference.field, value: targetID,
                    reason: "\(reference.kind.rawValue) \(targetID) is being deleted (expected an object that is staying)")))
            }
            put(TopologyKeys.reference(reference, from: kind, id),
                Array((reference.onTargetDeletion == .cascade ? "cascade" : "refuse").utf8))
        }
        for reference in old.uniqued(by: IndexedReference.init) where !newSet.contains(IndexedReference(reference)) {
            delete(TopologyKeys.reference(reference, from: kind, id))
        }
    }

    /// Claims the unique keys `new` adds and frees those it drops. Two
    /// objects of the plan claiming one key is a duplicate, as it would be
    /// across transactions.
    mutating func updateUniqueKeys(of kind: ObjectKind, _ id: String, old: [String], new: [String]) throws {
        for key in Set(new).subtracting(old).sorted() {
            if let owner = claimedUniqueKeys.updateValue(id, forKey: TopologyKeys.unique(kind, key)), owner != id {
                throw RepositoryError.duplicate(kind, key: key, existing: owner)
            }
            require(.absent(TopologyKeys.unique(kind, key)), .unique(kind: kind, key: key))
            put(TopologyKeys.unique(kind, key), Array(id.utf8))
        }
        for key in Set(old).subtracting(new).sorted() {
            delete(TopologyKeys.unique(kind, key))
        }
    }
}

/// A reference as the index knows it: target and field.
struct IndexedReference: Hashable {
    var target: String
    var field: String
    init(_ reference: ObjectReference) {
        target = reference.id.uuidString.lowercased()
        field = reference.field
    }
}

extension Array {
    func uniqued<Key: Hashable>(by key: (Element) -> Key) -> [Element] {
        var seen: Set<Key> = []
        return filter { seen.insert(key($0)).inserted }
    }
}

extension TopologyRepository {
    enum CommitOutcome {
        case committed(Revision)
        case retry
    }

    /// Runs the plan as one transaction. On failure, reads what every compare
    /// covered (in the same transaction). A race (something read while
    /// planning changed) means a retry: the plan's other conclusions may be
    /// stale too, like an address it allocated and also claims as unique.
    /// Otherwise the first failed compare becomes the caller's error.
    func commit(_ plan: ChangePlan) async throws -> CommitOutcome {
        let result = try await store.transaction(Transaction(
            compares: plan.compares,
            success: plan.operations,
            failure: plan.compares.map { .get($0.range) }))
        if result.succeeded { return .committed(result.revision) }
        var firstError: RepositoryError?
        for (index, compare) in plan.compares.enumerated() {
            guard case .get(let seen) = result.responses[index], !compare.holds(in: seen) else { continue }
            let error: RepositoryError
            switch plan.reasons[index] {
            case .reference(let field, let kind, let id):
                error = .missingReference(field: field, kind: kind, id: id)
            case .unique(let kind, let key):
                error = .duplicate(kind, key: key, existing: seen.first?.text ?? "?")
            case .callerRevision(let kind, let id, let expected):
                guard let current = seen.first else {
                    error = .notFound(kind, id)
                    break
                }
                error = .staleRevision(kind, id, expected: expected, actual: current.modRevision)
            case .newObject(let kind, let id):
                error = .duplicate(kind, key: "id \(id)", existing: id)
            case .refusal(let refusal):
                error = refusal
            case .concurrent:
                return .retry
            }
            if firstError == nil { firstError = error }
        }
        throw firstError ?? RepositoryError.contention("transaction failed but every compare holds now")
    }

    /// Runs `attempt` until it commits; each attempt re-reads what it needs.
    func retrying<Result>(_ what: String, _ attempt: () async throws -> Result?) async throws -> Result {
        for round in 0..<maxAttempts {
            if let result = try await attempt() { return result }
            // Back off a little, randomly, so racing writers spread out.
            try await Task.sleep(for: .microseconds(Int.random(in: 0...(200 << min(round, 6)))))
        }
        throw RepositoryError.contention(what)
    }
}
