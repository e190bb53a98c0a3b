import HiveModel
import HivePacket

// Chains: rules in order, with jump/return on an explicit stack.
//
// A chain ends in accept: a matching `accept`, a `return` at the top level,
// or running out of rules. `continue` goes on to the next rule. A `jump`
// pushes the caller and starts the target; `return` or the target's end
// resumes the caller after the jump. A jump to a chain that is on the stack
// (or is the current one) is a loop and drops the packet, naming the rule.

extension SimulationRun {
    /// Applies chain `start` and, when it does not accept, makes the drop the decision.
    @inline(__always)
    mutating func passChain(_ start: Int32, hook: ChainHook, ingress: Int32, egress: Int32) -> Bool {
        guard let reason = applyChain(start, hook: hook, ingress: ingress, egress: egress) else { return true }
        if case .chainNotLoaded(let chain) = reason {
            finish(.pendingTopology(.chain(chain)))
        } else {
            finish(.drop(reason))
        }
        return false
    }

    /// Applies chain `start` to the packet: nil when it accepts, else why it
    /// did not (a reject's answer is generated).
    /// - Parameters:
    ///   - ingress: the port the packet entered the current device by.
    ///   - egress: the port it will leave by; `noIndex` before the device decided.
    mutating func applyChain(_ start: Int32, hook: ChainHook, ingress: Int32, egress: Int32) -> DropReason? {
        jumpStack.removeAll(keepingCapacity: true)
        // Chains named but not in the snapshot are numbered after its chains.
        if Int(start) >= topology.chains.count {
            let missing = topology.notLoadedChains[Int(start) - topology.chains.count]
            result.tag(.chain(missing))
            return .chainNotLoaded(missing)
        }
        var chainIndex = start
        var chain = topology.chains[Int(chainIndex)]
        result.tag(.chain(chain.id))
        if tracing {
            let port: Int32 = hook == .portInbound ? ingress : hook == .portOutbound ? egress : noIndex
            trace(2, .chain(chain.id, hook, port: port == noIndex ? nil : topology.ports[Int(port)].id))
        }
        let topChain = chain.id
        chainZone = connectionZone(hook: hook, ingress: ingress, egress: egress)
        if chain.tracksConnections { _ = connectionStates(zone: chainZone) }
        var ruleIndex = chain.rules.start
        while true {
            if ruleIndex == chain.rules.end {
                guard let caller = jumpStack.popLast() else {
                    trace(2, .chainVerdict(topChain, .accept(nil)))
                    return nil
                }
                chainIndex = caller.chain
                chain = topology.chains[Int(chainIndex)]
                ruleIndex = caller.next
                trace(3 + jumpStack.count, .returnTo(chain.id))
                continue
            }
            // Trivial storage owned by `topology`, which this run holds.
            let rulePointer = UnsafePointer(topology.ruleStorage.baseAddress! + Int(ruleIndex))
            let matched = matches(rulePointer, ingress: ingress, egress: egress)
            if tracing { traceRule(rulePointer.pointee, matched: matched) }
            guard matched else {
                // Cannot overflow: below the chain's end, an Int32 index.
                ruleIndex &+= 1
                continue
            }
            let rule = (id: rulePointer.pointee.id, action: rulePointer.pointee.action)
            result.tag(.rule(rule.id))
            switch rule.action {
            case .continue:
                ruleIndex &+= 1
            case .accept:
                trace(2, .chainVerdict(topChain, .accept(rule.id)))
                return nil
            case .return:
                guard let caller = jumpStack.popLast() else {
                    trace(2, .chainVerdict(topChain, .accept(rule.id)))
                    return nil
                }
                chainIndex = caller.chain
                chain = topology.chains[Int(chainIndex)]
                ruleIndex = caller.next
                trace(3 + jumpStack.count, .returnTo(chain.id))
            case .drop:
                trace(2, .chainVerdict(topChain, .drop(rule.id)))
                return .ruleDropped(chain: chain.id, rule: rule.id)
            case .reject:
                trace(2, .chainVerdict(topChain, .reject(rule.id)))
                reject(ingress: ingress)
                return .ruleRejected(chain: chain.id, rule: rule.id)
            case .snat, .dnat:
                natRule(rule.action, ingress: ingress)
                trace(2, .chainVerdict(topChain, .accept(rule.id)))
                return nil
            case .jump(let target):
                guard target != noIndex else {
                    trace(2, .chainVerdict(topChain, .error(rule.id)))
                    return .jumpToMissingChain(chain: chain.id, rule: rule.id)
                }
                let targetID = topology.chains[Int(target)].id
                if target == chainIndex || jumpStack.contains(where: { $0.chain == target }) {
                    trace(2, .chainVerdict(topChain, .error(rule.id)))
                    return .jumpLoop(chain: chain.id, rule: rule.id, target: targetID)
                }
                if jumpStack.count >= options.jumpDepthLimit {
                    trace(2, .chainVerdict(topChain, .error(rule.id)))
                    return .jumpTooDeep(chain: chain.id, rule: rule.id, limit: options.jumpDepthLimit)
                }
                jumpStack.append(JumpFrame(chain: chainIndex, next: ruleIndex &+ 1, rule: ruleIndex))
                trace(2 + jumpStack.count, .jump(from: chain.id, to: targetID))
                chainIndex = target
                chain = topology.chains[Int(chainIndex)]
                result.tag(.chain(chain.id))
                ruleIndex = chain.rules.start
            }
        }
    }

    @inline(never)
    mutating func traceRule(_ rule: CompiledRule, matched: Bool) {
        let action: RuleAction
        switch rule.action {
        case .accept: action = .accept
        case .drop: action = .drop
        case .reject: action = .reject
        case .return: action = .return
        case .continue: action = .continue
        case .jump(let target): action = .jump(target == noIndex ? topology.chains[Int(rule.chain)].id : topology.chains[Int(target)].id)
        case .snat(let target): action = .snat(topology.natTargets[Int(target)])
        case .dnat(let target): action = .dnat(topology.natTargets[Int(target)])
        }
        trace(3 + jumpStack.count, .rule(rule.id, matched: matched, action: action))
    }

    // MARK: Conditions

    /// True when every set condition holds (each inverted one fails).
    /// Marks the fields each evaluated condition reads; stops at the first
    /// condition that fails (its fields marked, the later ones not).
    /// - Complexity: O(set conditions), plus the length of port lists and
    ///   address groups; no allocation.
    @inline(__always)
    mutating func matches(_ rule: UnsafePointer<CompiledRule>, ingress: Int32, egress: Int32) -> Bool {
        let present = rule.pointee.conditions.present
        if present.isEmpty { return true }
        var fields = FlowFields()
        // Looked up only when a rule asks (and once per zone per simulation).
        var states: ConnectionStates = []
        if present.contains(.connectionState) {
            states = connectionStates(zone: chainZone)
            stateDecides(zone: chainZone)
        }
        let matched = evaluate(rule, present, ingress: ingress, egress: egress, states: states, fields: &fields)
        result.fieldsRead.formUnion(fields)
        if _slowPath(!present.isDisjoint(with: [.sourceAddressGroup, .destinationAddressGroup])) {
            tagAddressGroups(rule.pointee.conditions, fields: fields)
        }
        return matched
    }

    @inline(__always)
    private func evaluate(
        _ rule: UnsafePointer<CompiledRule>, _ present: ConditionSet, ingress: Int32, egress: Int32, states: ConnectionStates,
        fields: inout FlowFields
    ) -> Bool {
        let inverted = rule.pointee.conditions.inverted
        @inline(__always) func holds(_ condition: ConditionSet, _ positive: Bool) -> Bool {
            positive != inverted.contains(condition)
        }
        if !present.isDisjoint(with: .portConditions) {
            if present.contains(.inPorts) {
                if !holds(.inPorts, listContains(rule.pointee.conditions.inPorts, ingress)) { return false }
            }
            if present.contains(.outPorts) {
                if !holds(.outPorts, egress != noIndex && listContains(rule.pointee.conditions.outPorts, egress)) { return false }
            }
            if present.contains(.inPortGroup) {
                if !holds(.inPortGroup, portInGroup(ingress, rule.pointee.conditions.inPortGroup)) { return false }
            }
            if present.contains(.outPortGroup) {
                if !holds(.outPortGroup, egress != noIndex && portInGroup(egress, rule.pointee.conditions.outPortGroup)) { return false }
            }
        }
        if present.contains(.etherType) {
            fields.insert(.etherType)
            if !holds(.etherType, key.etherType.rawValue == rule.pointee.conditions.etherType) { return false }
        }
        if present.contains(.sourceMAC) {
            fields.insert(.ethernetSource)
            if !holds(.sourceMAC, key.ethernetSource == rule.pointee.conditions.sourceMAC) { return false }
        }
        if present.contains(.destinationMAC) {
            fields.insert(.ethernetDestination)
            if !holds(.destinationMAC, key.ethernetDestination == rule.pointee.conditions.destinationMAC) { return false }
        }
        if !present.isDisjoint(with: .ipConditions) {
            fields.insert(.etherType)
            // Raw values: the named constants are lazily initialized globals of another module.
            let isIPv4 = key.etherType.rawValue == 0x0800
            let protocolNumber = key.ipProtocol.rawValue
            if present.contains(.ipProtocol) {
                fields.insert(.ipProtocol)
                if !holds(.ipProtocol, isIPv4 && protocolNumber == rule.pointee.conditions.ipProtocol) { return false }
            }
            if present.contains(.sourcePrefix) {
                fields.insert(.ipv4Source)
                if !holds(.sourcePrefix, isIPv4 && rule.pointee.conditions.sourcePrefix.contains(key.ipv4Source)) { return false }
            }
            if present.contains(.destinationPrefix) {
                fields.insert(.ipv4Destination)
                if !holds(.destinationPrefix, isIPv4 && rule.pointee.conditions.destinationPrefix.contains(key.ipv4Destination)) {
                    return false
                }
            }
            if present.contains(.sourceAddressGroup) {
                fields.insert(.ipv4Source)
                let group = rule.pointee.conditions.sourceAddressGroup
                if !holds(.sourceAddressGroup, isIPv4 && inAddressGroup(key.ipv4Source, group)) { return false }
            }
            if present.contains(.destinationAddressGroup) {
                fields.insert(.ipv4Destination)
                let group = rule.pointee.conditions.destinationAddressGroup
                if !holds(.destinationAddressGroup, isIPv4 && inAddressGroup(key.ipv4Destination, group)) { return false }
            }
            if !present.isDisjoint(with: .transportConditions) {
                fields.formUnion([.ipProtocol, .fragmentKind])
                let whole = isIPv4 && key.fragmentKind != .later
                let hasPorts = whole && (protocolNumber == 6 || protocolNumber == 17)
                let isICMP = whole && protocolNumber == 1
                if present.contains(.sourcePorts) {
                    fields.insert(.sourcePort)
                    if !holds(.sourcePorts, hasPorts && rule.pointee.conditions.sourcePorts.contains(key.sourcePort)) { return false }
                }
                if present.contains(.destinationPorts) {
                    fields.insert(.destinationPort)
                    if !holds(.destinationPorts, hasPorts && rule.pointee.conditions.destinationPorts.contains(key.destinationPort)) {
                        return false
                    }
                }
                if present.contains(.icmpType) {
                    fields.insert(.icmpType)
                    if !holds(.icmpType, isICMP && key.icmpType == rule.pointee.conditions.icmpType) { return false }
                }
                if present.contains(.icmpCode) {
                    fields.insert(.icmpCode)
                    if !holds(.icmpCode, isICMP && key.icmpCode == rule.pointee.conditions.icmpCode) { return false }
                }
            }
        }
        if present.contains(.connectionState) {
            fields.insert(.connectionState)
            if !holds(.connectionState, states.contains(ConnectionStates(rule.pointee.conditions.connectionState))) { return false }
        }
        if present.contains(.fragments) {
            fields.formUnion([.etherType, .fragmentKind])
            let kind = key.fragmentKind
            let positive: Bool
            switch rule.pointee.conditions.fragments {
            case .any: positive = true
            case .unfragmented: positive = kind == .none
            case .first: positive = kind == .first
            case .later: positive = kind == .later
            }
            if !holds(.fragments, positive) { return false }
        }
        return true
    }

    @inline(__always)
    func listContains(_ list: IndexRange, _ port: Int32) -> Bool {
        for index in list.range where topology.rulePortLists[index] == port { return true }
        return false
    }

    @inline(__always)
    func portInGroup(_ port: Int32, _ group: Int32) -> Bool {
        guard group != noIndex else { return false }
        for index in topology.ports[Int(port)].groups.range where topology.portGroupMemberships[index] == group { return true }
        return false
    }

    @inline(__always)
    func inAddressGroup(_ address: IPv4.Address, _ group: Int32) -> Bool {
        guard group != noIndex else { return false }
        for index in topology.addressGroupMembers[Int(group)].range where topology.addressGroupPrefixes[index].contains(address) {
            return true
        }
        return false
    }

    /// Tags the address groups a rule's evaluation read (those whose address field was read).
    @inline(never)
    mutating func tagAddressGroups(_ conditions: CompiledConditions, fields: FlowFields) {
        if conditions.present.contains(.sourceAddressGroup), fields.contains(.ipv4Source), conditions.sourceAddressGroup != noIndex {
            result.tag(.ipAddressGroup(topology.addressGroupIDs[Int(conditions.sourceAddressGroup)]))
        }
        if conditions.present.contains(.destinationAddressGroup), fields.contains(.ipv4Destination),
           conditions.destinationAddressGroup != noIndex {
            result.tag(.ipAddressGroup(topology.addressGroupIDs[Int(conditions.destinationAddressGroup)]))
        }
    }

    // MARK: Reject

    /// The answer to a rejected packet, sent back out of the port it entered
    /// the current device by: a TCP reset for TCP (not for a reset), else
    /// ICMP administratively prohibited when an error may be sent. From a
    /// router port, the ICMP error comes from the port's address and MAC;
    /// elsewhere from the packet's destination, as the host would answer.
    @inline(never)
    mutating func reject(ingress: Int32) {
        read([.etherType, .ipProtocol, .fragmentKind])
        guard key.isIPv4 else { return }
        let port = topology.ports[Int(ingress)]
        if key.ipProtocol == .tcp, key.fragmentKind != .later {
            read(.tcpFlags)
            if let reset = try? TCP.resetFrame(for: currentFrame()) {
                emit(.tcpReset, out: ingress, frame: reset)
            }
            return
        }
        guard mayReportError(subnetBroadcast: port.hasAddress ? port.subnet.broadcast : nil) else { return }
        let (mac, address) = port.hasAddress ? (port.mac, port.address) : (key.ethernetDestination, key.ipv4Destination)
        if let bytes = try? ICMPv4.unreachableFrame(
            code: .administrativelyProhibited, about: currentFrame(), sourceMAC: mac, sourceIP: address) {
            emit(.destinationUnreachable, out: ingress, frame: bytes)
        }
    }

    /// RFC 1812 §4.3.2.7 on the flow key: no ICMP error about an ICMP error,
    /// a later fragment, or a packet to or from a broadcast or multicast
    /// address (including the ingress subnet's broadcast and a broadcast frame).
    mutating func mayReportError(subnetBroadcast: IPv4.Address?) -> Bool {
        read([.ipv4Source, .ipv4Destination, .fragmentKind, .ethernetDestination, .ipProtocol])
        if key.fragmentKind == .later { return false }
        if key.ethernetDestination.isMulticast { return false }
        let destination = key.ipv4Destination
        if destination.isMulticast || destination == .broadcast || destination == subnetBroadcast { return false }
        let source = key.ipv4Source
        if source.isMulticast || source == .broadcast || source.isUnspecified { return false }
        if key.ipProtocol == .icmp {
            read(.icmpType)
            if ICMPv4.MessageType(key.icmpType).isError { return false }
        }
        return true
    }
}
