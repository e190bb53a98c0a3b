import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Testing

/// Ports bound to a host whose agent's lease lapsed (`unavailablePorts`):
/// traffic to them is dropped at the ingress with a reason, a routed packet
/// gets "host unreachable" from its first router, floods leave them out,
/// and all of it comes back with the host.
@Suite("Host liveness")
struct HostLivenessTests {
    @Test func aPortOnADeadHostGetsNothingAndARoutedSenderHearsHostUnreachable() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            var dead = lab.fullState
            dead.unavailablePorts = [try #require(snapshot.ports[lab.vm3]?.tunnelKey), try #require(snapshot.ports[lab.vm2]?.tunnelKey)]

            // Routed to vm3: dropped, and the first router answers the sender.
            let routed = try snapshot.run(Lab.tcp(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: dead)
            #expect(routed.decision == .drop(.hostDown(lab.vm3)))
            #expect(routed.outputPorts.isEmpty)
            let error = try #require(routed.generatedPackets.first, "a routed packet to a dead host is answered")
            #expect(error.kind == .destinationUnreachable && error.port == lab.routerLeft)
            let parsed = try ParsedIPv4(error.frame)
            #expect(parsed.ip.source == ip("10.0.1.1") && parsed.ip.destination == Lab.vm1IP)
            #expect(parsed.ethernet.source == Lab.routerLeftMAC && parsed.ethernet.destination == Lab.vm1MAC, "back to the sender's MAC")
            let icmp = try ICMPv4.Header(parsing: parsed.transport)
            #expect(icmp.type == .destinationUnreachable && icmp.code == ICMPv4.UnreachableCode.host.rawValue)
            let quote = try ICMPv4.Quote(parsing: parsed.transport)
            #expect(quote.header.destination == Lab.vm3IP && quote.header.timeToLive == 64, "the datagram as its sender sent it")
            #expect(dropText(.hostDown(lab.vm3), in: snapshot).contains("right/vm3 is bound to a host whose agent is not alive"))

            // Bridged to vm2: dropped, no answer (no router to send one).
            let bridged = try snapshot.run(Lab.udp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: dead)
            #expect(bridged.decision == .drop(.hostDown(lab.vm2)) && bridged.generatedPackets.isEmpty)

            // A flood leaves vm2 out, saying why.
            let flooded = try snapshot.run(Lab.udp(to: ip("10.0.1.99"), destinationMAC: mac("02:00:00:00:01:99")), from: lab.vm1, state: dead)
            #expect(!flooded.outputPorts.contains(lab.vm2))
            #expect(flooded.floodExclusions.contains { $0.port == lab.vm2 && $0.reason == .hostDown(lab.vm2) })

            // The host back: everything as before.
            let alive = lab.fullState
            #expect(try snapshot.run(Lab.tcp(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: alive).decision == .output(lab.vm3))
            #expect(try snapshot.run(Lab.udp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: alive).decision == .output(lab.vm2))
            let floodedAlive = try snapshot.run(Lab.udp(to: ip("10.0.1.99"), destinationMAC: mac("02:00:00:00:01:99")), from: lab.vm1, state: alive)
            #expect(floodedAlive.outputPorts.contains(lab.vm2))
        }
    }
}
