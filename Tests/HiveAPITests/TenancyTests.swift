import Foundation
import Testing

/// A tenant sees and changes only its own objects; others' read as missing.
@Suite struct TenancyTests {
    @Test func aSecondTenantSeesNoneOfTheFirstTenantsObjects() async throws {
        try await withAPI { api in
            let acme = Token.acme
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"), token: acme)
            let router = try await api.create("/v1/routers", Body.router("edge"), token: acme)
            let port = try await api.create("/v1/ports", Body.bridgePort(bridge), token: acme)
            let routerPort = try await api.create("/v1/ports", Body.routerPort(router, address: "10.0.0.1", subnet: "10.0.0.0/24"), token: acme)
            let route = try await api.create("/v1/routers/\(router)/routes", #"{"destination": "0.0.0.0/0", "egressPortId": "\#(routerPort)"}"#, token: acme)
            let chain = try await api.create("/v1/chains", Body.chain("fw"), token: acme)
            let rule = try await api.create("/v1/chains/\(chain)/rules", Body.acceptRule, token: acme)
            let group = try await api.create("/v1/port-groups", #"{"name": "g"}"#, token: acme)
            let addresses = try await api.create("/v1/ip-address-groups", #"{"name": "a"}"#, token: acme)
            let subnet = try await api.create("/v1/bridges/\(bridge)/dhcp-subnets", DHCPTests.subnet, token: acme)
            #expect(try await api.get("/v1/bridges/\(bridge)", token: acme).string("tenantId") == "acme")

            let globex = Token.globex
            for collection in ["bridges", "routers", "ports", "chains", "port-groups", "ip-address-groups"] {
                #expect(try await api.get("/v1/\(collection)", token: globex).itemIDs.isEmpty, "globex lists no \(collection)")
            }
            let owned = [
                "bridges/\(bridge)", "routers/\(router)", "ports/\(port)", "routes/\(route)", "chains/\(chain)",
                "rules/\(rule)", "port-groups/\(group)", "ip-address-groups/\(addresses)", "dhcp-subnets/\(subnet)",
            ]
            for path in owned {
                expectError(try await api.get("/v1/\(path)", token: globex), .notFound, "not_found")
                expectError(try await api.put("/v1/\(path)", "{}", token: globex), .notFound, "not_found")
                expectError(try await api.delete("/v1/\(path)", token: globex), .notFound, "not_found")
            }
            for path in ["bridges/\(bridge)/dhcp-subnets", "routers/\(router)/routes", "chains/\(chain)/rules"] {
                expectError(try await api.get("/v1/\(path)", token: globex), .notFound, "not_found")
                expectError(try await api.post("/v1/\(path)", "{}", token: globex), .notFound, "not_found")
            }
            expectError(try await api.delete("/v1/ports/\(port)/link", token: globex), .notFound, "not_found")
            #expect(try await api.get("/v1/ports?deviceId=\(bridge)", token: globex).itemIDs.isEmpty)

            // Admin sees everything; acme still has all of it.
            #expect(try await api.get("/v1/bridges").itemIDs == [bridge])
            #expect(try await api.get("/v1/ports", token: acme).itemIDs.count == 2)
        }
    }

    @Test func bodiesNamingAnotherTenantsObjectsAreRefused() async throws {
        try await withAPI { api in
            let acmeBridge = try await api.create("/v1/bridges", Body.bridge("web"), token: Token.acme)
            let acmeChain = try await api.create("/v1/chains", Body.chain("fw"), token: Token.acme)
            let acmePort = try await api.create("/v1/ports", Body.bridgePort(acmeBridge), token: Token.acme)
            let globex = Token.globex
            let globexBridge = try await api.create("/v1/bridges", Body.bridge("web"), token: globex)
            let globexChain = try await api.create("/v1/chains", Body.chain("fw"), token: globex)
            let globexPort = try await api.create("/v1/ports", Body.bridgePort(globexBridge), token: globex)

            // A port on another tenant's bridge.
            let port = try await api.post("/v1/ports", Body.bridgePort(acmeBridge), token: globex)
            expectError(port, .unprocessableContent, "invalid", mentioning: ["deviceId: bridge \(acmeBridge) does not exist"])
            // A port using another tenant's chain.
            let chained = try await api.post(
                "/v1/ports", #"{"deviceId": "\#(globexBridge)", "deviceKind": "bridge", "inboundChainId": "\#(acmeChain)"}"#, token: globex)
            expectError(chained, .unprocessableContent, "invalid", mentioning: ["inboundChainId", acmeChain, "does not exist"])
            // A replace that points at another tenant's chain.
            let bridgeUpdate = try await api.put("/v1/bridges/\(globexBridge)", #"{"name": "web", "outboundChainId": "\#(acmeChain)"}"#, token: globex)
            expectError(bridgeUpdate, .unprocessableContent, "invalid", mentioning: ["outboundChainId"])
            // A rule jumping to another tenant's chain, or naming its ports.
            let jump = try await api.post("/v1/chains/\(globexChain)/rules", #"{"action": {"type": "jump", "chainId": "\#(acmeChain)"}}"#, token: globex)
            expectError(jump, .unprocessableContent, "invalid", mentioning: ["action.chainId", "does not exist"])
            let inPorts = try await api.post(
                "/v1/chains/\(globexChain)/rules", #"{"conditions": {"inPorts": {"value": ["\#(acmePort)"]}}, "action": {"type": "drop"}}"#, token: globex)
            expectError(inPorts, .unprocessableContent, "invalid", mentioning: ["conditions.inPorts[0]"])
            // Linking to another tenant's port.
            let link = try await api.post("/v1/ports/\(globexPort)/link", #"{"peerId": "\#(acmePort)"}"#, token: globex)
            expectError(link, .unprocessableContent, "invalid", mentioning: ["peerId", acmePort])
            // Admin-owned objects are not the tenant's either.
            let adminChain = try await api.create("/v1/chains", Body.chain("shared"))
            let adminRef = try await api.put("/v1/bridges/\(globexBridge)", #"{"name": "web", "inboundChainId": "\#(adminChain)"}"#, token: globex)
            expectError(adminRef, .unprocessableContent, "invalid")

            // The same body works for the owner.
            #expect(try await api.post("/v1/ports", Body.bridgePort(acmeBridge), token: Token.acme).status == .created)
        }
    }

    @Test func tenantIdIsFilledAndCannotBeAnotherTenants() async throws {
        try await withAPI { api in
            let mismatch = try await api.post("/v1/bridges", #"{"name": "web", "tenantId": "globex"}"#, token: Token.acme)
            expectError(mismatch, .unprocessableContent, "invalid", mentioning: ["tenantId: 'globex'", "acme"])
            #expect(mismatch.errorField == "tenantId")
            let same = try await api.post("/v1/bridges", #"{"name": "web", "tenantId": "acme"}"#, token: Token.acme)
            #expect(same.status == .created)
            let id = try #require(same.string("id"))
            let moved = try await api.put("/v1/bridges/\(id)", #"{"name": "web", "tenantId": "globex"}"#, token: Token.acme)
            expectError(moved, .unprocessableContent, "invalid", mentioning: ["tenantId: 'globex'"])

            // Admin may create for any tenant; a PUT without tenantId keeps the owner.
            let forGlobex = try await api.create("/v1/bridges", #"{"name": "db", "tenantId": "globex"}"#)
            #expect(try await api.get("/v1/bridges/\(forGlobex)", token: Token.globex).status == .ok)
            let kept = try await api.put("/v1/bridges/\(forGlobex)", #"{"name": "db2"}"#)
            #expect(kept.string("tenantId") == "globex")
        }
    }
}
