// Simulated traces on the live state: `POST /v1/traces` and `hive trace`
// without `--live`.
//
// The packet the user describes is simulated, as the ingress host's agent
// would, on what the NSDB holds now: the whole topology, the learned MAC and
// ARP tables the agents share, the ports' addresses, and where each port is
// bound and whether its host is alive. What the NSDB cannot say is assumed
// and printed as such: the connection state (agents keep their tables to
// themselves), an ARP answer a router has not had yet, a SNAT port.

import HiveModel
import HivePacket
import HiveSimulation
import HiveStore

import struct HiveModel.Host
import struct HiveModel.Port

/// A `TraceSpec` that cannot be traced: which field, what was given, why.
public struct TraceSpecError: Error, Sendable, CustomStringConvertible {
    public var field: String
    public var value: String
    public var problem: String

    public var description: String { "\(field) '\(value)' \(problem)" }
}

public struct PacketTracer: Sendable {
    public let repository: TopologyRepository

    public init(repository: TopologyRepository) { self.repository = repository }

    /// Traces `spec` on the NSDB's current state. `visible` says which
    /// ports the caller may name as the ingress (a tenant: its own).
    public func trace(_ spec: TraceSpec, visible: @Sendable (Port) -> Bool = { _ in true }) async throws -> TraceReport {
        let snapshot = try await TopologySnapshot.load(from: repository)
        let live = try await LiveState.load(from: repository, snapshot: snapshot)
        let request = try TraceRequest(spec: spec, snapshot: snapshot, state: live.state, visible: visible)
        var notes = request.notes
        notes.append("MAC and ARP tables: the \(live.macEntries) MAC and \(live.arpEntries) ARP entries the agents share in the NSDB")
        var state = live.state
        if let ingress = live.placements[request.port.id], !ingress.alive, !state.unavailablePorts.isEmpty {
            // No agent would simulate this packet: show the path as if every host were up.
            state.unavailablePorts = []
            notes.append("the ingress port's host \(ingress.host) is not alive, so no agent would see this packet: assuming every host alive")
        }
        let options = SimulationOptions(connectionState: request.connectionState, recordsTrace: true, assumesNATPorts: true)
        let frame = request.packet.frame
        let key = try FlowKey(parsing: frame, inPort: request.port.tunnelKey)
        var result = try snapshot.simulate(frame: frame, inPort: request.port.tunnelKey, state: state, options: options)
        var rounds = 0
        while spec.assumeArp ?? true, case .pendingARP(let router, let address, let port) = result.decision, rounds < 8 {
            let answer = TraceRequest.knownMAC(of: address, behind: port, in: snapshot, state: live.state) ?? TraceRequest.derivedMAC(address)
            notes.append("router \(snapshot.name(of: router)) has no ARP entry for \(address) in the NSDB: assuming it answers with \(answer) (the first real packet waits for that answer)")
            state.learn(address, at: answer, in: router)
            result = try snapshot.simulate(frame: frame, inPort: request.port.tunnelKey, state: state, options: options)
            rounds += 1
        }
        if result.fieldsRead.names.contains("ct_state") {
            notes.append("assuming connection state '\(request.connectionState.rawValue)' where the path tracks connections (--ct-state to change; agents keep their connection tables to themselves, and `hive trace --live` shows them at work)")
        }
        if result.trace.steps.contains(where: {
            if case .nat(let kind, _) = $0.event { kind == .gatewaySource || kind == .ruleSource } else { false }
        }) {
            notes.append("assuming the SNAT keeps the packet's source port (an agent keeps it only when the port's block of 64 is its own and free)")
        }
        return TraceReport(
            mode: "simulated", result: result, key: key, snapshot: snapshot, notes: notes,
            placement: { live.placements[$0] })
    }
}

/// What the agents share in the NSDB besides the topology.
struct LiveState: Sendable {
    var state = SimulationState()
    var placements: [PortID: TracePlacement] = [:]
    var macEntries = 0
    var arpEntries = 0

    /// - Parameter snapshot: the topology just read, for the ports' tunnel keys.
    static func load(from repository: TopologyRepository, snapshot: TopologySnapshot) async throws -> LiveState {
        var live = LiveState()
        let macPrefix = TopologyKeys.learnedMACs
        for keyValue in try await repository.store.range(.prefix(macPrefix)).keyValues {
            let parts = keyValue.key.dropFirst(macPrefix.count).split(separator: "/")
            guard parts.count == 2, let bridge = BridgeID(parsing: String(parts[0])), let mac = EthernetAddress(parsing: parts[1]),
                  let port = PortID(parsing: String(decoding: keyValue.value, as: UTF8.self))
            else { continue }
            live.state.learn(mac, on: port, in: bridge)
            live.macEntries += 1
        }
        let arpPrefix = TopologyKeys.learnedARP
        for keyValue in try await repository.store.range(.prefix(arpPrefix)).keyValues {
            let parts = keyValue.key.dropFirst(arpPrefix.count).split(separator: "/")
            guard parts.count == 2, let router = RouterID(parsing: String(parts[0])), let address = IPv4.Address(parsing: parts[1]),
                  let mac = EthernetAddress(parsing: String(decoding: keyValue.value, as: UTF8.self))
            else { continue }
            live.state.learn(address, at: mac, in: router)
            live.arpEntries += 1
        }
        let hosts = Dictionary(uniqueKeysWithValues: try await repository.list(Host.self).items.map { ($0.object.id, $0.object.name) })
        let alive = try await repository.liveHosts().hosts
        for binding in try await repository.list(Binding.self).items.map(\.object) {
            live.placements[binding.portId] = TracePlacement(
                host: hosts[binding.hostId] ?? binding.hostId.description, alive: alive.contains(binding.hostId))
            if !alive.contains(binding.hostId), let port = snapshot.ports[binding.portId] {
                // As the agents do: nothing goes to a dead host's ports, and ECMP passes over its uplinks.
                live.state.unavailablePorts.insert(port.tunnelKey)
            }
        }
        return live
    }
}

extension TopologySnapshot {
    /// Every kind the simulation reads, listed from the repository.
    public static func load(from repository: TopologyRepository) async throws -> TopologySnapshot {
        TopologySnapshot(
            bridges: try await repository.list(Bridge.self).items.map(\.object),
            routers: try await repository.list(Router.self).items.map(\.object),
            ports: try await repository.list(Port.self).items.map(\.object),
            routes: try await repository.list(Route.self).items.map(\.object),
            chains: try await repository.list(Chain.self).items.map(\.object),
            rules: try await repository.list(Rule.self).items.map(\.object),
            portGroups: try await repository.list(PortGroup.self).items.map(\.object),
            ipAddressGroups: try await repository.list(IPAddressGroup.self).items.map(\.object),
            dhcpSubnets: try await repository.list(DHCPSubnet.self).items.map(\.object),
            securityGroups: try await repository.list(SecurityGroup.self).items.map(\.object),
            securityGroupRules: try await repository.list(SecurityGroupRule.self).items.map(\.object),
            floatingIPs: try await repository.list(FloatingIP.self).items.map(\.object))
    }
}

/// The packet a `TraceSpec` describes, with defaults filled from the topology.
struct TraceRequest {
    var port: Port
    var packet: PacketDescription
    var connectionState: ConnectionState
    var notes: [String] = []

    init(spec: TraceSpec, snapshot: TopologySnapshot, state: SimulationState, visible: (Port) -> Bool) throws(TraceSpecError) {
        func fail(_ field: String, _ value: String, _ problem: String) -> TraceSpecError {
            TraceSpecError(field: field, value: value, problem: problem)
        }
        let port = try Self.resolvePort(spec.inPort, in: snapshot, visible: visible)
        self.port = port
        let transportText = spec.protocol ?? "icmp"
        guard let transport = PacketDescription.TransportKind(rawValue: transportText.lowercased()) else {
            throw fail("protocol", transportText, "is not one of: icmp, tcp, udp, arp")
        }
        let stateText = spec.ctState ?? "new"
        guard let connectionState = ConnectionState(rawValue: stateText.lowercased()) else {
            throw fail("ctState", stateText, "is not one of: \(ConnectionState.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.connectionState = connectionState
        guard let destination = IPv4.Address(parsing: spec.dstIp) else {
            throw fail("dstIp", spec.dstIp, "is not an IPv4 address (expected like 10.0.2.100)")
        }
        let source: IPv4.Address
        if let text = spec.srcIp {
            guard let parsed = IPv4.Address(parsing: text) else { throw fail("srcIp", text, "is not an IPv4 address (expected like 10.0.1.100)") }
            source = parsed
        } else if let fixed = port.fixedIPs.first {
            source = fixed
            notes.append("source IP \(source) (the port's fixed IP; --src-ip or srcIp to change)")
        } else {
            guard let inferred = Self.defaultSource(for: port, in: snapshot) else {
                throw fail("srcIp", "", "is required: port \(snapshot.name(of: port.id)) has no fixed IP, DHCP pool or router subnet to take one from")
            }
            source = inferred
            notes.append("source IP \(source) (from the port's network; --src-ip or srcIp to change)")
        }
        let sourceMAC: EthernetAddress
        if let text = spec.srcMac {
            guard let parsed = EthernetAddress(parsing: text) else { throw fail("srcMac", text, "is not a MAC address (expected like 02:00:00:00:00:01)") }
            sourceMAC = parsed
        } else if let mac = port.mac, port.deviceKind == .bridge {
            // The VM behind the port sends from the port's MAC (port security holds it to that).
            sourceMAC = mac
        } else if let bridge = port.bridgeId, let learned = state.macTables[bridge]?.first(where: { $0.value == port.id })?.key {
            sourceMAC = learned
            notes.append("source MAC \(learned) (learned on the port)")
        } else {
            sourceMAC = Self.knownMAC(of: source, onBridgeOf: port, in: snapshot, state: state) ?? Self.derivedMAC(source)
        }
        let destinationMAC: EthernetAddress
        if let text = spec.dstMac {
            guard let parsed = EthernetAddress(parsing: text) else { throw fail("dstMac", text, "is not a MAC address (expected like 02:00:00:00:00:01)") }
            destinationMAC = parsed
        } else {
            let (mac, why) = Self.defaultDestinationMAC(
                for: port, source: source, destination: destination, isARP: transport == .arp, in: snapshot, state: state)
            destinationMAC = mac
            notes.append("destination MAC \(mac) (\(why); --dst-mac or dstMac to change)")
        }
        var flags: TCP.Flags = []
        for name in (spec.tcpFlags ?? "syn").lowercased().split(separator: ",") {
            switch name.trimmingCharacters(in: .whitespaces) {
            case "syn": flags.insert(.syn)
            case "ack": flags.insert(.ack)
            case "fin": flags.insert(.fin)
            case "rst": flags.insert(.rst)
            case "psh": flags.insert(.psh)
            case "urg": flags.insert(.urg)
            case "": break
            default: throw fail("tcpFlags", String(name), "is not a TCP flag (expected syn, ack, fin, rst, psh or urg)")
            }
        }
        packet = PacketDescription(
            sourceMAC: sourceMAC, destinationMAC: destinationMAC, sourceIP: source, destinationIP: destination,
            protocol: transport, sourcePort: spec.srcPort ?? 40000, destinationPort: spec.dstPort ?? 80, tcpFlags: flags,
            icmpType: spec.icmpType ?? 8, icmpCode: spec.icmpCode ?? 0, timeToLive: spec.ttl ?? 64)
    }

    /// By id, by "device/name", or by a unique name, among the ports the caller may see.
    static func resolvePort(_ text: String, in snapshot: TopologySnapshot, visible: (Port) -> Bool) throws(TraceSpecError) -> Port {
        if let id = PortID(parsing: text) {
            guard let port = snapshot.ports[id], visible(port) else { throw TraceSpecError(field: "inPort", value: text, problem: "names no port") }
            return try checkUsable(port, snapshot)
        }
        let candidates = snapshot.ports.values.filter { port in
            visible(port) && (port.name == text || snapshot.name(of: port.id) == text)
        }.sorted { snapshot.name(of: $0.id) < snapshot.name(of: $1.id) }
        if candidates.count == 1 { return try checkUsable(candidates[0], snapshot) }
        if candidates.isEmpty {
            let named = snapshot.ports.values.filter { visible($0) && $0.name != nil && !$0.isInterior }.map { snapshot.name(of: $0.id) }.sorted()
            throw TraceSpecError(field: "inPort", value: text, problem: "names no port. Exterior ports: \(named.isEmpty ? "none" : named.joined(separator: ", "))")
        }
        let listed = candidates.map { "\(snapshot.name(of: $0.id)) (\($0.id))" }.joined(separator: ", ")
        throw TraceSpecError(field: "inPort", value: text, problem: "names \(candidates.count) ports: \(listed); give device/name or the id")
    }

    private static func checkUsable(_ port: Port, _ snapshot: TopologySnapshot) throws(TraceSpecError) -> Port {
        guard port.tunnelKey != 0 else {
            throw TraceSpecError(field: "inPort", value: snapshot.name(of: port.id), problem: "has no tunnel key yet, so no datapath number")
        }
        if port.isInterior {
            throw TraceSpecError(field: "inPort", value: snapshot.name(of: port.id), problem: "is an interior (linked) port; packets enter by exterior ports")
        }
        return port
    }

    /// Router ports linked to the port's bridge (or the router port itself).
    private static func routerPorts(for port: Port, in snapshot: TopologySnapshot) -> [Port] {
        if port.deviceKind == .router { return [port] }
        return snapshot.ports.values
            .filter { $0.deviceId == port.deviceId && $0.isInterior }
            .compactMap { $0.peerId.flatMap { snapshot.ports[$0] } }
            .filter { $0.deviceKind == .router && $0.subnet != nil }
            .sorted { $0.id < $1.id }
    }

    static func defaultSource(for port: Port, in snapshot: TopologySnapshot) -> IPv4.Address? {
        if let bridge = port.bridgeId,
           let subnet = snapshot.dhcpSubnets.values.filter({ $0.bridgeId == bridge }).sorted(by: { $0.id < $1.id }).first {
            return subnet.rangeStart
        }
        for routerPort in routerPorts(for: port, in: snapshot) {
            guard let subnet = routerPort.subnet, subnet.length < 31 else { continue }
            var candidate = IPv4.Address(subnet.network.address.value + 1)
            if candidate == routerPort.address { candidate = IPv4.Address(candidate.value + 1) }
            return candidate
        }
        return nil
    }

    static func defaultDestinationMAC(
        for port: Port, source: IPv4.Address, destination: IPv4.Address, isARP: Bool, in snapshot: TopologySnapshot, state: SimulationState
    ) -> (EthernetAddress, String) {
        if isARP { return (.broadcast, "ARP requests are broadcast") }
        if port.deviceKind == .router {
            return (snapshot.effectiveMAC(of: port.id) ?? .broadcast, "the router port's MAC")
        }
        let gateways = routerPorts(for: port, in: snapshot)
        if let gateway = gateways.first(where: { $0.address == destination }) {
            return (snapshot.effectiveMAC(of: gateway.id) ?? .broadcast, "the router port's MAC")
        }
        if gateways.contains(where: { $0.subnet!.contains(destination) }) || gateways.isEmpty {
            if let known = knownMAC(of: destination, onBridgeOf: port, in: snapshot, state: state) {
                return (known, "the MAC of the destination's port, learned or set, or its DHCP host entry")
            }
            return (derivedMAC(destination), "on-link destination; its MAC is unknown, so this one is made up")
        }
        let gateway = gateways.first { $0.subnet!.contains(source) } ?? gateways[0]
        return (snapshot.effectiveMAC(of: gateway.id) ?? .broadcast, "off-subnet destination: the gateway \(gateway.address.map { "\($0)" } ?? "")'s MAC")
    }

    /// The MAC of `address` on the port's bridge: that of the VM port with
    /// that fixed IP (its own, else one learned on it), or a DHCP host entry's.
    static func knownMAC(
        of address: IPv4.Address, onBridgeOf port: Port, in snapshot: TopologySnapshot, state: SimulationState = SimulationState()
    ) -> EthernetAddress? {
        guard let bridge = port.bridgeId else { return nil }
        if let owner = snapshot.ports.values.first(where: { $0.bridgeId == bridge && $0.fixedIPs.contains(address) }) {
            if let mac = owner.mac { return mac }
            if let learned = state.macTables[bridge]?.filter({ $0.value == owner.id }).keys.min(by: { $0.description < $1.description }) {
                return learned
            }
        }
        return snapshot.dhcpSubnets.values.filter { $0.bridgeId == bridge }
            .flatMap(\.hostEntries).first { $0.address == address }?.mac
    }

    /// The MAC of `address` (a port's fixed IP or a DHCP host entry) on the bridge behind router port `port`.
    static func knownMAC(
        of address: IPv4.Address, behind port: PortID, in snapshot: TopologySnapshot, state: SimulationState = SimulationState()
    ) -> EthernetAddress? {
        guard let peer = snapshot.ports[port]?.peerId.flatMap({ snapshot.ports[$0] }) else { return nil }
        return knownMAC(of: address, onBridgeOf: peer, in: snapshot, state: state)
    }

    /// 02:00 followed by the address's four bytes: a stand-in MAC the trace makes up.
    static func derivedMAC(_ address: IPv4.Address) -> EthernetAddress {
        EthernetAddress(0x0200_0000_0000 | UInt64(address.value))
    }
}
