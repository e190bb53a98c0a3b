import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Testing

/// Where a test chain is attached.
enum Hook: String, CaseIterable, CustomStringConvertible {
    case vm1Inbound, leftInbound, leftOutbound, routerInbound, routerOutbound, rightInbound, vm3Outbound, routerPortInbound, routerPortOutbound

    var description: String { rawValue }

    var chainHook: ChainHook {
        switch self {
        case .vm1Inbound, .routerPortInbound: .portInbound
        case .leftInbound, .routerInbound, .rightInbound: .deviceInbound
        case .leftOutbound, .routerOutbound: .deviceOutbound
        case .vm3Outbound, .routerPortOutbound: .portOutbound
        }
    }

    func attach(_ chain: ChainID, in lab: Lab) async throws {
        let repository = lab.repository
        switch self {
        case .vm1Inbound, .vm3Outbound, .routerPortInbound, .routerPortOutbound:
            let id = self == .vm1Inbound ? lab.vm1 : self == .vm3Outbound ? lab.vm3 : self == .routerPortInbound ? lab.routerLeft : lab.routerRight
            var port = try await repository.get(id).object
            if self == .vm1Inbound || self == .routerPortInbound { port.inboundChainId = chain } else { port.outboundChainId = chain }
            _ = try await repository.update(port)
        case .leftInbound, .leftOutbound, .rightInbound:
            var bridge = try await repository.get(self == .rightInbound ? lab.right : lab.left).object
            if self == .leftOutbound { bridge.outboundChainId = chain } else { bridge.inboundChainId = chain }
            _ = try await repository.update(bridge)
        case .routerInbound, .routerOutbound:
            var router = try await repository.get(lab.router).object
            if self == .routerInbound { router.inboundChainId = chain } else { router.outboundChainId = chain }
            _ = try await repository.update(router)
        }
    }
}

@Suite("Chains")
struct ChainTests {
    /// A chain with one rule dropping TCP to port 22, attached at `hook`:
    /// SSH from vm1 to vm3 drops there, HTTP passes every hook.
    @Test(arguments: Hook.allCases)
    func eachHookApplies(_ hook: Hook) async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let chain = try await repository.create(Chain(name: "filter")).object.id
            let rule = try await repository.create(Rule(chainId: chain, conditions: RuleConditions(
                ipProtocol: Match(IPProtocolNumber.tcp), destinationPorts: Match(PortRange(22))), action: .drop)).object.id
            try await hook.attach(chain, in: lab)
            let snapshot = try await lab.snapshot()

            let ssh = try snapshot.run(Lab.tcp(to: Lab.vm3IP, port: 22, destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: lab.fullState)
            #expect(ssh.decision == .drop(.ruleDropped(chain: chain, rule: rule)))
            #expect(ssh.ranChain(chain, hook.chainHook))
            #expect(ssh.events.contains(.rule(rule, matched: true, action: .drop)))
            #expect(ssh.events.contains(.chainVerdict(chain, .drop(rule))))
            #expect(ssh.tags.contains(.chain(chain)) && ssh.tags.contains(.rule(rule)))
            #expect(ssh.fieldsRead.isSuperset(of: [.ipProtocol, .destinationPort]))
            #expect(ssh.isCacheable)

            let http = try snapshot.run(Lab.tcp(to: Lab.vm3IP, port: 80, destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: lab.fullState)
            #expect(http.decision == .output(lab.vm3))
            #expect(http.events.contains(.rule(rule, matched: false, action: .drop)))
            #expect(http.events.contains(.chainVerdict(chain, .accept(nil))))
        }
    }

    @Test func jumpAndReturn() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let main = try await repository.create(Chain(name: "main")).object.id
            let ssh = try await repository.create(Chain(name: "ssh")).object.id
            // ssh: drop port 22 from 10.0.1.11; return otherwise.
            let sshDrop = try await repository.create(Rule(chainId: ssh, conditions: RuleConditions(
                ipProtocol: Match(IPProtocolNumber.tcp), sourcePrefix: Match(prefix("10.0.1.11/32")),
                destinationPorts: Match(PortRange(22))), action: .drop)).object.id
            let sshReturn = try await repository.create(Rule(chainId: ssh, action: .return)).object.id
            // main: count (continue), jump ssh, accept tcp, drop the rest.
            let count = try await repository.create(Rule(chainId: main, action: .continue)).object.id
            let jump = try await repository.create(Rule(chainId: main, action: .jump(ssh))).object.id
            let acceptTCP = try await repository.create(Rule(chainId: main, conditions: RuleConditions(
                ipProtocol: Match(IPProtocolNumber.tcp)), action: .accept)).object.id
            let dropRest = try await repository.create(Rule(chainId: main, action: .drop)).object.id
            try await Hook.leftOutbound.attach(main, in: lab)
            let snapshot = try await lab.snapshot()

            let fromVM1 = try snapshot.run(Lab.tcp(to: Lab.vm2IP, port: 22, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: lab.fullState)
            #expect(fromVM1.decision == .output(lab.vm2))
            #expect(fromVM1.events.contains(.rule(count, matched: true, action: .continue)))
            #expect(fromVM1.events.contains(.jump(from: main, to: ssh)))
            #expect(fromVM1.events.contains(.rule(sshReturn, matched: true, action: .return)))
            #expect(fromVM1.events.contains(.returnTo(main)))
            #expect(fromVM1.events.contains(.chainVerdict(main, .accept(acceptTCP))))
            #expect(fromVM1.tags.contains(.chain(ssh)))
            _ = jump

            let fromVM2 = try snapshot.run(
                Lab.tcp(from: Lab.vm2IP, to: Lab.vm1IP, port: 22, sourceMAC: Lab.vm2MAC, destinationMAC: Lab.vm1MAC), from: lab.vm2,
                state: lab.fullState)
            #expect(fromVM2.decision == .drop(.ruleDropped(chain: ssh, rule: sshDrop)))

            let udp = try snapshot.run(Lab.udp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: lab.fullState)
            #expect(udp.decision == .drop(.ruleDropped(chain: main, rule: dropRest)))

            // The summary keeps the decisive steps only.
            let summary = fromVM2.trace.lines(in: snapshot, detail: .summary)
            #expect(summary.contains { $0.contains("DROP by rule ssh#1") }, "\(summary)")
            #expect(!summary.contains { $0.contains("no match") })
            let full = fromVM2.trace.rendered(in: snapshot)
            #expect(full.contains("jump from main to chain ssh"), "\(full)")
        }
    }

    /// A chain the snapshot does not hold (an agent has not read it yet)
    /// never lets a packet pass without it: the packet waits for it.
    @Test func aChainNotLoadedHoldsThePacketInsteadOfPassingIt() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let chain = try await repository.create(Chain(name: "guard")).object.id
            _ = try await repository.create(Rule(chainId: chain, action: .drop))
            try await Hook.vm1Inbound.attach(chain, in: lab)
            let full = try await lab.snapshot()
            let withoutChain = TopologySnapshot(
                bridges: Array(full.bridges.values), routers: Array(full.routers.values), ports: Array(full.ports.values),
                routes: Array(full.routes.values), dhcpSubnets: Array(full.dhcpSubnets.values))
            let result = try withoutChain.run(Lab.tcp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: lab.fullState)
            #expect(result.decision == .pendingTopology(.chain(chain)))
            #expect(!result.isCacheable)
            #expect(decisionText(result.decision, in: withoutChain).contains("not loaded"))
        }
    }

    @Test func jumpLoopDropsWithAClearReason() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let first = try await repository.create(Chain(name: "first")).object.id
            let second = try await repository.create(Chain(name: "second")).object.id
            _ = try await repository.create(Rule(chainId: first, action: .jump(second)))
            let back = try await repository.create(Rule(chainId: second, action: .jump(first))).object.id
            try await Hook.vm1Inbound.attach(first, in: lab)
            let snapshot = try await lab.snapshot()
            let result = try snapshot.run(Lab.tcp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: lab.fullState)
            #expect(result.decision == .drop(.jumpLoop(chain: second, rule: back, target: first)))
            let text = decisionText(result.decision, in: snapshot)
            #expect(text.contains("jump loop") && text.contains("second#1") && text.contains("chain first"), "\(text)")
        }
    }

    @Test func rejectAnswersTCPWithAResetAndOthersWithAdminProhibited() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let chain = try await repository.create(Chain(name: "deny")).object.id
            let rule = try await repository.create(Rule(chainId: chain, action: .reject)).object.id
            try await Hook.vm3Outbound.attach(chain, in: lab)
            let snapshot = try await lab.snapshot()

            let tcp = try snapshot.run(Lab.tcp(to: Lab.vm3IP, port: 443, destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: lab.fullState)
            #expect(tcp.decision == .drop(.ruleRejected(chain: chain, rule: rule)))
            let reset = try #require(tcp.generatedPackets.first)
            #expect(reset.kind == .tcpReset && reset.port == lab.rightUplink, "back out of the bridge's ingress port")
            let parsed = try ParsedIPv4(reset.frame)
            #expect(parsed.ip.source == Lab.vm3IP && parsed.ip.destination == Lab.vm1IP)
            // As the routed packet was: from the router's right port's MAC.
            #expect(parsed.ethernet.destination == Lab.routerRightMAC && parsed.ethernet.source == Lab.vm3MAC)
            let header = try TCP.Header(parsing: parsed.transport)
            #expect(header.flags == [.rst, .ack] && header.sourcePort == 443 && header.destinationPort == 40000)
            #expect(header.acknowledgmentNumber == 1001, "SYN counts one")

            let udp = try snapshot.run(Lab.udp(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: lab.fullState)
            #expect(udp.decision == .drop(.ruleRejected(chain: chain, rule: rule)))
            let icmpFrame = try #require(udp.generatedPackets.first)
            #expect(icmpFrame.kind == .destinationUnreachable)
            let icmpPacket = try ParsedIPv4(icmpFrame.frame)
            let icmp = try ICMPv4.Header(parsing: icmpPacket.transport)
            #expect(icmp.type == .destinationUnreachable && icmp.code == ICMPv4.UnreachableCode.administrativelyProhibited.rawValue)
            #expect(icmpPacket.ip.destination == Lab.vm1IP)

            // A reset is never answered.
            let rst = try snapshot.run(Lab.tcp(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC, flags: .rst), from: lab.vm1, state: lab.fullState)
            #expect(rst.generatedPackets.isEmpty)
        }
    }

    @Test func rejectAtARouterAnswersFromTheRouterPort() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let chain = try await repository.create(Chain(name: "deny")).object.id
            _ = try await repository.create(Rule(chainId: chain, conditions: RuleConditions(ipProtocol: Match(IPProtocolNumber.udp)), action: .reject))
            try await Hook.routerInbound.attach(chain, in: lab)
            let snapshot = try await lab.snapshot()
            let udp = try snapshot.run(Lab.udp(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: lab.fullState)
            let answer = try #require(udp.generatedPackets.first)
            #expect(answer.port == lab.routerLeft)
            let parsed = try ParsedIPv4(answer.frame)
            #expect(parsed.ip.source == ip("10.0.1.1") && parsed.ethernet.source == Lab.routerLeftMAC)
        }
    }

    @Test func aFloodSkipsPortsWhoseOutboundChainDrops() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let vm4 = try await repository.create(Port(bridge: lab.left, name: "vm4")).object.id
            let chain = try await repository.create(Chain(name: "quiet")).object.id
            _ = try await repository.create(Rule(chainId: chain, action: .drop))
            var port = try await repository.get(lab.vm2).object
            port.outboundChainId = chain
            _ = try await repository.update(port)
            let snapshot = try await lab.snapshot()
            let result = try snapshot.run(Lab.udp(to: ip("10.0.1.255"), destinationMAC: .broadcast), from: lab.vm1)
            #expect(result.decision == .flood(lab.left))
            #expect(result.outputPorts == [vm4])
            #expect(result.floodExclusions.map(\.port) == [lab.vm2])
        }
    }
}
