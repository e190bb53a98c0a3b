import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Testing
@testable import HiveAgent

/// A change compiles again only the island (devices joined by links, with
/// what they use) it touched; the others are reused as they were.
@Suite struct TopologyIslandsTests {
    var revision: Revision = 0

    mutating func put<T: TopologyObject>(_ object: T, into mirror: inout NSDBMirror) throws {
        revision += 1
        var changes = NSDBMirror.Changes()
        let keyValue = KeyValue(key: TopologyKeys.object(T.kind, object.id), value: try object.jsonBytes(),
                                createRevision: revision, modRevision: revision, version: 1, lease: 0)
        mirror.apply(WatchEvent(kind: .put, keyValue: keyValue), into: &changes)
    }

    @Test mutating func aChangeCompilesOnlyItsIsland() throws {
        var mirror = NSDBMirror()
        // Tenant A: bridge blue behind router ra, a chain on blue's VM port. Tenant B: bridge green, alone.
        let blue = Bridge(name: "blue", tunnelKey: 10)
        let ra = Router(name: "ra")
        var chain = Chain(name: "in")
        let rule = Rule(chainId: chain.id, action: .accept)
        chain.ruleIds = [rule.id]
        var vm1 = Port(bridge: blue.id, name: "vm1")
        vm1.tunnelKey = 101
        vm1.inboundChainId = chain.id
        var uplink = Port(bridge: blue.id, name: "uplink")
        var raPort = Port(router: ra.id, name: "to-blue", address: IPv4.Address(parsing: "10.0.1.1")!, subnet: IPv4.Prefix(parsing: "10.0.1.0/24")!)
        uplink.peerId = raPort.id
        raPort.peerId = uplink.id
        let green = Bridge(name: "green", tunnelKey: 20)
        var vm3 = Port(bridge: green.id, name: "vm3")
        vm3.tunnelKey = 103
        for object in [blue, green] as [Bridge] { try put(object, into: &mirror) }
        try put(ra, into: &mirror)
        try put(chain, into: &mirror)
        try put(rule, into: &mirror)
        for port in [vm1, uplink, raPort, vm3] { try put(port, into: &mirror) }

        let (first, compiledFirst) = TopologyIslands.build(from: mirror, reusing: TopologyIslands())
        #expect(first.parts.count == 2, "blue with ra, and green")
        #expect(compiledFirst == 9, "every object once: 2 bridges, a router, 4 ports, a chain, a rule")
        #expect(first.snapshot(inPort: 101).bridges[blue.id] != nil && first.snapshot(inPort: 101).bridges[green.id] == nil)
        #expect(first.snapshot(inPort: 103).bridges[green.id] != nil)
        #expect(first.name(of: raPort.id) == "ra/to-blue")

        // Nothing changed: nothing compiled.
        let (same, compiledNothing) = TopologyIslands.build(from: mirror, reusing: first)
        #expect(compiledNothing == 0 && same.parts.count == 2)

        // A port on green: green's island (a bridge, two ports) only.
        var spare = Port(bridge: green.id, name: "spare")
        spare.tunnelKey = 104
        try put(spare, into: &mirror)
        let (second, compiledGreen) = TopologyIslands.build(from: mirror, reusing: same)
        #expect(compiledGreen == 3, "green, vm3 and spare; blue's island is reused (\(compiledGreen) compiled)")

        // A rule change in blue's chain: blue's island only.
        var changed = rule
        changed.action = .drop
        try put(changed, into: &mirror)
        let (_, compiledBlue) = TopologyIslands.build(from: mirror, reusing: second)
        #expect(compiledBlue == 7, "blue, ra, vm1, uplink, to-blue, the chain and its rule (\(compiledBlue) compiled)")

        // Simulation reads the in-port's island: vm1's packet meets blue's (now dropping) chain.
        let frame = ARP.requestFrame(
            senderMAC: EthernetAddress(0x02, 0, 0, 0, 0, 1), senderIP: IPv4.Address(parsing: "10.0.1.11")!, targetIP: IPv4.Address(parsing: "10.0.1.1")!)
        let islands = TopologyIslands.build(from: mirror, reusing: second).0
        let result = try islands.snapshot(inPort: 101).simulate(frame: frame, inPort: 101)
        #expect(result.decision == .drop(.ruleDropped(chain: chain.id, rule: rule.id)))
    }
}
