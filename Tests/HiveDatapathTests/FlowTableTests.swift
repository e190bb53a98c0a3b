import HiveDatapath
import HivePacket
import Testing

/// The flow table against a plain dictionary model, on seeded random operations.
@Suite struct FlowTableTests {
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func key(_ n: Int) -> FlowKey {
        var key = FlowKey(inPort: UInt32(n % 7 + 1))
        key.ethernetDestination = EthernetAddress(UInt64(n))
        return key
    }

    @Test func matchesReferenceModelUnderRandomOperations() {
        var random = Generator(state: 42)
        var table = FlowTable(capacity: 1 << 20)
        var model: [FlowKey: (FlowActions, [FlowTag])] = [:]
        for step in 0..<20_000 {
            let n = Int.random(in: 0..<500, using: &random)
            let key = Self.key(n)
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<6:
                let actions = FlowActions(outputs: [.local(portKey: UInt32(n % 5 + 1))])
                let tags: [FlowTag] = [FlowTag(n % 13), FlowTag(100 + n % 3)]
                table.install(key, actions: actions, tags: tags, now: UInt64(step))
                model[key] = (actions, tags)
            case 6..<9:
                let found = table.lookup(key).map { table.actions($0) }
                #expect(found == model[key]?.0, "lookup of \(n) at step \(step)")
            default:
                let tag = FlowTag(Int.random(in: 0..<13, using: &random))
                let removed = table.invalidate([tag])
                let expected = model.filter { $0.value.1.contains(tag) }.count
                model = model.filter { !$0.value.1.contains(tag) }
                #expect(removed == expected)
            }
            #expect(table.count == model.count)
        }
    }

    @Test func fullTableEvictsTheLeastRecentlyUsedFlow() {
        var table = FlowTable(capacity: 3)
        for n in 0..<3 { table.install(Self.key(n), actions: .drop, tags: [], now: UInt64(n)) }
        table.touch(table.lookup(Self.key(0))!, bytes: 60, now: 10)
        table.install(Self.key(3), actions: .drop, tags: [], now: 11)
        #expect(table.count == 3)
        #expect(table.lookup(Self.key(1)) == nil, "flow 1 was the least recently used")
        #expect(table.lookup(Self.key(0)) != nil)
        #expect(table.lookup(Self.key(3)) != nil)
    }

    @Test func idleFlowsExpireAndPortRemovalDropsItsFlows() {
        var table = FlowTable()
        table.install(Self.key(1), actions: FlowActions(outputs: [.local(portKey: 9)]), tags: [], now: 0)
        table.install(Self.key(2), actions: FlowActions(outputs: [.tunnel(host: IPv4.Address(10, 0, 0, 2), portKey: 9)]), tags: [], now: 100)
        #expect(table.expire(idleLongerThan: 50, now: 120) == 1)
        #expect(table.lookup(Self.key(1)) == nil)
        // Key 2 came in by port 3 (2 % 7 + 1) and tunnels to a remote port 9: only removing port 3 drops it.
        #expect(table.removeFlows(touchingPort: 9) == 0)
        #expect(table.removeFlows(touchingPort: 3) == 1)
        #expect(table.count == 0)
    }
}
