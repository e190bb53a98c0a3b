import Foundation
import HiveModel
import HivePacket
@testable import HiveSimulation
import HiveStore
import Testing

// Foundation has its own Port and Host; these tests mean the model's.
typealias Port = HiveModel.Port

func ip(_ text: String) -> IPv4.Address { IPv4.Address(parsing: text)! }
func mac(_ text: String) -> EthernetAddress { EthernetAddress(parsing: text)! }
func prefix(_ text: String) -> IPv4.Prefix { IPv4.Prefix(parsing: text)! }

/// Runs `body` with a repository on a fresh embedded store in a temp dir, closed and removed afterwards.
func withRepository<T>(_ body: (TopologyRepository) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("hive-sim-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let store = try EmbeddedStore(directory: directory)
    do {
        let result = try await body(TopologyRepository(store: store))
        await store.close()
        return result
    } catch {
        await store.close()
        throw error
    }
}

/// Every kind the simulation reads, straight from the store.
func loadSnapshot(_ repository: TopologyRepository) async throws -> TopologySnapshot {
    TopologySnapshot(
        bridges: try await repository.list(Bridge.self).items.map(\.object),
        routers: try await repository.list(Router.self).items.map(\.object),
        ports: try await repository.list(Port.self).items.map(\.object),
        routes: try await repository.list(Route.self).items.map(\.object),
        chains: try await repository.list(Chain.self).items.map(\.object),
        rules: try await repository.list(Rule.self).items.map(\.object),
        portGroups: try await repository.list(PortGroup.self).items.map(\.object),
        ipAddressGroups: try await repository.list(IPAddressGroup.self).items.map(\.object),
        dhcpSubnets: try await repository.list(DHCPSubnet.self).items.map(\.object))
}

/// The scenario topology, built through the repository:
///
///     vm1 (10.0.1.10) ─┐                                   ┌─ vm3 (10.0.2.10)
///     vm2 (10.0.1.11) ─┼─ bridge left ── router edge ── bridge right
///                      └─ (uplink)   (10.0.1.1 | 10.0.2.1)   (uplink)
///
/// plus an exterior router port "outside" (192.0.2.1/24). Routes: both
/// bridges' subnets, connected.
struct Lab {
    let repository: TopologyRepository
    var left: BridgeID
    var right: BridgeID
    var router: RouterID
    var vm1: PortID
    var vm2: PortID
    var vm3: PortID
    var leftUplink: PortID
    var rightUplink: PortID
    var routerLeft: PortID
    var routerRight: PortID
    var outside: PortID

    static let vm1MAC = mac("02:00:00:00:01:0a")
    static let vm2MAC = mac("02:00:00:00:01:0b")
    static let vm3MAC = mac("02:00:00:00:02:0a")
    static let routerLeftMAC = mac("02:00:00:00:01:01")
    static let routerRightMAC = mac("02:00:00:00:02:01")
    static let outsideMAC = mac("02:00:00:00:09:01")
    static let vm1IP = ip("10.0.1.10")
    static let vm2IP = ip("10.0.1.11")
    static let vm3IP = ip("10.0.2.10")

    static func build(_ repository: TopologyRepository, arpSuppression: Bool = true) async throws -> Lab {
        let left = try await repository.create(Bridge(name: "left", arpSuppression: arpSuppression)).object.id
        let right = try await repository.create(Bridge(name: "right", arpSuppression: arpSuppression)).object.id
        let router = try await repository.create(Router(name: "edge")).object.id
        func port(_ port: Port) async throws -> PortID { try await repository.create(port).object.id }
        let vm1 = try await port(Port(bridge: left, name: "vm1"))
        let vm2 = try await port(Port(bridge: left, name: "vm2"))
        let vm3 = try await port(Port(bridge: right, name: "vm3"))
        let leftUplink = try await port(Port(bridge: left, name: "uplink"))
        let rightUplink = try await port(Port(bridge: right, name: "uplink"))
        let routerLeft = try await port(Port(
            router: router, name: "to-left", address: ip("10.0.1.1"), subnet: prefix("10.0.1.0/24"), mac: routerLeftMAC))
        let routerRight = try await port(Port(
            router: router, name: "to-right", address: ip("10.0.2.1"), subnet: prefix("10.0.2.0/24"), mac: routerRightMAC))
        let outside = try await port(Port(
            router: router, name: "outside", address: ip("192.0.2.1"), subnet: prefix("192.0.2.0/24"), mac: outsideMAC))
        _ = try await repository.link(routerLeft, leftUplink)
        _ = try await repository.link(routerRight, rightUplink)
        _ = try await repository.create(Route(routerId: router, destination: prefix("10.0.1.0/24"), egressPortId: routerLeft))
        _ = try await repository.create(Route(routerId: router, destination: prefix("10.0.2.0/24"), egressPortId: routerRight))
        return Lab(
            repository: repository, left: left, right: right, router: router, vm1: vm1, vm2: vm2, vm3: vm3,
            leftUplink: leftUplink, rightUplink: rightUplink, routerLeft: routerLeft, routerRight: routerRight, outside: outside)
    }

    func snapshot() async throws -> TopologySnapshot {
        let snapshot = try await loadSnapshot(repository)
        #expect(snapshot.problems.isEmpty, "\(snapshot.problems)")
        return snapshot
    }

    /// MAC tables knowing every VM, and the router knowing vm3.
    var fullState: SimulationState {
        var state = SimulationState()
        state.learn(Lab.vm1MAC, on: vm1, in: left)
        state.learn(Lab.vm2MAC, on: vm2, in: left)
        state.learn(Lab.vm3MAC, on: vm3, in: right)
        state.learn(Lab.vm3IP, at: Lab.vm3MAC, in: router)
        state.learn(Lab.vm1IP, at: Lab.vm1MAC, in: router)
        return state
    }

    // Packets.

    static func tcp(from source: IPv4.Address = vm1IP, to destination: IPv4.Address, sourcePort: UInt16 = 40000, port: UInt16 = 80,
                    sourceMAC: EthernetAddress = vm1MAC, destinationMAC: EthernetAddress, ttl: UInt8 = 64, flags: TCP.Flags = .syn) -> PacketDescription {
        PacketDescription(sourceMAC: sourceMAC, destinationMAC: destinationMAC, sourceIP: source, destinationIP: destination,
                          protocol: .tcp, sourcePort: sourcePort, destinationPort: port, tcpFlags: flags, timeToLive: ttl)
    }

    static func udp(from source: IPv4.Address = vm1IP, to destination: IPv4.Address, sourcePort: UInt16 = 40000, port: UInt16 = 53,
                    sourceMAC: EthernetAddress = vm1MAC, destinationMAC: EthernetAddress) -> PacketDescription {
        PacketDescription(sourceMAC: sourceMAC, destinationMAC: destinationMAC, sourceIP: source, destinationIP: destination,
                          protocol: .udp, sourcePort: sourcePort, destinationPort: port)
    }

    static func ping(from source: IPv4.Address = vm1IP, to destination: IPv4.Address, sourceMAC: EthernetAddress = vm1MAC,
                     destinationMAC: EthernetAddress, ttl: UInt8 = 64, type: UInt8 = 8, code: UInt8 = 0) -> PacketDescription {
        PacketDescription(sourceMAC: sourceMAC, destinationMAC: destinationMAC, sourceIP: source, destinationIP: destination,
                          protocol: .icmp, icmpType: type, icmpCode: code, icmpIdentifier: 7, timeToLive: ttl, payload: Array(0..<16))
    }

    static func arpRequest(from source: IPv4.Address = vm1IP, sourceMAC: EthernetAddress = vm1MAC, for target: IPv4.Address) -> PacketDescription {
        PacketDescription(sourceMAC: sourceMAC, destinationMAC: .broadcast, sourceIP: source, destinationIP: target, protocol: .arp)
    }
}

extension TopologySnapshot {
    /// Simulates `packet` entering by `port`, with a trace.
    func run(
        _ packet: PacketDescription, from port: PortID, state: SimulationState = .empty,
        connectionState: ConnectionState = .new, hopLimit: Int = 16
    ) throws -> SimulationResult {
        try run(frame: packet.frame, from: port, state: state, connectionState: connectionState, hopLimit: hopLimit)
    }

    func run(
        frame: [UInt8], from port: PortID, state: SimulationState = .empty,
        connectionState: ConnectionState = .new, hopLimit: Int = 16
    ) throws -> SimulationResult {
        let tunnelKey = try #require(ports[port]?.tunnelKey)
        return try simulate(
            frame: frame, inPort: tunnelKey, state: state,
            options: SimulationOptions(connectionState: connectionState, recordsTrace: true, hopLimit: hopLimit))
    }
}

extension SimulationResult {
    var events: [TraceEvent] { trace.steps.map(\.event) }

    /// True when the trace shows `chain` starting at `hook`.
    func ranChain(_ chain: ChainID, _ hook: ChainHook) -> Bool {
        events.contains { if case .chain(chain, hook, _) = $0 { true } else { false } }
    }

    func printedTrace(_ snapshot: TopologySnapshot) -> String { trace.rendered(in: snapshot) }
}

/// Parsed layers of a generated IPv4 frame, with both checksums verified.
struct ParsedIPv4 {
    var ethernet: Ethernet.Header
    var ip: IPv4.Header
    var transport: [UInt8]

    init(_ frame: [UInt8]) throws {
        ethernet = try Ethernet.Header(parsing: frame)
        #expect(ethernet.etherType == .ipv4)
        let packet = Array(frame[ethernet.length...])
        ip = try IPv4.Header(parsing: packet)
        #expect(InternetChecksum.verifies(Array(packet[..<ip.headerLength])), "IPv4 header checksum")
        transport = Array(packet[ip.headerLength..<Int(ip.totalLength)])
        switch ip.protocol {
        case .icmp:
            #expect(InternetChecksum.verifies(transport), "ICMP checksum")
        case .tcp:
            let source = ip.source, destination = ip.destination
            #expect(transport.withUnsafeBytes { TCP.checksumVerifies(segment: $0, source: source, destination: destination) }, "TCP checksum")
        default:
            break
        }
    }
}

/// `frame` with its IPv4 header marked as a fragment (first or later), checksum recomputed.
func fragmented(_ frame: [UInt8], later: Bool) -> [UInt8] {
    var bytes = frame
    let flags: UInt16 = later ? 0x0010 : 0x2000  // offset 16*8 bytes, or MF with offset 0
    bytes[14 + 6] = UInt8(flags >> 8)
    bytes[14 + 7] = UInt8(flags & 0xFF)
    bytes[14 + 10] = 0
    bytes[14 + 11] = 0
    let checksum = InternetChecksum.checksum(Array(bytes[14..<34]))
    bytes[14 + 10] = UInt8(checksum >> 8)
    bytes[14 + 11] = UInt8(checksum & 0xFF)
    return bytes
}
