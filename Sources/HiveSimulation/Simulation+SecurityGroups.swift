import HiveModel
import HivePacket

// Security groups at a VM's port, with Neutron's semantics: a packet from
// the VM (egress) is checked as it enters the bridge, right after port
// security; a packet to the VM (ingress) as it leaves the bridge, after the
// port's outbound chain. Both are tracked in the port's zone (its tunnel
// key): a packet of an allowed connection's return direction, or an error
// about it, passes without a rule; an invalid one drops; a new one needs a
// rule of one of the port's groups for its direction.
//
// ARP passes (port security has checked the VM's own); so does IPv6
// neighbour discovery. Other IPv6 is not tracked yet: it needs a rule of
// its own direction, each way.

extension SimulationRun {
    /// Nil when the port's groups let the packet through, else why not.
    mutating func securityGroupVerdict(port portIndex: Int32, direction: TrafficDirection) -> DropReason? {
        // Fields, not the whole port: a compiled port is large to copy.
        let policy = topology.ports[Int(portIndex)].securityPolicy
        guard policy != noIndex else { return nil }
        let portID = topology.ports[Int(portIndex)].id
        // The class, not its data: copying the data would retain each of its arrays.
        // Tagged without a search: a group on both ports of a path is only tagged twice.
        let policies = topology.securityPolicies
        for index in policies.data.policyTags[Int(policy)].range { result.tagOnce(.securityGroup(policies.data.tagGroups[index])) }
        for index in policies.data.tagRemotes[Int(policy)].range { result.tagOnce(.securityGroupMembers(policies.data.tagRemoteGroups[index])) }
        read(.etherType)
        if key.etherType.rawValue == 0x0806 { return nil }
        if key.etherType.rawValue == 0x86DD {
            read([.ipProtocol, .icmpType])
            // Router and neighbour solicitations and advertisements, redirects.
            if key.ipProtocol.rawValue == IPProtocolNumber.icmpv6, (133...137).contains(key.icmpType) { return nil }
            return checkRules(portID, policy: policy, direction: direction, version: 6, remote: nil)
        }
        guard key.etherType.rawValue == 0x0800 else { return .securityGroup(portID, direction) }
        let zone = topology.ports[Int(portIndex)].tunnelKey
        let states = connectionStates(zone: zone)
        if states.contains(.invalid) {
            if tracing { trace(2, .securityGroup(portID, direction, rule: nil, allowed: false)) }
            stateDecides(zone: zone)
            return .connectionInvalid(portID)
        }
        if states.isAllowedByState {
            if tracing { trace(2, .securityGroup(portID, direction, rule: nil, allowed: true)) }
            return nil
        }
        read(direction == .ingress ? .ipv4Source : .ipv4Destination)
        let refusal = checkRules(
            portID, policy: policy, direction: direction, version: 4, remote: direction == .ingress ? key.ipv4Source : key.ipv4Destination)
        // Accepted by a rule, the connection would be accepted by its state
        // once established: its flow holds then too. Refused, it holds for new alone.
        if refusal != nil { stateDecides(zone: zone) }
        return refusal
    }

    private mutating func checkRules(_ portID: PortID, policy: Int32, direction: TrafficDirection, version: UInt8, remote: IPv4.Address?) -> DropReason? {
        read([.ipProtocol, .fragmentKind])
        let protocolNumber = key.ipProtocol.rawValue
        let whole = key.fragmentKind != .later
        var destinationPort: UInt16?
        var icmpType: UInt8?
        if whole {
            switch protocolNumber {
            case IPProtocolNumber.tcp, IPProtocolNumber.udp, IPProtocolNumber.sctp:
                read(.destinationPort)
                destinationPort = key.destinationPort
            case IPProtocolNumber.icmp, IPProtocolNumber.icmpv6:
                read([.icmpType, .icmpCode])
                icmpType = key.icmpType
            default:
                break
            }
        }
        let rule = topology.securityPolicies.allowingRule(
            policy: policy, direction: direction, version: version, ipProtocol: protocolNumber, port: destinationPort,
            icmpType: icmpType, icmpCode: key.icmpCode, remote: remote)
        if tracing { trace(2, .securityGroup(portID, direction, rule: rule, allowed: rule != nil)) }
        return rule == nil ? .securityGroup(portID, direction) : nil
    }
}
