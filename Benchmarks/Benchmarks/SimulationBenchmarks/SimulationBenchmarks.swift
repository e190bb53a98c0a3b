import Benchmark
import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation

// Hot paths of issue 4 §4. Each benchmark runs 1,000 operations per
// measured iteration (`scalingFactor: .kilo`), so the figures printed with a
// `*` are per operation: time per simulation, and mallocs per simulation
// (which must read 0 in steady state).

// Built once (global lets are lazy and thread-safe), not per measured iteration.
let routedLab = Topologies.bridgeRouterBridge(rules: 100)
let plainLab = Topologies.bridgeRouterBridge(rules: 1)
let securedLab = Topologies.bridgeRouterBridge(rules: 1, portSecurity: true)
let bigRouter = Topologies.bigRouter(routes: 10_000)
let groupedLab = Topologies.securityGroups(rules: 100, members: 1_000)
let snatLab = Topologies.bridgeRouterBridge(rules: 1, snat: true)
let snatTable = Topologies.translatedTable(snatLab, entries: 100_000)
let establishedSNATTable = Topologies.establishing(Topologies.tcpFrame, on: snatTable, in: snatLab)
let megaflowTable = FlowTables.filled()
let exactTable: FlowTable = {
    var table = FlowTables.filled()
    for key in FlowTables.probes { table.install(key, actions: .drop, tags: [FlowTag(1)], now: 0) }
    return table
}()

let metrics: [BenchmarkMetric] = [.wallClock, .cpuTotal, .throughput, .mallocCountTotal, .peakMemoryResident]

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: metrics, timeUnits: .nanoseconds, warmupIterations: 3, scalingFactor: .kilo,
        maxDuration: .seconds(3), maxIterations: 10_000)

    Benchmark("Parse + flow key of a TCP frame") { benchmark in
        let frame = Topologies.tcpFrame
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try? FlowKey(parsing: frame, inPort: 1))
        }
    }

    simulationBenchmark("Simulation bridge-router-bridge, 100-rule chain on egress port", routedLab) { result, lab in
        result.decision == .output(lab.vm3)
    }
    simulationBenchmark("Simulation bridge-router-bridge, one rule", plainLab) { result, lab in
        result.decision == .output(lab.vm3)
    }
    simulationBenchmark("Simulation bridge-router-bridge, one rule, port security on", securedLab) { result, lab in
        result.decision == .output(lab.vm3)
    }
    simulationBenchmark(
        "Simulation bridge-router-bridge, security groups: 100 rules, remote group of 1,000, new connection", groupedLab
    ) { result, lab in
        result.decision == .output(lab.vm3) && result.connections.count == 2
    }
    // NAT: the router SNATs vm1's connections (gateway) on a table of 100,000
    // translated connections of other sources; a new one keeps its port.
    simulationBenchmark(
        "Simulation bridge-router-bridge, gateway SNAT, new connection, 100,000 translated entries", snatLab,
        connections: snatTable, now: 2
    ) { result, lab in
        result.decision == .output(lab.vm3) && result.actions.contains(.setIPv4Source(IPv4.Address(10, 0, 2, 1)))
    }
    simulationBenchmark(
        "Simulation bridge-router-bridge, gateway SNAT, packet of a translated connection", snatLab, frame: Topologies.ackFrame,
        connections: establishedSNATTable, now: 3
    ) { result, _ in
        result.actions.contains(.setIPv4Source(IPv4.Address(10, 0, 2, 1)))
    }
    // Megaflows (issue 12 §2): 10,000 flows over three masks, as a host with
    // bridge, router and port-matching paths would hold them.
    precondition(megaflowTable.lookup(FlowTables.probes[0]) != nil && megaflowTable.megaflowCount == 10_000)
    flowLookupBenchmark("Flow table: megaflow hit (3 masks, 10,000 flows)", megaflowTable)
    flowLookupBenchmark("Flow table: exact hit (1,024 exact flows, 10,000 megaflows besides)", exactTable)
    Benchmark("Flow table: FlowKey hash") { benchmark in
        let keys = FlowTables.probes
        benchmark.startMeasurement()
        var index = 0
        for _ in benchmark.scaledIterations {
            blackHole(keys[index & 1023].hashValue)
            index &+= 1
        }
    }
    Benchmark("Flow table: megaflow installed and invalidated (10,000 flows)") { benchmark in
        var table = megaflowTable
        let actions = FlowActions(outputs: [.local(portKey: 2)])
        let tags = [FlowTag(7), FlowTag(8)]
        // The copy of the shared table happens here, not in the measurement.
        table.install(FlowTables.key(vm: 200, sourcePort: 1), mask: FlowTables.bridge, actions: actions, tags: tags, now: 1)
        table.invalidate([FlowTag(7)])
        benchmark.startMeasurement()
        var index = 0
        for _ in benchmark.scaledIterations {
            table.install(FlowTables.key(vm: 200 + index & 255, sourcePort: 1), mask: FlowTables.bridge, actions: actions, tags: tags, now: 1)
            blackHole(table.invalidate([FlowTag(7)]))
            index &+= 1
        }
        benchmark.stopMeasurement()
    }
    Benchmark("Connection table: a new TCP connection tracked and applied, 100,000 entries") { benchmark in
        var table = ConnectionTable()
        let filled = 100_000
        for index in 0..<filled {
            let key = ConnectionKey(zone: 1, source: IPv4.Address(UInt32(0x0A00_0000 + index)), destination: IPv4.Address(10, 9, 9, 9),
                                    sourcePort: 40000, destinationPort: 80, ipProtocol: 6)
            _ = table.apply(ConnectionObservation(key: key, slot: -1, isReply: false, states: .new, owner: UInt32(index % 1000)), tcpFlags: .syn, now: 1)
        }
        precondition(table.count == filled)
        benchmark.startMeasurement()
        var index = 0
        for _ in benchmark.scaledIterations {
            let key = ConnectionKey(zone: 2, source: IPv4.Address(UInt32(0x0B00_0000 + index)), destination: IPv4.Address(10, 9, 9, 9),
                                    sourcePort: 40000, destinationPort: 80, ipProtocol: 6)
            blackHole(table.lookup(key, now: 2))
            blackHole(table.apply(ConnectionObservation(key: key, slot: -1, isReply: false, states: .new, owner: 7), tcpFlags: .syn, now: 2))
            index += 1
        }
        benchmark.stopMeasurement()
    }
    Benchmark("Connection table: a cached flow's hit checked and moved on (ACK), 100,000 entries") { benchmark in
        // What a tracked flow's hit costs (`SimulationUpcalls.track`): the entry by
        // slot, TCP's state machine on the packet's flags, the deadline refreshed.
        let established = Topologies.establishedConnections(100_000)
        var table = established.table
        let connections = established.connections
        precondition(table.count == 100_000 && connections.allSatisfy { table.allows($0, flags: .ack, now: 2) })
        benchmark.startMeasurement()
        var index = 0
        for _ in benchmark.scaledIterations {
            let connection = connections[index % connections.count]
            blackHole(table.allows(connection, flags: [.ack, .psh], now: 2))
            blackHole(table.advance(connection, flags: [.ack, .psh], now: 2))
            index &+= 1
        }
        // Not the table's deallocation (100,000 entries and their index).
        benchmark.stopMeasurement()
    }
    simulationBenchmark(
        "DHCP DISCOVER answered by the bridge (an OFFER built)", securedLab, frame: Topologies.dhcpDiscover,
        options: SimulationOptions(networkMTU: 1442)
    ) { result, _ in
        result.generatedPackets.first?.kind == .dhcpReply
    }
    simulationBenchmark(
        "Simulation bridge-router-bridge, one rule, with trace", plainLab, options: SimulationOptions(recordsTrace: true)
    ) { result, _ in
        !result.trace.steps.isEmpty
    }

    Benchmark("Route lookup, router with 10,000 routes") { benchmark in
        let big = bigRouter
        let snapshot = big.snapshot
        let destinations = big.destinations
        precondition(snapshot.lookupRoute(in: big.router, destination: destinations[0]) != nil)
        benchmark.startMeasurement()
        var index = 0
        for _ in benchmark.scaledIterations {
            blackHole(snapshot.lookupRoute(in: big.router, destination: destinations[index]))
            index = (index + 1) & 1023
        }
    }

    Benchmark("Simulation through a router with 10,000 routes") { benchmark in
        let big = bigRouter
        let snapshot = big.snapshot
        let keys = try big.frames.map { try FlowKey(parsing: $0, inPort: big.inPort) }
        var context = SimulationContext()
        context.simulate(frame: big.frames[0], key: keys[0], in: snapshot, state: big.state)
        guard case .output = context.result.decision else { fatalError("unexpected \(context.result.decision)") }
        benchmark.startMeasurement()
        var index = 0
        for _ in benchmark.scaledIterations {
            context.simulate(frame: big.frames[index], key: keys[index], in: snapshot, state: big.state)
            blackHole(context.result.decision)
            index = (index + 1) & 1023
        }
    }
}

/// One simulation of `frame` from the lab's vm1, repeated; `expected` checks
/// the first result before anything is measured.
/// Looks up `FlowTables.probes` in `table`, one per operation.
func flowLookupBenchmark(_ name: String, _ table: FlowTable) {
    Benchmark(name) { benchmark in
        let keys = FlowTables.probes
        benchmark.startMeasurement()
        var index = 0
        for _ in benchmark.scaledIterations {
            blackHole(table.lookup(keys[index & 1023]))
            index &+= 1
        }
        benchmark.stopMeasurement()
    }
}

func simulationBenchmark(
    _ name: String, _ lab: Topologies.Routed, frame: [UInt8] = Topologies.tcpFrame,
    options: SimulationOptions = SimulationOptions(), connections: ConnectionTable = .empty, now: UInt64 = 0,
    expected: @escaping @Sendable (SimulationResult, Topologies.Routed) -> Bool
) {
    Benchmark(name) { benchmark in
        let snapshot = lab.snapshot
        let key = try FlowKey(parsing: frame, inPort: lab.inPort)
        var context = SimulationContext()
        context.simulate(frame: frame, key: key, in: snapshot, state: lab.state, connections: connections, now: now, options: options)
        precondition(expected(context.result, lab), "unexpected \(context.result.decision) \(context.result.actions)")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            context.simulate(frame: frame, key: key, in: snapshot, state: lab.state, connections: connections, now: now, options: options)
            blackHole(context.result.decision)
        }
    }
}

/// Flow tables for the megaflow benchmarks.
enum FlowTables {
    static let bridge: FlowMask = [.inPort, .ethernetSource, .ethernetDestination, .etherType, .ipv4Source]
    static let router: FlowMask = [.inPort, .ethernetDestination, .etherType, .ipv4Source, .ipv4Destination, .timeToLive]
    static let port: FlowMask = [.inPort, .ethernetDestination, .etherType, .ipv4Source, .ipv4Destination, .ipProtocol, .destinationPort]

    /// 1,024 keys of other connections from the first 100 VMs: each matches a bridge-mask megaflow.
    static let probes = (0..<1024).map { key(vm: $0 % 100, sourcePort: UInt16(20_000 + $0)) }

    /// A TCP key from VM `vm` (its own in-port and MAC) to one server.
    static func key(vm: Int, sourcePort: UInt16) -> FlowKey {
        var key = FlowKey(inPort: UInt32(1 + vm % 64))
        key.ethernetSource = EthernetAddress(0x0200_0000_0000 | UInt64(vm))
        key.ethernetDestination = EthernetAddress(0x0200_0001_0000 | UInt64(vm % 50))
        key.etherType = .ipv4
        key.ipv4Source = IPv4.Address(UInt32(0x0A00_0000 + vm))
        key.ipv4Destination = IPv4.Address(UInt32(0x0A01_0000 + vm % 50))
        key.ipProtocol = .tcp
        key.sourcePort = sourcePort
        key.destinationPort = 80
        key.tcpFlags = [.ack]
        key.timeToLive = 64
        return key
    }

    /// 10,000 megaflows: those of `key(vm: 0..<100, ...)` under the bridge
    /// mask, and 9,900 others spread over the three masks.
    static func filled() -> FlowTable {
        var table = FlowTable()
        let masks = [bridge, router, port]
        for vm in 0..<10_000 {
            table.install(key(vm: vm, sourcePort: 1), mask: vm < 100 ? bridge : masks[vm % 3], actions: FlowActions(outputs: [.local(portKey: 2)]),
                          tags: [FlowTag(vm % 97)], now: 0)
        }
        return table
    }
}
