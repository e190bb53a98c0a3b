import HiveModel
import HivePacket
import HiveSimulation
import Testing

/// A tenant behind a gateway, a provider router with two uplinks:
///
///     vm1 10.0.1.10 ─┐                        gw 198.51.100.2/30          uplink1 192.0.2.2/28  (upstream 192.0.2.1)
///     vm2 10.0.1.11 ─┴─ bridge tenant ── router edge ─────── router provider ─┤
///                                     (10.0.1.1)      to-edge 198.51.100.1/30 └ uplink2 192.0.2.18/28 (upstream 192.0.2.17)
///
/// edge's gateway SNATs the tenant subnet to 198.51.100.2; vm2 has the
/// floating IP 198.51.100.10 on provider; the upstream routers' MACs are known.
private struct EdgeLab {
    static let tenant = BridgeID()
    static let edge = RouterID()
    static let provider = RouterID()
    static let vm1MAC = mac("02:00:00:00:01:0a")
    static let vm2MAC = mac("02:00:00:00:01:0b")
    static let edgeMAC = mac("02:00:00:00:01:01")
    static let uplink1MAC = mac("02:00:00:00:09:01")
    static let uplink2MAC = mac("02:00:00:00:09:02")
    static let upstream1MAC = mac("02:00:00:00:0a:01")
    static let upstream2MAC = mac("02:00:00:00:0a:02")
    static let vm1IP = ip("10.0.1.10")
    static let vm2IP = ip("10.0.1.11")
    static let snatIP = ip("198.51.100.2")
    static let floatingIP = ip("198.51.100.10")
    static let server = ip("203.0.113.10")

    static let vm1 = Port(id: PortID(), deviceId: tenant.uuid, deviceKind: .bridge, name: "vm1", tunnelKey: 1, mac: vm1MAC, fixedIPs: [vm1IP], portSecurity: false)
    static let vm2 = Port(id: PortID(), deviceId: tenant.uuid, deviceKind: .bridge, name: "vm2", tunnelKey: 2, mac: vm2MAC, fixedIPs: [vm2IP], portSecurity: false)
    static let tenantUplinkID = PortID()
    static let edgeTenantID = PortID()
    static let edgeGatewayID = PortID()
    static let providerEdgeID = PortID()
    static let tenantUplink = Port(id: tenantUplinkID, deviceId: tenant.uuid, deviceKind: .bridge, name: "uplink", tunnelKey: 3, peerId: edgeTenantID)
    static let edgeTenant = Port(
        id: edgeTenantID, deviceId: edge.uuid, deviceKind: .router, name: "to-tenant", tunnelKey: 4, peerId: tenantUplinkID,
        address: ip("10.0.1.1"), subnet: prefix("10.0.1.0/24"), mac: edgeMAC)
    static let edgeGateway = Port(
        id: edgeGatewayID, deviceId: edge.uuid, deviceKind: .router, name: "gateway", tunnelKey: 5, peerId: providerEdgeID,
        address: snatIP, subnet: prefix("198.51.100.0/30"))
    static let providerEdge = Port(
        id: providerEdgeID, deviceId: provider.uuid, deviceKind: .router, name: "to-edge", tunnelKey: 6, peerId: edgeGatewayID,
        address: ip("198.51.100.1"), subnet: prefix("198.51.100.0/30"))
    static let uplink1 = Port(
        id: PortID(), deviceId: provider.uuid, deviceKind: .router, name: "uplink1", tunnelKey: 20,
        address: ip("192.0.2.2"), subnet: prefix("192.0.2.0/28"), mac: uplink1MAC)
    static let uplink2 = Port(
        id: PortID(), deviceId: provider.uuid, deviceKind: .router, name: "uplink2", tunnelKey: 21,
        address: ip("192.0.2.18"), subnet: prefix("192.0.2.16/28"), mac: uplink2MAC)

    static let routes: [Route] = {
        [
            Route(routerId: edge, destination: prefix("10.0.1.0/24"), egressPortId: edgeTenantID),
            Route(routerId: edge, destination: prefix("0.0.0.0/0"), nextHopGateway: ip("198.51.100.1"), egressPortId: edgeGatewayID),
            Route(routerId: provider, destination: prefix("198.51.100.0/30"), egressPortId: providerEdgeID),
            Route(routerId: provider, destination: prefix("10.0.1.0/24"), nextHopGateway: snatIP, egressPortId: providerEdgeID),
            Route(routerId: provider, destination: prefix("0.0.0.0/0"), nextHopGateway: ip("192.0.2.1"), egressPortId: uplink1.id),
            Route(routerId: provider, destination: prefix("0.0.0.0/0"), nextHopGateway: ip("192.0.2.17"), egressPortId: uplink2.id),
        ]
    }()

    static func snapshot(gateway: Bool = true, floating: Bool = true, chains: [Chain] = [], rules: [Rule] = [], edgeChain: ChainID? = nil) -> TopologySnapshot {
        TopologySnapshot(
            bridges: [Bridge(id: tenant, name: "tenant", tunnelKey: 100)],
            routers: [
                Router(id: edge, name: "edge", outboundChainId: edgeChain, gateway: gateway ? RouterGateway(portId: edgeGatewayID) : nil),
                Router(id: provider, name: "provider"),
            ],
            ports: [vm1, vm2, tenantUplink, edgeTenant, edgeGateway, providerEdge, uplink1, uplink2],
            routes: routes, chains: chains, rules: rules,
            floatingIPs: floating ? [FloatingIP(routerId: provider, address: floatingIP, portId: vm2.id)] : [])
    }

    static var state: SimulationState {
        var state = SimulationState()
        state.learn(vm1MAC, on: vm1.id, in: tenant)
        state.learn(vm2MAC, on: vm2.id, in: tenant)
        state.learn(vm1IP, at: vm1MAC, in: edge)
        state.learn(vm2IP, at: vm2MAC, in: edge)
        state.learn(ip("192.0.2.1"), at: upstream1MAC, in: provider)
        state.learn(ip("192.0.2.17"), at: upstream2MAC, in: provider)
        // Blocks 625 (ports 40000-40063) and 700 of the SNAT address are this host's.
        state.natBlocks[snatIP] = [625, 700]
        return state
    }

    static func fromVM(_ vm: Port = vm1, to destination: IPv4.Address = server, protocol: PacketDescription.TransportKind = .tcp, sourcePort: UInt16 = 40000, port: UInt16 = 80, flags: TCP.Flags = .syn) -> [UInt8] {
        PacketDescription(
            sourceMAC: vm.mac!, destinationMAC: edgeMAC, sourceIP: vm.fixedIPs[0], destinationIP: destination, protocol: `protocol`,
            sourcePort: sourcePort, destinationPort: port, tcpFlags: flags, icmpType: 8, icmpIdentifier: 77, payload: Array(0..<8)).frame
    }

    static func fromOutside(to destination: IPv4.Address, from source: IPv4.Address = server, protocol: PacketDescription.TransportKind = .tcp, sourcePort: UInt16 = 80, port: UInt16, flags: TCP.Flags = [.syn, .ack], uplink: Port = uplink1) -> [UInt8] {
        PacketDescription(
            sourceMAC: uplink == uplink1 ? upstream1MAC : upstream2MAC, destinationMAC: uplink.mac!, sourceIP: source, destinationIP: destination,
            protocol: `protocol`, sourcePort: sourcePort, destinationPort: port, tcpFlags: flags, icmpType: 0, icmpIdentifier: port,
            payload: Array(0..<8)).frame
    }
}

/// Simulates and, when forwarded, commits the connections, as the agent does.
private func step(
    _ snapshot: TopologySnapshot, _ table: inout ConnectionTable, _ frame: [UInt8], from inPort: UInt32, state: SimulationState = EdgeLab.state
) throws -> SimulationResult {
    let result = try snapshot.simulate(frame: frame, inPort: inPort, state: state, connections: table, now: 1_000, options: SimulationOptions(recordsTrace: true))
    if case .output = result.decision {
        let key = try FlowKey(parsing: frame, inPort: inPort)
        for observation in result.connections { _ = table.apply(observation, tcpFlags: key.tcpFlags, now: 1_000) }
    }
    return result
}

/// The frame as it leaves: the result's actions applied, checksums checked.
private func leaving(_ frame: [UInt8], _ result: SimulationResult) throws -> ParsedIPv4 {
    var bytes = frame
    for action in result.actions { action.apply(to: &bytes) }
    return try ParsedIPv4(bytes)
}

private func ports(of parsed: ParsedIPv4) -> (source: UInt16, destination: UInt16) {
    (UInt16(parsed.transport[0]) << 8 | UInt16(parsed.transport[1]), UInt16(parsed.transport[2]) << 8 | UInt16(parsed.transport[3]))
}

@Suite("NAT: gateways, floating IPs, NAT rules, SNAT ports, uplink ECMP")
struct NATTests {
    fileprivate typealias Lab = EdgeLab

    @Test func aTenantConnectionLeavesWithTheGatewaysAddressAndItsRepliesComeBack() throws {
        let snapshot = Lab.snapshot()
        #expect(snapshot.problems.isEmpty, "\(snapshot.problems)")
        var table = ConnectionTable()
        let syn = Lab.fromVM()
        let out = try step(snapshot, &table, syn, from: 1)
        guard case .output(let port) = out.decision else { Issue.record("\(out.printedTrace(snapshot))"); return }
        #expect(port == Lab.uplink1.id || port == Lab.uplink2.id)
        let sent = try leaving(syn, out)
        #expect(sent.ip.source == Lab.snatIP)
        #expect(sent.ip.destination == Lab.server)
        // The port is kept: its block (625) is this host's and nobody uses it.
        #expect(ports(of: sent).source == 40000)
        #expect(out.printedTrace(snapshot).contains("NAT (gateway SNAT)"), "\(out.printedTrace(snapshot))")

        // The reply comes in through either uplink and reaches vm1 untranslated.
        for uplink in [Lab.uplink1, Lab.uplink2] {
            let reply = Lab.fromOutside(to: Lab.snatIP, port: 40000, uplink: uplink)
            let back = try step(snapshot, &table, reply, from: uplink.tunnelKey)
            #expect(back.decision == .output(Lab.vm1.id), "\(back.printedTrace(snapshot))")
            let delivered = try leaving(reply, back)
            #expect(delivered.ip.destination == Lab.vm1IP)
            #expect(delivered.ip.source == Lab.server)
            #expect(ports(of: delivered).destination == 40000)
        }
    }

    @Test func aSecondVMOnTheSamePortToTheSameServerGetsAnotherPort() throws {
        let snapshot = Lab.snapshot(floating: false)
        var table = ConnectionTable()
        let first = try step(snapshot, &table, Lab.fromVM(Lab.vm1), from: 1)
        let second = try step(snapshot, &table, Lab.fromVM(Lab.vm2), from: 2)
        let firstPort = ports(of: try leaving(Lab.fromVM(Lab.vm1), first)).source
        let secondPort = ports(of: try leaving(Lab.fromVM(Lab.vm2), second)).source
        #expect(firstPort == 40000)
        #expect(secondPort != 40000)
        // Only ports of this host's blocks.
        #expect([625, 700].contains(NATBlock.of(secondPort)), "port \(secondPort)")
        // Each reply finds its own VM.
        let back = try step(snapshot, &table, Lab.fromOutside(to: Lab.snatIP, port: secondPort), from: Lab.uplink1.tunnelKey)
        #expect(back.decision == .output(Lab.vm2.id), "\(back.printedTrace(snapshot))")
    }

    @Test func manyConnectionsToOneServerPortNeverShareATranslation() throws {
        let snapshot = Lab.snapshot(floating: false)
        var table = ConnectionTable()
        var seen = Set<UInt16>()
        for index in 0..<128 {
            let vm = index.isMultiple(of: 2) ? Lab.vm1 : Lab.vm2
            let frame = Lab.fromVM(vm, sourcePort: UInt16(50000 + index / 2))
            let result = try step(snapshot, &table, frame, from: vm.tunnelKey)
            guard case .output = result.decision else { Issue.record("connection \(index): \(result.decision)"); return }
            let port = ports(of: try leaving(frame, result)).source
            #expect(seen.insert(port).inserted, "port \(port) given twice")
        }
        // Both blocks are full now: the next one waits for a new block.
        let more = try step(snapshot, &table, Lab.fromVM(Lab.vm1, sourcePort: 61000), from: 1)
        guard case .pendingNATPorts(let address, let first, let last, let preferred) = more.decision else {
            Issue.record("\(more.decision)")
            return
        }
        #expect(address == Lab.snatIP && first == 1024 && last == 65535 && preferred == 61000)
        // The table counts them per block and remote end: the search skips full blocks without probing.
        let blocks = Set(seen.map(NATBlock.of))
        #expect(blocks.count == 2)
        for block in blocks {
            let reply = ConnectionKey(zone: 0, source: Lab.server, destination: Lab.snatIP, sourcePort: 80, destinationPort: 0, ipProtocol: 6)
            let zones = Set(table.liveEntries(now: 1_000).map(\.replyKey.zone))
            let used = zones.map { zone in
                var key = reply
                key.zone = zone
                return table.sourceTranslations(inBlock: block, toward: key)
            }.max() ?? 0
            #expect(used == NATBlock.size, "block \(block): \(used) of \(NATBlock.size) in use toward the server's port 80")
        }
        // Another remote end (the server's port 443) still finds every port free.
        let other = try step(snapshot, &table, Lab.fromVM(Lab.vm1, sourcePort: 61001, port: 443), from: 1)
        var leftByUplink = false
        if case .output = other.decision { leftByUplink = true }
        #expect(leftByUplink, "\(other.decision)")
    }

    @Test func withoutBlocksSNATWaitsForPorts() throws {
        let snapshot = Lab.snapshot()
        var state = Lab.state
        state.natBlocks = [:]
        var table = ConnectionTable()
        let result = try step(snapshot, &table, Lab.fromVM(), from: 1, state: state)
        #expect(result.decision == .pendingNATPorts(address: Lab.snatIP, firstPort: 1024, lastPort: 65535, preferredPort: 40000))
        #expect(!result.isCacheable)
        #expect(table.count == 0, "nothing committed for a held packet")
    }

    @Test func theOutsideReachesAVMThroughItsFloatingIPAndTheReplyLeavesFromIt() throws {
        let snapshot = Lab.snapshot()
        var table = ConnectionTable()
        let syn = Lab.fromOutside(to: Lab.floatingIP, sourcePort: 51000, port: 80, flags: .syn, uplink: Lab.uplink2)
        let inbound = try step(snapshot, &table, syn, from: Lab.uplink2.tunnelKey)
        #expect(inbound.decision == .output(Lab.vm2.id), "\(inbound.printedTrace(snapshot))")
        let delivered = try leaving(syn, inbound)
        #expect(delivered.ip.destination == Lab.vm2IP)
        #expect(delivered.ip.source == Lab.server)
        #expect(ports(of: delivered) == (51000, 80))

        let synAck = Lab.fromVM(Lab.vm2, to: Lab.server, sourcePort: 80, port: 51000, flags: [.syn, .ack])
        let reply = try step(snapshot, &table, synAck, from: 2)
        guard case .output(let port) = reply.decision else { Issue.record("\(reply.printedTrace(snapshot))"); return }
        #expect(port == Lab.uplink1.id || port == Lab.uplink2.id)
        let sent = try leaving(synAck, reply)
        #expect(sent.ip.source == Lab.floatingIP, "un-DNAT, not the gateway's SNAT")
        #expect(ports(of: sent) == (80, 51000))
    }

    @Test func aVMWithAFloatingIPOpensConnectionsFromIt() throws {
        let snapshot = Lab.snapshot()
        var table = ConnectionTable()
        let syn = Lab.fromVM(Lab.vm2, sourcePort: 41000)
        let out = try step(snapshot, &table, syn, from: 2)
        let sent = try leaving(syn, out)
        #expect(sent.ip.source == Lab.floatingIP, "\(out.printedTrace(snapshot))")
        #expect(ports(of: sent).source == 41000)
        let back = try step(snapshot, &table, Lab.fromOutside(to: Lab.floatingIP, port: 41000), from: Lab.uplink1.tunnelKey)
        #expect(back.decision == .output(Lab.vm2.id), "\(back.printedTrace(snapshot))")
        #expect(try leaving(Lab.fromOutside(to: Lab.floatingIP, port: 41000), back).ip.destination == Lab.vm2IP)
    }

    @Test func pingsAreTranslatedByTheirIdentifier() throws {
        let snapshot = Lab.snapshot(floating: false)
        var table = ConnectionTable()
        let request = Lab.fromVM(protocol: .icmp)
        let out = try step(snapshot, &table, request, from: 1)
        let sent = try leaving(request, out)
        #expect(sent.ip.source == Lab.snatIP)
        let identifier = UInt16(sent.transport[4]) << 8 | UInt16(sent.transport[5])
        #expect([625, 700].contains(NATBlock.of(identifier)), "identifier \(identifier) from this host's blocks")
        let reply = Lab.fromOutside(to: Lab.snatIP, protocol: .icmp, port: identifier)
        let back = try step(snapshot, &table, reply, from: Lab.uplink1.tunnelKey)
        #expect(back.decision == .output(Lab.vm1.id), "\(back.printedTrace(snapshot))")
        let delivered = try leaving(reply, back)
        #expect(delivered.ip.destination == Lab.vm1IP)
        #expect(UInt16(delivered.transport[4]) << 8 | UInt16(delivered.transport[5]) == 77)
    }

    @Test func theGatewayWithoutSNATRoutesUntranslated() throws {
        let snapshot = Lab.snapshot(gateway: false, floating: false)
        var table = ConnectionTable()
        let out = try step(snapshot, &table, Lab.fromVM(), from: 1)
        #expect(try leaving(Lab.fromVM(), out).ip.source == Lab.vm1IP)
    }

    @Test func snatAndDNATRulesTranslateNewConnections() throws {
        let chain = Chain(name: "edge-out")
        let dnatChain = Chain(name: "edge-in")
        let snatRule = Rule(chainId: chain.id, conditions: RuleConditions(destinationPrefix: Match(prefix("203.0.113.0/24"))),
                            action: .snat(NATTarget(firstAddress: ip("198.51.100.3"), firstPort: 2000, lastPort: 2063)))
        let dnatRule = Rule(chainId: dnatChain.id, conditions: RuleConditions(destinationPrefix: Match(prefix("198.51.100.20/32"))),
                            action: .dnat(NATTarget(address: Lab.vm1IP, ports: 8080...8080)))
        var chainWithRule = chain
        chainWithRule.ruleIds = [snatRule.id]
        var dnatWithRule = dnatChain
        dnatWithRule.ruleIds = [dnatRule.id]
        let snapshot = TopologySnapshot(
            bridges: [Bridge(id: Lab.tenant, name: "tenant", tunnelKey: 100)],
            routers: [
                Router(id: Lab.edge, name: "edge", outboundChainId: chain.id),
                Router(id: Lab.provider, name: "provider", inboundChainId: dnatChain.id),
            ],
            ports: [Lab.vm1, Lab.vm2, Lab.tenantUplink, Lab.edgeTenant, Lab.edgeGateway, Lab.providerEdge, Lab.uplink1, Lab.uplink2],
            routes: Lab.routes, chains: [chainWithRule, dnatWithRule], rules: [snatRule, dnatRule])
        #expect(snapshot.problems.isEmpty, "\(snapshot.problems)")
        var state = Lab.state
        state.natBlocks = [ip("198.51.100.3"): [31]]  // ports 1984-2047
        var table = ConnectionTable()
        let out = try step(snapshot, &table, Lab.fromVM(), from: 1, state: state)
        let sent = try leaving(Lab.fromVM(), out)
        #expect(sent.ip.source == ip("198.51.100.3"), "\(out.printedTrace(snapshot))")
        #expect((2000...2047).contains(ports(of: sent).source), "in the rule's range and this host's block: \(ports(of: sent).source)")

        // DNAT on the provider: 198.51.100.20:80 -> vm1:8080.
        let inbound = Lab.fromOutside(to: ip("198.51.100.20"), sourcePort: 52000, port: 80, flags: .syn)
        let result = try step(snapshot, &table, inbound, from: Lab.uplink1.tunnelKey, state: state)
        #expect(result.decision == .output(Lab.vm1.id), "\(result.printedTrace(snapshot))")
        let delivered = try leaving(inbound, result)
        #expect(delivered.ip.destination == Lab.vm1IP)
        #expect(ports(of: delivered).destination == 8080)
    }

    @Test func uplinksAnswerARPForTheirRoutersNATAddressesOnTheirSubnet() throws {
        // A floating IP on the uplink's own subnet (the Neutron way): the upstream ARPs for it.
        let onLink = FloatingIP(routerId: Lab.provider, address: ip("192.0.2.9"), portId: Lab.vm2.id)
        let snapshot = TopologySnapshot(
            bridges: [Bridge(id: Lab.tenant, name: "tenant", tunnelKey: 100)],
            routers: [Router(id: Lab.edge, name: "edge"), Router(id: Lab.provider, name: "provider")],
            ports: [Lab.vm1, Lab.vm2, Lab.tenantUplink, Lab.edgeTenant, Lab.edgeGateway, Lab.providerEdge, Lab.uplink1, Lab.uplink2],
            routes: Lab.routes, floatingIPs: [onLink])
        let request = PacketDescription(sourceMAC: Lab.upstream1MAC, destinationMAC: .broadcast, sourceIP: ip("192.0.2.1"), destinationIP: ip("192.0.2.9"), protocol: .arp).frame
        let answered = try snapshot.simulate(frame: request, inPort: Lab.uplink1.tunnelKey)
        #expect(answered.decision == .consumed)
        let reply = try #require(answered.generatedPackets.first)
        #expect(reply.kind == .arpReply)
        let arp = try ARP.Packet(parsing: Array(reply.frame[14...]))
        #expect(arp.senderIP == ip("192.0.2.9") && arp.senderMAC == Lab.uplink1MAC)
        // Not on uplink2's subnet, and not an address of the router: no answer.
        let other = PacketDescription(sourceMAC: Lab.upstream2MAC, destinationMAC: .broadcast, sourceIP: ip("192.0.2.17"), destinationIP: ip("192.0.2.9"), protocol: .arp).frame
        #expect(try snapshot.simulate(frame: other, inPort: Lab.uplink2.tunnelKey).decision != .consumed)
    }

    @Test func equalCostUplinksSpreadFlowsConsistentlyAndSkipADeadGateway() throws {
        let snapshot = Lab.snapshot(gateway: false, floating: false)
        var state = Lab.state
        func uplink(_ sourcePort: UInt16, _ state: SimulationState) throws -> PortID? {
            let result = try snapshot.simulate(frame: Lab.fromVM(sourcePort: sourcePort), inPort: 1, state: state)
            if case .output(let port) = result.decision { return port }
            return nil
        }
        var chosen: [UInt16: PortID] = [:]
        for port in UInt16(30000)..<30200 { chosen[port] = try uplink(port, state) }
        let onFirst = chosen.values.filter { $0 == Lab.uplink1.id }.count
        #expect(onFirst > 60 && onFirst < 140, "both uplinks carry flows: \(onFirst) of 200 on uplink1")

        // uplink1's host is down: every flow takes uplink2; uplink2's flows do not move.
        state.unavailablePorts = [Lab.uplink1.tunnelKey]
        for port in UInt16(30000)..<30200 {
            #expect(try uplink(port, state) == Lab.uplink2.id)
        }

        // A third uplink moves only the flows it takes (rendezvous hashing).
        let uplink3 = Port(id: PortID(), deviceId: Lab.provider.uuid, deviceKind: .router, name: "uplink3", tunnelKey: 22,
                           address: ip("192.0.2.34"), subnet: prefix("192.0.2.32/28"))
        let grown = TopologySnapshot(
            bridges: [Bridge(id: Lab.tenant, name: "tenant", tunnelKey: 100)],
            routers: [Router(id: Lab.edge, name: "edge"), Router(id: Lab.provider, name: "provider")],
            ports: [Lab.vm1, Lab.vm2, Lab.tenantUplink, Lab.edgeTenant, Lab.edgeGateway, Lab.providerEdge, Lab.uplink1, Lab.uplink2, uplink3],
            routes: Lab.routes + [Route(routerId: Lab.provider, destination: prefix("0.0.0.0/0"), nextHopGateway: ip("192.0.2.33"), egressPortId: uplink3.id)])
        var grownState = Lab.state
        grownState.learn(ip("192.0.2.33"), at: mac("02:00:00:00:0a:03"), in: Lab.provider)
        var moved = 0
        for port in UInt16(30000)..<30200 {
            let result = try grown.simulate(frame: Lab.fromVM(sourcePort: port), inPort: 1, state: grownState)
            guard case .output(let now) = result.decision else { continue }
            if now != chosen[port] {
                moved += 1
                #expect(now == uplink3.id, "a flow moved between the old uplinks")
            }
        }
        #expect(moved > 20 && moved < 120, "about a third of the flows move to the new uplink: \(moved)")
    }

    @Test func flowStateCarriesTheTranslation() throws {
        let key = ConnectionKey(zone: 0x0100_0001, source: Lab.vm1IP, destination: Lab.server, sourcePort: 40000, destinationPort: 80, ipProtocol: 6)
        let reply = ConnectionKey(zone: key.zone, source: Lab.server, destination: Lab.snatIP, sourcePort: 80, destinationPort: 40001, ipProtocol: 6)
        let entry = ConnectionEntry(key: key, replyKey: reply, tcpState: .established, replied: true, owner: 1)
        let bytes = FlowStateMessage.encode([entry])
        let decoded = try #require(bytes.withUnsafeBytes { FlowStateMessage.decode($0) })
        #expect(decoded.count == 1)
        #expect(decoded[0].key == key && decoded[0].replyKey == reply && decoded[0].isTranslated)

        // Installed on another host, the reply finds the connection and its translation.
        var table = ConnectionTable()
        _ = table.install(decoded[0], now: 1_000)
        let found = try #require(table.lookup(reply, now: 1_000))
        #expect(found.isReply)
        #expect(table.entry(found.slot)?.translated(isReply: true) == key.reversed)
    }

    @Test func aTraceThatAssumesANewConnectionShowsTheTranslation() throws {
        // `hive trace`: no table, a new connection assumed, SNAT ports assumed kept.
        let snapshot = Lab.snapshot()
        var state = Lab.state
        state.natBlocks = [:]
        let options = SimulationOptions(connectionState: .new, recordsTrace: true, assumesNATPorts: true)
        let inbound = Lab.fromOutside(to: Lab.floatingIP, sourcePort: 51000, port: 80, flags: .syn)
        let result = try snapshot.simulate(frame: inbound, inPort: Lab.uplink1.tunnelKey, state: state, options: options)
        #expect(result.decision == .output(Lab.vm2.id), "\(result.printedTrace(snapshot))")
        #expect(result.printedTrace(snapshot).contains("NAT (floating IP DNAT)"))
        let outbound = try snapshot.simulate(frame: Lab.fromVM(), inPort: 1, state: state, options: options)
        #expect(result.actions.contains(.setIPv4Destination(Lab.vm2IP)))
        #expect(outbound.actions.contains(.setIPv4Source(Lab.snatIP)), "\(outbound.printedTrace(snapshot))")
        #expect(!outbound.actions.contains { if case .setSourcePort = $0 { true } else { false } }, "the port kept")
    }

    /// The quoted IPv4 header of an ICMP error (after the outer IPv4 and ICMP headers): checksum verified.
    private func quoted(_ parsed: ParsedIPv4) -> (source: IPv4.Address, destination: IPv4.Address, sourcePort: UInt16, destinationPort: UInt16) {
        // The quoted datagram is cut after 8 bytes of its payload: read by hand, not parsed.
        let inner = Array(parsed.transport[8...])
        let length = Int(inner[0] & 0x0F) * 4
        #expect(InternetChecksum.verifies(Array(inner[..<length])), "quoted header checksum")
        func address(_ at: Int) -> IPv4.Address {
            IPv4.Address(UInt32(inner[at]) << 24 | UInt32(inner[at + 1]) << 16 | UInt32(inner[at + 2]) << 8 | UInt32(inner[at + 3]))
        }
        let ports = Array(inner[length...])
        return (address(12), address(16), UInt16(ports[0]) << 8 | UInt16(ports[1]), UInt16(ports[2]) << 8 | UInt16(ports[3]))
    }

    @Test func anICMPErrorAboutASNATdConnectionReachesItsVMAsItsOwn() throws {
        let snapshot = Lab.snapshot(floating: false)
        var table = ConnectionTable()
        var state = Lab.state
        state.natBlocks[Lab.snatIP] = [700]  // port 40000 is not kept: 44800-44863
        let syn = Lab.fromVM()
        let out = try step(snapshot, &table, syn, from: 1, state: state)
        var sent = syn
        for action in out.actions { action.apply(to: &sent) }
        let translatedPort = ports(of: try ParsedIPv4(sent)).source
        #expect(translatedPort != 40000)
        // The upstream router cannot forward it without fragmenting: "fragmentation needed", to the SNAT address.
        let uplink = out.decision == .output(Lab.uplink1.id) ? Lab.uplink1 : Lab.uplink2
        let error = try ICMPv4.unreachableFrame(
            code: .fragmentationNeeded, nextHopMTU: 1280, about: sent, sourceMAC: Lab.upstream1MAC, sourceIP: ip("192.0.2.1"))
        let result = try step(snapshot, &table, error, from: uplink.tunnelKey, state: state)
        #expect(result.decision == .output(Lab.vm1.id), "\(result.printedTrace(snapshot))")
        let delivered = try leaving(error, result)
        #expect(delivered.ip.destination == Lab.vm1IP, "to the VM")
        #expect(delivered.ip.source == ip("192.0.2.1"), "from the router that sent it")
        let inner = quoted(delivered)
        #expect(inner.source == Lab.vm1IP && inner.sourcePort == 40000, "quoting the segment as vm1 sent it")
        #expect(inner.destination == Lab.server && inner.destinationPort == 80)
        #expect(!result.isCacheable, "each error is simulated (it depends on its payload)")
    }

    @Test func anICMPErrorFromAVMBehindAFloatingIPLeavesFromTheFloatingIP() throws {
        let snapshot = Lab.snapshot()
        var table = ConnectionTable()
        let datagram = Lab.fromOutside(to: Lab.floatingIP, protocol: .udp, sourcePort: 53000, port: 9999)
        let inbound = try step(snapshot, &table, datagram, from: Lab.uplink1.tunnelKey)
        #expect(inbound.decision == .output(Lab.vm2.id), "\(inbound.printedTrace(snapshot))")
        var received = datagram
        for action in inbound.actions { action.apply(to: &received) }
        // Nothing listens on 9999 in vm2: port unreachable, from vm2 to the client.
        let error = try ICMPv4.unreachableFrame(code: .port, about: received, sourceMAC: Lab.vm2MAC, sourceIP: Lab.vm2IP)
        var fixed = error
        fixed[0..<6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01]  // vm2 sends it to its gateway's MAC
        let result = try step(snapshot, &table, fixed, from: 2)
        guard case .output(let port) = result.decision else { Issue.record("\(result.printedTrace(snapshot))"); return }
        #expect(port == Lab.uplink1.id || port == Lab.uplink2.id)
        let sent = try leaving(fixed, result)
        #expect(sent.ip.source == Lab.floatingIP, "from the floating IP, not the fixed one")
        #expect(sent.ip.destination == Lab.server)
        let inner = quoted(sent)
        #expect(inner.destination == Lab.floatingIP && inner.destinationPort == 9999, "quoting the datagram as the client sent it")
        #expect(inner.source == Lab.server && inner.sourcePort == 53000)
    }
}
