import Foundation
import HiveModel
import HivePacket
import Testing
@testable import HiveStore

/// Every object is also written under the scopes agents load it with, and
/// those copies follow it: created, moved when its containers change, gone
/// with it (cascades included).
@Suite("Topology scopes")
struct TopologyScopesTests {
    /// The scoped copies present, as "scope/kind/id" with the scope named by `names`.
    static func copies(in store: any Store, names: [UUID: String]) async throws -> Set<String> {
        let read = try await store.range(.prefix(TopologyScopes.prefix))
        return Set(read.keyValues.compactMap { keyValue in
            guard let (scope, kind, id) = TopologyScopes.parse(keyValue.key) else { return "unparsable \(keyValue.key)" }
            let object = names[UUID(uuidString: id)!] ?? id
            return "\(names[scope] ?? scope.uuidString)/\(kind.rawValue)/\(object)"
        })
    }

    @Test func copiesFollowTheirObjectsThroughCreateUpdateAndCascadingDelete() async throws {
        try await withEmbeddedRepository { repository in
            let store = repository.store
            let host = try await repository.create(Host(name: "h1")).object
            let blue = try await repository.create(Bridge(tenantId: "acme", name: "blue")).object
            let web = try await repository.create(SecurityGroup(tenantId: "acme", name: "web")).object
            let db = try await repository.create(SecurityGroup(tenantId: "acme", name: "db")).object
            let chain = try await repository.create(Chain(tenantId: "acme", name: "in")).object
            let rule = try await repository.insertRule(Rule(tenantId: "acme", chainId: chain.id, action: .drop), at: nil).object
            var port = try await repository.create(Port(tenantId: "acme", bridge: blue.id, name: "vm1")).object
            port.securityGroupIds = [web.id]
            port = try await repository.update(port).object
            let binding = try await repository.create(Binding(hostId: host.id, portId: port.id, interfaceName: "tap1")).object
            let names: [UUID: String] = [
                host.id.uuid: "h1", blue.id.uuid: "blue", web.id.uuid: "web", db.id.uuid: "db", chain.id.uuid: "in",
                rule.id.uuid: "rule", port.id.uuid: "vm1", binding.id.uuid: "binding",
            ]
            var copies = try await Self.copies(in: store, names: names)
            // The security groups' own rules (created with them) are there too.
            copies = copies.filter { !$0.contains("/security-group-rule/") }
            #expect(copies == [
                "blue/bridge/blue", "web/security-group/web", "db/security-group/db", "in/chain/in", "in/rule/rule",
                "blue/port/vm1", "web/port/vm1", "blue/binding/binding", "h1/binding/binding",
            ])
            // A copy holds the object as stored.
            let copy = try #require(try await store.get(TopologyScopes.key(in: blue.id.uuid, .port, port.id)))
            #expect(try Port.decode(jsonBytes: copy.value).securityGroupIds == [web.id])

            // The port moves from web to db: its copy moves with it.
            port.securityGroupIds = [db.id]
            _ = try await repository.update(port)
            copies = try await Self.copies(in: store, names: names)
            #expect(copies.contains("db/port/vm1") && !copies.contains("web/port/vm1"))

            // Deleting the port takes its binding: their copies go.
            try await repository.delete(Port.self, id: port.id)
            copies = try await Self.copies(in: store, names: names).filter { !$0.contains("/security-group-rule/") }
            #expect(copies == ["blue/bridge/blue", "web/security-group/web", "db/security-group/db", "in/chain/in", "in/rule/rule"])
        }
    }

    /// A linked port is also copied under its peer's device: a bridge knows
    /// the router port behind each link without loading the router.
    @Test func aLinkedPortIsCopiedUnderItsPeersDeviceUntilUnlinked() async throws {
        try await withEmbeddedRepository { repository in
            let store = repository.store
            let ext = try await repository.create(Bridge(name: "ext")).object
            let router = try await repository.create(Router(name: "r1")).object
            let gateway = try await repository.create(Port(router: router.id, name: "gw", address: IPv4.Address(parsing: "192.0.2.1")!, subnet: IPv4.Prefix(parsing: "192.0.2.0/24")!)).object
            let onExt = try await repository.create(Port(bridge: ext.id, name: "to-r1")).object
            let names: [UUID: String] = [ext.id.uuid: "ext", router.id.uuid: "r1", gateway.id.uuid: "gw", onExt.id.uuid: "to-r1"]
            _ = try await repository.link(gateway.id, onExt.id)
            var copies = try await Self.copies(in: store, names: names)
            #expect(copies == ["ext/bridge/ext", "r1/router/r1", "r1/port/gw", "ext/port/gw", "ext/port/to-r1", "r1/port/to-r1"])
            // An update of the linked port keeps both copies current.
            var renamed = try await repository.get(gateway.id).object
            renamed.name = "gateway"
            _ = try await repository.update(renamed)
            let copy = try #require(try await store.get(TopologyScopes.key(in: ext.id.uuid, .port, gateway.id)))
            #expect(try Port.decode(jsonBytes: copy.value).name == "gateway")
            _ = try await repository.unlink(gateway.id)
            copies = try await Self.copies(in: store, names: names)
            #expect(copies == ["ext/bridge/ext", "r1/router/r1", "r1/port/gw", "ext/port/to-r1"])
        }
    }

    /// A store written before scopes existed (objects without copies) gets
    /// them from `fillScopes`, once.
    @Test func fillScopesWritesTheCopiesAnOldStoreLacks() async throws {
        try await withEmbeddedRepository { repository in
            let store = repository.store
            let host = try await repository.create(Host(name: "h1")).object
            let blue = try await repository.create(Bridge(name: "blue")).object
            let port = try await repository.create(Port(bridge: blue.id, name: "vm1")).object
            _ = try await repository.create(Binding(hostId: host.id, portId: port.id, interfaceName: "tap1"))
            let written = try await store.range(.prefix(TopologyScopes.prefix)).keyValues
            #expect(written.count == 4, "bridge, port, binding twice")
            // As an older version left it.
            try await store.delete(.prefix(TopologyScopes.prefix))

            try await repository.fillScopes()
            let filled = try await store.range(.prefix(TopologyScopes.prefix)).keyValues
            #expect(filled.map(\.key) == written.map(\.key))
            #expect(filled.map(\.value) == written.map(\.value))
            #expect(try await store.get(TopologyScopes.completeMarker) != nil)

            // Once marked, it reads nothing more.
            try await store.delete(.prefix(TopologyScopes.prefix))
            try await repository.fillScopes()
            #expect(try await store.range(.prefix(TopologyScopes.prefix)).keyValues.isEmpty)
        }
    }
}
