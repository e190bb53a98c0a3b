/// The fields of a frame that a forwarding decision may depend on: the key
/// of the datapath's flow table and the input of the simulation.
///
/// Invariants:
/// - Fixed size, no references: no arrays, strings, classes or existentials,
///   so extracting, copying, hashing and comparing never allocate. Fields
///   that do not apply to the frame are zero, so equal frames give equal
///   keys.
/// - Extraction is one pass over the headers with the same bounds checks as
///   the parsers (it is built from them); malformed frames throw a
///   `PacketError` rather than give a partial key a rule could wrongly
///   match.
///
/// Which fields are set:
/// - Always: `inPort`, the Ethernet addresses, VLAN ids, `etherType`.
/// - ARP: `arpOperation`, `arpSenderMAC`, and the sender and target IPs in
///   `ipv4Source` and `ipv4Destination` (as Open vSwitch does).
/// - IPv4 and IPv6: addresses, `ipProtocol` (IPv6: the upper-layer
///   protocol after extension headers), `typeOfService` (IPv6: traffic
///   class), `timeToLive` (IPv6: hop limit), `fragmentKind`.
/// - TCP and UDP: ports; TCP also `tcpFlags`. ICMP and ICMPv6: type, code,
///   and the echo identifier for echo requests and replies.
/// - A first fragment carries the transport header and gives its fields;
///   its UDP length, which covers fragments not present, is not checked
///   against the bytes.
/// - A later fragment has no transport header: its transport fields stay
///   zero and `fragmentKind == .later` tells rules not to trust them.
/// - An unfragmented packet or first fragment too short for its transport
///   header is an error (`.truncated(layer: .tcp, ...)` and so on), not a
///   key with zero ports: a key without ports could slip past port-based
///   rules (the tiny-fragment attack of RFC 1858), so such packets drop.
///
/// Fields are ordered widest first so the layout has no holes: see
/// `MemoryLayout<FlowKey>.size` (90 bytes, stride 96).
public struct FlowKey: Hashable, Sendable {
    public var ipv6Source: IPv6.Address
    public var ipv6Destination: IPv6.Address
    public var ethernetSource: EthernetAddress
    public var ethernetDestination: EthernetAddress
    /// ARP sender hardware address (may differ from `ethernetSource`).
    public var arpSenderMAC: EthernetAddress
    /// The datapath port the frame arrived on.
    public var inPort: UInt32
    /// IPv4 source, or ARP sender protocol address.
    public var ipv4Source: IPv4.Address
    /// IPv4 destination, or ARP target protocol address.
    public var ipv4Destination: IPv4.Address
    /// The customer (or only) 802.1Q tag's VLAN id; 0 when untagged or
    /// priority-tagged.
    public var vlanID: UInt16
    /// The service tag's VLAN id of a QinQ frame; 0 when none.
    public var outerVLANID: UInt16
    /// The payload type after any tags.
    public var etherType: Ethernet.EtherType
    public var arpOperation: ARP.Operation
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var tcpFlags: TCP.Flags
    /// Echo identifier of ICMP(v6) echo requests and replies.
    public var icmpIdentifier: UInt16
    public var ipProtocol: IPProtocol
    /// IPv4 TOS or IPv6 traffic class: DSCP and ECN.
    public var typeOfService: UInt8
    /// IPv4 TTL or IPv6 hop limit.
    public var timeToLive: UInt8
    public var fragmentKind: FragmentKind
    public var icmpType: UInt8
    public var icmpCode: UInt8

    /// A key with every field zero but the port.
    @inlinable
    public init(inPort: UInt32) {
        ipv6Source = .any
        ipv6Destination = .any
        ethernetSource = .zero
        ethernetDestination = .zero
        arpSenderMAC = .zero
        self.inPort = inPort
        ipv4Source = .any
        ipv4Destination = .any
        vlanID = 0
        outerVLANID = 0
        etherType = Ethernet.EtherType(0)
        arpOperation = ARP.Operation(0)
        sourcePort = 0
        destinationPort = 0
        tcpFlags = []
        icmpIdentifier = 0
        ipProtocol = IPProtocol(0)
        typeOfService = 0
        timeToLive = 0
        fragmentKind = .none
        icmpType = 0
        icmpCode = 0
    }

    @inlinable public var isARP: Bool { etherType == .arp }
    @inlinable public var isIPv4: Bool { etherType == .ipv4 }
    @inlinable public var isIPv6: Bool { etherType == .ipv6 }
    /// Differentiated services code point of IPv4 or IPv6.
    @inlinable public var dscp: UInt8 { typeOfService >> 2 }
    /// True when the transport fields were read from the frame.
    @inlinable public var hasTransportFields: Bool {
        guard fragmentKind != .later, isIPv4 || isIPv6 else { return false }
        return ipProtocol == .tcp || ipProtocol == .udp || ipProtocol == (isIPv4 ? .icmp : .icmpv6)
    }
}

extension FlowKey {
    /// One pass of the hasher over the key's bytes instead of one call per
    /// field (about half the cost of a flow table lookup before). Sound
    /// because the layout has no padding (`FlowKeyTests` checks), so equal
    /// keys have equal bytes.
    @inlinable
    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes(of: self) { hasher.combine(bytes: $0) }
    }
}

extension FlowKey {
    /// Extracts the key of the Ethernet frame `frame` that arrived on
    /// `inPort`, in one pass and without allocating.
    /// - Throws: the `PacketError` of the first malformed or truncated layer.
    /// - Complexity: O(1) for IPv4; O(extension headers) for IPv6.
    @inlinable
    public static func extract(from frame: UnsafeRawBufferPointer, inPort: UInt32) throws(PacketError) -> FlowKey {
        try FlowKey(parsing: frame, inPort: inPort)
    }

    /// As `extract(from:inPort:)`.
    public init(parsing frame: UnsafeRawBufferPointer, inPort: UInt32) throws(PacketError) {
        self.init(inPort: inPort)
        let ethernet = try Ethernet.Header(parsing: frame)
        ethernetSource = ethernet.source
        ethernetDestination = ethernet.destination
        vlanID = ethernet.tag?.id ?? 0
        outerVLANID = ethernet.outerTag?.id ?? 0
        etherType = ethernet.etherType
        let payload = frame.dropping(ethernet.length)
        switch ethernet.etherType {
        case .arp:
            let arp = try ARP.Packet(parsing: payload)
            arpOperation = arp.operation
            arpSenderMAC = arp.senderMAC
            ipv4Source = arp.senderIP
            ipv4Destination = arp.targetIP
        case .ipv4:
            try extractIPv4(payload)
        case .ipv6:
            try extractIPv6(payload)
        default:
            break
        }
    }

    public init(parsing frame: [UInt8], inPort: UInt32) throws(PacketError) {
        self = try withBytes(of: frame) { (bytes) throws(PacketError) in try FlowKey(parsing: bytes, inPort: inPort) }
    }

    @inline(__always)
    mutating func extractIPv4(_ packet: UnsafeRawBufferPointer) throws(PacketError) {
        let ip = try IPv4.Header(parsing: packet)
        ipv4Source = ip.source
        ipv4Destination = ip.destination
        ipProtocol = ip.protocol
        typeOfService = ip.typeOfService
        timeToLive = ip.timeToLive
        fragmentKind = ip.fragmentKind
        guard fragmentKind != .later else { return }
        try extractTransport(ip.payload(in: packet), ipv6: false)
    }

    @inline(__always)
    mutating func extractIPv6(_ packet: UnsafeRawBufferPointer) throws(PacketError) {
        let ip = try IPv6.Header(parsing: packet)
        ipv6Source = ip.source
        ipv6Destination = ip.destination
        typeOfService = ip.trafficClass
        timeToLive = ip.hopLimit
        let upper = try ip.upperLayer(in: packet)
        ipProtocol = upper.protocol
        fragmentKind = upper.fragmentKind
        guard fragmentKind != .later else { return }
        try extractTransport(packet.slice(upper.offset..<(40 + Int(ip.payloadLength))), ipv6: true)
    }

    /// Reads ports, flags or ICMP fields from `segment`, the bytes the IP
    /// layer says belong to the transport.
    @inline(__always)
    mutating func extractTransport(_ segment: UnsafeRawBufferPointer, ipv6: Bool) throws(PacketError) {
        switch ipProtocol {
        case .tcp:
            let tcp = try TCP.Header(parsing: segment)
            sourcePort = tcp.sourcePort
            destinationPort = tcp.destinationPort
            tcpFlags = tcp.flags
        case .udp:
            let udp = try UDP.Header(parsing: segment, wholeDatagram: fragmentKind == .none)
            sourcePort = udp.sourcePort
            destinationPort = udp.destinationPort
        case .icmp where !ipv6:
            let header = try ICMPv4.Header(parsing: segment)
            icmpType = header.type.rawValue
            icmpCode = header.code
            if header.type == .echoRequest || header.type == .echoReply { icmpIdentifier = header.identifier }
        case .icmpv6 where ipv6:
            let header = try ICMPv6.Header(parsing: segment)
            icmpType = header.type.rawValue
            icmpCode = header.code
            if header.type == .echoRequest || header.type == .echoReply { icmpIdentifier = header.identifier }
        default:
            break
        }
    }
}

extension FlowKey: CustomStringConvertible {
    /// The fields that apply, in the order a trace reads them:
    /// `in_port=3 02:00:00:00:00:01>02:00:00:00:00:02 vlan=10 IPv4 10.0.0.1>10.0.0.2 TCP ttl=64 tos=0 1234>80 flags=SYN`.
    public var description: String {
        var parts = ["in_port=\(inPort)", "\(ethernetSource)>\(ethernetDestination)"]
        if outerVLANID != 0 { parts.append("outer_vlan=\(outerVLANID)") }
        if vlanID != 0 { parts.append("vlan=\(vlanID)") }
        parts.append(etherType.description)
        if isARP {
            parts.append(arpOperation == .request ? "request" : arpOperation == .reply ? "reply" : "op=\(arpOperation.rawValue)")
            parts.append("\(ipv4Source)(\(arpSenderMAC))>\(ipv4Destination)")
        } else if isIPv4 || isIPv6 {
            parts.append(isIPv4 ? "\(ipv4Source)>\(ipv4Destination)" : "\(ipv6Source)>\(ipv6Destination)")
            parts.append(ipProtocol.description)
            parts.append("ttl=\(timeToLive) tos=\(typeOfService)")
            if fragmentKind != .none { parts.append(fragmentKind == .first ? "frag=first" : "frag=later") }
            if hasTransportFields {
                if ipProtocol == .tcp || ipProtocol == .udp { parts.append("\(sourcePort)>\(destinationPort)") }
                if ipProtocol == .tcp { parts.append("flags=\(tcpFlags)") }
                if ipProtocol == .icmp || ipProtocol == .icmpv6 {
                    parts.append("type=\(icmpType) code=\(icmpCode)" + (icmpIdentifier != 0 ? " id=\(icmpIdentifier)" : ""))
                }
            }
        }
        return parts.joined(separator: " ")
    }
}
