import HiveModel
import HivePacket

// The router: IPv4 forwarding between its ports.
//
// In order:
// 1. L2: it takes frames to the ingress port's MAC, and broadcast ARP.
// 2. ARP: a request for the ingress port's address is answered out of that
//    port; a reply to the port's MAC is learned (`arpLearning`).
// 3. Inbound chain (IPv4 only; other ethertypes drop).
// 4. Addressed to one of its own port addresses: an echo request is
//    answered; anything else drops.
// 5. TTL <= 1: ICMP time exceeded, drop.
// 6. Route lookup (longest prefix, source prefix, lowest weight, then ECMP
//    by flow hash). None: ICMP net unreachable. Reject route: the same.
//    Blackhole: silent drop.
// 7. TTL decremented; outbound chains (router, then egress port).
// 8. Next hop (the route's gateway, else the destination): a router port
//    across a link answers for itself (its MAC, no ARP); otherwise the ARP
//    table. Unknown: an ARP request goes out of the egress port and the
//    packet waits (`.pendingARP`). Known: source MAC := egress port's MAC,
//    destination MAC := next hop's.
//
// ICMP errors follow RFC 1812 §4.3.2.7 (`mayReportError`) and come from the
// ingress port's address and MAC, out of the ingress port.

extension SimulationRun {
    mutating func router(_ routerIndex: Int32, ingress: Int32) -> DeviceOutcome {
        if firstRouterIngress < 0 { firstRouterIngress = ingress }
        let router = topology.routers[Int(routerIndex)]
        let port = topology.ports[Int(ingress)]

        read([.ethernetDestination, .etherType])
        let destinationMAC = key.ethernetDestination
        if key.etherType == .arp {
            guard destinationMAC == port.mac || destinationMAC.isBroadcast else {
                finish(.drop(.notForRouterMAC(router.id, destinationMAC)))
                return .finished
            }
            return routerARP(router, ingress: ingress)
        }
        guard destinationMAC == port.mac else {
            finish(.drop(.notForRouterMAC(router.id, destinationMAC)))
            return .finished
        }
        guard key.etherType == .ipv4 else {
            finish(.drop(.notIPv4(router.id, etherType: key.etherType.rawValue)))
            return .finished
        }
        natOnEntry(routerIndex)
        if router.inboundChain != noIndex,
           !passChain(router.inboundChain, hook: .deviceInbound, ingress: ingress, egress: noIndex) {
            return .finished
        }

        // A neighbour sending from the MAC it is known at is alive. Not a
        // read: the refresh is a side note, the path does not depend on it.
        if let known = state.mac(of: key.ipv4Source, in: router.id), known == key.ethernetSource {
            result.arpRefreshes.append(ARPLearning(router: router.id, address: key.ipv4Source, mac: known))
        }

        // For the router itself.
        read(.ipv4Destination)
        let destination = key.ipv4Destination
        if topology.routerAddresses[DeviceAddress(device: routerIndex, address: destination)] != nil {
            read([.ipProtocol, .fragmentKind])
            if key.ipProtocol == .icmp, key.fragmentKind != .later {
                read(.icmpType)
                if key.icmpType == ICMPv4.MessageType.echoRequest.rawValue,
                   let reply = try? ICMPv4.echoReplyFrame(to: currentFrame()) {
                    emit(.echoReply, out: ingress, frame: reply)
                    finish(.consumed)
                    return .finished
                }
            }
            finish(.drop(.addressedToRouter(router.id, destination)))
            return .finished
        }

        // TTL.
        read(.timeToLive)
        if key.timeToLive <= 1 {
            sendError(.timeExceeded, code: ICMPv4.TimeExceededCode.timeToLive.rawValue, ingress: ingress)
            finish(.drop(.timeToLiveExpired(router.id)))
            return .finished
        }

        // Route.
        let table = topology.routeTables[Int(routerIndex)]
        result.tag(.routeTable(router.id))
        if table.usesSourcePrefixes { read(.ipv4Source) }
        guard let match = table.lookup(destination: destination, source: key.ipv4Source) else {
            trace(2, .routeLookup(destination, route: nil, equalCost: 0))
            sendError(.destinationUnreachable, code: ICMPv4.UnreachableCode.network.rawValue, ingress: ingress)
            finish(.drop(.noRoute(router.id, destination)))
            return .finished
        }
        var chosen = Int(match.group.start)
        if match.count > 1 {
            let hash = flowHash()
            let pick = equalCostPick(table, start: chosen, count: match.count, hash: hash)
            chosen += pick
            trace(2, .routeLookup(destination, route: table.routes[chosen].id, equalCost: match.count))
            trace(3, .ecmp(chosen: pick, of: match.count, hash: hash))
        } else {
            trace(2, .routeLookup(destination, route: table.routes[chosen].id, equalCost: 1))
        }
        let route = table.routes[chosen]
        result.tag(.route(route.id))
        switch route.kind {
        case .blackhole:
            finish(.drop(.blackholeRoute(route.id)))
            return .finished
        case .reject:
            sendError(.destinationUnreachable, code: ICMPv4.UnreachableCode.network.rawValue, ingress: ingress)
            finish(.drop(.rejectRoute(route.id)))
            return .finished
        case .normal:
            break
        }
        guard route.egressPort != noIndex else {
            finish(.drop(.routeWithoutPort(route.id)))
            return .finished
        }
        let egress = route.egressPort
        // Before any chain or translation: the packet is simulated again once the far side is loaded.
        if topology.ports[Int(egress)].peerNotLoaded {
            finish(.pendingTopology(.port(topology.notLoadedPeers[egress]!)))
            return .finished
        }

        apply(.decrementTimeToLive)
        trace(2, .decrementTimeToLive(to: key.timeToLive))
        if result.routerHop == nil, port.hasAddress { result.routerHop = RouterHop(mac: port.mac, address: port.address) }
        if router.outboundChain != noIndex,
           !passChain(router.outboundChain, hook: .deviceOutbound, ingress: ingress, egress: egress) {
            return .finished
        }
        guard passPortOutbound(egress, ingress: ingress) else { return .finished }
        guard natOnExit(routerIndex, ingress: ingress, egress: egress) else { return .finished }

        // Next hop's MAC.
        let egressPort = topology.ports[Int(egress)]
        let nextHop = route.hasGateway ? route.gateway : destination
        let nextHopMAC: EthernetAddress
        if egressPort.isInterior, topology.ports[Int(egressPort.peer)].isRouterPort {
            nextHopMAC = topology.ports[Int(egressPort.peer)].mac
        } else if let known = resolve(nextHop, in: router) {
            nextHopMAC = known
        } else {
            trace(2, .nextHop(nextHop, mac: nil))
            emit(.arpRequest, out: egress, frame: ARP.requestFrame(
                senderMAC: egressPort.mac, senderIP: egressPort.address, targetIP: nextHop))
            finish(.pendingARP(router: router.id, address: nextHop, port: egressPort.id))
            return .finished
        }
        trace(2, .nextHop(nextHop, mac: nextHopMAC))
        apply(.setEthernetSource(egressPort.mac))
        apply(.setEthernetDestination(nextHopMAC))
        return .leave(egress)
    }

    @inline(__always)
    private mutating func resolve(_ address: IPv4.Address, in router: CompiledRouter) -> EthernetAddress? {
        result.tag(.arpEntry(router.id, address))
        return state.mac(of: address, in: router.id)
    }

    private mutating func routerARP(_ router: CompiledRouter, ingress: Int32) -> DeviceOutcome {
        let port = topology.ports[Int(ingress)]
        read([.arpOperation, .ipv4Destination])
        let target = key.ipv4Destination
        // An exterior port (an uplink) also answers for the floating IPs and
        // SNAT addresses of its router that lie on its subnet.
        let answers = port.hasAddress && (target == port.address || !port.isInterior && port.subnet.contains(target)
            && topology.natAddresses.contains(DeviceAddress(device: port.deviceIndex, address: target)))
        if answers, key.arpOperation == .request {
            read([.ipv4Source, .arpSenderMAC])
            let request = ARP.Packet(
                operation: .request, senderMAC: key.arpSenderMAC, senderIP: key.ipv4Source,
                targetMAC: .zero, targetIP: target)
            emit(.arpReply, out: ingress, frame: ARP.replyFrame(to: request, answeringWith: port.mac))
            finish(.consumed)
            return .finished
        }
        if port.hasAddress, target == port.address, key.arpOperation == .reply {
            read([.ipv4Source, .arpSenderMAC])
            guard mayLearnNeighbour(key.ipv4Source, at: key.arpSenderMAC, on: port) else {
                finish(.drop(.arpNotForRouter(router.id, target)))
                return .finished
            }
            result.arpLearning.append(ARPLearning(router: router.id, address: key.ipv4Source, mac: key.arpSenderMAC))
            trace(2, .arpReplyLearned(key.ipv4Source, key.arpSenderMAC))
            finish(.consumed)
            return .finished
        }
        finish(.drop(.arpNotForRouter(router.id, target)))
        return .finished
    }

    /// Whether router port `port` may learn that `address` is at `mac`: a
    /// neighbour on the port's own subnet (not the port itself), and never at
    /// a MAC other than the one the bridge behind the port knows for that
    /// address (a VM's fixed IP). Replies and gratuitous ARP both ask.
    func mayLearnNeighbour(_ address: IPv4.Address, at mac: EthernetAddress, on port: CompiledPort) -> Bool {
        guard port.hasAddress, port.subnet.contains(address), address != port.address else { return false }
        guard port.isInterior else { return true }
        let bridgePort = topology.ports[Int(port.peer)]
        guard !bridgePort.isRouterPort,
              let known = topology.bridgeARPAnswers[DeviceAddress(device: bridgePort.deviceIndex, address: address)]
        else { return true }
        return known.mac == mac
    }

    /// An ICMP error about the packet, when one may be sent, out of the ingress port.
    private mutating func sendError(_ type: ICMPv4.MessageType, code: UInt8, ingress: Int32) {
        let port = topology.ports[Int(ingress)]
        guard port.hasAddress, mayReportError(subnetBroadcast: port.subnet.broadcast) else { return }
        let about = currentFrame()
        let made = about.withUnsafeBytes { frame in
            try? ICMPv4.errorFrame(type: type, code: code, about: frame, sourceMAC: port.mac, sourceIP: port.address)
        }
        guard let bytes = made else { return }
        emit(type == .timeExceeded ? .timeExceeded : .destinationUnreachable, out: ingress, frame: bytes)
    }

    /// Which of `count` equal-cost routes (from `start`) a flow takes: the
    /// highest random weight of (flow hash, route) (rendezvous hashing), so
    /// adding or removing a path moves only the flows of that path. Routes
    /// whose egress port cannot forward (its host is down) are passed over
    /// while another is left.
    private mutating func equalCostPick(_ table: RouteTable, start: Int, count: Int, hash: UInt64) -> Int {
        var best = -1
        var bestWeight: UInt64 = 0
        var fallback = 0
        var fallbackWeight: UInt64 = 0
        let unavailable = state.unavailablePorts
        for offset in 0..<count {
            let route = table.routes[start + offset]
            var word = hash ^ route.seed
            // SplitMix64's finalizer: wrapping multiplication is the mixing.
            word = (word ^ (word >> 30)) &* 0xBF58_476D_1CE4_E5B9
            word = (word ^ (word >> 27)) &* 0x94D0_49BB_1331_11EB
            word ^= word >> 31
            if word >= fallbackWeight { fallback = offset; fallbackWeight = word }
            // Every candidate's availability decides the pick: a change of any host's liveness redoes it.
            if route.egressPort != noIndex { result.tag(.port(topology.ports[Int(route.egressPort)].id)) }
            if !unavailable.isEmpty, route.egressPort != noIndex, unavailable.contains(topology.ports[Int(route.egressPort)].tunnelKey) { continue }
            if best < 0 || word >= bestWeight { best = offset; bestWeight = word }
        }
        return best >= 0 ? best : fallback
    }

    /// A hash of the flow's 5-tuple that is the same in every process (not
    /// Swift's seeded `Hasher`), so one flow takes one path everywhere.
    mutating func flowHash() -> UInt64 {
        read([.ipv4Source, .ipv4Destination, .ipProtocol, .fragmentKind])
        var word = UInt64(key.ipv4Source.value) << 32 | UInt64(key.ipv4Destination.value)
        var extra = UInt64(key.ipProtocol.rawValue) << 32
        if key.fragmentKind != .later, key.ipProtocol == .tcp || key.ipProtocol == .udp {
            read([.sourcePort, .destinationPort])
            extra |= UInt64(key.sourcePort) << 16 | UInt64(key.destinationPort)
        }
        // SplitMix64's finalizer over both words; wrapping multiplication is the mixing.
        word ^= extra &* 0x9E37_79B9_7F4A_7C15
        word = (word ^ (word >> 30)) &* 0xBF58_476D_1CE4_E5B9
        word = (word ^ (word >> 27)) &* 0x94D0_49BB_1331_11EB
        return word ^ (word >> 31)
    }
}
