import Foundation
import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Testing
@testable import HiveAgent

import struct HiveModel.Port

/// How an agent's report reads: flow keys and actions in words, and flow
/// tags (hashes) named again from the view. No datapath, no namespaces.
@Suite struct AgentReportTests {
    let bridge = Bridge(name: "blue", tunnelKey: 9)
    let router = Router(name: "edge")
    let chain = Chain(name: "web-in")
    let group = SecurityGroup(name: "web")
    let addresses = IPAddressGroup(name: "office")
    let vm1MAC = EthernetAddress(parsing: "02:00:0a:00:01:0b")!
    let vm2MAC = EthernetAddress(parsing: "02:00:0a:00:01:0c")!
    let learnedMAC = EthernetAddress(parsing: "02:aa:00:00:00:01")!
    let vm1: Port
    let vm2: Port
    let rule: Rule
    let route: Route

    init() {
        var vm1 = Port(bridge: bridge.id, name: "vm1", mac: vm1MAC, fixedIPs: [IPv4.Address(10, 0, 1, 11)])
        vm1.tunnelKey = 5
        var vm2 = Port(bridge: bridge.id, name: "vm2", mac: vm2MAC, fixedIPs: [IPv4.Address(10, 0, 1, 12)])
        vm2.tunnelKey = 6
        self.vm1 = vm1
        self.vm2 = vm2
        rule = Rule(chainId: chain.id, action: .drop)
        route = Route(routerId: router.id, destination: IPv4.Prefix(parsing: "0.0.0.0/0")!, nextHopGateway: IPv4.Address(192, 0, 2, 1))
    }

    var view: AgentView {
        var chain = chain
        chain.ruleIds = [rule.id]
        let snapshot = TopologySnapshot(
            bridges: [bridge], routers: [router], ports: [vm1, vm2], routes: [route], chains: [chain], rules: [rule],
            ipAddressGroups: [addresses], securityGroups: [group])
        var state = SimulationState()
        state.learn(learnedMAC, on: vm2.id, in: bridge.id)
        state.learn(IPv4.Address(192, 0, 2, 1), at: learnedMAC, in: router.id)
        return AgentView(topology: TopologyIslands(snapshot), state: state, locations: [vm1.id: .local, vm2.id: .remote(IPv4.Address(100, 64, 0, 2))], version: 1)
    }

    /// vm1's ping to vm2, as the datapath keys it.
    func echoRequest() -> FlowKey {
        var key = FlowKey(inPort: 5)
        key.ethernetSource = vm1MAC
        key.ethernetDestination = vm2MAC
        key.etherType = .ipv4
        key.ipv4Source = IPv4.Address(10, 0, 1, 11)
        key.ipv4Destination = IPv4.Address(10, 0, 1, 12)
        key.ipProtocol = .icmp
        key.timeToLive = 64
        key.icmpType = 8
        key.icmpIdentifier = 7
        return key
    }

    @Test func everyTagTheViewCanProduceIsNamed() {
        let names = FlowTagNames(view: view)
        let expected: [(InvalidationTag, String)] = [
            (.bridge(bridge.id), "bridge:blue"),
            (.router(router.id), "router:edge"),
            (.routeTable(router.id), "route-table:edge"),
            (.route(route.id), "route:edge 0.0.0.0/0"),
            (.port(vm1.id), "port:blue/vm1"),
            (.chain(chain.id), "chain:web-in"),
            (.rule(rule.id), "rule:web-in#1"),
            (.ipAddressGroup(addresses.id), "ip-address-group:office"),
            (.securityGroup(group.id), "security-group:web"),
            (.securityGroupMembers(group.id), "security-group-members:web"),
            (.macEntry(bridge.id, learnedMAC), "mac:blue/02:aa:00:00:00:01"),
            (.macEntry(bridge.id, vm1MAC), "mac:blue/02:00:0a:00:01:0b"),
            (.arpEntry(router.id, IPv4.Address(192, 0, 2, 1)), "arp:edge/192.0.2.1"),
        ]
        for (tag, name) in expected {
            #expect(names.name(flowTag(tag)) == name, "\(tag)")
        }
        #expect(names.name(0xABCD) == "0xabcd", "an unknown tag prints as its hash")
    }

    @Test func lookupsThatFoundNothingAreNamedFromTheFlowsAddresses() throws {
        var key = echoRequest()
        let unknown = EthernetAddress(parsing: "02:99:00:00:00:99")!
        key.ethernetDestination = unknown
        key.ipv4Destination = IPv4.Address(10, 9, 9, 9)
        let flow = DatapathReport.Flow(
            key: key, actions: FlowActions(rewrites: [.setEthernetDestination(vm2MAC)]),
            tags: [flowTag(.bridge(bridge.id)), flowTag(.router(router.id)), flowTag(.macEntry(bridge.id, unknown)),
                   flowTag(.arpEntry(router.id, IPv4.Address(10, 9, 9, 9)))],
            packets: 0, bytes: 0, age: 0, idle: 0, hardTimeout: 0)
        var names = FlowTagNames(view: view)
        #expect(names.name(flowTag(.macEntry(bridge.id, unknown))).hasPrefix("0x"), "no table holds it")
        names.addLookups(of: flow)
        #expect(names.name(flowTag(.macEntry(bridge.id, unknown))) == "mac:blue/02:99:00:00:00:99")
        #expect(names.name(flowTag(.arpEntry(router.id, IPv4.Address(10, 9, 9, 9)))) == "arp:edge/10.9.9.9")
    }

    @Test func trackedConnectionsAreNamedByTheDatapathsHandler() {
        let (_, events) = AsyncStream<UpcallEvent>.makeStream()
        let upcalls = SimulationUpcalls(shared: SharedView(), events: events)
        let key = ConnectionKey(
            zone: 3, source: IPv4.Address(10, 0, 1, 11), destination: IPv4.Address(10, 0, 1, 12), sourcePort: 40000, destinationPort: 80,
            ipProtocol: IPProtocol.tcp.rawValue)
        // In as a restarted agent reads its saved connections: each message after its 2-byte length.
        var saved: [UInt8] = []
        for message in FlowStateMessage.messages([ConnectionEntry(key: key, tcpState: .established, replied: true)]) {
            saved += [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
        }
        #expect(upcalls.restoreConnections(saved) == 1)
        let names = upcalls.flowTagNames()
        #expect(names[flowTag(.connection(key.tag))] == "connection:tcp 10.0.1.11:40000 > 10.0.1.12:80, zone 0x3")
        #expect(names[flowTag(.connection(key.reversed.tag))] == "connection:tcp 10.0.1.12:80 > 10.0.1.11:40000, zone 0x3 (reply)")
    }

    @Test func aFlowKeyReadsLikeTheTraceFlagsThatWouldSimulateIt() throws {
        let match = FlowMatch(echoRequest(), portName: "blue/vm1")
        #expect(match.inPort == 5 && match.etherType == "ipv4" && match.ipProtocol == "icmp")
        #expect(match.sourceIP == "10.0.1.11" && match.destinationIP == "10.0.1.12")
        #expect(match.icmpType == 8 && match.icmpCode == 0 && match.icmpIdentifier == 7)
        #expect(match.sourcePort == nil && match.tcpFlags == nil && match.vlan == nil)
        #expect(match.description == "in-port=blue/vm1 src-mac=02:00:0a:00:01:0b dst-mac=02:00:0a:00:01:0c ipv4 src-ip=10.0.1.11 "
            + "dst-ip=10.0.1.12 protocol=icmp icmp-type=8 icmp-code=0 icmp-id=7 ttl=64")

        var tcp = echoRequest()
        tcp.ipProtocol = .tcp
        tcp.sourcePort = 40000
        tcp.destinationPort = 80
        tcp.tcpFlags = [.syn, .ack]
        let tcpMatch = FlowMatch(tcp, portName: nil)
        #expect(tcpMatch.tcpFlags == "ack,syn" && tcpMatch.icmpType == nil && tcpMatch.destinationPort == 80)
        #expect(tcpMatch.description.hasPrefix("in-port=#5 "))
    }

    @Test func actionsNamePortsHostsAndDropReasons() {
        let view = view
        let tunnel = FlowActions(
            rewrites: [.setEthernetSource(vm1MAC), .decrementTimeToLive, .translate(.source(IPv4.Address(198, 51, 100, 2)))],
            outputs: [.tunnel(host: IPv4.Address(100, 64, 0, 2), portKey: 6), .local(portKey: 5)], tunnelMTU: 1442)
        let actions = FlowActionList(tunnel, view: view, interfaces: [5: "tap-vm1"], hostNames: [IPv4.Address(100, 64, 0, 2): "h2"])
        #expect(actions.rewrites == ["set src-mac 02:00:0a:00:01:0b", "decrement ttl", "set src-ip 198.51.100.2"])
        #expect(actions.outputs.map(\.description) == ["blue/vm2 via h2 (100.64.0.2)", "blue/vm1"])
        #expect(actions.outputs[1].interface == "tap-vm1" && actions.drop == nil && actions.tunnelMTU == 1442)

        // A flood sent once to h2 on blue's flood key (its tunnel key, 9).
        let flood = FlowActionList(
            FlowActions(outputs: [.local(portKey: 5), .tunnelFlood(host: IPv4.Address(100, 64, 0, 2), floodKey: 9)]), view: view,
            interfaces: [5: "tap-vm1"], hostNames: [IPv4.Address(100, 64, 0, 2): "h2"])
        #expect(flood.outputs.map(\.description) == ["blue/vm1", "flood blue via h2 (100.64.0.2)"])
        #expect(flood.outputs[1].floodBridge == "blue" && flood.outputs[1].port == nil && flood.outputs[1].portKey == 9)

        let spoofed = FlowActionList(FlowActions(dropCode: DropCode.code(for: .spoofed(vm1.id, .sourceIP))), view: view, interfaces: [:], hostNames: [:])
        #expect(spoofed.drop == "spoofed_ip" && spoofed.description == "drop (spoofed_ip)")
        let answered = FlowActionList(FlowActions(dropCode: FlowActions.answered), view: view, interfaces: [:], hostNames: [:])
        #expect(answered.description == "answered by the agent")
    }

    @Test func theUpcallRateIsMeasuredOverTheLastTenSeconds() {
        let rates = UpcallRates()
        let start = ContinuousClock.now
        #expect(rates.rate(current: 5, now: start) == (0, 0), "no sample yet")
        for second in 0...20 {
            rates.record(UInt64(second * 100), at: start + .seconds(second))
        }
        // Kept: the newest sample at least 10 s old (second 10) and those after it.
        let rate = rates.rate(current: 2_000, now: start + .seconds(20))
        #expect(rate.perSecond == 100 && rate.interval == 10)
    }

    @Test func theAPIReadsLearnedMACsWhereTheAgentsWriteThem() {
        let mac = EthernetAddress(parsing: "02:00:00:00:00:01")!
        #expect(NSDBMirror.macKey(bridge.id, mac) == TopologyKeys.learnedMACs(bridge.id) + mac.description)
    }
}
