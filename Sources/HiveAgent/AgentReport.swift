// The agent's state for operators: its installed flows, a summary of its
// counters, its bound ports. Made on request, out of the packet path: the
// flows are copied by the datapath thread between two batches
// (`Datapath.report()`), everything else comes from the counters it
// publishes every 50 ms and from the control state. Flow tags are hashes;
// they are named here by hashing again every tag the current view can
// produce (`FlowTagNames`), so the miss path keeps no names.

import Foundation
import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import Synchronization

/// Why a report cannot be made.
public struct AgentStateError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// The agent has not registered its host yet.
        case notRegistered
        /// The port asked for is not in the agent's view of the topology.
        case unknownPort
    }

    public var kind: Kind
    public var description: String
}

extension Agent {
    /// The installed flows; with `port`, those that enter by it or leave by
    /// it (to a local interface or through the tunnel). The busiest `limit`
    /// are named and returned, ordered by in-port, busiest first.
    public func flowsReport(port: PortID? = nil, limit: Int = AgentFlows.defaultLimit) async throws(AgentStateError) -> AgentFlows {
        let placement = await control.reportPlacement()
        guard let hostID = placement.hostID else { throw Self.notRegistered }
        let view = control.shared.view
        var portKey: UInt32?
        if let port {
            guard let model = view.topology.port(port) else {
                throw AgentStateError(kind: .unknownPort, description: "port \(port) is not in this agent's view of the topology")
            }
            portKey = model.tunnelKey
        }
        let report = await datapath.report()
        let matching = report.flows.filter { flow in
            guard let portKey else { return true }
            return flow.key.inPort == portKey || flow.actions.outputs.contains { $0.portKey == portKey }
        }
        let selected = matching.count <= limit ? matching : Array(matching.sorted { $0.packets > $1.packets }.prefix(max(0, limit)))
        var names = FlowTagNames(view: view)
        names.add(report.tagNames)
        for flow in selected { names.addLookups(of: flow) }
        let interfaces = report.statistics.ports.mapValues(\.name)
        let entries = selected.map { flow in
            FlowEntry(
                match: FlowMatch(flow.key, mask: flow.mask, portName: view.topology.port(tunnelKey: flow.key.inPort).map { view.topology.name(of: $0.id) }),
                actions: FlowActionList(flow.actions, view: view, interfaces: interfaces, hostNames: placement.hostNames),
                packets: flow.packets, bytes: flow.bytes, ageSeconds: Self.seconds(flow.age), idleSeconds: Self.seconds(flow.idle),
                hardTimeoutSeconds: Self.seconds(flow.hardTimeout), tags: Self.unique(flow.tags).map(names.name))
        }
        // By in-port, busiest first, then by match: a stable order to read and diff.
        let ordered = entries.map { ($0, $0.match.description) }
            .sorted { ($0.0.match.inPort, $1.0.packets, $0.1) < ($1.0.match.inPort, $0.0.packets, $1.1) }.map(\.0)
        return AgentFlows(
            hostId: hostID, hostName: configuration.hostName, port: port.map { view.topology.name(of: $0) }, total: matching.count, flows: ordered)
    }

    /// Flow counts, hit rate, upcall rate and drops.
    public func summaryReport() async throws(AgentStateError) -> AgentFlowSummary {
        guard let hostID = await control.hostID else { throw Self.notRegistered }
        let statistics = await currentStatistics()
        let view = control.shared.view
        var summary = AgentFlowSummary(hostId: hostID, hostName: configuration.hostName)
        summary.flows = statistics.flows
        summary.flowCapacity = configuration.datapath.flowCapacity
        summary.hits = statistics.flowHits
        summary.upcalls = statistics.upcalls
        let packets = Double(statistics.flowHits) + Double(statistics.upcalls)
        summary.hitRate = packets == 0 ? 0 : Double(statistics.flowHits) / packets
        let rate = upcallRates.rate(current: statistics.upcalls)
        summary.upcallsPerSecond = rate.perSecond
        summary.rateIntervalSeconds = rate.interval
        summary.held = statistics.held
        summary.installed = statistics.flowsInstalled
        summary.invalidated = statistics.flowsInvalidated
        summary.expired = statistics.flowsExpired
        summary.idleTimeoutSeconds = Self.seconds(configuration.datapath.flowIdleTimeout)
        summary.hardTimeoutSeconds = Self.seconds(configuration.datapath.flowHardTimeout)
        summary.drops = statistics.drops.filter { $0.value > 0 }.reduce(into: [:]) { $0[$1.key.rawValue] = $1.value }
        summary.ports = statistics.ports.sorted { $0.key < $1.key }.map { key, counters in
            PortDrops(port: view.topology.port(tunnelKey: key).map { view.topology.name(of: $0.id) } ?? counters.name,
                      portKey: key, drops: Self.drops(of: counters))
        }
        return summary
    }

    /// Every binding of this host: its interface open (up, with counters) or not (down, with why).
    public func portsReport() async throws(AgentStateError) -> AgentPorts {
        let placement = await control.reportPlacement()
        guard let hostID = placement.hostID else { throw Self.notRegistered }
        let statistics = await currentStatistics()
        let view = control.shared.view
        let ports = placement.bindings.map { binding in
            let portKey = binding.portKey
            let counters = placement.bound[binding.portId].flatMap { statistics.ports[$0] }
            let up = placement.bound[binding.portId] != nil
            return AgentPortState(
                portId: binding.portId, port: view.topology.name(of: binding.portId), portKey: portKey, interface: binding.interface,
                up: up, reason: up ? nil : placement.unopened[binding.portId] ?? "not opened yet",
                counters: counters.map(Self.counters))
        }.sorted { $0.port < $1.port }
        return AgentPorts(hostId: hostID, hostName: configuration.hostName, ports: ports)
    }

    /// The counters as of now: asked of the datapath thread (they are
    /// published only every 50 ms), or the last published when it is not running.
    private func currentStatistics() async -> DatapathStatistics {
        let report = await datapath.report(flows: false)
        return report.running ? report.statistics : datapath.statistics
    }

    /// The tags in their order, each once (an output port's comes from the simulation and its output).
    static func unique(_ tags: [FlowTag]) -> [FlowTag] {
        var seen = Set<FlowTag>()
        return tags.filter { seen.insert($0).inserted }
    }

    private static let notRegistered = AgentStateError(kind: .notRegistered, description: "the agent has not registered its host yet")

    static func seconds(_ nanoseconds: UInt64) -> Double { (Double(nanoseconds) / 1e6).rounded() / 1e3 }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func counters(_ port: DatapathStatistics.PortCounters) -> PortCounters {
        PortCounters(
            receivedPackets: port.receivedPackets, receivedBytes: port.receivedBytes, sentPackets: port.sentPackets,
            sentBytes: port.sentBytes, kernelDrops: port.kernelDrops, drops: drops(of: port))
    }

    /// A port's nonzero drops by the reasons `hive_port_drops_total` uses.
    static func drops(of port: DatapathStatistics.PortCounters) -> [String: UInt64] {
        var drops: [String: UInt64] = [:]
        for (code, reason) in DropCode.labels.enumerated() where code < port.drops.count && port.drops[code] > 0 {
            drops[reason] = port.drops[code]
        }
        if port.tooBig > 0 { drops["too_big"] = port.tooBig }
        return drops
    }
}

// MARK: The control state a report reads

extension AgentControl {
    struct ReportPlacement: Sendable {
        struct Bound: Sendable {
            var portId: PortID
            var portKey: UInt32
            var interface: String
        }

        var hostID: HostID?
        /// This host's bindings (their ports' keys from the mirror).
        var bindings: [Bound] = []
        /// Ports whose interface is open: their tunnel keys.
        var bound: [PortID: UInt32] = [:]
        var unopened: [PortID: String] = [:]
        /// Other hosts by underlay address, to name tunnel outputs.
        var hostNames: [IPv4.Address: String] = [:]
    }

    func reportPlacement() -> ReportPlacement {
        var placement = ReportPlacement(hostID: hostID)
        for binding in mirror.bindings.values where binding.hostId == hostID {
            guard let port = mirror.ports[binding.portId] else { continue }
            placement.bindings.append(.init(portId: binding.portId, portKey: port.tunnelKey, interface: binding.interfaceName))
        }
        placement.bound = bound.mapValues(\.portKey)
        placement.unopened = unopened
        for host in mirror.hosts.values {
            for address in host.underlayAddresses { placement.hostNames[address] = host.name }
        }
        for zone in mirror.tunnelZones.values {
            for member in zone.members { placement.hostNames[member.address] = mirror.hosts[member.hostId]?.name }
        }
        return placement
    }
}

// MARK: Upcall rate

/// The upcall counter sampled every second (by the agent's housekeeping),
/// so the summary can say "upcalls per second over the last 10 s".
final class UpcallRates: Sendable {
    private struct Sample {
        var time: ContinuousClock.Instant
        var upcalls: UInt64
    }

    private let samples = Mutex<[Sample]>([])
    static let window = Duration.seconds(10)

    func record(_ upcalls: UInt64, at time: ContinuousClock.Instant = .now) {
        samples.withLock { samples in
            samples.append(Sample(time: time, upcalls: upcalls))
            // Keep the newest sample at least a window old, and those after it.
            while samples.count > 1, time - samples[1].time >= Self.window { samples.removeFirst() }
        }
    }

    /// Upcalls per second from the oldest kept sample to `current` now; 0 over 0 s before the first sample.
    func rate(current: UInt64, now: ContinuousClock.Instant = .now) -> (perSecond: Double, interval: Double) {
        guard let oldest = samples.withLock({ $0.first }) else { return (0, 0) }
        let elapsed = now - oldest.time
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard seconds > 0, current >= oldest.upcalls else { return (0, 0) }
        return ((Double(current - oldest.upcalls) / seconds * 10).rounded() / 10, (seconds * 10).rounded() / 10)
    }
}

// MARK: Readable flows

extension FlowOutput {
    /// The egress port's tunnel key (a bridge's flood key for a tunnel flood).
    var portKey: UInt32 {
        switch self {
        case .local(let key), .tunnel(_, let key), .tunnelFlood(_, let key): key
        }
    }
}

extension FlowMatch {
    /// The readable form of a flow key; `portName` names its in-port. A
    /// megaflow lists the fields it ignores in `wildcards`, and leaves out
    /// the optional ones.
    init(_ key: FlowKey, mask: FlowMask = .exact, portName: String?) {
        self.init(exactly: key, portName: portName)
        if mask != .exact {
            wildcards = FlowMask.exact.subtracting(mask).names
            clear(outside: mask)
        }
    }

    private init(exactly key: FlowKey, portName: String?) {
        self.init(inPort: key.inPort, sourceMAC: key.ethernetSource, destinationMAC: key.ethernetDestination, etherType: Self.name(key.etherType))
        inPortName = portName
        if key.vlanID != 0 { vlan = key.vlanID }
        if key.outerVLANID != 0 { outerVLAN = key.outerVLANID }
        if key.isARP {
            arpOperation = switch key.arpOperation { case .request: "request"; case .reply: "reply"; default: "\(key.arpOperation.rawValue)" }
            arpSenderMAC = key.arpSenderMAC
            sourceIP = key.ipv4Source.description
            destinationIP = key.ipv4Destination.description
            return
        }
        guard key.isIPv4 || key.isIPv6 else { return }
        sourceIP = key.isIPv4 ? key.ipv4Source.description : key.ipv6Source.description
        destinationIP = key.isIPv4 ? key.ipv4Destination.description : key.ipv6Destination.description
        ipProtocol = Self.name(key.ipProtocol)
        typeOfService = key.typeOfService
        ttl = key.timeToLive
        switch key.fragmentKind {
        case .none: break
        case .first: fragment = "first"
        case .later: fragment = "later"
        }
        guard key.hasTransportFields else { return }
        if key.ipProtocol == .tcp || key.ipProtocol == .udp {
            sourcePort = key.sourcePort
            destinationPort = key.destinationPort
            if key.ipProtocol == .tcp { tcpFlags = key.tcpFlags.description.lowercased().replacingOccurrences(of: "|", with: ",") }
        } else {
            icmpType = key.icmpType
            icmpCode = key.icmpCode
            let echo: Set<UInt8> = key.isIPv4 ? [0, 8] : [128, 129]
            if echo.contains(key.icmpType) { icmpIdentifier = key.icmpIdentifier }
        }
    }

    /// Drops the optional fields a megaflow does not match.
    private mutating func clear(outside mask: FlowMask) {
        if !mask.contains(.vlan) { vlan = nil }
        if !mask.contains(.arpOperation) { arpOperation = nil }
        if !mask.contains(.arpSenderMAC) { arpSenderMAC = nil }
        if !mask.contains(.ipv4Source), !mask.contains(.ipv6Source) { sourceIP = nil }
        if !mask.contains(.ipv4Destination) { destinationIP = nil }
        if !mask.contains(.ipProtocol) { ipProtocol = nil }
        if !mask.contains(.typeOfService) { typeOfService = nil }
        if !mask.contains(.timeToLive) { ttl = nil }
        if !mask.contains(.fragmentKind) { fragment = nil }
        if !mask.contains(.sourcePort) { sourcePort = nil }
        if !mask.contains(.destinationPort) { destinationPort = nil }
        if !mask.contains(.tcpFlags) { tcpFlags = nil }
        if !mask.contains(.icmpType) { icmpType = nil }
        if !mask.contains(.icmpCode) { icmpCode = nil }
        if !mask.contains(.icmpIdentifier) { icmpIdentifier = nil }
    }

    static func name(_ etherType: Ethernet.EtherType) -> String {
        switch etherType {
        case .ipv4: "ipv4"
        case .ipv6: "ipv6"
        case .arp: "arp"
        default: "0x" + String(etherType.rawValue, radix: 16)
        }
    }

    static func name(_ ipProtocol: IPProtocol) -> String {
        switch ipProtocol {
        case .icmp: "icmp"
        case .tcp: "tcp"
        case .udp: "udp"
        case .icmpv6: "icmpv6"
        default: "\(ipProtocol.rawValue)"
        }
    }
}

extension FlowActionList {
    /// The readable form of a flow's actions: ports by name, tunnel hosts by name and address.
    init(_ actions: FlowActions, view: AgentView, interfaces: [UInt32: String], hostNames: [IPv4.Address: String]) {
        self.init(rewrites: actions.rewrites.map(Self.describe))
        func portName(_ key: UInt32) -> String? { view.topology.port(tunnelKey: key).map { view.topology.name(of: $0.id) } }
        outputs = actions.outputs.map { output in
            switch output {
            case .local(let key):
                var entry = FlowOutputEntry(kind: .local, portKey: key)
                entry.port = portName(key)
                entry.interface = interfaces[key]
                return entry
            case .tunnel(let host, let key), .tunnelFlood(let host, let key):
                var entry = FlowOutputEntry(kind: .tunnel, portKey: key)
                if case .tunnelFlood = output {
                    entry.floodBridge = view.topology.bridge(floodKey: key).map { view.topology.name(of: $0) } ?? "#\(key)"
                } else {
                    entry.port = portName(key)
                }
                entry.hostAddress = host
                entry.hostName = hostNames[host]
                return entry
            }
        }
        if actions.outputs.isEmpty {
            drop = actions.dropCode == FlowActions.answered
                ? "answered" : DropCode.labels.indices.contains(Int(actions.dropCode)) ? DropCode.labels[Int(actions.dropCode)] : "code \(actions.dropCode)"
        }
        if actions.tunnelMTU != 0 { tunnelMTU = actions.tunnelMTU }
    }

    static func describe(_ rewrite: PacketRewrite) -> String {
        switch rewrite {
        case .setEthernetSource(let mac): "set src-mac \(mac)"
        case .setEthernetDestination(let mac): "set dst-mac \(mac)"
        case .decrementTimeToLive: "decrement ttl"
        case .translate(let translation):
            switch translation {
            case .source(let address): "set src-ip \(address)"
            case .destination(let address): "set dst-ip \(address)"
            case .sourcePort(let port): "set src-port \(port)"
            case .destinationPort(let port): "set dst-port \(port)"
            case .icmpIdentifier(let identifier): "set icmp-id \(identifier)"
            case .quotedAddress(let source, let address): "set quoted \(source ? "src" : "dst")-ip \(address)"
            case .quotedPort(let source, let port): "set quoted \(source ? "src" : "dst")-port \(port)"
            }
        }
    }
}
