import HiveModel
import HivePacket

// The bridge: a learning L2 switch.
//
// - Learning: a unicast source MAC not already known on the ingress port is
//   reported in `macLearning` (the agent writes the MAC table).
// - ARP requests (not gratuitous) for an address the bridge knows, that of
//   a router port linked to it or a DHCP host entry, are answered by the
//   bridge when ARP suppression is on. With suppression off, a request for
//   a linked router port's address goes to that router port only (the router
//   answers); any other request floods.
// - Forwarding: a destination MAC of a linked router port goes to the
//   interior port behind it (a static entry); otherwise the MAC table
//   decides. Broadcast, multicast and unknown unicast flood.
// - Flooding reaches the bridge's exterior ports (its flood set) but the
//   ingress, each through its outbound chain. Interior ports are not
//   flooded: behind a router link the router only takes frames to its port
//   MAC (always a known static entry) and ARP for its address (sent to it
//   directly, above); a frame flooded into a router would be dropped there.
//   Links between two bridges therefore carry known unicast only: a flood
//   does not cross them (a limit of this version, see docs/simulation.md).

extension SimulationRun {
    mutating func bridge(_ bridgeIndex: Int32, ingress: Int32) -> DeviceOutcome {
        let bridge = topology.bridges[Int(bridgeIndex)]
        if bridge.inboundChain != noIndex,
           !passChain(bridge.inboundChain, hook: .deviceInbound, ingress: ingress, egress: noIndex) {
            return .finished
        }
        let ingressPort = topology.ports[Int(ingress)]

        // Learning.
        read(.ethernetSource)
        let source = key.ethernetSource
        if !source.isMulticast, source != .zero,
           topology.staticMACs[BridgeMAC(bridge: bridgeIndex, mac: source)] == nil {
            result.tag(.macEntry(bridge.id, source))
            if state.port(of: source, in: bridge.id) != ingressPort.id {
                result.macLearning.append(MACLearning(bridge: bridge.id, mac: source, port: ingressPort.id))
                trace(2, .learnMAC(source, ingressPort.id))
            } else {
                result.macRefreshes.append(MACLearning(bridge: bridge.id, mac: source, port: ingressPort.id))
            }
        }

        // DHCP, answered by the bridge for the ports it knows.
        if bridge.servesDHCP, !ingressPort.isInterior, isDHCPRequest() {
            switch dhcpAnswer(bridge: bridgeIndex, ingress: ingress) {
            case .notServed:
                // Another message of the same flow key may be one the bridge answers.
                result.dependsOnPayload = true
            case .silent:
                trace(2, .dhcpAnswered(nil))
                finish(.consumed)
                return .finished
            case .needsAddress:
                finish(.pendingAddress(ingressPort.id))
                return .finished
            case .reply(let frame):
                if tracing { trace(2, .dhcpAnswered(try? DHCPv4.Message(parsingFrame: frame).yourAddress)) }
                emit(.dhcpReply, out: ingress, frame: frame)
                finish(.consumed)
                return .finished
            }
        }

        // ARP requests for addresses the bridge knows.
        read(.etherType)
        if key.etherType == .arp, !ingressPort.isInterior { noteGratuitousARP(bridge) }
        if key.etherType == .arp {
            read([.arpOperation, .ipv4Source, .ipv4Destination])
            if key.arpOperation == .request, key.ipv4Source != key.ipv4Destination,
               let answer = topology.bridgeARPAnswers[DeviceAddress(device: bridgeIndex, address: key.ipv4Destination)] {
                if bridge.arpSuppression {
                    read(.arpSenderMAC)
                    trace(2, .arpSuppressed(key.ipv4Destination, answer.mac))
                    let request = ARP.Packet(
                        operation: .request, senderMAC: key.arpSenderMAC, senderIP: key.ipv4Source,
                        targetMAC: .zero, targetIP: key.ipv4Destination)
                    emit(.arpReply, out: ingress, frame: ARP.replyFrame(to: request, answeringWith: answer.mac))
                    finish(.consumed)
                    return .finished
                }
                if answer.bridgePort != noIndex {
                    trace(2, .arpToRouterPort(key.ipv4Destination, topology.ports[Int(answer.bridgePort)].id))
                    return forward(bridge, to: answer.bridgePort, ingress: ingress)
                }
            }
        }

        // Forwarding.
        read(.ethernetDestination)
        let destination = key.ethernetDestination
        if destination.isMulticast { return flood(bridge, ingress: ingress) }
        if let port = topology.staticMACs[BridgeMAC(bridge: bridgeIndex, mac: destination)] {
            trace(2, .macLookup(destination, port: topology.ports[Int(port)].id, isStatic: true))
            return forward(bridge, to: port, ingress: ingress)
        }
        result.tag(.macEntry(bridge.id, destination))
        if let id = state.port(of: destination, in: bridge.id), let port = topology.portIndex[id],
           topology.ports[Int(port)].deviceIndex == bridgeIndex, !topology.ports[Int(port)].isRouterPort {
            trace(2, .macLookup(destination, port: id, isStatic: false))
            return forward(bridge, to: port, ingress: ingress)
        }
        trace(2, .macLookup(destination, port: nil, isStatic: false))
        return flood(bridge, ingress: ingress)
    }

    /// A gratuitous ARP (a request or reply announcing the sender's own
    /// address) updates what the routers linked to the bridge already know
    /// of that address, as Linux does with `arp_accept` off: an existing
    /// entry moves to the new MAC (a VRRP or keepalived failover), none is
    /// created, and never to a MAC other than the one the bridge knows for
    /// the address (a VM's fixed IP). Port security has checked the sender.
    private mutating func noteGratuitousARP(_ bridge: CompiledBridge) {
        read([.arpOperation, .ipv4Source, .ipv4Destination, .arpSenderMAC])
        let address = key.ipv4Source
        guard key.ipv4Source == key.ipv4Destination, address != .any else { return }
        let mac = key.arpSenderMAC
        for index in bridge.routerLinks.range {
            let port = topology.ports[Int(topology.bridgeRouterLinks[index])]
            guard mayLearnNeighbour(address, at: mac, on: port) else { continue }
            let router = topology.routers[Int(port.deviceIndex)]
            result.tag(.arpEntry(router.id, address))
            guard let current = state.mac(of: address, in: router.id), current != mac else { continue }
            result.arpLearning.append(ARPLearning(router: router.id, address: address, mac: mac))
            trace(2, .arpReplyLearned(address, mac))
        }
    }

    /// Unicast out of `egress`: the bridge's and the port's outbound chains.
    private mutating func forward(_ bridge: CompiledBridge, to egress: Int32, ingress: Int32) -> DeviceOutcome {
        guard egress != ingress else {
            finish(.drop(.sameIngressAndEgress(bridge.id, topology.ports[Int(ingress)].id)))
            return .finished
        }
        if bridge.outboundChain != noIndex,
           !passChain(bridge.outboundChain, hook: .deviceOutbound, ingress: ingress, egress: egress) {
            return .finished
        }
        guard passPortOutbound(egress, ingress: ingress) else { return .finished }
        return .leave(egress)
    }

    /// Out of every exterior port but the ingress whose outbound chain accepts.
    /// The bridge's outbound chain runs once, with no egress port.
    private mutating func flood(_ bridge: CompiledBridge, ingress: Int32) -> DeviceOutcome {
        if bridge.outboundChain != noIndex,
           !passChain(bridge.outboundChain, hook: .deviceOutbound, ingress: ingress, egress: noIndex) {
            return .finished
        }
        for index in bridge.floodPorts.range {
            let port = topology.bridgeFloodPorts[index]
            guard port != ingress else { continue }
            let compiled = topology.ports[Int(port)]
            guard compiled.adminStateUp else {
                result.tag(.port(compiled.id))
                continue
            }
            if !state.unavailablePorts.isEmpty, state.unavailablePorts.contains(compiled.tunnelKey) {
                // Its host is dead: no copy goes there until it is back (its tag brings it back).
                result.tag(.port(compiled.id))
                result.floodExclusions.append(FloodExclusion(port: compiled.id, reason: .hostDown(compiled.id)))
                continue
            }
            if compiled.outboundChain != noIndex {
                result.tag(.port(compiled.id))
                // A port whose chain drops leaves the flood set; the drop is not the decision.
                let generated = result.generatedPackets.count
                if let reason = applyChain(compiled.outboundChain, hook: .portOutbound, ingress: ingress, egress: port) {
                    // A reject's answer to a flooded frame would be one per port: send none.
                    result.generatedPackets.removeSubrange(generated...)
                    result.floodExclusions.append(FloodExclusion(port: compiled.id, reason: reason))
                    continue
                }
            }
            if compiled.securityPolicy != noIndex, let reason = securityGroupVerdict(port: port, direction: .ingress) {
                result.floodExclusions.append(FloodExclusion(port: compiled.id, reason: reason))
                continue
            }
            result.outputPorts.append(compiled.id)
        }
        trace(2, .flood(bridge.id, ports: result.outputPorts.count))
        result.floodKey = bridge.floodKey
        finish(.flood(bridge.id))
        return .finished
    }
}
