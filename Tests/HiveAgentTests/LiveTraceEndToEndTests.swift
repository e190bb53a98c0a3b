import Foundation
import HiveAgent
import HiveClient
import HiveModel
import struct HiveModel.Port
import HiveSandbox
import Testing

/// `hive trace` on the running network, end to end on namespaces: live
/// traces of real packets (ping, TCP through a router, a packet to a dead
/// host) armed through the API, and simulated traces of the same packets
/// on the NSDB's live state, which must agree with them.
@Suite(.serialized) struct LiveTraceEndToEndTests {
    /// Arms a live trace on `port`, runs `traffic`, and returns the reports
    /// read until `enough` accepts them (or 15 s passed).
    static func traceLive(
        _ lab: OverlayLab, port: PortID, match: String, count: Int = 10,
        while traffic: @escaping @Sendable () async -> Void, until enough: ([TraceReport]) -> Bool
    ) async throws -> [TraceReport] {
        let armed = try await lab.client.armTrace(port: port, match: match, count: count)
        // Every agent sees the request through its watch before the traffic starts.
        try await Task.sleep(for: .milliseconds(300))
        let running = Task { await traffic() }
        var reports: [TraceReport] = []
        var after = 0
        let deadline = ContinuousClock.now + .seconds(15)
        while !enough(reports), ContinuousClock.now < deadline {
            let page = try await lab.client.traceResults(armed.id, after: after, wait: 2)
            after = page.next
            reports += page.results.map(\.report)
        }
        await running.value
        try await lab.client.disarmTrace(armed.id)
        return reports
    }

    static func summaryPath(_ report: TraceReport) -> [String] {
        report.steps.filter(\.summary).map(\.text)
    }

    @Test func aPingDroppedByARuleShowsTheHostChainAndRuleAndTheSimulatedTraceAgrees() async throws {
        try await OverlayLab.run(vms: OverlayTests.vms) { lab in
            let network = try await OverlayTests.buildNetwork(lab)
            #expect(await lab.pingEventually(from: "vm1", to: "10.0.1.12"))

            let chain = try await lab.client.create(Chain(name: "no-icmp")).object
            _ = try await lab.client.insert(Rule(chainId: chain.id, conditions: RuleConditions(ipProtocol: Match(IPProtocolNumber.icmp)), action: .drop))
            var vm2 = try await lab.client.get(network.ports["vm2"]!.id).object
            // Outbound of vm2's port: what leaves the network towards vm2 (decided on h1, vm1's host).
            vm2.outboundChainId = chain.id
            _ = try await lab.client.update(vm2)
            try await Task.sleep(for: .milliseconds(500))

            let vm1 = network.ports["vm1"]!.id
            let reports = try await Self.traceLive(lab, port: vm1, match: "icmp and dst host 10.0.1.12", while: {
                _ = await lab.ping(from: "vm1", to: "10.0.1.12", count: 3)
            }, until: { $0.count >= 3 })
            #expect(reports.count >= 2, "each echo request is traced: \(reports.count)")
            for report in reports {
                #expect(report.mode == "live")
                #expect(report.host == "h1", "vm1's packets enter on h1: \(report.host ?? "-")")
                #expect(report.inPort.name == "blue/vm1" && report.inPort.host == "h1" && report.inPort.hostAlive == true)
                #expect(report.decision == "drop", "\(report.reason)")
                #expect(report.reason.contains("dropped by rule no-icmp#1 in chain no-icmp"), "\(report.reason)")
                #expect(report.steps.contains { $0.text.contains("chain no-icmp: DROP by rule no-icmp#1") }, "\(Self.summaryPath(report))")
                #expect(report.packet.hasPrefix("ICMP type 8"), "\(report.packet)")
            }
            // The first echo missed and installed a drop flow; the next ones hit it.
            #expect(reports.contains { $0.flow == nil }, "a miss is traced by the simulation that decided it")
            let hit = try #require(reports.first { $0.flow != nil }, "a flow hit is traced too")
            #expect(hit.flow!.packets >= 1 && hit.flow!.agrees, "\(hit.flow!)")

            // The same packet, simulated on the live state, takes the same path to the same verdict.
            let simulated = try await lab.client.trace(TraceSpec(inPort: vm1.description, dstIp: "10.0.1.12"))
            #expect(simulated.mode == "simulated")
            #expect(simulated.decision == reports[0].decision && simulated.reason == reports[0].reason, "\(simulated.reason)")
            #expect(Self.summaryPath(simulated) == Self.summaryPath(reports[0]), "simulated \(Self.summaryPath(simulated)) live \(Self.summaryPath(reports[0]))")
            #expect(simulated.inPort.host == "h1" && simulated.inPort.hostAlive == true)
        }
    }

    @Test func anAcceptedTCPConnectionShowsItsPathAcrossTwoHostsAndARouter() async throws {
        try await OverlayLab.run(vms: OverlayTests.vms) { lab in
            let network = try await OverlayTests.buildNetwork(lab)
            #expect(await lab.pingEventually(from: "vm1", to: "10.0.2.13"), "vm1 -> vm3 across the router")
            let server = try await blocking { try Servers.http(lab, vm: "vm3", port: 8080) }
            defer { server.terminate() }

            let vm1 = network.ports["vm1"]!.id
            let reports = try await Self.traceLive(lab, port: vm1, match: "tcp and dst port 8080", while: {
                _ = await Servers.get(lab, from: "vm1", "http://10.0.2.13:8080/", within: 10)
            }, until: { reports in reports.contains { $0.packet.contains("flags SYN ttl") } && reports.count >= 3 })
            let syn = try #require(reports.first { $0.packet.contains("flags SYN ttl") }, "the SYN is traced: \(reports.map(\.packet))")
            #expect(syn.host == "h1")
            #expect(syn.decision == "output", "\(syn.reason)")
            #expect(syn.outputPorts.map(\.name) == ["green/vm3"])
            #expect(syn.outputPorts.first?.host == "h2" && syn.outputPorts.first?.hostAlive == true, "the egress host: \(syn.outputPorts)")
            let path = Self.summaryPath(syn)
            for device in ["port blue/vm1: in", "bridge blue", "router edge", "bridge green", "port green/vm3: out"] {
                #expect(path.contains(device), "\(device) in \(path)")
            }
            #expect(path.contains { $0.hasPrefix("route to 10.0.2.13") }, "\(path)")
            #expect(reports.allSatisfy { $0.packet.contains("> 10.0.2.13 ports") && $0.decision == "output" }, "only the connection's packets, all forwarded")

            let simulated = try await lab.client.trace(TraceSpec(inPort: "blue/vm1", dstIp: "10.0.2.13", protocol: "tcp", srcPort: 40000, dstPort: 8080))
            #expect(simulated.decision == "output" && simulated.outputPorts.map(\.name) == ["green/vm3"], "\(simulated.reason)")
            #expect(simulated.outputPorts.first?.host == "h2")
            #expect(Self.summaryPath(simulated) == path, "simulated \(Self.summaryPath(simulated)) live \(path)")
        }
    }

    @Test func newFlowsBeyondThePortsUpcallLimitAreTracedAsSuch() async throws {
        try await OverlayLab.run(vms: OverlayTests.vms, configure: { configuration in
            configuration.datapath.upcallsPerSecondPerPort = 5
            configuration.datapath.upcallBurstPerPort = 5
        }) { lab in
            let network = try await OverlayTests.buildNetwork(lab)
            #expect(await lab.pingEventually(from: "vm1", to: "10.0.1.12"))
            let vm1 = network.ports["vm1"]!.id
            // 60 datagrams to 60 ports at once: 60 new flows against a burst of 5.
            let script = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor p in range(2000, 2060): s.sendto(b'x', ('10.0.1.12', p))"
            let reports = try await Self.traceLive(lab, port: vm1, match: "udp and dst host 10.0.1.12", count: 60, while: {
                _ = try? await blocking { try NetworkNamespace.run(lab.namespace("vm1"), ["python3", "-c", script]) }
            }, until: { reports in reports.contains { $0.reason.contains("upcall limit") } && reports.contains { $0.decision == "output" } })
            let limited = try #require(reports.first { $0.reason.contains("upcall limit") }, "a refused miss is traced: \(reports.map(\.reason))")
            #expect(limited.decision == "drop" && limited.host == "h1" && limited.inPort.name == "blue/vm1")
            #expect(limited.packet.hasPrefix("UDP") && limited.steps.count == 1, "no path: it was never simulated")
            #expect(reports.contains { $0.decision == "output" && $0.outputPorts.map(\.name) == ["blue/vm2"] }, "the flows within the limit went through")
        }
    }

    @Test func aPacketToAVMOnADeadHostIsDroppedSayingSoAndFlowsAgainWhenTheHostIsBack() async throws {
        try await OverlayLab.run(vms: OverlayTests.vms) { lab in
            let network = try await OverlayTests.buildNetwork(lab)
            #expect(await lab.pingEventually(from: "vm1", to: "10.0.1.12"))
            #expect(await lab.pingEventually(from: "vm1", to: "10.0.2.13"))
            let h2 = try await lab.hostID(2)
            await lab.killAgent(2)
            let lapsed = try await eventually(within: 15) {
                try await lab.client.list(Host.self).first { $0.object.id == h2 }?.alive == false
            }
            #expect(lapsed, "h2's lease lapses after its TTL")

            let vm1 = network.ports["vm1"]!.id
            let reports = try await Self.traceLive(lab, port: vm1, match: "icmp", count: 2, while: {
                _ = await lab.ping(from: "vm1", to: "10.0.1.12", count: 2)
            }, until: { !$0.isEmpty })
            let report = try #require(reports.first, "the echo request is traced")
            #expect(report.decision == "drop", "\(report.reason)")
            #expect(report.reason.contains("port blue/vm2 is bound to a host whose agent is not alive"), "\(report.reason)")
            let counted = await eventually(within: 3) {
                let metrics = await Agent.metricsText([lab.agents[0]])
                return metrics.split(separator: "\n").contains {
                    $0.hasPrefix("hive_port_drops_total{") && $0.contains("reason=\"host_down\"") && !$0.hasSuffix(" 0")
                }
            }
            #expect(counted, "counted on vm1's port as host_down")

            // Routed: the edge router answers "host unreachable", which ping reports.
            let routed = try await blocking {
                // ping fails (exit 1) and prints why.
                (try? NetworkNamespace.run(lab.namespace("vm1"), ["sh", "-c", "ping -c 1 -W 2 10.0.2.13; true"])) ?? ""
            }
            #expect(routed.contains("Destination Host Unreachable"), "\(routed)")

            let simulated = try await lab.client.trace(TraceSpec(inPort: vm1.description, dstIp: "10.0.1.12"))
            #expect(simulated.decision == "drop" && simulated.reason.contains("whose agent is not alive"), "\(simulated.reason)")

            // The host back: traffic flows again.
            try await lab.restartAgent(2)
            #expect(await lab.pingEventually(from: "vm1", to: "10.0.1.12"), "vm2 reachable once h2's agent is back")
            #expect(await lab.pingEventually(from: "vm1", to: "10.0.2.13"), "and vm3 across the router")
        }
    }
}
