import HiveStore
import Synchronization

/// The store as one agent sees it, with a switch that cuts it off for good:
/// what a killed agent process leaves behind (no more keep-alives, no lease
/// revoked), so its host's lease lapses as after a crash. Everything else
/// passes through to the real store.
final class SeverableStore: Store, Sendable {
    let store: any Store
    private let severed = Atomic<Bool>(false)

    init(_ store: any Store, severed: Bool = false) {
        self.store = store
        self.severed.store(severed, ordering: .sequentiallyConsistent)
    }

    func sever() { severed.store(true, ordering: .sequentiallyConsistent) }

    /// The store answers again (an outage that ends).
    func heal() { severed.store(false, ordering: .sequentiallyConsistent) }

    private func check() throws {
        if severed.load(ordering: .sequentiallyConsistent) { throw StoreError.unavailable("severed by the test (the agent was killed)") }
    }

    func range(_ range: KeyRange) async throws -> RangeResult {
        try check()
        return try await store.range(range)
    }

    func put(_ key: String, value: [UInt8], lease: LeaseID) async throws -> Revision {
        try check()
        return try await store.put(key, value: value, lease: lease)
    }

    func delete(_ range: KeyRange) async throws -> (deleted: Int64, revision: Revision) {
        try check()
        return try await store.delete(range)
    }

    func transaction(_ transaction: Transaction) async throws -> TransactionResult {
        try check()
        return try await store.transaction(transaction)
    }

    func watch(_ range: KeyRange, fromRevision: Revision?) async -> WatchStream {
        await store.watch(range, fromRevision: fromRevision)
    }

    func grantLease(ttl: Int64) async throws -> Lease {
        try check()
        return try await store.grantLease(ttl: ttl)
    }

    func keepAlive(_ lease: LeaseID) async throws -> Int64 {
        try check()
        return try await store.keepAlive(lease)
    }

    func revokeLease(_ lease: LeaseID) async throws {
        try check()
        try await store.revokeLease(lease)
    }

    func close() async {}
}
