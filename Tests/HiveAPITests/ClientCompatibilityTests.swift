import Foundation
import HiveClient
import HiveModel
import HivePacket
import Testing

import struct HiveModel.Port

/// The typed client the CLI uses, against a live server: both sides of the
/// contract agree on paths, bodies and error documents.
@Suite struct ClientCompatibilityTests {
    @Test func theClientDrivesTheServer() async throws {
        try await withAPI(.live) { api in
            let port = try #require(api.client.port)
            let endpoint = try #require(URL(string: "http://127.0.0.1:\(port)"))
            let admin = HiveClient(endpoint: endpoint, token: Token.admin)
            let acme = HiveClient(endpoint: endpoint, token: Token.acme)

            let bridge = try await acme.create(Bridge(name: "web"))
            #expect(bridge.object.tenantId == "acme")
            #expect(bridge.object.tunnelKey > 0)
            let router = try await acme.create(Router(name: "edge"))
            let routerPort = try await acme.create(Port(
                router: router.object.id, address: try #require(IPv4.Address(parsing: "10.0.0.1")),
                subnet: try #require(IPv4.Prefix(parsing: "10.0.0.0/24"))))
            let bridgePort = try await acme.create(Port(bridge: bridge.object.id))
            let linked = try await acme.link(routerPort.object.id, to: bridgePort.object.id)
            #expect(linked.object.peerId == bridgePort.object.id)
            #expect(try await acme.ports(onDevice: bridge.object.id.uuid).map(\.object.id) == [bridgePort.object.id])

            let chain = try await acme.create(Chain(name: "fw"))
            let last = try await acme.insert(Rule(chainId: chain.object.id, action: .drop))
            let first = try await acme.insert(Rule(chainId: chain.object.id, action: .accept), at: 0)
            #expect(try await acme.rules(of: chain.object.id).map(\.object.id) == [first.object.id, last.object.id])

            let host = try await admin.create(Host(name: "hv1"))
            #expect(host.alive == false)
            let zone = try await admin.create(TunnelZone(name: "underlay"))
            let member = try await admin.addMember(host.object.id, address: try #require(IPv4.Address(parsing: "192.0.2.1")), to: zone.object.id)
            #expect(member.object.members.map(\.hostId) == [host.object.id])

            do {
                _ = try await acme.create(Bridge(name: "web"))
                Issue.record("a duplicate name was accepted")
            } catch let error as HiveClientError {
                #expect(error.status == 409)
                #expect(error.code == "conflict")
            }
            do {
                _ = try await acme.update(bridge.object, ifRevision: bridge.revision - 1)
                Issue.record("a stale revision was accepted")
            } catch let error as HiveClientError {
                #expect(error.code == "stale_revision")
            }
            do {
                _ = try await acme.list(Host.self)
                Issue.record("a tenant listed hosts")
            } catch let error as HiveClientError {
                #expect(error.status == 403)
            }
            let globex = HiveClient(endpoint: endpoint, token: Token.globex)
            #expect(try await globex.list(Bridge.self).isEmpty)
        }
    }
}
