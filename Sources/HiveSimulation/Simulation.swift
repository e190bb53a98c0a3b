// The simulation: a new flow's whole path through the virtual topology.
//
// What it is. A pure, synchronous function of (topology snapshot, state
// tables, ingress port, packet) to a `SimulationResult`: where the packet
// goes, the header rewrites on the way, the packets the agent must send in
// its place (ARP and ICMP answers, resets), the MAC and ARP entries to learn,
// the tags of everything read (to invalidate the flow when one changes), the
// flow key fields read (to wildcard the flow), and, when asked, a trace.
//
// How it walks. One loop drives the packet from port to device to port:
//
//     port in-chain -> device in-chain -> device -> device out-chain
//                   -> egress port out-chain -> peer port (interior link) ...
//
// until it leaves by an exterior port, is flooded, dropped or answered. This
// is MidoNet's order (port inbound, device pre-routing, the device, device
// post-routing, port outbound). A router runs its outbound chains before it
// resolves the next hop's MAC, so a packet its filters drop never triggers
// an ARP request. A hop limit (devices crossed) stops forwarding loops; a
// jump stack with loop detection stops chain cycles.
//
// Invariants.
// - No I/O, no await, no locks, no Foundation: callers on any thread may run
//   simulations on one snapshot at once (it is immutable and `Sendable`).
// - Steady state allocates nothing: the snapshot's compiled form is flat
//   arrays of trivial values, and a `SimulationContext` reuses its result's
//   buffers from run to run. Only generated packets (rare) and a recorded
//   trace that outgrows its buffer allocate.
// - The simulation never changes the state tables; it says what to learn.
//
// Who calls it. The agent's simulation workers, each with its own
// `SimulationContext`; `hive trace`; tests and benchmarks.

import HiveModel
import HivePacket

/// Knobs of one simulation.
public struct SimulationOptions: Sendable {
    /// A connection-tracking state to assume in every zone instead of the
    /// table's (`hive trace` without a live table); nil: the table says.
    public var connectionState: ConnectionState?
    /// Record the trace (off on the agent's hot path).
    public var recordsTrace: Bool
    /// The most devices one packet may cross.
    public var hopLimit: Int
    /// The most chains one jump may nest.
    public var jumpDepthLimit: Int
    /// The largest IP packet the network carries between VMs (the tunnel
    /// path's MTU), offered by DHCP when a subnet sets none; 0: unknown.
    public var networkMTU: UInt16
    /// SNAT keeps the packet's port without leased blocks (`hive trace`,
    /// which has no agent's blocks); off, SNAT takes only this host's ports.
    public var assumesNATPorts: Bool

    public init(
        connectionState: ConnectionState? = nil, recordsTrace: Bool = false, hopLimit: Int = 16, jumpDepthLimit: Int = 16,
        networkMTU: UInt16 = 0, assumesNATPorts: Bool = false
    ) {
        self.assumesNATPorts = assumesNATPorts
        self.networkMTU = networkMTU
        self.connectionState = connectionState
        self.recordsTrace = recordsTrace
        self.hopLimit = hopLimit
        self.jumpDepthLimit = jumpDepthLimit
    }
}

/// Reusable buffers for simulations: one per worker thread. Each
/// `simulate` overwrites `result`, reusing its arrays' storage, so a worker
/// that reads the result in place and lets go of it before the next run
/// allocates nothing per simulation.
public struct SimulationContext: Sendable {
    public private(set) var result = SimulationResult()
    private var jumpStack: [JumpFrame] = []

    /// - Parameter capacity: entries to reserve in each buffer up front.
    public init(capacity: Int = 64) {
        result.outputPorts.reserveCapacity(capacity)
        result.actions.reserveCapacity(8)
        result.macLearning.reserveCapacity(4)
        result.arpLearning.reserveCapacity(2)
        result.macRefreshes.reserveCapacity(2)
        result.arpRefreshes.reserveCapacity(2)
        result.tags.reserveCapacity(capacity)
        result.connections.reserveCapacity(4)
        result.trace.steps.reserveCapacity(capacity * 4)
        jumpStack.reserveCapacity(16)
    }

    /// Simulates `frame`, whose flow key is `key` (in-port: the ingress
    /// port's tunnel key), through `snapshot`.
    /// - Parameter frame: the whole Ethernet frame, read only to build
    ///   generated packets (ICMP errors quote it, echo replies copy it).
    /// - Complexity: O(devices crossed + rules evaluated), no allocation in
    ///   steady state (see the type's discussion).
    /// - Parameters:
    ///   - connections: the connection table the packet's states come from
    ///   - now: the table's clock (entries past their deadline are gone)
    public mutating func simulate(
        frame: [UInt8], key: FlowKey, in snapshot: TopologySnapshot, state: SimulationState,
        connections: ConnectionTable = .empty, now: UInt64 = 0, options: SimulationOptions = SimulationOptions()
    ) {
        var run = SimulationRun(
            topology: snapshot.compiled, state: state, connections: connections, now: now, frame: frame, key: key, options: options)
        swap(&run.result, &result)
        swap(&run.jumpStack, &jumpStack)
        run.result.reset(keepingCapacity: true)
        run.run()
        swap(&run.result, &result)
        swap(&run.jumpStack, &jumpStack)
    }
}

extension TopologySnapshot {
    /// Parses `frame` and simulates it from the port whose tunnel key is
    /// `inPort`, with a fresh context (allocates; for tools and tests).
    /// - Throws: the `PacketError` of a malformed frame.
    public func simulate(
        frame: [UInt8], inPort: UInt32, state: SimulationState = .empty, connections: ConnectionTable = .empty, now: UInt64 = 0,
        options: SimulationOptions = SimulationOptions()
    ) throws(PacketError) -> SimulationResult {
        let key = try FlowKey(parsing: frame, inPort: inPort)
        var context = SimulationContext(capacity: 16)
        context.simulate(frame: frame, key: key, in: self, state: state, connections: connections, now: now, options: options)
        return context.result
    }
}

/// A caller's place on the jump stack: resume `chain` at rule `next`.
struct JumpFrame: Sendable {
    var chain: Int32
    var next: Int32
    var rule: Int32
}

/// What a device did with the packet.
enum DeviceOutcome {
    /// It leaves the device by this port (outbound chains passed).
    case leave(Int32)
    /// The decision is made (drop, flood, consumed, pending ARP).
    case finished
}

/// One simulation in progress.
struct SimulationRun {
    let topology: CompiledTopology
    let state: SimulationState
    let connections: ConnectionTable
    let now: UInt64
    let frame: [UInt8]
    let options: SimulationOptions
    let tracing: Bool
    var key: FlowKey
    var result = SimulationResult()
    var jumpStack: [JumpFrame] = []
    /// The connection-tracking zone of the chain being applied.
    var chainZone: UInt32 = 0
    /// NAT in the router being crossed.
    var nat = RouterNATStep()
    /// The port the packet first entered a router by: an ICMP error about a
    /// failure further on goes back out of it, to the sender.
    var firstRouterIngress: Int32 = -1

    init(
        topology: CompiledTopology, state: SimulationState, connections: ConnectionTable, now: UInt64, frame: [UInt8], key: FlowKey,
        options: SimulationOptions
    ) {
        self.topology = topology
        self.state = state
        self.connections = connections
        self.now = now
        self.frame = frame
        self.key = key
        self.options = options
        self.tracing = options.recordsTrace
    }

    mutating func run() {
        result.ingressKey = key
        read(.inPort)
        guard let ingress = topology.portByTunnelKey[key.inPort] else {
            finish(.drop(.unknownInPort(key.inPort)))
            return
        }
        var port = ingress
        while true {
            if result.hops >= options.hopLimit {
                finish(.drop(.hopLimitExceeded(options.hopLimit)))
                return
            }
            // Cannot overflow: bounded by the hop limit just checked.
            result.hops &+= 1
            switch enterDevice(through: port) {
            case .finished:
                return
            case .leave(let egress):
                let egressPort = topology.ports[Int(egress)]
                trace(1, .leavePort(egressPort.id))
                if egressPort.isInterior {
                    let peer = topology.ports[Int(egressPort.peer)]
                    trace(1, .link(from: egressPort.id, to: peer.id))
                    port = egressPort.peer
                } else if egressPort.peerNotLoaded {
                    finish(.pendingTopology(.port(topology.notLoadedPeers[egress]!)))
                    return
                } else {
                    if !state.unavailablePorts.isEmpty, state.unavailablePorts.contains(egressPort.tunnelKey) {
                        dropAtDeadHost(egress)
                        return
                    }
                    result.outputPorts.append(egressPort.id)
                    finish(.output(egressPort.id))
                    return
                }
            }
        }
    }

    /// The egress port's host is dead (its lease lapsed): the packet is
    /// dropped here rather than tunnelled to nobody, and a routed one gets
    /// "host unreachable" from the last router it crossed (RFC 1812 §5.2.7.1).
    @inline(never)
    mutating func dropAtDeadHost(_ egress: Int32) {
        if firstRouterIngress >= 0 {
            let port = topology.ports[Int(firstRouterIngress)]
            // About the packet as its sender sent it (before rewrites and NAT),
            // from the first router's port: it goes back the way it came.
            if port.hasAddress, mayReportError(subnetBroadcast: port.subnet.broadcast),
               let bytes = frame.withUnsafeBytes({ about in
                   try? ICMPv4.errorFrame(
                       type: .destinationUnreachable, code: ICMPv4.UnreachableCode.host.rawValue, about: about,
                       sourceMAC: port.mac, sourceIP: port.address)
               }) {
                emit(.destinationUnreachable, out: firstRouterIngress, frame: bytes)
            }
        }
        // The port's host coming back changes this: its tag says so.
        result.tag(.port(topology.ports[Int(egress)].id))
        finish(.drop(.hostDown(topology.ports[Int(egress)].id)))
    }

    /// The packet enters the port's device: port state and inbound chain, then the device.
    mutating func enterDevice(through portIndex: Int32) -> DeviceOutcome {
        let port = topology.ports[Int(portIndex)]
        result.tag(.port(port.id))
        trace(1, .enterPort(port.id))
        guard port.adminStateUp else {
            finish(.drop(.portDown(port.id)))
            return .finished
        }
        if port.isRouterPort {
            let router = topology.routers[Int(port.deviceIndex)]
            result.tag(.router(router.id))
            trace(1, .router(router.id))
            guard router.adminStateUp else {
                finish(.drop(.routerDown(router.id)))
                return .finished
            }
        } else {
            let bridge = topology.bridges[Int(port.deviceIndex)]
            result.tag(.bridge(bridge.id))
            trace(1, .bridge(bridge.id))
            guard bridge.adminStateUp else {
                finish(.drop(.bridgeDown(bridge.id)))
                return .finished
            }
        }
        if port.portSecurity, !port.isInterior, let violation = portSecurityViolation(port) {
            finish(.drop(.spoofed(port.id, violation)))
            return .finished
        }
        if port.securityPolicy != noIndex, !port.isInterior, let reason = securityGroupVerdict(port: portIndex, direction: .egress) {
            finish(.drop(reason))
            return .finished
        }
        if port.tracksConnections { _ = connectionStates(zone: port.tunnelKey) }
        if port.isRouterPort {
            let router = topology.routers[Int(port.deviceIndex)]
            if router.tracksConnections { _ = connectionStates(zone: router.zone) }
        } else {
            let bridge = topology.bridges[Int(port.deviceIndex)]
            if bridge.tracksConnections { _ = connectionStates(zone: bridge.zone) }
        }
        if port.inboundChain != noIndex,
           !passChain(port.inboundChain, hook: .portInbound, ingress: portIndex, egress: noIndex) {
            return .finished
        }
        if port.isRouterPort {
            return router(port.deviceIndex, ingress: portIndex)
        } else {
            return bridge(port.deviceIndex, ingress: portIndex)
        }
    }

    /// Runs the port's outbound chain for a packet leaving by `egress`.
    mutating func passPortOutbound(_ egress: Int32, ingress: Int32) -> Bool {
        let port = topology.ports[Int(egress)]
        result.tag(.port(port.id))
        guard port.adminStateUp else {
            finish(.drop(.portDown(port.id)))
            return false
        }
        if port.tracksConnections { _ = connectionStates(zone: port.tunnelKey) }
        if port.outboundChain != noIndex, !passChain(port.outboundChain, hook: .portOutbound, ingress: ingress, egress: egress) {
            return false
        }
        if port.securityPolicy != noIndex, !port.isInterior, let reason = securityGroupVerdict(port: egress, direction: .ingress) {
            finish(.drop(reason))
            return false
        }
        return true
    }

    // MARK: Recording

    @inline(__always)
    mutating func read(_ fields: FlowFields) {
        result.fieldsRead.formUnion(fields)
    }

    @inline(__always)
    mutating func trace(_ depth: Int, _ event: TraceEvent) {
        if _slowPath(tracing) { result.trace.steps.append(TraceStep(depth: depth, event: event)) }
    }

    mutating func finish(_ decision: SimulationDecision) {
        result.decision = decision
        result.egressKey = key
        trace(1, .decision(decision))
    }

    mutating func apply(_ action: HeaderAction) {
        result.actions.append(action)
        action.apply(to: &key)
    }

    /// The frame as it is now: the ingress frame with the actions so far
    /// applied. Allocates; only for generated packets.
    @inline(never)
    func currentFrame() -> [UInt8] {
        var bytes = frame
        for action in result.actions { action.apply(to: &bytes) }
        return bytes
    }

    mutating func emit(_ kind: GeneratedPacket.Kind, out port: Int32, frame bytes: [UInt8]) {
        let id = topology.ports[Int(port)].id
        result.generatedPackets.append(GeneratedPacket(kind: kind, port: id, frame: bytes))
        trace(2, .generated(kind, id))
    }
}
