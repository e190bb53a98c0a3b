import HiveModel
import HivePacket

// The packet's connection-tracking state in a zone, read from the agent's
// table (`ConnectionTable`), once per zone per simulation. What was seen is
// recorded in `result.connections` for the agent to apply if the packet is
// forwarded, and each connection is a tag of the flow.
//
// Tracked: IPv4 TCP (its state machine), UDP, ICMP echo (request and reply
// share the identifier), other protocols by addresses alone; ICMP errors
// quoting a tracked connection are `related`. Not tracked (no state, no
// rule on ct-state matches): ARP, IPv6, and fragments after the first,
// which carry no ports.

extension SimulationRun {
    /// The packet's states in `zone`.
    mutating func connectionStates(zone: UInt32) -> ConnectionStates {
        read(.connectionState)
        for observation in result.connections where observation.key.zone == zone { return observation.states }
        if let assumed = options.connectionState {
            // A reply is established too. The packet's key is still recorded
            // (no entry): NAT reads a zone's observation to translate.
            let states: ConnectionStates = assumed == .reply ? [.established, .reply] : ConnectionStates(assumed)
            // An assumed state depends on no field: building the key reads none.
            let fieldsRead = result.fieldsRead
            if let tuple = connectionKey(zone: zone) {
                result.connections.append(ConnectionObservation(key: tuple, slot: -1, isReply: false, states: states, owner: result.ingressKey.inPort))
            }
            result.fieldsRead = fieldsRead
            return states
        }
        guard let observation = observe(zone: zone) else {
            if tracing { trace(2, .connection(zone: zone, [])) }
            return []
        }
        if tracing { trace(2, .connection(zone: zone, observation.states)) }
        result.connections.append(observation)
        result.tagOnce(.connection(observation.originalKey.tag))
        return observation.states
    }

    /// A decision read the exact states of `zone`: a cached flow holds for
    /// them alone (`ConnectionObservation.stateDecides`).
    mutating func stateDecides(zone: UInt32) {
        for index in result.connections.indices where result.connections[index].key.zone == zone {
            result.connections[index].stateDecides = true
        }
    }

    /// The packet's connection key in `zone`: addresses, protocol, TCP and
    /// UDP ports, an ICMP echo's identifier as both ports; nil when it is
    /// not tracked (not IPv4, a later fragment).
    mutating func connectionKey(zone: UInt32) -> ConnectionKey? {
        read([.etherType, .ipProtocol, .fragmentKind])
        guard key.isIPv4, key.fragmentKind != .later else { return nil }
        read([.ipv4Source, .ipv4Destination])
        var tuple = ConnectionKey(
            zone: zone, source: key.ipv4Source, destination: key.ipv4Destination, sourcePort: 0, destinationPort: 0,
            ipProtocol: key.ipProtocol.rawValue)
        switch key.ipProtocol.rawValue {
        case IPProtocolNumber.tcp, IPProtocolNumber.udp:
            read([.sourcePort, .destinationPort])
            tuple.sourcePort = key.sourcePort
            tuple.destinationPort = key.destinationPort
        case IPProtocolNumber.icmp:
            read([.icmpType, .icmpCode])
            if key.icmpType == ICMPv4.MessageType.echoRequest.rawValue || key.icmpType == ICMPv4.MessageType.echoReply.rawValue {
                read(.icmpIdentifier)
                tuple.sourcePort = key.icmpIdentifier
                tuple.destinationPort = key.icmpIdentifier
            }
        default:
            break
        }
        return tuple
    }

    private mutating func observe(zone: UInt32) -> ConnectionObservation? {
        guard let tuple = connectionKey(zone: zone) else { return nil }
        let owner = result.ingressKey.inPort
        let found: (slot: Int32, isReply: Bool)?
        let states: ConnectionStates
        switch key.ipProtocol.rawValue {
        case IPProtocolNumber.tcp:
            // The flags are not read into the flow's mask: a cached flow's
            // connections are checked on each hit (`ConnectionTable.allows`).
            found = connections.lookup(tuple, now: now)
            let entry = found.flatMap { connections.entry($0.slot) }
            states = tcpTransition(entry, isReply: found?.isReply ?? false, flags: key.tcpFlags).states
        case IPProtocolNumber.udp:
            found = connections.lookup(tuple, now: now)
            states = datagramStates(found)
        case IPProtocolNumber.icmp:
            let type = ICMPv4.MessageType(key.icmpType)
            if type.isError {
                return relatedObservation(zone: zone, owner: owner)
            }
            found = connections.lookup(tuple, now: now)
            // A reply to no request is invalid, as in Linux.
            if type == .echoReply, found == nil {
                states = .invalid
            } else {
                states = datagramStates(found)
            }
        default:
            found = connections.lookup(tuple, now: now)
            states = datagramStates(found)
        }
        let entry = found.flatMap { connections.entry($0.slot) }
        return ConnectionObservation(
            key: tuple, slot: found?.slot ?? -1, isReply: found?.isReply ?? false, states: states, owner: owner,
            originalKey: entry?.key, replyKey: entry?.replyKey)
    }

    /// UDP, ICMP echo and other protocols: new until a reply is seen.
    private func datagramStates(_ found: (slot: Int32, isReply: Bool)?) -> ConnectionStates {
        guard let found, let entry = connections.entry(found.slot) else { return .new }
        return entry.datagramStates(isReply: found.isReply)
    }

    /// An ICMP error: `related` (and `reply` when it travels against the
    /// connection's original direction) if the datagram it quotes belongs to
    /// a tracked connection, else invalid. Reads the payload: not cacheable.
    private mutating func relatedObservation(zone: UInt32, owner: UInt32) -> ConnectionObservation? {
        result.dependsOnPayload = true
        guard let quoted = quotedKey(zone: zone) else {
            return ConnectionObservation(
                key: ConnectionKey(zone: zone, source: key.ipv4Source, destination: key.ipv4Destination, sourcePort: 0, destinationPort: 0, ipProtocol: 1),
                slot: -1, isReply: false, states: .invalid, owner: owner)
        }
        // The quoted datagram as one side sent it, or as NAT made it (the
        // reverse of the other direction's key).
        var found = connections.lookup(quoted, now: now)
        if found == nil, let reversed = connections.lookup(quoted.reversed, now: now) {
            found = (reversed.slot, !reversed.isReply)
        }
        guard let found else {
            return ConnectionObservation(key: quoted, slot: -1, isReply: false, states: .invalid, owner: owner)
        }
        // The quoted datagram went the connection's original way: the error comes back the reply way.
        let states: ConnectionStates = found.isReply ? .related : [.related, .reply]
        let entry = connections.entry(found.slot)
        return ConnectionObservation(
            key: quoted, slot: found.slot, isReply: found.isReply, states: states, owner: owner, originalKey: entry?.key, replyKey: entry?.replyKey)
    }

    /// The connection key of the datagram an ICMP error quotes (its IPv4
    /// header and first 8 bytes), in `zone`.
    private func quotedKey(zone: UInt32) -> ConnectionKey? {
        frame.withUnsafeBytes { bytes -> ConnectionKey? in
            guard let ethernet = try? Ethernet.Header(parsing: bytes) else { return nil }
            let ip = ethernet.length
            guard bytes.count >= ip + 20 else { return nil }
            let outerLength = Int(bytes[ip] & 0x0F) * 4
            // ICMP header (8), then the quoted IPv4 header.
            let inner = ip + outerLength + 8
            guard outerLength >= 20, bytes.count >= inner + 20, bytes[inner] >> 4 == 4 else { return nil }
            let innerLength = Int(bytes[inner] & 0x0F) * 4
            let ipProtocol = bytes[inner + 9]
            func address(_ offset: Int) -> IPv4.Address {
                IPv4.Address(UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3]))
            }
            func word(_ offset: Int) -> UInt16 { UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]) }
            var quoted = ConnectionKey(
                zone: zone, source: address(inner + 12), destination: address(inner + 16), sourcePort: 0, destinationPort: 0,
                ipProtocol: ipProtocol)
            let transport = inner + innerLength
            guard innerLength >= 20, bytes.count >= transport + 8 else { return quoted }
            switch ipProtocol {
            case IPProtocolNumber.tcp, IPProtocolNumber.udp:
                quoted.sourcePort = word(transport)
                quoted.destinationPort = word(transport + 2)
            case IPProtocolNumber.icmp where bytes[transport] == 8 || bytes[transport] == 0:
                quoted.sourcePort = word(transport + 4)
                quoted.destinationPort = quoted.sourcePort
            default:
                break
            }
            return quoted
        }
    }

    /// The zone a chain at `hook` tracks connections in: the port's for port
    /// hooks, the device's for device hooks.
    func connectionZone(hook: ChainHook, ingress: Int32, egress: Int32) -> UInt32 {
        switch hook {
        case .portInbound: return topology.ports[Int(ingress)].tunnelKey
        case .portOutbound: return egress == noIndex ? 0 : topology.ports[Int(egress)].tunnelKey
        case .deviceInbound, .deviceOutbound:
            let port = topology.ports[Int(ingress)]
            return port.isRouterPort ? topology.routers[Int(port.deviceIndex)].zone : topology.bridges[Int(port.deviceIndex)].zone
        }
    }
}
