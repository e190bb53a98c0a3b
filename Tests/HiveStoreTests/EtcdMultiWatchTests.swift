import Foundation
import Synchronization
import Testing
@testable import HiveStore
import HiveTestSupport

/// Many multi-range watches on one etcd, each growing while writes land in
/// its ranges, as agents loading scopes do: every write to a watched range
/// reaches every watch that watches it, from the range's own revision on.
/// Under this load the gateway drops some of a stream's create requests
/// (Go's HTTP/1.1 server discards the unread body once the response
/// starts): without the stream noticing and moving the rest elsewhere, a
/// watcher here missed every later write to a third of its ranges.
@Suite("EtcdStore: multi-range watches under growth", .serialized)
struct EtcdMultiWatchTests {
    /// What one watcher has seen, per key.
    final class Seen: Sendable {
        private let keys = Mutex<Set<String>>([])
        func insert(_ key: String) { _ = keys.withLock { $0.insert(key) } }
        func contains(_ all: Set<String>) -> Bool { keys.withLock { all.isSubset(of: $0) } }
        func missing(_ all: Set<String>) -> Set<String> { keys.withLock { all.subtracting($0) } }
        /// The watch ended by itself (its stream finished).
        let ended = Atomic<Bool>(false)
    }

    @Test func everyGrowingWatchGetsEveryWriteToItsRanges() async throws {
        let watchers = 10
        let rangesEach = 200
        try await withEtcdCluster(members: 3) { cluster in
          try await withEtcdStore(cluster.endpoints) { writer in
            // Each watcher is its own client, as agents are their own processes.
            var stores: [EtcdStore] = []
            for _ in 0..<watchers { stores.append(EtcdStore(endpoints: cluster.endpoints)) }
            let seen = (0..<watchers).map { _ in Seen() }

            // The writer: puts to the shared range and to every watcher's ranges, round after round.
            let stop = Atomic<Bool>(false)
            let writes = Task {
                var round = 0
                while !stop.load(ordering: .relaxed) {
                    try await writer.put("g/\(round)", "\(round)")
                    for w in 0..<watchers {
                        try await writer.put("w\(w)/r\(round % rangesEach)/\(round)", "\(round)")
                    }
                    round += 1
                }
            }
            var consumers: [Task<Void, any Error>] = []
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<watchers {
                    let store = stores[w]
                    let mine = seen[w]
                    let first = try await store.range(.prefix("w\(w)/r0/"))
                    for keyValue in first.keyValues { mine.insert(keyValue.key) }
                    let start = first.revision + 1
                    let watch = await store.watch([WatchedRange(.prefix("g/"), from: start), WatchedRange(.prefix("w\(w)/r0/"), from: start)])
                    consumers.append(Task {
                        for try await batch in watch.events {
                            for event in batch.events { mine.insert(event.keyValue.key) }
                        }
                        if !Task.isCancelled { mine.ended.store(true, ordering: .relaxed) }
                    })
                    // Growth: one range at a time, each read first, then watched from after the read.
                    group.addTask {
                        for r in 1..<rangesEach {
                            let read = try await store.range(.prefix("w\(w)/r\(r)/"))
                            for keyValue in read.keyValues { mine.insert(keyValue.key) }
                            watch.add([WatchedRange(.prefix("w\(w)/r\(r)/"), from: read.revision + 1)])
                            try await Task.sleep(for: .milliseconds(Int.random(in: 0...20)))
                        }
                    }
                }
                try await group.waitForAll()
            }
            // Writes go on a little after the growth.
            try await Task.sleep(for: .milliseconds(500))
            stop.store(true, ordering: .relaxed)
            try await writes.value

            // Every key written since each watch began must arrive.
            let all = try await writer.range(.prefix("")).keyValues.map(\.key)
            var missingReport: [String] = []
            for w in 0..<watchers {
                let wanted = Set(all.filter { $0.hasPrefix("w\(w)/") })
                let arrived = await eventually(within: 20) { seen[w].contains(wanted) }
                if !arrived {
                    let missing = seen[w].missing(wanted)
                    missingReport.append("watcher \(w): \(missing.count) of \(wanted.count) missing, e.g. \(missing.sorted().prefix(3))")
                }
            }
            for (w, watcher) in seen.enumerated() where watcher.ended.load(ordering: .relaxed) {
                missingReport.append("watcher \(w)'s watch ended by itself")
            }
            for consumer in consumers { consumer.cancel() }
            for (w, consumer) in consumers.enumerated() {
                if case .failure(let error) = await consumer.result, !(error is CancellationError) {
                    missingReport.append("watcher \(w) ended with \(error)")
                }
            }
            #expect(missingReport.isEmpty, "\(missingReport)")
            let shortfalls = stores.map { $0.watchCreationShortfalls.load(ordering: .relaxed) }.reduce(0, +)
            for store in stores { await store.close() }
            print("multi-range watches: \(shortfalls) streams had creates not confirmed and moved the rest to another")
          }
        }
    }
}
