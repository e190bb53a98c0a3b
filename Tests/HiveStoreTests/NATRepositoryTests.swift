import Foundation
import HiveModel
import HivePacket
import Testing
@testable import HiveStore

import struct HiveModel.Port

/// A router's gateway and floating IPs in the repository: the ports they
/// name are checked in the change's transaction, a floating IP's address is
/// given out once, and deleting follows the references (router cascades,
/// port refuses).
@Suite("NAT objects in the repository")
struct NATRepositoryTests {
    /// Router "edge" with an uplink port, a bridge with a DHCP subnet and a VM port with fixed IPs.
    private struct Topology {
        var router: RouterID
        var uplink: PortID
        var bridge: BridgeID
        var vm: PortID
    }

    private func topology(_ repository: TopologyRepository) async throws -> Topology {
        let router = try await repository.create(Router(tenantId: "acme", name: "edge")).object.id
        let uplink = try await repository.create(Port(
            tenantId: "acme", router: router, name: "uplink", address: address("198.51.100.2"), subnet: prefix("198.51.100.0/24"))).object.id
        let bridge = try await repository.create(Bridge(tenantId: "acme", name: "web")).object.id
        _ = try await repository.create(DHCPSubnet(
            tenantId: "acme", bridgeId: bridge, subnet: prefix("10.0.1.0/24"),
            rangeStart: address("10.0.1.100"), rangeEnd: address("10.0.1.200"), gateway: address("10.0.1.1")))
        let vm = try await repository.create(Port(
            tenantId: "acme", bridge: bridge, name: "vm1", fixedIPs: [address("10.0.1.5"), address("10.0.1.6")])).object.id
        return Topology(router: router, uplink: uplink, bridge: bridge, vm: vm)
    }

    private func refusal(_ error: any Error, field: String) -> String? {
        guard case RepositoryError.refused(field, _, let reason) = error else { return nil }
        return reason
    }

    @Test func aGatewayPortMustBeAPortOfItsRouter() async throws {
        try await withEmbeddedRepository { repository in
            let net = try await topology(repository)
            var router = try await repository.get(net.router).object
            router.gateway = RouterGateway(portId: net.uplink, snatAddress: address("198.51.100.3"))
            let stored = try await repository.update(router)
            #expect(stored.object.gateway == RouterGateway(portId: net.uplink, snatAddress: address("198.51.100.3"), enableSNAT: true))

            // Another router's port, and a bridge port: refused, naming gateway.portId.
            let other = try await repository.create(Router(tenantId: "acme", name: "core")).object.id
            let otherPort = try await repository.create(Port(
                tenantId: "acme", router: other, name: "up", address: address("192.0.2.1"), subnet: prefix("192.0.2.0/24"))).object.id
            var wrong = try await repository.get(other).object
            for portId in [net.uplink, net.vm] {
                wrong.gateway = RouterGateway(portId: portId)
                await #expect {
                    try await repository.update(wrong)
                } throws: { error in
                    refusal(error, field: "gateway.portId")?.contains("not of router \(other)") == true
                }
            }
            // A router created with a gateway has no port of its own yet.
            await #expect {
                try await repository.create(Router(tenantId: "acme", name: "new", gateway: RouterGateway(portId: otherPort)))
            } throws: { error in refusal(error, field: "gateway.portId") != nil }
            #expect(try await repository.get(other).object.gateway == nil)

            // The gateway port stays while it is the gateway.
            await #expect {
                try await repository.delete(Port.self, id: net.uplink)
            } throws: { error in
                guard case RepositoryError.inUse(.port, _, let referrers) = error else { return false }
                return referrers.contains { $0.kind == .router && $0.field == "gateway.portId" }
            }
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func aFloatingIPGoesToABridgePortWithAFixedIP() async throws {
        try await withEmbeddedRepository { repository in
            let net = try await topology(repository)
            let unaddressed = try await repository.create(Port(tenantId: "acme", bridge: net.bridge, name: "bare")).object.id

            let routerPort = FloatingIP(tenantId: "acme", routerId: net.router, address: address("198.51.100.10"), portId: net.uplink)
            await #expect {
                try await repository.create(routerPort)
            } throws: { error in refusal(error, field: "portId")?.contains("is a port of router") == true }

            let bare = FloatingIP(tenantId: "acme", routerId: net.router, address: address("198.51.100.10"), portId: unaddressed)
            await #expect {
                try await repository.create(bare)
            } throws: { error in refusal(error, field: "portId")?.contains("has no fixed IP") == true }

            let notOurs = FloatingIP(tenantId: "acme", routerId: net.router, address: address("198.51.100.10"), portId: net.vm,
                                     fixedAddress: address("10.0.1.7"))
            await #expect {
                try await repository.create(notOurs)
            } throws: { error in refusal(error, field: "fixedAddress")?.contains("10.0.1.5, 10.0.1.6") == true }
            #expect(try await repository.list(FloatingIP.self).items.isEmpty)

            let good = FloatingIP(tenantId: "acme", routerId: net.router, address: address("198.51.100.10"), portId: net.vm,
                                  fixedAddress: address("10.0.1.6"))
            let stored = try await repository.create(good)
            #expect(stored.object == good)
            // Moving it to a port without an address is refused as a create is; releasing it is fine.
            var moved = stored.object
            moved.portId = unaddressed
            moved.fixedAddress = nil
            await #expect {
                try await repository.update(moved)
            } throws: { error in refusal(error, field: "portId") != nil }
            moved.portId = nil
            #expect(try await repository.update(moved).object.portId == nil)
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func aFloatingAddressIsGivenOutOnce() async throws {
        try await withEmbeddedRepository { repository in
            let net = try await topology(repository)
            let first = try await repository.create(FloatingIP(tenantId: "acme", routerId: net.router, address: address("198.51.100.20")))
            await #expect(throws: RepositoryError.duplicate(.floatingIP, key: "floating-ip/198.51.100.20", existing: first.object.id.description)) {
                try await repository.create(FloatingIP(tenantId: "globex", routerId: net.router, address: address("198.51.100.20")))
            }
            // Changing the address frees the old one.
            var renumbered = first.object
            renumbered.address = address("198.51.100.21")
            _ = try await repository.update(renumbered)
            _ = try await repository.create(FloatingIP(tenantId: "acme", routerId: net.router, address: address("198.51.100.20")))
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func aPortWithAFloatingIPStaysAndKeepsItsAddress() async throws {
        try await withEmbeddedRepository { repository in
            let net = try await topology(repository)
            let floating = try await repository.create(FloatingIP(
                tenantId: "acme", routerId: net.router, address: address("198.51.100.30"), portId: net.vm, fixedAddress: address("10.0.1.6")))

            await #expect {
                try await repository.delete(Port.self, id: net.vm)
            } throws: { error in
                guard case RepositoryError.inUse(.port, _, let referrers) = error else { return false }
                let message = "\(error)"
                return referrers == [.init(kind: .floatingIP, id: floating.object.id.description, field: "portId")]
                    && message.contains("floating-ip \(floating.object.id) (field portId)")
            }
            // Its fixed IP cannot go while the floating IP translates to it; another can.
            var port = try await repository.get(net.vm).object
            port.fixedIPs = [address("10.0.1.5")]
            await #expect {
                try await repository.update(port)
            } throws: { error in refusal(error, field: "fixedIPs")?.contains("floating IP 198.51.100.30") == true }
            port.fixedIPs = [address("10.0.1.6")]
            _ = try await repository.update(port)

            // Released, the port goes.
            var released = floating.object
            released.portId = nil
            released.fixedAddress = nil
            _ = try await repository.update(released)
            try await repository.delete(Port.self, id: net.vm)
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func deletingTheRouterDeletesItsFloatingIPs() async throws {
        try await withEmbeddedRepository { repository in
            let router = try await repository.create(Router(tenantId: "acme", name: "provider")).object.id
            let other = try await repository.create(Router(tenantId: "acme", name: "spare")).object.id
            let doomed = try await repository.create(FloatingIP(tenantId: "acme", routerId: router, address: address("198.51.100.40")))
            let kept = try await repository.create(FloatingIP(tenantId: "acme", routerId: other, address: address("198.51.100.41")))
            try await repository.delete(Router.self, id: router)
            #expect(try await repository.find(doomed.object.id) == nil)
            #expect(try await repository.list(FloatingIP.self).items.map(\.object.id) == [kept.object.id])
            // The address is free again.
            _ = try await repository.create(FloatingIP(tenantId: "acme", routerId: other, address: address("198.51.100.40")))
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }
}
