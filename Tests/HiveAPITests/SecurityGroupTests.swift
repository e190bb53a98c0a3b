import Foundation
import Testing

/// /v1/security-groups and /v1/security-group-rules, and ports' securityGroupIds.
@Suite struct SecurityGroupTests {
    static func rule(_ group: String, _ fields: String) -> String {
        #"{"securityGroupId": "\#(group)", "direction": "ingress"\#(fields.isEmpty ? "" : ", " + fields)}"#
    }

    @Test func groupsAreCreatedWithTheirInitialRulesReadReplacedAndDeleted() async throws {
        try await withAPI { api in
            let created = try await api.post("/v1/security-groups", #"{"name": "web", "description": "web servers"}"#, token: Token.acme)
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(created.string("id"))
            #expect(created.string("tenantId") == "acme")
            #expect(created.headers[.eTag] == "\"\(created.int("revision") ?? -1)\"")

            let rules = try await api.get("/v1/security-group-rules?securityGroupId=\(id)", token: Token.acme)
            #expect(rules.status == .ok)
            #expect(rules.items.count == 2, "\(rules.text)")
            #expect(Set(rules.items.compactMap { $0["etherType"] as? String }) == ["IPv4", "IPv6"])
            #expect(rules.items.allSatisfy { $0["direction"] as? String == "egress" && $0["tenantId"] as? String == "acme" })

            let replaced = try await api.put("/v1/security-groups/\(id)", #"{"name": "www"}"#, token: Token.acme, ifMatch: "\(created.int("revision")!)")
            #expect(replaced.status == .ok, "\(replaced.text)")
            #expect(replaced.string("name") == "www")
            #expect(replaced.string("description") == nil, "a PUT is the whole object")
            #expect(try await api.get("/v1/security-groups/\(id)", token: Token.acme).string("name") == "www")
            #expect(try await api.get("/v1/security-groups", token: Token.acme).itemIDs == [id])

            #expect(try await api.delete("/v1/security-groups/\(id)", token: Token.acme).status == .noContent)
            expectError(try await api.get("/v1/security-groups/\(id)", token: Token.acme), .notFound, "not_found")
            #expect(try await api.get("/v1/security-group-rules", token: Token.acme).items.isEmpty, "the rules went with their group")
        }
    }

    @Test func theDefaultGroupAdmitsItsOwnMembers() async throws {
        try await withAPI { api in
            let id = try await api.create("/v1/security-groups", #"{"name": "default"}"#, token: Token.acme)
            let ingress = try await api.get("/v1/security-group-rules?securityGroupId=\(id)", token: Token.acme).items
                .filter { $0["direction"] as? String == "ingress" }
            #expect(ingress.count == 2)
            #expect(ingress.allSatisfy { $0["remoteGroupId"] as? String == id })
        }
    }

    @Test func rulesAreCreatedReadFilteredAndDeletedButNeverChanged() async throws {
        try await withAPI { api in
            let web = try await api.create("/v1/security-groups", #"{"name": "web"}"#)
            let ssh = try await api.create("/v1/security-groups", #"{"name": "ssh"}"#)
            let http = try await api.post("/v1/security-group-rules", Self.rule(web, #""ipProtocol": 6, "ports": {"start": 80, "end": 80}, "remotePrefix": "0.0.0.0/0""#))
            #expect(http.status == .created, "\(http.text)")
            let ruleID = try #require(http.string("id"))
            #expect(http.string("etherType") == "IPv4", "IPv4 is the default")
            #expect(http.string("remotePrefix") == "0.0.0.0/0")
            #expect(try await api.get("/v1/security-group-rules/\(ruleID)").string("securityGroupId") == web)
            #expect(try await api.get("/v1/security-group-rules?securityGroupId=\(web)").items.count == 3)
            #expect(try await api.get("/v1/security-group-rules?securityGroupId=\(ssh)").items.count == 2)
            #expect(try await api.get("/v1/security-group-rules").items.count == 5)
            expectError(try await api.get("/v1/security-group-rules?securityGroupId=web"), .badRequest, "malformed", mentioning: ["securityGroupId"])
            expectError(try await api.get("/v1/security-group-rules?group=\(web)"), .badRequest, "malformed")

            let put = try await api.put("/v1/security-group-rules/\(ruleID)", Self.rule(web, #""ipProtocol": 6"#))
            expectError(put, .methodNotAllowed, "method_not_allowed")
            #expect(put.headers[.allow] == "DELETE, GET")

            #expect(try await api.delete("/v1/security-group-rules/\(ruleID)").status == .noContent)
            expectError(try await api.get("/v1/security-group-rules/\(ruleID)"), .notFound, "not_found")
        }
    }

    @Test func badRulesAreRefusedNamingTheField() async throws {
        try await withAPI { api in
            let group = try await api.create("/v1/security-groups", #"{"name": "web"}"#)
            let portsWithoutProtocol = try await api.post("/v1/security-group-rules", Self.rule(group, #""ports": {"start": 80, "end": 80}"#))
            expectError(portsWithoutProtocol, .unprocessableContent, "invalid", mentioning: ["ports", "needs ipProtocol 6 (TCP), 17 (UDP) or 132 (SCTP)", "ipProtocol is not set"])
            #expect(portsWithoutProtocol.errorField == "ports")
            let portsOnICMP = try await api.post("/v1/security-group-rules", Self.rule(group, #""ipProtocol": 1, "ports": {"start": 1, "end": 2}"#))
            expectError(portsOnICMP, .unprocessableContent, "invalid", mentioning: ["ipProtocol is 1"])

            let twoRemotes = try await api.post("/v1/security-group-rules", Self.rule(group, #""remotePrefix": "10.0.0.0/8", "remoteGroupId": "\#(group)""#))
            expectError(twoRemotes, .unprocessableContent, "invalid", mentioning: ["remoteGroupId", "cannot be combined with remotePrefix"])

            let ipv6WithIPv4Prefix = try await api.post("/v1/security-group-rules", Self.rule(group, #""etherType": "IPv6", "remotePrefix": "10.0.0.0/8""#))
            expectError(ipv6WithIPv4Prefix, .unprocessableContent, "invalid", mentioning: ["remotePrefix", "IPv4 network on an IPv6 rule"])

            let hostBits = try await api.post("/v1/security-group-rules", Self.rule(group, #""remotePrefix": "10.0.0.1/8""#))
            expectError(hostBits, .unprocessableContent, "invalid", mentioning: ["remotePrefix"])
            let reversed = try await api.post("/v1/security-group-rules", Self.rule(group, #""ipProtocol": 17, "ports": {"start": 90, "end": 80}"#))
            expectError(reversed, .unprocessableContent, "invalid", mentioning: ["start above end"])
            let codeWithoutType = try await api.post("/v1/security-group-rules", Self.rule(group, #""ipProtocol": 1, "icmpCode": 0"#))
            expectError(codeWithoutType, .unprocessableContent, "invalid", mentioning: ["icmpCode", "needs icmpType"])

            // Unreadable values are 400 with the field.
            let direction = try await api.post("/v1/security-group-rules", #"{"securityGroupId": "\#(group)", "direction": "inbound"}"#)
            expectError(direction, .badRequest, "malformed", mentioning: ["direction"])
            let etherType = try await api.post("/v1/security-group-rules", Self.rule(group, #""etherType": "ipv4""#))
            expectError(etherType, .badRequest, "malformed", mentioning: ["etherType"])
            let protocolNumber = try await api.post("/v1/security-group-rules", Self.rule(group, #""ipProtocol": 256"#))
            expectError(protocolNumber, .badRequest, "malformed", mentioning: ["ipProtocol"])
            let noGroup = try await api.post("/v1/security-group-rules", #"{"direction": "ingress"}"#)
            expectError(noGroup, .badRequest, "malformed", mentioning: ["securityGroupId"])

            #expect(try await api.get("/v1/security-group-rules?securityGroupId=\(group)").items.count == 2, "nothing refused was stored")
        }
    }

    @Test func aDuplicateRuleIsAConflict() async throws {
        try await withAPI { api in
            let group = try await api.create("/v1/security-groups", #"{"name": "web"}"#)
            let body = Self.rule(group, #""ipProtocol": 6, "ports": {"start": 22, "end": 22}, "remotePrefix": "192.0.2.0/24""#)
            let first = try await api.create("/v1/security-group-rules", body)
            let again = try await api.post("/v1/security-group-rules", Self.rule(group, #""ipProtocol": 6, "ports": {"start": 22, "end": 22}, "remotePrefix": "192.0.2.0/24", "description": "again""#))
            expectError(again, .conflict, "conflict", mentioning: ["already has rule \(first)", "same traffic"])
            let initial = try await api.post("/v1/security-group-rules", #"{"securityGroupId": "\#(group)", "direction": "egress", "etherType": "IPv6"}"#)
            expectError(initial, .conflict, "conflict", mentioning: ["already has rule"])
            let duplicateName = try await api.post("/v1/security-groups", #"{"name": "web"}"#)
            expectError(duplicateName, .conflict, "conflict")
        }
    }

    @Test func portsListGroupsAndGroupsInUseCannotBeDeleted() async throws {
        try await withAPI { api in
            let web = try await api.create("/v1/security-groups", #"{"name": "web"}"#, token: Token.acme)
            let ssh = try await api.create("/v1/security-groups", #"{"name": "ssh"}"#, token: Token.acme)
            let bridge = try await api.create("/v1/bridges", Body.bridge("net"), token: Token.acme)
            let port = try await api.post("/v1/ports", #"{"deviceId": "\#(bridge)", "deviceKind": "bridge", "securityGroupIds": ["\#(web)", "\#(ssh)"]}"#, token: Token.acme)
            #expect(port.status == .created, "\(port.text)")
            let portID = try #require(port.string("id"))
            #expect(port.object["securityGroupIds"] as? [String] == [web, ssh])

            expectError(try await api.delete("/v1/security-groups/\(ssh)", token: Token.acme), .conflict, "conflict",
                        mentioning: ["port \(portID)", "securityGroupIds[1]"])
            let remote = try await api.create("/v1/security-group-rules", Self.rule(ssh, #""remoteGroupId": "\#(web)""#), token: Token.acme)
            expectError(try await api.delete("/v1/security-groups/\(web)", token: Token.acme), .conflict, "conflict",
                        mentioning: ["security-group-rule \(remote)", "remoteGroupId", "port \(portID)"])

            // Port security off means no groups.
            let unsecured = try await api.put("/v1/ports/\(portID)", #"{"portSecurity": false, "securityGroupIds": ["\#(web)"]}"#, token: Token.acme)
            expectError(unsecured, .unprocessableContent, "invalid", mentioning: ["securityGroupIds", "portSecurity is off"])
            let routerID = try await api.create("/v1/routers", Body.router("edge"), token: Token.acme)
            let routerPort = try await api.post("/v1/ports", #"{"deviceId": "\#(routerID)", "deviceKind": "router", "address": "10.0.0.1", "subnet": "10.0.0.0/24", "securityGroupIds": ["\#(web)"]}"#, token: Token.acme)
            expectError(routerPort, .unprocessableContent, "invalid", mentioning: ["securityGroupIds", "router port"])
            let missing = UUID().uuidString.lowercased()
            let unknown = try await api.put("/v1/ports/\(portID)", #"{"securityGroupIds": ["\#(missing)"]}"#, token: Token.acme)
            expectError(unknown, .unprocessableContent, "invalid", mentioning: ["securityGroupIds[0]: security-group \(missing) does not exist"])

            // A PUT without the field leaves the port in no group; then the groups can go.
            let cleared = try await api.put("/v1/ports/\(portID)", "{}", token: Token.acme)
            #expect(cleared.object["securityGroupIds"] as? [String] == [])
            #expect(try await api.delete("/v1/security-groups/\(ssh)", token: Token.acme).status == .noContent)
            #expect(try await api.delete("/v1/security-groups/\(web)", token: Token.acme).status == .noContent)
        }
    }

    @Test func anotherTenantCannotSeeOrUseAGroup() async throws {
        try await withAPI { api in
            let group = try await api.create("/v1/security-groups", #"{"name": "web"}"#, token: Token.acme)
            let rules = try await api.get("/v1/security-group-rules?securityGroupId=\(group)", token: Token.acme).itemIDs
            let globex = Token.globex
            #expect(try await api.get("/v1/security-groups", token: globex).itemIDs.isEmpty)
            #expect(try await api.get("/v1/security-group-rules", token: globex).itemIDs.isEmpty)
            #expect(try await api.get("/v1/security-group-rules?securityGroupId=\(group)", token: globex).itemIDs.isEmpty)
            for path in ["security-groups/\(group)", "security-group-rules/\(rules[0])"] {
                expectError(try await api.get("/v1/\(path)", token: globex), .notFound, "not_found")
                expectError(try await api.delete("/v1/\(path)", token: globex), .notFound, "not_found")
            }
            expectError(try await api.put("/v1/security-groups/\(group)", #"{"name": "mine"}"#, token: globex), .notFound, "not_found")

            let bridge = try await api.create("/v1/bridges", Body.bridge("net"), token: globex)
            let port = try await api.post("/v1/ports", #"{"deviceId": "\#(bridge)", "deviceKind": "bridge", "securityGroupIds": ["\#(group)"]}"#, token: globex)
            expectError(port, .unprocessableContent, "invalid", mentioning: ["securityGroupIds[0]: security-group \(group) does not exist"])
            let rule = try await api.post("/v1/security-group-rules", Self.rule(group, ""), token: globex)
            expectError(rule, .unprocessableContent, "invalid", mentioning: ["securityGroupId", "does not exist"])
            let own = try await api.create("/v1/security-groups", #"{"name": "web"}"#, token: globex)
            let remote = try await api.post("/v1/security-group-rules", Self.rule(own, #""remoteGroupId": "\#(group)""#), token: globex)
            expectError(remote, .unprocessableContent, "invalid", mentioning: ["remoteGroupId", "does not exist"])

            // Admin may write anything, but not mix tenants in one policy.
            let mixed = try await api.post("/v1/ports", #"{"tenantId": "globex", "deviceId": "\#(bridge)", "deviceKind": "bridge", "securityGroupIds": ["\#(group)"]}"#)
            expectError(mixed, .conflict, "conflict", mentioning: ["securityGroupIds[0]", "tenant 'acme'", "own tenant's groups"])
            let adminRule = try await api.post("/v1/security-group-rules", Self.rule(own, #""ipProtocol": 6"#))
            #expect(adminRule.status == .created)
            #expect(adminRule.string("tenantId") == "globex", "a rule takes its group's tenant")
        }
    }
}
