import Foundation
import HiveAgent
import HiveClient
import HiveModel
import struct HiveModel.Port
import HivePacket
import HiveSandbox
import HiveStore
import Testing

/// The edge on real namespaces: two VM hosts, two gateway hosts whose
/// uplinks (veths) lead to an "outside" namespace (an upstream router with
/// a server on 203.0.113.10), a tenant router with a gateway (SNAT to
/// 198.51.100.2) behind a provider router with two equal-cost uplinks, and
/// a floating IP. Real ping, curl, Python servers, iperf3.
@Suite(.serialized) struct EdgeEndToEndTests {
    static let vms = [
        OverlayLab.VM(name: "vm1", host: 1, address: "10.0.1.11", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0b"),
        OverlayLab.VM(name: "vm2", host: 2, address: "10.0.1.12", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0c"),
    ]
    static let server = "203.0.113.10"
    static let snatAddress = "198.51.100.2"
    static let floatingAddress = "198.51.100.10"

    struct Edge {
        var vmPorts: [String: Port]
        var provider: RouterID
        var floating: FloatingIP
    }

    /// The outside namespace `<prefix>out`: `o3`/`o4` to the uplinks `u3`/`u4`
    /// of hosts 3 and 4, the server's address, and a multipath route back to
    /// the floating and SNAT addresses through both gateways.
    static func buildOutside(_ lab: OverlayLab) async throws {
        let outside = lab.namespace("out")
        let prefix = lab.prefix
        try await blocking {
            try RootNamespace.run(["ip", "netns", "add", outside])
            func ip(_ namespace: String, _ arguments: String...) throws { _ = try NetworkNamespace.run(namespace, ["ip"] + arguments) }
            try ip(outside, "link", "set", "lo", "up")
            try ip(outside, "address", "add", server + "/32", "dev", "lo")
            for (host, address) in [(3, "192.0.2.1/28"), (4, "192.0.2.17/28")] {
                try ip(outside, "link", "add", "\(prefix)o\(host)", "type", "veth", "peer", "name", "\(prefix)u\(host)", "netns", "\(prefix)h\(host)")
                try ip(outside, "address", "add", address, "dev", "\(prefix)o\(host)")
                try ip(outside, "link", "set", "\(prefix)o\(host)", "up")
                try ip("\(prefix)h\(host)", "link", "set", "\(prefix)u\(host)", "up")
            }
            for setting in ["net.ipv4.fib_multipath_hash_policy=1", "net.ipv4.conf.all.ignore_routes_with_linkdown=1"] {
                _ = try NetworkNamespace.run(outside, ["sysctl", "-q", "-w", setting])
            }
            // From the server's address: a reply to a SNAT address must come from where the connection went.
            try ip(outside, "route", "add", "198.51.100.0/24", "src", server, "nexthop", "via", "192.0.2.2", "dev", "\(prefix)o3",
                   "nexthop", "via", "192.0.2.18", "dev", "\(prefix)o4")
        }
    }

    /// The virtual network, through the API, as an operator builds it.
    static func buildEdge(_ lab: OverlayLab) async throws -> Edge {
        let client = lab.client
        let bridge = try await client.create(Bridge(name: "net")).object
        let edge = try await client.create(Router(name: "edge")).object
        try await lab.connect(edge.id, to: bridge.id, address: "10.0.1.1", subnet: "10.0.1.0/24")
        var vmPorts: [String: Port] = [:]
        for vm in vms { vmPorts[vm.name] = try await lab.plug(vm.name, into: bridge.id).port }

        let provider = try await client.create(Router(name: "provider")).object
        let gatewayPort = try await client.create(Port(
            router: edge.id, name: "gateway", address: IPv4.Address(parsing: snatAddress)!, subnet: IPv4.Prefix(parsing: "198.51.100.0/30")!)).object
        let toEdge = try await client.create(Port(
            router: provider.id, name: "to-edge", address: IPv4.Address(198, 51, 100, 1), subnet: IPv4.Prefix(parsing: "198.51.100.0/30")!)).object
        _ = try await client.link(gatewayPort.id, to: toEdge.id)
        _ = try await client.create(Route(routerId: edge.id, destination: IPv4.Prefix(parsing: "0.0.0.0/0")!,
                                          nextHopGateway: IPv4.Address(198, 51, 100, 1), egressPortId: gatewayPort.id))
        _ = try await client.create(Route(routerId: provider.id, destination: IPv4.Prefix(parsing: "198.51.100.0/30")!, egressPortId: toEdge.id))
        _ = try await client.create(Route(routerId: provider.id, destination: IPv4.Prefix(parsing: "10.0.1.0/24")!,
                                          nextHopGateway: IPv4.Address(parsing: snatAddress)!, egressPortId: toEdge.id))
        for (host, address, upstream) in [(3, "192.0.2.2", "192.0.2.1"), (4, "192.0.2.18", "192.0.2.17")] {
            let uplink = try await client.create(Port(
                router: provider.id, name: "uplink\(host - 2)", address: IPv4.Address(parsing: address)!,
                subnet: IPv4.Prefix(address: IPv4.Address(parsing: address)!, length: 28).network, mac: Port.generatedMAC())).object
            _ = try await client.create(Binding(hostId: try await lab.hostID(host), portId: uplink.id, interfaceName: "\(lab.prefix)u\(host)"))
            _ = try await client.create(Route(routerId: provider.id, destination: IPv4.Prefix(parsing: "0.0.0.0/0")!,
                                              nextHopGateway: IPv4.Address(parsing: upstream)!, egressPortId: uplink.id))
            _ = try await client.create(Route(routerId: provider.id, destination: uplink.subnet!, egressPortId: uplink.id))
        }
        var router = try await client.get(edge.id).object
        router.gateway = RouterGateway(portId: gatewayPort.id)
        _ = try await client.update(router)
        let floating = try await client.create(FloatingIP(
            routerId: provider.id, address: IPv4.Address(parsing: floatingAddress)!, portId: vmPorts["vm2"]!.id)).object
        try await lab.waitForBoundPorts(4)
        return Edge(vmPorts: vmPorts, provider: provider.id, floating: floating)
    }

    /// A UDP exchange: the outside echoes the datagram's source address back.
    static func udpSource(_ lab: OverlayLab, from vm: String) async throws -> String? {
        let echo = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5353)); s.settimeout(20)
            while True:
                data, peer = s.recvfrom(100); s.sendto(peer[0].encode(), peer)
            """
        let ask = """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
            for _ in range(10):
                s.sendto(b"who", (sys.argv[1], 5353))
                try:
                    print(s.recv(100).decode()); sys.exit(0)
                except socket.timeout:
                    pass
            sys.exit(1)
            """
        let listener = try NetworkNamespace.start(lab.namespace("out"), ["python3", "-c", echo], standardOutput: FileHandle.nullDevice)
        defer { listener.terminate() }
        try await Task.sleep(for: .milliseconds(300))
        return try? await blocking {
            try NetworkNamespace.run(lab.namespace(vm), ["python3", "-c", ask, Self.server], timeout: .seconds(20)).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    @Test func vmsReachTheOutsideThroughSNATAndTheOutsideReachesAFloatingIP() async throws {
        try await OverlayLab.run(hosts: 4, vms: Self.vms) { lab in
            try await Self.buildOutside(lab)
            let edge = try await Self.buildEdge(lab)
            let outside = lab.namespace("out")

            // Ping, TCP and UDP from a VM without a floating IP: the outside sees the gateway's address.
            #expect(await lab.pingEventually(from: "vm1", to: Self.server), "vm1 pings the outside server")
            let web = try await blocking { try Servers.http(lab, vm: "out", port: 80, answer: .clientAddress) }
            defer { web.terminate() }
            #expect(await Servers.fetch(lab, from: "vm1", "http://\(Self.server)/", within: 15) == Self.snatAddress,
                    "the server sees the gateway's SNAT address")
            #expect(try await Self.udpSource(lab, from: "vm1") == Self.snatAddress, "UDP too")

            // vm2 has the floating IP: its own connections leave from it, and the outside reaches it.
            #expect(await Servers.fetch(lab, from: "vm2", "http://\(Self.server)/", within: 15) == Self.floatingAddress)
            let vmWeb = try await blocking { try Servers.http(lab, vm: "vm2", port: 8080, answer: .clientAddress) }
            defer { vmWeb.terminate() }
            #expect(await Servers.fetch(lab, from: "out", "http://\(Self.floatingAddress):8080/", within: 15) == Self.server,
                    "the outside reaches vm2 through its floating IP, and vm2 sees the real client")
            #expect(await lab.pingEventually(from: "out", to: Self.floatingAddress), "ping through the floating IP")
            // ICMP errors about translated connections reach the other side as about their own datagrams
            // (the kernel matches them to the socket by the quoted header): both ways across the edge.
            #expect(try await blocking { try Servers.udpRefused(lab, from: "vm1", to: Self.server, port: 9999) },
                    "the outside's port unreachable, about vm1's SNAT'd datagram, reaches vm1's socket")
            #expect(try await blocking { try Servers.udpRefused(lab, from: "out", to: Self.floatingAddress, port: 9999) },
                    "vm2's port unreachable, behind its floating IP, reaches the outside's socket")

            // vm2's security group still applies behind its floating IP.
            let group = try await lab.client.create(SecurityGroup(name: "web-only")).object
            _ = try await lab.client.create(SecurityGroupRule(
                securityGroupId: group.id, direction: .ingress, ipProtocol: IPProtocolNumber.tcp, ports: PortRange(8080),
                remotePrefix: IPv4.Prefix(parsing: "0.0.0.0/0")!))
            var port = try await lab.client.get(edge.vmPorts["vm2"]!.id).object
            port.securityGroupIds = [group.id]
            _ = try await lab.client.update(port)
            let pingStops = await eventually(within: 5) { await !lab.ping(from: "out", to: Self.floatingAddress, count: 1) }
            #expect(pingStops, "the group allows no ICMP")
            #expect(await Servers.fetch(lab, from: "out", "http://\(Self.floatingAddress):8080/", within: 10) == Self.server, "TCP 8080 it allows")

            // A UDP conversation with the floating IP, one 5-tuple throughout: it
            // answers from vm2 now, and must answer from vm1 after the move
            // (the connection's translation is flushed, as Neutron does).
            let namer = """
                import socket, sys
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7000))
                while True:
                    data, peer = s.recvfrom(100); s.sendto(sys.argv[1].encode(), peer)
                """
            let namers = try await blocking {
                try ["vm1", "vm2"].map { try NetworkNamespace.start(lab.namespace($0), ["python3", "-c", namer, $0], standardOutput: FileHandle.nullDevice) }
            }
            defer { for namer in namers { namer.terminate() } }
            var allowUDP = try await lab.client.get(edge.vmPorts["vm2"]!.id).object
            allowUDP.securityGroupIds = []
            _ = try await lab.client.update(allowUDP)
            let asker = """
                import socket, sys, time
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7001)); s.settimeout(0.3)
                deadline = time.time() + float(sys.argv[2])
                while time.time() < deadline:
                    s.sendto(b"who", (sys.argv[1], 7000))
                    try:
                        print(s.recv(100).decode(), flush=True)
                    except socket.timeout:
                        pass
                    time.sleep(0.2)
                """
            let conversation = Task {
                try await blocking { try NetworkNamespace.run(outside, ["python3", "-c", asker, Self.floatingAddress, "12"], timeout: .seconds(30)) }
            }
            try await Task.sleep(for: .seconds(4))

            // The floating IP moves to vm1: new connections reach vm1, and so does the ongoing conversation.
            var moved = try await lab.client.get(edge.floating.id).object
            moved.portId = edge.vmPorts["vm1"]!.id
            _ = try await lab.client.update(moved)
            let vm1Web = try await blocking { try Servers.http(lab, vm: "vm1", port: 8081, answer: .clientAddress) }
            defer { vm1Web.terminate() }
            #expect(await Servers.fetch(lab, from: "out", "http://\(Self.floatingAddress):8081/", within: 10) == Self.server, "the moved floating IP reaches vm1")
            let answers = try await conversation.value.split(separator: "\n").map(String.init)
            #expect(answers.first == "vm2" && answers.last == "vm1", "one UDP 5-tuple, answered by vm2, then by vm1 after the move: \(answers)")
        }
    }

    @Test func twoVMsBehindOneAddressOpenManyConnectionsToOneServerPort() async throws {
        try await OverlayLab.run(hosts: 4, vms: Self.vms) { lab in
            try await Self.buildOutside(lab)
            let edge = try await Self.buildEdge(lab)
            // Both VMs behind the gateway's address: no floating IP.
            try await lab.client.delete(edge.floating.id)
            let web = try await blocking { try Servers.http(lab, vm: "out", port: 80, answer: .clientAddress) }
            defer { web.terminate() }
            #expect(await Servers.fetch(lab, from: "vm1", "http://\(Self.server)/", within: 15) == Self.snatAddress)
            // 150 connections from each VM at once, all to 203.0.113.10:80, each keeping its source port.
            let script = """
                import socket, sys, concurrent.futures
                def one(_):
                    s = socket.create_connection((sys.argv[1], 80), timeout=10)
                    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n"); data = b""
                    while True:
                        chunk = s.recv(1000)
                        if not chunk: break
                        data += chunk
                    s.close(); return data.endswith(sys.argv[2].encode())
                with concurrent.futures.ThreadPoolExecutor(30) as pool:
                    results = list(pool.map(one, range(150)))
                print(sum(results))
                """
            async let first = blocking { try NetworkNamespace.run(lab.namespace("vm1"), ["python3", "-c", script, Self.server, Self.snatAddress], timeout: .seconds(120)) }
            async let second = blocking { try NetworkNamespace.run(lab.namespace("vm2"), ["python3", "-c", script, Self.server, Self.snatAddress], timeout: .seconds(120)) }
            let counts = try await [first, second].map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
            #expect(counts == [150, 150], "every connection completed: \(counts)")
            let metrics = await Agent.metricsText(lab.agents)
            let collisions = metrics.split(separator: "\n").filter { $0.hasPrefix("hive_nat_collisions_total") }
            #expect(!collisions.isEmpty && collisions.allSatisfy { $0.hasSuffix(" 0") }, "\(collisions)")
            let leases = metrics.split(separator: "\n").filter { $0.hasPrefix("hive_nat_block_leases_total") }
            #expect(leases.contains { !$0.hasSuffix(" 0") }, "SNAT ports came from leased blocks: \(leases)")
        }
    }

    @Test func aStreamThroughTheOutsideSurvivesTheDeathOfItsGateway() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/iperf3") else {
            Issue.record("iperf3 is missing: run scripts/install-test-deps.sh")
            return
        }
        try await OverlayLab.run(hosts: 4, vms: Self.vms) { lab in
            try await Self.buildOutside(lab)
            _ = try await Self.buildEdge(lab)
            #expect(await lab.pingEventually(from: "vm1", to: Self.server))
            let server = try await blocking {
                try NetworkNamespace.start(lab.namespace("out"), ["iperf3", "-s", "-1", "-B", Self.server], standardOutput: FileHandle.nullDevice)
            }
            defer { if server.isRunning { server.terminate() } }
            try await Task.sleep(for: .milliseconds(500))
            // vm1 (SNAT'd to 198.51.100.2) sends to the outside for 30 s, in half-second intervals.
            let stream = Task {
                try await blocking {
                    try NetworkNamespace.run(
                        lab.namespace("vm1"), ["iperf3", "-c", Self.server, "-t", "30", "-i", "0.5", "-b", "100M", "-J"], timeout: .seconds(90))
                }
            }
            try await Task.sleep(for: .seconds(8))
            // The gateway carrying it: the one whose uplink sent the most.
            func sent(_ host: Int) -> UInt64 {
                lab.agents[host - 1].statistics.ports.values.filter { $0.name.hasSuffix("u\(host)") }.reduce(0) { $0 + $1.sentPackets }
            }
            let carrying = sent(3) >= sent(4) ? 3 : 4
            let killedAt = ContinuousClock.now
            await lab.killAgent(carrying)
            try await blocking { _ = try NetworkNamespace.run(lab.namespace("h\(carrying)"), ["ip", "link", "set", "\(lab.prefix)u\(carrying)", "down"]) }
            let report = try await stream.value
            let summary = try IperfReport(json: report)
            // The longest run of empty half-second intervals: how long the stream stood still.
            var longest = 0
            var run = 0
            for bytes in summary.intervalBytes {
                run = bytes == 0 ? run + 1 : 0
                longest = max(longest, run)
            }
            print("gateway failover: h\(carrying) killed, the stream went on for \(ContinuousClock.now - killedAt) after it and stood still for \(Double(longest) * 0.5) s at most (lease TTL 5 s)")
            #expect(summary.seconds >= 29, "the stream ran its 30 s: \(summary)")
            #expect(summary.intervalBytes.prefix(10).allSatisfy { $0 > 0 }, "it flowed before the kill: \(summary)")
            #expect(summary.intervalBytes.suffix(10).allSatisfy { $0 > 0 }, "and flows again through the other gateway: \(summary)")
            #expect(longest <= 30, "the interruption stays within the lease TTL and TCP's retransmission: \(summary)")
        }
    }

    @Test func idleSNATBlocksGoBackToThePool() async throws {
        try await OverlayLab.run(hosts: 4, vms: Self.vms, configure: { configuration in
            configuration.natBlockIdleTime = .seconds(2)
            configuration.connectionTimeouts.udpUnreplied = 2_000_000_000
            configuration.connectionTimeouts.udpReplied = 2_000_000_000
        }) { lab in
            try await Self.buildOutside(lab)
            _ = try await Self.buildEdge(lab)
            #expect(try await Self.udpSource(lab, from: "vm1") == Self.snatAddress)
            let blocks = try await lab.store.range(.prefix("/hive/v1/state/nat/\(Self.snatAddress)/"))
            #expect(blocks.keyValues.count == 1, "vm1's host leased one block of the SNAT address: \(blocks.keyValues.map(\.key))")
            // The UDP connection expires after 2 s; its block, idle for 2 s more, goes back.
            let released = try await eventually(within: 25) {
                try await lab.store.range(.prefix("/hive/v1/state/nat/")).keyValues.isEmpty
            }
            #expect(released, "the idle block was given back")
            let metrics = await Agent.metricsText(lab.agents)
            #expect(metrics.split(separator: "\n").contains { $0.hasPrefix("hive_nat_block_releases_total{host=\"h1\"} 1") }, "counted")
            #expect(try await Self.udpSource(lab, from: "vm1") == Self.snatAddress, "and a new connection leases again")
        }
    }
}
