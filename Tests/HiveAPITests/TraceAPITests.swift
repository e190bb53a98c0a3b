import Foundation
import HiveStore
import Testing

/// Traces through the API: simulated traces read the learned tables and the
/// bindings from the NSDB; live trace requests live under a lease of their
/// own, read only by their tenant, and end when deleted.
@Suite struct TraceAPITests {
    /// Bridge web with two VM ports of tenant acme (fixed IPs and MACs), vm1 bound to host h1.
    private func topology(_ api: APIClient) async throws -> [String: String] {
        var ids: [String: String] = [:]
        ids["bridge"] = try await api.create("/v1/bridges", Body.bridge("web"), token: Token.acme)
        _ = try await api.create(
            "/v1/bridges/\(ids["bridge"]!)/dhcp-subnets",
            #"{"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.100", "rangeEnd": "10.0.1.200", "gateway": "10.0.1.1"}"#, token: Token.acme)
        for (name, address, mac) in [("vm1", "10.0.1.5", "02:00:00:00:00:05"), ("vm2", "10.0.1.7", "02:00:00:00:00:07")] {
            ids[name] = try await api.create(
                "/v1/ports",
                #"{"deviceId": "\#(ids["bridge"]!)", "deviceKind": "bridge", "name": "\#(name)", "mac": "\#(mac)", "fixedIPs": ["\#(address)"]}"#,
                token: Token.acme)
        }
        ids["host"] = try await api.create("/v1/hosts", Body.host("h1"))
        _ = try await api.create("/v1/bindings", #"{"hostId": "\#(ids["host"]!)", "portId": "\#(ids["vm1"]!)", "interfaceName": "tap1"}"#)
        return ids
    }

    @Test func aSimulatedTraceReadsTheLearnedTablesAndWhereThePortsLive() async throws {
        try await withAPI { api in
            let ids = try await topology(api)
            // A MAC behind vm2 (a container in the VM, say) is unknown to the bridge: the frame
            // floods; once an agent shared that it learned it on vm2, it goes to vm2 alone.
            let body = #"{"inPort": "web/vm1", "dstIp": "10.0.1.70", "dstMac": "02:00:00:00:00:99", "protocol": "udp", "dstPort": 53}"#
            let before = try await api.post("/v1/traces", body, token: Token.acme)
            #expect(before.status == .ok, "\(before.text)")
            #expect(before.string("mode") == "simulated")
            #expect(before.string("decision") == "flood", "\(before.text)")
            let inPort = try #require(before.object["inPort"] as? [String: Any])
            #expect(inPort["name"] as? String == "web/vm1" && inPort["host"] as? String == "h1")
            #expect(inPort["hostAlive"] as? Bool == false, "no agent holds h1's lease")

            _ = try await api.repository.store.put(
                TopologyKeys.root + "state/mac/\(ids["bridge"]!)/02:00:00:00:00:99", ids["vm2"]!)
            let after = try await api.post("/v1/traces", body, token: Token.acme)
            #expect(after.string("decision") == "output", "\(after.text)")
            let steps = (after.object["steps"] as? [[String: Any]])?.compactMap { $0["text"] as? String } ?? []
            #expect(steps.contains("02:00:00:00:00:99 is behind port web/vm2 (learned)"), "\(steps)")
            let notes = after.object["notes"] as? [String] ?? []
            #expect(notes.contains { $0.contains("the 1 MAC and 0 ARP entries the agents share") }, "\(notes)")
            let outputs = after.object["outputPorts"] as? [[String: Any]] ?? []
            #expect(outputs.first?["name"] as? String == "web/vm2" && outputs.first?["host"] == nil, "vm2 is bound nowhere: \(outputs)")
            #expect(notes.contains { $0.contains("host h1 is not alive, so no agent would see this packet: assuming every host alive") }, "\(notes)")

            // h1 alive (its liveness key under a lease, as an agent keeps it), vm2 bound to h2, which is not:
            // vm1's packets to vm2 are dropped at h1, saying why.
            let h2 = try await api.create("/v1/hosts", Body.host("h2", address: "192.0.2.11"))
            _ = try await api.create("/v1/bindings", #"{"hostId": "\#(h2)", "portId": "\#(ids["vm2"]!)", "interfaceName": "tap2"}"#)
            let lease = try await api.repository.store.grantLease(ttl: 60)
            _ = try await api.repository.store.put(TopologyKeys.hosts + ids["host"]! + "/alive", value: Array("up".utf8), lease: lease.id)
            let dead = try await api.post("/v1/traces", body, token: Token.acme)
            #expect(dead.string("decision") == "drop", "\(dead.text)")
            #expect(dead.string("reason")?.contains("port web/vm2 is bound to a host whose agent is not alive") == true, "\(dead.text)")

            // Another tenant cannot start a trace at acme's port; bad fields are named.
            let foreign = try await api.post("/v1/traces", body, token: Token.globex)
            expectError(foreign, .unprocessableContent, "invalid", mentioning: ["web/vm1", "names no port"])
            let badAddress = try await api.post("/v1/traces", #"{"inPort": "web/vm1", "dstIp": "10.0.1"}"#, token: Token.acme)
            expectError(badAddress, .unprocessableContent, "invalid", mentioning: ["10.0.1", "IPv4"])
            #expect(badAddress.errorField == "dstIp")
            let missing = try await api.post("/v1/traces", #"{"inPort": "web/vm1"}"#, token: Token.acme)
            expectError(missing, .badRequest, "malformed", mentioning: ["dstIp"])
        }
    }

    @Test func liveTraceRequestsLiveUnderTheirOwnLeaseAndBelongToTheirTenant() async throws {
        try await withAPI { api in
            let ids = try await topology(api)
            let armed = try await api.post(
                "/v1/trace-requests", #"{"portId": "\#(ids["vm1"]!)", "match": "TCP and dst port 80", "count": 3}"#, token: Token.acme)
            #expect(armed.status == .created, "\(armed.text)")
            let id = try #require(armed.string("id"))
            #expect(armed.string("match") == "tcp and dst port 80", "the filter in its canonical form")
            #expect(armed.int("count") == 3 && armed.string("tenantId") == "acme" && armed.int("leaseTTL") == 10)

            // In the NSDB, where the agents watch, under a lease of its own.
            let stored = try await api.repository.store.range(.prefix(TopologyKeys.traceRequests)).keyValues
            #expect(stored.count == 1 && stored[0].lease != 0, "\(stored)")

            // Results an agent wrote under the request's lease come back, oldest first, after a revision.
            let report = #"{"mode": "live", "packet": "TCP", "inPort": {"id": "\#(ids["vm1"]!)", "name": "web/vm1"}, "notes": [], "steps": [], "decision": "drop", "reason": "DROP", "outputPorts": [], "floodExclusions": [], "actions": [], "generated": [], "learnMACs": [], "fieldsRead": [], "tags": [], "cacheable": false}"#
            _ = try await api.repository.store.put(
                TopologyKeys.traceResults + "\(id)/h1/000000000001", value: Array(report.utf8), lease: stored[0].lease)
            let results = try await api.get("/v1/trace-requests/\(id)/results?after=0", token: Token.acme)
            #expect(results.status == .ok, "\(results.text)")
            let list = results.object["results"] as? [[String: Any]] ?? []
            #expect(list.count == 1 && (list.first?["report"] as? [String: Any])?["decision"] as? String == "drop", "\(results.text)")
            let revision = try #require(list.first?["revision"] as? Int)
            let none = try await api.get("/v1/trace-requests/\(id)/results?after=\(revision)&wait=1", token: Token.acme)
            #expect((none.object["results"] as? [Any])?.isEmpty == true, "nothing newer: \(none.text)")

            // Another tenant sees neither the request nor its results.
            expectError(try await api.get("/v1/trace-requests/\(id)", token: Token.globex), .notFound, "not_found")
            expectError(try await api.get("/v1/trace-requests/\(id)/results", token: Token.globex), .notFound, "not_found")
            expectError(try await api.delete("/v1/trace-requests/\(id)", token: Token.globex), .notFound, "not_found")

            // Deleting ends it: the request and what was traced are gone.
            #expect(try await api.delete("/v1/trace-requests/\(id)", token: Token.acme).status == .noContent)
            expectError(try await api.get("/v1/trace-requests/\(id)", token: Token.acme), .notFound, "not_found")
            #expect(try await api.repository.store.range(.prefix(TopologyKeys.traceResults)).keyValues.isEmpty)
        }
    }

    @Test func liveTraceRequestsAreCheckedBeforeTheyAreArmed() async throws {
        try await withAPI { api in
            let ids = try await topology(api)
            let foreign = try await api.post("/v1/trace-requests", #"{"portId": "\#(ids["vm1"]!)"}"#, token: Token.globex)
            expectError(foreign, .unprocessableContent, "invalid", mentioning: ["names no port"])
            #expect(foreign.errorField == "portId")
            let badMatch = try await api.post("/v1/trace-requests", #"{"portId": "\#(ids["vm1"]!)", "match": "tcp or udp"}"#, token: Token.acme)
            expectError(badMatch, .unprocessableContent, "invalid", mentioning: ["'or'", "and"])
            let badPort = try await api.post("/v1/trace-requests", #"{"portId": "\#(ids["vm1"]!)", "match": "icmp and port 80"}"#, token: Token.acme)
            expectError(badPort, .unprocessableContent, "invalid", mentioning: ["only TCP and UDP"])
            let tooMany = try await api.post("/v1/trace-requests", #"{"portId": "\#(ids["vm1"]!)", "count": 1000}"#, token: Token.acme)
            expectError(tooMany, .unprocessableContent, "invalid", mentioning: ["1 to 100"])
            let longWait = try await api.get("/v1/trace-requests/\(UUID().uuidString)/results?wait=60", token: Token.acme)
            expectError(longWait, .badRequest, "malformed", mentioning: ["wait"])
            #expect(try await api.repository.store.range(.prefix(TopologyKeys.traceRequests)).keyValues.isEmpty, "nothing was armed")
        }
    }
}
