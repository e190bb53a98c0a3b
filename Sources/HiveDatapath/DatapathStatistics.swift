/// Counters of one datapath, published by its thread every few
/// milliseconds; read from any thread through `Datapath.statistics`.
public struct DatapathStatistics: Sendable {
    public struct PortCounters: Sendable {
        public var name: String
        public var receivedPackets: UInt64 = 0
        public var receivedBytes: UInt64 = 0
        public var sentPackets: UInt64 = 0
        public var sentBytes: UInt64 = 0
        /// Frames the kernel dropped before the datapath read them (the
        /// socket's receive queue was full).
        public var kernelDrops: UInt64 = 0
        /// Frames from the port the flow dropped, by `FlowActions.dropCode`.
        public var drops = [UInt64](repeating: 0, count: FlowActions.dropCodeCount)
        /// Frames from the port too big for the tunnel path.
        public var tooBig: UInt64 = 0

        public init(name: String) { self.name = name }
    }

    /// Why the datapath itself dropped a packet (the simulation's reasons
    /// are the agent's to count).
    public enum DropReason: String, Sendable, CaseIterable {
        /// The flow's actions have no output (policy, no route, ...).
        case flowDrop = "flow_drop"
        /// A frame too short or inconsistent to key.
        case malformed
        /// Larger than the receive buffer.
        case truncated
        /// A tunnel packet that is not Geneve carrying Ethernet.
        case badTunnelPacket = "bad_tunnel_packet"
        /// A tunnel packet for a port not bound here, or a flood for a
        /// bridge with no port bound here (but the ingress).
        case unknownTunnelKey = "unknown_tunnel_key"
        /// A tunnel packet from an address that is not a known host.
        case unknownPeer = "unknown_peer"
        /// An output to a local port that is gone.
        case portGone = "port_gone"
        /// A miss beyond its port's upcall rate.
        case upcallLimited = "upcall_limited"
        /// Larger than the tunnel path carries (an ICMP error went back when routed with DF).
        case tooBig = "too_big"
        /// A flow-state message too large to queue (Hive sends none; the packet still goes).
        case flowStateSendFailed = "flow_state_send_failed"
        /// A frame whose virtio-net header does not fit it (unknown
        /// segmentation, segment size 0, checksum offsets past the end), or a
        /// super-frame that cannot be cut for the tunnel (not TCP or UDP over
        /// IPv4 or IPv6 as its header says, lengths that disagree).
        case badOffload = "bad_offload"
    }

    public var ports: [UInt32: PortCounters] = [:]
    public var tunnelReceivedPackets: UInt64 = 0
    /// Tunnel datagrams the kernel dropped before the agent read them (the UDP socket's queue was full).
    public var tunnelKernelDrops: UInt64 = 0
    public var tunnelSentPackets: UInt64 = 0
    public var flowHits: UInt64 = 0
    public var upcalls: UInt64 = 0
    /// Flow hits whose connections had moved where the flow does not hold
    /// (or a SYN, RST or invalid TCP packet on one): simulated as misses.
    public var trackingMisses: UInt64 = 0
    /// Missed packets the handler kept (waiting for ARP), to simulate again.
    public var held: UInt64 = 0
    public var flowsInstalled: UInt64 = 0
    public var flowsInvalidated: UInt64 = 0
    public var flowsExpired: UInt64 = 0
    /// Flow-state messages sent to and received from other hosts.
    public var flowStateSent: UInt64 = 0
    public var flowStateReceived: UInt64 = 0
    public var flows: Int = 0
    public var drops: [DropReason: UInt64] = [:]
    /// Offloads (see Offload.swift): segmentation-offloaded super-frames read
    /// from ports; those cut into segments for the tunnel, and the segments;
    /// partial checksums completed; tunnel buffers that held a run of
    /// datagrams (UDP_GRO).
    public var superFramesReceived: UInt64 = 0
    public var superFramesSegmented: UInt64 = 0
    public var segmentsSent: UInt64 = 0
    public var checksumsCompleted: UInt64 = 0
    public var tunnelCoalescedBuffers: UInt64 = 0
    /// Super-frames joined from tunnel segments for local ports, and the segments joined.
    public var coalescedSuperFrames: UInt64 = 0
    public var coalescedSegments: UInt64 = 0

    public init() {}
}
