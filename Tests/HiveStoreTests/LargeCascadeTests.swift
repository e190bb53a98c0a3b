import Testing
import HiveModel
@testable import HiveStore
import HiveTestSupport

/// Deleting an object whose cascade is larger than one etcd transaction may
/// hold (`--max-txn-ops`, 128 by default): a chain with 200 rules, a router
/// with 200 routes. Every backend must end the same way: everything gone,
/// no index entry left behind.
enum LargeCascadeWorkload {
    static let children = 200

    /// Builds a chain with `children` rules and a router with `children`
    /// routes, deletes both, and returns what is left of them and the
    /// integrity checker's findings.
    static func run(on store: any Store) async throws -> (leftovers: [String], problems: [String]) {
        let repository = TopologyRepository(store: store)
        let chain = try await repository.create(Chain(tenantId: "acme", name: "big"))
        for _ in 0..<children {
            _ = try await repository.create(Rule(tenantId: "acme", chainId: chain.object.id, action: .accept))
        }
        let router = try await repository.create(Router(tenantId: "acme", name: "big"))
        for index in 0..<children {
            _ = try await repository.create(Route(
                tenantId: "acme", routerId: router.object.id,
                destination: prefix("10.\(index / 256).\(index % 256).0/24"), kind: .blackhole))
        }
        #expect(try await repository.get(chain.object.id).object.ruleIds.count == children)

        try await repository.delete(Chain.self, id: chain.object.id)
        try await repository.delete(Router.self, id: router.object.id)

        let left = try await store.range(.prefix(TopologyKeys.topology)).keyValues.map(\.key)
            + store.range(.prefix(TopologyKeys.root + "index/")).keyValues.map(\.key)
        return (left, try await integrityProblems(in: store))
    }
}

@Suite("Deleting large cascades")
struct LargeCascadeTests {
    @Test func embeddedStoreDeletesAChainWith200RulesAndARouterWith200Routes() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory)
            let (leftovers, problems) = try await LargeCascadeWorkload.run(on: store)
            await store.close()
            #expect(leftovers == [])
            #expect(problems == [])
        }
    }

    /// The embedded store held to etcd's limit takes the same steps and ends the same.
    @Test func embeddedStoreWithEtcdsLimitDeletesAChainWith200RulesAndARouterWith200Routes() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory, options: .init(maxOperationsPerTransaction: 128))
            let (leftovers, problems) = try await LargeCascadeWorkload.run(on: store)
            await store.close()
            #expect(leftovers == [])
            #expect(problems == [])
        }
    }

    @Test func etcdDeletesAChainWith200RulesAndARouterWith200Routes() async throws {
        try await withEtcdCluster(members: 1) { cluster in
            let store = EtcdStore(endpoints: cluster.endpoints)
            do {
                let (leftovers, problems) = try await LargeCascadeWorkload.run(on: store)
                await store.close()
                #expect(leftovers == [])
                #expect(problems == [])
            } catch {
                await store.close()
                throw error
            }
        }
    }

    /// While a large deletion is under way (here: one that stopped midway,
    /// its marker left), nothing may start naming the object; deleting it
    /// again finishes the job.
    @Test func anObjectBeingDeletedTakesNoNewReferenceAndASecondDeleteFinishesIt() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory, options: .init(maxOperationsPerTransaction: 128))
            let repository = TopologyRepository(store: store)
            let chain = try await repository.create(Chain(tenantId: "acme", name: "big"))
            for _ in 0..<LargeCascadeWorkload.children {
                _ = try await repository.create(Rule(tenantId: "acme", chainId: chain.object.id, action: .accept))
            }
            try await store.put(TopologyKeys.deletionMarker(of: chain.object.id), "chain/\(chain.object.id)")
            await #expect {
                try await repository.create(Bridge(tenantId: "acme", name: "web", inboundChainId: chain.object.id))
            } throws: { error in
                guard case RepositoryError.refused(let field, _, let reason) = error else { return false }
                return field == "inboundChainId" && reason.contains("being deleted")
            }
            try await repository.delete(Chain.self, id: chain.object.id)
            #expect(try await store.range(.prefix(TopologyKeys.topology)).keyValues.map(\.key) == [])
            #expect(try await integrityProblems(in: store) == [])
            await store.close()
        }
    }

    /// A refused large deletion deletes nothing and leaves no marker.
    @Test func aRefusedLargeDeletionLeavesTheObjectWhole() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory, options: .init(maxOperationsPerTransaction: 128))
            let repository = TopologyRepository(store: store)
            let chain = try await repository.create(Chain(tenantId: "acme", name: "big"))
            for _ in 0..<LargeCascadeWorkload.children {
                _ = try await repository.create(Rule(tenantId: "acme", chainId: chain.object.id, action: .accept))
            }
            let bridge = try await repository.create(Bridge(tenantId: "acme", name: "web", inboundChainId: chain.object.id))
            await #expect {
                try await repository.delete(Chain.self, id: chain.object.id)
            } throws: { error in
                guard case RepositoryError.inUse(_, _, let referrers) = error else { return false }
                return referrers.map { $0.id.lowercased() } == [bridge.object.id.description.lowercased()]
            }
            #expect(try await repository.get(chain.object.id).object.ruleIds.count == LargeCascadeWorkload.children)
            #expect(try await repository.list(Rule.self).items.count == LargeCascadeWorkload.children)
            #expect(try await integrityProblems(in: store) == [])
            await store.close()
        }
    }

    /// Writers adding rules to a chain and bridges naming it while it is
    /// deleted in batches: the chain ends gone with every rule, each writer
    /// either got in before (its object deleted with the chain or, for a
    /// bridge, the deletion refused) or was refused, and no index entry dangles.
    @Test func writersRacingALargeDeletionLeaveNoDanglingReference() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory, options: .init(maxOperationsPerTransaction: 128))
            let repository = TopologyRepository(store: store)
            let chain = try await repository.create(Chain(tenantId: "acme", name: "big"))
            for _ in 0..<LargeCascadeWorkload.children {
                _ = try await repository.create(Rule(tenantId: "acme", chainId: chain.object.id, action: .accept))
            }
            let deleted = await withTaskGroup(of: Bool.self) { group -> Bool in
                group.addTask {
                    do {
                        try await repository.delete(Chain.self, id: chain.object.id)
                        return true
                    } catch {
                        return false
                    }
                }
                for writer in 0..<4 {
                    group.addTask {
                        for index in 0..<20 {
                            if writer == 0 && index == 10 {
                                _ = try? await repository.create(Bridge(tenantId: "acme", name: "web", inboundChainId: chain.object.id))
                            } else {
                                _ = try? await repository.create(Rule(tenantId: "acme", chainId: chain.object.id, action: .drop))
                            }
                        }
                        return false
                    }
                }
                var deleted = false
                for await result in group { deleted = deleted || result }
                return deleted
            }
            let bridges = try await repository.list(Bridge.self).items
            if deleted {
                #expect(try await repository.find(chain.object.id) == nil)
                #expect(try await repository.list(Rule.self).items.isEmpty)
                #expect(bridges.isEmpty, "a bridge naming the chain would have kept it")
            } else {
                #expect(bridges.count == 1, "only the bridge naming the chain may refuse its deletion")
                let stored = try await repository.get(chain.object.id)
                #expect(Set(try await repository.list(Rule.self).items.map(\.object.id)) == Set(stored.object.ruleIds))
            }
            #expect(try await integrityProblems(in: store) == [])
            await store.close()
        }
    }
}
