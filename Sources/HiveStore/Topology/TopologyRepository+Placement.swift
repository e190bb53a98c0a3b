import HiveModel
import HivePacket

/// Where a port lives now, as the NSDB knows it: its binding, and the MACs
/// its bridge learned on it (written by the agents under their leases).
extension TopologyRepository {
    /// The binding of `port`, found through its unique key (one read and one get, not a list).
    public func binding(of port: PortID) async throws -> Stored<Binding>? {
        guard let owner = try await store.get(TopologyKeys.unique(.binding, UniqueKey.boundPort(port))),
              let id = BindingID(parsing: owner.text)
        else { return nil }
        return try await find(id)
    }

    /// The MACs `bridge` learned on `port`, sorted.
    /// - Complexity: one range read of the bridge's learned MACs.
    public func learnedMACs(on port: PortID, bridge: BridgeID) async throws -> [EthernetAddress] {
        let prefix = TopologyKeys.learnedMACs(bridge)
        let read = try await store.range(.prefix(prefix))
        return read.keyValues.compactMap { keyValue in
            guard PortID(parsing: keyValue.text) == port else { return nil }
            return EthernetAddress(parsing: keyValue.key.dropFirst(prefix.count))
        }.sorted { $0.value < $1.value }
    }
}

extension TopologyKeys {
    /// The MACs agents learned on `bridge`: `<prefix><mac>` holds the port's id.
    public static func learnedMACs(_ bridge: BridgeID) -> String { root + "state/mac/" + bridge.description + "/" }
}
