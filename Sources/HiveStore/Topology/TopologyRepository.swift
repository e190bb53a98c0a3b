import Synchronization
// The topology repository: typed create, read, update, delete, list and
// watch of every model type on any `Store`.
//
// Invariants kept by every change, each inside the one transaction that
// makes the change:
// - Referential integrity. An object is written only if every object it
//   names exists; each reference is recorded in an index under its target,
//   and a target is deleted only if its index shows no referrer that refuses
//   (a port on a bridge, a rule jumping to a chain). Referrers that belong to
//   the target (a router's routes, a chain's rules, a port's binding) are
//   deleted with it: see docs/architecture.md for the full list.
// - Uniqueness. Names that must be unique, a port's binding and a host's
//   interface claim index keys, so two racing creates cannot both win.
// - Tunnel keys. Ports and bridges get a 24-bit key that no other object
//   holds, claimed in the same transaction as the object.
// - Optimistic concurrency. Every read returns the document's revision; an
//   update or delete with a revision that is no longer current fails with
//   `staleRevision` instead of overwriting.
//
// When a transaction fails because of a concurrent change to something it
// only read, the repository plans it again (bounded); when it fails because
// of the caller's input, it throws a `RepositoryError` saying which.

import HiveModel

/// An object with the revision it was read at (its ETag).
public struct Stored<Object: TopologyObject>: Sendable, Hashable {
    public var object: Object
    /// The document's modification revision; give it back to update or delete.
    public var revision: Revision

    public init(object: Object, revision: Revision) {
        self.object = object
        self.revision = revision
    }
}

/// Objects of one kind as of one store revision.
public struct Listing<Object: TopologyObject>: Sendable {
    public var items: [Stored<Object>]
    /// Watch from `revision + 1` to follow changes after this listing.
    public var revision: Revision
}

public enum TopologyChange<Object: TopologyObject>: Sendable, Hashable {
    case upserted(Stored<Object>)
    case deleted(ObjectID<Object>, revision: Revision)
}

public final class TopologyRepository: Sendable {
    public let store: any Store
    let maxAttempts = 64
    let tunnelKeyCursor = TunnelKeyCursor()
    let knownScopesComplete = Atomic<Bool>(false)

    public init(store: any Store) {
        self.store = store
    }

    // MARK: Reads

    public func find<T: TopologyObject>(_ id: ObjectID<T>) async throws -> Stored<T>? {
        let key = TopologyKeys.object(T.kind, id)
        guard let keyValue = try await store.get(key) else { return nil }
        return Stored(object: try decode(T.self, keyValue), revision: keyValue.modRevision)
    }

    public func get<T: TopologyObject>(_ id: ObjectID<T>) async throws -> Stored<T> {
        guard let stored = try await find(id) else { throw RepositoryError.notFound(T.kind, id.description) }
        return stored
    }

    /// Every object of a kind, in id order.
    public func list<T: TopologyObject>(_ type: T.Type) async throws -> Listing<T> {
        let read = try await store.range(.prefix(TopologyKeys.kindPrefix(T.kind)))
        let items = try read.keyValues.map { Stored(object: try decode(T.self, $0), revision: $0.modRevision) }
        return Listing(items: items, revision: read.revision)
    }

    /// Changes to objects of a kind; from `fromRevision` on, or from now.
    public func watch<T: TopologyObject>(
        _ type: T.Type, fromRevision: Revision? = nil
    ) async -> some AsyncSequence<[TopologyChange<T>], any Error> {
        let prefix = TopologyKeys.kindPrefix(T.kind)
        return await store.watch(.prefix(prefix), fromRevision: fromRevision).map { batch in
            try batch.events.map { event -> TopologyChange<T> in
                switch event.kind {
                case .put:
                    return .upserted(Stored(object: try self.decode(T.self, event.keyValue), revision: event.keyValue.modRevision))
                case .delete:
                    let idText = String(event.keyValue.key.dropFirst(prefix.count))
                    guard let id = ObjectID<T>(parsing: idText) else {
                        throw RepositoryError.corrupt(key: event.keyValue.key, detail: "not a UUID")
                    }
                    return .deleted(id, revision: event.keyValue.modRevision)
                }
            }
        }
    }

    func decode<T: TopologyObject>(_ type: T.Type, _ keyValue: KeyValue) throws -> T {
        do {
            return try T.decode(jsonBytes: keyValue.value)
        } catch {
            throw RepositoryError.corrupt(key: keyValue.key, detail: describeDecodingError(error))
        }
    }

    // MARK: Create and update

    /// Stores a new object; allocates its tunnel key if it has one. Objects
    /// that come into being with it (a security group's initial rules) are
    /// created in the same transaction.
    /// - Throws: `RepositoryError` (invalid, missing reference, duplicate, refused).
    public func create<T: TopologyObject>(_ object: T) async throws -> Stored<T> {
        try await create(object, with: object.createdWith)
    }

    /// Stores a new object and `companions`, new objects that name it or
    /// each other, in one transaction: each is checked as a create of its
    /// own would be (validation, references, unique keys, its kind's rules),
    /// and if any is refused none is stored. References to objects of the
    /// same change need no compare: they are written together.
    public func create<T: TopologyObject>(_ object: T, with companions: [any TopologyObject]) async throws -> Stored<T> {
        try check(object)
        for companion in companions { try check(companion) }
        return try await retrying("create \(T.kind.rawValue) \(object.id)") {
            var plan = ChangePlan()
            plan.noteCreated(object)
            for companion in companions { plan.noteCreated(companion) }
            let stored = try await addCreation(of: object, plan: &plan)
            for companion in companions { _ = try await addCreation(of: companion, plan: &plan) }
            switch try await commit(plan) {
            case .committed(let revision): return Stored(object: stored, revision: revision)
            case .retry: return nil
            }
        }
    }

    /// Adds a new object to a plan; returns it with the fields the
    /// repository fills (tunnel key, allocated addresses, inherited tenant).
    private func addCreation<T: TopologyObject>(of object: T, plan: inout ChangePlan) async throws -> T {
        var object = object
        plan.require(.absent(TopologyKeys.object(T.kind, object.id)), .newObject(kind: T.kind, id: object.id.description))
        try await applyTopologyRules(to: &object, previous: nil, plan: &plan)
        plan.noteCreated(object)
        try addWrites(of: object, previous: nil, plan: &plan)
        return object
    }

    /// Replaces an object. With `expectedRevision`, fails with `staleRevision`
    /// if it changed since; without, it overwrites whatever is current.
    /// Fields the repository manages (tunnel keys, links, a chain's rule set)
    /// keep their stored values.
    public func update<T: TopologyObject>(_ object: T, expectedRevision: Revision? = nil) async throws -> Stored<T> {
        try check(object)
        return try await retrying("update \(T.kind.rawValue) \(object.id)") {
            guard let current = try await find(object.id) else { throw RepositoryError.notFound(T.kind, object.id.description) }
            if let expectedRevision, expectedRevision != current.revision {
                throw RepositoryError.staleRevision(T.kind, object.id.description, expected: expectedRevision, actual: current.revision)
            }
            var object = object
            var plan = ChangePlan()
            plan.require(
                .unchanged(TopologyKeys.object(T.kind, object.id), since: current.revision),
                expectedRevision.map { .callerRevision(kind: T.kind, id: object.id.description, expected: $0) } ?? .concurrent)
            try await applyTopologyRules(to: &object, previous: current.object, plan: &plan)
            try check(object)
            try addWrites(of: object, previous: current.object, plan: &plan)
            switch try await commit(plan) {
            case .committed(let revision): return Stored(object: object, revision: revision)
            case .retry: return nil
            }
        }
    }

    func check<T: TopologyObject>(_ object: T) throws {
        do {
            try object.validate()
        } catch {
            guard case .invalid(let errors) = error else { throw error }
            throw RepositoryError.invalid(errors)
        }
    }

    /// The document, its reference index entries and its unique keys.
    func addWrites<T: TopologyObject>(of object: T, previous: T?, plan: inout ChangePlan) throws {
        let id = object.id.description
        plan.updateReferences(of: T.kind, id, old: previous?.references ?? [], new: object.references)
        try plan.updateUniqueKeys(of: T.kind, id, old: previous?.uniqueKeys ?? [], new: object.uniqueKeys)
        let bytes = try object.jsonBytes()
        plan.put(TopologyKeys.object(T.kind, object.id), bytes)
        plan.updateScopedCopies(kind: T.kind, id: id, old: previous, new: (object, bytes))
    }

    /// Adds an update of another object to a plan (a chain's rule list, a linked peer).
    func addUpdate<T: TopologyObject>(_ stored: Stored<T>, to new: T, plan: inout ChangePlan) throws {
        try check(new)
        plan.require(.unchanged(TopologyKeys.object(T.kind, new.id), since: stored.revision), .concurrent)
        try addWrites(of: new, previous: stored.object, plan: &plan)
    }
}
