import Foundation
import Testing

/// NAT through the API: rules with snat/dnat targets, a router's gateway,
/// and floating IPs (CRUD, moving, refusals naming the field, tenancy).
@Suite struct NATAPITests {
    /// A router with an uplink port, and a bridge with a DHCP subnet and two
    /// VM ports with fixed IPs; ids by name.
    private func topology(_ api: APIClient, token: String = Token.acme) async throws -> [String: String] {
        var ids: [String: String] = [:]
        ids["router"] = try await api.create("/v1/routers", Body.router("provider"), token: token)
        ids["uplink"] = try await api.create(
            "/v1/ports", Body.routerPort(ids["router"]!, address: "198.51.100.2", subnet: "198.51.100.0/24"), token: token)
        ids["bridge"] = try await api.create("/v1/bridges", Body.bridge("web"), token: token)
        _ = try await api.create(
            "/v1/bridges/\(ids["bridge"]!)/dhcp-subnets",
            #"{"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.100", "rangeEnd": "10.0.1.200", "gateway": "10.0.1.1"}"#, token: token)
        for (name, addresses) in [("vm1", #"["10.0.1.5", "10.0.1.6"]"#), ("vm2", #"["10.0.1.7"]"#)] {
            ids[name] = try await api.create(
                "/v1/ports", #"{"deviceId": "\#(ids["bridge"]!)", "deviceKind": "bridge", "name": "\#(name)", "fixedIPs": \#(addresses)}"#,
                token: token)
        }
        ids["bare"] = try await api.create("/v1/ports", Body.bridgePort(ids["bridge"]!, name: "bare"), token: token)
        return ids
    }

    @Test func natRulesKeepTheirTargets() async throws {
        try await withAPI { api in
            let chain = try await api.create("/v1/chains", Body.chain("edge-out"))
            let snat = try await api.post(
                "/v1/chains/\(chain)/rules",
                #"{"action": {"type": "snat", "target": {"firstAddress": "198.51.100.5", "lastAddress": "198.51.100.6", "firstPort": 1024, "lastPort": 65535}}}"#)
            #expect(snat.status == .created, "\(snat.text)")
            let snatAction = try #require(snat.object["action"] as? [String: Any])
            #expect(snatAction["type"] as? String == "snat")
            let snatTarget = try #require(snatAction["target"] as? [String: Any])
            #expect(snatTarget["firstAddress"] as? String == "198.51.100.5" && snatTarget["lastAddress"] as? String == "198.51.100.6")
            #expect(snatTarget["firstPort"] as? Int == 1024 && snatTarget["lastPort"] as? Int == 65535)

            let dnat = try await api.create("/v1/chains/\(chain)/rules", #"{"action": {"type": "dnat", "target": {"firstAddress": "10.0.1.5", "firstPort": 8080}}}"#)
            let read = try await api.get("/v1/rules/\(dnat)")
            let dnatTarget = try #require((read.object["action"] as? [String: Any])?["target"] as? [String: Any])
            #expect(dnatTarget["firstAddress"] as? String == "10.0.1.5" && dnatTarget["lastAddress"] as? String == "10.0.1.5")
            #expect(dnatTarget["firstPort"] as? Int == 8080 && dnatTarget["lastPort"] as? Int == 8080)

            // Replacing a rule's target.
            let replaced = try await api.put("/v1/rules/\(dnat)", #"{"action": {"type": "dnat", "target": {"firstAddress": "10.0.1.9"}}}"#)
            #expect(replaced.status == .ok, "\(replaced.text)")
            let replacedTarget = (replaced.object["action"] as? [String: Any])?["target"] as? [String: Any]
            #expect(replacedTarget?["firstAddress"] as? String == "10.0.1.9" && replacedTarget?["firstPort"] == nil)

            // Without a target: 400 naming it; a backwards range: 422 naming the field.
            let missing = try await api.post("/v1/chains/\(chain)/rules", #"{"action": {"type": "snat"}}"#)
            expectError(missing, .badRequest, "malformed", mentioning: ["target"])
            let backwards = try await api.post(
                "/v1/chains/\(chain)/rules", #"{"action": {"type": "snat", "target": {"firstAddress": "198.51.100.9", "lastAddress": "198.51.100.5"}}}"#)
            expectError(backwards, .unprocessableContent, "invalid", mentioning: ["198.51.100.5"])
            #expect(backwards.errorField == "action.target.lastAddress")
        }
    }

    @Test func aRoutersGatewayRoundTrips() async throws {
        try await withAPI { api in
            let net = try await topology(api)
            let router = net["router"]!, uplink = net["uplink"]!
            let set = try await api.put(
                "/v1/routers/\(router)", #"{"name": "provider", "gateway": {"portId": "\#(uplink)", "snatAddress": "198.51.100.3"}}"#, token: Token.acme)
            #expect(set.status == .ok, "\(set.text)")
            let gateway = try #require(try await api.get("/v1/routers/\(router)", token: Token.acme).object["gateway"] as? [String: Any])
            #expect(gateway["portId"] as? String == uplink && gateway["snatAddress"] as? String == "198.51.100.3")
            #expect(gateway["enableSNAT"] as? Bool == true, "SNAT is on by default")

            let off = try await api.put(
                "/v1/routers/\(router)", #"{"name": "provider", "gateway": {"portId": "\#(uplink)", "enableSNAT": false}}"#, token: Token.acme)
            #expect((off.object["gateway"] as? [String: Any])?["enableSNAT"] as? Bool == false, "\(off.text)")

            // The gateway port stays while it is the gateway.
            let inUse = try await api.delete("/v1/ports/\(uplink)", token: Token.acme)
            expectError(inUse, .conflict, "conflict", mentioning: ["gateway.portId"])

            // Another router's port, or a bridge port: 409 naming gateway.portId.
            let other = try await api.create("/v1/routers", Body.router("core"), token: Token.acme)
            for port in [uplink, net["vm1"]!] {
                let refused = try await api.put("/v1/routers/\(other)", #"{"name": "core", "gateway": {"portId": "\#(port)"}}"#, token: Token.acme)
                expectError(refused, .conflict, "conflict", mentioning: ["gateway.portId", "not of router \(other)"])
                #expect(refused.errorField == "gateway.portId" && refused.errorValue == port)
            }
            let created = try await api.post("/v1/routers", #"{"name": "new", "gateway": {"portId": "\#(uplink)"}}"#, token: Token.acme)
            expectError(created, .conflict, "conflict", mentioning: ["gateway.portId"])
            let bad = try await api.put(
                "/v1/routers/\(router)", #"{"name": "provider", "gateway": {"portId": "\#(uplink)", "snatAddress": "224.0.0.1"}}"#, token: Token.acme)
            expectError(bad, .unprocessableContent, "invalid", mentioning: ["gateway.snatAddress"])

            // A PUT without the gateway removes it; then the port can go.
            let removed = try await api.put("/v1/routers/\(router)", #"{"name": "provider"}"#, token: Token.acme)
            #expect(removed.object["gateway"] == nil, "\(removed.text)")
            #expect(try await api.delete("/v1/ports/\(uplink)", token: Token.acme).status == .noContent)
        }
    }

    @Test func floatingIPsAreCreatedMovedReleasedAndDeleted() async throws {
        try await withAPI(.live) { api in
            let net = try await topology(api)
            let acme = Token.acme
            let created = try await api.post(
                "/v1/floating-ips", #"{"routerId": "\#(net["router"]!)", "address": "198.51.100.10", "portId": "\#(net["vm1"]!)"}"#, token: acme)
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(created.string("id"))
            #expect(created.string("tenantId") == "acme" && created.string("portId") == net["vm1"] && created.string("fixedAddress") == nil)
            #expect(created.headers[.eTag] == "\"\(created.int("revision") ?? 0)\"")
            let reserved = try await api.create("/v1/floating-ips", #"{"routerId": "\#(net["router"]!)", "address": "198.51.100.11"}"#, token: acme)

            #expect(try await api.get("/v1/floating-ips/\(id)", token: acme).string("address") == "198.51.100.10")
            #expect(Set(try await api.get("/v1/floating-ips", token: acme).itemIDs) == [id, reserved])
            #expect(try await api.get("/v1/floating-ips?portId=\(net["vm1"]!)", token: acme).itemIDs == [id])
            #expect(Set(try await api.get("/v1/floating-ips?routerId=\(net["router"]!)", token: acme).itemIDs) == [id, reserved])
            #expect(try await api.get("/v1/floating-ips?routerId=\(net["router"]!)&portId=\(net["vm2"]!)", token: acme).itemIDs == [])
            expectError(try await api.get("/v1/floating-ips?portId=vm1", token: acme), .badRequest, "malformed", mentioning: ["portId"])
            expectError(try await api.get("/v1/floating-ips?port=x", token: acme), .badRequest, "malformed", mentioning: ["port"])

            // Moving: a PUT with only the new port keeps router and address.
            let moved = try await api.put("/v1/floating-ips/\(id)", #"{"portId": "\#(net["vm2"]!)"}"#, token: acme,
                                          ifMatch: "\"\(created.int("revision")!)\"")
            #expect(moved.status == .ok, "\(moved.text)")
            #expect(moved.string("portId") == net["vm2"] && moved.string("address") == "198.51.100.10" && moved.string("routerId") == net["router"])
            #expect(try await api.get("/v1/floating-ips?portId=\(net["vm2"]!)", token: acme).itemIDs == [id])
            let stale = try await api.put("/v1/floating-ips/\(id)", #"{"portId": "\#(net["vm1"]!)"}"#, token: acme,
                                          ifMatch: "\"\(created.int("revision")!)\"")
            expectError(stale, .conflict, "stale_revision")
            let pinned = try await api.put(
                "/v1/floating-ips/\(id)", #"{"portId": "\#(net["vm1"]!)", "fixedAddress": "10.0.1.6"}"#, token: acme)
            #expect(pinned.string("fixedAddress") == "10.0.1.6", "\(pinned.text)")

            // Releasing: portId null.
            let released = try await api.put("/v1/floating-ips/\(id)", #"{"portId": null}"#, token: acme)
            #expect(released.status == .ok && released.string("portId") == nil && released.string("fixedAddress") == nil, "\(released.text)")
            #expect(try await api.delete("/v1/ports/\(net["vm1"]!)", token: acme).status == .noContent, "a released port can go")

            #expect(try await api.delete("/v1/floating-ips/\(id)", token: acme).status == .noContent)
            expectError(try await api.get("/v1/floating-ips/\(id)", token: acme), .notFound, "not_found")
            #expect(try await api.get("/v1/floating-ips", token: acme).itemIDs == [reserved])
        }
    }

    @Test func floatingIPRefusalsNameTheField() async throws {
        try await withAPI { api in
            let net = try await topology(api)
            let acme = Token.acme
            let router = net["router"]!
            func body(_ port: String, extra: String = "") -> String {
                #"{"routerId": "\#(router)", "address": "198.51.100.10", "portId": "\#(port)"\#(extra)}"#
            }
            let routerPort = try await api.post("/v1/floating-ips", body(net["uplink"]!), token: acme)
            expectError(routerPort, .conflict, "conflict", mentioning: ["portId", "is a port of router"])
            #expect(routerPort.errorField == "portId" && routerPort.errorValue == net["uplink"])
            let bare = try await api.post("/v1/floating-ips", body(net["bare"]!), token: acme)
            expectError(bare, .conflict, "conflict", mentioning: ["portId", "has no fixed IP"])
            let notItsAddress = try await api.post("/v1/floating-ips", body(net["vm2"]!, extra: #", "fixedAddress": "10.0.1.5""#), token: acme)
            expectError(notItsAddress, .conflict, "conflict", mentioning: ["fixedAddress", "10.0.1.7"])
            #expect(notItsAddress.errorField == "fixedAddress")
            let withoutPort = try await api.post(
                "/v1/floating-ips", #"{"routerId": "\#(router)", "address": "198.51.100.10", "fixedAddress": "10.0.1.5"}"#, token: acme)
            expectError(withoutPort, .unprocessableContent, "invalid", mentioning: ["fixedAddress", "needs a portId"])
            let multicast = try await api.post("/v1/floating-ips", #"{"routerId": "\#(router)", "address": "224.0.0.5"}"#, token: acme)
            expectError(multicast, .unprocessableContent, "invalid", mentioning: ["address"])
            let missingRouter = try await api.post(
                "/v1/floating-ips", #"{"routerId": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "address": "198.51.100.10"}"#, token: acme)
            expectError(missingRouter, .unprocessableContent, "invalid", mentioning: ["routerId"])
            let noAddress = try await api.post("/v1/floating-ips", #"{"routerId": "\#(router)"}"#, token: acme)
            expectError(noAddress, .badRequest, "malformed", mentioning: ["address"])

            // One floating IP per address, across tenants.
            _ = try await api.create("/v1/floating-ips", body(net["vm1"]!), token: acme)
            let globexRouter = try await api.create("/v1/routers", Body.router("provider"), token: Token.globex)
            let duplicate = try await api.post(
                "/v1/floating-ips", #"{"routerId": "\#(globexRouter)", "address": "198.51.100.10"}"#, token: Token.globex)
            expectError(duplicate, .conflict, "conflict", mentioning: ["address: 198.51.100.10 is already floating IP"])
            #expect(duplicate.errorField == "address")

            // The port stays while the floating IP names it, and keeps the address it translates to.
            let inUse = try await api.delete("/v1/ports/\(net["vm1"]!)", token: acme)
            expectError(inUse, .conflict, "conflict", mentioning: ["floating-ip", "portId"])
            let renumbered = try await api.put(
                "/v1/ports/\(net["vm1"]!)", #"{"name": "vm1", "fixedIPs": []}"#, token: acme)
            expectError(renumbered, .conflict, "conflict", mentioning: ["fixedIPs", "floating IP 198.51.100.10"])

            // Deleting the router deletes its floating IPs.
            #expect(try await api.delete("/v1/ports/\(net["uplink"]!)", token: acme).status == .noContent)
            #expect(try await api.delete("/v1/routers/\(router)", token: acme).status == .noContent)
            #expect(try await api.get("/v1/floating-ips", token: acme).itemIDs == [])
            #expect(try await api.delete("/v1/ports/\(net["vm1"]!)", token: acme).status == .noContent)
        }
    }

    @Test func aTenantSeesOnlyItsOwnFloatingIPs() async throws {
        try await withAPI { api in
            let net = try await topology(api)
            let floating = try await api.create(
                "/v1/floating-ips", #"{"routerId": "\#(net["router"]!)", "address": "198.51.100.10", "portId": "\#(net["vm1"]!)"}"#,
                token: Token.acme)
            let globex = Token.globex
            #expect(try await api.get("/v1/floating-ips", token: globex).itemIDs.isEmpty)
            #expect(try await api.get("/v1/floating-ips?routerId=\(net["router"]!)", token: globex).itemIDs.isEmpty)
            expectError(try await api.get("/v1/floating-ips/\(floating)", token: globex), .notFound, "not_found")
            expectError(try await api.put("/v1/floating-ips/\(floating)", #"{"portId": null}"#, token: globex), .notFound, "not_found")
            expectError(try await api.delete("/v1/floating-ips/\(floating)", token: globex), .notFound, "not_found")
            // Naming acme's router or port reads as naming nothing.
            let globexRouter = try await api.create("/v1/routers", Body.router("edge"), token: globex)
            let onAcmeRouter = try await api.post("/v1/floating-ips", #"{"routerId": "\#(net["router"]!)", "address": "198.51.100.12"}"#, token: globex)
            expectError(onAcmeRouter, .unprocessableContent, "invalid", mentioning: ["routerId", "does not exist"])
            let toAcmePort = try await api.post(
                "/v1/floating-ips", #"{"routerId": "\#(globexRouter)", "address": "198.51.100.12", "portId": "\#(net["vm2"]!)"}"#, token: globex)
            expectError(toAcmePort, .unprocessableContent, "invalid", mentioning: ["portId", "does not exist"])
            let foreignTenant = try await api.post("/v1/floating-ips", #"{"tenantId": "acme", "routerId": "\#(globexRouter)", "address": "198.51.100.12"}"#, token: globex)
            expectError(foreignTenant, .unprocessableContent, "invalid", mentioning: ["tenantId"])
            // Admin sees it.
            #expect(try await api.get("/v1/floating-ips").itemIDs == [floating])
        }
    }
}
