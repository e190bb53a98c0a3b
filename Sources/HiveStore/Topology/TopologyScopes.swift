import struct Foundation.UUID
import HiveModel

/// Where agents find the objects they need: each topology object is also
/// written under the scopes an agent loads it with, so an agent watches one
/// prefix per device, chain or group it has loaded and never hears of the
/// rest of the cloud (etcd watches ranges of keys, not queries).
///
/// ```
/// /hive/v1/scoped/<scope>/<kind>/<uuid>     a copy of the object (JSON)
/// ```
///
/// A scope is the id of the container the object lives in:
/// - a bridge or router, for itself, its ports and the ports linked to
///   them (a bridge knows the router ports behind its links without
///   loading the routers), routes, DHCP subnets and floating IPs, and the
///   bindings of its ports;
/// - a chain, for itself and its rules; a security group, for itself, its
///   rules and its member ports; a port group, for itself and its members;
///   an IP address group, for itself;
/// - a host, for the bindings to it (an agent finds its ports there).
/// Hosts and tunnel zones have no scope: every agent reads all of them.
public enum TopologyScopes {
    public static let prefix = TopologyKeys.root + "scoped/"

    /// Present once every object has its scoped copies (stores written
    /// before scopes existed are filled in by `TopologyRepository.fillScopes()`).
    public static let completeMarker = TopologyKeys.root + "index/scopes-complete"

    public static func prefix(of scope: UUID) -> String { prefix + scope.uuidString.lowercased() + "/" }

    public static func key(in scope: UUID, _ kind: ObjectKind, _ id: some CustomStringConvertible) -> String {
        prefix(of: scope) + kind.rawValue + "/" + id.description.lowercased()
    }

    /// The scope, kind and id a scoped key names.
    public static func parse(_ key: String) -> (scope: UUID, kind: ObjectKind, id: String)? {
        guard key.hasPrefix(prefix) else { return nil }
        let parts = key.dropFirst(prefix.count).split(separator: "/")
        guard parts.count == 3, let scope = UUID(uuidString: String(parts[0])), let kind = ObjectKind(rawValue: String(parts[1]))
        else { return nil }
        return (scope, kind, String(parts[2]))
    }

    /// The scopes of an object. The devices of ports it names (a binding's
    /// port, a port's peer) come from the caller; one missing leaves that scope out.
    public static func of(_ object: any TopologyObject, portDevices: [PortID: UUID] = [:]) -> Set<UUID> {
        switch object {
        case let bridge as Bridge: [bridge.id.uuid]
        case let router as Router: [router.id.uuid]
        case let port as Port:
            Set([port.deviceId] + port.securityGroupIds.map(\.uuid) + port.portGroupIds.map(\.uuid)
                + (port.peerId.flatMap { portDevices[$0] }.map { [$0] } ?? []))
        case let route as Route: [route.routerId.uuid]
        case let subnet as DHCPSubnet: [subnet.bridgeId.uuid]
        case let floatingIP as FloatingIP: [floatingIP.routerId.uuid]
        case let binding as Binding: Set([binding.hostId.uuid] + (portDevices[binding.portId].map { [$0] } ?? []))
        case let chain as Chain: [chain.id.uuid]
        case let rule as Rule: [rule.chainId.uuid]
        case let group as SecurityGroup: [group.id.uuid]
        case let rule as SecurityGroupRule: [rule.securityGroupId.uuid]
        case let group as PortGroup: [group.id.uuid]
        case let group as IPAddressGroup: [group.id.uuid]
        default: []
        }
    }
}

extension ChangePlan {
    /// Writes the scoped copies of `new` (nil: deleted) and deletes those of
    /// the scopes `old` was in and `new` is not.
    mutating func updateScopedCopies(kind: ObjectKind, id: String, old: (any TopologyObject)?, new: (object: any TopologyObject, bytes: [UInt8])?) {
        func scopes(_ object: (any TopologyObject)?) -> Set<UUID> {
            guard let object else { return [] }
            return TopologyScopes.of(object, portDevices: portDevices)
        }
        let newScopes = scopes(new?.object)
        for scope in scopes(old).subtracting(newScopes) { delete(TopologyScopes.key(in: scope, kind, id)) }
        if let new {
            for scope in newScopes { put(TopologyScopes.key(in: scope, kind, id), new.bytes) }
        }
    }
}

extension TopologyRepository {
    /// Writes the scoped copies a store written before scopes existed lacks,
    /// then marks the store complete. Idempotent; the API runs it at start.
    public func fillScopes() async throws {
        while try await store.get(TopologyScopes.completeMarker) == nil {
            let read = try await store.range(.prefix(TopologyKeys.topology))
            var objects: [(key: KeyValue, kind: ObjectKind, id: String, object: any TopologyObject)] = []
            var portDevices: [PortID: UUID] = [:]
            for keyValue in read.keyValues {
                let parts = keyValue.key.dropFirst(TopologyKeys.topology.count).split(separator: "/")
                guard parts.count == 2, let kind = ObjectKind(rawValue: String(parts[0])),
                      let object = try? kind.objectType.decode(jsonBytes: keyValue.value) else { continue }
                if let port = object as? Port { portDevices[port.id] = port.deviceId }
                objects.append((keyValue, kind, String(parts[1]), object))
            }
            // Each object's copies go with a compare on the object: one changed meanwhile already has them.
            var batches = [Transaction()]
            for (keyValue, kind, id, object) in objects {
                let scopes = TopologyScopes.of(object, portDevices: portDevices)
                let puts = scopes.map { Operation.put(key: TopologyScopes.key(in: $0, kind, id), value: keyValue.value) }
                if puts.isEmpty { continue }
                if batches[batches.count - 1].success.count + puts.count > store.maxOperationsPerTransaction - 1 {
                    batches.append(Transaction())
                }
                batches[batches.count - 1].compares.append(.unchanged(keyValue.key, since: keyValue.modRevision))
                batches[batches.count - 1].success += puts
            }
            var complete = true
            for batch in batches where !batch.success.isEmpty {
                if try await !store.transaction(batch).succeeded { complete = false }
            }
            // A batch refused (an object changed meanwhile) is read and written again.
            if complete {
                _ = try await store.transaction(Transaction(success: [.put(key: TopologyScopes.completeMarker, value: Array("1".utf8))]))
            }
        }
    }
}
