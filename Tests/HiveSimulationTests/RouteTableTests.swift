import HiveModel
import HivePacket
@testable import HiveSimulation
import Testing

/// SplitMix64: a seeded generator, so each random case replays from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Route table")
struct RouteTableTests {
    /// The reference: a linear scan over every route for the longest matching
    /// destination, then the longest matching source, then the lowest weight.
    func reference(_ routes: [CompiledRoute], destination: IPv4.Address, source: IPv4.Address) -> Set<RouteID> {
        let candidates = routes.filter { $0.destination.contains(destination) && $0.source.contains(source) }
        guard let bestDestination = candidates.map(\.destinationLength).max() else { return [] }
        let longest = candidates.filter { $0.destinationLength == bestDestination }
        let bestSource = longest.map(\.sourceLength).max()!
        let sourced = longest.filter { $0.sourceLength == bestSource }
        let weight = sourced.map(\.weight).min()!
        return Set(sourced.filter { $0.weight == weight }.map(\.id))
    }

    func randomRoute(_ generator: inout SplitMix64) -> CompiledRoute {
        // Few distinct lengths and a narrow address space, so prefixes nest and collide.
        let length = [0, 8, 16, 20, 24, 28, 32].randomElement(using: &generator)!
        let address = IPv4.Address(UInt32(10) << 24 | UInt32.random(in: 0...0xFFFF, using: &generator) << 8 | UInt32.random(in: 0...3, using: &generator))
        let destination = IPv4.Prefix(address: address, length: UInt8(length)).network
        let sourceLength = Bool.random(using: &generator) ? 0 : [8, 16].randomElement(using: &generator)!
        let source = IPv4.Prefix(address: IPv4.Address(UInt32.random(in: 10...11, using: &generator) << 24), length: UInt8(sourceLength)).network
        return CompiledRoute(
            id: RouteID(), destination: MaskedPrefix(destination), destinationLength: destination.length,
            source: MaskedPrefix(source), sourceLength: source.length, weight: UInt32.random(in: 1...3, using: &generator),
            kind: .normal, egressPort: 0, gateway: .any, hasGateway: false)
    }

    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func matchesALinearScan(seed: UInt64) {
        var generator = SplitMix64(state: seed)
        let routes = (0..<Int.random(in: 1...400, using: &generator)).map { _ in randomRoute(&generator) }
        let table = RouteTable(routes: routes)
        for _ in 0..<2000 {
            let destination = IPv4.Address(UInt32(10) << 24 | UInt32.random(in: 0...0xFFFF, using: &generator) << 8 | UInt32.random(in: 0...3, using: &generator))
            let source = IPv4.Address(UInt32.random(in: 10...12, using: &generator) << 24 | UInt32.random(in: 0...0xFFFFFF, using: &generator))
            let expected = reference(routes, destination: destination, source: source)
            let found = table.lookup(destination: destination, source: source).map { match in
                Set(match.group.range.map { table.routes[$0].id })
            } ?? []
            #expect(found == expected, "seed \(seed): \(destination) from \(source)")
        }
    }

    @Test func tenThousandRoutesResolve() {
        var generator = SplitMix64(state: 42)
        var routes: [CompiledRoute] = []
        for index in 0..<10_000 {
            let prefix = IPv4.Prefix(address: IPv4.Address(UInt32(index) << 8 | 0x0A00_0000), length: 24)
            routes.append(CompiledRoute(
                id: RouteID(), destination: MaskedPrefix(prefix), destinationLength: 24, source: MaskedPrefix(IPv4.Prefix(address: .any, length: 0)),
                sourceLength: 0, weight: 100, kind: .normal, egressPort: Int32(index % 4), gateway: .any, hasGateway: false))
        }
        routes.append(randomRoute(&generator))
        let table = RouteTable(routes: routes)
        let match = table.lookup(destination: IPv4.Address(0x0A00_2A07), source: .any)
        #expect(match.map { table.routes[Int($0.group.start)].destination.value } == 0x0A00_2A00)
    }
}
