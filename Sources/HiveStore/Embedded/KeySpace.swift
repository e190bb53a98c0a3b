/// The live keys of the embedded store, in etcd's byte order.
///
/// A dictionary for point lookups plus a sorted array of keys for ranges.
/// Not thread-safe: the store holds it inside its mutex.
struct KeySpace {
    private(set) var values: [String: KeyValue] = [:]
    /// Keys sorted by their UTF-8 bytes, as etcd orders them.
    private var sortedKeys: [String] = []

    var count: Int { values.count }

    subscript(key: String) -> KeyValue? { values[key] }

    /// - Complexity: O(n) for a new key (array insert), O(1) for an existing one.
    mutating func set(_ keyValue: KeyValue) {
        if values.updateValue(keyValue, forKey: keyValue.key) == nil {
            sortedKeys.insert(keyValue.key, at: lowerBound(keyValue.key))
        }
    }

    /// - Complexity: O(n)
    @discardableResult
    mutating func remove(_ key: String) -> KeyValue? {
        guard let removed = values.removeValue(forKey: key) else { return nil }
        let index = lowerBound(key)
        if index < sortedKeys.count, sortedKeys[index] == key { sortedKeys.remove(at: index) }
        return removed
    }

    /// Keys in the range, in order.
    /// - Complexity: O(log n + k)
    func keyValues(in range: KeyRange) -> [KeyValue] {
        switch range {
        case .key(let key):
            return values[key].map { [$0] } ?? []
        case .prefix(let prefix):
            var result: [KeyValue] = []
            var index = lowerBound(prefix)
            while index < sortedKeys.count, sortedKeys[index].utf8.starts(with: prefix.utf8) {
                result.append(values[sortedKeys[index]]!)
                index += 1
            }
            return result
        }
    }

    func allKeyValues() -> [KeyValue] { sortedKeys.map { values[$0]! } }

    private func lowerBound(_ key: String) -> Int {
        var low = 0
        var high = sortedKeys.count
        while low < high {
            let middle = (low + high) / 2
            if sortedKeys[middle].utf8.lexicographicallyPrecedes(key.utf8) {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low
    }
}

extension Compare {
    /// Evaluates the compare on the keys it covers, with etcd's rules: every
    /// key must match; an empty range compares as a zero key, except that a
    /// value compare on a missing key fails.
    func holds(in keys: KeySpace) -> Bool {
        let covered = keys.keyValues(in: range)
        if covered.isEmpty {
            if case .value = target { return false }
            return holds(for: KeyValue(key: "", value: [], createRevision: 0, modRevision: 0, version: 0, lease: 0))
        }
        return covered.allSatisfy(holds(for:))
    }

    func holds(for keyValue: KeyValue) -> Bool {
        switch target {
        case .version(let expected): return Self.compare(keyValue.version, expected, result)
        case .createRevision(let expected): return Self.compare(keyValue.createRevision, expected, result)
        case .modRevision(let expected): return Self.compare(keyValue.modRevision, expected, result)
        case .lease(let expected): return Self.compare(keyValue.lease, expected, result)
        case .value(let expected):
            switch result {
            case .equal: return keyValue.value == expected
            case .notEqual: return keyValue.value != expected
            case .greater: return expected.lexicographicallyPrecedes(keyValue.value)
            case .less: return keyValue.value.lexicographicallyPrecedes(expected)
            }
        }
    }

    private static func compare(_ actual: Int64, _ expected: Int64, _ result: Result) -> Bool {
        switch result {
        case .equal: return actual == expected
        case .notEqual: return actual != expected
        case .greater: return actual > expected
        case .less: return actual < expected
        }
    }
}

extension Compare {
    /// Evaluates the compare on the keys a read of its range returned.
    func holds(in keyValues: [KeyValue]) -> Bool {
        if keyValues.isEmpty {
            if case .value = target { return false }
            return holds(for: KeyValue(key: "", value: [], createRevision: 0, modRevision: 0, version: 0, lease: 0))
        }
        return keyValues.allSatisfy(holds(for:))
    }
}
