import Foundation
import HiveStore
import Testing

/// A store whose every call fails as an unreachable etcd cluster does.
struct UnreachableStore: Store {
    var error: StoreError = .unavailable("no etcd member answered (tried http://127.0.0.1:1)")

    func range(_ range: KeyRange) async throws -> RangeResult { throw error }
    func put(_ key: String, value: [UInt8], lease: LeaseID) async throws -> Revision { throw error }
    func delete(_ range: KeyRange) async throws -> (deleted: Int64, revision: Revision) { throw error }
    func transaction(_ transaction: Transaction) async throws -> TransactionResult { throw error }
    func watch(_ range: KeyRange, fromRevision: Revision?) async -> WatchStream {
        let error = error
        return WatchStream { $0.finish(throwing: error) }
    }
    func grantLease(ttl: Int64) async throws -> Lease { throw error }
    func keepAlive(_ lease: LeaseID) async throws -> Int64 { throw error }
    func revokeLease(_ lease: LeaseID) async throws { throw error }
    func close() async {}
}

@Suite struct StoreOutageTests {
    @Test func anUnreachableStoreIs503WithAMessage() async throws {
        try await withAPI(store: UnreachableStore()) { api in
            let list = try await api.get("/v1/bridges")
            expectError(list, .serviceUnavailable, "unavailable", mentioning: ["NSDB is unavailable", "no etcd member answered"])
            expectError(try await api.post("/v1/bridges", Body.bridge("web")), .serviceUnavailable, "unavailable")
            expectError(try await api.get("/v1/hosts/3f2504e0-4f89-11d3-9a0c-0305e82c3301"), .serviceUnavailable, "unavailable")

            let health = try await api.get("/healthz", token: nil)
            #expect(health.status == .serviceUnavailable)
            #expect(health.string("status") == "unavailable")
            #expect(health.string("message")?.contains("no etcd member answered") == true)

            let metrics = try await api.get("/metrics", token: nil).text
            #expect(metrics.contains(#"hive_api_store_errors_total{error="unavailable"} 4"#), "\(metrics)")
        }
    }

    @Test func anUnknownWriteOutcomeSaysToReRead() async throws {
        try await withAPI(store: UnreachableStore(error: .outcomeUnknown("connection reset"))) { api in
            expectError(try await api.post("/v1/bridges", Body.bridge("web")), .serviceUnavailable, "unavailable", mentioning: ["re-read"])
        }
    }
}
