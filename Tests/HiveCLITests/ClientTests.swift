import Foundation
import HiveClient
import HiveModel
import HivePacket
import Testing
import struct HiveModel.Host
import struct HiveModel.Port

/// `HiveClient` calls against a live API: each resource's calls, revisions
/// and the errors a caller can switch on.
@Suite("HiveClient against a live API")
struct ClientTests {
    @Test func createReadUpdateDeleteWithRevisions() async throws {
        try await withLiveServer { server in
            let client = server.client
            let created = try await client.create(Bridge(name: "web"))
            #expect(created.object.tenantId == "acme", "a tenant token's objects get its tenant")
            #expect(created.object.tunnelKey != 0, "the server allocates tunnel keys")
            #expect(created.revision > 0)
            let json = try JSONSerialization.jsonObject(with: created.json) as? [String: Any]
            #expect(json?["revision"] as? NSNumber == NSNumber(value: created.revision))

            let read = try await client.get(created.object.id)
            #expect(read.object == created.object)

            var renamed = read.object
            renamed.name = "frontend"
            let updated = try await client.update(renamed, ifRevision: read.revision)
            #expect(updated.object.name == "frontend")
            #expect(updated.revision > read.revision)

            // The old revision is stale now, for updates and deletes alike.
            var stale = read.object
            stale.arpSuppression = false
            await #expect(throws: HiveClientError.self) { try await client.update(stale, ifRevision: read.revision) }
            let staleDelete = await #expect(throws: HiveClientError.self) {
                try await client.delete(read.object.id, ifRevision: read.revision)
            }
            #expect(staleDelete?.status == 409 && staleDelete?.code == "stale_revision", "\(String(describing: staleDelete))")
            #expect(staleDelete?.description.contains("read it again") == true, "\(String(describing: staleDelete))")

            try await client.delete(updated.object.id, ifRevision: updated.revision)
            let gone = await #expect(throws: HiveClientError.self) { try await client.get(updated.object.id) }
            #expect(gone?.status == 404 && gone?.code == "not_found", "\(String(describing: gone))")
            #expect(try await client.list(Bridge.self).isEmpty)
        }
    }

    @Test func portsLinksRoutesRulesAndDHCP() async throws {
        try await withLiveServer { server in
            let client = server.client
            let bridge = try await client.create(Bridge(name: "web")).object
            let router = try await client.create(Router(name: "edge")).object
            let routerPort = try await client.create(Port(
                router: router.id, name: "to-web", address: IPv4.Address(10, 0, 1, 1),
                subnet: IPv4.Prefix(address: IPv4.Address(10, 0, 1, 0), length: 24), mac: Port.generatedMAC())).object
            let bridgePort = try await client.create(Port(bridge: bridge.id, name: "uplink")).object
            #expect(try await client.ports(onDevice: bridge.id.uuid).map(\.object.id) == [bridgePort.id])

            let linked = try await client.link(routerPort.id, to: bridgePort.id)
            #expect(linked.object.peerId == bridgePort.id)
            #expect(try await client.get(bridgePort.id).object.peerId == routerPort.id)
            let unlinked = try await client.unlink(routerPort.id)
            #expect(unlinked.object.peerId == nil)
            #expect(try await client.get(bridgePort.id).object.peerId == nil)

            let route = try await client.create(Route(
                routerId: router.id, destination: IPv4.Prefix(address: IPv4.Address(10, 0, 1, 0), length: 24), egressPortId: routerPort.id))
            #expect(try await client.routes(of: router.id).map(\.object.id) == [route.object.id])

            let chain = try await client.create(Chain(name: "web-in")).object
            let last = try await client.insert(Rule(chainId: chain.id, action: .drop))
            let first = try await client.insert(Rule(chainId: chain.id, action: .accept), at: 0)
            #expect(try await client.rules(of: chain.id).map(\.object.id) == [first.object.id, last.object.id])
            #expect(try await client.get(chain.id).object.ruleIds == [first.object.id, last.object.id])

            let subnet = IPv4.Prefix(address: IPv4.Address(10, 0, 1, 0), length: 24)
            let dhcp = try await client.create(DHCPSubnet(
                bridgeId: bridge.id, subnet: subnet, rangeStart: IPv4.Address(10, 0, 1, 100), rangeEnd: IPv4.Address(10, 0, 1, 199)))
            #expect(try await client.dhcpSubnets(of: bridge.id).map(\.object.id) == [dhcp.object.id])

            // A 422 carries the field, the value and every problem.
            let invalid = await #expect(throws: HiveClientError.self) {
                try await client.create(Route(routerId: router.id, destination: IPv4.Prefix(address: IPv4.Address(10, 0, 1, 5), length: 24)))
            }
            guard case .api(let serverError)? = invalid else {
                Issue.record("expected the API's error, got \(String(describing: invalid))")
                return
            }
            #expect(serverError.status == 422 && serverError.code == "invalid")
            #expect(Set(serverError.details.map(\.field)).isSuperset(of: ["destination", "egressPortId"]), "\(serverError)")
            #expect(serverError.message.contains("10.0.1.5/24"), "\(serverError)")
        }
    }

    @Test func tunnelZonesAndBindingsAreAdminOnly() async throws {
        try await withLiveServer { server in
            let admin = HiveClient(endpoint: server.endpoint, token: LiveServer.adminToken)
            let host = try await admin.create(Host(name: "compute-1", underlayAddresses: [IPv4.Address(192, 168, 10, 11)])).object
            let zone = try await admin.create(TunnelZone(name: "underlay")).object
            let joined = try await admin.addMember(host.id, address: IPv4.Address(192, 168, 10, 11), to: zone.id)
            #expect(joined.object.members == [TunnelZoneMember(hostId: host.id, address: IPv4.Address(192, 168, 10, 11))])
            #expect(try await admin.list(Host.self).first?.alive == false, "no agent holds the host's lease")

            let bridge = try await server.client.create(Bridge(name: "web")).object
            let port = try await server.client.create(Port(bridge: bridge.id, name: "vm1")).object
            let binding = try await admin.create(Binding(hostId: host.id, portId: port.id, interfaceName: "tap-vm1"))
            #expect(try await admin.bindings(host: host.id).map(\.object.id) == [binding.object.id])
            #expect(try await admin.bindings(port: port.id).map(\.object.id) == [binding.object.id])
            #expect(try await admin.bindings(host: HostID()).isEmpty)

            let forbidden = await #expect(throws: HiveClientError.self) { try await server.client.list(Binding.self) }
            #expect(forbidden?.status == 403 && forbidden?.code == "forbidden", "\(String(describing: forbidden))")

            try await admin.delete(binding.object.id)
            let left = try await admin.removeMember(host.id, from: zone.id)
            #expect(left.object.members.isEmpty)
        }
    }

    @Test func anUnreachableEndpointIsAConnectionError() async throws {
        let port = try freePort()
        let client = HiveClient(endpoint: URL(string: "http://127.0.0.1:\(port)")!, token: "T", timeout: 5)
        let error = await #expect(throws: HiveClientError.self) { try await client.list(Bridge.self) }
        guard case .unreachable? = error else {
            Issue.record("expected .unreachable, got \(String(describing: error))")
            return
        }
        #expect(error?.description.contains("cannot reach the Hive API at http://127.0.0.1:\(port)") == true)
        #expect(error?.description.contains("is `hive api` running?") == true)
    }
}
