import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import Testing
@testable import HiveAgent

/// Two agents' upcall handlers, as two hosts see one connection: what each
/// commits, caches and sends to the other, and how a lost flow-state
/// message is repaired by a retransmission.
@Suite struct FlowStateSharingTests {
    static let hostA = IPv4.Address(100, 64, 0, 1)
    static let hostB = IPv4.Address(100, 64, 0, 2)
    static let net = BridgeID()
    static let web = SecurityGroupID()
    static let clientMAC = EthernetAddress(0x0200_0000_0001)
    static let serverMAC = EthernetAddress(0x0200_0000_0002)
    static let clientIP = IPv4.Address(10, 0, 0, 1)
    static let serverIP = IPv4.Address(10, 0, 0, 2)

    /// The client's port (key 1) is on host A, the server's (key 2, in a group
    /// allowing TCP 80) on host B; `local` says which host this handler is.
    static func handler(on local: IPv4.Address) -> SimulationUpcalls {
        let client = Port(id: PortID(), deviceId: net.uuid, deviceKind: .bridge, name: "client", tunnelKey: 1, mac: clientMAC, fixedIPs: [clientIP])
        let server = Port(
            id: PortID(), deviceId: net.uuid, deviceKind: .bridge, name: "server", tunnelKey: 2, mac: serverMAC, fixedIPs: [serverIP],
            securityGroupIds: [web])
        let snapshot = TopologySnapshot(
            bridges: [Bridge(id: net, name: "net", tunnelKey: 100)], ports: [client, server],
            securityGroups: [SecurityGroup(id: web, name: "web")],
            securityGroupRules: [SecurityGroupRule(securityGroupId: web, direction: .ingress, ipProtocol: 6, ports: PortRange(80))])
        let locations: [PortID: PortLocation] = local == hostA
            ? [client.id: .local, server.id: .remote(hostB)] : [client.id: .remote(hostA), server.id: .local]
        let shared = SharedView()
        shared.publish(AgentView(topology: TopologyIslands(snapshot), state: SimulationState(), locations: locations, version: 1))
        let (_, events) = AsyncStream<UpcallEvent>.makeStream()
        let upcalls = SimulationUpcalls(shared: shared, events: events)
        upcalls.beginBatch()
        return upcalls
    }

    static func segment(fromClient: Bool, flags: TCP.Flags) -> (frame: [UInt8], key: FlowKey) {
        let frame = fromClient
            ? PacketDescription(sourceMAC: clientMAC, destinationMAC: serverMAC, sourceIP: clientIP, destinationIP: serverIP,
                                protocol: .tcp, sourcePort: 40000, destinationPort: 80, tcpFlags: flags).frame
            : PacketDescription(sourceMAC: serverMAC, destinationMAC: clientMAC, sourceIP: serverIP, destinationIP: clientIP,
                                protocol: .tcp, sourcePort: 80, destinationPort: 40000, tcpFlags: flags).frame
        return (frame, try! FlowKey(parsing: frame, inPort: fromClient ? 1 : 2))
    }

    static func miss(_ handler: SimulationUpcalls, fromClient: Bool, flags: TCP.Flags) -> UpcallDecision {
        let (frame, key) = segment(fromClient: fromClient, flags: flags)
        var decision = UpcallDecision()
        frame.withUnsafeBytes { handler.handleMiss(frame: $0, key: key, decision: &decision) }
        return decision
    }

    static func deliver(_ decision: UpcallDecision, to handler: SimulationUpcalls) {
        var invalidations: [FlowTag] = []
        for message in decision.flowState {
            message.payload.withUnsafeBytes { handler.receiveFlowState($0, from: hostA, invalidations: &invalidations) }
        }
    }

    /// A hit on a cached flow, as the datapath makes it: whether it holds, and the flow state it sends.
    static func hit(
        _ handler: SimulationUpcalls, _ flow: UpcallDecision, flags: TCP.Flags
    ) -> (holds: Bool, messages: [(host: IPv4.Address, payload: [UInt8])]) {
        var messages: [(host: IPv4.Address, payload: [UInt8])] = []
        let holds = handler.track(flow.tracking!, flags: flags, now: monotonicNanoseconds(), messages: &messages)
        return (holds, messages)
    }

    @Test func eachHostSendsItsStepAheadOfThePacketAndALostStepIsSentAgain() {
        let a = Self.handler(on: Self.hostA)
        let b = Self.handler(on: Self.hostB)

        // The SYN, on A: forwarded to B with the connection's state for B,
        // cached with the connection to check on each hit.
        let syn = Self.miss(a, fromClient: true, flags: .syn)
        #expect(syn.actions.outputs == [.tunnel(host: Self.hostB, portKey: 2)])
        #expect(syn.flowState.map(\.host) == [Self.hostB])
        #expect(syn.cache && syn.tracking?.commits == true && syn.tracking?.peers == [Self.hostB])
        #expect(!syn.mask.contains(.tcpFlags), "one flow for the connection's segments, whatever their flags")
        #expect(!Self.hit(a, syn, flags: .syn).holds, "a retransmitted SYN is simulated again (and sends its state again)")
        Self.deliver(syn, to: b)

        // The SYN-ACK, on B: a reply (no egress rule needed), its state for A.
        let synAck = Self.miss(b, fromClient: false, flags: [.syn, .ack])
        #expect(synAck.actions.outputs == [.tunnel(host: Self.hostA, portKey: 1)], "B knows the connection from A's message")
        #expect(synAck.flowState.map(\.host) == [Self.hostA])
        #expect(!Self.hit(b, synAck, flags: [.syn, .ack]).holds, "a retransmitted SYN-ACK is simulated again")

        // Its flow state is lost: A still thinks SYN_SENT, so the client's ACK
        // misses the SYN's flow and is invalid there.
        #expect(!Self.hit(a, syn, flags: .ack).holds)
        let ack = Self.miss(a, fromClient: true, flags: .ack)
        #expect(ack.actions.outputs.isEmpty)
        #expect(ack.actions.dropCode == DropCode.invalid)

        // The server retransmits: simulated again, its state sent again.
        let again = Self.miss(b, fromClient: false, flags: [.syn, .ack])
        #expect(again.flowState.map(\.host) == [Self.hostA])
        Self.deliver(again, to: a)
        let retried = Self.miss(a, fromClient: true, flags: .ack)
        #expect(retried.actions.outputs == [.tunnel(host: Self.hostB, portKey: 2)], "the retransmitted handshake went through")
        #expect(retried.cache, "an established connection's flow is cached")
        #expect(retried.hardTimeout == 216_000_000_000_000, "half of ESTABLISHED's 5 days (the datapath's 120 s hard timeout still applies)")
        // Had the ACK found the SYN's flow, the flow would have held: a
        // connection the group accepted by rule it accepts by state.
        #expect(Self.hit(a, syn, flags: [.ack, .psh]).holds)

        // The server's data and the client's FIN ride the flows; the FIN's step goes to B.
        #expect(Self.hit(b, again, flags: [.ack, .psh]).holds)
        let fin = Self.hit(a, retried, flags: [.fin, .ack])
        #expect(fin.holds)
        #expect(fin.messages.map(\.host) == [Self.hostB])
        let entry = fin.messages.first.flatMap { message in message.payload.withUnsafeBytes { FlowStateMessage.decode($0)?.first } }
        #expect(entry?.tcpState == .finWait && entry?.finFrom == 1, "FIN_WAIT, the client's FIN first")
        #expect(Self.hit(a, retried, flags: .ack).messages.isEmpty, "an ACK's step stays here")
        #expect(!Self.hit(a, retried, flags: [.rst]).holds, "a reset is simulated")

        // A packet to port 22 is refused by the group: no state sent for it,
        // and its flow holds for new connections alone.
        var denied = UpcallDecision()
        let frame = PacketDescription(sourceMAC: Self.clientMAC, destinationMAC: Self.serverMAC, sourceIP: Self.clientIP, destinationIP: Self.serverIP,
                                      protocol: .tcp, sourcePort: 40001, destinationPort: 22, tcpFlags: .syn).frame
        frame.withUnsafeBytes { a.handleMiss(frame: $0, key: try! FlowKey(parsing: frame, inPort: 1), decision: &denied) }
        #expect(denied.actions.dropCode == DropCode.securityGroup)
        #expect(denied.flowState.isEmpty)
        #expect(denied.tracking?.commits == false)
        #expect(Self.hit(a, denied, flags: .syn).holds, "a retransmitted refused SYN stays on the drop flow")
        #expect(!Self.hit(a, denied, flags: .ack).holds, "an ACK with no connection is invalid, not the SYN's")
    }
}
