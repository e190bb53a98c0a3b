// Runs one benchmark workload in a loop, for a profiler:
//
//     swift build -c release --product SimulationProfile
//     valgrind --tool=callgrind .build/release/SimulationProfile rules 20000
//
// Workloads: rules (bridge-router-bridge, 100-rule chain), routes (10,000-route router), lookup,
// groups (security groups: 100 rules, a remote group of 1,000), connections (memory per tracked
// connection: the resident set before and after filling a table with `count` TCP connections), hits (a tracked
// flow's hits: `count` of allows + advance on established connections, time per hit).
#if canImport(Glibc)
import Glibc
#endif
import HivePacket
import HiveSimulation

/// The resident set size in bytes, from /proc/self/statm.
func residentBytes() -> Int {
    guard let file = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(file) }
    var size = 0
    var resident = 0
    _ = withUnsafeMutablePointer(to: &size) { sizePointer in
        withUnsafeMutablePointer(to: &resident) { residentPointer in
            withVaList([sizePointer, residentPointer]) { vfscanf(file, "%ld %ld", $0) }
        }
    }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}

let arguments = CommandLine.arguments
let workload = arguments.count > 1 ? arguments[1] : "rules"
let count = arguments.count > 2 ? Int(arguments[2]) ?? 100_000 : 100_000
var sink = 0
switch workload {
case "routes":
    let big = Topologies.bigRouter(routes: 10_000)
    let snapshot = big.snapshot
    let keys = big.frames.map { try! FlowKey(parsing: $0, inPort: big.inPort) }
    var context = SimulationContext()
    for index in 0..<count {
        context.simulate(frame: big.frames[index & 1023], key: keys[index & 1023], in: snapshot, state: big.state)
        sink &+= context.result.hops
    }
case "lookup":
    let big = Topologies.bigRouter(routes: 10_000)
    let snapshot = big.snapshot
    for index in 0..<count {
        sink &+= snapshot.lookupRoute(in: big.router, destination: big.destinations[index & 1023])?.equalCost ?? 0
    }
case "connections":
    let before = residentBytes()
    var table = ConnectionTable(capacity: max(count, 1), capacityPerPort: max(count, 1))
    for index in 0..<count {
        let key = ConnectionKey(zone: UInt32(1 + index % 64), source: IPv4.Address(UInt32(0x0A00_0000 + index)),
                                destination: IPv4.Address(10, 200, 0, 1), sourcePort: UInt16(truncatingIfNeeded: 1024 + index),
                                destinationPort: 80, ipProtocol: 6)
        _ = table.apply(ConnectionObservation(key: key, slot: -1, isReply: false, states: .new, owner: UInt32(index % 64)), tcpFlags: .syn, now: 1)
    }
    let after = residentBytes()
    print("\(table.count) connections: resident set +\(after - before) bytes, \((after - before) / max(1, table.count)) bytes per connection")
    sink = table.count
case "hits":
    // A tracked flow's hits (allows + advance) on established connections, `count` of them.
    let established = Topologies.establishedConnections(100_000)
    var table = established.table
    let connections = established.connections
    var clock = timespec()
    clock_gettime(CLOCK_MONOTONIC, &clock)
    let start = Int(clock.tv_sec) * 1_000_000_000 + clock.tv_nsec
    for index in 0..<count {
        let connection = connections[index % connections.count]
        if table.allows(connection, flags: [.ack, .psh], now: 2) { sink &+= 1 }
        if table.advance(connection, flags: [.ack, .psh], now: 2) != nil { sink &+= 1 }
    }
    clock_gettime(CLOCK_MONOTONIC, &clock)
    let end = Int(clock.tv_sec) * 1_000_000_000 + clock.tv_nsec
    print("\(count) hits: \((end - start) / max(1, count)) ns each")
case "groups":
    let lab = Topologies.securityGroups(rules: 100, members: 1_000)
    let snapshot = lab.snapshot
    let frame = Topologies.tcpFrame
    let key = try! FlowKey(parsing: frame, inPort: lab.inPort)
    var context = SimulationContext()
    for _ in 0..<count {
        context.simulate(frame: frame, key: key, in: snapshot, state: lab.state)
        sink &+= context.result.hops
    }
default:
    let lab = Topologies.bridgeRouterBridge(rules: 100)
    let snapshot = lab.snapshot
    let frame = Topologies.tcpFrame
    let key = try! FlowKey(parsing: frame, inPort: lab.inPort)
    var context = SimulationContext()
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<count {
        context.simulate(frame: frame, key: key, in: snapshot, state: lab.state)
        sink &+= context.result.hops
    }
    let elapsed = clock.now - start
    print("\(count) simulations in \(elapsed): \(Double(count) / (Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))) per second")
}
print(sink)
