import HiveModel
import HivePacket

// NAT: a router translates addresses (and ports) of the connections that
// cross it, through connection tracking in its zone.
//
// What translates. A router translates when it has a floating IP, an
// external gateway with SNAT, or a `snat`/`dnat` rule on one of its chains
// (or its ports'). Such a router tracks every packet in its zone.
//
// When. The translation of a connection is decided by its first packet
// and kept in its connection entry as the reply key (what replies look
// like after translation). Every later packet, either way, is translated
// from the entry alone; rules and floating IPs are not consulted again
// (as in Linux, where the nat table sees only a connection's first packet).
// Destination rewrites happen when the packet enters the router (before
// the inbound chain and the route lookup: DNAT, and un-SNAT of replies);
// source rewrites when it leaves (after the outbound chains: SNAT, and
// un-DNAT of replies).
//
// For a new connection, in order:
// 1. entering: a floating IP of the router as destination: DNAT to its fixed IP;
// 2. the chains: a matching `dnat` or `snat` rule translates and accepts;
// 3. leaving by an external port (an exterior port, or the gateway's):
//    the VM of a floating IP of this router as source: SNAT to the floating
//    IP (ports kept); else, leaving by the gateway port from a tenant subnet
//    behind the router, from a VM without a floating IP: SNAT to the
//    gateway's address.
//
// Source ports. SNAT (but not floating IPs, which are one VM's alone) takes
// ports from the blocks of 64 that this host leased for the address
// (`SimulationState.natBlocks`), so two hosts never hand out the same
// address and port. The packet's own port is kept when its block is this
// host's and no connection to the same destination uses it; otherwise the
// first free port of the host's blocks in the target's range (scanned from
// a hash of the connection). With no free port the decision is
// `.pendingNATPorts`: the agent leases a block and simulates the packet again.
//
// Not translated (documented in docs/nat.md): ICMP errors about a translated
// connection (their quoted header), IPv6, later fragments.

/// What NAT did in the router the packet is crossing.
struct RouterNATStep: Sendable {
    /// The index in `result.connections` of the router zone's observation; -1: untracked.
    var observation: Int = -1
    /// The connection existed before this packet: translated by its entry, never by rules.
    var established = false
    /// The source to set when the packet leaves (an existing translation).
    var pendingSource: ConnectionKey?
    var translatedDestination = false
    var translatedSource = false
    /// SNAT needs ports this host does not have.
    var needsPorts: (address: IPv4.Address, first: UInt16, last: UInt16, preferred: UInt16)?
}

extension SimulationRun {
    /// Entering router `routerIndex`: applies an existing translation's
    /// destination, or a floating IP's DNAT to a new connection.
    mutating func natOnEntry(_ routerIndex: Int32) {
        nat = RouterNATStep()
        let router = topology.routers[Int(routerIndex)]
        guard router.translates else { return }
        // An assumed state other than new (`hive trace --ct-state`) names no
        // entry, so no translation is known.
        if let assumed = options.connectionState, assumed != .new { return }
        guard let index = result.connections.firstIndex(where: { $0.key.zone == router.zone }) else { return }
        nat.observation = index
        let observation = result.connections[index]
        if observation.states.contains(.invalid) {
            nat.established = true
            return
        }
        if observation.states.contains(.related) {
            nat.established = true
            if observation.slot >= 0, observation.isTranslated { translateError(observation) }
            return
        }
        if observation.slot >= 0 {
            nat.established = true
            guard observation.isTranslated else { return }
            let target = observation.isReply ? observation.originalKey.reversed : observation.replyKey.reversed
            setDestination(target.destination, port: target.destinationPort)
            nat.pendingSource = target
            trace(2, .nat(.existing, to: target))
            return
        }
        read(.ipv4Destination)
        if let floating = topology.floatingByAddress[DeviceAddress(device: routerIndex, address: key.ipv4Destination)] {
            let fixed = topology.floatingIPs[Int(floating)]
            translateDestination(to: fixed.fixed, port: nil)
            trace(2, .nat(.floatingDestination, to: result.connections[index].replyKey.reversed))
        }
    }

    /// Leaving router `routerIndex` by `egress` (outbound chains passed):
    /// applies an existing translation's source, or the implicit SNAT of a
    /// new connection. False: the packet waits for SNAT ports (decided).
    mutating func natOnExit(_ routerIndex: Int32, ingress: Int32, egress: Int32) -> Bool {
        let router = topology.routers[Int(routerIndex)]
        guard router.translates, nat.observation >= 0 else { return true }
        if let target = nat.pendingSource {
            setSource(target.source, port: target.sourcePort)
            return true
        }
        if nat.established || nat.translatedSource { return finishPendingPorts() }
        let egressPort = topology.ports[Int(egress)]
        let external = !egressPort.isInterior || egress == router.gatewayPort
        guard external else { return finishPendingPorts() }
        read(.ipv4Source)
        let ingressPort = topology.portByTunnelKey[result.ingressKey.inPort] ?? noIndex
        if let floating = topology.floatingByPort[ingressPort] {
            let fixed = topology.floatingIPs[Int(floating)]
            if fixed.router == routerIndex, fixed.fixed == key.ipv4Source {
                translateSource(to: fixed.address, port: nil)
                trace(2, .nat(.floatingSource, to: result.connections[nat.observation].replyKey.reversed))
                return true
            }
            // A VM with a floating IP elsewhere is not default-SNATed here.
            if fixed.fixed == key.ipv4Source { return true }
        }
        guard egress == router.gatewayPort, router.gatewaySNAT != .any,
              topology.routerSubnets[router.tenantSubnets.range].contains(where: { $0.contains(key.ipv4Source) })
        else { return true }
        let range = NATTarget.defaultSourcePorts
        if allocateSource(address: router.gatewaySNAT, ports: range) {
            trace(2, .nat(.gatewaySource, to: result.connections[nat.observation].replyKey.reversed))
        }
        return finishPendingPorts()
    }

    /// A `snat` or `dnat` rule matched: translates a new connection (an
    /// existing one keeps its translation), then the chain accepts.
    mutating func natRule(_ action: CompiledAction, ingress: Int32) {
        let port = topology.ports[Int(ingress)]
        guard port.isRouterPort, topology.routers[Int(port.deviceIndex)].translates, nat.observation >= 0, !nat.established else { return }
        switch action {
        case .dnat(let index):
            guard !nat.translatedDestination else { return }
            let target = topology.natTargets[Int(index)]
            read(.ipv4Source)
            let address = pick(target, by: key.ipv4Source)
            translateDestination(to: address, port: target.hasPorts ? pickPort(target) : nil)
            trace(2, .nat(.ruleDestination, to: result.connections[nat.observation].replyKey.reversed))
        case .snat(let index):
            guard !nat.translatedSource else { return }
            let target = topology.natTargets[Int(index)]
            read(.ipv4Source)
            let ports = target.hasPorts ? target.firstPort...target.lastPort : NATTarget.defaultSourcePorts
            if allocateSource(address: pick(target, by: key.ipv4Source), ports: ports) {
                trace(2, .nat(.ruleSource, to: result.connections[nat.observation].replyKey.reversed))
            }
        default:
            break
        }
    }

    /// An ICMP error about a translated connection: the datagram it quotes
    /// is in the form NAT gave it (`quoted`); it is given back the form its
    /// sender sent it in, and the error's own addresses follow (its
    /// destination is the quoted datagram's source; its source, when the
    /// quoted datagram's destination made the error, is that destination).
    private mutating func translateError(_ observation: ConnectionObservation) {
        let quoted = observation.key
        let original: ConnectionKey
        if quoted == observation.replyKey.reversed {
            original = observation.originalKey
        } else if quoted == observation.originalKey.reversed {
            original = observation.replyKey
        } else {
            return
        }
        read([.ipv4Source, .ipv4Destination])
        if key.ipv4Destination == quoted.source, quoted.source != original.source { apply(.setIPv4Destination(original.source)) }
        if key.ipv4Source == quoted.destination, quoted.destination != original.destination { apply(.setIPv4Source(original.destination)) }
        if quoted.source != original.source { apply(.setQuotedAddress(source: true, original.source)) }
        if quoted.destination != original.destination { apply(.setQuotedAddress(source: false, original.destination)) }
        if quoted.sourcePort != original.sourcePort { apply(.setQuotedPort(source: true, original.sourcePort)) }
        if quoted.destinationPort != original.destinationPort, quoted.ipProtocol != IPProtocolNumber.icmp {
            apply(.setQuotedPort(source: false, original.destinationPort))
        }
        trace(2, .nat(.error, to: original))
    }

    /// When SNAT found no port: the packet waits for a block (decided here).
    private mutating func finishPendingPorts() -> Bool {
        guard let needed = nat.needsPorts else { return true }
        finish(.pendingNATPorts(address: needed.address, firstPort: needed.first, lastPort: needed.last, preferredPort: needed.preferred))
        return false
    }

    // MARK: Translating

    /// One address of a range, the same for one source (as Linux picks).
    private func pick(_ target: NATTarget, by source: IPv4.Address) -> IPv4.Address {
        let count = UInt32(target.addressCount)
        guard count > 1 else { return target.firstAddress }
        var value = UInt64(source.value) &* 0x9E37_79B9_7F4A_7C15
        value ^= value >> 29
        // Below `count`, which is at most 256: the sum stays a valid address.
        return IPv4.Address(target.firstAddress.value &+ UInt32(value % UInt64(count)))
    }

    /// DNAT's port: the packet's own when it is in the range, else the range's first.
    private mutating func pickPort(_ target: NATTarget) -> UInt16 {
        let current = transportPort(source: false)
        return (target.firstPort...target.lastPort).contains(current) ? current : target.firstPort
    }

    /// The packet's source or destination port as NAT sees it: TCP/UDP
    /// ports, the ICMP echo identifier, else 0.
    private mutating func transportPort(source: Bool) -> UInt16 {
        switch key.ipProtocol.rawValue {
        case IPProtocolNumber.tcp, IPProtocolNumber.udp:
            read(source ? .sourcePort : .destinationPort)
            return source ? key.sourcePort : key.destinationPort
        case IPProtocolNumber.icmp:
            read(.icmpIdentifier)
            return key.icmpIdentifier
        default:
            return 0
        }
    }

    private var hasPorts: Bool {
        switch key.ipProtocol.rawValue {
        case IPProtocolNumber.tcp, IPProtocolNumber.udp: true
        case IPProtocolNumber.icmp: key.icmpType == ICMPv4.MessageType.echoRequest.rawValue || key.icmpType == ICMPv4.MessageType.echoReply.rawValue
        default: false
        }
    }

    /// DNAT of a new connection: the reply will come from `address`.
    private mutating func translateDestination(to address: IPv4.Address, port: UInt16?) {
        translate(source: false, to: address, port: port)
    }

    /// SNAT of a new connection: the reply will go to `address`.
    private mutating func translateSource(to address: IPv4.Address, port: UInt16?) {
        translate(source: true, to: address, port: port)
    }

    /// Records the translation in the zone's reply key (the reply's
    /// destination is the new source, its source the new destination) and
    /// rewrites the packet; nil port keeps the packet's.
    private mutating func translate(source: Bool, to address: IPv4.Address, port: UInt16?) {
        var reply = result.connections[nat.observation].replyKey
        if source { reply.destination = address } else { reply.source = address }
        if let port, hasPorts {
            if source { reply.destinationPort = port } else { reply.sourcePort = port }
            // ICMP echo: the identifier is both "ports".
            if key.ipProtocol.rawValue == IPProtocolNumber.icmp {
                reply.sourcePort = port
                reply.destinationPort = port
            }
        }
        result.connections[nat.observation].replyKey = reply
        if source {
            nat.translatedSource = true
            setSource(address, port: port ?? transportPort(source: true))
        } else {
            nat.translatedDestination = true
            setDestination(address, port: port ?? transportPort(source: false))
        }
    }

    /// SNAT to `address` with a port of this host's blocks; false when none
    /// is free (`nat.needsPorts` says what to lease).
    private mutating func allocateSource(address: IPv4.Address, ports range: ClosedRange<UInt16>) -> Bool {
        guard hasPorts else {
            translateSource(to: address, port: nil)
            return true
        }
        let original = transportPort(source: true)
        var reply = result.connections[nat.observation].replyKey
        reply.destination = address
        let isICMP = key.ipProtocol.rawValue == IPProtocolNumber.icmp
        func isFree(_ port: UInt16) -> Bool {
            var candidate = reply
            candidate.destinationPort = port
            if isICMP { candidate.sourcePort = port }
            return connections.lookup(candidate, now: now) == nil
        }
        let blocks = state.natBlocks[address] ?? []
        if options.assumesNATPorts, blocks.isEmpty {
            translateSource(to: address, port: range.contains(original) ? original : range.lowerBound)
            return true
        }
        if range.contains(original), blocks.contains(NATBlock.of(original)), isFree(original) {
            translateSource(to: address, port: original)
            return true
        }
        // Scan the host's blocks from a hash of the connection, so concurrent
        // connections do not all probe the same first ports.
        let hash = Int(truncatingIfNeeded: flowHash() >> 1)
        for step in 0..<blocks.count {
            let block = blocks[(hash &+ step) % blocks.count]
            let low = max(Int(block) * NATBlock.size, Int(range.lowerBound))
            let high = min(Int(block) * NATBlock.size + NATBlock.size - 1, Int(range.upperBound))
            guard low <= high else { continue }
            let span = high - low + 1
            if !isICMP, span == NATBlock.size {
                // A block this remote end already uses whole: skipped, not probed port by port.
                // (The count is the block's: a range covering part of it is probed.)
                if connections.sourceTranslations(inBlock: block, toward: reply) >= span { continue }
            }
            for offset in 0..<span {
                let port = UInt16(low + (hash &+ offset) % span)
                if isFree(port) {
                    translateSource(to: address, port: port)
                    return true
                }
            }
        }
        nat.needsPorts = (address, range.lowerBound, range.upperBound, range.contains(original) ? original : range.lowerBound)
        return false
    }

    private mutating func setDestination(_ address: IPv4.Address, port: UInt16) {
        if key.ipv4Destination != address { apply(.setIPv4Destination(address)) }
        setPort(port, source: false)
    }

    private mutating func setSource(_ address: IPv4.Address, port: UInt16) {
        if key.ipv4Source != address { apply(.setIPv4Source(address)) }
        setPort(port, source: true)
    }

    private mutating func setPort(_ port: UInt16, source: Bool) {
        switch key.ipProtocol.rawValue {
        case IPProtocolNumber.tcp, IPProtocolNumber.udp:
            guard key.fragmentKind != .later else { return }
            if source, key.sourcePort != port { apply(.setSourcePort(port)) }
            if !source, key.destinationPort != port { apply(.setDestinationPort(port)) }
        case IPProtocolNumber.icmp:
            if hasPorts, key.icmpIdentifier != port { apply(.setICMPIdentifier(port)) }
        default:
            break
        }
    }
}

/// SNAT ports are leased per host in blocks of this many (MidoNet's size).
public enum NATBlock {
    public static let size = 64
    /// The block a port is in.
    public static func of(_ port: UInt16) -> UInt16 { port / UInt16(size) }
}
