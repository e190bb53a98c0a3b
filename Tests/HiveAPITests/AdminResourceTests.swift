import Foundation
import HiveModel
import HiveStore
import Testing

/// Hosts, tunnel zones and bindings: admin-only.
@Suite struct AdminResourceTests {
    @Test func hostsReportLiveness() async throws {
        try await withAPI { api in
            let created = try await api.post("/v1/hosts", Body.host("hv1"))
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(created.string("id"))
            #expect(created.bool("alive") == false)
            let other = try await api.create("/v1/hosts", Body.host("hv2", address: "192.0.2.11"))

            // An agent marks its host alive under a lease.
            let lease = try await api.repository.store.grantLease(ttl: 30)
            try await api.repository.markAlive(try #require(HostID(parsing: id)), lease: lease.id)
            #expect(try await api.get("/v1/hosts/\(id)").bool("alive") == true)
            let list = try await api.get("/v1/hosts")
            let alive = Dictionary(uniqueKeysWithValues: list.items.map { ($0["id"] as! String, $0["alive"] as! Bool) })
            #expect(alive == [id: true, other: false])
            try await api.repository.store.revokeLease(lease.id)
            #expect(try await api.get("/v1/hosts/\(id)").bool("alive") == false)

            let replaced = try await api.put("/v1/hosts/\(id)", #"{"name": "hv1", "underlayAddresses": ["192.0.2.20"]}"#)
            #expect(replaced.object["underlayAddresses"] as? [String] == ["192.0.2.20"])
            expectError(try await api.post("/v1/hosts", Body.host("hv1", address: "192.0.2.30")), .conflict, "conflict", mentioning: ["hv1"])
            expectError(try await api.post("/v1/hosts", #"{"name": "hv3", "tenantId": "acme"}"#), .unprocessableContent, "invalid", mentioning: ["tenantId: 'acme'", "admin-only"])
            expectError(try await api.post("/v1/hosts", #"{"name": "has space"}"#), .unprocessableContent, "invalid", mentioning: ["name: 'has space'"])
            #expect(try await api.delete("/v1/hosts/\(other)").status == .noContent)
        }
    }

    @Test func tunnelZoneMembers() async throws {
        try await withAPI { api in
            let zone = try await api.post("/v1/tunnel-zones", #"{"name": "underlay"}"#)
            #expect(zone.status == .created)
            let id = try #require(zone.string("id"))
            #expect(zone.string("kind") == "geneve")
            let h1 = try await api.create("/v1/hosts", Body.host("hv1"))
            let h2 = try await api.create("/v1/hosts", Body.host("hv2", address: "192.0.2.11"))

            let added = try await api.post("/v1/tunnel-zones/\(id)/members", #"{"hostId": "\#(h1)", "address": "192.0.2.10"}"#)
            #expect(added.status == .ok, "\(added.text)")
            let etag = try #require(added.headers[.eTag])
            _ = try await api.post("/v1/tunnel-zones/\(id)/members", #"{"hostId": "\#(h2)", "address": "192.0.2.11"}"#)
            let members = try await api.get("/v1/tunnel-zones/\(id)").object["members"] as? [[String: String]]
            #expect(members?.compactMap { $0["hostId"] } == [h1, h2])

            expectError(try await api.post("/v1/tunnel-zones/\(id)/members", #"{"hostId": "\#(h1)", "address": "192.0.2.12"}"#), .conflict, "conflict", mentioning: ["already a member"])
            expectError(try await api.delete("/v1/hosts/\(h1)"), .conflict, "conflict", mentioning: ["members[0].hostId"])
            let missingHost = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
            expectError(try await api.post("/v1/tunnel-zones/\(id)/members", #"{"hostId": "\#(missingHost)", "address": "192.0.2.13"}"#), .unprocessableContent, "invalid", mentioning: ["does not exist"])
            expectError(try await api.post("/v1/tunnel-zones/\(id)/members", #"{"hostId": "\#(h1)"}"#), .badRequest, "malformed", mentioning: ["address"])

            // If-Match applies to member changes too.
            expectError(try await api.send(.delete, "/v1/tunnel-zones/\(id)/members/\(h1)", headers: [.ifMatch: etag]), .conflict, "stale_revision")
            let removed = try await api.delete("/v1/tunnel-zones/\(id)/members/\(h1)")
            #expect(removed.status == .ok)
            #expect((removed.object["members"] as? [[String: String]])?.compactMap { $0["hostId"] } == [h2])
            expectError(try await api.delete("/v1/tunnel-zones/\(id)/members/\(h1)"), .notFound, "not_found", mentioning: ["not a member"])
            #expect(try await api.delete("/v1/hosts/\(h1)").status == .noContent)
            #expect(try await api.put("/v1/tunnel-zones/\(id)", #"{"name": "underlay", "kind": "vxlan"}"#).object["members"] as? [Any] != nil)
        }
    }

    @Test func bindingsWithFilters() async throws {
        try await withAPI { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let p1 = try await api.create("/v1/ports", Body.bridgePort(bridge))
            let p2 = try await api.create("/v1/ports", Body.bridgePort(bridge))
            let h1 = try await api.create("/v1/hosts", Body.host("hv1"))
            let h2 = try await api.create("/v1/hosts", Body.host("hv2", address: "192.0.2.11"))
            let b1 = try await api.create("/v1/bindings", #"{"hostId": "\#(h1)", "portId": "\#(p1)", "interfaceName": "tap1"}"#)
            let b2 = try await api.create("/v1/bindings", #"{"hostId": "\#(h2)", "portId": "\#(p2)", "interfaceName": "tap1"}"#)

            #expect(try await api.get("/v1/bindings").itemIDs == [b1, b2].sorted())
            #expect(try await api.get("/v1/bindings?hostId=\(h1)").itemIDs == [b1])
            #expect(try await api.get("/v1/bindings?portId=\(p2)").itemIDs == [b2])
            #expect(try await api.get("/v1/bindings?hostId=\(h1)&portId=\(p2)").itemIDs.isEmpty)
            #expect(try await api.get("/v1/bindings/\(b1)").string("interfaceName") == "tap1")

            expectError(try await api.post("/v1/bindings", #"{"hostId": "\#(h1)", "portId": "\#(p2)", "interfaceName": "tap1"}"#), .conflict, "conflict", mentioning: ["tap1"])
            expectError(try await api.post("/v1/bindings", #"{"hostId": "\#(h1)", "portId": "\#(p2)", "interfaceName": "a/b"}"#), .unprocessableContent, "invalid", mentioning: ["interfaceName: 'a/b'"])
            // A bound port cannot be linked; a host with bindings cannot go.
            let router = try await api.create("/v1/routers", Body.router("edge"))
            let rp = try await api.create("/v1/ports", Body.routerPort(router, address: "10.0.0.1", subnet: "10.0.0.0/24"))
            expectError(try await api.post("/v1/ports/\(rp)/link", #"{"peerId": "\#(p1)"}"#), .conflict, "conflict", mentioning: ["bound"])
            expectError(try await api.delete("/v1/hosts/\(h1)"), .conflict, "conflict", mentioning: ["binding"])

            #expect(try await api.delete("/v1/bindings/\(b1)").status == .noContent)
            #expect(try await api.get("/v1/bindings").itemIDs == [b2])
            // Deleting a port unbinds it.
            #expect(try await api.delete("/v1/ports/\(p2)").status == .noContent)
            #expect(try await api.get("/v1/bindings").itemIDs.isEmpty)
        }
    }
}
