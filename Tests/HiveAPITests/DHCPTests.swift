import Foundation
import Testing

@Suite struct DHCPTests {
    static let subnet = #"{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.100", "rangeEnd": "10.0.0.200", "gateway": "10.0.0.1", "dnsServers": ["10.0.0.2"]}"#

    @Test func subnetsOfABridge() async throws {
        try await withAPI { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let other = try await api.create("/v1/bridges", Body.bridge("db"))
            let created = try await api.post("/v1/bridges/\(bridge)/dhcp-subnets", Self.subnet)
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(created.string("id"))
            #expect(created.string("bridgeId") == bridge)
            #expect(created.int("leaseSeconds") == 86400)
            #expect(created.bool("enabled") == true)
            _ = try await api.create("/v1/bridges/\(other)/dhcp-subnets", Self.subnet)

            #expect(try await api.get("/v1/bridges/\(bridge)/dhcp-subnets").itemIDs == [id])
            let replaced = try await api.put(
                "/v1/dhcp-subnets/\(id)",
                #"{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.100", "rangeEnd": "10.0.0.150", "mtu": 1400, "hostEntries": [{"mac": "02:00:00:00:00:09", "address": "10.0.0.9", "hostname": "db1"}]}"#)
            #expect(replaced.status == .ok, "\(replaced.text)")
            #expect(replaced.string("bridgeId") == bridge)
            #expect(replaced.int("mtu") == 1400)

            expectError(try await api.post("/v1/bridges/\(bridge)/dhcp-subnets", Self.subnet), .conflict, "conflict", mentioning: ["10.0.0.0/24"])
            let invalid = try await api.post(
                "/v1/bridges/\(bridge)/dhcp-subnets", #"{"subnet": "10.9.0.0/24", "rangeStart": "10.9.0.50", "rangeEnd": "10.9.0.10", "leaseSeconds": 5}"#)
            expectError(invalid, .unprocessableContent, "invalid", mentioning: ["rangeEnd: '10.9.0.10'", "leaseSeconds: '5'"])

            // Deleting the bridge deletes its subnets.
            #expect(try await api.delete("/v1/bridges/\(bridge)").status == .noContent)
            expectError(try await api.get("/v1/dhcp-subnets/\(id)"), .notFound, "not_found")
            let missing = try await api.get("/v1/bridges/\(bridge)/dhcp-subnets")
            expectError(missing, .notFound, "not_found", mentioning: [bridge])
        }
    }
}
