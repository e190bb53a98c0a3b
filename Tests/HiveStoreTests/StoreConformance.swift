import Testing
@testable import HiveStore

/// Behaviour every `Store` must show, whatever its backend. Each case works
/// under its own key prefix so cases can share one etcd cluster.
struct ConformanceCase: Sendable, CustomTestStringConvertible {
    let name: String
    let run: @Sendable (any Store, String) async throws -> Void

    var testDescription: String { name }

    static let all: [ConformanceCase] = [
        ConformanceCase(name: "put and get track revisions and versions") { store, p in
            #expect(try await store.get(p + "missing") == nil)
            let first = try await store.put(p + "a", "1")
            let second = try await store.put(p + "a", "2")
            #expect(second > first)
            let keyValue = try #require(try await store.get(p + "a"))
            #expect(keyValue.text == "2")
            #expect(keyValue.createRevision == first)
            #expect(keyValue.modRevision == second)
            #expect(keyValue.version == 2)
            #expect(keyValue.lease == 0)
            let read = try await store.range(.key(p + "a"))
            #expect(read.revision >= second)
        },
        ConformanceCase(name: "empty and binary values round-trip") { store, p in
            try await store.put(p + "empty", value: [])
            #expect(try await store.get(p + "empty")?.value == [])
            let binary: [UInt8] = [0, 255, 10, 13, 0x80, 0x7F, 34, 92]
            try await store.put(p + "binary", value: binary)
            #expect(try await store.get(p + "binary")?.value == binary)
        },
        ConformanceCase(name: "prefix ranges are ordered and bounded") { store, p in
            for key in ["b/2", "b/10", "b/1", "b0", "a", "c", "b/"] {
                try await store.put(p + key, key)
            }
            let keys = try await store.range(.prefix(p + "b/")).keyValues.map(\.key)
            #expect(keys == ["b/", "b/1", "b/10", "b/2"].map { p + $0 })
            let all = try await store.range(.prefix(p)).keyValues.map(\.key)
            #expect(all == ["a", "b/", "b/1", "b/10", "b/2", "b0", "c"].map { p + $0 })
        },
        ConformanceCase(name: "delete of a key, a prefix and nothing") { store, p in
            for key in ["x/1", "x/2", "x/3", "y"] { try await store.put(p + key, key) }
            let single = try await store.delete(.key(p + "y"))
            #expect(single.deleted == 1)
            let prefix = try await store.delete(.prefix(p + "x/"))
            #expect(prefix.deleted == 3)
            let nothing = try await store.delete(.key(p + "never"))
            #expect(nothing.deleted == 0)
            #expect(nothing.revision == prefix.revision, "deleting nothing must not create a revision")
            #expect(try await store.range(.prefix(p)).keyValues.isEmpty)
            // A recreated key starts a new life: version 1, new create revision.
            let recreated = try await store.put(p + "y", "again")
            let keyValue = try #require(try await store.get(p + "y"))
            #expect(keyValue.version == 1)
            #expect(keyValue.createRevision == recreated)
        },
        ConformanceCase(name: "transaction compares choose the branch") { store, p in
            let create = Transaction(
                compares: [.absent(p + "k")],
                success: [.put(key: p + "k", value: "v1".bytes)],
                failure: [.get(.key(p + "k"))])
            let first = try await store.transaction(create)
            #expect(first.succeeded)
            let second = try await store.transaction(create)
            #expect(!second.succeeded)
            guard case .get(let seen) = second.responses.first else {
                Issue.record("failure branch did not return its get: \(second.responses)")
                return
            }
            #expect(seen.first?.text == "v1")

            let current = try #require(try await store.get(p + "k"))
            let stale = try await store.transaction(Transaction(
                compares: [.unchanged(p + "k", since: current.modRevision - 1)],
                success: [.put(key: p + "k", value: "lost".bytes)]))
            #expect(!stale.succeeded)
            let fresh = try await store.transaction(Transaction(
                compares: [.unchanged(p + "k", since: current.modRevision), Compare(.key(p + "k"), .value("v1".bytes), .equal)],
                success: [.put(key: p + "k", value: "v2".bytes)]))
            #expect(fresh.succeeded)
            #expect(try await store.get(p + "k")?.text == "v2")

            let valueMismatch = try await store.transaction(Transaction(
                compares: [Compare(.key(p + "k"), .value("v1".bytes), .equal)],
                success: [.delete(.key(p + "k"))]))
            #expect(!valueMismatch.succeeded)
            let missingValue = try await store.transaction(Transaction(
                compares: [Compare(.key(p + "nothing"), .value([]), .equal)],
                success: [.put(key: p + "wrong", value: [])]))
            #expect(!missingValue.succeeded, "a value compare on a missing key fails")
            let versionGreater = try await store.transaction(Transaction(
                compares: [Compare(.key(p + "k"), .version(1), .greater)]))
            #expect(versionGreater.succeeded)
        },
        ConformanceCase(name: "a transaction applies atomically as one revision") { store, p in
            let result = try await store.transaction(Transaction(success: [
                .put(key: p + "t/1", value: "1".bytes),
                .put(key: p + "t/2", value: "2".bytes),
                .put(key: p + "t/3", value: "3".bytes),
            ]))
            #expect(result.succeeded)
            let keyValues = try await store.range(.prefix(p + "t/")).keyValues
            #expect(keyValues.count == 3)
            #expect(Set(keyValues.map(\.modRevision)) == [result.revision])
        },
        ConformanceCase(name: "prefix compares see every key in the range") { store, p in
            let empty = try await store.range(.prefix(p + "refs/"))
            let guardRevision = empty.revision
            let unchanged = Compare(.prefix(p + "refs/"), .modRevision(guardRevision + 1), .less)
            #expect(try await store.transaction(Transaction(compares: [unchanged])).succeeded,
                    "an empty range compares as a zero key")
            try await store.put(p + "refs/one", "1")
            #expect(!(try await store.transaction(Transaction(compares: [unchanged])).succeeded),
                    "a key created after the guard revision must fail the compare")
            let allPresent = Compare(.prefix(p + "refs/"), .version(0), .greater)
            #expect(try await store.transaction(Transaction(compares: [allPresent])).succeeded)
        },
        ConformanceCase(name: "a transaction may not write one key twice") { store, p in
            await #expect(throws: StoreError.self) {
                try await store.transaction(Transaction(success: [
                    .put(key: p + "dup", value: "1".bytes),
                    .put(key: p + "dup", value: "2".bytes),
                ]))
            }
            let written = try await store.get(p + "dup")
            #expect(written == nil)
        },
        ConformanceCase(name: "watch replays from a past revision, then follows live changes") { store, p in
            let start = try await store.put(p + "w/1", "one")
            try await store.put(p + "other", "not watched")
            try await store.put(p + "w/2", "two")
            try await store.delete(.key(p + "w/1"))
            let stream = await store.watch(.prefix(p + "w/"), fromRevision: start)
            var iterator = stream.makeAsyncIterator()
            var events: [WatchEvent] = []
            while events.count < 3 {
                let batch = try await nextEvents(&iterator)
                events += batch
            }
            #expect(events.map(\.kind) == [.put, .put, .delete])
            #expect(events.map(\.keyValue.key) == [p + "w/1", p + "w/2", p + "w/1"])
            #expect(events.first?.keyValue.modRevision == start)
            #expect(events[1].keyValue.text == "two")

            let live = try await store.transaction(Transaction(success: [
                .put(key: p + "w/3", value: "3".bytes), .put(key: p + "w/4", value: "4".bytes),
            ]))
            var liveEvents: [WatchEvent] = []
            while liveEvents.count < 2 {
                let batch = try await nextEvents(&iterator)
                #expect(batch.allSatisfy { $0.keyValue.modRevision == live.revision })
                liveEvents += batch
            }
            #expect(liveEvents.map(\.keyValue.key) == [p + "w/3", p + "w/4"])
        },
        ConformanceCase(name: "a multi-range watch follows each range from its own revision, and grows") { store, p in
            let a1 = try await store.put(p + "a/1", "a1")
            try await store.put(p + "b/1", "b1")
            let c1 = try await store.put(p + "c/1", "c1")
            try await store.put(p + "a/2", "a2")
            try await store.put(p + "d/1", "never watched")
            let watch = await store.watch([WatchedRange(.prefix(p + "a/"), from: a1), WatchedRange(.prefix(p + "b/"), from: c1)])
            var iterator = watch.events.makeAsyncIterator()
            // Per range, in order and once; across ranges, in any order.
            var seen: [String: [String]] = [:]
            func collect(_ count: Int) async throws {
                var got = 0
                while got < count {
                    for event in try await nextEvents(&iterator) {
                        let range = String(event.keyValue.key.dropFirst(p.count).prefix(1))
                        seen[range, default: []].append(event.keyValue.text)
                        got += 1
                    }
                }
            }
            try await collect(2)
            #expect(seen == ["a": ["a1", "a2"]])
            try await store.put(p + "b/2", "b2")
            try await store.put(p + "c/2", "c2")
            try await collect(1)
            #expect(seen["b"] == ["b2"], "b/1 is older than b's start; c is not watched yet")
            watch.add([WatchedRange(.prefix(p + "c/"), from: c1)])
            try await collect(2)
            #expect(seen["c"] == ["c1", "c2"])
            try await store.put(p + "a/3", "a3")
            try await store.put(p + "c/3", "c3")
            try await store.put(p + "d/2", "still not watched")
            try await store.put(p + "b/3", "b3")
            try await collect(3)
            #expect(seen == ["a": ["a1", "a2", "a3"], "b": ["b2", "b3"], "c": ["c1", "c2", "c3"]])
        },
        ConformanceCase(name: "watch without a revision delivers every change after it returns") { store, p in
            try await store.put(p + "n/old", "old")
            let stream = await store.watch(.prefix(p + "n/"), fromRevision: nil)
            var iterator = stream.makeAsyncIterator()
            let revision = try await store.put(p + "n/new", "new")
            let events = try await nextEvents(&iterator)
            #expect(events.map(\.keyValue.key) == [p + "n/new"])
            #expect(events.first?.keyValue.modRevision == revision)
        },
        ConformanceCase(name: "many concurrent compare-and-swap writers lose no update") { store, p in
            let key = p + "counter"
            try await store.put(key, "0")
            let writers = 8
            let incrementsEach = 15
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<writers {
                    group.addTask {
                        for _ in 0..<incrementsEach {
                            while true {
                                let current = try #require(try await store.get(key))
                                let next = (Int(current.text) ?? 0) + 1
                                let result = try await store.transaction(Transaction(
                                    compares: [.unchanged(key, since: current.modRevision)],
                                    success: [.put(key: key, value: Array(String(next).utf8))]))
                                if result.succeeded { break }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.get(key)?.text == String(writers * incrementsEach))
        },
        ConformanceCase(name: "leases: keys go with a revoked lease; unknown leases are refused") { store, p in
            let lease = try await store.grantLease(ttl: 30)
            #expect(lease.id != 0)
            try await store.put(p + "l/alive", "yes", lease: lease.id)
            try await store.put(p + "l/keep", "no lease")
            #expect(try await store.get(p + "l/alive")?.lease == lease.id)
            #expect(try await store.keepAlive(lease.id) == 30)
            let watch = await store.watch(.prefix(p + "l/"), fromRevision: nil)
            var iterator = watch.makeAsyncIterator()
            try await store.revokeLease(lease.id)
            #expect(try await store.get(p + "l/alive") == nil)
            #expect(try await store.get(p + "l/keep") != nil)
            let events = try await nextEvents(&iterator)
            #expect(events.map(\.kind) == [.delete])
            await #expect(throws: StoreError.leaseNotFound(lease.id)) { try await store.keepAlive(lease.id) }
            await #expect(throws: StoreError.leaseNotFound(lease.id)) {
                try await store.put(p + "l/late", "x", lease: lease.id)
            }
        },
        ConformanceCase(name: "a lease that is not kept alive lapses and takes its keys") { store, p in
            let lease = try await store.grantLease(ttl: 2)
            try await store.put(p + "lapse/key", "here", lease: lease.id)
            // Kept alive every few hundred milliseconds; a TTL of 6 s leaves room for a loaded machine.
            let kept = try await store.grantLease(ttl: 6)
            try await store.put(p + "lapse/kept", "here", lease: kept.id)
            let lapsed = try await eventually(within: 20) {
                _ = try await store.keepAlive(kept.id)
                return try await store.get(p + "lapse/key") == nil
            }
            #expect(lapsed)
            #expect(try await store.get(p + "lapse/kept") != nil, "a lease kept alive must not lapse")
            try await store.revokeLease(kept.id)
        },
    ]
}

/// The events of the next batch that has any (progress notices carry none).
func nextEvents(_ iterator: inout WatchStream.AsyncIterator) async throws -> [WatchEvent] {
    while let batch = try await iterator.next() {
        if !batch.events.isEmpty { return batch.events }
    }
    throw WatchEnded()
}

struct WatchEnded: Error {}

@Suite("Store conformance: embedded")
struct EmbeddedConformanceTests {
    @Test(arguments: ConformanceCase.all)
    func embedded(_ conformance: ConformanceCase) async throws {
        // On an executor of its own: the lease cases keep leases alive on a
        // schedule, which a cooperative pool busy with hundreds of other
        // tests would not keep.
        try await withTaskExecutorPreference(BlockingExecutor()) {
            try await withTemporaryDirectory { directory in
                let store = try EmbeddedStore(directory: directory)
                do {
                    try await conformance.run(store, "/test/")
                } catch {
                    await store.close()
                    throw error
                }
                await store.close()
            }
        }
    }
}

