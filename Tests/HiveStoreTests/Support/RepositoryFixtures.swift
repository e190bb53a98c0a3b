import Foundation
import HiveModel
import HivePacket
@testable import HiveStore

/// Runs `body` with a repository on a fresh embedded store, closed afterwards.
func withEmbeddedRepository<T>(_ body: (TopologyRepository) async throws -> T) async throws -> T {
    try await withTemporaryDirectory { directory in
        let store = try EmbeddedStore(directory: directory)
        let repository = TopologyRepository(store: store)
        do {
            let result = try await body(repository)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}

func prefix(_ text: String) -> IPv4.Prefix { IPv4.Prefix(parsing: text)! }
func address(_ text: String) -> IPv4.Address { IPv4.Address(parsing: text)! }

/// Checks the store's indexes against the documents: every tunnel key,
/// reference and unique key entry belongs to a live object and every
/// object's are present. Returns the problems found.
func integrityProblems(in store: any Store) async throws -> [String] {
    var problems: [String] = []
    let documents = try await store.range(.prefix(TopologyKeys.topology)).keyValues
    var live: [String: any TopologyObject] = [:]
    for keyValue in documents {
        let path = keyValue.key.dropFirst(TopologyKeys.topology.count).split(separator: "/")
        guard path.count == 2, let kind = ObjectKind(rawValue: String(path[0])) else {
            problems.append("odd key \(keyValue.key)")
            continue
        }
        live[String(path[1])] = try kind.objectType.decode(jsonBytes: keyValue.value)
    }
    // References: each target exists; each is indexed.
    let referenceIndex = Set(try await store.range(.prefix(TopologyKeys.root + "index/refs/")).keyValues.map(\.key))
    var expectedIndex: Set<String> = []
    for (id, object) in live {
        for reference in object.references {
            let target = reference.id.uuidString.lowercased()
            if live[target] == nil {
                problems.append("\(type(of: object).kind.rawValue) \(id) field \(reference.field) names missing \(reference.kind.rawValue) \(target)")
            }
            expectedIndex.insert(TopologyKeys.reference(reference, from: type(of: object).kind, id))
        }
    }
    for key in referenceIndex.subtracting(expectedIndex) { problems.append("stale reference index entry \(key)") }
    for key in expectedIndex.subtracting(referenceIndex) { problems.append("missing reference index entry \(key)") }
    // Tunnel keys: unique among objects, and the index matches.
    var owners: [UInt32: String] = [:]
    for (id, object) in live {
        guard let key = object.allocatedTunnelKey else { continue }
        if key == 0 { problems.append("\(id) has no tunnel key") }
        if let other = owners.updateValue(id, forKey: key) { problems.append("tunnel key \(key) held by \(other) and \(id)") }
    }
    let tunnelIndex = try await store.range(.prefix(TopologyKeys.root + "index/tunnel-keys/")).keyValues
    if tunnelIndex.count != owners.count {
        problems.append("tunnel key index has \(tunnelIndex.count) entries for \(owners.count) objects")
    }
    for entry in tunnelIndex {
        guard let key = UInt32(entry.key.split(separator: "/").last ?? "", radix: 16), let owner = owners[key],
              entry.text.hasSuffix(owner) else {
            problems.append("tunnel key index entry \(entry.key) -> \(entry.text) has no owner")
            continue
        }
    }
    // Unique keys (names, bindings, a port's addresses): the index holds exactly the objects' keys, each naming its owner.
    var expectedUnique: [String: String] = [:]
    for (id, object) in live {
        for key in object.uniqueKeys { expectedUnique[TopologyKeys.unique(type(of: object).kind, key)] = id }
    }
    let uniqueIndex = try await store.range(.prefix(TopologyKeys.root + "index/unique/")).keyValues
    for entry in uniqueIndex where expectedUnique[entry.key] != entry.text.lowercased() {
        problems.append("unique key \(entry.key) -> \(entry.text), expected \(expectedUnique[entry.key] ?? "no entry")")
    }
    for key in Set(expectedUnique.keys).subtracting(uniqueIndex.map(\.key)) {
        problems.append("missing unique key \(key) of \(expectedUnique[key] ?? "?")")
    }
    // A deletion marker outlives only a deletion that stopped midway.
    for marker in try await store.range(.prefix(TopologyKeys.deletionMarkers)).keyValues {
        problems.append("deletion marker \(marker.key) -> \(marker.text) left behind")
    }
    return problems
}
