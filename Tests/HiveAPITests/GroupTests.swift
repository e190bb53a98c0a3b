import Foundation
import Testing

@Suite struct GroupTests {
    @Test func portGroupsAndMembership() async throws {
        try await withAPI { api in
            let group = try await api.post("/v1/port-groups", #"{"name": "gateways", "stateful": true}"#)
            #expect(group.status == .created)
            let id = try #require(group.string("id"))
            #expect(group.bool("stateful") == true)
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let port = try await api.create("/v1/ports", #"{"deviceId": "\#(bridge)", "deviceKind": "bridge", "portGroupIds": ["\#(id)"]}"#)
            expectError(try await api.delete("/v1/port-groups/\(id)"), .conflict, "conflict", mentioning: [port, "portGroupIds[0]"])
            #expect(try await api.put("/v1/port-groups/\(id)", #"{"name": "gw"}"#).bool("stateful") == false)
            #expect(try await api.get("/v1/port-groups").itemIDs == [id])
            #expect(try await api.delete("/v1/ports/\(port)").status == .noContent)
            #expect(try await api.delete("/v1/port-groups/\(id)").status == .noContent)
        }
    }

    @Test func ipAddressGroups() async throws {
        try await withAPI { api in
            let created = try await api.post("/v1/ip-address-groups", #"{"name": "office", "addresses": ["192.0.2.0/24", "198.51.100.7"]}"#)
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(created.string("id"))
            #expect(created.object["addresses"] as? [String] == ["192.0.2.0/24", "198.51.100.7/32"])
            let chain = try await api.create("/v1/chains", Body.chain("fw"))
            _ = try await api.create("/v1/chains/\(chain)/rules", #"{"conditions": {"sourceAddressGroup": {"value": "\#(id)"}}, "action": {"type": "drop"}}"#)
            expectError(try await api.delete("/v1/ip-address-groups/\(id)"), .conflict, "conflict", mentioning: ["conditions.sourceAddressGroup"])
            let invalid = try await api.put("/v1/ip-address-groups/\(id)", #"{"name": "office", "addresses": ["192.0.2.1/24", "192.0.2.1/24"]}"#)
            expectError(invalid, .unprocessableContent, "invalid", mentioning: ["addresses[0]: '192.0.2.1/24'", "addresses[1]"])
            #expect(try await api.get("/v1/ip-address-groups/\(id)").string("name") == "office")
        }
    }
}
