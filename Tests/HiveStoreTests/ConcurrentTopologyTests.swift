import Foundation
import HiveModel
import Testing
@testable import HiveStore

/// Many writers at once: ports created on bridges that other writers try to
/// delete, renames racing creates. Afterwards no tunnel key is held twice and
/// no reference dangles.
enum ConcurrentTopologyWorkload {
    static func run(on store: any Store, writers: Int, portsPerWriter: Int) async throws {
        let repository = TopologyRepository(store: store)
        let bridges = try await (0..<3).asyncMap { index in
            try await repository.create(Bridge(tenantId: "load", name: "bridge-\(index)")).object.id
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for index in 0..<portsPerWriter {
                        let bridge = bridges[(writer + index) % bridges.count]
                        do {
                            _ = try await repository.create(Port(tenantId: "load", bridge: bridge, name: "w\(writer)-\(index)"))
                        } catch RepositoryError.missingReference {
                            // The bridge was deleted by the deleter: fine, nothing may dangle.
                        }
                    }
                }
            }
            // A deleter that keeps trying to remove bridges with no ports yet.
            group.addTask {
                for round in 0..<(writers * portsPerWriter / 4) {
                    let bridge = bridges[round % bridges.count]
                    do {
                        try await repository.delete(Bridge.self, id: bridge)
                    } catch RepositoryError.inUse, RepositoryError.notFound {
                        // Expected while ports exist, or once deleted.
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}

@Suite("Concurrent topology writers")
struct ConcurrentTopologyTests {
    @Test func embeddedStoreKeepsKeysUniqueAndReferencesWhole() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory)
            try await ConcurrentTopologyWorkload.run(on: store, writers: 8, portsPerWriter: 25)
            let problems = try await integrityProblems(in: store)
            #expect(problems == [])
            let ports = try await TopologyRepository(store: store).list(Port.self).items
            #expect(ports.count > 0)
            await store.close()
        }
    }
}
