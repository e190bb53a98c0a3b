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

    // MARK: Megaflows

    static let bridgePath: FlowMask = [.inPort, .ethernetSource, .ethernetDestination, .etherType]

    static func tcp(port: UInt32 = 1, destination: UInt64 = 0x0200_0000_0002, sourcePort: UInt16, flags: TCP.Flags = [.syn], ttl: UInt8 = 64) -> FlowKey {
        var key = FlowKey(inPort: port)
        key.ethernetSource = EthernetAddress(0x0200_0000_0001)
        key.ethernetDestination = EthernetAddress(destination)
        key.etherType = .ipv4
        key.ipv4Source = IPv4.Address(10, 0, 1, 11)
        key.ipv4Destination = IPv4.Address(10, 0, 1, 12)
        key.ipProtocol = .tcp
        key.sourcePort = sourcePort
        key.destinationPort = 80
        key.tcpFlags = flags
        key.timeToLive = ttl
        return key
    }

    @Test func aMegaflowMatchesEveryPacketThatAgreesOnItsFields() {
        var table = FlowTable()
        let slot = table.install(Self.tcp(sourcePort: 40_000), mask: Self.bridgePath, actions: FlowActions(outputs: [.local(portKey: 2)]), tags: [], now: 0)
        #expect(table.megaflowCount == 1 && table.maskCount == 1)
        // Other connections, flags and TTLs between the same two MACs: the same flow.
        for key in [Self.tcp(sourcePort: 40_001), Self.tcp(sourcePort: 40_000, flags: [.ack]), Self.tcp(sourcePort: 55_555, flags: [.fin, .ack], ttl: 3)] {
            #expect(table.lookup(key) == slot)
        }
        #expect(table.lookup(Self.tcp(destination: 0x0200_0000_0003, sourcePort: 40_000)) == nil, "another destination MAC")
        #expect(table.lookup(Self.tcp(port: 2, sourcePort: 40_000)) == nil, "another in-port")
        // What is stored is the masked key.
        #expect(table.entries[Int(slot)].key.sourcePort == 0 && table.entries[Int(slot)].mask == Self.bridgePath)
    }

    @Test func theInPortIsAlwaysMatched() {
        var table = FlowTable()
        table.install(Self.tcp(sourcePort: 1), mask: [.ethernetDestination], actions: .drop, tags: [], now: 0)
        #expect(table.lookup(Self.tcp(port: 1, sourcePort: 2)) != nil)
        #expect(table.lookup(Self.tcp(port: 5, sourcePort: 1)) == nil)
        #expect(table.removeFlows(touchingPort: 1) == 1)
    }

    @Test func exactFlowsComeFirstAndAMaskGoesWithItsLastFlow() {
        var table = FlowTable()
        let key = Self.tcp(sourcePort: 40_000)
        let mega = table.install(key, mask: Self.bridgePath, actions: FlowActions(outputs: [.local(portKey: 2)]), tags: [FlowTag(1)], now: 0)
        let exact = table.install(key, actions: FlowActions(outputs: [.local(portKey: 3)]), tags: [FlowTag(2)], now: 0)
        #expect(table.count == 2)
        #expect(table.lookup(key) == exact)
        #expect(table.invalidate([FlowTag(2)]) == 1)
        #expect(table.lookup(key) == mega)
        #expect(table.invalidate([FlowTag(1)]) == 1)
        #expect(table.lookup(key) == nil)
        #expect(table.maskCount == 0 && table.count == 0)
        // Installing the same megaflow twice replaces it.
        table.install(key, mask: Self.bridgePath, actions: .drop, tags: [], now: 1)
        table.install(Self.tcp(sourcePort: 1), mask: Self.bridgePath, actions: .drop, tags: [], now: 2)
        #expect(table.count == 1 && table.maskCount == 1)
    }

    /// Megaflows of two masks and exact flows against a model; a flow's
    /// actions depend only on in-port and destination MAC (as a simulation's
    /// would on a path that read only those), so any flow matching a key is right.
    @Test func megaflowsMatchAModelUnderRandomOperations() {
        var random = Generator(state: 7)
        var table = FlowTable(capacity: 1 << 20)
        struct Stored { var mask: FlowMask; var key: FlowKey; var tags: [FlowTag] }
        var model: [Stored] = []
        let masks: [FlowMask] = [[.inPort, .ethernetDestination], [.inPort, .ethernetDestination, .sourcePort], .exact]
        func actions(_ key: FlowKey) -> FlowActions { FlowActions(outputs: [.local(portKey: key.inPort * 100 + UInt32(key.ethernetDestination.value % 7))]) }
        for step in 0..<20_000 {
            let key = Self.tcp(
                port: UInt32.random(in: 1...3, using: &random), destination: UInt64.random(in: 1...20, using: &random),
                sourcePort: UInt16.random(in: 1...30, using: &random))
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<4:
                let mask = masks[Int.random(in: 0..<masks.count, using: &random)]
                let tags = [FlowTag(Int(key.ethernetDestination.value % 5)), FlowTag(10 + Int(key.sourcePort % 4))]
                table.install(key, mask: mask, actions: actions(key), tags: tags, now: UInt64(step))
                let stored = key.masked(by: mask.union(.inPort))
                model.removeAll { $0.mask == mask.union(.inPort) && $0.key == stored }
                model.append(Stored(mask: mask.union(.inPort), key: stored, tags: tags))
            case 4..<9:
                let matches = model.contains { key.masked(by: $0.mask) == $0.key }
                let found = table.lookup(key).map { table.actions($0) }
                #expect(found == (matches ? actions(key) : nil), "lookup at step \(step)")
            default:
                let tag = FlowTag(Int.random(in: 0..<14, using: &random))
                let expected = model.filter { $0.tags.contains(tag) }.count
                model.removeAll { $0.tags.contains(tag) }
                #expect(table.invalidate([tag]) == expected)
            }
            #expect(table.count == model.count)
            #expect(table.maskCount == Set(model.map(\.mask)).subtracting([.exact]).count)
        }
    }
}
