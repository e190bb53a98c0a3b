import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Testing

/// A packet and the port it enters by, plus the conntrack state to simulate with.
struct Probe {
    var packet: [UInt8]
    var port: PortID
    var connectionState: ConnectionState = .new
}

/// One rule condition, with a packet it matches and one it does not.
enum ConditionCase: String, CaseIterable, CustomStringConvertible {
    case inPorts, outPorts, inPortGroup, outPortGroup, etherType, sourceMAC, destinationMAC, ipProtocol
    case sourcePrefix, destinationPrefix, sourceAddressGroup, destinationAddressGroup
    case sourcePorts, destinationPorts, icmpType, icmpCode, connectionState, fragmentsLater, fragmentsUnfragmented

    var description: String { rawValue }

    /// The condition (not inverted), a matching probe and a non-matching one.
    func make(_ lab: Lab, group: PortGroupID, servers: IPAddressGroupID) -> (RuleConditions, Probe, Probe) {
        // vm1 -> vm2 and back, both MACs known: the chain sits on the bridge's outbound hook.
        let forward = Probe(packet: Lab.tcp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC).frame, port: lab.vm1)
        let backward = Probe(
            packet: Lab.tcp(from: Lab.vm2IP, to: Lab.vm1IP, sourceMAC: Lab.vm2MAC, destinationMAC: Lab.vm1MAC).frame, port: lab.vm2)
        let tcp = Match(IPProtocolNumber.tcp)
        let icmp = Match(IPProtocolNumber.icmp)
        func ping(type: UInt8, code: UInt8 = 0) -> Probe {
            Probe(packet: Lab.ping(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC, type: type, code: code).frame, port: lab.vm1)
        }
        switch self {
        case .inPorts: return (RuleConditions(inPorts: Match([lab.vm1])), forward, backward)
        case .outPorts: return (RuleConditions(outPorts: Match([lab.vm2])), forward, backward)
        case .inPortGroup: return (RuleConditions(inPortGroup: Match(group)), backward, forward)
        case .outPortGroup: return (RuleConditions(outPortGroup: Match(group)), forward, backward)
        case .etherType:
            return (RuleConditions(etherType: Match(0x0800)), forward,
                    Probe(packet: Lab.arpRequest(for: ip("10.0.1.77")).frame, port: lab.vm1))
        case .sourceMAC: return (RuleConditions(sourceMAC: Match(Lab.vm1MAC)), forward, backward)
        case .destinationMAC: return (RuleConditions(destinationMAC: Match(Lab.vm2MAC)), forward, backward)
        case .ipProtocol:
            return (RuleConditions(ipProtocol: tcp), forward,
                    Probe(packet: Lab.udp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC).frame, port: lab.vm1))
        case .sourcePrefix: return (RuleConditions(sourcePrefix: Match(prefix("10.0.1.10/32"))), forward, backward)
        case .destinationPrefix: return (RuleConditions(destinationPrefix: Match(prefix("10.0.1.11/32"))), forward, backward)
        case .sourceAddressGroup: return (RuleConditions(sourceAddressGroup: Match(servers)), backward, forward)
        case .destinationAddressGroup: return (RuleConditions(destinationAddressGroup: Match(servers)), forward, backward)
        case .sourcePorts:
            return (RuleConditions(ipProtocol: tcp, sourcePorts: Match(PortRange(start: 39000, end: 41000))), forward,
                    Probe(packet: Lab.tcp(to: Lab.vm2IP, sourcePort: 1234, destinationMAC: Lab.vm2MAC).frame, port: lab.vm1))
        case .destinationPorts:
            return (RuleConditions(ipProtocol: tcp, destinationPorts: Match(PortRange(start: 80, end: 90))), forward,
                    Probe(packet: Lab.tcp(to: Lab.vm2IP, port: 22, destinationMAC: Lab.vm2MAC).frame, port: lab.vm1))
        case .icmpType: return (RuleConditions(ipProtocol: icmp, icmpType: Match(8)), ping(type: 8), ping(type: 0))
        case .icmpCode:
            return (RuleConditions(ipProtocol: icmp, icmpType: Match(3), icmpCode: Match(1)), ping(type: 3, code: 1), ping(type: 3, code: 0))
        case .connectionState:
            var established = forward
            established.connectionState = .established
            return (RuleConditions(connectionState: Match(.established)), established, forward)
        case .fragmentsLater:
            let udp = Lab.udp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC).frame
            return (RuleConditions(fragments: Match(.later)), Probe(packet: fragmented(udp, later: true), port: lab.vm1),
                    Probe(packet: udp, port: lab.vm1))
        case .fragmentsUnfragmented:
            let udp = Lab.udp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC).frame
            return (RuleConditions(fragments: Match(.unfragmented)), Probe(packet: udp, port: lab.vm1),
                    Probe(packet: fragmented(udp, later: false), port: lab.vm1))
        }
    }
}

@Suite("Rule conditions")
struct ConditionTests {
    /// The rule drops what its condition matches; inverted, it drops the rest.
    @Test(arguments: ConditionCase.allCases)
    func conditionAndItsInversion(_ condition: ConditionCase) async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let group = try await repository.create(PortGroup(name: "web")).object.id
            var vm2 = try await repository.get(lab.vm2).object
            vm2.portGroupIds = [group]
            _ = try await repository.update(vm2)
            let servers = try await repository.create(IPAddressGroup(name: "servers", addresses: [prefix("10.0.1.11/32")])).object.id
            let chain = try await repository.create(Chain(name: "filter")).object.id
            let (conditions, matching, other) = condition.make(lab, group: group, servers: servers)
            var rule = try await repository.create(Rule(chainId: chain, conditions: conditions, action: .drop)).object
            try await Hook.leftOutbound.attach(chain, in: lab)

            func dropped(_ probe: Probe, _ snapshot: TopologySnapshot) throws -> Bool {
                let result = try snapshot.run(frame: probe.packet, from: probe.port, state: lab.fullState, connectionState: probe.connectionState)
                #expect(result.ranChain(chain, .deviceOutbound), "the chain ran: \(result.printedTrace(snapshot))")
                return result.decision == .drop(.ruleDropped(chain: chain, rule: rule.id))
            }

            var snapshot = try await lab.snapshot()
            #expect(try dropped(matching, snapshot), "\(condition) should match")
            #expect(try !dropped(other, snapshot), "\(condition) should not match")

            // Invert every condition of the rule that the case is about (for
            // port and ICMP conditions the protocol stays positive, as validation demands).
            rule.conditions = invert(condition, rule.conditions)
            _ = try await repository.update(rule)
            snapshot = try await lab.snapshot()
            #expect(try !dropped(matching, snapshot), "inverted \(condition) should not match")
            #expect(try dropped(other, snapshot), "inverted \(condition) should match")
        }
    }

    private func invert(_ condition: ConditionCase, _ conditions: RuleConditions) -> RuleConditions {
        var c = conditions
        func flip<V>(_ match: inout Match<V>?) { match?.invert.toggle() }
        switch condition {
        case .inPorts: flip(&c.inPorts)
        case .outPorts: flip(&c.outPorts)
        case .inPortGroup: flip(&c.inPortGroup)
        case .outPortGroup: flip(&c.outPortGroup)
        case .etherType: flip(&c.etherType)
        case .sourceMAC: flip(&c.sourceMAC)
        case .destinationMAC: flip(&c.destinationMAC)
        case .ipProtocol: flip(&c.ipProtocol)
        case .sourcePrefix: flip(&c.sourcePrefix)
        case .destinationPrefix: flip(&c.destinationPrefix)
        case .sourceAddressGroup: flip(&c.sourceAddressGroup)
        case .destinationAddressGroup: flip(&c.destinationAddressGroup)
        case .sourcePorts: flip(&c.sourcePorts)
        case .destinationPorts: flip(&c.destinationPorts)
        case .icmpType: flip(&c.icmpType)
        case .icmpCode: flip(&c.icmpCode)
        case .connectionState: flip(&c.connectionState)
        case .fragmentsLater, .fragmentsUnfragmented: flip(&c.fragments)
        }
        return c
    }

    @Test func fieldsReadFollowTheConditionsEvaluated() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let chain = try await repository.create(Chain(name: "filter")).object.id
            // Protocol first: a UDP packet fails it and never reads the port.
            _ = try await repository.create(Rule(chainId: chain, conditions: RuleConditions(
                ipProtocol: Match(IPProtocolNumber.tcp), destinationPorts: Match(PortRange(22))), action: .drop))
            _ = try await repository.create(Rule(chainId: chain, conditions: RuleConditions(connectionState: Match(.established)), action: .accept))
            try await Hook.vm1Inbound.attach(chain, in: lab)
            let snapshot = try await lab.snapshot()
            let udp = try snapshot.run(Lab.udp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: lab.fullState)
            #expect(udp.fieldsRead.contains(.ipProtocol))
            #expect(!udp.fieldsRead.contains(.destinationPort))
            #expect(udp.fieldsRead.contains(.connectionState))
            let tcp = try snapshot.run(Lab.tcp(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: lab.fullState)
            #expect(tcp.fieldsRead.contains(.destinationPort))
            #expect(!tcp.fieldsRead.contains(.sourcePort))
            #expect(tcp.fieldsRead.description.contains("tp_dst"))
        }
    }
}
