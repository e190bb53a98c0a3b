import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Testing

@Suite("Bridge")
struct BridgeTests {
    @Test func unknownUnicastFloodsToExteriorPortsAndLearnsTheSource() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            let stranger = mac("02:00:00:00:0f:0f")
            let result = try snapshot.run(Lab.tcp(to: Lab.vm2IP, destinationMAC: stranger), from: lab.vm1)

            #expect(result.decision == .flood(lab.left))
            // The flood set: exterior ports but the ingress; not the router uplink.
            #expect(result.outputPorts == [lab.vm2])
            // The key other hosts deliver it by: the bridge's own tunnel key.
            let bridgeKey = try #require(snapshot.bridges[lab.left]?.tunnelKey)
            #expect(bridgeKey != 0 && result.floodKey == bridgeKey, "flood key \(result.floodKey), bridge key \(bridgeKey)")
            #expect(result.macLearning == [MACLearning(bridge: lab.left, mac: Lab.vm1MAC, port: lab.vm1)])
            #expect(result.tags.contains(.macEntry(lab.left, stranger)))
            #expect(result.tags.contains(.macEntry(lab.left, Lab.vm1MAC)))
            #expect(result.tags.contains(.bridge(lab.left)) && result.tags.contains(.port(lab.vm1)))
            #expect(result.events.contains(.macLookup(stranger, port: nil, isStatic: false)))
            #expect(result.events.contains(.learnMAC(Lab.vm1MAC, lab.vm1)))
            #expect(result.events.last == .decision(.flood(lab.left)))
            #expect(result.isCacheable)
            #expect(result.fieldsRead.isSuperset(of: [.inPort, .ethernetSource, .ethernetDestination, .etherType]))
            #expect(!result.fieldsRead.contains(.ipv4Destination), "a bridge does not look at IP")
        }
    }

    @Test func knownUnicastGoesToOnePortAndNothingIsRelearned() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            let result = try snapshot.run(Lab.tcp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: lab.fullState)
            #expect(result.decision == .output(lab.vm2))
            #expect(result.outputPorts == [lab.vm2])
            #expect(result.floodKey == 0, "only a flood has a flood key")
            #expect(result.macLearning.isEmpty)
            #expect(result.actions.isEmpty)
            #expect(result.hops == 1)
            #expect(result.events.contains(.macLookup(Lab.vm2MAC, port: lab.vm2, isStatic: false)))
            #expect(result.events.suffix(2) == [.leavePort(lab.vm2), .decision(.output(lab.vm2))])

            // The same MAC now arriving on vm2: the entry moves.
            let moved = try snapshot.run(
                Lab.tcp(to: Lab.vm2IP, sourceMAC: Lab.vm1MAC, destinationMAC: Lab.vm3MAC), from: lab.vm2, state: lab.fullState)
            #expect(moved.macLearning == [MACLearning(bridge: lab.left, mac: Lab.vm1MAC, port: lab.vm2)])
        }
    }

    @Test func broadcastFloodsAndADestinationOnTheIngressPortDrops() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            let broadcast = try snapshot.run(Lab.udp(to: ip("10.0.1.255"), destinationMAC: .broadcast), from: lab.vm2)
            #expect(broadcast.decision == .flood(lab.left))
            #expect(broadcast.outputPorts == [lab.vm1])

            var state = lab.fullState
            state.learn(Lab.vm2MAC, on: lab.vm1, in: lab.left)
            let hairpin = try snapshot.run(Lab.tcp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: state)
            #expect(hairpin.decision == .drop(.sameIngressAndEgress(lab.left, lab.vm1)))
        }
    }

    @Test func arpSuppressionAnswersForRouterPortsAndDHCPHosts() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let hostMAC = mac("02:00:00:00:01:99")
            _ = try await repository.create(DHCPSubnet(
                bridgeId: lab.left, subnet: prefix("10.0.1.0/24"), rangeStart: ip("10.0.1.100"), rangeEnd: ip("10.0.1.199"),
                hostEntries: [DHCPHostEntry(mac: hostMAC, address: ip("10.0.1.50"))]))
            let snapshot = try await lab.snapshot()

            for (target, answer) in [(ip("10.0.1.1"), Lab.routerLeftMAC), (ip("10.0.1.50"), hostMAC)] {
                let result = try snapshot.run(Lab.arpRequest(for: target), from: lab.vm1)
                #expect(result.decision == .consumed)
                #expect(result.events.contains(.arpSuppressed(target, answer)))
                let reply = try #require(result.generatedPackets.first)
                #expect(result.generatedPackets.count == 1)
                #expect(reply.kind == .arpReply && reply.port == lab.vm1)
                let ethernet = try Ethernet.Header(parsing: reply.frame)
                #expect(ethernet.destination == Lab.vm1MAC && ethernet.source == answer && ethernet.etherType == .arp)
                let arp = try ARP.Packet(parsing: Array(reply.frame[14...]))
                #expect(arp == ARP.Packet(operation: .reply, senderMAC: answer, senderIP: target, targetMAC: Lab.vm1MAC, targetIP: Lab.vm1IP))
                #expect(!result.isCacheable)
            }

            // An address the bridge does not know floods.
            let unknown = try snapshot.run(Lab.arpRequest(for: ip("10.0.1.77")), from: lab.vm1)
            #expect(unknown.decision == .flood(lab.left))
            #expect(unknown.generatedPackets.isEmpty)
        }
    }

    @Test func withoutSuppressionTheRouterAnswersForItsOwnAddress() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository, arpSuppression: false)
            let snapshot = try await lab.snapshot()
            let result = try snapshot.run(Lab.arpRequest(for: ip("10.0.1.1")), from: lab.vm1)
            #expect(result.decision == .consumed)
            #expect(result.events.contains(.arpToRouterPort(ip("10.0.1.1"), lab.leftUplink)))
            #expect(result.events.contains(.router(lab.router)))
            let reply = try #require(result.generatedPackets.first)
            // The router answers out of its own port; the agent delivers it across the link.
            #expect(reply.kind == .arpReply && reply.port == lab.routerLeft)
            let arp = try ARP.Packet(parsing: Array(reply.frame[14...]))
            #expect(arp.operation == .reply && arp.senderMAC == Lab.routerLeftMAC && arp.senderIP == ip("10.0.1.1"))
            #expect(arp.targetMAC == Lab.vm1MAC)
        }
    }

    @Test func downPortsAndBridgesDrop() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            var port = try await repository.get(lab.vm2).object
            port.adminStateUp = false
            _ = try await repository.update(port)
            var snapshot = try await lab.snapshot()
            let toDown = try snapshot.run(Lab.tcp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: lab.fullState)
            #expect(toDown.decision == .drop(.portDown(lab.vm2)))
            let flood = try snapshot.run(Lab.udp(to: ip("10.0.1.255"), destinationMAC: .broadcast), from: lab.vm1)
            #expect(flood.outputPorts.isEmpty, "a down port is not in the flood set")

            var bridge = try await repository.get(lab.left).object
            bridge.adminStateUp = false
            _ = try await repository.update(bridge)
            snapshot = try await lab.snapshot()
            let result = try snapshot.run(Lab.tcp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1)
            #expect(result.decision == .drop(.bridgeDown(lab.left)))
        }
    }

    @Test func unknownInPortDrops() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            let result = try snapshot.simulate(frame: Lab.tcp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC).frame, inPort: 0xFFF0)
            #expect(result.decision == .drop(.unknownInPort(0xFFF0)))
            #expect(result.fieldsRead == [.inPort])
        }
    }
}
