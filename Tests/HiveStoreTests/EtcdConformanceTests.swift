import Testing
@testable import HiveStore
import HiveTestSupport

@Suite("Store conformance: etcd (3-member cluster)")
struct EtcdConformanceTests {
    /// One cluster for all cases (starting one takes seconds); each case has its own prefix.
    @Test(.timeLimit(.minutes(5))) func etcd() async throws {
        // An executor of its own, as for the embedded cases: leases kept alive on a schedule.
        try await withTaskExecutorPreference(BlockingExecutor()) {
        try await withEtcdCluster(members: 3) { cluster in
            let store = EtcdStore(endpoints: cluster.endpoints)
            for (index, conformance) in ConformanceCase.all.enumerated() {
                do {
                    try await conformance.run(store, "/case\(index)/")
                } catch {
                    Issue.record("\(conformance.name): \(error)")
                }
            }
            await store.close()
        }
        }
    }
}

@Suite("Concurrent topology writers on etcd")
struct EtcdConcurrentTopologyTests {
    @Test func etcdClusterKeepsKeysUniqueAndReferencesWhole() async throws {
        try await withEtcdCluster(members: 3) { cluster in
            let store = EtcdStore(endpoints: cluster.endpoints)
            try await ConcurrentTopologyWorkload.run(on: store, writers: 8, portsPerWriter: 15)
            let problems = try await integrityProblems(in: store)
            #expect(problems == [])
            await store.close()
        }
    }
}
