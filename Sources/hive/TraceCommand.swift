import ArgumentParser
import HiveClient
import Foundation
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import struct HiveModel.Port

/// `hive trace`: what the agent would do with a packet, step by step.
///
/// Reads the topology straight from the NSDB, builds the frame the flags
/// describe, runs the simulation the agent runs for a new flow, and prints
/// the path: ports, devices, chains and rules, the decision and why.
/// Learned state (MAC and ARP tables) is not read yet: the trace starts from
/// empty tables, and where a router would wait on ARP it assumes the answer
/// (saying so) and goes on, so the whole path shows.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Show the path a packet would take through the virtual topology, and why it is dropped.",
        discussion: """
            Describe the packet by its ingress port and headers; unset MACs and the source IP follow from the topology.
            Example: hive trace --in-port vm-blue --dst-ip 10.0.2.100 --protocol tcp --dst-port 80

            The topology is read through the API when a token is given (--token or $HIVE_TOKEN, with \
            --endpoint or $HIVE_ENDPOINT), for example from a running `hive sandbox`; otherwise straight \
            from the NSDB (--data-dir or --etcd), which must not be held by another process.
            """)

    @OptionGroup var store: StoreOptions

    @OptionGroup var api: ClientOptions

    @Option(name: .customLong("in-port"), help: "The ingress port: its name, device/name, or id.")
    var inPort: String

    @Option(name: .customLong("src-mac"), help: "Source MAC (default: the port's MAC; else the DHCP host entry of the source IP, else 02:00 + the IP's bytes).")
    var sourceMAC: String?

    @Option(name: .customLong("dst-mac"), help: "Destination MAC (default: the gateway router port's MAC for an off-subnet destination, broadcast for ARP).")
    var destinationMAC: String?

    @Option(name: .customLong("src-ip"), help: "Source IPv4 address (default: the port's first fixed IP; else the first address of the bridge's DHCP pool, or of the port's subnet).")
    var sourceIP: String?

    @Option(name: .customLong("dst-ip"), help: "Destination IPv4 address (ARP: the address asked for).")
    var destinationIP: String

    @Option(name: .customLong("protocol"), help: "icmp, tcp, udp or arp.")
    var transport = "icmp"

    @Option(name: .customLong("src-port"), help: "TCP/UDP source port.")
    var sourcePort: UInt16 = 40000

    @Option(name: .customLong("dst-port"), help: "TCP/UDP destination port.")
    var destinationPort: UInt16 = 80

    @Option(name: .customLong("icmp-type"), help: "ICMP type (default 8, echo request).")
    var icmpType: UInt8 = 8

    @Option(name: .customLong("icmp-code"), help: "ICMP code.")
    var icmpCode: UInt8 = 0

    @Option(help: "IPv4 TTL.")
    var ttl: UInt8 = 64

    @Option(name: .customLong("tcp-flags"), help: "TCP flags, comma-separated (syn, ack, fin, rst, psh, urg).")
    var tcpFlags = "syn"

    @Option(name: .customLong("ct-state"), help: "The connection-tracking state to assume wherever connections are tracked (ports with security groups, chains with ct-state rules): new, established, related, reply or invalid. The trace does not read the agents' connection tables.")
    var connectionState = "new"

    @Flag(help: "Only the decisive steps (ports, devices, matching rules, decision).")
    var summary = false

    @Flag(name: .customLong("no-assume-arp"), help: "Stop where a router waits on ARP instead of assuming the answer.")
    var noAssumeARP = false

    @Flag(help: "Print JSON for scripts.")
    var json = false

    /// Through the API when a token is at hand and no store was named.
    var readsThroughAPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        if store.dataDirectory != nil || store.etcd != nil { return false }
        return api.token != nil || !(environment["HIVE_TOKEN"] ?? "").isEmpty
    }

    func run() async throws {
        let snapshot: TopologySnapshot
        if readsThroughAPI {
            snapshot = try await TopologySnapshot.load(from: try api.client())
        } else {
            snapshot = try await withStore(store) { store in
                try await TopologySnapshot.load(from: TopologyRepository(store: store))
            }
        }
        let request = try TraceRequest(command: self, snapshot: snapshot)
        var state = SimulationState()
        var notes = request.notes
        if !snapshot.securityGroups.isEmpty || snapshot.rules.values.contains(where: { $0.conditions.connectionState != nil }) {
            notes.append("assuming connection state '\(request.connectionState.rawValue)' wherever connections are tracked (--ct-state; the agents' tables are not read)")
        }
        let options = SimulationOptions(connectionState: request.connectionState, recordsTrace: true, assumesNATPorts: true)
        let frame = request.packet.frame
        var result = try snapshot.simulate(frame: frame, inPort: request.port.tunnelKey, state: state, options: options)
        // Where a router would wait on ARP, assume the answer and go on.
        var rounds = 0
        while !noAssumeARP, case .pendingARP(let router, let address, let port) = result.decision, rounds < 8 {
            let answer = TraceRequest.knownMAC(of: address, behind: port, in: snapshot) ?? TraceRequest.derivedMAC(address)
            notes.append("router \(snapshot.name(of: router)) has no ARP entry for \(address): assuming it answers with \(answer)")
            state.learn(address, at: answer, in: router)
            result = try snapshot.simulate(frame: frame, inPort: request.port.tunnelKey, state: state, options: options)
            rounds += 1
        }
        let translatedSources = result.trace.steps.contains {
            if case .nat(let kind, _) = $0.event { kind == .gatewaySource || kind == .ruleSource } else { false }
        }
        if translatedSources {
            notes.append("assuming the SNAT keeps the packet's source port (an agent keeps it only when the port's block of 64 is its own and free)")
        }
        if json {
            try printJSON(result, request: request, notes: notes, snapshot: snapshot)
        } else {
            printText(result, request: request, notes: notes, snapshot: snapshot)
        }
    }

    private func printText(_ result: SimulationResult, request: TraceRequest, notes: [String], snapshot: TopologySnapshot) {
        print("Packet: \(request.packetText) entering port \(snapshot.name(of: request.port.id)) (in-port \(request.port.tunnelKey))")
        for note in notes { print("Note: \(note)") }
        print("")
        for line in result.trace.lines(in: snapshot, detail: summary ? .summary : .full) { print("  " + line) }
        print("")
        if case .flood(let bridge) = result.decision, result.outputPorts.isEmpty {
            print("Result: DROP: flooded on bridge \(snapshot.name(of: bridge)), but no port is left")
        } else {
            print("Result: \(decisionText(result.decision, in: snapshot))")
        }
        if case .flood = result.decision {
            let ports = result.outputPorts.map { snapshot.name(of: $0) }
            print("Flooded to: \(ports.isEmpty ? "no port" : ports.joined(separator: ", "))")
            for exclusion in result.floodExclusions {
                print("Not flooded to: \(snapshot.name(of: exclusion.port)): \(dropText(exclusion.reason, in: snapshot))")
            }
        }
        if !result.actions.isEmpty { print("Actions: \(result.actions.map(\.description).joined(separator: ", "))") }
        for packet in result.generatedPackets {
            print("Generated: \(packet.kind.rawValue) out of port \(snapshot.name(of: packet.port)) (\(packet.frame.count) bytes)")
        }
        for entry in result.macLearning {
            print("Learn: \(entry.mac) on port \(snapshot.name(of: entry.port)) in bridge \(snapshot.name(of: entry.bridge))")
        }
        print("Fields read: \(result.fieldsRead)")
        print("Depends on \(result.tags.count) objects and table entries\(result.isCacheable ? "" : "; not cached as a flow")")
    }

    private func printJSON(_ result: SimulationResult, request: TraceRequest, notes: [String], snapshot: TopologySnapshot) throws {
        let decision: (String, String) = switch result.decision {
        case .output: ("output", decisionText(result.decision, in: snapshot))
        case .flood: ("flood", decisionText(result.decision, in: snapshot))
        case .drop: ("drop", decisionText(result.decision, in: snapshot))
        case .consumed: ("consumed", decisionText(result.decision, in: snapshot))
        case .pendingARP: ("pending-arp", decisionText(result.decision, in: snapshot))
        case .pendingAddress: ("pending-address", decisionText(result.decision, in: snapshot))
        case .pendingNATPorts: ("pending-nat-ports", decisionText(result.decision, in: snapshot))
        }
        let document = TraceDocument(
            packet: request.packetText, inPort: request.port.id.description, inPortName: snapshot.name(of: request.port.id),
            notes: notes,
            steps: result.trace.steps
                .filter { !summary || $0.isSummary }
                .map { TraceDocument.Step(depth: $0.depth, kind: $0.event.kind, text: $0.event.text(in: snapshot)) },
            decision: decision.0, reason: decision.1,
            outputPorts: result.outputPorts.map { TraceDocument.PortRef(id: $0.description, name: snapshot.name(of: $0)) },
            floodExclusions: result.floodExclusions.map {
                TraceDocument.Exclusion(port: $0.port.description, portName: snapshot.name(of: $0.port), reason: dropText($0.reason, in: snapshot))
            },
            actions: result.actions.map(\.description),
            generated: result.generatedPackets.map {
                TraceDocument.Generated(kind: $0.kind.rawValue, port: $0.port.description, portName: snapshot.name(of: $0.port), bytes: $0.frame.count)
            },
            learnMACs: result.macLearning.map { "\($0.bridge)/\($0.mac)@\($0.port)" },
            fieldsRead: result.fieldsRead.names,
            tags: result.tags.map(\.description),
            cacheable: result.isCacheable)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(document), as: UTF8.self))
    }
}

/// The `--json` output.
struct TraceDocument: Codable {
    struct Step: Codable {
        var depth: Int
        var kind: String
        var text: String
    }
    struct PortRef: Codable {
        var id: String
        var name: String
    }
    struct Exclusion: Codable {
        var port: String
        var portName: String
        var reason: String
    }
    struct Generated: Codable {
        var kind: String
        var port: String
        var portName: String
        var bytes: Int
    }
    var packet: String
    var inPort: String
    var inPortName: String
    var notes: [String]
    var steps: [Step]
    var decision: String
    var reason: String
    var outputPorts: [PortRef]
    var floodExclusions: [Exclusion]
    var actions: [String]
    var generated: [Generated]
    var learnMACs: [String]
    var fieldsRead: [String]
    var tags: [String]
    var cacheable: Bool
}

extension TopologySnapshot {
    /// Every kind the simulation reads, listed from the repository.
    static func load(from repository: TopologyRepository) async throws -> TopologySnapshot {
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

extension TopologySnapshot {
    /// The same, read through the API: what the token may see.
    static func load(from client: HiveClient) async throws -> TopologySnapshot {
        let bridges = try await client.list(Bridge.self).map(\.object)
        let routers = try await client.list(Router.self).map(\.object)
        let chains = try await client.list(Chain.self).map(\.object)
        var routes: [Route] = []
        for router in routers { routes += try await client.routes(of: router.id).map(\.object) }
        var rules: [Rule] = []
        for chain in chains { rules += try await client.rules(of: chain.id).map(\.object) }
        var subnets: [DHCPSubnet] = []
        for bridge in bridges { subnets += try await client.dhcpSubnets(of: bridge.id).map(\.object) }
        return TopologySnapshot(
            bridges: bridges, routers: routers, ports: try await client.list(Port.self).map(\.object),
            routes: routes, chains: chains, rules: rules,
            portGroups: try await client.list(PortGroup.self).map(\.object),
            ipAddressGroups: try await client.list(IPAddressGroup.self).map(\.object),
            dhcpSubnets: subnets, securityGroups: try await client.list(SecurityGroup.self).map(\.object),
            securityGroupRules: try await client.list(SecurityGroupRule.self).map(\.object),
            floatingIPs: try await client.list(FloatingIP.self).map(\.object))
    }
}

/// The packet the flags describe, with defaults filled from the topology.
struct TraceRequest {
    var port: Port
    var packet: PacketDescription
    var connectionState: ConnectionState
    var notes: [String] = []

    init(command: TraceCommand, snapshot: TopologySnapshot) throws {
        port = try Self.resolvePort(command.inPort, in: snapshot)
        guard let transport = PacketDescription.TransportKind(rawValue: command.transport.lowercased()) else {
            throw ValidationError("--protocol '\(command.transport)' is not one of: icmp, tcp, udp, arp")
        }
        guard let state = ConnectionState(rawValue: command.connectionState.lowercased()) else {
            throw ValidationError("--ct-state '\(command.connectionState)' is not one of: \(ConnectionState.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        connectionState = state
        guard let destination = IPv4.Address(parsing: command.destinationIP) else {
            throw ValidationError("--dst-ip '\(command.destinationIP)' is not an IPv4 address (expected like 10.0.2.100)")
        }
        let source: IPv4.Address
        if let text = command.sourceIP {
            guard let parsed = IPv4.Address(parsing: text) else {
                throw ValidationError("--src-ip '\(text)' is not an IPv4 address (expected like 10.0.1.100)")
            }
            source = parsed
        } else if let fixed = port.fixedIPs.first {
            source = fixed
            notes.append("source IP \(source) (the port's fixed IP; set --src-ip to change)")
        } else {
            guard let inferred = Self.defaultSource(for: port, in: snapshot) else {
                throw ValidationError("give --src-ip: port \(snapshot.name(of: port.id)) has no DHCP pool or router subnet to take one from")
            }
            source = inferred
            notes.append("source IP \(source) (from the port's network; set --src-ip to change)")
        }
        let sourceMAC: EthernetAddress
        if let text = command.sourceMAC {
            guard let parsed = EthernetAddress(parsing: text) else {
                throw ValidationError("--src-mac '\(text)' is not a MAC address (expected like 02:00:00:00:00:01)")
            }
            sourceMAC = parsed
        } else if let mac = port.mac, port.deviceKind == .bridge {
            // The VM behind the port sends from the port's MAC (port security holds it to that).
            sourceMAC = mac
        } else {
            sourceMAC = Self.knownMAC(of: source, onBridgeOf: port, in: snapshot) ?? Self.derivedMAC(source)
        }
        let destinationMAC: EthernetAddress
        if let text = command.destinationMAC {
            guard let parsed = EthernetAddress(parsing: text) else {
                throw ValidationError("--dst-mac '\(text)' is not a MAC address (expected like 02:00:00:00:00:01)")
            }
            destinationMAC = parsed
        } else {
            let (mac, why) = Self.defaultDestinationMAC(
                for: port, source: source, destination: destination, isARP: transport == .arp, in: snapshot)
            destinationMAC = mac
            notes.append("destination MAC \(mac) (\(why); set --dst-mac to change)")
        }
        var flags: TCP.Flags = []
        for name in command.tcpFlags.lowercased().split(separator: ",") {
            switch name.trimmingCharacters(in: .whitespaces) {
            case "syn": flags.insert(.syn)
            case "ack": flags.insert(.ack)
            case "fin": flags.insert(.fin)
            case "rst": flags.insert(.rst)
            case "psh": flags.insert(.psh)
            case "urg": flags.insert(.urg)
            case "": break
            default: throw ValidationError("--tcp-flags '\(name)' is not a TCP flag (expected syn, ack, fin, rst, psh or urg)")
            }
        }
        packet = PacketDescription(
            sourceMAC: sourceMAC, destinationMAC: destinationMAC, sourceIP: source, destinationIP: destination,
            protocol: transport, sourcePort: command.sourcePort, destinationPort: command.destinationPort, tcpFlags: flags,
            icmpType: command.icmpType, icmpCode: command.icmpCode, timeToLive: command.ttl)
    }

    var packetText: String {
        let p = packet
        let addresses = "\(p.sourceMAC) > \(p.destinationMAC), \(p.sourceIP) > \(p.destinationIP)"
        switch p.protocol {
        case .arp: return "ARP request \(addresses)"
        case .icmp: return "ICMP type \(p.icmpType) code \(p.icmpCode) \(addresses) ttl \(p.timeToLive)"
        case .tcp: return "TCP \(addresses) ports \(p.sourcePort) > \(p.destinationPort) flags \(p.tcpFlags) ttl \(p.timeToLive)"
        case .udp: return "UDP \(addresses) ports \(p.sourcePort) > \(p.destinationPort) ttl \(p.timeToLive)"
        }
    }

    /// By id, by "device/name", or by a unique name.
    static func resolvePort(_ text: String, in snapshot: TopologySnapshot) throws -> Port {
        if let id = PortID(parsing: text) {
            guard let port = snapshot.ports[id] else { throw ValidationError("--in-port: no port has id \(text)") }
            return try checkUsable(port, snapshot)
        }
        let candidates = snapshot.ports.values.filter { port in
            port.name == text || snapshot.name(of: port.id) == text
        }.sorted { snapshot.name(of: $0.id) < snapshot.name(of: $1.id) }
        if candidates.count == 1 { return try checkUsable(candidates[0], snapshot) }
        if candidates.isEmpty {
            let named = snapshot.ports.values.filter { $0.name != nil && !$0.isInterior }.map { snapshot.name(of: $0.id) }.sorted()
            throw ValidationError("--in-port: no port is named '\(text)'. Exterior ports: \(named.isEmpty ? "none" : named.joined(separator: ", "))")
        }
        let listed = candidates.map { "\(snapshot.name(of: $0.id)) (\($0.id))" }.joined(separator: ", ")
        throw ValidationError("--in-port: '\(text)' names \(candidates.count) ports: \(listed); give device/name or the id")
    }

    private static func checkUsable(_ port: Port, _ snapshot: TopologySnapshot) throws -> Port {
        guard port.tunnelKey != 0 else {
            throw ValidationError("--in-port: port \(snapshot.name(of: port.id)) has no tunnel key yet, so no datapath number")
        }
        if port.isInterior {
            throw ValidationError("--in-port: port \(snapshot.name(of: port.id)) is an interior (linked) port; packets enter by exterior ports")
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
        for port: Port, source: IPv4.Address, destination: IPv4.Address, isARP: Bool, in snapshot: TopologySnapshot
    ) -> (EthernetAddress, String) {
        if isARP { return (.broadcast, "ARP requests are broadcast") }
        if port.deviceKind == .router {
            return (snapshot.effectiveMAC(of: port.id) ?? .broadcast, "the router port's MAC")
        }
        let gateways = routerPorts(for: port, in: snapshot)
        if let gateway = gateways.first(where: { $0.address == destination }) {
            return (snapshot.effectiveMAC(of: gateway.id) ?? .broadcast, "the router port's MAC")
        }
        if gateways.contains(where: { $0.subnet!.contains(destination) }) || (gateways.isEmpty) {
            if let known = knownMAC(of: destination, onBridgeOf: port, in: snapshot) {
                return (known, "the destination's DHCP host entry")
            }
            return (derivedMAC(destination), "on-link destination; its MAC is unknown, so this one is made up")
        }
        let gateway = gateways.first { $0.subnet!.contains(source) } ?? gateways[0]
        return (snapshot.effectiveMAC(of: gateway.id) ?? .broadcast, "off-subnet destination: the gateway \(gateway.address.map { "\($0)" } ?? "")'s MAC")
    }

    /// The MAC of `address` on the port's bridge: a VM port's fixed IP, or a DHCP host entry.
    static func knownMAC(of address: IPv4.Address, onBridgeOf port: Port, in snapshot: TopologySnapshot) -> EthernetAddress? {
        guard let bridge = port.bridgeId else { return nil }
        // A VM port's fixed IP, then a DHCP host entry.
        if let owner = snapshot.ports.values.first(where: { $0.bridgeId == bridge && $0.fixedIPs.contains(address) }), let mac = owner.mac {
            return mac
        }
        return snapshot.dhcpSubnets.values.filter { $0.bridgeId == bridge }
            .flatMap(\.hostEntries).first { $0.address == address }?.mac
    }

    /// The MAC of `address` (a port's fixed IP or a DHCP host entry) on the bridge behind router port `port`.
    static func knownMAC(of address: IPv4.Address, behind port: PortID, in snapshot: TopologySnapshot) -> EthernetAddress? {
        guard let peer = snapshot.ports[port]?.peerId.flatMap({ snapshot.ports[$0] }) else { return nil }
        return knownMAC(of: address, onBridgeOf: peer, in: snapshot)
    }

    /// 02:00 followed by the address's four bytes: a stand-in MAC the trace makes up.
    static func derivedMAC(_ address: IPv4.Address) -> EthernetAddress {
        EthernetAddress(0x0200_0000_0000 | UInt64(address.value))
    }
}
