import Foundation
import HiveAPI
import HiveModel
import HiveStore
import Hummingbird
import HummingbirdTesting
import Testing

/// The API's side of the agents' state: who may ask, what the NSDB alone
/// answers, and how an agent that cannot be asked is reported. The agent's
/// answers themselves are exercised end to end (HiveAgentTests, HiveCLITests).
@Suite struct AgentStateRouteTests {
    /// An API that holds the agents' token, on a fresh store.
    func withAgentAwareAPI(_ body: @Sendable (APIClient) async throws -> Void) async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory)
            let repository = TopologyRepository(store: store)
            let server = HiveAPIServer(repository: repository, tokens: Token.table, agentToken: "agents")
            do {
                try await Application(router: server.buildRouter()).test(.router) { client in
                    try await body(APIClient(client: client, repository: repository))
                }
            } catch {
                await store.close()
                throw error
            }
            await store.close()
        }
    }

    @Test func flowsAreAdminOnlyAndSayWhyAnAgentCannotBeAsked() async throws {
        try await withAPI { api in
            let host = try await api.create("/v1/hosts", Body.host("hv1"))
            expectError(try await api.get("/v1/hosts/\(host)/flows", token: Token.acme), .forbidden, "forbidden")
            expectError(try await api.get("/v1/hosts/\(host)/flows/summary", token: Token.acme), .forbidden, "forbidden")
            expectError(try await api.get("/v1/hosts/3f2504e0-4f89-11d3-9a0c-0305e82c3301/flows"), .notFound, "not_found")
            expectError(try await api.get("/v1/hosts/\(host)/flows?port=nope"), .badRequest, "malformed", mentioning: ["port"])
            expectError(try await api.get("/v1/hosts/\(host)/flows?port=3f2504e0-4f89-11d3-9a0c-0305e82c3301"), .notFound, "not_found",
                        mentioning: ["query parameter port"])
            expectError(try await api.get("/v1/hosts/\(host)/flows?verbose=1"), .badRequest, "malformed", mentioning: ["verbose"])
            for limit in ["0", "65537", "ten"] {
                expectError(try await api.get("/v1/hosts/\(host)/flows?limit=\(limit)"), .badRequest, "malformed", mentioning: ["limit"])
            }
            // No agentEndpoint recorded: the agent runs without a control token, or not at all.
            expectError(try await api.get("/v1/hosts/\(host)/flows"), .conflict, "agent_unavailable", mentioning: ["hv1", "agentEndpoint"])
            expectError(try await api.get("/v1/hosts/\(host)/flows/summary"), .conflict, "agent_unavailable", mentioning: ["hv1"])
        }
    }

    @Test func anAgentThatDoesNotAnswerIsA409NotAServerError() async throws {
        try await withAgentAwareAPI { api in
            // Nothing listens on port 1.
            let host = try await api.create("/v1/hosts", #"{"name": "hv1", "agentEndpoint": "http://127.0.0.1:1"}"#)
            expectError(try await api.get("/v1/hosts/\(host)/flows"), .conflict, "agent_unavailable", mentioning: ["hv1", "http://127.0.0.1:1"])
        }
        try await withAPI { api in
            let host = try await api.create("/v1/hosts", #"{"name": "hv1", "agentEndpoint": "http://127.0.0.1:1"}"#)
            expectError(try await api.get("/v1/hosts/\(host)/flows"), .conflict, "agent_unavailable", mentioning: ["--agent-token-file"])
        }
    }

    @Test func theAgentEndpointIsAURLAndAPutWithoutItKeepsIt() async throws {
        try await withAPI { api in
            let host = try await api.create("/v1/hosts", #"{"name": "hv1", "agentEndpoint": "http://192.0.2.10:9697"}"#)
            let replaced = try await api.put("/v1/hosts/\(host)", #"{"name": "hv1", "underlayAddresses": ["192.0.2.20"]}"#)
            #expect(replaced.string("agentEndpoint") == "http://192.0.2.10:9697", "\(replaced.text)")
            for bad in ["ftp://192.0.2.10", "192.0.2.10:9697", "http://user:pw@192.0.2.10", "http://192.0.2.10/?x=1", "http:// x"] {
                expectError(try await api.post("/v1/hosts", #"{"name": "hv2", "agentEndpoint": "\#(bad)"}"#), .unprocessableContent, "invalid",
                            mentioning: ["agentEndpoint"])
            }
        }
    }

    @Test func aPortsStatusComesFromTheNSDBWhenNoAgentHasIt() async throws {
        try await withAgentAwareAPI { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"), token: Token.acme)
            let port = try await api.create("/v1/ports", #"{"deviceId": "\#(bridge)", "deviceKind": "bridge", "name": "vm1", "mac": "02:00:00:00:00:11"}"#,
                                            token: Token.acme)
            // Not placed yet.
            let unbound = try await api.get("/v1/ports/\(port)/status", token: Token.acme)
            #expect(unbound.status == .ok, "\(unbound.text)")
            #expect(unbound.string("state") == "unbound" && unbound.string("reason")?.contains("hive binding create") == true)
            #expect(unbound.string("mac") == "02:00:00:00:00:11")
            // Another tenant's port reads as missing.
            expectError(try await api.get("/v1/ports/\(port)/status", token: Token.globex), .notFound, "not_found")

            // MACs the bridge learned on it, as the agents write them.
            let bridgeID = try #require(BridgeID(parsing: bridge))
            try await api.repository.store.put(TopologyKeys.learnedMACs(bridgeID) + "02:aa:00:00:00:02", value: Array(port.utf8))
            try await api.repository.store.put(TopologyKeys.learnedMACs(bridgeID) + "02:aa:00:00:00:01", value: Array(port.utf8))
            try await api.repository.store.put(TopologyKeys.learnedMACs(bridgeID) + "02:bb:00:00:00:01", value: Array("elsewhere".utf8))

            // Bound to a host whose agent is down: where it is, and why no more is known.
            let host = try await api.create("/v1/hosts", #"{"name": "hv1", "agentEndpoint": "http://127.0.0.1:1"}"#)
            _ = try await api.create("/v1/bindings", #"{"hostId": "\#(host)", "portId": "\#(port)", "interfaceName": "tap-vm1"}"#)
            let status = try await api.get("/v1/ports/\(port)/status", token: Token.acme)
            #expect(status.string("state") == "unknown", "\(status.text)")
            #expect(status.string("reason")?.hasPrefix("agent unreachable: ") == true && status.string("reason")?.contains("not alive") == true,
                    "\(status.text)")
            let binding = status.object["binding"] as? [String: Any]
            #expect(binding?["hostName"] as? String == "hv1" && binding?["interface"] as? String == "tap-vm1" && binding?["hostAlive"] as? Bool == false)
            #expect(status.object["learnedMACs"] as? [String] == ["02:aa:00:00:00:01", "02:aa:00:00:00:02"])
            #expect(status.object["counters"] == nil)
        }
    }

    @Test func aRouterPortShowsItsAddressAndAnInteriorPortSaysSo() async throws {
        try await withAPI { api in
            let router = try await api.create("/v1/routers", Body.router("edge"))
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let routerPort = try await api.create("/v1/ports", Body.routerPort(router, address: "10.0.1.1", subnet: "10.0.1.0/24"))
            let uplink = try await api.create("/v1/ports", Body.bridgePort(bridge, name: "uplink"))
            _ = try await api.post("/v1/ports/\(routerPort)/link", #"{"peerId": "\#(uplink)"}"#)
            let status = try await api.get("/v1/ports/\(routerPort)/status")
            #expect(status.object["addresses"] as? [String] == ["10.0.1.1/24"], "\(status.text)")
            #expect(status.string("state") == "unbound" && status.string("reason")?.contains("interior") == true)
        }
    }
}
