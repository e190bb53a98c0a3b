import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HiveClient
import HiveModel
import HivePacket
import Testing

import struct HiveModel.Port

/// The agents' state end to end, on real namespaces: a ping installs flows,
/// which the agent serves and the API passes on with the right ports and
/// counters, and a port's status says where it lives and whether it is up.
@Suite(.serialized) struct AgentStateEndToEndTests {
    static let vms = [
        OverlayLab.VM(name: "vm1", host: 1, address: "10.0.1.11", mac: "02:00:0a:00:01:0b"),
        OverlayLab.VM(name: "vm2", host: 2, address: "10.0.1.12", mac: "02:00:0a:00:01:0c"),
    ]

    @Test func aPingsFlowsAndThePortsWhereaboutsShowThroughTheAPI() async throws {
        try await OverlayLab.run(vms: Self.vms) { lab in
            let blue = try await lab.client.create(Bridge(name: "blue")).object
            let vm1 = try await lab.plug("vm1", into: blue.id).port
            let vm2 = try await lab.plug("vm2", into: blue.id).port
            // A binding to an interface h1 does not have: the port stays down, and says why.
            let ghost = try await lab.client.create(Port(bridge: blue.id, name: "ghost")).object
            let h1 = try await lab.hostID(1)
            _ = try await lab.client.create(Binding(hostId: h1, portId: ghost.id, interfaceName: "nosuch0"))
            try await lab.waitForBoundPorts(2)
            #expect(await lab.pingEventually(from: "vm1", to: "10.0.1.12"))
            #expect(await lab.ping(from: "vm1", to: "10.0.1.12", count: 3))

            // h1's flows, as `hive flows --host h1` gets them.
            let flows = try await lab.client.flows(host: h1).value
            #expect(flows.hostId == h1 && flows.hostName == "h1" && flows.port == nil)
            // A megaflow: the bridge read the MACs (and port security the source address), not the ICMP fields.
            let requests = flows.flows.filter { $0.match.inPortName == "blue/vm1" && $0.match.etherType == "ipv4" && $0.match.destinationMAC == vm2.mac }
            let request = try #require(requests.max { $0.packets < $1.packets }, "an IPv4 flow from vm1 to vm2: \(flows.flows.map(\.match))")
            #expect(request.match.inPort == vm1.tunnelKey)
            #expect(request.match.sourceIP == "10.0.1.11" && request.match.destinationIP == nil && request.match.icmpType == nil)
            #expect(request.match.wildcards?.contains("icmp_type") == true && request.match.description.contains("any="), "\(request.match)")
            #expect(request.actions.outputs.map(\.description) == ["blue/vm2 via h2 (100.64.0.2)"], "\(request.actions)")
            #expect(request.actions.outputs.first?.portKey == vm2.tunnelKey)
            // Three echoes on one flow: the first missed and installed it, the other two hit it.
            #expect(request.packets >= 2 && request.bytes >= 2 * 98, "\(request.packets) packets, \(request.bytes) bytes")
            #expect(request.ageSeconds >= request.idleSeconds)
            #expect(request.tags.contains("bridge:blue") && request.tags.contains("port:blue/vm1") && request.tags.contains("port:blue/vm2"),
                    "\(request.tags)")
            #expect(!request.tags.contains { $0.hasPrefix("0x") }, "every tag is named: \(request.tags)")
            #expect(Set(request.tags).count == request.tags.count, "each tag once: \(request.tags)")
            #expect(flows.total == flows.flows.count)
            // With a limit, the busiest.
            let busiest = try await lab.client.flows(host: h1, limit: 1).value
            #expect(busiest.flows.count == 1 && busiest.total >= flows.total && busiest.flows[0].packets >= request.packets)

            // One port's flows: on h1, those going to vm2 (it is bound on h2).
            let toVM2 = try await lab.client.flows(host: h1, port: vm2.id).value
            #expect(toVM2.port == "blue/vm2")
            #expect(!toVM2.flows.isEmpty)
            #expect(toVM2.flows.allSatisfy { flow in flow.actions.outputs.contains { $0.portKey == vm2.tunnelKey } }, "\(toVM2.flows.map(\.actions))")
            // h2's flows: vm2's replies, from vm2 to vm1 on h1.
            let replies = try await lab.client.flows(host: try await lab.hostID(2), port: vm2.id).value.flows
                .filter { $0.match.inPortName == "blue/vm2" && $0.match.etherType == "ipv4" }
            #expect(replies.contains { $0.actions.outputs.map(\.description) == ["blue/vm1 via h1 (100.64.0.1)"] }, "\(replies.map(\.actions))")

            // The summary counts them.
            let summary = try await lab.client.flowSummary(host: h1).value
            #expect(summary.hostName == "h1" && summary.flowCapacity == 65_536)
            #expect(summary.upcalls >= 1 && summary.hits >= 2 && summary.installed >= UInt64(requests.count), "\(summary)")
            #expect(summary.flows >= requests.count)
            #expect(summary.hitRate > 0 && summary.hitRate < 1)
            #expect(summary.idleTimeoutSeconds == 30 && summary.hardTimeoutSeconds == 120)
            #expect(summary.ports.map(\.port) == ["blue/vm1"], "the ports h1 has open")

            // Where vm1 lives now, and what passed.
            let status = try await lab.client.portStatus(vm1.id).value
            #expect(status.state == .up && status.reason == nil, "\(status)")
            #expect(status.binding == PortStatus.Placement(hostId: h1, hostName: "h1", interface: lab.prefix + "vm1", hostAlive: true))
            #expect(status.mac == EthernetAddress(parsing: "02:00:0a:00:01:0b") && status.addresses == ["10.0.1.11"])
            #expect((status.counters?.receivedPackets ?? 0) >= 4 && (status.counters?.sentPackets ?? 0) >= 4, "\(String(describing: status.counters))")
            let down = try await lab.client.portStatus(ghost.id).value
            #expect(down.state == .down, "\(down)")
            #expect(down.reason?.contains("nosuch0") == true && down.counters == nil, "\(down)")
        }
    }

    @Test func theAgentsListenerWantsItsTokenAndAHostWhenItServesSeveral() async throws {
        try await OverlayLab.run(vms: []) { lab in
            let h2 = try await lab.hostID(2)
            func get(_ path: String, token: String?) async throws -> (Int, [String: Any]) {
                var request = URLRequest(url: URL(string: lab.agentEndpoint.absoluteString + path)!)
                if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
                let (data, response) = try await URLSession.shared.data(for: request)
                return ((response as? HTTPURLResponse)?.statusCode ?? 0, (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:])
            }
            #expect(try await get("/state/flows?host=h1", token: nil).0 == 401)
            #expect(try await get("/state/flows?host=h1", token: "wrong").0 == 401)
            let unnamed = try await get("/state/summary", token: OverlayLab.agentToken)
            #expect(unnamed.0 == 400 && "\(unnamed.1)".contains("h1, h2"), "\(unnamed)")
            // By id once the agent has registered (the host appears in the NSDB just before).
            var byID = try await get("/state/ports?host=\(h2)", token: OverlayLab.agentToken)
            _ = try await eventually(within: 10) {
                byID = try await get("/state/ports?host=\(h2)", token: OverlayLab.agentToken)
                return byID.0 != 503
            }
            #expect(byID.0 == 200 && byID.1["hostName"] as? String == "h2", "\(byID)")
            #expect(try await get("/state/flows?host=h9", token: OverlayLab.agentToken).0 == 404)
            #expect(try await get("/state/flows?host=h1&port=nope", token: OverlayLab.agentToken).0 == 400)
            // Prometheus needs no token.
            #expect(try await get("/metrics", token: nil).0 == 200)
            // The agents recorded the listener in their hosts.
            let host = try await lab.client.get(h2).object
            #expect(host.agentEndpoint == lab.agentEndpoint.absoluteString)
        }
    }
}
