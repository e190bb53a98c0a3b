import Foundation
import HiveAgent
import HiveAgentHTTP
import HiveModel
import HivePacket
import Logging
import Synchronization
import Testing

/// An agent with canned state, served by the real agent listener: what
/// `hive flows` and `hive port show` print of it, through a live `hive api`.
final class CannedAgent: AgentStateProvider {
    let hostName = "h1"
    private let state = Mutex<(host: HostID?, port: PortID?, asked: [String])>((nil, nil, []))

    func place(host: HostID, port: PortID) { state.withLock { $0.host = host; $0.port = port } }
    /// "port limit" of each flows request, "-" for none.
    var asked: [String] { state.withLock { $0.asked } }

    func registeredHostID() async -> HostID? { state.withLock { $0.host } }

    func flowsReport(port: PortID?, limit: Int) async throws(AgentStateError) -> AgentFlows {
        let host = state.withLock { state in
            state.asked.append("\(port?.description ?? "-") \(limit)")
            return state.host!
        }
        var match = FlowMatch(
            inPort: 5, sourceMAC: EthernetAddress(parsing: "02:00:0a:00:01:0b")!, destinationMAC: EthernetAddress(parsing: "02:00:0a:00:01:0c")!,
            etherType: "ipv4")
        match.inPortName = "blue/vm1"
        match.sourceIP = "10.0.1.11"
        match.destinationIP = "10.0.1.12"
        match.ipProtocol = "icmp"
        match.icmpType = 8
        match.icmpCode = 0
        match.icmpIdentifier = 7
        match.ttl = 64
        var output = FlowOutputEntry(kind: .tunnel, portKey: 6)
        output.port = "blue/vm2"
        output.hostAddress = IPv4.Address(100, 64, 0, 2)
        output.hostName = "h2"
        let flow = FlowEntry(
            match: match, actions: FlowActionList(outputs: [output], tunnelMTU: 1442), packets: 3, bytes: 294, ageSeconds: 2.5,
            idleSeconds: 0.5, hardTimeoutSeconds: 120, tags: ["bridge:blue", "port:blue/vm1", "mac:blue/02:00:0a:00:01:0c"])
        // Pretend to hold more than one asked for.
        return AgentFlows(hostId: host, hostName: hostName, port: port.map { _ in "blue/vm1" }, total: limit == 1 ? 7 : 1, flows: [flow])
    }

    func summaryReport() async throws(AgentStateError) -> AgentFlowSummary {
        var summary = AgentFlowSummary(hostId: state.withLock { $0.host! }, hostName: hostName)
        summary.flows = 4
        summary.flowCapacity = 65_536
        summary.hits = 12
        summary.upcalls = 4
        summary.hitRate = 0.75
        summary.upcallsPerSecond = 0.4
        summary.rateIntervalSeconds = 10
        summary.installed = 4
        summary.idleTimeoutSeconds = 30
        summary.hardTimeoutSeconds = 120
        summary.drops = ["upcall_limited": 2]
        summary.ports = [PortDrops(port: "blue/vm1", portKey: 5, drops: ["spoofed_ip": 3])]
        return summary
    }

    func portsReport() async throws(AgentStateError) -> AgentPorts {
        let (host, port) = state.withLock { ($0.host!, $0.port!) }
        let counters = PortCounters(receivedPackets: 12, receivedBytes: 1176, sentPackets: 10, sentBytes: 980, drops: ["spoofed_ip": 3])
        return AgentPorts(hostId: host, hostName: hostName, ports: [
            AgentPortState(portId: port, port: "blue/vm1", portKey: 5, interface: "tap-vm1", up: true, counters: counters),
        ])
    }
}

@Suite("hive flows and hive port show against a live API and an agent's listener")
struct AgentStateCLITests {
    static let agentToken = "cli-test-agent-token"

    @Test func flowsTheirSummaryAndWhereAPortLives() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hive-cli-agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let tokenFile = directory.appendingPathComponent("agent-token").path
        #expect(FileManager.default.createFile(atPath: tokenFile, contents: Data((Self.agentToken + "\n").utf8), attributes: [.posixPermissions: 0o600]))

        let agent = CannedAgent()
        let agents = AgentDirectory()
        agents.set(providers: [agent])
        let listener = try await AgentHTTPServer.start(
            directory: agents, token: Self.agentToken, host: "127.0.0.1", port: 0, logger: Logger(label: "hive.test.agent"))
        do {
            try await withLiveServer(arguments: ["--agent-token-file", tokenFile]) { server in
                try await exercise(server, agent: agent, listenerPort: listener.port, stopAgent: { await listener.stop() })
            }
        } catch {
            await listener.stop()
            throw error
        }
        await listener.stop()
    }

    private func exercise(_ server: LiveServer, agent: CannedAgent, listenerPort: Int, stopAgent: () async -> Void) async throws {
        let admin = LiveServer.adminToken
        let host = try await server.ok("host", "create", "h1", "--underlay-address", "100.64.0.1",
                                       "--agent-endpoint", "http://127.0.0.1:\(listenerPort)", "--json", token: admin).json()
        let hostID = try #require((host["id"] as? String).flatMap(HostID.init(parsing:)))
        try await server.ok("bridge", "create", "blue")
        let port = try await server.ok("port", "create", "vm1", "--bridge", "blue", "--mac", "02:00:0a:00:01:0b", "--json").json()
        let portID = try #require((port["id"] as? String).flatMap(PortID.init(parsing:)))
        try await server.ok("binding", "create", "--host", "h1", "--port", "blue/vm1", "--interface", "tap-vm1", token: admin)
        agent.place(host: hostID, port: portID)

        let flows = try await server.ok("flows", "--host", "h1", token: admin).stdout
        #expect(flows == """
            1 flow on host h1

            in-port=blue/vm1 src-mac=02:00:0a:00:01:0b dst-mac=02:00:0a:00:01:0c ipv4 src-ip=10.0.1.11 dst-ip=10.0.1.12 protocol=icmp icmp-type=8 icmp-code=0 icmp-id=7 ttl=64
              actions  output blue/vm2 via h2 (100.64.0.2)
              packets  3, 294 bytes; age 2.5 s, idle 0.5 s, hard timeout 120 s
              tags     bridge:blue, port:blue/vm1, mac:blue/02:00:0a:00:01:0c

            """, "\(flows)")

        // One port's: the API passes the port's id on to the agent.
        let onePort = try await server.ok("flows", "--host", "h1", "--port", "blue/vm1", token: admin).stdout
        #expect(onePort.hasPrefix("1 flow on host h1 through port blue/vm1\n"), "\(onePort)")
        #expect(agent.asked == ["- 1000", "\(portID) 1000"])
        let limited = try await server.ok("flows", "--host", "h1", "--limit", "1", token: admin).stdout
        #expect(limited.hasPrefix("The busiest 1 of 7 flows on host h1 (--limit to see more)\n"), "\(limited)")
        #expect(agent.asked.last == "- 1")

        let json = try await server.ok("flows", "--host", hostID.description, "--json", token: admin).json()
        let first = try #require((json["flows"] as? [[String: Any]])?.first)
        #expect(first["packets"] as? Int == 3 && (first["match"] as? [String: Any])?["inPortName"] as? String == "blue/vm1", "\(json)")

        let summary = try await server.ok("flows", "--host", "h1", "--summary", token: admin).stdout
        for line in ["flows           4 of 65536", "hit rate        75.0%", "upcalls/s       0.4 (over the last 10 s)",
                     "datapath drops  upcall_limited 2", "timeouts        idle 30 s, hard 120 s"] {
            #expect(summary.contains(line), "'\(line)' in:\n\(summary)")
        }
        #expect(summary.contains("Port drops:\n  PORT      KEY  DROPS\n  blue/vm1  5    spoofed_ip 3"), "\(summary)")

        // A tenant may not ask for a host's flows, and --summary takes no --port.
        let tenant = try await server.fails("flows", "--host", hostID.description)
        #expect(tenant.stderr.contains("admin-only"), "\(tenant)")
        let both = try await server.fails("flows", "--host", "h1", "--port", "vm1", "--summary", token: admin)
        #expect(both.stderr.contains("--summary"), "\(both)")

        // The port's owner sees where it lives, beside the topology.
        let shown = try await server.ok("port", "show", "vm1").stdout
        #expect(shown.hasSuffix("""

            Status:
              state      up
              host       h1 (not alive)
              interface  tap-vm1
              MACs       02:00:0a:00:01:0b (fixed)
              addresses  -
              received   12 packets, 1176 bytes
              sent       10 packets, 980 bytes
              drops      spoofed_ip 3

            """), "\(shown)")
        #expect(shown.contains("port security"), "the topology is still there")
        let status = try await server.ok("port", "status", "vm1", "--json").json()
        #expect(status["state"] as? String == "up" && (status["counters"] as? [String: Any])?["receivedPackets"] as? Int == 12, "\(status)")

        // The agent goes away: the port's status says so; flows fail with why.
        await stopAgent()
        let gone = try await server.ok("port", "show", "vm1").stdout
        #expect(gone.contains(
            "  state      unknown (agent unreachable: http://127.0.0.1:\(listenerPort) did not answer (connection refused); host h1 is not alive"),
                "\(gone)")
        let noAgent = try await server.fails("flows", "--host", "h1", token: admin)
        #expect(noAgent.stderr.contains("the agent of host h1 cannot be asked"), "\(noAgent)")
    }
}
