import HiveModel
import HiveStore
import Hummingbird

import struct HiveModel.Host

extension Host: APIResource {
    static var collection: String { "hosts" }
    static var adminOnly: Bool { true }

    /// The agent records its endpoint; a PUT that leaves it out keeps it.
    func fieldsKeptWhenOmitted() -> [String: JSONFragment] {
        agentEndpoint.map { ["agentEndpoint": JSONFragment($0)] } ?? [:]
    }

    /// A host is alive while its agent keeps its liveness key under a lease.
    static func liveness(in repository: TopologyRepository) async throws -> Set<HostID>? {
        try await repository.liveHosts().hosts
    }
}

extension HiveAPIServer {
    /// /v1/hosts and /v1/hosts/{id} (admin-only), with `alive` read from the NSDB.
    func addHostRoutes(to v1: RouterGroup<APIRequestContext>) {
        let hosts = ResourceHandlers<Host>(repository: repository)
        v1.get("hosts") { try await hosts.list($0, $1) }
        v1.post("hosts") { try await hosts.create($0, $1) }
        v1.get("hosts/{id}") { try await hosts.read($0, $1) }
        v1.put("hosts/{id}") { try await hosts.replace($0, $1) }
        v1.delete("hosts/{id}") { try await hosts.delete($0, $1) }
    }
}
