import HivePacket

/// A header rewrite the datapath applies to a frame before it leaves. The
/// agent translates the simulation's actions into these; the datapath knows
/// nothing of devices.
public enum PacketRewrite: Hashable, Sendable {
    case setEthernetSource(EthernetAddress)
    case setEthernetDestination(EthernetAddress)
    /// Decrement the IPv4 TTL, updating the header checksum.
    case decrementTimeToLive
    /// NAT (checksums updated incrementally).
    case translate(IPv4.Translation)

    /// Applies the rewrite in place; a frame it does not fit is left alone.
    /// - Complexity: O(1), no allocation.
    @inlinable
    public func apply(to frame: UnsafeMutableRawBufferPointer) {
        switch self {
        case .setEthernetDestination(let mac):
            guard frame.count >= 12 else { return }
            Self.store(mac, in: frame, at: 0)
        case .setEthernetSource(let mac):
            guard frame.count >= 12 else { return }
            Self.store(mac, in: frame, at: 6)
        case .decrementTimeToLive:
            guard let ethernet = try? Ethernet.Header(parsing: UnsafeRawBufferPointer(frame)), ethernet.etherType == .ipv4 else { return }
            _ = try? IPv4.decrementTimeToLive(in: frame, at: ethernet.length)
        case .translate(let translation):
            translation.apply(toFrame: frame)
        }
    }

    @inlinable
    static func store(_ mac: EthernetAddress, in frame: UnsafeMutableRawBufferPointer, at offset: Int) {
        for index in 0..<6 {
            frame[offset + index] = UInt8(truncatingIfNeeded: mac.value >> UInt64(40 - 8 * index))
        }
    }
}

/// Where a frame goes.
public enum FlowOutput: Hashable, Sendable {
    /// Out of a port bound on this host, named by its tunnel key.
    case local(portKey: UInt32)
    /// Through the tunnel to the host at `host`; `portKey` (the VNI) names
    /// the egress port there.
    case tunnel(host: IPv4.Address, portKey: UInt32)
    /// Through the tunnel to the host at `host`, once for all its ports of a
    /// flood: `floodKey` (the VNI) is a bridge's flood-set key, and that host
    /// delivers the frame to each of its ports of the bridge but the ingress
    /// (Hive's option names it; see `Datapath.setFloodSets`).
    case tunnelFlood(host: IPv4.Address, floodKey: UInt32)

    /// The tunnel's destination and VNI; nil for a local output.
    @inlinable
    public var tunnelDestination: (host: IPv4.Address, key: UInt32)? {
        switch self {
        case .local: nil
        case .tunnel(let host, let key), .tunnelFlood(let host, let key): (host, key)
        }
    }

    @inlinable
    public var isTunnel: Bool { tunnelDestination != nil }
}

/// The router port that answers a routed packet too big for the tunnel
/// path with an ICMP "fragmentation needed".
public struct ICMPErrorSource: Hashable, Sendable {
    public var mac: EthernetAddress
    public var address: IPv4.Address

    public init(mac: EthernetAddress, address: IPv4.Address) {
        self.mac = mac
        self.address = address
    }
}

/// What to do with the packets of a flow: rewrite, then send to every output.
/// No outputs means drop.
public struct FlowActions: Hashable, Sendable {
    public var rewrites: [PacketRewrite]
    public var outputs: [FlowOutput]
    /// A drop's reason, counted on the ingress port: 0 is policy (rules,
    /// routes, ...); the agent names the others (`DatapathStatistics.PortCounters.drops`).
    public var dropCode: UInt8
    /// The largest IP packet the flow's tunnel outputs may carry; 0: no limit.
    public var tunnelMTU: UInt16
    /// Routed flows: who answers a too-big packet with DF set. Nil: it is
    /// dropped and counted (`too_big`).
    public var tooBigSource: ICMPErrorSource?

    public init(
        rewrites: [PacketRewrite] = [], outputs: [FlowOutput] = [], dropCode: UInt8 = 0, tunnelMTU: UInt16 = 0,
        tooBigSource: ICMPErrorSource? = nil
    ) {
        self.rewrites = rewrites
        self.outputs = outputs
        self.dropCode = dropCode
        self.tunnelMTU = tunnelMTU
        self.tooBigSource = tooBigSource
    }

    /// Drop codes a port counts separately (`PortCounters.drops` has this many slots).
    public static let dropCodeCount = 16
    /// `dropCode` of a packet the agent answered itself: no outputs, not a drop.
    public static let answered: UInt8 = 0xFF

    public static let drop = FlowActions()

    public var isDrop: Bool { outputs.isEmpty }

    /// Whether a rewrite translates addresses or ports (NAT), which a
    /// partial checksum must be prepared for.
    var translates: Bool {
        rewrites.contains { if case .translate = $0 { true } else { false } }
    }
}

/// Connection tracking on a cached flow's hits.
public struct FlowTracking: Hashable, Sendable {
    public var connections: [FlowConnection]
    /// The flow forwards: a hit moves its connections on, as the packet's
    /// simulation would (Linux's confirm). A drop flow's hits only check them.
    public var commits: Bool
    /// The hosts a connection's change on a hit goes to (flow state).
    public var peers: [IPv4.Address]

    public init(connections: [FlowConnection], commits: Bool, peers: [IPv4.Address]) {
        self.connections = connections
        self.commits = commits
        self.peers = peers
    }
}

/// A tag of something a flow depended on; the agent derives them from the
/// simulation's invalidation tags. Collisions only invalidate more than needed.
public typealias FlowTag = UInt64

/// What the upcall handler decided for a packet that missed the flow table.
public struct UpcallDecision: Sendable {
    /// Run on this packet (and, when `cache`, on the flow's later packets).
    public var actions: FlowActions = .drop
    /// Install a flow for the packet's key.
    public var cache = false
    /// The fields the flow matches (`.exact`, or those the decision depended on).
    public var mask = FlowMask.exact
    public var tags: [FlowTag] = []
    /// The handler keeps the packet (it waits for an ARP answer and will be
    /// simulated again): not a drop.
    public var held = false
    /// Frames the handler made (ARP and ICMP answers, generated requests), each with where it goes.
    public var generated: [(frame: [UInt8], outputs: [FlowOutput])] = []
    /// Flows to remove before this one is installed (a connection whose
    /// state changed).
    public var invalidations: [FlowTag] = []
    /// The flow's hard timeout in nanoseconds, when shorter than the
    /// configured one (a tracked connection's flows); 0: the configured one.
    public var hardTimeout: UInt64 = 0
    /// Flow-state messages for other hosts, sent before the packet.
    public var flowState: [(host: IPv4.Address, payload: [UInt8])] = []
    /// The connections the decision depended on, checked on every hit.
    public var tracking: FlowTracking?

    public init() {}

    public mutating func reset() {
        actions = .drop
        cache = false
        mask = .exact
        held = false
        hardTimeout = 0
        tracking = nil
        tags.removeAll(keepingCapacity: true)
        generated.removeAll(keepingCapacity: true)
        invalidations.removeAll(keepingCapacity: true)
        flowState.removeAll(keepingCapacity: true)
    }
}

/// The tunnel key of Hive's flow-state messages (reserved: no port or
/// bridge has it) and their Geneve protocol type (IEEE's local
/// experimental EtherType: tshark shows the Geneve header and the bytes).
public enum FlowStateTunnel {
    public static let key: UInt32 = 0xFF_FF00
    public static let protocolType = Ethernet.EtherType(0x88B5)
}

/// The agent's side of the datapath: called on the datapath thread only.
public protocol UpcallHandler: AnyObject {
    /// At the start of every batch: take the current topology version.
    func beginBatch()
    /// A frame from local port `key.inPort` missed the flow table: decide.
    /// Pure computation: no blocking, no await.
    func handleMiss(frame: UnsafeRawBufferPointer, key: FlowKey, decision: inout UpcallDecision)
    /// Reading port `portKey` failed (its interface went away): the datapath
    /// closed it; the agent may bind it again later.
    func portFailed(portKey: UInt32, error: SystemError)
    /// Another host sent flow state (its payload, after the Geneve header);
    /// flows to remove go in `invalidations`.
    func receiveFlowState(_ payload: UnsafeRawBufferPointer, from host: IPv4.Address, invalidations: inout [FlowTag])
    /// A packet hit a flow with connection tracking: whether its connections
    /// are still in states the flow holds for (then they move on with it,
    /// and flow-state messages for other hosts go in `messages`, to be sent
    /// before the packet); false: simulate the packet (a miss). `flags`: the
    /// packet's TCP flags, which such a flow does not match.
    func track(_ tracking: FlowTracking, flags: TCP.Flags, now: UInt64, messages: inout [(host: IPv4.Address, payload: [UInt8])]) -> Bool
    /// Every 50 ms: expire what the handler keeps (connections); flows to
    /// remove go in `invalidations`.
    func housekeeping(now: UInt64, invalidations: inout [FlowTag])
    /// Whether a live trace is armed on any port (read once per turn, after `beginBatch`).
    var isTracing: Bool { get }
    /// Whether one is armed on port `portKey` (asked once per batch of that
    /// port, only while `isTracing`): only then are its flow hits reported
    /// through `traceHit`, so a trace costs the other ports nothing.
    func isTraced(portKey: UInt32) -> Bool
    /// A cached flow carried a packet while tracing: the handler traces it if it matches.
    func traceHit(frame: UnsafeRawBufferPointer, key: FlowKey, flow: FlowTable.Entry, now: UInt64)
    /// A miss on a traced port was dropped by the port's upcall limit, unsimulated.
    func traceLimited(frame: UnsafeRawBufferPointer, key: FlowKey)
}

extension UpcallHandler {
    /// Handlers that track no connections ignore flow state.
    public func receiveFlowState(_ payload: UnsafeRawBufferPointer, from host: IPv4.Address, invalidations: inout [FlowTag]) {}
    public func housekeeping(now: UInt64, invalidations: inout [FlowTag]) {}
    public func track(_ tracking: FlowTracking, flags: TCP.Flags, now: UInt64, messages: inout [(host: IPv4.Address, payload: [UInt8])]) -> Bool {
        true
    }
    public var isTracing: Bool { false }
    public func isTraced(portKey: UInt32) -> Bool { false }
    public func traceHit(frame: UnsafeRawBufferPointer, key: FlowKey, flow: FlowTable.Entry, now: UInt64) {}
    public func traceLimited(frame: UnsafeRawBufferPointer, key: FlowKey) {}
}
