import Foundation
import HiveModel
import HivePacket
import Testing
@testable import HiveStore

import struct HiveModel.Port

/// A bridge port's fixed IPs in the repository: "auto" takes the first free
/// address of a DHCP pool inside the port's own transaction, so racing
/// writers never share one, and an address is free again once its port
/// lets go of it.
@Suite("Port addresses in the repository")
struct PortAddressTests {
    /// A bridge with a DHCP subnet 10.0.1.0/24, pool .100-.200, gateway .1.
    private func bridgeWithSubnet(_ repository: TopologyRepository) async throws -> BridgeID {
        let bridge = try await repository.create(Bridge(tenantId: "acme", name: "web")).object.id
        _ = try await repository.create(DHCPSubnet(
            tenantId: "acme", bridgeId: bridge, subnet: prefix("10.0.1.0/24"),
            rangeStart: address("10.0.1.100"), rangeEnd: address("10.0.1.200"), gateway: address("10.0.1.1")))
        return bridge
    }

    /// The pool's addresses from .100 on, `count` of them.
    private func poolPrefix(_ count: Int) -> [IPv4.Address] {
        (0..<count).map { IPv4.Address(address("10.0.1.100").value + UInt32($0)) }
    }

    @Test func concurrentAutoCreatesNeverHandOutTheSameAddress() async throws {
        try await withEmbeddedRepository { repository in
            let bridge = try await bridgeWithSubnet(repository)
            let writers = 8, portsPerWriter = 6
            let created = try await withThrowingTaskGroup(of: [Port].self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        var ports: [Port] = []
                        for index in 0..<portsPerWriter {
                            let port = Port(tenantId: "acme", bridge: bridge, name: "w\(writer)-\(index)", fixedIPs: [Port.automaticAddress])
                            ports.append(try await repository.create(port).object)
                        }
                        return ports
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let addresses = created.flatMap(\.fixedIPs)
            #expect(addresses.count == writers * portsPerWriter, "every create got one address")
            #expect(Set(addresses).count == addresses.count, "an address was handed out twice: \(addresses.sorted())")
            // Each allocation takes the lowest free address, and nothing was freed: the pool fills from its start.
            #expect(addresses.sorted() == poolPrefix(writers * portsPerWriter))
            let stored = try await repository.list(Port.self).items.flatMap(\.object.fixedIPs)
            #expect(stored.sorted() == addresses.sorted(), "the stored ports hold what the creates returned")
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func concurrentCreatesOfOneExplicitAddressLetExactlyOneWin() async throws {
        try await withEmbeddedRepository { repository in
            let bridge = try await bridgeWithSubnet(repository)
            let wanted = address("10.0.1.11")
            let outcomes = try await withThrowingTaskGroup(of: Result<PortID, RepositoryError>.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        do {
                            return .success(try await repository.create(Port(tenantId: "acme", bridge: bridge, name: "w\(writer)", fixedIPs: [wanted])).object.id)
                        } catch let error as RepositoryError {
                            return .failure(error)
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = outcomes.compactMap { try? $0.get() }
            #expect(winners.count == 1, "\(outcomes)")
            let key = UniqueKey.portAddress(deviceId: bridge.uuid, address: wanted)
            for case .failure(let error) in outcomes {
                #expect(error == .duplicate(.port, key: key, existing: winners.first?.description ?? "?"))
            }
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func aDeletedPortsAddressIsFreeAgain() async throws {
        try await withEmbeddedRepository { repository in
            let bridge = try await bridgeWithSubnet(repository)
            let first = try await repository.create(Port(tenantId: "acme", bridge: bridge, fixedIPs: [Port.automaticAddress]))
            let second = try await repository.create(Port(tenantId: "acme", bridge: bridge, fixedIPs: [Port.automaticAddress]))
            #expect(first.object.fixedIPs == [address("10.0.1.100")])
            #expect(second.object.fixedIPs == [address("10.0.1.101")])
            let explicit = try await repository.create(Port(tenantId: "acme", bridge: bridge, fixedIPs: [address("10.0.1.11")]))

            let taken = UniqueKey.portAddress(deviceId: bridge.uuid, address: address("10.0.1.11"))
            await #expect(throws: RepositoryError.duplicate(.port, key: taken, existing: explicit.object.id.description)) {
                try await repository.create(Port(tenantId: "acme", bridge: bridge, fixedIPs: [address("10.0.1.11")]))
            }

            try await repository.delete(Port.self, id: first.object.id)
            try await repository.delete(Port.self, id: explicit.object.id)
            let reused = try await repository.create(Port(tenantId: "acme", bridge: bridge, fixedIPs: [Port.automaticAddress]))
            #expect(reused.object.fixedIPs == [address("10.0.1.100")], "auto takes the freed address first")
            let again = try await repository.create(Port(tenantId: "acme", bridge: bridge, fixedIPs: [address("10.0.1.11")]))
            #expect(again.object.fixedIPs == [address("10.0.1.11")])
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func changingAPortsAddressesFreesTheOldOnes() async throws {
        try await withEmbeddedRepository { repository in
            let bridge = try await bridgeWithSubnet(repository)
            let port = try await repository.create(Port(tenantId: "acme", bridge: bridge, fixedIPs: [address("10.0.1.11")]))
            var moved = port.object
            moved.fixedIPs = [address("10.0.1.12"), Port.automaticAddress]
            let updated = try await repository.update(moved, expectedRevision: port.revision)
            #expect(updated.object.fixedIPs == [address("10.0.1.12"), address("10.0.1.100")])

            let other = try await repository.create(Port(tenantId: "acme", bridge: bridge, fixedIPs: [address("10.0.1.11")]))
            #expect(other.object.fixedIPs == [address("10.0.1.11")], "the old address is free")
            let kept = UniqueKey.portAddress(deviceId: bridge.uuid, address: address("10.0.1.12"))
            await #expect(throws: RepositoryError.duplicate(.port, key: kept, existing: port.object.id.description)) {
                try await repository.create(Port(tenantId: "acme", bridge: bridge, fixedIPs: [address("10.0.1.12")]))
            }
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func addressesAreUniquePerBridgeOnly() async throws {
        try await withEmbeddedRepository { repository in
            let web = try await bridgeWithSubnet(repository)
            let db = try await repository.create(Bridge(tenantId: "acme", name: "db")).object.id
            _ = try await repository.create(DHCPSubnet(
                tenantId: "acme", bridgeId: db, subnet: prefix("10.0.1.0/24"),
                rangeStart: address("10.0.1.100"), rangeEnd: address("10.0.1.200")))
            let onWeb = try await repository.create(Port(tenantId: "acme", bridge: web, fixedIPs: [Port.automaticAddress]))
            let onDB = try await repository.create(Port(tenantId: "acme", bridge: db, fixedIPs: [Port.automaticAddress]))
            #expect(onWeb.object.fixedIPs == onDB.object.fixedIPs, "each bridge allocates from its own pool")
        }
    }

    @Test func networkBroadcastAndServerAddressesAreRefusedAndMACsAreUniqueOnTheBridge() async throws {
        try await withEmbeddedRepository { repository in
            let bridge = try await bridgeWithSubnet(repository)
            for refused in ["10.0.1.0", "10.0.1.255"] {
                await #expect(throws: RepositoryError.self, "\(refused) is not a host address") {
                    try await repository.create(Port(tenantId: "acme", bridge: bridge, fixedIPs: [address(refused)]))
                }
            }
            // Without a gateway the DHCP server answers from the last host address: no port may hold it.
            let bare = try await repository.create(Bridge(tenantId: "acme", name: "bare")).object.id
            _ = try await repository.create(DHCPSubnet(
                tenantId: "acme", bridgeId: bare, subnet: prefix("10.0.9.0/24"),
                rangeStart: address("10.0.9.250"), rangeEnd: address("10.0.9.254")))
            await #expect(throws: RepositoryError.self) {
                try await repository.create(Port(tenantId: "acme", bridge: bare, fixedIPs: [address("10.0.9.254")]))
            }
            let pooled = try await repository.create(Port(tenantId: "acme", bridge: bare, fixedIPs: [Port.automaticAddress])).object
            #expect(pooled.fixedIPs == [address("10.0.9.250")])
            // One MAC per bridge; the same MAC on another bridge is another VM's business.
            let mac = EthernetAddress(parsing: "02:00:00:00:00:42")!
            _ = try await repository.create(Port(tenantId: "acme", bridge: bridge, name: "a", mac: mac))
            do {
                _ = try await repository.create(Port(tenantId: "acme", bridge: bridge, name: "b", mac: mac))
                Issue.record("a second port with the same MAC on one bridge was accepted")
            } catch let error as RepositoryError {
                #expect(error.description.contains("02:00:00:00:00:42 is already the MAC of port"), "\(error)")
            }
            _ = try await repository.create(Port(tenantId: "acme", bridge: bare, name: "c", mac: mac))
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }
}
