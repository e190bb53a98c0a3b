// Runs one benchmark workload in a loop, for a profiler:
//
//     swift build -c release --product SimulationProfile
//     valgrind --tool=callgrind .build/release/SimulationProfile rules 20000
//
// Workloads: rules (bridge-router-bridge, 100-rule chain), routes (10,000-route router), lookup.
import HivePacket
import HiveSimulation

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
