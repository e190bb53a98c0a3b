import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Synchronization

/// What a simulation asks of the control plane: learned entries to share
/// through the NSDB, packets to hold until an ARP answer, traces.
///
/// Two streams carry them. Learning and traces go on a bounded one (a lost
/// entry is learned again by the next packet that shows it); a port that
/// failed, a packet to hold and the entries other hosts sent (answers held
/// packets may wait for) go on one that never drops (`control`), so no port
/// stays unbound and no held packet is lost because learning flooded the
/// other. Their rate is bounded by the upcall limits (the other hosts').
enum UpcallEvent: Sendable {
    case learnMAC(MACLearning)
    case learnARP(ARPLearning)
    /// Known entries the traffic confirmed: they must not age out.
    case refreshed(macs: [MACLearning], arps: [ARPLearning])
    case waitForARP(router: RouterID, address: IPv4.Address, frame: [UInt8], inPort: UInt32)
    /// A DHCP client on a port without an address: give it one, then simulate `frame` again.
    case waitForAddress(port: PortID, frame: [UInt8], inPort: UInt32)
    /// The packet crosses a link to `port`, on a device not loaded here: load it, then simulate `frame` again.
    case waitForTopology(PendingObject, frame: [UInt8], inPort: UInt32)
    /// SNAT to `address` found no free port in this host's blocks: lease one, then simulate `frame` again.
    case waitForNATPorts(NATPortRequest, frame: [UInt8], inPort: UInt32)
    case portFailed(portKey: UInt32, reason: String)
    /// Entries another host learned and sent here directly (`LearnedStateMessage`).
    case learnedElsewhere([SharedLearning], from: IPv4.Address)
    /// A packet a live trace asked for, to publish under the request's lease.
    case traced(LiveTraceID, lease: LeaseID, TraceReport)
}

/// The agent's upcall handler: on the datapath thread, simulate a missed
/// packet on the current view and translate the result into datapath
/// actions (local output or tunnel to the port's host, with its tunnel key).
///
/// Runs on the datapath thread only; talks to the control plane through
/// `events`, whose `yield` never blocks.
final class SimulationUpcalls: UpcallHandler {
    let shared: SharedView
    let events: AsyncStream<UpcallEvent>.Continuation
    /// Port failures and packets to hold: never dropped.
    let control: AsyncStream<UpcallEvent>.Continuation
    /// Simulations by outcome, counted here and published every 50 ms.
    private var simulationCounts: [String: UInt64] = [:]
    let publishedSimulationCounts = PublishedSimulationCounts()
    private(set) var view = AgentView.empty
    /// The host's connection table: read by simulations, changed after them.
    private(set) var connections: ConnectionTable
    private var lastExpiry: UInt64 = 0
    private var lastBlockScan: UInt64 = 0
    /// The last `ConnectionFlush` applied.
    private var flushedThrough: UInt64 = 0
    static let blockScanInterval: UInt64 = 5_000_000_000
    /// The SNAT port blocks the table's translated connections use, for the
    /// control plane to give idle ones back (published every 5 s).
    let blocksInUse = PublishedNATBlocks()
    /// The table's size and counters, for metrics (published every 50 ms).
    let connectionStatistics = PublishedConnectionStatistics()
    /// One context per nesting depth: generated packets on interior ports are
    /// simulated again from the peer while the outer result is still read.
    private var contexts = [SimulationContext(), SimulationContext(), SimulationContext(), SimulationContext()]
    /// Live traces: packets traced per request so far, and the context of
    /// the simulations run only to trace a packet a cached flow carried.
    var tracedCounts: [LiveTraceID: Int] = [:]
    var traceContext = SimulationContext(capacity: 16)
    /// Whether any live trace is armed on a port of this host (the datapath reads it each batch).
    var isTracing: Bool { !view.traces.isEmpty }
    func isTraced(portKey: UInt32) -> Bool { view.traces[portKey] != nil }

    init(
        shared: SharedView, events: AsyncStream<UpcallEvent>.Continuation, control: AsyncStream<UpcallEvent>.Continuation? = nil,
        connections: ConnectionTable = ConnectionTable()
    ) {
        self.shared = shared
        self.events = events
        self.control = control ?? events
        self.connections = connections
    }

    func beginBatch() {
        view = shared.view
        if let last = view.connectionFlushes.last, last.sequence > flushedThrough {
            // The flows of these connections go with the router's tag, posted after this view.
            var tags: [UInt64] = []
            for flush in view.connectionFlushes where flush.sequence > flushedThrough {
                connections.flush(zone: flush.zone, translatedAddress: flush.address, into: &tags)
            }
            flushedThrough = last.sequence
        }
    }

    func portFailed(portKey: UInt32, error: SystemError) {
        control.yield(.portFailed(portKey: portKey, reason: "\(error)"))
    }

    func handleMiss(frame: UnsafeRawBufferPointer, key: FlowKey, decision: inout UpcallDecision) {
        let bytes = Array(frame)
        var state = view.state
        let now = monotonicNanoseconds()
        let trace = view.traces.isEmpty ? nil : armedTrace(for: key)
        var options = options
        options.recordsTrace = trace != nil
        contexts[0].simulate(frame: bytes, key: key, in: view.topology.snapshot(inPort: key.inPort), state: state, connections: connections, now: now, options: options)
        let result = contexts[0].result
        defer { if let trace { publishTrace(trace, of: result, key: key, decision: decision) } }
        simulationCounts[Self.label(result.decision), default: 0] &+= 1
        for entry in result.macLearning { events.yield(.learnMAC(entry)) }
        for entry in result.arpLearning { events.yield(.learnARP(entry)) }
        if !result.macRefreshes.isEmpty || !result.arpRefreshes.isEmpty {
            events.yield(.refreshed(macs: result.macRefreshes, arps: result.arpRefreshes))
        }
        state.apply(learningFrom: result)

        decision.actions = FlowActions(rewrites: result.actions.map(Self.rewrite), outputs: outputs(for: result))
        switch result.decision {
        case .drop(let reason): decision.actions.dropCode = DropCode.code(for: reason)
        case .consumed: decision.actions.dropCode = FlowActions.answered
        case .output, .flood, .pendingARP, .pendingAddress, .pendingNATPorts, .pendingTopology: break
        }
        if decision.actions.outputs.contains(where: \.isTunnel) {
            decision.actions.tunnelMTU = view.networkMTU
            decision.actions.tooBigSource = result.routerHop.map { ICMPErrorSource(mac: $0.mac, address: $0.address) }
        }
        decision.cache = result.isCacheable
        decision.mask = Self.mask(for: result)
        if case .output = result.decision, !result.connections.isEmpty {
            commitConnections(of: result, flags: key.tcpFlags, now: now, into: &decision)
        } else if !result.connections.isEmpty {
            // Nothing to confirm: the flow's hits only check its connections.
            decision.tracking = FlowTracking(connections: result.connections.map { record($0, slot: $0.slot) }, commits: false, peers: [])
        }
        for tag in result.tags { decision.tags.append(flowTag(tag)) }
        for port in result.outputPorts { decision.tags.append(flowTag(.port(port))) }
        if case .pendingARP(let router, let address, _) = result.decision {
            control.yield(.waitForARP(router: router, address: address, frame: bytes, inPort: key.inPort))
            decision.held = true
        }
        if case .pendingAddress(let port) = result.decision {
            control.yield(.waitForAddress(port: port, frame: bytes, inPort: key.inPort))
            decision.held = true
        }
        if case .pendingTopology(let object) = result.decision {
            control.yield(.waitForTopology(object, frame: bytes, inPort: key.inPort))
            decision.held = true
        }
        if case .pendingNATPorts(let address, let first, let last, let preferred) = result.decision {
            let request = NATPortRequest(address: address, firstPort: first, lastPort: last, preferredPort: preferred)
            control.yield(.waitForNATPorts(request, frame: bytes, inPort: key.inPort))
            decision.held = true
        }
        for generated in result.generatedPackets {
            emit(generated, state: state, depth: 1, into: &decision)
        }
    }

    /// Sends a generated packet: straight out of an exterior port, or through
    /// the topology again from the peer of an interior one.
    private func emit(_ packet: GeneratedPacket, state: SimulationState, depth: Int, into decision: inout UpcallDecision) {
        guard let port = view.topology.port(packet.port) else { return }
        guard let peer = port.peerId.flatMap({ view.topology.port($0) }) else {
            let outputs = outputs(forPorts: [packet.port])
            if !outputs.isEmpty { decision.generated.append((packet.frame, outputs)) }
            return
        }
        guard depth < contexts.count, let key = try? FlowKey(parsing: packet.frame, inPort: peer.tunnelKey) else { return }
        contexts[depth].simulate(frame: packet.frame, key: key, in: view.topology.snapshot(inPort: key.inPort), state: state, options: options)
        let result = contexts[depth].result
        for entry in result.macLearning { events.yield(.learnMAC(entry)) }
        // A router's ARP request answered by a bridge that knows the address comes back here.
        for entry in result.arpLearning { events.yield(.learnARP(entry)) }
        var frame = packet.frame
        for action in result.actions { action.apply(to: &frame) }
        let outputs = outputs(for: result)
        if !outputs.isEmpty { decision.generated.append((frame, outputs)) }
        if case .pendingARP(let router, let address, _) = result.decision {
            control.yield(.waitForARP(router: router, address: address, frame: packet.frame, inPort: peer.tunnelKey))
        }
        var inner = state
        inner.apply(learningFrom: result)
        for generated in result.generatedPackets {
            emit(generated, state: inner, depth: depth + 1, into: &decision)
        }
    }

    var options: SimulationOptions { SimulationOptions(networkMTU: view.networkMTU) }

    /// The fields a flow for `result` matches: only those the simulation
    /// read (a megaflow), unless the decision depends on more than the key:
    /// a connection's state or a translation (connection tracking keeps
    /// per-connection state, and flow state goes to other hosts on a miss).
    /// Such a flow matches every field but TCP's flags, unless a rule read
    /// them: its hits check its connections (`FlowTracking`), so one flow
    /// carries a connection's SYN-less segments, PSH, FIN and ACK alike.
    static func mask(for result: SimulationResult) -> FlowMask {
        let read = FlowMask(rawValue: result.fieldsRead.rawValue).intersection(.exact)
        let tracked = result.fieldsRead.contains(.connectionState) || !result.connections.isEmpty
            || result.actions.contains(where: { $0.translation != nil })
        guard tracked else { return read }
        return read.contains(.tcpFlags) ? .exact : FlowMask.exact.subtracting(.tcpFlags)
    }

    /// What a flow keeps of `observation` to check on its hits, the entry
    /// being in `slot` (-1: none).
    private func record(_ observation: ConnectionObservation, slot: Int32) -> FlowConnection {
        let entry = connections.entry(slot)
        return FlowConnection(
            key: observation.key, isReply: entry.map { $0.key != observation.key } ?? observation.isReply, slot: entry == nil ? -1 : slot,
            generation: entry?.generation ?? 0, validStates: observation.validStates)
    }

    func track(_ tracking: FlowTracking, flags: TCP.Flags, now: UInt64, messages: inout [(host: IPv4.Address, payload: [UInt8])]) -> Bool {
        for connection in tracking.connections where !connections.allows(connection, flags: flags, now: now) { return false }
        guard tracking.commits else { return true }
        for connection in tracking.connections {
            guard let changed = connections.advance(connection, flags: flags, now: now), !tracking.peers.isEmpty else { continue }
            let message = FlowStateMessage.encode([changed])
            for host in tracking.peers { messages.append((host, message)) }
        }
        return true
    }

    // MARK: Connections

    /// The packet is forwarded: its connections are created or moved on
    /// (Linux's confirm), flows that saw an old state go, the new flow lives
    /// half the connection's timeout at most, and the entries travel to the
    /// egress host before the packet, so its reply is recognised there.
    private func commitConnections(of result: SimulationResult, flags: TCP.Flags, now: UInt64, into decision: inout UpcallDecision) {
        var entries: [ConnectionEntry] = []
        var records: [FlowConnection] = []
        var hardTimeout = UInt64.max
        for observation in result.connections {
            let (slot, changed) = connections.apply(observation, tcpFlags: flags, now: now)
            if changed { decision.invalidations.append(flowTag(.connection(observation.originalKey.tag))) }
            records.append(record(observation, slot: slot ?? -1))
            guard let slot else {
                if observation.states == .new {
                    // No room, even after early drop: the new connection's packet drops.
                    decision.actions = FlowActions(dropCode: DropCode.conntrackFull)
                    decision.cache = false
                    return
                }
                continue
            }
            hardTimeout = min(hardTimeout, connections.timeout(of: slot) / 2)
            if let entry = connections.entry(slot) { entries.append(entry) }
        }
        if hardTimeout != .max { decision.hardTimeout = max(hardTimeout, 1_000_000_000) }
        // A retransmitted SYN or SYN-ACK misses the flow (`ConnectionTable.allows`):
        // simulated again, it sends its flow state again, so a lost message
        // costs the connection one retransmission, not a flow's lifetime.
        decision.tracking = FlowTracking(connections: records, commits: true, peers: [])
        guard !entries.isEmpty else { return }
        var hosts: [IPv4.Address] = []
        for output in decision.actions.outputs {
            if let host = output.tunnelDestination?.host, !hosts.contains(host) { hosts.append(host) }
        }
        if !view.statefulPeers.isEmpty {
            let ingress = view.topology.port(tunnelKey: result.ingressKey.inPort)?.id
            for port in [ingress].compactMap({ $0 }) + result.outputPorts {
                for host in view.statefulPeers[port] ?? [] where !hosts.contains(host) { hosts.append(host) }
            }
        }
        // A router's connections (NAT bindings above all) go to the hosts of
        // every uplink of the routers crossed: a reply may come back in
        // through any of them.
        if !view.uplinkHosts.isEmpty, entries.contains(where: { $0.key.zone >= 0x0100_0000 }) {
            for tag in result.tags {
                guard case .router(let router) = tag, let uplinks = view.uplinkHosts[router] else { continue }
                for host in uplinks where !hosts.contains(host) { hosts.append(host) }
            }
        }
        if hosts.isEmpty { return }
        decision.tracking?.peers = hosts
        for message in FlowStateMessage.messages(entries) {
            for host in hosts { decision.flowState.append((host, message)) }
        }
    }

    /// Every translated connection's SNAT (address, block): O(entries), every 5 s.
    private func publishBlocksInUse(now: UInt64) {
        var used = Set<NATBlockKey>()
        for entry in connections.liveEntries(now: now) where entry.isSourceTranslated {
            used.insert(NATBlockKey(address: entry.replyKey.destination, block: NATBlock.of(entry.replyKey.destinationPort)))
        }
        blocksInUse.value.withLock { $0 = used }
    }

    func receiveFlowState(_ payload: UnsafeRawBufferPointer, from host: IPv4.Address, invalidations: inout [FlowTag]) {
        if payload.first == LearnedStateMessage.version {
            // Packets may be held for these ARP answers: the stream that never drops.
            if let learned = LearnedStateMessage.decode(payload) {
                control.yield(.learnedElsewhere(learned, from: host))
            } else {
                connectionStatistics.value.withLock { $0.malformedMessages &+= 1 }
            }
            return
        }
        guard let entries = FlowStateMessage.decode(payload) else {
            connectionStatistics.value.withLock { $0.malformedMessages &+= 1 }
            return
        }
        let now = monotonicNanoseconds()
        for entry in entries {
            let (_, changed) = connections.install(entry, now: now)
            guard changed else { continue }
            invalidations.append(flowTag(.connection(entry.key.tag)))
            // A reply that got here before this message was simulated without
            // the connection and may have left a drop flow, tagged as if it
            // opened a connection of its own: it goes too, so the reply's
            // retransmission finds the connection.
            invalidations.append(flowTag(.connection(entry.replyKey.tag)))
        }
    }

    /// The connections, as flow-state messages each preceded by its length
    /// (2 bytes): what a restarted agent reads back.
    func savedConnections() -> [UInt8] {
        var bytes: [UInt8] = []
        for message in FlowStateMessage.messages(connections.liveEntries(now: monotonicNanoseconds())) {
            bytes += [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
        }
        return bytes
    }

    /// Installs saved connections; returns how many, or nil when the bytes are malformed.
    func restoreConnections(_ bytes: [UInt8]) -> Int? {
        var offset = 0
        var restored = 0
        let now = monotonicNanoseconds()
        while offset < bytes.count {
            guard offset + 2 <= bytes.count else { return nil }
            let length = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
            guard offset + 2 + length <= bytes.count else { return nil }
            let entries = bytes[(offset + 2)..<(offset + 2 + length)].withUnsafeBytes { FlowStateMessage.decode($0) }
            guard let entries else { return nil }
            for entry in entries where connections.install(entry, now: now).slot != nil { restored += 1 }
            offset += 2 + length
        }
        return restored
    }

    func housekeeping(now: UInt64, invalidations: inout [FlowTag]) {
        if now &- lastExpiry >= 1_000_000_000 {
            lastExpiry = now
            var expired: [UInt64] = []
            connections.expire(now: now, into: &expired)
            for tag in expired { invalidations.append(flowTag(.connection(tag))) }
        }
        if now &- lastBlockScan >= Self.blockScanInterval {
            lastBlockScan = now
            publishBlocksInUse(now: now)
        }
        let counts = simulationCounts
        publishedSimulationCounts.value.withLock { $0 = counts }
        let snapshot = (count: connections.count, counters: connections.counters)
        connectionStatistics.value.withLock {
            $0.entries = snapshot.count
            $0.counters = snapshot.counters
        }
    }

    func outputs(for result: SimulationResult) -> [FlowOutput] {
        switch result.decision {
        case .output: outputs(forPorts: result.outputPorts)
        case .flood:
            Self.floodOutputs(
                outputs(forPorts: result.outputPorts), floodKey: result.floodKey, exclusions: result.floodExclusions, locations: view.locations)
        case .drop, .consumed, .pendingARP, .pendingAddress, .pendingNATPorts, .pendingTopology: []
        }
    }

    /// A flood's outputs, `perPort` (one per port) regrouped: a remote host
    /// with two or more of the flood's ports, none of whose ports of the
    /// bridge the flood left out (`exclusions`: a chain, a security group,
    /// a chain not loaded), gets one packet on the bridge's `floodKey`
    /// where its first port was; it delivers to its ports of the bridge but the
    /// ingress. A host with a port left out keeps one packet per port it
    /// gets (its own delivery would not know which to leave out), and so
    /// does a host with one port (one packet either way, to exactly the port
    /// simulated). Local outputs stay as they are.
    /// - Complexity: O(outputs + exclusions); only floods to a host with
    ///   several ports allocate more than the result.
    static func floodOutputs(
        _ perPort: [FlowOutput], floodKey: UInt32, exclusions: [FloodExclusion], locations: [PortID: PortLocation]
    ) -> [FlowOutput] {
        guard floodKey != 0 else { return perPort }
        var portsPerHost: [IPv4.Address: Int] = [:]
        for case .tunnel(let host, _) in perPort { portsPerHost[host, default: 0] += 1 }
        guard portsPerHost.values.contains(where: { $0 > 1 }) else { return perPort }
        for exclusion in exclusions {
            if case .remote(let host)? = locations[exclusion.port] { portsPerHost[host] = nil }
        }
        var outputs: [FlowOutput] = []
        var flooded: [IPv4.Address] = []
        for output in perPort {
            guard case .tunnel(let host, _) = output, let count = portsPerHost[host], count > 1 else {
                outputs.append(output)
                continue
            }
            // Once per host, where its first port was: its other ports are in that packet.
            if !flooded.contains(host) {
                flooded.append(host)
                outputs.append(.tunnelFlood(host: host, floodKey: floodKey))
            }
        }
        return outputs
    }

    private func outputs(forPorts ports: [PortID]) -> [FlowOutput] {
        var outputs: [FlowOutput] = []
        for id in ports {
            guard let port = view.topology.port(id), let location = view.locations[id] else { continue }
            switch location {
            case .local: outputs.append(.local(portKey: port.tunnelKey))
            case .remote(let host): outputs.append(.tunnel(host: host, portKey: port.tunnelKey))
            }
        }
        return outputs
    }

    static func rewrite(_ action: HeaderAction) -> PacketRewrite {
        switch action {
        case .setEthernetSource(let mac): return .setEthernetSource(mac)
        case .setEthernetDestination(let mac): return .setEthernetDestination(mac)
        case .decrementTimeToLive: return .decrementTimeToLive
        case .setIPv4Source, .setIPv4Destination, .setSourcePort, .setDestinationPort, .setICMPIdentifier, .setQuotedAddress, .setQuotedPort:
            // `translation` is set for exactly these cases.
            return .translate(action.translation!)
        }
    }

    /// The metric label of a decision: the drop reason's kind, or the outcome.
    static func label(_ decision: SimulationDecision) -> String {
        switch decision {
        case .output: "output"
        case .flood: "flood"
        case .consumed: "consumed"
        case .pendingARP: "pending_arp"
        case .pendingAddress: "pending_address"
        case .pendingTopology: "pending_topology"
        case .pendingNATPorts: "pending_nat_ports"
        case .drop(let reason):
            // Every reason carries a payload, so the mirror names the case.
            "drop_" + (Mirror(reflecting: reason).children.first?.label ?? "other").snakeCased
        }
    }
}

/// The datapath's drop codes, which each port counts apart: 0 for policy
/// (rules, routes, everything else), then one per port-security reason in
/// `SpoofKind` order.
enum DropCode {
    static func code(for reason: DropReason) -> UInt8 {
        switch reason {
        case .spoofed(_, let kind):
            // At most six reasons: far inside a UInt8 and `FlowActions.dropCodeCount`.
            return UInt8((SpoofKind.allCases.firstIndex(of: kind) ?? -1) + 1)
        case .securityGroup: return securityGroup
        case .connectionInvalid: return invalid
        case .hostDown: return hostDown
        default: return 0
        }
    }

    static let securityGroup = UInt8(SpoofKind.allCases.count + 1)
    static let invalid = securityGroup + 1
    /// A new connection with no room in the connection table.
    static let conntrackFull = securityGroup + 2
    /// The egress port's host is dead.
    static let hostDown = securityGroup + 3

    /// The `reason` label of each code of `hive_port_drops_total`, by code.
    static let labels = ["policy"] + SpoofKind.allCases.map(\.rawValue) + ["security_group", "invalid", "conntrack_full", "host_down"]
}

/// The SNAT blocks translated connections use, as the datapath thread last published them.
final class PublishedNATBlocks: Sendable {
    let value = Mutex(Set<NATBlockKey>())
}

/// Simulations by outcome as the datapath thread last published them.
final class PublishedSimulationCounts: Sendable {
    let value = Mutex([String: UInt64]())
}

/// The connection table's figures as the datapath thread last published them.
final class PublishedConnectionStatistics: Sendable {
    let value = Mutex(ConnectionStatistics())
}

/// The connection table's figures, as metrics show them.
struct ConnectionStatistics: Sendable {
    var entries = 0
    var counters = ConnectionTable.Counters()
    var malformedMessages: UInt64 = 0
}

extension String {
    var snakeCased: String {
        var out = ""
        for character in self {
            if character.isUppercase {
                if !out.isEmpty { out.append("_") }
                out.append(contentsOf: character.lowercased())
            } else {
                out.append(character)
            }
        }
        return out
    }
}
