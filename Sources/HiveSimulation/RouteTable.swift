import HiveModel
import HivePacket

/// One route, compiled: trivial, so a lookup touches no reference.
struct CompiledRoute: Sendable {
    var id: RouteID
    var destination: MaskedPrefix
    var destinationLength: UInt8
    var source: MaskedPrefix
    var sourceLength: UInt8
    var weight: UInt32
    var kind: RouteKind
    /// The egress port's index; `noIndex` for blackhole and reject routes, or a missing port.
    var egressPort: Int32
    var gateway: IPv4.Address
    var hasGateway: Bool

    /// The route's weight seed for rendezvous hashing: its id's last 8 bytes.
    var seed: UInt64 {
        let bytes = id.uuid.uuid
        return UInt64(bytes.8) << 56 | UInt64(bytes.9) << 48 | UInt64(bytes.10) << 40 | UInt64(bytes.11) << 32
            | UInt64(bytes.12) << 24 | UInt64(bytes.13) << 16 | UInt64(bytes.14) << 8 | UInt64(bytes.15)
    }
}

/// A router's forwarding table: longest-prefix match on the destination,
/// then the longest source prefix that contains the source, then the lowest
/// weight; the routes left are equal-cost paths.
///
/// Layout: one open-addressing hash table per destination prefix length in
/// use, probed from the longest length down. Each table maps a masked
/// destination to the group of routes with exactly that prefix, kept
/// contiguous in `routes`, sorted by source length (longest first), source
/// network, then weight. A lookup is at most one probe per length in use
/// (33 at worst, a handful in practice) plus a short scan of one group;
/// nothing allocates.
///
/// A group whose routes all have a source prefix that does not contain the
/// packet's source is skipped, and the lookup goes on with shorter
/// destination prefixes, as source-specific routing expects.
struct RouteTable: Sendable {
    private(set) var routes: [CompiledRoute]
    /// Destination prefix lengths in use, longest first; parallel to `tables`.
    private var lengths: [UInt8]
    private var tables: [PrefixHashTable]
    /// True when some route has a source prefix: only then does a lookup read the source address.
    private(set) var usesSourcePrefixes: Bool

    /// The equal-cost routes a lookup found: indices `start..<end` in `routes`.
    struct Match {
        var group: IndexRange
        var count: Int { group.count }
    }

    init(routes input: [CompiledRoute]) {
        let sorted = input.sorted { left, right in
            if left.destinationLength != right.destinationLength { return left.destinationLength > right.destinationLength }
            if left.destination.value != right.destination.value { return left.destination.value < right.destination.value }
            if left.sourceLength != right.sourceLength { return left.sourceLength > right.sourceLength }
            if left.source.value != right.source.value { return left.source.value < right.source.value }
            if left.weight != right.weight { return left.weight < right.weight }
            return left.id < right.id
        }
        routes = sorted
        usesSourcePrefixes = sorted.contains { $0.sourceLength > 0 }
        lengths = []
        tables = []
        var index = 0
        while index < sorted.count {
            let length = sorted[index].destinationLength
            var groups: [(UInt32, IndexRange)] = []
            while index < sorted.count, sorted[index].destinationLength == length {
                let start = index
                let value = sorted[index].destination.value
                while index < sorted.count, sorted[index].destinationLength == length, sorted[index].destination.value == value {
                    index += 1
                }
                groups.append((value, IndexRange(start: Int32(start), end: Int32(index))))
            }
            lengths.append(length)
            tables.append(PrefixHashTable(groups))
        }
    }

    /// The best routes for a packet from `source` to `destination`.
    /// - Complexity: O(prefix lengths in use + routes sharing the matched prefix).
    @inline(__always)
    func lookup(destination: IPv4.Address, source: IPv4.Address) -> Match? {
        for slot in 0..<lengths.count {
            let length = lengths[slot]
            let mask: UInt32 = length == 0 ? 0 : UInt32.max << (32 - UInt32(length))
            guard let group = tables[slot].find(destination.value & mask) else { continue }
            if let match = bestInGroup(group, source: source) { return match }
        }
        return nil
    }

    @inline(__always)
    private func bestInGroup(_ group: IndexRange, source: IPv4.Address) -> Match? {
        var index = Int(group.start)
        let end = Int(group.end)
        while index < end {
            let first = routes[index]
            if first.source.contains(source) {
                var last = index + 1
                while last < end, routes[last].sourceLength == first.sourceLength,
                      routes[last].source.value == first.source.value, routes[last].weight == first.weight {
                    last += 1
                }
                return Match(group: IndexRange(start: Int32(index), end: Int32(last)))
            }
            index += 1
        }
        return nil
    }
}

/// Open addressing with linear probing over a power-of-two table at most
/// half full. Keys are masked destinations; an empty slot has `end == -1`.
struct PrefixHashTable: Sendable {
    private var keys: [UInt32]
    private var values: [IndexRange]
    private var mask: Int

    init(_ groups: [(UInt32, IndexRange)]) {
        var capacity = 4
        while capacity < groups.count * 2 { capacity <<= 1 }
        keys = Array(repeating: 0, count: capacity)
        values = Array(repeating: IndexRange(start: -1, end: -1), count: capacity)
        mask = capacity - 1
        for (key, value) in groups {
            var slot = Self.slot(key, mask)
            while values[slot].end != -1 { slot = (slot + 1) & mask }
            keys[slot] = key
            values[slot] = value
        }
    }

    @inline(__always)
    private static func slot(_ key: UInt32, _ mask: Int) -> Int {
        // Fibonacci hashing: the multiply spreads the prefix bits (which sit
        // high in the word) over the low bits the mask keeps. Wrapping is the point.
        Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    @inline(__always)
    func find(_ key: UInt32) -> IndexRange? {
        var slot = Self.slot(key, mask)
        while true {
            let value = values[slot]
            if value.end == -1 { return nil }
            if keys[slot] == key { return value }
            slot = (slot + 1) & mask
        }
    }
}
