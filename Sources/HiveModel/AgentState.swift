import HivePacket

// What an agent reports of its datapath, on request: the flows it has
// installed, a summary of its counters, and the ports it bound. The agent
// serves these on its metrics listener (GET /state/flows, /state/summary,
// /state/ports, with a bearer token), the API passes them on
// (/v1/hosts/{id}/flows, /v1/ports/{id}/status) and the CLI prints them.
// They change with every packet, so they are never written to the NSDB.

/// A flow's key in readable form. Fields that do not apply to the packet
/// are absent. The names follow `hive trace`'s flags, so `description`
/// reads like the command that would simulate the same packet.
public struct FlowMatch: Codable, Hashable, Sendable {
    /// The port the packets come in by: its tunnel key (the datapath's in-port).
    public var inPort: UInt32
    /// That port as "device/name", when the agent knows it.
    public var inPortName: String?
    public var sourceMAC: EthernetAddress
    public var destinationMAC: EthernetAddress
    /// The VLAN ids of tagged frames (the outer one of QinQ).
    public var vlan: UInt16?
    public var outerVLAN: UInt16?
    /// "ipv4", "ipv6", "arp", or the EtherType in hex ("0x88cc").
    public var etherType: String
    /// ARP: "request", "reply" or the operation's number, and the sender's MAC.
    public var arpOperation: String?
    public var arpSenderMAC: EthernetAddress?
    /// IPv4 or IPv6 addresses; for ARP the sender and target addresses.
    public var sourceIP: String?
    public var destinationIP: String?
    /// "icmp", "tcp", "udp", "icmpv6", or the protocol's number.
    public var ipProtocol: String?
    public var typeOfService: UInt8?
    public var ttl: UInt8?
    /// "first" or "later" for fragments; absent for whole packets.
    public var fragment: String?
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?
    /// Comma-separated, lowercase ("syn,ack"), as `hive trace --tcp-flags` takes them.
    public var tcpFlags: String?
    public var icmpType: UInt8?
    public var icmpCode: UInt8?
    /// The echo identifier of ICMP echo requests and replies.
    public var icmpIdentifier: UInt16?
    /// A megaflow's ignored fields (Open vSwitch's names: "tp_src",
    /// "tcp_flags", ...): any value matches. Absent for an exact-match flow.
    public var wildcards: [String]?

    public init(inPort: UInt32, sourceMAC: EthernetAddress, destinationMAC: EthernetAddress, etherType: String) {
        self.inPort = inPort
        self.sourceMAC = sourceMAC
        self.destinationMAC = destinationMAC
        self.etherType = etherType
    }
}

extension FlowMatch: CustomStringConvertible {
    /// "in-port=blue/vm1 src-mac=02:00:0a:00:01:0b dst-mac=... ipv4 src-ip=10.0.1.11 dst-ip=10.0.1.12 protocol=icmp icmp-type=8 ..."
    public var description: String {
        let any = Set(wildcards ?? [])
        var parts = ["in-port=" + (inPortName ?? "#\(inPort)")]
        if !any.contains("eth_src") { parts.append("src-mac=\(sourceMAC)") }
        if !any.contains("eth_dst") { parts.append("dst-mac=\(destinationMAC)") }
        if let outerVLAN { parts.append("outer-vlan=\(outerVLAN)") }
        if let vlan { parts.append("vlan=\(vlan)") }
        if !any.contains("eth_type") { parts.append(etherType) }
        if let arpOperation { parts.append("arp-op=\(arpOperation)") }
        if let arpSenderMAC, arpSenderMAC != sourceMAC { parts.append("arp-sender-mac=\(arpSenderMAC)") }
        if let sourceIP { parts.append("src-ip=\(sourceIP)") }
        if let destinationIP { parts.append("dst-ip=\(destinationIP)") }
        if let ipProtocol { parts.append("protocol=\(ipProtocol)") }
        if let sourcePort { parts.append("src-port=\(sourcePort)") }
        if let destinationPort { parts.append("dst-port=\(destinationPort)") }
        if let tcpFlags { parts.append("tcp-flags=\(tcpFlags)") }
        if let icmpType { parts.append("icmp-type=\(icmpType)") }
        if let icmpCode { parts.append("icmp-code=\(icmpCode)") }
        if let icmpIdentifier { parts.append("icmp-id=\(icmpIdentifier)") }
        if let typeOfService, typeOfService != 0 { parts.append("tos=\(typeOfService)") }
        if let ttl { parts.append("ttl=\(ttl)") }
        if let fragment { parts.append("fragment=\(fragment)") }
        if let wildcards, !wildcards.isEmpty { parts.append("any=" + wildcards.joined(separator: ",")) }
        return parts.joined(separator: " ")
    }
}

/// Where a flow's packets go.
public struct FlowOutputEntry: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// Out of a port bound on this host.
        case local
        /// Through the tunnel to the host the port is bound on.
        case tunnel
    }

    public var kind: Kind
    /// The egress port's tunnel key (the VNI for a tunnel output); for a
    /// flood sent once to a host, the bridge's flood key.
    public var portKey: UInt32
    /// The port as "device/name", when the agent knows it.
    public var port: String?
    /// A flood sent once to a host (`portKey` is the bridge's flood key):
    /// the bridge, whose ports there but the ingress get the frame.
    public var floodBridge: String?
    /// Local outputs: the interface.
    public var interface: String?
    /// Tunnel outputs: the other host's underlay address, and its name.
    public var hostAddress: IPv4.Address?
    public var hostName: String?

    public init(kind: Kind, portKey: UInt32) {
        self.kind = kind
        self.portKey = portKey
    }
}

extension FlowOutputEntry: CustomStringConvertible {
    /// "blue/vm3", "blue/vm2 via h2 (100.64.0.2)", "flood blue via h2 (100.64.0.2)".
    public var description: String {
        let name = floodBridge.map { "flood \($0)" } ?? port ?? "port #\(portKey)"
        guard kind == .tunnel else { return name }
        let address = hostAddress.map { "\($0)" } ?? "?"
        return "\(name) via " + (hostName.map { "\($0) (\(address))" } ?? address)
    }
}

/// What a flow does: header rewrites, then its outputs; none means drop.
public struct FlowActionList: Codable, Hashable, Sendable {
    /// In order: "set src-mac 02:...", "set dst-mac ...", "decrement ttl", "set src-ip 198.51.100.2", ...
    public var rewrites: [String]
    public var outputs: [FlowOutputEntry]
    /// Without outputs: why the packets drop ("policy", "spoofed_ip", ...
    /// as `hive_port_drops_total` names them), or "answered" when the agent
    /// answers them itself (ARP, DHCP, ICMP echo to a router).
    public var drop: String?
    /// The largest IP packet the flow's tunnel outputs carry.
    public var tunnelMTU: UInt16?

    public init(rewrites: [String] = [], outputs: [FlowOutputEntry] = [], drop: String? = nil, tunnelMTU: UInt16? = nil) {
        self.rewrites = rewrites
        self.outputs = outputs
        self.drop = drop
        self.tunnelMTU = tunnelMTU
    }
}

extension FlowActionList: CustomStringConvertible {
    /// "set dst-mac 02:...; decrement ttl; output blue/vm2 via h2 (100.64.0.2)", "drop (policy)", "answered by the agent".
    public var description: String {
        var parts = rewrites
        if outputs.isEmpty {
            parts.append(drop == "answered" ? "answered by the agent" : "drop (\(drop ?? "policy"))")
        } else {
            parts.append("output " + outputs.map(\.description).joined(separator: ", "))
        }
        return parts.joined(separator: "; ")
    }
}

/// One installed flow.
public struct FlowEntry: Codable, Hashable, Sendable {
    public var match: FlowMatch
    public var actions: FlowActionList
    public var packets: UInt64
    public var bytes: UInt64
    /// Seconds since the flow was installed, and since a packet last used it.
    public var ageSeconds: Double
    public var idleSeconds: Double
    /// The age at which it is simulated again however busy.
    public var hardTimeoutSeconds: Double
    /// What its simulation read, whose change removes it: "bridge:blue",
    /// "port:blue/vm1", "mac:blue/02:...", "connection:icmp ...", or the
    /// tag's hash in hex when the agent can no longer name it.
    public var tags: [String]

    public init(
        match: FlowMatch, actions: FlowActionList, packets: UInt64, bytes: UInt64, ageSeconds: Double, idleSeconds: Double,
        hardTimeoutSeconds: Double, tags: [String]
    ) {
        self.match = match
        self.actions = actions
        self.packets = packets
        self.bytes = bytes
        self.ageSeconds = ageSeconds
        self.idleSeconds = idleSeconds
        self.hardTimeoutSeconds = hardTimeoutSeconds
        self.tags = tags
    }
}

/// `GET /state/flows`: a host's installed flows, all or one port's, the
/// busiest `limit` of them.
public struct AgentFlows: Codable, Hashable, Sendable {
    public var hostId: HostID
    public var hostName: String
    /// With `?port=`: the port ("device/name"), whose flows are those that
    /// enter by it or leave by it (locally or through the tunnel).
    public var port: String?
    /// How many flows there are (of the port, when asked): `flows` holds at most `limit` of them.
    public var total: Int
    public var flows: [FlowEntry]

    /// The flows shown when no limit is asked for, and the most that can be.
    public static let defaultLimit = 1000
    public static let maximumLimit = 65_536

    public init(hostId: HostID, hostName: String, port: String? = nil, total: Int? = nil, flows: [FlowEntry]) {
        self.hostId = hostId
        self.hostName = hostName
        self.port = port
        self.total = total ?? flows.count
        self.flows = flows
    }
}

/// A port's counters on the host that binds it.
public struct PortCounters: Codable, Hashable, Sendable {
    public var receivedPackets: UInt64
    public var receivedBytes: UInt64
    public var sentPackets: UInt64
    public var sentBytes: UInt64
    /// Frames the kernel dropped before the agent read them (socket queue full).
    public var kernelDrops: UInt64
    /// Frames from the port that were dropped, by reason (`hive_port_drops_total`'s
    /// reasons); reasons that never happened are left out.
    public var drops: [String: UInt64]

    public init(
        receivedPackets: UInt64 = 0, receivedBytes: UInt64 = 0, sentPackets: UInt64 = 0, sentBytes: UInt64 = 0,
        kernelDrops: UInt64 = 0, drops: [String: UInt64] = [:]
    ) {
        self.receivedPackets = receivedPackets
        self.receivedBytes = receivedBytes
        self.sentPackets = sentPackets
        self.sentBytes = sentBytes
        self.kernelDrops = kernelDrops
        self.drops = drops
    }
}

/// One port bound to this host, as its agent sees it.
public struct AgentPortState: Codable, Hashable, Sendable {
    public var portId: PortID
    /// "device/name".
    public var port: String
    public var portKey: UInt32
    public var interface: String
    /// Its interface is open in the datapath; when not, `reason` says why.
    public var up: Bool
    public var reason: String?
    /// While up.
    public var counters: PortCounters?

    public init(portId: PortID, port: String, portKey: UInt32, interface: String, up: Bool, reason: String? = nil, counters: PortCounters? = nil) {
        self.portId = portId
        self.port = port
        self.portKey = portKey
        self.interface = interface
        self.up = up
        self.reason = reason
        self.counters = counters
    }
}

/// `GET /state/ports`: every binding of the host, up or down.
public struct AgentPorts: Codable, Hashable, Sendable {
    public var hostId: HostID
    public var hostName: String
    public var ports: [AgentPortState]

    public init(hostId: HostID, hostName: String, ports: [AgentPortState]) {
        self.hostId = hostId
        self.hostName = hostName
        self.ports = ports
    }
}

/// A bound port's drops, for the summary.
public struct PortDrops: Codable, Hashable, Sendable {
    public var port: String
    public var portKey: UInt32
    /// By reason; reasons that never happened are left out.
    public var drops: [String: UInt64]

    public init(port: String, portKey: UInt32, drops: [String: UInt64]) {
        self.port = port
        self.portKey = portKey
        self.drops = drops
    }
}

/// `GET /state/summary`: the flow table's size and how well it works.
/// Counters count since the agent started.
public struct AgentFlowSummary: Codable, Hashable, Sendable {
    public var hostId: HostID
    public var hostName: String
    public var flows: Int
    public var flowCapacity: Int
    /// Packets forwarded by a cached flow, and packets that missed and were simulated (upcalls).
    public var hits: UInt64
    public var upcalls: UInt64
    /// hits / (hits + upcalls); 0 before the first packet.
    public var hitRate: Double
    /// Upcalls per second over the last `rateIntervalSeconds` (up to 10 s).
    public var upcallsPerSecond: Double
    public var rateIntervalSeconds: Double
    /// Missed packets held for an ARP answer (or an address, or SNAT ports), then simulated again.
    public var held: UInt64
    public var installed: UInt64
    public var invalidated: UInt64
    public var expired: UInt64
    public var idleTimeoutSeconds: Double
    public var hardTimeoutSeconds: Double
    /// Packets the datapath itself dropped, by reason (`hive_datapath_drops_total`);
    /// reasons that never happened are left out.
    public var drops: [String: UInt64]
    /// Each bound port's drops (`hive_port_drops_total`).
    public var ports: [PortDrops]

    public init(hostId: HostID, hostName: String) {
        self.hostId = hostId
        self.hostName = hostName
        flows = 0
        flowCapacity = 0
        hits = 0
        upcalls = 0
        hitRate = 0
        upcallsPerSecond = 0
        rateIntervalSeconds = 0
        held = 0
        installed = 0
        invalidated = 0
        expired = 0
        idleTimeoutSeconds = 0
        hardTimeoutSeconds = 0
        drops = [:]
        ports = []
    }
}

/// `GET /v1/ports/{id}/status`: where a port lives now and how it is doing,
/// from the NSDB (binding, liveness, learned MACs) and its host's agent.
public struct PortStatus: Codable, Hashable, Sendable {
    public enum State: String, Codable, Sendable {
        /// Its interface is open on its host.
        case up
        /// Bound, but its interface is not open (`reason` says why).
        case down
        /// No binding: an interior port, or not placed on a host yet.
        case unbound
        /// Bound, but its agent could not be asked (`reason` says why).
        case unknown
    }

    public struct Placement: Codable, Hashable, Sendable {
        public var hostId: HostID
        public var hostName: String?
        public var interface: String
        /// Whether the host's agent holds its liveness lease.
        public var hostAlive: Bool

        public init(hostId: HostID, hostName: String?, interface: String, hostAlive: Bool) {
            self.hostId = hostId
            self.hostName = hostName
            self.interface = interface
            self.hostAlive = hostAlive
        }
    }

    public var portId: PortID
    public var state: State
    public var reason: String?
    public var binding: Placement?
    /// The port's own MAC, and the MACs its bridge learned on it (ports
    /// without port security, links between bridges).
    public var mac: EthernetAddress?
    public var learnedMACs: [EthernetAddress]
    /// Its addresses: a bridge port's fixed IPs, a router port's address with its length.
    public var addresses: [String]
    /// From its agent, while up.
    public var counters: PortCounters?

    public init(portId: PortID, state: State) {
        self.portId = portId
        self.state = state
        learnedMACs = []
        addresses = []
    }
}
