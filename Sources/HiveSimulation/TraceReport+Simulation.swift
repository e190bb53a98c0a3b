import HiveModel
import HivePacket

/// Where a port lives, for a trace's report: the host's name and whether it is alive.
public struct TracePlacement: Sendable {
    public var host: String
    public var alive: Bool

    public init(host: String, alive: Bool) {
        self.host = host
        self.alive = alive
    }
}

extension TraceReport {
    /// The report of one simulation, objects named as `snapshot` knows them
    /// and ports placed by `placement` (nil: unbound).
    public init(
        mode: String, result: SimulationResult, key: FlowKey, snapshot: TopologySnapshot, notes: [String],
        placement: (PortID) -> TracePlacement?
    ) {
        func reference(_ id: PortID) -> PortRef {
            let place = placement(id)
            return PortRef(id: id.description, name: snapshot.name(of: id), host: place?.host, hostAlive: place?.alive)
        }
        let inPort = snapshot.port(tunnelKey: key.inPort).map { reference($0.id) }
            ?? PortRef(id: "", name: "in-port \(key.inPort)")
        var notes = notes
        // A packet sent to a dead host is tunnelled there and lost: say so.
        for port in result.outputPorts {
            if let place = placement(port), !place.alive {
                notes.append("port \(snapshot.name(of: port)) is bound to host \(place.host), whose agent is not alive (its lease lapsed): nothing there receives the packet")
            }
        }
        let decision = Self.decisionKind(result.decision, outputs: result.outputPorts)
        self.init(
            mode: mode, packet: Self.packetText(key), inPort: inPort, notes: notes,
            steps: result.trace.steps.map {
                Step(depth: $0.depth, kind: $0.event.kind, text: $0.event.text(in: snapshot), summary: $0.isSummary, id: $0.event.objectID)
            },
            decision: decision,
            reason: Self.reasonText(result, in: snapshot),
            outputPorts: result.outputPorts.map(reference),
            floodExclusions: result.floodExclusions.map {
                Exclusion(port: $0.port.description, portName: snapshot.name(of: $0.port), reason: dropText($0.reason, in: snapshot))
            },
            actions: result.actions.map(\.description),
            generated: result.generatedPackets.map {
                Generated(kind: $0.kind.rawValue, port: $0.port.description, portName: snapshot.name(of: $0.port), bytes: $0.frame.count)
            },
            learnMACs: result.macLearning.map { "\($0.mac) on \(snapshot.name(of: $0.port)) in bridge \(snapshot.name(of: $0.bridge))" },
            fieldsRead: result.fieldsRead.names,
            tags: result.tags.map(\.description),
            cacheable: result.isCacheable)
    }

    static func reasonText(_ result: SimulationResult, in snapshot: TopologySnapshot) -> String {
        if case .flood(let bridge) = result.decision, result.outputPorts.isEmpty {
            return "DROP: flooded on bridge \(snapshot.name(of: bridge)), but no port is left"
        }
        return decisionText(result.decision, in: snapshot)
    }

    /// A decision's kind as the report and `--json` name it; a flood that reached no port is a drop.
    static func decisionKind(_ decision: SimulationDecision, outputs: [PortID]) -> String {
        switch decision {
        case .output: "output"
        case .flood: outputs.isEmpty ? "drop" : "flood"
        case .drop: "drop"
        case .consumed: "consumed"
        case .pendingARP: "pending-arp"
        case .pendingAddress: "pending-address"
        case .pendingNATPorts: "pending-nat-ports"
        case .pendingTopology: "pending-topology"
        }
    }

    /// The packet in one line: "TCP 02:..:01 > 02:..:02, 10.0.1.11 > 10.0.2.12 ports 40000 > 80 flags SYN ttl 64".
    public static func packetText(_ key: FlowKey) -> String {
        let macs = "\(key.ethernetSource) > \(key.ethernetDestination)"
        if key.isARP {
            let operation = key.arpOperation == .request ? "request" : key.arpOperation == .reply ? "reply" : "op \(key.arpOperation.rawValue)"
            return "ARP \(operation) \(macs), \(key.ipv4Source) > \(key.ipv4Destination)"
        }
        guard key.isIPv4 else { return "\(key.etherType) \(macs)" }
        let addresses = "\(macs), \(key.ipv4Source) > \(key.ipv4Destination)"
        switch key.ipProtocol {
        case .icmp: return "ICMP type \(key.icmpType) code \(key.icmpCode) \(addresses) ttl \(key.timeToLive)"
        case .tcp: return "TCP \(addresses) ports \(key.sourcePort) > \(key.destinationPort) flags \(key.tcpFlags) ttl \(key.timeToLive)"
        case .udp: return "UDP \(addresses) ports \(key.sourcePort) > \(key.destinationPort) ttl \(key.timeToLive)"
        default: return "IPv4 \(key.ipProtocol) \(addresses) ttl \(key.timeToLive)"
        }
    }
}

extension TraceEvent {
    /// The id of the object the step is about, for scripts that follow ids rather than names.
    public var objectID: String? {
        switch self {
        case .enterPort(let port), .leavePort(let port), .generated(_, let port), .securityGroup(let port, _, _, _): port.description
        case .bridge(let id), .flood(let id, _): id.description
        case .router(let id): id.description
        case .chain(let id, _, _), .returnTo(let id): id.description
        case .jump(_, let to): to.description
        case .rule(let id, _, _): id.description
        case .chainVerdict(_, let verdict):
            switch verdict {
            case .accept(let rule): rule?.description
            case .drop(let rule), .reject(let rule), .error(let rule): rule.description
            }
        case .routeLookup(_, let route, _): route?.description
        case .link(_, let to): to.description
        case .macLookup(_, let port, _): port?.description
        default: nil
        }
    }
}
