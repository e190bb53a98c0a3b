import HiveModel
import HivePacket
import HiveSimulation
import Testing

/// One bridge, three VMs with port security:
/// - web (10.0.0.10) in group "web": ingress TCP 80 from anywhere, ICMP from
///   group "clients"; no egress rule;
/// - client (10.0.0.20) in group "clients": egress anything;
/// - other (10.0.0.30): no group.
private struct SecurityLab {
    static let net = BridgeID()
    static let webGroup = SecurityGroupID()
    static let clientsGroup = SecurityGroupID()
    static let webMAC = mac("02:00:00:00:00:10")
    static let clientMAC = mac("02:00:00:00:00:20")
    static let otherMAC = mac("02:00:00:00:00:30")
    static let webIP = ip("10.0.0.10")
    static let clientIP = ip("10.0.0.20")
    static let otherIP = ip("10.0.0.30")
    static let web = Port(id: PortID(), deviceId: net.uuid, deviceKind: .bridge, name: "web", tunnelKey: 1, mac: webMAC, fixedIPs: [webIP], securityGroupIds: [webGroup])
    static let client = Port(id: PortID(), deviceId: net.uuid, deviceKind: .bridge, name: "client", tunnelKey: 2, mac: clientMAC, fixedIPs: [clientIP], securityGroupIds: [clientsGroup])
    static let other = Port(id: PortID(), deviceId: net.uuid, deviceKind: .bridge, name: "other", tunnelKey: 3, mac: otherMAC, fixedIPs: [otherIP])
    static let allowHTTP = SecurityGroupRule(securityGroupId: webGroup, direction: .ingress, ipProtocol: 6, ports: PortRange(80), remotePrefix: prefix("0.0.0.0/0"))
    static let allowPingFromClients = SecurityGroupRule(securityGroupId: webGroup, direction: .ingress, ipProtocol: 1, remoteGroupId: clientsGroup)
    static let clientsEgress = SecurityGroupRule(securityGroupId: clientsGroup, direction: .egress)

    static func snapshot(rules: [SecurityGroupRule] = [allowHTTP, allowPingFromClients, clientsEgress], chains: [Chain] = [], chainRules: [Rule] = [], ports: [Port]? = nil) -> TopologySnapshot {
        TopologySnapshot(
            bridges: [Bridge(id: net, name: "net", tunnelKey: 100)], ports: ports ?? [web, client, other], chains: chains, rules: chainRules,
            securityGroups: [SecurityGroup(id: webGroup, name: "web"), SecurityGroup(id: clientsGroup, name: "clients")],
            securityGroupRules: rules)
    }

    static func tcp(from: (MAC: EthernetAddress, IP: IPv4.Address), to: (MAC: EthernetAddress, IP: IPv4.Address), sourcePort: UInt16, port: UInt16, flags: TCP.Flags) -> [UInt8] {
        PacketDescription(sourceMAC: from.MAC, destinationMAC: to.MAC, sourceIP: from.IP, destinationIP: to.IP, protocol: .tcp,
                          sourcePort: sourcePort, destinationPort: port, tcpFlags: flags).frame
    }

    static func ping(from: (MAC: EthernetAddress, IP: IPv4.Address), to: (MAC: EthernetAddress, IP: IPv4.Address), type: UInt8) -> [UInt8] {
        PacketDescription(sourceMAC: from.MAC, destinationMAC: to.MAC, sourceIP: from.IP, destinationIP: to.IP, protocol: .icmp,
                          icmpType: type, icmpIdentifier: 99, payload: Array(0..<8)).frame
    }

    static let webHost = (MAC: webMAC, IP: webIP)
    static let clientHost = (MAC: clientMAC, IP: clientIP)
    static let otherHost = (MAC: otherMAC, IP: otherIP)
}

/// Simulates `frame` from the port with tunnel key `inPort` on `table`, and
/// commits what it observed when the packet is forwarded, as the agent does.
private func step(_ snapshot: TopologySnapshot, _ table: inout ConnectionTable, _ frame: [UInt8], from inPort: UInt32, now: UInt64 = 1_000) throws -> SimulationResult {
    let result = try snapshot.simulate(frame: frame, inPort: inPort, connections: table, now: now, options: SimulationOptions(recordsTrace: true))
    if case .output = result.decision {
        let key = try FlowKey(parsing: frame, inPort: inPort)
        for observation in result.connections { _ = table.apply(observation, tcpFlags: key.tcpFlags, now: now) }
    }
    return result
}

private func dropReason(_ result: SimulationResult) -> DropReason? {
    if case .drop(let reason) = result.decision { reason } else { nil }
}

@Suite("Connection tracking and security groups")
struct ConnectionTrackingTests {
    fileprivate typealias Lab = SecurityLab

    @Test func aTCPHandshakeAndCloseFollowTheStateMachine() throws {
        let snapshot = Lab.snapshot()
        var table = ConnectionTable()
        let syn = try step(snapshot, &table, Lab.tcp(from: Lab.clientHost, to: Lab.webHost, sourcePort: 40000, port: 80, flags: .syn), from: 2)
        #expect(syn.decision == .output(Lab.web.id), "\(syn.printedTrace(snapshot))")
        #expect(table.count == 2, "one entry in the client's zone, one in the web server's")
        let key = ConnectionKey(zone: 1, source: Lab.clientIP, destination: Lab.webIP, sourcePort: 40000, destinationPort: 80, ipProtocol: 6)
        let slot = try #require(table.lookup(key, now: 1_000)?.slot)
        #expect(table.entry(slot)?.tcpState == .synSent)

        // The reply: allowed by state although "web" has no egress rule.
        let synAck = try step(snapshot, &table, Lab.tcp(from: Lab.webHost, to: Lab.clientHost, sourcePort: 80, port: 40000, flags: [.syn, .ack]), from: 1)
        #expect(synAck.decision == .output(Lab.client.id), "\(synAck.printedTrace(snapshot))")
        #expect(synAck.connections.allSatisfy { $0.states == [.established, .reply] })
        #expect(table.entry(slot)?.tcpState == .synReceived)
        _ = try step(snapshot, &table, Lab.tcp(from: Lab.clientHost, to: Lab.webHost, sourcePort: 40000, port: 80, flags: .ack), from: 2)
        #expect(table.entry(slot)?.tcpState == .established)
        #expect(table.entry(slot)?.replied == true)

        _ = try step(snapshot, &table, Lab.tcp(from: Lab.clientHost, to: Lab.webHost, sourcePort: 40000, port: 80, flags: [.fin, .ack]), from: 2)
        #expect(table.entry(slot)?.tcpState == .finWait)
        _ = try step(snapshot, &table, Lab.tcp(from: Lab.webHost, to: Lab.clientHost, sourcePort: 80, port: 40000, flags: .ack), from: 1)
        #expect(table.entry(slot)?.tcpState == .closeWait)
        _ = try step(snapshot, &table, Lab.tcp(from: Lab.webHost, to: Lab.clientHost, sourcePort: 80, port: 40000, flags: [.fin, .ack]), from: 1)
        #expect(table.entry(slot)?.tcpState == .lastAck)
        _ = try step(snapshot, &table, Lab.tcp(from: Lab.clientHost, to: Lab.webHost, sourcePort: 40000, port: 80, flags: .ack), from: 2)
        #expect(table.entry(slot)?.tcpState == .timeWait)
        // TIME_WAIT lasts 120 s, then the entry is gone.
        var tags: [UInt64] = []
        table.expire(now: 1_000 + 121 * 1_000_000_000, into: &tags)
        #expect(table.count == 0)
        #expect(tags.contains(key.tag))
    }

    /// A client reusing its ports (TIME_WAIT reuse) while this host's entry
    /// still waits in FIN_WAIT or CLOSE_WAIT (the hosts' FIN messages
    /// crossed, or the last ACK rode a cached flow): its SYN opens a new
    /// connection, as after LAST_ACK, instead of dropping as invalid.
    @Test func aSYNReusingTheportsOfAClosingConnectionOpensANewOne() throws {
        let snapshot = Lab.snapshot()
        for closing: [(flags: TCP.Flags, fromClient: Bool)] in [[([.fin, .ack], true)], [([.fin, .ack], true), (.ack, false)]] {
            var table = ConnectionTable()
            let client = { (flags: TCP.Flags) in Lab.tcp(from: Lab.clientHost, to: Lab.webHost, sourcePort: 40010, port: 80, flags: flags) }
            let web = { (flags: TCP.Flags) in Lab.tcp(from: Lab.webHost, to: Lab.clientHost, sourcePort: 80, port: 40010, flags: flags) }
            _ = try step(snapshot, &table, client(.syn), from: 2)
            _ = try step(snapshot, &table, web([.syn, .ack]), from: 1)
            _ = try step(snapshot, &table, client(.ack), from: 2)
            for segment in closing {
                _ = try step(snapshot, &table, segment.fromClient ? client(segment.flags) : web(segment.flags), from: segment.fromClient ? 2 : 1)
            }
            let key = ConnectionKey(zone: 1, source: Lab.clientIP, destination: Lab.webIP, sourcePort: 40010, destinationPort: 80, ipProtocol: 6)
            let closingState = try #require(table.lookup(key, now: 1_000).flatMap { table.entry($0.slot) }?.tcpState)
            #expect(closingState == (closing.count == 1 ? .finWait : .closeWait))
            let again = try step(snapshot, &table, client(.syn), from: 2)
            #expect(again.decision == .output(Lab.web.id), "from \(closingState): \(again.printedTrace(snapshot))")
            #expect(table.lookup(key, now: 1_000).flatMap { table.entry($0.slot) }?.tcpState == .synSent, "a new connection from \(closingState)")
        }
    }

    @Test func securityGroupsAllowOnlyTheirRulesAndTheRepliesOfAllowedConnections() throws {
        let snapshot = Lab.snapshot()
        var table = ConnectionTable()
        // TCP 22 to web: no rule allows it.
        let ssh = try step(snapshot, &table, Lab.tcp(from: Lab.clientHost, to: Lab.webHost, sourcePort: 40001, port: 22, flags: .syn), from: 2)
        #expect(dropReason(ssh) == .securityGroup(Lab.web.id, .ingress), "\(ssh.printedTrace(snapshot))")
        // Web opening a connection: it has no egress rule.
        let out = try step(snapshot, &table, Lab.tcp(from: Lab.webHost, to: Lab.otherHost, sourcePort: 50000, port: 443, flags: .syn), from: 1)
        #expect(dropReason(out) == .securityGroup(Lab.web.id, .egress))
        // A port without groups is not filtered by groups.
        let toOther = try step(snapshot, &table, Lab.tcp(from: Lab.clientHost, to: Lab.otherHost, sourcePort: 40002, port: 5432, flags: .syn), from: 2)
        #expect(toOther.decision == .output(Lab.other.id))
        // Ping from a member of "clients" passes; from "other" (no member) not.
        let ping = try step(snapshot, &table, Lab.ping(from: Lab.clientHost, to: Lab.webHost, type: 8), from: 2)
        #expect(ping.decision == .output(Lab.web.id), "\(ping.printedTrace(snapshot))")
        let otherPing = try step(snapshot, &table, Lab.ping(from: Lab.otherHost, to: Lab.webHost, type: 8), from: 3)
        #expect(dropReason(otherPing) == .securityGroup(Lab.web.id, .ingress))
        // The ping's reply is a reply, in both zones, and passes without an egress rule.
        let reply = try step(snapshot, &table, Lab.ping(from: Lab.webHost, to: Lab.clientHost, type: 0), from: 1)
        #expect(reply.decision == .output(Lab.client.id))
        #expect(reply.connections.count == 2)
        #expect(reply.connections.allSatisfy { $0.states.contains(.reply) })
        // An echo reply nobody asked for is invalid.
        let stray = try step(snapshot, &table, Lab.ping(from: Lab.otherHost, to: Lab.webHost, type: 0), from: 3)
        #expect(dropReason(stray) == .connectionInvalid(Lab.web.id))
        // ARP passes groups.
        let arp = try step(snapshot, &table, PacketDescription(
            sourceMAC: Lab.otherMAC, destinationMAC: .broadcast, sourceIP: Lab.otherIP, destinationIP: Lab.webIP, protocol: .arp).frame, from: 3)
        #expect(dropReason(arp) == nil)
    }

    @Test func anOutOfStateSegmentIsInvalid() throws {
        let snapshot = Lab.snapshot()
        var table = ConnectionTable()
        let ack = try step(snapshot, &table, Lab.tcp(from: Lab.clientHost, to: Lab.webHost, sourcePort: 40000, port: 80, flags: .ack), from: 2)
        #expect(dropReason(ack) == .connectionInvalid(Lab.client.id), "\(ack.printedTrace(snapshot))")
        let synFin = try step(snapshot, &table, Lab.tcp(from: Lab.clientHost, to: Lab.webHost, sourcePort: 40000, port: 80, flags: [.syn, .fin]), from: 2)
        #expect(dropReason(synFin) == .connectionInvalid(Lab.client.id))
        #expect(table.count == 0)
    }

    @Test func anICMPErrorAboutATrackedConnectionIsRelated() throws {
        let snapshot = Lab.snapshot()
        var table = ConnectionTable()
        let udp = PacketDescription(sourceMAC: Lab.clientMAC, destinationMAC: Lab.otherMAC, sourceIP: Lab.clientIP, destinationIP: Lab.otherIP,
                                    protocol: .udp, sourcePort: 5000, destinationPort: 53).frame
        #expect(try step(snapshot, &table, udp, from: 2).decision == .output(Lab.other.id))
        // "other" answers port unreachable: related to the client's connection, in its reply direction.
        let error = try ICMPv4.unreachableFrame(code: .port, about: udp, sourceMAC: Lab.otherMAC, sourceIP: Lab.otherIP)
        let related = try step(snapshot, &table, error, from: 3)
        #expect(related.decision == .output(Lab.client.id), "\(related.printedTrace(snapshot))")
        #expect(related.connections.first?.states == [.related, .reply])
        #expect(!related.isCacheable, "the quoted datagram is not in the flow key")
        // An error about nothing tracked is invalid.
        let strayUDP = PacketDescription(sourceMAC: Lab.clientMAC, destinationMAC: Lab.otherMAC, sourceIP: Lab.clientIP, destinationIP: Lab.otherIP,
                                         protocol: .udp, sourcePort: 5001, destinationPort: 53).frame
        let stray = try ICMPv4.unreachableFrame(code: .port, about: strayUDP, sourceMAC: Lab.otherMAC, sourceIP: Lab.otherIP)
        #expect(dropReason(try step(snapshot, &table, stray, from: 3)) == .connectionInvalid(Lab.client.id))
    }

    @Test func aChainMatchesEstablishedForBothDirectionsAndReplyOnlyForReplies() throws {
        // The walkthrough's chain, on the web port's outbound side (traffic to the VM):
        // accept established, accept TCP 80, drop the rest.
        let chain = Chain(name: "web-in")
        let established = Rule(chainId: chain.id, conditions: RuleConditions(connectionState: Match(.established)), action: .accept)
        let http = Rule(chainId: chain.id, conditions: RuleConditions(ipProtocol: Match(6), destinationPorts: Match(PortRange(80))), action: .accept)
        let drop = Rule(chainId: chain.id, conditions: RuleConditions(), action: .drop)
        let withChain = Chain(id: chain.id, name: "web-in", ruleIds: [established.id, http.id, drop.id])
        var web = Port(id: Lab.web.id, deviceId: Lab.net.uuid, deviceKind: .bridge, name: "web", tunnelKey: 1, mac: Lab.webMAC, fixedIPs: [Lab.webIP])
        web.outboundChainId = chain.id
        let other = Port(id: Lab.other.id, deviceId: Lab.net.uuid, deviceKind: .bridge, name: "other", tunnelKey: 3, mac: Lab.otherMAC, fixedIPs: [Lab.otherIP])
        let snapshot = Lab.snapshot(rules: [], chains: [withChain], chainRules: [established, http, drop], ports: [web, other])
        var table = ConnectionTable()
        // Web's own outbound connection: its SYN-ACK comes back through web-in as established.
        #expect(try step(snapshot, &table, Lab.tcp(from: Lab.webHost, to: Lab.otherHost, sourcePort: 50000, port: 5432, flags: .syn), from: 1).decision == .output(other.id))
        let synAck = try step(snapshot, &table, Lab.tcp(from: Lab.otherHost, to: Lab.webHost, sourcePort: 5432, port: 50000, flags: [.syn, .ack]), from: 3)
        #expect(synAck.decision == .output(web.id), "\(synAck.printedTrace(snapshot))")
        // A new connection to another port: dropped by the last rule.
        let other22 = try step(snapshot, &table, Lab.tcp(from: Lab.otherHost, to: Lab.webHost, sourcePort: 40000, port: 22, flags: .syn), from: 3)
        #expect(dropReason(other22) == .ruleDropped(chain: chain.id, rule: drop.id))
    }

    /// A cached flow's hits check its connections (`ConnectionTable.allows`)
    /// and move them on (`advance`): a new connection's flow holds once the
    /// connection is established when a security group accepted it by rule
    /// (it would accept it by state), not when a chain's rule read the state.
    @Test func aNewConnectionsFlowHoldsOnceEstablishedUnlessARuleReadTheState() throws {
        let now: UInt64 = 1_000
        func records(_ result: SimulationResult, _ table: ConnectionTable) -> [FlowConnection] {
            result.connections.map { observation in
                let found = table.lookup(observation.key, now: now)
                return FlowConnection(
                    key: observation.key, isReply: found?.isReply ?? false, slot: found?.slot ?? -1,
                    generation: found.flatMap { table.entry($0.slot)?.generation } ?? 0, validStates: observation.validStates)
            }
        }
        let snapshot = Lab.snapshot()
        var table = ConnectionTable()
        let client = { (flags: TCP.Flags) in Lab.tcp(from: Lab.clientHost, to: Lab.webHost, sourcePort: 40020, port: 80, flags: flags) }
        let web = { (flags: TCP.Flags) in Lab.tcp(from: Lab.webHost, to: Lab.clientHost, sourcePort: 80, port: 40020, flags: flags) }
        let flow = records(try step(snapshot, &table, client(.syn), from: 2), table)
        #expect(flow.count == 2 && flow.allSatisfy { $0.slot >= 0 })
        #expect(!flow.allSatisfy { table.allows($0, flags: .ack, now: now) }, "an ACK before the reply is invalid: simulated")
        #expect(!flow.allSatisfy { table.allows($0, flags: .syn, now: now) }, "a retransmitted SYN is simulated")
        _ = try step(snapshot, &table, web([.syn, .ack]), from: 1)
        #expect(flow.allSatisfy { table.allows($0, flags: [.ack, .psh], now: now) }, "established, as the group would accept it")
        for connection in flow { #expect(table.advance(connection, flags: .ack, now: now) == nil, "an ACK's step is this host's") }
        #expect(flow.allSatisfy { table.entry($0.slot)?.tcpState == .established })
        let told = flow.compactMap { table.advance($0, flags: [.fin, .ack], now: now) }
        #expect(told.count == 2 && told.allSatisfy { $0.tcpState == .finWait && $0.finFrom == 1 }, "a FIN's step goes to the other hosts")
        #expect(!flow.allSatisfy { table.allows($0, flags: [.rst, .ack], now: now) }, "a reset is simulated")
        #expect(!table.allows(flow[0], flags: .ack, now: now + 121 * 1_000_000_000), "FIN_WAIT expired: the entry is gone")

        // A chain whose first rule reads the state: its flow holds for new alone.
        let chain = Chain(name: "web-in")
        let established = Rule(chainId: chain.id, conditions: RuleConditions(connectionState: Match(.established)), action: .accept)
        let http = Rule(chainId: chain.id, conditions: RuleConditions(ipProtocol: Match(6), destinationPorts: Match(PortRange(80))), action: .accept)
        var webPort = Port(id: Lab.web.id, deviceId: Lab.net.uuid, deviceKind: .bridge, name: "web", tunnelKey: 1, mac: Lab.webMAC, fixedIPs: [Lab.webIP])
        webPort.outboundChainId = chain.id
        let other = Port(id: Lab.other.id, deviceId: Lab.net.uuid, deviceKind: .bridge, name: "other", tunnelKey: 3, mac: Lab.otherMAC, fixedIPs: [Lab.otherIP])
        let chained = Lab.snapshot(
            rules: [], chains: [Chain(id: chain.id, name: "web-in", ruleIds: [established.id, http.id])], chainRules: [established, http],
            ports: [webPort, other])
        var chainTable = ConnectionTable()
        let syn = try step(chained, &chainTable, Lab.tcp(from: Lab.otherHost, to: Lab.webHost, sourcePort: 40030, port: 80, flags: .syn), from: 3)
        #expect(syn.decision == .output(webPort.id), "\(syn.printedTrace(chained))")
        #expect(syn.connections.allSatisfy { $0.stateDecides })
        let chainFlow = records(syn, chainTable)
        _ = try step(chained, &chainTable, Lab.tcp(from: Lab.webHost, to: Lab.otherHost, sourcePort: 80, port: 40030, flags: [.syn, .ack]), from: 1)
        #expect(!chainFlow.allSatisfy { chainTable.allows($0, flags: .ack, now: now) }, "established is another decision: simulated")
    }

    @Test func earlyDropEvictsTheOldestUnrepliedConnection() throws {
        let snapshot = Lab.snapshot()
        var table = ConnectionTable(capacity: 4, capacityPerPort: 4)
        for port in UInt16(1)...2 {
            _ = try step(snapshot, &table, Lab.tcp(from: Lab.clientHost, to: Lab.webHost, sourcePort: port, port: 80, flags: .syn), from: 2)
        }
        #expect(table.count == 4)
        _ = try step(snapshot, &table, Lab.tcp(from: Lab.clientHost, to: Lab.webHost, sourcePort: 3, port: 80, flags: .syn), from: 2)
        #expect(table.count == 4)
        #expect(table.counters.earlyDropped == 2)
        let first = ConnectionKey(zone: 1, source: Lab.clientIP, destination: Lab.webIP, sourcePort: 1, destinationPort: 80, ipProtocol: 6)
        let third = ConnectionKey(zone: 1, source: Lab.clientIP, destination: Lab.webIP, sourcePort: 3, destinationPort: 80, ipProtocol: 6)
        #expect(table.lookup(first, now: 1_000) == nil)
        #expect(table.lookup(third, now: 1_000) != nil)
    }

    @Test func flowStateMessagesRoundTripAndMalformedOnesAreRefused() {
        let key = ConnectionKey(zone: 7, source: ip("10.0.0.1"), destination: ip("10.0.0.2"), sourcePort: 1234, destinationPort: 80, ipProtocol: 6)
        let entry = ConnectionEntry(key: key, tcpState: .finWait, replied: true, finFrom: 2, owner: 42)
        let bytes = FlowStateMessage.encode([entry, ConnectionEntry(key: key.reversed, owner: 1)])
        #expect(bytes.count == 4 + 2 * FlowStateMessage.entryLength)
        let decoded = bytes.withUnsafeBytes { FlowStateMessage.decode($0) }
        #expect(decoded?.count == 2)
        #expect(decoded?.first?.key == key)
        #expect(decoded?.first?.tcpState == .finWait)
        #expect(decoded?.first?.replied == true)
        #expect(decoded?.first?.finFrom == 2)
        #expect(decoded?.first?.owner == 42)
        #expect(Array(bytes.dropLast()).withUnsafeBytes { FlowStateMessage.decode($0) } == nil)
        var badState = bytes
        badState[4 + 17] = 99
        #expect(badState.withUnsafeBytes { FlowStateMessage.decode($0) } == nil)
        #expect([9, 0, 0, 0].withUnsafeBytes { FlowStateMessage.decode($0) } == nil)  // an unknown version
        // More entries than one message holds: split, none lost.
        let many = (0..<40).map { ConnectionEntry(key: ConnectionKey(zone: 7, source: ip("10.0.0.1"), destination: ip("10.0.0.2"), sourcePort: UInt16($0), destinationPort: 80, ipProtocol: 6)) }
        let messages = FlowStateMessage.messages(many)
        #expect(messages.map { $0.withUnsafeBytes { FlowStateMessage.decode($0)?.count } } == [32, 8])

        // Installed on another host, the entry makes the reply a reply there.
        var table = ConnectionTable()
        _ = table.install(entry, now: 10)
        #expect(table.lookup(key.reversed, now: 10)?.isReply == true)
    }
}
