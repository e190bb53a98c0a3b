import HiveModel
import HivePacket

/// Where a simulated packet ends up.
public enum SimulationDecision: Hashable, Sendable {
    /// Out of one exterior port (`SimulationResult.outputPorts` holds it too).
    /// Whether the port is local or behind a tunnel is the agent's to say,
    /// from the port's binding; the tunnel key is the port's `tunnelKey`.
    case output(PortID)
    /// Out of the exterior ports of `bridge` listed in `outputPorts` (the
    /// bridge's flood set less the ingress and any port whose outbound chain
    /// dropped); empty when no port is left.
    case flood(BridgeID)
    /// Discarded; generated packets (an ICMP error, a TCP reset) may still go out.
    case drop(DropReason)
    /// Answered by the agent itself (ARP reply, ICMP echo reply, an ARP reply
    /// learned): the generated packets are the whole output.
    case consumed
    /// Routed, but the next hop's MAC is unknown: `router` sent the generated
    /// ARP request for `address` out of `port`; the packet waits on the answer.
    case pendingARP(router: RouterID, address: IPv4.Address, port: PortID)
    /// A DHCP client on `port`, which has no address yet, on a bridge whose
    /// subnet has a pool: the agent gives the port one (the repository's
    /// "auto") and simulates the packet again.
    case pendingAddress(PortID)
    /// SNAT to `address` needs a port and this host holds no free one in
    /// `firstPort...lastPort`: the agent leases a block of SNAT ports (the
    /// one holding `preferredPort` when it is free) and simulates the
    /// packet again.
    case pendingNATPorts(address: IPv4.Address, firstPort: UInt16, lastPort: UInt16, preferredPort: UInt16)
    /// The packet crosses a link to a port on a device this snapshot does
    /// not hold, or meets a chain it does not hold (an agent loads devices as
    /// packets reach them, and chains as objects name them): the agent loads
    /// it and simulates the packet again. Never a pass without the chain.
    case pendingTopology(PendingObject)
}

/// What a simulation waits for.
public enum PendingObject: Hashable, Sendable {
    /// A port a link leads to (its device is loaded with it).
    case port(PortID)
    case chain(ChainID)
}

/// Why a packet was dropped.
public enum DropReason: Hashable, Sendable {
    /// No port has the frame's in-port number as its tunnel key.
    case unknownInPort(UInt32)
    case portDown(PortID)
    case bridgeDown(BridgeID)
    case routerDown(RouterID)
    /// A chain the snapshot does not hold (not loaded yet); where the
    /// packet cannot wait (one port of a flood), it is not sent there.
    case chainNotLoaded(ChainID)
    /// A rule's drop action.
    case ruleDropped(chain: ChainID, rule: RuleID)
    /// A rule's reject action (the reset or ICMP error is in the generated packets).
    case ruleRejected(chain: ChainID, rule: RuleID)
    /// A jump to a chain already being evaluated on the jump stack.
    case jumpLoop(chain: ChainID, rule: RuleID, target: ChainID)
    /// Jumps nested deeper than `SimulationOptions.jumpDepthLimit`.
    case jumpTooDeep(chain: ChainID, rule: RuleID, limit: Int)
    /// A jump to a chain the snapshot does not have.
    case jumpToMissingChain(chain: ChainID, rule: RuleID)
    /// The bridge would send the frame back out of the port it came in by.
    case sameIngressAndEgress(BridgeID, PortID)
    /// A router got a frame not addressed to its port's MAC (nor broadcast ARP).
    case notForRouterMAC(RouterID, EthernetAddress)
    /// An ARP packet a router does not answer (not for its port's address, or an unknown operation).
    case arpNotForRouter(RouterID, IPv4.Address)
    /// A router only routes IPv4.
    case notIPv4(RouterID, etherType: UInt16)
    /// For one of the router's own addresses, and not an echo request.
    case addressedToRouter(RouterID, IPv4.Address)
    case timeToLiveExpired(RouterID)
    case noRoute(RouterID, IPv4.Address)
    case blackholeRoute(RouteID)
    case rejectRoute(RouteID)
    /// A normal route whose egress port is missing or not on the router.
    case routeWithoutPort(RouteID)
    /// The packet crossed more devices than `SimulationOptions.hopLimit`.
    case hopLimitExceeded(Int)
    /// Port security: the VM behind the port sent from an address that is not its own.
    case spoofed(PortID, SpoofKind)
    /// The port's security groups allow no such traffic in this direction.
    case securityGroup(PortID, TrafficDirection)
    /// A port with security groups: the packet belongs to no valid connection
    /// (a TCP segment other than a SYN with none, impossible flags, an ICMP
    /// reply or error about nothing tracked).
    case connectionInvalid(PortID)
    /// The egress port is bound to a host whose agent is not alive (its
    /// lease lapsed): nothing there would receive the packet.
    case hostDown(PortID)
}

extension DropReason: CustomStringConvertible {
    public var description: String {
        switch self {
        case .unknownInPort(let key): "no port has in-port number (tunnel key) \(key)"
        case .portDown(let port): "port \(port) is administratively down"
        case .bridgeDown(let bridge): "bridge \(bridge) is administratively down"
        case .routerDown(let router): "router \(router) is administratively down"
        case .ruleDropped(let chain, let rule): "dropped by rule \(rule) in chain \(chain)"
        case .ruleRejected(let chain, let rule): "rejected by rule \(rule) in chain \(chain)"
        case .jumpLoop(let chain, let rule, let target): "rule \(rule) in chain \(chain) jumps to chain \(target), which is already being evaluated (a jump loop)"
        case .jumpTooDeep(let chain, let rule, let limit): "rule \(rule) in chain \(chain) jumps deeper than \(limit) chains"
        case .jumpToMissingChain(let chain, let rule): "rule \(rule) in chain \(chain) jumps to a chain that does not exist"
        case .chainNotLoaded(let chain): "chain \(chain) is not loaded yet"
        case .sameIngressAndEgress(let bridge, let port): "bridge \(bridge) would send the frame back out of its ingress port \(port)"
        case .notForRouterMAC(let router, let mac): "router \(router) does not accept frames to \(mac) (not its port's MAC)"
        case .arpNotForRouter(let router, let ip): "router \(router) does not answer ARP for \(ip)"
        case .notIPv4(let router, let type): "router \(router) routes IPv4 only (ethertype 0x\(String(type, radix: 16)))"
        case .addressedToRouter(let router, let ip): "addressed to router \(router)'s own address \(ip), and not an echo request"
        case .timeToLiveExpired(let router): "TTL expired at router \(router)"
        case .noRoute(let router, let ip): "router \(router) has no route to \(ip)"
        case .blackholeRoute(let route): "blackhole route \(route)"
        case .rejectRoute(let route): "reject route \(route)"
        case .routeWithoutPort(let route): "route \(route) has no egress port on its router"
        case .hopLimitExceeded(let limit): "crossed more than \(limit) devices (a forwarding loop?)"
        case .spoofed(let port, let kind): "port security of port \(port) dropped it: \(kind.rawValue.replacingUnderscores)"
        case .securityGroup(let port, let direction): "no security group rule of port \(port) allows it (\(direction.rawValue))"
        case .connectionInvalid(let port): "port \(port): not part of a valid connection (conntrack invalid)"
        case .hostDown(let port): "port \(port) is bound to a host whose agent is not alive"
        }
    }
}

/// A header rewrite, applied in order to the packet before it leaves.
public enum HeaderAction: Hashable, Sendable {
    case setEthernetSource(EthernetAddress)
    case setEthernetDestination(EthernetAddress)
    /// Decrement the IPv4 TTL, updating the header checksum.
    case decrementTimeToLive
    /// NAT: the IPv4 source or destination address, the TCP/UDP source or
    /// destination port, the ICMP echo identifier (checksums updated).
    case setIPv4Source(IPv4.Address)
    case setIPv4Destination(IPv4.Address)
    case setSourcePort(UInt16)
    case setDestinationPort(UInt16)
    case setICMPIdentifier(UInt16)
    /// NAT of an ICMP error: an address or port of the datagram it quotes
    /// (checksums updated).
    case setQuotedAddress(source: Bool, IPv4.Address)
    case setQuotedPort(source: Bool, UInt16)

    /// Applies the rewrite to a whole Ethernet frame; frames it does not fit
    /// (no IPv4 header for a TTL) are left alone.
    public func apply(to frame: inout [UInt8]) {
        switch self {
        case .setEthernetDestination(let mac):
            guard frame.count >= 6 else { return }
            for index in 0..<6 { frame[index] = UInt8(truncatingIfNeeded: mac.value >> UInt64(40 - 8 * index)) }
        case .setEthernetSource(let mac):
            guard frame.count >= 12 else { return }
            for index in 0..<6 { frame[6 + index] = UInt8(truncatingIfNeeded: mac.value >> UInt64(40 - 8 * index)) }
        case .decrementTimeToLive:
            guard let ethernet = try? Ethernet.Header(parsing: frame), ethernet.etherType == .ipv4 else { return }
            frame.withUnsafeMutableBytes { bytes in
                _ = try? IPv4.decrementTimeToLive(in: bytes, at: ethernet.length)
            }
        case .setIPv4Source, .setIPv4Destination, .setSourcePort, .setDestinationPort, .setICMPIdentifier, .setQuotedAddress, .setQuotedPort:
            frame.withUnsafeMutableBytes { bytes in translation?.apply(toFrame: bytes) }
        }
    }

    /// The NAT rewrite this action is, if it is one.
    public var translation: IPv4.Translation? {
        switch self {
        case .setIPv4Source(let address): .source(address)
        case .setIPv4Destination(let address): .destination(address)
        case .setSourcePort(let port): .sourcePort(port)
        case .setDestinationPort(let port): .destinationPort(port)
        case .setICMPIdentifier(let identifier): .icmpIdentifier(identifier)
        case .setQuotedAddress(let source, let address): .quotedAddress(source: source, address)
        case .setQuotedPort(let source, let port): .quotedPort(source: source, port)
        case .setEthernetSource, .setEthernetDestination, .decrementTimeToLive: nil
        }
    }

    /// Applies the rewrite to a flow key, as `apply(to:)` does to the frame.
    public func apply(to key: inout FlowKey) {
        switch self {
        case .setEthernetSource(let mac): key.ethernetSource = mac
        case .setEthernetDestination(let mac): key.ethernetDestination = mac
        case .decrementTimeToLive: if key.isIPv4, key.timeToLive > 0 { key.timeToLive -= 1 }
        case .setIPv4Source(let address): key.ipv4Source = address
        case .setIPv4Destination(let address): key.ipv4Destination = address
        case .setSourcePort(let port): key.sourcePort = port
        case .setDestinationPort(let port): key.destinationPort = port
        case .setICMPIdentifier(let identifier): key.icmpIdentifier = identifier
        // The flow key has no field of the quoted datagram.
        case .setQuotedAddress, .setQuotedPort: break
        }
    }
}

extension HeaderAction: CustomStringConvertible {
    public var description: String {
        switch self {
        case .setEthernetSource(let mac): "set eth_src=\(mac)"
        case .setEthernetDestination(let mac): "set eth_dst=\(mac)"
        case .decrementTimeToLive: "dec_ttl"
        case .setIPv4Source(let address): "set ip_src=\(address)"
        case .setIPv4Destination(let address): "set ip_dst=\(address)"
        case .setSourcePort(let port): "set tp_src=\(port)"
        case .setDestinationPort(let port): "set tp_dst=\(port)"
        case .setICMPIdentifier(let identifier): "set icmp_id=\(identifier)"
        case .setQuotedAddress(let source, let address): "set quoted \(source ? "ip_src" : "ip_dst")=\(address)"
        case .setQuotedPort(let source, let port): "set quoted \(source ? "tp_src" : "tp_dst")=\(port)"
        }
    }
}

/// A frame the simulation made: to be sent out of `port` (its device's
/// side). For an exterior port that means delivering it to the port's
/// interface; for an interior port, simulating it from the linked peer on.
public struct GeneratedPacket: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case arpReply = "ARP reply"
        case arpRequest = "ARP request"
        case echoReply = "ICMP echo reply"
        case timeExceeded = "ICMP time exceeded"
        case destinationUnreachable = "ICMP destination unreachable"
        case tcpReset = "TCP reset"
        case dhcpReply = "DHCP reply"
    }

    public var kind: Kind
    public var port: PortID
    public var frame: [UInt8]

    public init(kind: Kind, port: PortID, frame: [UInt8]) {
        self.kind = kind
        self.port = port
        self.frame = frame
    }
}

/// A router port as the source of ICMP errors.
public struct RouterHop: Hashable, Sendable {
    public var mac: EthernetAddress
    public var address: IPv4.Address

    public init(mac: EthernetAddress, address: IPv4.Address) {
        self.mac = mac
        self.address = address
    }
}

extension String {
    var replacingUnderscores: String { String(map { $0 == "_" ? " " : $0 }) }
}

/// A port a flood left out because its outbound chain did not accept.
public struct FloodExclusion: Hashable, Sendable {
    public var port: PortID
    public var reason: DropReason

    public init(port: PortID, reason: DropReason) {
        self.port = port
        self.reason = reason
    }
}

/// A MAC table entry to learn: `mac` was seen entering `bridge` by `port`.
public struct MACLearning: Hashable, Sendable {
    public var bridge: BridgeID
    public var mac: EthernetAddress
    public var port: PortID

    public init(bridge: BridgeID, mac: EthernetAddress, port: PortID) {
        self.bridge = bridge
        self.mac = mac
        self.port = port
    }
}

/// An ARP table entry to learn: `router` got an ARP reply saying `address` is at `mac`.
public struct ARPLearning: Hashable, Sendable {
    public var router: RouterID
    public var address: IPv4.Address
    public var mac: EthernetAddress

    public init(router: RouterID, address: IPv4.Address, mac: EthernetAddress) {
        self.router = router
        self.address = address
        self.mac = mac
    }
}

/// Everything one simulation found. Its arrays belong to the
/// `SimulationContext` that produced it and are reused by the next run;
/// copy what must outlive that.
public struct SimulationResult: Sendable {
    public internal(set) var decision: SimulationDecision = .consumed
    /// The exterior ports the packet leaves by (one for `.output`, the flood set for `.flood`).
    public internal(set) var outputPorts: [PortID] = []
    /// Flood-set ports left out by their outbound chains, and why. With
    /// `outputPorts` this is the whole flood set but the ingress and ports
    /// administratively down: a host none of whose ports is here gets the
    /// flood as one packet on `floodKey`.
    public internal(set) var floodExclusions: [FloodExclusion] = []
    /// A `.flood`'s bridge tunnel key (its flood set's key): a host that
    /// receives a packet on it delivers to its own ports of the bridge but
    /// the ingress. 0 otherwise, and for a bridge without a key.
    public internal(set) var floodKey: UInt32 = 0
    /// Header rewrites in order, to apply before output.
    public internal(set) var actions: [HeaderAction] = []
    public internal(set) var generatedPackets: [GeneratedPacket] = []
    public internal(set) var macLearning: [MACLearning] = []
    public internal(set) var arpLearning: [ARPLearning] = []
    /// Known entries the packet confirmed (its source MAC on the port it is
    /// known on; a router's neighbour sending from the MAC it is known
    /// at): the agent keeps them from ageing.
    public internal(set) var macRefreshes: [MACLearning] = []
    public internal(set) var arpRefreshes: [ARPLearning] = []
    /// Every object and table entry read, each once, in the order first read.
    public internal(set) var tags: [InvalidationTag] = []
    /// The flow key fields the result depends on.
    public internal(set) var fieldsRead: FlowFields = []
    /// The packet as simulated (in-port as given).
    public internal(set) var ingressKey = FlowKey(inPort: 0)
    /// The packet as it leaves: `ingressKey` with `actions` applied.
    public internal(set) var egressKey = FlowKey(inPort: 0)
    /// Devices crossed.
    public internal(set) var hops = 0
    /// Routed packets: the first router's ingress port (its MAC and
    /// address), the source of the ICMP error the datapath sends when the
    /// packet is too big for the tunnel path.
    public internal(set) var routerHop: RouterHop?
    /// Empty unless `SimulationOptions.recordsTrace`.
    public internal(set) var trace = SimulationTrace()
    /// The result depends on more than the flow key (a neighbour
    /// advertisement's target, a DHCP message's contents): each packet must
    /// be simulated.
    public internal(set) var dependsOnPayload = false
    /// Each connection-tracking zone the packet crossed: its key there and
    /// what the table said. The agent applies them when the packet is forwarded.
    public internal(set) var connections: [ConnectionObservation] = []

    public init() {}

    /// Whether the agent may install a flow from this result: outputs, floods
    /// and drops may be cached; answers and pending resolutions are per packet.
    public var isCacheable: Bool {
        switch decision {
        case .output, .flood, .drop: generatedPackets.isEmpty && arpLearning.isEmpty && !dependsOnPayload
        case .consumed, .pendingARP, .pendingAddress, .pendingNATPorts, .pendingTopology: false
        }
    }

    mutating func reset(keepingCapacity: Bool) {
        decision = .consumed
        outputPorts.removeAll(keepingCapacity: keepingCapacity)
        floodExclusions.removeAll(keepingCapacity: keepingCapacity)
        floodKey = 0
        actions.removeAll(keepingCapacity: keepingCapacity)
        generatedPackets.removeAll(keepingCapacity: keepingCapacity)
        macLearning.removeAll(keepingCapacity: keepingCapacity)
        arpLearning.removeAll(keepingCapacity: keepingCapacity)
        macRefreshes.removeAll(keepingCapacity: keepingCapacity)
        arpRefreshes.removeAll(keepingCapacity: keepingCapacity)
        tags.removeAll(keepingCapacity: keepingCapacity)
        fieldsRead = []
        hops = 0
        routerHop = nil
        dependsOnPayload = false
        connections.removeAll(keepingCapacity: keepingCapacity)
        trace.steps.removeAll(keepingCapacity: keepingCapacity)
    }

    /// Adds `tag` unless present. Linear: a simulation reads a few dozen objects.
    @inline(__always)
    mutating func tag(_ tag: InvalidationTag) {
        if !tags.contains(tag) { tags.append(tag) }
    }

    /// Adds `tag` without looking for it first: for tags a run adds once
    /// (a zone's connection is observed once per run); a repeat would only
    /// make the flow carry it twice.
    @inline(__always)
    mutating func tagOnce(_ tag: InvalidationTag) {
        tags.append(tag)
    }
}
