import Foundation
import HiveModel
import HivePacket
import Testing
@testable import HiveStore

@Suite("Topology repository")
struct TopologyRepositoryTests {
    @Test func createReadUpdateWithOptimisticConcurrency() async throws {
        try await withEmbeddedRepository { repository in
            let created = try await repository.create(Bridge(tenantId: "acme", name: "blue"))
            #expect(created.object.tunnelKey != 0, "a bridge gets its flood-set tunnel key")
            let read = try await repository.get(created.object.id)
            #expect(read == created)

            var renamed = read.object
            renamed.name = "navy"
            renamed.tunnelKey = 12345  // managed: the stored key stays
            let updated = try await repository.update(renamed, expectedRevision: read.revision)
            #expect(updated.object.name == "navy")
            #expect(updated.object.tunnelKey == created.object.tunnelKey)
            #expect(updated.revision > read.revision)

            var stale = read.object
            stale.name = "teal"
            await #expect(throws: RepositoryError.staleRevision(.bridge, stale.id.description, expected: read.revision, actual: updated.revision)) {
                try await repository.update(stale, expectedRevision: read.revision)
            }
            #expect(try await repository.get(created.object.id).object.name == "navy", "a stale update must not overwrite")

            let listing = try await repository.list(Bridge.self)
            #expect(listing.items.map(\.object.id) == [created.object.id])
            await #expect(throws: RepositoryError.notFound(.bridge, BridgeID(UUID(uuid: (0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1))).description)) {
                try await repository.get(BridgeID(UUID(uuid: (0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1))))
            }
        }
    }

    @Test func invalidObjectsAreRefusedWithTheirFieldErrors() async throws {
        try await withEmbeddedRepository { repository in
            let router = try await repository.create(Router(tenantId: "acme", name: "edge"))
            let bad = Port(router: router.object.id, address: address("10.0.1.5"), subnet: prefix("10.0.0.0/24"))
            await #expect {
                try await repository.create(bad)
            } throws: { error in
                guard case RepositoryError.invalid(let errors) = error else { return false }
                return errors.contains { $0.field == "address" && $0.value == "10.0.1.5" }
            }
            #expect(try await repository.list(Port.self).items.isEmpty)
        }
    }

    @Test func aPortNeedsItsDeviceAndGetsAUniqueTunnelKey() async throws {
        try await withEmbeddedRepository { repository in
            let missing = BridgeID()
            await #expect(throws: RepositoryError.missingReference(field: "deviceId", kind: .bridge, id: missing.description)) {
                try await repository.create(Port(bridge: missing))
            }
            let bridge = try await repository.create(Bridge(tenantId: "acme", name: "blue"))
            var keys: Set<UInt32> = [bridge.object.tunnelKey]
            for _ in 0..<20 {
                let port = try await repository.create(Port(tenantId: "acme", bridge: bridge.object.id))
                #expect(keys.insert(port.object.tunnelKey).inserted)
                #expect(TopologyRepository.reservedTunnelKeys.contains(port.object.tunnelKey) == false)
            }
            // A port on a router named as if it were a bridge does not exist.
            let router = try await repository.create(Router(tenantId: "acme", name: "edge"))
            await #expect(throws: RepositoryError.missingReference(field: "deviceId", kind: .bridge, id: router.object.id.description)) {
                try await repository.create(Port(bridge: BridgeID(router.object.id.uuid)))
            }
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func aBridgeWithPortsCannotBeDeletedUntilItsPortsAre() async throws {
        try await withEmbeddedRepository { repository in
            let bridge = try await repository.create(Bridge(tenantId: "acme", name: "blue"))
            let port = try await repository.create(Port(tenantId: "acme", bridge: bridge.object.id))
            await #expect {
                try await repository.delete(Bridge.self, id: bridge.object.id)
            } throws: { error in
                guard case RepositoryError.inUse(.bridge, _, let referrers) = error else { return false }
                return referrers == [.init(kind: .port, id: port.object.id.description, field: "deviceId")]
                    && "\(error)".contains(port.object.id.description)
            }
            try await repository.delete(Port.self, id: port.object.id)
            try await repository.delete(Bridge.self, id: bridge.object.id)
            #expect(try await repository.find(bridge.object.id) == nil)
            #expect(try await integrityProblems(in: repository.store) == [])
            let leftovers = try await repository.store.range(.prefix(TopologyKeys.root)).keyValues.map(\.key)
            #expect(leftovers.isEmpty, "deletion leaves no index entry: \(leftovers)")
        }
    }

    @Test func deletingARouterTakesItsRoutesAndAPortTakesItsBindingAndRoutes() async throws {
        try await withEmbeddedRepository { repository in
            let router = try await repository.create(Router(tenantId: "acme", name: "edge"))
            let other = try await repository.create(Router(tenantId: "acme", name: "other"))
            let port = try await repository.create(Port(
                tenantId: "acme", router: router.object.id, address: address("10.0.0.1"), subnet: prefix("10.0.0.0/24")))
            let route = try await repository.create(Route(
                tenantId: "acme", routerId: router.object.id, destination: prefix("10.9.0.0/16"),
                nextHopGateway: address("10.0.0.254"), egressPortId: port.object.id))
            await #expect {
                try await repository.create(Route(
                    tenantId: "acme", routerId: other.object.id, destination: prefix("10.8.0.0/16"), egressPortId: port.object.id))
            } throws: { error in
                guard case RepositoryError.refused(let field, _, _) = error else { return false }
                return field == "egressPortId"
            }
            let host = try await repository.create(Host(name: "host-a", underlayAddresses: [address("192.0.2.1")]))
            let binding = try await repository.create(Binding(hostId: host.object.id, portId: port.object.id, interfaceName: "veth0"))

            // The host is in use by the binding.
            await #expect(throws: RepositoryError.self) { try await repository.delete(Host.self, id: host.object.id) }

            try await repository.delete(Port.self, id: port.object.id)
            #expect(try await repository.find(route.object.id) == nil, "routes through a deleted port go with it")
            #expect(try await repository.find(binding.object.id) == nil, "a deleted port's binding goes with it")
            try await repository.delete(Host.self, id: host.object.id)

            let blackhole = try await repository.create(Route(
                tenantId: "acme", routerId: router.object.id, destination: prefix("0.0.0.0/0"), kind: .blackhole))
            try await repository.delete(Router.self, id: router.object.id)
            #expect(try await repository.find(blackhole.object.id) == nil, "a router's routes go with it")
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func chainsKeepTheirRuleOrderAndReferencesHoldThem() async throws {
        try await withEmbeddedRepository { repository in
            let chain = try await repository.create(Chain(tenantId: "acme", name: "web-in"))
            let target = try await repository.create(Chain(tenantId: "acme", name: "common"))
            let first = try await repository.create(Rule(tenantId: "acme", chainId: chain.object.id, action: .accept))
            let last = try await repository.create(Rule(tenantId: "acme", chainId: chain.object.id, action: .drop))
            let middle = try await repository.insertRule(
                Rule(tenantId: "acme", chainId: chain.object.id, action: .jump(target.object.id)), at: 1)
            let top = try await repository.insertRule(Rule(tenantId: "acme", chainId: chain.object.id, action: .reject), at: 0)
            #expect(try await repository.get(chain.object.id).object.ruleIds
                    == [top.object.id, first.object.id, middle.object.id, last.object.id])
            await #expect(throws: RepositoryError.self) {
                try await repository.insertRule(Rule(tenantId: "acme", chainId: chain.object.id, action: .accept), at: 9)
            }

            // The jump target cannot go while a rule jumps to it.
            await #expect(throws: RepositoryError.self) { try await repository.delete(Chain.self, id: target.object.id) }
            // A chain's rule list may be reordered but not edited directly.
            var reordered = try await repository.get(chain.object.id).object
            reordered.ruleIds.reverse()
            #expect(try await repository.update(reordered).object.ruleIds.first == last.object.id)
            var edited = reordered
            edited.ruleIds.removeLast()
            await #expect(throws: RepositoryError.self) { try await repository.update(edited) }

            try await repository.delete(Rule.self, id: middle.object.id)
            #expect(try await repository.get(chain.object.id).object.ruleIds.contains(middle.object.id) == false)
            try await repository.delete(Chain.self, id: target.object.id)

            // A port's inbound chain holds the chain; deleting the chain deletes its rules.
            let bridge = try await repository.create(Bridge(tenantId: "acme", name: "blue"))
            var port = Port(tenantId: "acme", bridge: bridge.object.id)
            port.inboundChainId = chain.object.id
            let stored = try await repository.create(port)
            await #expect(throws: RepositoryError.self) { try await repository.delete(Chain.self, id: chain.object.id) }
            port = stored.object
            port.inboundChainId = nil
            _ = try await repository.update(port, expectedRevision: stored.revision)
            try await repository.delete(Chain.self, id: chain.object.id)
            #expect(try await repository.list(Rule.self).items.isEmpty)
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func namesAreUniquePerTenantAndRenamesFreeTheOldName() async throws {
        try await withEmbeddedRepository { repository in
            let blue = try await repository.create(Bridge(tenantId: "acme", name: "blue"))
            await #expect {
                try await repository.create(Bridge(tenantId: "acme", name: "blue"))
            } throws: { error in
                guard case RepositoryError.duplicate(.bridge, _, let existing) = error else { return false }
                return existing == blue.object.id.description
            }
            _ = try await repository.create(Bridge(tenantId: "globex", name: "blue"))
            var renamed = blue.object
            renamed.name = "navy"
            _ = try await repository.update(renamed)
            _ = try await repository.create(Bridge(tenantId: "acme", name: "blue"))
            _ = try await repository.create(Host(name: "host-a"))
            await #expect(throws: RepositoryError.self) { try await repository.create(Host(name: "host-a")) }
        }
    }

    @Test func linkedPortsCannotBeBoundAndBoundPortsCannotBeLinked() async throws {
        try await withEmbeddedRepository { repository in
            let bridge = try await repository.create(Bridge(tenantId: "acme", name: "blue"))
            let router = try await repository.create(Router(tenantId: "acme", name: "edge"))
            let bridgePort = try await repository.create(Port(tenantId: "acme", bridge: bridge.object.id))
            let routerPort = try await repository.create(Port(
                tenantId: "acme", router: router.object.id, address: address("10.0.0.1"), subnet: prefix("10.0.0.0/24")))
            let vmPort = try await repository.create(Port(tenantId: "acme", bridge: bridge.object.id))
            let host = try await repository.create(Host(name: "host-a"))

            let (linkedA, linkedB) = try await repository.link(routerPort.object.id, bridgePort.object.id)
            #expect(linkedA.object.peerId == bridgePort.object.id)
            #expect(linkedB.object.peerId == routerPort.object.id)
            await #expect(throws: RepositoryError.self) {
                try await repository.create(Binding(hostId: host.object.id, portId: bridgePort.object.id, interfaceName: "veth0"))
            }
            await #expect(throws: RepositoryError.self) { try await repository.link(vmPort.object.id, bridgePort.object.id) }
            // A linked port cannot be deleted out from under its peer.
            await #expect(throws: RepositoryError.self) { try await repository.delete(Port.self, id: bridgePort.object.id) }

            _ = try await repository.create(Binding(hostId: host.object.id, portId: vmPort.object.id, interfaceName: "veth1"))
            await #expect(throws: RepositoryError.self) { try await repository.link(vmPort.object.id, routerPort.object.id) }
            await #expect(throws: RepositoryError.self) {
                try await repository.create(Binding(hostId: host.object.id, portId: vmPort.object.id, interfaceName: "veth2"))
            }
            let otherPort = try await repository.create(Port(tenantId: "acme", bridge: bridge.object.id))
            await #expect(throws: RepositoryError.self) {
                try await repository.create(Binding(hostId: host.object.id, portId: otherPort.object.id, interfaceName: "veth1"))
            }

            let unlinked = try await repository.unlink(bridgePort.object.id)
            #expect(unlinked.object.peerId == nil)
            #expect(try await repository.get(routerPort.object.id).object.peerId == nil)
            try await repository.delete(Port.self, id: bridgePort.object.id)
            #expect(try await integrityProblems(in: repository.store) == [])
        }
    }

    @Test func watchesReportUpsertsAndDeletes() async throws {
        try await withEmbeddedRepository { repository in
            let start = try await repository.list(Router.self).revision
            let created = try await repository.create(Router(tenantId: "acme", name: "edge"))
            var renamed = created.object
            renamed.name = "core"
            _ = try await repository.update(renamed)
            try await repository.delete(Router.self, id: created.object.id)
            var changes: [TopologyChange<Router>] = []
            for try await batch in await repository.watch(Router.self, fromRevision: start + 1) {
                changes += batch
                if changes.count >= 3 { break }
            }
            guard changes.count == 3, case .upserted(let first) = changes[0], case .upserted(let second) = changes[1],
                  case .deleted(let id, _) = changes[2] else {
                Issue.record("unexpected changes \(changes)")
                return
            }
            #expect(first.object.name == "edge")
            #expect(second.object.name == "core")
            #expect(id == created.object.id)
        }
    }

    @Test func hostLivenessFollowsItsLease() async throws {
        try await withEmbeddedRepository { repository in
            let host = try await repository.create(Host(name: "host-a"))
            #expect(try await repository.isAlive(host.object.id) == false)
            let lease = try await repository.store.grantLease(ttl: 10)
            try await repository.markAlive(host.object.id, lease: lease.id)
            #expect(try await repository.liveHosts().hosts == [host.object.id])
            try await repository.store.revokeLease(lease.id)
            #expect(try await repository.isAlive(host.object.id) == false)
        }
    }
}

@Suite("Integrity checker")
struct IntegrityCheckerTests {
    /// The checker the concurrency tests rely on must see real damage.
    @Test func itFindsDanglingReferencesAndDuplicateKeys() async throws {
        try await withEmbeddedRepository { repository in
            let bridge = try await repository.create(Bridge(tenantId: "acme", name: "blue"))
            let port = try await repository.create(Port(tenantId: "acme", bridge: bridge.object.id))
            #expect(try await integrityProblems(in: repository.store) == [])

            // A second port claiming the first one's key, written behind the repository's back.
            var twin = Port(tenantId: "acme", bridge: bridge.object.id)
            twin.tunnelKey = port.object.tunnelKey
            try await repository.store.put(TopologyKeys.object(.port, twin.id), value: try twin.jsonBytes())
            // The bridge removed without its port.
            try await repository.store.delete(.key(TopologyKeys.object(.bridge, bridge.object.id)))
            // A named port stored without its name's unique key, and a stray key with no owner.
            let named = Port(tenantId: "acme", bridge: bridge.object.id, name: "vm1")
            try await repository.store.put(TopologyKeys.object(.port, named.id), value: try named.jsonBytes())
            try await repository.store.put(TopologyKeys.unique(.port, "stray"), value: Array(port.object.id.description.utf8))
            let problems = try await integrityProblems(in: repository.store)
            #expect(problems.contains { $0.contains("tunnel key \(port.object.tunnelKey) held by") })
            #expect(problems.contains { $0.contains("names missing bridge") })
            #expect(problems.contains { $0.contains("missing unique key") && $0.contains(named.id.description) }, "\(problems)")
            #expect(problems.contains { $0.contains("stray") && $0.contains("no entry") }, "\(problems)")
        }
    }
}
