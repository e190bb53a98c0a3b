import HiveModel
import HivePacket
import HiveSimulation

/// The benchmark topologies, built as plain values (no store): ids, links
/// and tunnel keys set by hand as the repository would.
enum Topologies {
    static let vm1MAC = EthernetAddress(0x0200_0000_010A)
    static let vm3MAC = EthernetAddress(0x0200_0000_020A)
    static let leftGatewayMAC = EthernetAddress(0x0200_0000_0101)
    static let rightGatewayMAC = EthernetAddress(0x0200_0000_0201)
    static let vm1IP = IPv4.Address(10, 0, 1, 10)
    static let vm3IP = IPv4.Address(10, 0, 2, 10)

    /// vm1's DHCP DISCOVER, broadcast from 0.0.0.0.
    static let dhcpDiscover: [UInt8] = {
        let message = DHCPv4.Message(
            opcode: .request, transactionID: 0x2A2A_2A2A, flags: 0x8000, clientMAC: vm1MAC,
            options: [.messageType(.discover), .parameterRequestList([1, 3, 6, 12, 15, 26, 28, 121])])
        return PacketDescription(
            sourceMAC: vm1MAC, destinationMAC: .broadcast, sourceIP: .any, destinationIP: .broadcast,
            protocol: .udp, sourcePort: 68, destinationPort: 67, payload: message.bytes).frame
    }()

    /// A TCP SYN from vm1 to vm3's port 80, via the gateway.
    static let tcpFrame = PacketDescription(
        sourceMAC: vm1MAC, destinationMAC: leftGatewayMAC, sourceIP: vm1IP, destinationIP: vm3IP,
        protocol: .tcp, sourcePort: 40000, destinationPort: 80).frame

    struct Routed: Sendable {
        var snapshot: TopologySnapshot
        var state: SimulationState
        var inPort: UInt32
        var vm3: PortID
    }

    /// vm1 - bridge left - router - bridge right - vm3, with `rules` rules
    /// on vm3's outbound chain: all but the last test a TCP port that the
    /// packet does not use, the last accepts TCP 80.
    ///
    /// With `portSecurity`, vm1 and vm3 have their MACs and fixed IPs, and
    /// vm1 four allowed address pairs (the last one matching nothing): every
    /// frame from vm1 is checked against them. The left bridge then also
    /// serves DHCP for 10.0.1.0/24.
    static func bridgeRouterBridge(rules ruleCount: Int, portSecurity: Bool = false, snat: Bool = false) -> Routed {
        let left = Bridge(name: "left")
        let right = Bridge(name: "right")
        var router = Router(name: "edge")
        var vm1 = Port(bridge: left.id, name: "vm1")
        var leftUplink = Port(bridge: left.id, name: "uplink")
        var vm3 = Port(bridge: right.id, name: "vm3")
        var subnets: [DHCPSubnet] = []
        if portSecurity {
            vm1.mac = vm1MAC
            vm1.fixedIPs = [vm1IP]
            vm1.allowedAddressPairs = (0..<4).map { AllowedAddressPair(address: IPv4.Address(10, 0, 1, UInt8(200 + $0))) }
            vm3.mac = vm3MAC
            vm3.fixedIPs = [vm3IP]
            subnets.append(DHCPSubnet(
                bridgeId: left.id, subnet: IPv4.Prefix(parsing: "10.0.1.0/24")!, rangeStart: IPv4.Address(10, 0, 1, 100),
                rangeEnd: IPv4.Address(10, 0, 1, 199), gateway: IPv4.Address(10, 0, 1, 1), dnsServers: [IPv4.Address(10, 0, 0, 53)],
                hostRoutes: [DHCPHostRoute(destination: IPv4.Prefix(parsing: "10.9.0.0/16")!, nextHop: IPv4.Address(10, 0, 1, 254))],
                domainName: "left.internal"))
        }
        var rightUplink = Port(bridge: right.id, name: "uplink")
        var routerLeft = Port(router: router.id, name: "to-left", address: IPv4.Address(10, 0, 1, 1),
                              subnet: IPv4.Prefix(parsing: "10.0.1.0/24")!, mac: leftGatewayMAC)
        var routerRight = Port(router: router.id, name: "to-right", address: IPv4.Address(10, 0, 2, 1),
                               subnet: IPv4.Prefix(parsing: "10.0.2.0/24")!, mac: rightGatewayMAC)
        routerLeft.peerId = leftUplink.id
        leftUplink.peerId = routerLeft.id
        routerRight.peerId = rightUplink.id
        rightUplink.peerId = routerRight.id
        vm1.tunnelKey = 1
        leftUplink.tunnelKey = 2
        vm3.tunnelKey = 3
        rightUplink.tunnelKey = 4
        routerLeft.tunnelKey = 5
        routerRight.tunnelKey = 6

        let chain = Chain(name: "vm3-out")
        var rules: [Rule] = []
        for index in 0..<max(0, ruleCount - 1) {
            rules.append(Rule(chainId: chain.id, conditions: RuleConditions(
                ipProtocol: Match(6), destinationPorts: Match(PortRange(UInt16(1000 + index)))), action: .drop))
        }
        rules.append(Rule(chainId: chain.id, conditions: RuleConditions(
            ipProtocol: Match(6), destinationPorts: Match(PortRange(80))), action: .accept))
        var filter = chain
        filter.ruleIds = rules.map(\.id)
        vm3.outboundChainId = filter.id

        if snat {
            // The right side is "the outside": the router's gateway, SNAT to its address.
            router.gateway = RouterGateway(portId: routerRight.id)
        }
        let routes = [
            Route(routerId: router.id, destination: IPv4.Prefix(parsing: "10.0.1.0/24")!, egressPortId: routerLeft.id),
            Route(routerId: router.id, destination: IPv4.Prefix(parsing: "10.0.2.0/24")!, egressPortId: routerRight.id),
        ]
        let snapshot = TopologySnapshot(
            bridges: [left, right], routers: [router], ports: [vm1, leftUplink, vm3, rightUplink, routerLeft, routerRight],
            routes: routes, chains: [filter], rules: rules, dhcpSubnets: subnets)
        precondition(snapshot.problems.isEmpty, "\(snapshot.problems)")
        var state = SimulationState()
        state.learn(vm1MAC, on: vm1.id, in: left.id)
        state.learn(vm3MAC, on: vm3.id, in: right.id)
        state.learn(vm3IP, at: vm3MAC, in: router.id)
        // This host's SNAT ports: the block of port 40000 and the next.
        state.natBlocks[IPv4.Address(10, 0, 2, 1)] = [625, 626]
        return Routed(snapshot: snapshot, state: state, inPort: vm1.tunnelKey, vm3: vm3.id)
    }

    /// `bridgeRouterBridge` with port security, and security groups: vm3 in
    /// "web" with `rules` ingress TCP rules, each on its own port (the last
    /// on 80) from remote group "clients"; vm1 in "clients" (egress any)
    /// with `members` - 1 other member ports on the left bridge. The SYN is
    /// a new connection, tracked in vm1's and vm3's zones.
    static func securityGroups(rules ruleCount: Int, members: Int) -> Routed {
        let base = bridgeRouterBridge(rules: 1, portSecurity: true)
        let web = SecurityGroup(name: "web")
        let clients = SecurityGroup(name: "clients")
        var rules: [SecurityGroupRule] = (0..<max(0, ruleCount - 1)).map { index in
            SecurityGroupRule(securityGroupId: web.id, direction: .ingress, ipProtocol: 6, ports: PortRange(UInt16(1000 + index)), remoteGroupId: clients.id)
        }
        rules.append(SecurityGroupRule(securityGroupId: web.id, direction: .ingress, ipProtocol: 6, ports: PortRange(80), remoteGroupId: clients.id))
        rules.append(SecurityGroupRule(securityGroupId: clients.id, direction: .egress))
        var ports = Array(base.snapshot.ports.values)
        let left = ports.first { $0.name == "vm1" }!.bridgeId!
        for index in ports.indices {
            if ports[index].name == "vm1" { ports[index].securityGroupIds = [clients.id] }
            if ports[index].name == "vm3" {
                ports[index].securityGroupIds = [web.id]
                ports[index].outboundChainId = nil
            }
        }
        for index in 0..<max(0, members - 1) {
            let address = IPv4.Address(10, 1, UInt8(index / 250), UInt8(1 + index % 250))
            ports.append(Port(
                bridge: left, name: "member\(index)", mac: EthernetAddress(0x0200_0001_0000 | UInt64(index)), fixedIPs: [address],
                securityGroupIds: [clients.id]))
            ports[ports.count - 1].tunnelKey = UInt32(100 + index)
        }
        let snapshot = TopologySnapshot(
            bridges: Array(base.snapshot.bridges.values), routers: Array(base.snapshot.routers.values), ports: ports,
            routes: Array(base.snapshot.routes.values), dhcpSubnets: Array(base.snapshot.dhcpSubnets.values),
            securityGroups: [web, clients], securityGroupRules: rules)
        precondition(snapshot.problems.isEmpty, "\(snapshot.problems)")
        return Routed(snapshot: snapshot, state: base.state, inPort: base.inPort, vm3: base.vm3)
    }

    struct BigRouter: Sendable {
        var snapshot: TopologySnapshot
        var state: SimulationState
        var router: RouterID
        var inPort: UInt32
        /// Destinations spread over the table, each covered by a /24 and shorter routes.
        var destinations: [IPv4.Address]
        var frames: [[UInt8]]
    }

    /// One router with `count` routes: /24s under 10.0.0.0/8 spread over 4
    /// ports, plus /16 and /8 covers and a default, and two exterior ports.
    static func bigRouter(routes count: Int) -> BigRouter {
        let router = Router(name: "core")
        var outside = Port(router: router.id, name: "outside", address: IPv4.Address(192, 0, 2, 1),
                           subnet: IPv4.Prefix(parsing: "192.0.2.0/24")!, mac: EthernetAddress(0x0200_0000_0901))
        outside.tunnelKey = 1
        var ports = [outside]
        for index in 0..<4 {
            var port = Port(router: router.id, name: "p\(index)", address: IPv4.Address(172, 16, UInt8(index), 1),
                            subnet: IPv4.Prefix(parsing: "172.16.\(index).0/24")!, mac: EthernetAddress(0x0200_0000_0A00 | UInt64(index)))
            port.tunnelKey = UInt32(10 + index)
            ports.append(port)
        }
        var routes: [Route] = []
        var generator = SplitMix64(state: 7)
        var destinations: [IPv4.Address] = []
        while routes.count < count - 300 {
            let network = UInt32(10) << 24 | UInt32.random(in: 0...0xFFFF, using: &generator) << 8
            let egress = ports[1 + routes.count % 4]
            routes.append(Route(routerId: router.id, destination: IPv4.Prefix(address: IPv4.Address(network), length: 24),
                                nextHopGateway: IPv4.Address(172, 16, UInt8(routes.count % 4), 254), egressPortId: egress.id))
            if destinations.count < 1024 { destinations.append(IPv4.Address(network | 7)) }
        }
        for index in 0..<256 {
            routes.append(Route(routerId: router.id, destination: IPv4.Prefix(address: IPv4.Address(10, UInt8(index), 0, 0), length: 16),
                                kind: .blackhole))
        }
        while routes.count < count - 1 {
            routes.append(Route(routerId: router.id, destination: IPv4.Prefix(address: IPv4.Address(UInt32(11 + routes.count % 100) << 24), length: 8),
                                kind: .reject))
        }
        routes.append(Route(routerId: router.id, destination: IPv4.Prefix(address: .any, length: 0), egressPortId: outside.id))
        let snapshot = TopologySnapshot(routers: [router], ports: ports, routes: routes)
        precondition(snapshot.problems.isEmpty, "\(snapshot.problems)")
        var state = SimulationState()
        for index in 0..<4 { state.learn(IPv4.Address(172, 16, UInt8(index), 254), at: EthernetAddress(0x0200_0000_0B00 | UInt64(index)), in: router.id) }
        let frames = destinations.map { destination in
            PacketDescription(sourceMAC: EthernetAddress(0x0200_0000_0907), destinationMAC: outside.mac!,
                              sourceIP: IPv4.Address(192, 0, 2, 7), destinationIP: destination,
                              protocol: .udp, sourcePort: 5000, destinationPort: 53).frame
        }
        return BigRouter(snapshot: snapshot, state: state, router: router.id, inPort: outside.tunnelKey, destinations: destinations, frames: frames)
    }
}

extension Topologies {
    /// A connection table of `entries` translated connections from other
    /// sources through the lab's router to vm3, with ports outside the
    /// lab's blocks.
/// vm1's ACK of the TCP connection `tcpFrame` opens.
    static let ackFrame = PacketDescription(
        sourceMAC: vm1MAC, destinationMAC: leftGatewayMAC, sourceIP: vm1IP, destinationIP: vm3IP,
        protocol: .tcp, sourcePort: 40000, destinationPort: 80, tcpFlags: .ack).frame

    /// `table` with the connection `syn` opens through the lab committed,
    /// and its SYN-ACK seen: established (and translated, when the lab NATs).
    static func establishing(_ syn: [UInt8], on table: ConnectionTable, in lab: Routed) -> ConnectionTable {
        var table = table
        var context = SimulationContext()
        let key = try! FlowKey(parsing: syn, inPort: lab.inPort)
        context.simulate(frame: syn, key: key, in: lab.snapshot, state: lab.state, connections: table, now: 2)
        for observation in context.result.connections {
            _ = table.apply(observation, tcpFlags: .syn, now: 2)
            let reply = ConnectionObservation(key: observation.replyKey, slot: -1, isReply: true, states: [.established, .reply], owner: 0)
            _ = table.apply(reply, tcpFlags: [.syn, .ack], now: 2)
        }
        return table
    }

    /// A table of `count` established TCP connections, and what a cached
    /// flow keeps of every hundredth (`FlowConnection`): a tracked flow's hits.
    static func establishedConnections(_ count: Int) -> (table: ConnectionTable, connections: [FlowConnection]) {
        var table = ConnectionTable()
        var connections: [FlowConnection] = []
        for index in 0..<count {
            let key = ConnectionKey(zone: 1, source: IPv4.Address(UInt32(0x0A00_0000 + index)), destination: IPv4.Address(10, 9, 9, 9),
                                    sourcePort: 40000, destinationPort: 80, ipProtocol: 6)
            let observation = ConnectionObservation(key: key, slot: -1, isReply: false, states: .new, owner: UInt32(index % 1000))
            guard let slot = table.apply(observation, tcpFlags: .syn, now: 1).slot else { continue }
            _ = table.apply(ConnectionObservation(key: key.reversed, slot: slot, isReply: true, states: [.established, .reply], owner: 0),
                            tcpFlags: [.syn, .ack], now: 1)
            if index % 100 == 0 {
                connections.append(FlowConnection(
                    key: key, isReply: false, slot: slot, generation: table.entry(slot)!.generation, validStates: observation.validStates))
            }
        }
        return (table, connections)
    }

        static func translatedTable(_ lab: Routed, entries count: Int) -> ConnectionTable {
        var table = ConnectionTable()
        let zone = lab.snapshot.connectionZone(of: lab.snapshot.routers.values.first!.id)
        for index in 0..<count {
            let key = ConnectionKey(zone: zone, source: IPv4.Address(UInt32(0x0A01_0000 + index)), destination: vm3IP,
                                    sourcePort: 40000, destinationPort: UInt16(80 + index / 30_000), ipProtocol: 6)
            var reply = key.reversed
            reply.destination = IPv4.Address(10, 0, 2, 1)
            reply.destinationPort = UInt16(1024 + index % 30_000)
            _ = table.apply(ConnectionObservation(key: key, slot: -1, isReply: false, states: .new, owner: 9, replyKey: reply), tcpFlags: .syn, now: 1)
        }
        return table
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
