import HiveModel

/// Host liveness: an agent keeps `/hive/v1/hosts/<id>/alive` under a lease;
/// when the lease lapses the key goes, and the host is down.
extension TopologyRepository {
    /// Marks a host alive for as long as `lease` is kept alive.
    public func markAlive(_ host: HostID, lease: LeaseID) async throws {
        try await store.put(TopologyKeys.hostAlive(host), value: Array("alive".utf8), lease: lease)
    }

    public func isAlive(_ host: HostID) async throws -> Bool {
        try await store.get(TopologyKeys.hostAlive(host)) != nil
    }

    /// The hosts that are alive now, and the revision to watch liveness from.
    public func liveHosts() async throws -> (hosts: Set<HostID>, revision: Revision) {
        let read = try await store.range(.prefix(TopologyKeys.hosts))
        var hosts: Set<HostID> = []
        for keyValue in read.keyValues where keyValue.key.hasSuffix("/alive") {
            let id = keyValue.key.dropFirst(TopologyKeys.hosts.count).dropLast("/alive".count)
            if let host = HostID(parsing: String(id)) { hosts.insert(host) }
        }
        return (hosts, read.revision)
    }
}
