import Foundation
import Testing

/// A bridge port's MAC, fixed IPs ("auto" or explicit), allowed address
/// pairs, port security and MAC limit, as a user of the API sees them.
@Suite struct PortAddressTests {
    /// 10.0.1.0/24 with pool .100-.200 and gateway .1.
    static let subnet = #"{"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.100", "rangeEnd": "10.0.1.200", "gateway": "10.0.1.1"}"#

    static func port(_ bridge: String, addresses: [String], extra: String = "") -> String {
        let list = addresses.map { "\"\($0)\"" }.joined(separator: ", ")
        return #"{"deviceId": "\#(bridge)", "deviceKind": "bridge", "fixedIPs": [\#(list)]\#(extra)}"#
    }

    /// A bridge with the DHCP subnet above; returns the bridge's id.
    static func bridgeWithSubnet(_ api: APIClient, name: String = "web") async throws -> String {
        let bridge = try await api.create("/v1/bridges", Body.bridge(name))
        _ = try await api.create("/v1/bridges/\(bridge)/dhcp-subnets", subnet)
        return bridge
    }

    @Test func autoTakesTheNextFreeAddressOfThePool() async throws {
        try await withAPI { api in
            let bridge = try await Self.bridgeWithSubnet(api)
            let first = try await api.post("/v1/ports", Self.port(bridge, addresses: ["auto"]))
            #expect(first.status == .created, "\(first.text)")
            #expect(first.object["fixedIPs"] as? [String] == ["10.0.1.100"])
            let second = try await api.post("/v1/ports", Self.port(bridge, addresses: ["auto"]))
            #expect(second.object["fixedIPs"] as? [String] == ["10.0.1.101"])
            // Explicit addresses anywhere in the subnet; auto skips those taken.
            let mixed = try await api.post("/v1/ports", Self.port(bridge, addresses: ["10.0.1.102", "auto", "10.0.1.11"]))
            #expect(mixed.object["fixedIPs"] as? [String] == ["10.0.1.102", "10.0.1.103", "10.0.1.11"], "\(mixed.text)")
            let id = try #require(second.string("id"))
            #expect(try await api.get("/v1/ports/\(id)").object["fixedIPs"] as? [String] == ["10.0.1.101"], "the allocation is stored")
        }
    }

    @Test func aDuplicateAddressIsAConflictNamingTheAddressAndItsPort() async throws {
        try await withAPI { api in
            let bridge = try await Self.bridgeWithSubnet(api)
            let holder = try await api.create("/v1/ports", Self.port(bridge, addresses: ["10.0.1.11"]))
            let duplicate = try await api.post("/v1/ports", Self.port(bridge, addresses: ["10.0.1.12", "10.0.1.11"]))
            expectError(duplicate, .conflict, "conflict", mentioning: ["address 10.0.1.11 is already used by port \(holder) on this bridge"])
            #expect(duplicate.errorField == "fixedIPs")
            #expect(duplicate.errorValue == "10.0.1.11")
            #expect(try await api.get("/v1/ports?deviceId=\(bridge)").itemIDs == [holder], "nothing was stored")

            // Another bridge has its own addresses.
            let other = try await Self.bridgeWithSubnet(api, name: "db")
            #expect(try await api.post("/v1/ports", Self.port(other, addresses: ["10.0.1.11"])).status == .created)
        }
    }

    @Test func addressesOutsideTheSubnetsOrUnallocatableAreRefusedNamingTheField() async throws {
        try await withAPI { api in
            let bare = try await api.create("/v1/bridges", Body.bridge("bare"))
            let noSubnet = try await api.post("/v1/ports", Self.port(bare, addresses: ["auto"]))
            expectError(noSubnet, .conflict, "conflict", mentioning: ["fixedIPs[0]", "no DHCP subnet"])
            #expect(noSubnet.errorField == "fixedIPs[0]" && noSubnet.errorValue == "auto")
            let noSubnetExplicit = try await api.post("/v1/ports", Self.port(bare, addresses: ["10.0.1.11"]))
            expectError(noSubnetExplicit, .conflict, "conflict", mentioning: ["fixedIPs[0]", "10.0.1.11", "hive dhcp create"])

            let bridge = try await Self.bridgeWithSubnet(api)
            let outside = try await api.post("/v1/ports", Self.port(bridge, addresses: ["10.0.2.5"]))
            expectError(outside, .conflict, "conflict", mentioning: ["fixedIPs[0]: '10.0.2.5'", "10.0.1.0/24"])
            #expect(outside.errorField == "fixedIPs[0]" && outside.errorValue == "10.0.2.5")
            let second = try await api.post("/v1/ports", Self.port(bridge, addresses: ["10.0.1.11", "10.0.2.5"]))
            #expect(second.errorField == "fixedIPs[1]", "\(second.text)")
            let gateway = try await api.post("/v1/ports", Self.port(bridge, addresses: ["10.0.1.1"]))
            expectError(gateway, .conflict, "conflict", mentioning: ["fixedIPs[0]: '10.0.1.1'", "gateway"])
            let malformed = try await api.post("/v1/ports", Self.port(bridge, addresses: ["10.0.1.300"]))
            expectError(malformed, .badRequest, "malformed", mentioning: ["fixedIPs", "10.0.1.300", "auto"])

            // A pool of two: the third "auto" finds none free.
            let small = try await api.create("/v1/bridges", Body.bridge("small"))
            _ = try await api.create("/v1/bridges/\(small)/dhcp-subnets",
                                     #"{"subnet": "10.0.9.0/24", "rangeStart": "10.0.9.10", "rangeEnd": "10.0.9.11"}"#)
            for _ in 0..<2 { _ = try await api.create("/v1/ports", Self.port(small, addresses: ["auto"])) }
            let exhausted = try await api.post("/v1/ports", Self.port(small, addresses: ["auto"]))
            expectError(exhausted, .conflict, "conflict", mentioning: ["fixedIPs[0]", "10.0.9.10-10.0.9.11", "taken"])
            #expect(exhausted.errorField == "fixedIPs[0]")
            // Outside the pool but inside the subnet is still fine.
            #expect(try await api.post("/v1/ports", Self.port(small, addresses: ["10.0.9.50"])).status == .created)
        }
    }

    @Test func aBridgePortWithoutAMACGetsAGeneratedUnicastLocallyAdministeredOne() async throws {
        try await withAPI { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            var seen: Set<String> = []
            for _ in 0..<16 {
                let reply = try await api.post("/v1/ports", Body.bridgePort(bridge))
                let mac = try #require(reply.string("mac"), "a bridge port gets a MAC: \(reply.text)")
                let octets = mac.split(separator: ":").compactMap { UInt8($0, radix: 16) }
                #expect(octets.count == 6, "\(mac)")
                let first = try #require(octets.first)
                #expect(first & 0x01 == 0, "unicast: \(mac)")
                #expect(first & 0x02 != 0, "locally administered: \(mac)")
                seen.insert(mac)
            }
            #expect(seen.count == 16, "generated MACs differ: \(seen.sorted())")

            let given = try await api.post("/v1/ports", #"{"deviceId": "\#(bridge)", "deviceKind": "bridge", "mac": "02:00:00:00:01:11"}"#)
            #expect(given.string("mac") == "02:00:00:00:01:11")
            let multicast = try await api.post("/v1/ports", #"{"deviceId": "\#(bridge)", "deviceKind": "bridge", "mac": "01:00:5e:00:00:01"}"#)
            expectError(multicast, .unprocessableContent, "invalid", mentioning: ["mac"])
        }
    }

    @Test func changingAPortsFixedIPsFreesTheOldAddress() async throws {
        try await withAPI { api in
            let bridge = try await Self.bridgeWithSubnet(api)
            let first = try await api.create("/v1/ports", Self.port(bridge, addresses: ["10.0.1.11"]))
            expectError(try await api.post("/v1/ports", Self.port(bridge, addresses: ["10.0.1.11"])), .conflict, "conflict",
                        mentioning: ["10.0.1.11"])
            let mac = try #require(try await api.get("/v1/ports/\(first)").string("mac"))

            let moved = try await api.put("/v1/ports/\(first)", #"{"fixedIPs": ["10.0.1.12", "auto"]}"#)
            #expect(moved.status == .ok, "\(moved.text)")
            #expect(moved.object["fixedIPs"] as? [String] == ["10.0.1.12", "10.0.1.100"])
            #expect(moved.string("mac") == mac, "a PUT without mac keeps the generated one")

            #expect(try await api.post("/v1/ports", Self.port(bridge, addresses: ["10.0.1.11"])).status == .created,
                    "the old address is free again")
            let taken = try await api.post("/v1/ports", Self.port(bridge, addresses: ["10.0.1.12"]))
            expectError(taken, .conflict, "conflict", mentioning: ["10.0.1.12", first])

            // Deleting the port frees its addresses too.
            #expect(try await api.delete("/v1/ports/\(first)").status == .noContent)
            let reused = try await api.post("/v1/ports", Self.port(bridge, addresses: ["10.0.1.12", "auto"]))
            #expect(reused.object["fixedIPs"] as? [String] == ["10.0.1.12", "10.0.1.100"], "\(reused.text)")
        }
    }

    @Test func allowedPairsPortSecurityAndMACLimitRoundTrip() async throws {
        try await withAPI { api in
            let bridge = try await Self.bridgeWithSubnet(api)
            let pairs = #", "allowedAddressPairs": [{"address": "10.0.1.250", "mac": "02:00:00:00:00:99"}, {"address": "10.0.2.0/24"}]"#
            let created = try await api.post("/v1/ports", Self.port(bridge, addresses: ["10.0.1.21"],
                                                                    extra: pairs + #", "portSecurity": false, "macLimit": 16"#))
            #expect(created.status == .created, "\(created.text)")
            let stored = try await api.get("/v1/ports/\(try #require(created.string("id")))")
            let storedPairs = stored.object["allowedAddressPairs"] as? [[String: String]]
            #expect(storedPairs == [["address": "10.0.1.250", "mac": "02:00:00:00:00:99"], ["address": "10.0.2.0/24"]])
            #expect(stored.bool("portSecurity") == false)
            #expect(stored.int("macLimit") == 16)

            let defaults = try await api.post("/v1/ports", Body.bridgePort(bridge))
            #expect(defaults.bool("portSecurity") == true)
            #expect(defaults.object["fixedIPs"] as? [String] == [])
            #expect(defaults.object["allowedAddressPairs"] as? [Any] != nil)
            #expect(defaults.int("macLimit") == nil, "absent means the default")

            let badLimit = try await api.post("/v1/ports", Self.port(bridge, addresses: [], extra: #", "macLimit": 0"#))
            expectError(badLimit, .unprocessableContent, "invalid", mentioning: ["macLimit: '0'", "1 to 65536"])
            let hostBits = try await api.post("/v1/ports", Self.port(bridge, addresses: [], extra: #", "allowedAddressPairs": [{"address": "10.0.2.5/24"}]"#))
            expectError(hostBits, .unprocessableContent, "invalid", mentioning: ["allowedAddressPairs[0].address", "10.0.2.0/24"])

            let router = try await api.create("/v1/routers", Body.router("edge"))
            let routerPort = try await api.post("/v1/ports",
                #"{"deviceId": "\#(router)", "deviceKind": "router", "address": "10.0.0.1", "subnet": "10.0.0.0/24", "fixedIPs": ["10.0.0.5"]}"#)
            expectError(routerPort, .unprocessableContent, "invalid", mentioning: ["fixedIPs", "router port"])
        }
    }

    @Test func dhcpSubnetsCarryHostRoutesAndADomainName() async throws {
        try await withAPI { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let body = #"{"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.100", "rangeEnd": "10.0.1.200", "gateway": "10.0.1.1", "hostRoutes": [{"destination": "10.9.0.0/16", "nextHop": "10.0.1.254"}], "domainName": "example.internal"}"#
            let created = try await api.post("/v1/bridges/\(bridge)/dhcp-subnets", body)
            #expect(created.status == .created, "\(created.text)")
            #expect(created.object["hostRoutes"] as? [[String: String]] == [["destination": "10.9.0.0/16", "nextHop": "10.0.1.254"]])
            #expect(created.string("domainName") == "example.internal")

            let id = try #require(created.string("id"))
            let cleared = try await api.put("/v1/dhcp-subnets/\(id)", #"{"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.100", "rangeEnd": "10.0.1.200"}"#)
            #expect(cleared.object["hostRoutes"] as? [Any] != nil && (cleared.object["hostRoutes"] as? [Any])?.isEmpty == true)
            #expect(cleared.string("domainName") == nil)

            let badHop = try await api.put("/v1/dhcp-subnets/\(id)",
                #"{"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.100", "rangeEnd": "10.0.1.200", "hostRoutes": [{"destination": "10.9.0.0/16", "nextHop": "10.5.0.1"}]}"#)
            expectError(badHop, .unprocessableContent, "invalid", mentioning: ["hostRoutes[0].nextHop: '10.5.0.1'", "10.0.1.0/24"])
            let badDomain = try await api.put("/v1/dhcp-subnets/\(id)",
                #"{"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.100", "rangeEnd": "10.0.1.200", "domainName": "bad..name"}"#)
            expectError(badDomain, .unprocessableContent, "invalid", mentioning: ["domainName: 'bad..name'"])
        }
    }
}
