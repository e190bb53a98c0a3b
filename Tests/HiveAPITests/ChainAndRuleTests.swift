import Foundation
import Testing

@Suite struct ChainAndRuleTests {
    @Test func rulesKeepChainOrderWithPositions() async throws {
        try await withAPI { api in
            let chain = try await api.create("/v1/chains", Body.chain("fw"))
            let last = try await api.create("/v1/chains/\(chain)/rules", #"{"action": {"type": "drop"}}"#)
            let first = try await api.create("/v1/chains/\(chain)/rules?position=0", Body.acceptRule)
            let middle = try await api.create(
                "/v1/chains/\(chain)/rules?position=1",
                #"{"conditions": {"ipProtocol": {"value": 6}, "destinationPorts": {"value": {"start": 80, "end": 443}}}, "action": {"type": "accept"}}"#)

            let listed = try await api.get("/v1/chains/\(chain)/rules")
            #expect(listed.itemIDs == [first, middle, last], "rules list in evaluation order")
            #expect(try await api.get("/v1/chains/\(chain)").object["ruleIds"] as? [String] == [first, middle, last])
            let rule = try await api.get("/v1/rules/\(middle)")
            #expect(rule.string("chainId") == chain)
            let conditions = try #require(rule.object["conditions"] as? [String: Any])
            #expect((conditions["ipProtocol"] as? [String: Any])?["value"] as? Int == 6)

            // Out of range positions and bad values.
            expectError(try await api.post("/v1/chains/\(chain)/rules?position=9", Body.acceptRule), .conflict, "conflict", mentioning: ["position: '9'", "0...3"])
            expectError(try await api.post("/v1/chains/\(chain)/rules?position=-1", Body.acceptRule), .badRequest, "malformed", mentioning: ["position", "'-1'"])
            expectError(try await api.post("/v1/chains/\(chain)/rules?position=first", Body.acceptRule), .badRequest, "malformed", mentioning: ["'first'"])

            // A PUT on the chain may reorder its rules, not change the set; omitting ruleIds keeps them.
            let reordered = try await api.put("/v1/chains/\(chain)", #"{"name": "fw", "ruleIds": ["\#(last)", "\#(first)", "\#(middle)"]}"#)
            #expect(reordered.status == .ok, "\(reordered.text)")
            #expect(try await api.get("/v1/chains/\(chain)/rules").itemIDs == [last, first, middle])
            expectError(try await api.put("/v1/chains/\(chain)", #"{"name": "fw", "ruleIds": ["\#(last)"]}"#), .conflict, "conflict", mentioning: ["ruleIds", "reordered"])
            let renamed = try await api.put("/v1/chains/\(chain)", #"{"name": "firewall"}"#)
            #expect(renamed.object["ruleIds"] as? [String] == [last, first, middle])

            // Deleting a rule removes it from the chain; deleting the chain removes the rest.
            #expect(try await api.delete("/v1/rules/\(first)").status == .noContent)
            #expect(try await api.get("/v1/chains/\(chain)/rules").itemIDs == [last, middle])
            #expect(try await api.delete("/v1/chains/\(chain)").status == .noContent)
            expectError(try await api.get("/v1/rules/\(last)"), .notFound, "not_found")
        }
    }

    @Test func ruleReplaceAndValidation() async throws {
        try await withAPI { api in
            let chain = try await api.create("/v1/chains", Body.chain("fw"))
            let other = try await api.create("/v1/chains", Body.chain("other"))
            let rule = try await api.create("/v1/chains/\(chain)/rules", Body.acceptRule)

            let jump = try await api.put("/v1/rules/\(rule)", #"{"action": {"type": "jump", "chainId": "\#(other)"}}"#)
            #expect(jump.status == .ok, "\(jump.text)")
            #expect((jump.object["action"] as? [String: Any])?["chainId"] as? String == other)
            // The jump target is in use now.
            expectError(try await api.delete("/v1/chains/\(other)"), .conflict, "conflict", mentioning: ["action.chainId"])
            // A rule cannot move to another chain.
            expectError(try await api.put("/v1/rules/\(rule)", #"{"chainId": "\#(other)", "action": {"type": "drop"}}"#), .conflict, "conflict", mentioning: ["chainId"])

            let invalid = try await api.post("/v1/chains/\(chain)/rules", #"{"conditions": {"destinationPorts": {"value": {"start": 443, "end": 80}}}, "action": {"type": "accept"}}"#)
            expectError(invalid, .unprocessableContent, "invalid", mentioning: ["conditions.destinationPorts", "start above end", "needs ipProtocol"])
            let selfJump = try await api.post("/v1/chains/\(chain)/rules", #"{"action": {"type": "jump", "chainId": "\#(chain)"}}"#)
            expectError(selfJump, .unprocessableContent, "invalid", mentioning: ["action.chainId", "own chain"])
            let badAction = try await api.post("/v1/chains/\(chain)/rules", #"{"action": {"type": "allow"}}"#)
            expectError(badAction, .badRequest, "malformed", mentioning: ["'allow' is not a rule action type"])
            let missingChain = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
            expectError(try await api.get("/v1/chains/\(missingChain)/rules"), .notFound, "not_found")
        }
    }

    @Test func chainsUsedByPortsAreInUse() async throws {
        try await withAPI { api in
            let chain = try await api.create("/v1/chains", Body.chain("fw"))
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let port = try await api.create("/v1/ports", #"{"deviceId": "\#(bridge)", "deviceKind": "bridge", "inboundChainId": "\#(chain)"}"#)
            expectError(try await api.delete("/v1/chains/\(chain)"), .conflict, "conflict", mentioning: [port, "inboundChainId"])
            let created = try await api.post("/v1/chains", #"{"name": "fresh", "ruleIds": ["3f2504e0-4f89-11d3-9a0c-0305e82c3301"]}"#)
            #expect(created.status == .created, "ruleIds are ignored on create: \(created.text)")
            #expect(created.object["ruleIds"] as? [String] == [])
        }
    }
}
