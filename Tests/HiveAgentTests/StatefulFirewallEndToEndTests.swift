import Foundation
import HiveAgent
import HiveClient
import HiveDatapath
import HiveModel
import struct HiveModel.Port
import HivePacket
import HiveSandbox
import HiveStore
import Testing

/// Connection tracking, security groups and flow state across hosts, on
/// real namespaces, built through the API: curl, Python servers, scapy,
/// tshark on the underlay, iperf3 across a migration and an agent restart.
@Suite(.serialized) struct StatefulFirewallEndToEndTests {
    static let vms = [
        OverlayLab.VM(name: "web", host: 1, address: "10.0.1.11", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0b"),
        OverlayLab.VM(name: "cli", host: 2, address: "10.0.1.12", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0c"),
        OverlayLab.VM(name: "app", host: 1, address: "10.0.1.14", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0e"),
        OverlayLab.VM(name: "far", host: 2, address: "10.0.2.13", gateway: "10.0.2.1", mac: "02:00:0a:00:02:0d"),
    ]

    /// The sum of a family's samples over the hosts.
    static func total(_ metrics: String, _ family: String) -> Int {
        metrics.split(separator: "\n").filter { $0.hasPrefix(family + "{") }.reduce(0) { $0 + (Int($1.split(separator: " ").last ?? "") ?? 0) }
    }

    /// A web security group allowing TCP 80 from anywhere, on `port`.
    static func webGroup(_ lab: OverlayLab, on port: Port) async throws -> SecurityGroup {
        let group = try await lab.client.create(SecurityGroup(name: "web")).object
        _ = try await lab.client.create(SecurityGroupRule(
            securityGroupId: group.id, direction: .ingress, ipProtocol: IPProtocolNumber.tcp, ports: PortRange(80),
            remotePrefix: IPv4.Prefix(parsing: "0.0.0.0/0")!))
        var updated = try await lab.client.get(port.id).object
        updated.securityGroupIds = [group.id]
        _ = try await lab.client.update(updated)
        return group
    }

    @Test func aWebServerInASecurityGroupAnswersHTTPOnlyAndItsOwnConnectionsWork() async throws {
        try await OverlayLab.run(vms: Self.vms) { lab in
            let network = try await PortServicesEndToEndTests.buildNetwork(lab, blue: ["web", "cli", "app"], green: ["far"])
            let servers = try await blocking {
                [try Servers.http(lab, vm: "web", port: 80), try Servers.http(lab, vm: "web", port: 22),
                 try Servers.http(lab, vm: "far", port: 8080)]
            }
            defer { for server in servers where server.isRunning { server.terminate() } }
            #expect(await Servers.get(lab, from: "cli", "http://10.0.1.11:22/", within: 10), "before any group, port 22 answers")

            _ = try await Self.webGroup(lab, on: network.ports["web"]!)
            // The group takes effect on flows already cached: port 22 stops answering.
            let closed = await eventually(within: 5) { await !Servers.get(lab, from: "cli", "http://10.0.1.11:22/", within: 2) }
            #expect(closed, "TCP 22 is not allowed by the group")
            #expect(await Servers.get(lab, from: "cli", "http://10.0.1.11/", within: 10), "TCP 80 is")
            #expect(await Servers.get(lab, from: "far", "http://10.0.1.11/", within: 10), "from another subnet too, across the router")
            // web's own connections: its group's egress rules allow them, and the replies need no ingress rule.
            #expect(await Servers.get(lab, from: "web", "http://10.0.2.13:8080/", within: 10), "web reaches far, the replies come back")
            #expect(await lab.ping(from: "web", to: "10.0.1.12", count: 2), "web's pings get their replies (ct reply)")
            #expect(!(await lab.ping(from: "cli", to: "10.0.1.11", count: 2)), "nobody may ping web: no ICMP rule")
            // An ICMP error about web's own UDP datagram is related: it reaches web.
            let refused = try await blocking { try Servers.udpRefused(lab, from: "web", to: "10.0.1.12", port: 9999) }
            #expect(refused, "port unreachable from client reached web (related)")

            // A TCP ACK out of any connection is invalid: dropped at web's port, counted on the sender's.
            let before = PortServicesEndToEndTests.sample(
                await Agent.metricsText(lab.agents), "hive_port_drops_total", reason: "invalid", interface: lab.prefix + "cli")
            try await blocking {
                try Scapy.run(in: lab.namespace("cli"), Scapy.strayAck, arguments: ["02:00:0a:00:01:0c", "10.0.1.12", "02:00:0a:00:01:0b", "10.0.1.11"])
            }
            let after = PortServicesEndToEndTests.sample(
                await Agent.metricsText(lab.agents), "hive_port_drops_total", reason: "invalid", interface: lab.prefix + "cli")
            #expect(after >= before + 10, "ten stray ACKs counted as invalid: \(before) -> \(after)")

            let metrics = await Agent.metricsText(lab.agents)
            #expect(Self.total(metrics, "hive_conntrack_entries") > 0, "connections are tracked")
            #expect(Self.total(metrics, "hive_flow_state_imported_total") > 0, "and shared between the hosts")
            #expect(PortServicesEndToEndTests.sample(metrics, "hive_port_drops_total", reason: "security_group", interface: lab.prefix + "cli") > 0)
        }
    }

    /// Connection tracking on the cached path: a connection through a
    /// security group costs each host one simulation (the client's SYN, the
    /// server's SYN-ACK); its ACKs, PSHs and FINs ride the flow that
    /// installed, and move its entry on there.
    @Test func aTrackedConnectionCostsEachHostOneSimulation() async throws {
        try await OverlayLab.run(vms: Self.vms) { lab in
            let network = try await PortServicesEndToEndTests.buildNetwork(lab, blue: ["web", "cli"], green: [])
            _ = try await Self.webGroup(lab, on: network.ports["web"]!)
            let listener = try await blocking { try NetworkNamespace.start(lab.namespace("web"), ["python3", "-c", ShortConnections.server, "80"]) }
            defer { if listener.isRunning { listener.terminate() } }
            _ = try await blocking { try NetworkNamespace.run(lab.namespace("cli"), ["python3", "-c", ShortConnections.client, "10.0.1.11", "80", "1"], timeout: .seconds(60)) }
            let before = lab.agents.map(\.statistics.upcalls)
            let done = try await blocking { try NetworkNamespace.run(lab.namespace("cli"), ["python3", "-c", ShortConnections.client, "10.0.1.11", "80", "20"], timeout: .seconds(60)) }
            try await Task.sleep(for: .milliseconds(300))  // the datapaths publish their counters every 50 ms
            let upcalls = zip(lab.agents.map(\.statistics.upcalls), before).map { $0 - $1 }
            #expect(done.contains("done"))
            let metrics = await Agent.metricsText(lab.agents)
            let tracked = Self.total(metrics, "hive_conntrack_entries")
            print("aTrackedConnectionCostsEachHostOneSimulation: 20 connections took \(upcalls) upcalls (h1, h2); \(tracked) entries")
            #expect(tracked >= 20, "the connections are tracked")
            // One per connection per host, and 8 for the VMs' IPv6 chatter. With
            // SYN, ACK and FIN each their own flow: 3 per connection (seen: 63 to 65
            // per host); with every flag combination its own flow: 4 (77 to 85).
            #expect(upcalls.allSatisfy { $0 <= 20 + 8 }, "20 connections took \(upcalls) upcalls")
            let invalid = metrics.split(separator: "\n").filter { $0.hasPrefix("hive_port_drops_total{") && $0.contains("reason=\"invalid\"") }
                .reduce(0) { $0 + (Int($1.split(separator: " ").last ?? "") ?? 0) }
            #expect(invalid == 0, "no segment was invalid")
        }
    }

    @Test func theWalkthroughsChainFiltersWhatReachesTheVMAndLetsItsRepliesIn() async throws {
        try await OverlayLab.run(vms: Self.vms) { lab in
            let network = try await PortServicesEndToEndTests.buildNetwork(lab, blue: ["web", "cli", "app"], green: ["far"])
            // hive chain create web-in; accept established; accept TCP 80; drop; --outbound-chain web-in on app.
            let chain = try await lab.client.create(Chain(name: "web-in")).object
            _ = try await lab.client.insert(Rule(chainId: chain.id, conditions: RuleConditions(connectionState: Match(.established)), action: .accept))
            _ = try await lab.client.insert(Rule(chainId: chain.id, conditions: RuleConditions(
                ipProtocol: Match(IPProtocolNumber.tcp), destinationPorts: Match(PortRange(80))), action: .accept))
            _ = try await lab.client.insert(Rule(chainId: chain.id, action: .drop))
            var app = try await lab.client.get(network.ports["app"]!.id).object
            app.outboundChainId = chain.id
            _ = try await lab.client.update(app)

            let servers = try await blocking {
                [try Servers.http(lab, vm: "app", port: 80), try Servers.http(lab, vm: "app", port: 22),
                 try Servers.http(lab, vm: "far", port: 8080)]
            }
            defer { for server in servers where server.isRunning { server.terminate() } }
            #expect(await Servers.get(lab, from: "cli", "http://10.0.1.14/", within: 10), "TCP 80 reaches app")
            #expect(!(await Servers.get(lab, from: "cli", "http://10.0.1.14:22/", within: 3)), "TCP 22 does not")
            // app's own connection: its SYN-ACK comes back established (it was 'new' before conntrack).
            #expect(await Servers.get(lab, from: "app", "http://10.0.2.13:8080/", within: 10), "app's own connection gets its replies")
            #expect(await lab.ping(from: "app", to: "10.0.1.12", count: 2), "and its pings")
        }
    }

    @Test func flowStateReachesTheEgressHostBeforeTheConnectionsFirstPacket() async throws {
        try await OverlayLab.run(vms: Self.vms) { lab in
            let network = try await PortServicesEndToEndTests.buildNetwork(lab, blue: ["web", "cli", "app"], green: ["far"])
            _ = try await Self.webGroup(lab, on: network.ports["web"]!)
            let server = try await blocking { try Servers.http(lab, vm: "web", port: 80) }
            defer { if server.isRunning { server.terminate() } }
            // Resolve the addresses first, so the capture holds the connection and little else.
            #expect(await lab.pingEventually(from: "cli", to: "10.0.1.1"))
            let capture = try await blocking { try TunnelCapture(lab: lab, seconds: 8) }
            // tshark says "Capturing on" a moment before its filter is attached.
            try await Task.sleep(for: .seconds(1))
            #expect(await Servers.get(lab, from: "cli", "http://10.0.1.11/", within: 5))
            let packets = try await blocking { try capture.finish() }
            let webKey = network.ports["web"]!.tunnelKey
            let firstSegment = packets.firstIndex { $0.vni == webKey && $0.source == "100.64.0.2" && $0.innerProtocol.contains("TCP") }
            let firstState = packets.firstIndex { $0.vni == FlowStateTunnel.key && $0.source == "100.64.0.2" && $0.destination == "100.64.0.1" }
            #expect(firstSegment != nil && firstState != nil, "\(packets)")
            if let firstSegment, let firstState {
                #expect(firstState < firstSegment, "the flow state precedes the SYN on the underlay: \(packets)")
                #expect(packets[firstState].innerProtocol == "Geneve", "tshark shows the message as Geneve: \(packets[firstState])")
            }
            // The reply's host sent state back too (the SYN-ACK moved the connection on).
            #expect(packets.contains { $0.vni == FlowStateTunnel.key && $0.source == "100.64.0.1" }, "\(packets)")
        }
    }

    @Test func aLongStreamSurvivesTheReceiversMigrationAndTheSendersAgentRestart() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/iperf3") else {
            Issue.record("iperf3 is missing: run scripts/install-test-deps.sh")
            return
        }
        try await OverlayLab.run(hosts: 3, vms: Self.vms) { lab in
            let network = try await PortServicesEndToEndTests.buildNetwork(lab, blue: ["web", "cli", "app"], green: ["far"])
            _ = try await Self.webGroup(lab, on: network.ports["web"]!)
            // web (h1) receives from cli (h2) on TCP 80: the group allows it.
            let server = try await blocking {
                try NetworkNamespace.start(lab.namespace("web"), ["iperf3", "-s", "-1", "-p", "80"], standardOutput: FileHandle.nullDevice)
            }
            defer { if server.isRunning { server.terminate() } }
            try await Task.sleep(for: .milliseconds(500))
            let stream = Task {
                try await blocking {
                    try NetworkNamespace.run(
                        lab.namespace("cli"), ["iperf3", "-c", "10.0.1.11", "-p", "80", "-t", "30", "-b", "200M", "-J"],
                        timeout: .seconds(60))
                }
            }
            try await Task.sleep(for: .seconds(6))
            // The receiver moves to a third host, which never saw the connection;
            // then the sender's agent restarts.
            try await lab.migrate("web", port: network.ports["web"]!.id, to: 3)
            try await Task.sleep(for: .seconds(8))
            try await lab.restartAgent(2)
            let report = try await stream.value
            let summary = try IperfReport(json: report)
            #expect(summary.seconds >= 29, "the stream ran its 30 s: \(summary)")
            #expect(summary.intervalBytes.prefix(5).allSatisfy { $0 > 0 }, "it was flowing before the move: \(summary)")
            #expect(summary.emptyIntervals <= 4, "no long stall (migration and restart each cost at most a second or two): \(summary)")
            #expect(summary.finalIntervalBytes > 0, "still moving at the end: \(summary)")
        }
    }
}

/// What a test needs of iperf3's JSON report.
struct IperfReport: CustomStringConvertible {
    var seconds: Double
    var intervalBytes: [Int]
    var emptyIntervals: Int { intervalBytes.filter { $0 == 0 }.count }
    var finalIntervalBytes: Int { intervalBytes.last ?? 0 }
    var description: String { "\(seconds) s, bytes per interval \(intervalBytes)" }

    init(json: String) throws {
        guard let data = json.data(using: .utf8),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let intervals = object["intervals"] as? [[String: Any]]
        else { throw LabError("iperf3 gave no report: \(json.prefix(400))") }
        var bytes: [Int] = []
        var end = 0.0
        for interval in intervals {
            guard let sum = interval["sum"] as? [String: Any] else { continue }
            bytes.append((sum["bytes"] as? NSNumber)?.intValue ?? 0)
            end = (sum["end"] as? NSNumber)?.doubleValue ?? end
        }
        seconds = end
        intervalBytes = bytes
    }
}

/// Servers and clients in VMs, with Python's standard library and curl.
enum Servers {
    /// What an HTTP server answers.
    enum Answer: String {
        case ok = "b\"ok\""
        /// The address the request came from (NAT shows in it).
        case clientAddress = "self.client_address[0].encode()"
    }

    /// An HTTP server on `port` answering "ok", or the client's address.
    static func http(_ lab: OverlayLab, vm: String, port: Int, answer: Answer = .ok) throws -> Process {
        let script = """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200); self.end_headers(); self.wfile.write(\(answer.rawValue))
                def log_message(self, *a): pass
            http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
            """
        let process = try NetworkNamespace.start(lab.namespace(vm), ["python3", "-c", script, "\(port)"], standardOutput: FileHandle.nullDevice)
        Thread.sleep(forTimeInterval: 0.3)
        return process
    }

    /// Whether curl from `vm` gets "ok" from `url` within `seconds` (retrying, each try at most 2 s).
    static func get(_ lab: OverlayLab, from vm: String, _ url: String, within seconds: Double) async -> Bool {
        await fetch(lab, from: vm, url, within: seconds, until: { $0 == "ok" }) != nil
    }

    /// curl's body from `vm`, retried for `seconds` until `until` accepts it
    /// (by default any non-empty body); nil when it never did.
    static func fetch(
        _ lab: OverlayLab, from vm: String, _ url: String, within seconds: Double, until accepted: (String) -> Bool = { !$0.isEmpty }
    ) async -> String? {
        var body: String?
        _ = await eventually(within: seconds) {
            body = try? await blocking {
                try NetworkNamespace.run(lab.namespace(vm), ["curl", "-s", "--max-time", "2", url], timeout: .seconds(5))
            }
            return body.map(accepted) ?? false
        }
        return body.map(accepted) == true ? body : nil
    }

    /// Sends a UDP datagram to a closed port and reports whether the ICMP port unreachable came back.
    static func udpRefused(_ lab: OverlayLab, from vm: String, to address: String, port: Int) throws -> Bool {
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
            s.connect((sys.argv[1], int(sys.argv[2])))
            for _ in range(3):
                s.send(b"hello")
                try:
                    s.recv(100)
                except ConnectionRefusedError:
                    print("refused"); sys.exit(0)
                except socket.timeout:
                    pass
            print("silent")
            """
        let output = try NetworkNamespace.run(lab.namespace(vm), ["python3", "-c", script, address, "\(port)"], timeout: .seconds(15))
        return output.contains("refused")
    }
}

extension Scapy {
    /// argv: my MAC, my IP, target MAC, target IP: ten TCP ACKs to port 80 that belong to no connection.
    static let strayAck = """
        import sys
        from scapy.all import Ether, IP, TCP, sendp
        me, my_ip, target_mac, target_ip = sys.argv[1:5]
        frame = Ether(src=me, dst=target_mac) / IP(src=my_ip, dst=target_ip) / TCP(sport=41000, dport=80, flags="A", seq=1000, ack=2000)
        sendp([frame] * 10, iface="eth0", inter=0.02, verbose=0)
        """
}
