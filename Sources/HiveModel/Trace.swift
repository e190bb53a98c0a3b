import Foundation
import HivePacket

/// Which packets a live trace follows: a small pcap-like filter,
/// `tcp and dst port 80`, `icmp and host 10.0.2.14`, `udp and src net 10.0.1.0/24`.
///
/// Terms are joined by `and` (every term must hold): a protocol (`ip`,
/// `icmp`, `tcp`, `udp`, `arp`), `[src|dst] host A`, `[src|dst] net P`,
/// `[src|dst] port N`. Without `src` or `dst`, a host, net or port matches
/// either side. The empty filter matches every packet. Stored and sent as
/// its canonical text.
public struct TraceMatch: Hashable, Sendable {
    public enum Transport: String, CaseIterable, Sendable {
        case ip, icmp, tcp, udp, arp
    }

    public enum Side: String, Sendable {
        case source = "src"
        case destination = "dst"
        case either = ""
    }

    public var `protocol`: Transport?
    /// Address terms: each must hold.
    public var networks: [NetworkTerm] = []
    /// Port terms (TCP or UDP): each must hold.
    public var ports: [PortTerm] = []

    public struct NetworkTerm: Sendable {
        public var side: Side
        public var prefix: IPv4.Prefix
    }

    public struct PortTerm: Sendable {
        public var side: Side
        public var port: UInt16
    }

    public init(protocol: Transport? = nil) { self.protocol = `protocol` }

    public static func == (lhs: TraceMatch, rhs: TraceMatch) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    /// Parses the filter; the error says which word was not understood and what was expected.
    public init(parsing expression: String) throws(ModelError) {
        let words = expression.split(whereSeparator: \.isWhitespace).map { $0.lowercased() }
        var index = 0
        func fail(_ why: String) -> ModelError {
            .invalid([FieldError(field: "match", value: expression, problem: why)])
        }
        func next(_ what: String) throws(ModelError) -> String {
            guard index < words.count else { throw fail("ends where \(what) was expected") }
            defer { index += 1 }
            return words[index]
        }
        var expectingTerm = true
        while index < words.count {
            let word = words[index]
            if !expectingTerm {
                guard word == "and" || word == "&&" else {
                    throw fail("'\(word)' follows a complete term; join terms with 'and' (only 'and' is supported)")
                }
                index += 1
                expectingTerm = true
                continue
            }
            index += 1
            expectingTerm = false
            if let parsed = Transport(rawValue: word) {
                if let existing = self.protocol, existing != parsed, existing != .ip || parsed == .arp {
                    throw fail("names two protocols ('\(existing.rawValue)' and '\(word)'); a packet has one")
                }
                if self.protocol == nil || self.protocol == .ip { self.protocol = parsed }
                continue
            }
            var side = Side.either
            var kind = word
            if word == "src" || word == "dst" {
                side = word == "src" ? .source : .destination
                kind = try next("'host', 'net' or 'port'")
            }
            switch kind {
            case "host":
                let text = try next("an IPv4 address")
                guard let address = IPv4.Address(parsing: text) else { throw fail("'\(text)' is not an IPv4 address (expected like 10.0.2.14)") }
                networks.append(NetworkTerm(side: side, prefix: IPv4.Prefix(address: address, length: 32)))
            case "net":
                let text = try next("a prefix")
                guard let prefix = IPv4.Prefix(parsing: text) else { throw fail("'\(text)' is not an IPv4 prefix (expected like 10.0.1.0/24)") }
                networks.append(NetworkTerm(side: side, prefix: prefix))
            case "port":
                let text = try next("a port number")
                guard let port = UInt16(text) else { throw fail("'\(text)' is not a port number (expected 0 to 65535)") }
                ports.append(PortTerm(side: side, port: port))
            default:
                throw fail("'\(kind)' is not understood (expected ip, icmp, tcp, udp, arp, [src|dst] host A, [src|dst] net P or [src|dst] port N, joined by 'and')")
            }
        }
        if expectingTerm, !words.isEmpty { throw fail("ends with 'and'") }
        if !ports.isEmpty, let proto = self.protocol, proto != .tcp, proto != .udp {
            throw fail("matches ports, which only TCP and UDP packets have, but names '\(proto.rawValue)'")
        }
    }

    /// The canonical filter text (what `init(parsing:)` reads back).
    public var text: String {
        var terms: [String] = []
        if let proto = self.protocol { terms.append(proto.rawValue) }
        for term in networks {
            let (side, prefix) = (term.side, term.prefix)
            let term = prefix.length == 32 ? "host \(prefix.network.address)" : "net \(prefix)"
            terms.append(side == .either ? term : "\(side.rawValue) \(term)")
        }
        for term in ports {
            terms.append(term.side == .either ? "port \(term.port)" : "\(term.side.rawValue) port \(term.port)")
        }
        return terms.joined(separator: " and ")
    }

    /// Whether the packet whose flow key is `key` passes the filter.
    /// - Complexity: O(terms); no allocation.
    public func matches(_ key: FlowKey) -> Bool {
        if let proto = self.protocol {
            switch proto {
            case .arp: guard key.isARP else { return false }
            case .ip: guard key.isIPv4 else { return false }
            case .icmp: guard key.isIPv4, key.ipProtocol == .icmp else { return false }
            case .tcp: guard key.isIPv4, key.ipProtocol == .tcp else { return false }
            case .udp: guard key.isIPv4, key.ipProtocol == .udp else { return false }
            }
        }
        if !networks.isEmpty {
            // ARP's sender and target addresses are its source and destination.
            guard key.isIPv4 || key.isARP else { return false }
            for term in networks {
                let (side, prefix) = (term.side, term.prefix)
                let source = prefix.contains(key.ipv4Source)
                let destination = prefix.contains(key.ipv4Destination)
                switch side {
                case .source: guard source else { return false }
                case .destination: guard destination else { return false }
                case .either: guard source || destination else { return false }
                }
            }
        }
        if !ports.isEmpty {
            guard key.isIPv4, key.ipProtocol == .tcp || key.ipProtocol == .udp else { return false }
            for term in ports {
                let (side, port) = (term.side, term.port)
                switch side {
                case .source: guard key.sourcePort == port else { return false }
                case .destination: guard key.destinationPort == port else { return false }
                case .either: guard key.sourcePort == port || key.destinationPort == port else { return false }
                }
            }
        }
        return true
    }
}

extension TraceMatch: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(error)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}

public typealias LiveTraceID = ObjectID<LiveTraceRequest>

/// A live trace armed on a port: every agent where a packet matching
/// `match` enters the network by `portId` traces it (up to `count`) and
/// publishes what it did. Kept in the NSDB under a lease that its client
/// keeps alive, so it goes away with the client.
public struct LiveTraceRequest: Codable, Hashable, Sendable {
    public var id: LiveTraceID
    public var portId: PortID
    public var match: TraceMatch
    /// The most packets each agent traces for this request.
    public var count: Int
    /// The tenant that armed it; nil for an admin.
    public var tenantId: String?

    public static let countLimit = 100

    public init(id: LiveTraceID = LiveTraceID(), portId: PortID, match: TraceMatch, count: Int, tenantId: String? = nil) {
        self.id = id
        self.portId = portId
        self.match = match
        self.count = count
        self.tenantId = tenantId
    }
}

/// One traced packet, simulated or live: the path through the topology,
/// the decision, and where the ports involved live. What `hive trace`
/// prints, what the API returns and what agents publish for live traces.
public struct TraceReport: Codable, Hashable, Sendable {
    public struct Step: Codable, Hashable, Sendable {
        public var depth: Int
        public var kind: String
        public var text: String
        /// Kept in a summary: ports, devices, matching rules, verdicts that stopped the packet, routing, the decision.
        public var summary: Bool
        /// The id of the object the step is about (a port, device, chain, rule, route), if any.
        public var id: String?

        public init(depth: Int, kind: String, text: String, summary: Bool, id: String? = nil) {
            self.depth = depth
            self.kind = kind
            self.text = text
            self.summary = summary
            self.id = id
        }
    }

    /// A port and where it lives now.
    public struct PortRef: Codable, Hashable, Sendable {
        public var id: String
        public var name: String
        /// The host it is bound to (name), nil when unbound or interior.
        public var host: String?
        /// Whether that host's agent is alive (its lease held); nil when unbound.
        public var hostAlive: Bool?

        public init(id: String, name: String, host: String? = nil, hostAlive: Bool? = nil) {
            self.id = id
            self.name = name
            self.host = host
            self.hostAlive = hostAlive
        }
    }

    public struct Exclusion: Codable, Hashable, Sendable {
        public var port: String
        public var portName: String
        public var reason: String

        public init(port: String, portName: String, reason: String) {
            self.port = port
            self.portName = portName
            self.reason = reason
        }
    }

    public struct Generated: Codable, Hashable, Sendable {
        public var kind: String
        public var port: String
        public var portName: String
        public var bytes: Int

        public init(kind: String, port: String, portName: String, bytes: Int) {
            self.kind = kind
            self.port = port
            self.portName = portName
            self.bytes = bytes
        }
    }

    /// The cached flow a live packet hit, if any.
    public struct Flow: Codable, Hashable, Sendable {
        public var packets: UInt64
        public var bytes: UInt64
        public var ageSeconds: Double
        /// Whether a fresh simulation decided the same outputs as the cached flow.
        public var agrees: Bool

        public init(packets: UInt64, bytes: UInt64, ageSeconds: Double, agrees: Bool) {
            self.packets = packets
            self.bytes = bytes
            self.ageSeconds = ageSeconds
            self.agrees = agrees
        }
    }

    /// "simulated" (described by the user) or "live" (a real packet).
    public var mode: String
    public var packet: String
    public var inPort: PortRef
    /// Live: the host that saw the packet, and when (ISO 8601).
    public var host: String?
    public var time: String?
    /// Live: the cached flow that carried it (nil: it missed, and this is the simulation that decided it).
    public var flow: Flow?
    /// What was assumed or worth knowing, each said once.
    public var notes: [String]
    public var steps: [Step]
    /// output, flood, drop, consumed, pending-arp, pending-address, pending-nat-ports.
    public var decision: String
    public var reason: String
    public var outputPorts: [PortRef]
    public var floodExclusions: [Exclusion]
    public var actions: [String]
    public var generated: [Generated]
    public var learnMACs: [String]
    public var fieldsRead: [String]
    public var tags: [String]
    public var cacheable: Bool

    public init(
        mode: String, packet: String, inPort: PortRef, host: String? = nil, time: String? = nil, flow: Flow? = nil,
        notes: [String] = [], steps: [Step] = [], decision: String, reason: String, outputPorts: [PortRef] = [],
        floodExclusions: [Exclusion] = [], actions: [String] = [], generated: [Generated] = [], learnMACs: [String] = [],
        fieldsRead: [String] = [], tags: [String] = [], cacheable: Bool = false
    ) {
        self.mode = mode
        self.packet = packet
        self.inPort = inPort
        self.host = host
        self.time = time
        self.flow = flow
        self.notes = notes
        self.steps = steps
        self.decision = decision
        self.reason = reason
        self.outputPorts = outputPorts
        self.floodExclusions = floodExclusions
        self.actions = actions
        self.generated = generated
        self.learnMACs = learnMACs
        self.fieldsRead = fieldsRead
        self.tags = tags
        self.cacheable = cacheable
    }
}

/// A packet to simulate, as `hive trace` describes it (the body of
/// `POST /v1/traces`). Unset MACs and the source IP follow from the
/// topology and the learned tables; the report says what was assumed.
public struct TraceSpec: Codable, Hashable, Sendable {
    /// The ingress port: its id, "device/name", or a unique name.
    public var inPort: String
    /// The destination IPv4 address (ARP: the address asked for).
    public var dstIp: String
    /// icmp, tcp, udp or arp.
    public var `protocol`: String?
    public var srcIp: String?
    public var srcMac: String?
    public var dstMac: String?
    public var srcPort: UInt16?
    public var dstPort: UInt16?
    public var icmpType: UInt8?
    public var icmpCode: UInt8?
    public var ttl: UInt8?
    /// Comma-separated: syn, ack, fin, rst, psh, urg.
    public var tcpFlags: String?
    /// The connection state to assume where connections are tracked (the
    /// agents' tables are not read): new (default), established, related, reply, invalid.
    public var ctState: String?
    /// Where a router has no ARP entry, assume the answer and go on (default true).
    public var assumeArp: Bool?

    public init(
        inPort: String, dstIp: String, protocol: String? = nil, srcIp: String? = nil, srcMac: String? = nil, dstMac: String? = nil,
        srcPort: UInt16? = nil, dstPort: UInt16? = nil, icmpType: UInt8? = nil, icmpCode: UInt8? = nil, ttl: UInt8? = nil,
        tcpFlags: String? = nil, ctState: String? = nil, assumeArp: Bool? = nil
    ) {
        self.inPort = inPort
        self.dstIp = dstIp
        self.protocol = `protocol`
        self.srcIp = srcIp
        self.srcMac = srcMac
        self.dstMac = dstMac
        self.srcPort = srcPort
        self.dstPort = dstPort
        self.icmpType = icmpType
        self.icmpCode = icmpCode
        self.ttl = ttl
        self.tcpFlags = tcpFlags
        self.ctState = ctState
        self.assumeArp = assumeArp
    }
}
