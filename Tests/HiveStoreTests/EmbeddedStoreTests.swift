import Foundation
import Testing
@testable import HiveStore

@Suite("Embedded store: durability and history")
struct EmbeddedStoreTests {
    @Test func everyWriteSurvivesReopenAcrossSnapshots() async throws {
        try await withTemporaryDirectory { directory in
            let options = EmbeddedStore.Options(snapshotThreshold: 4096)
            let store = try EmbeddedStore(directory: directory, options: options)
            for index in 0..<400 {
                try await store.put("/k/\(index)", "value-\(index)-" + String(repeating: "x", count: index % 50))
            }
            for index in stride(from: 0, to: 400, by: 7) { try await store.delete(.key("/k/\(index)")) }
            let lease = try await store.grantLease(ttl: 60)
            try await store.put("/leased", "yes", lease: lease.id)
            let before = try await store.range(.prefix("/"))
            await store.close()
            #expect(FileManager.default.fileExists(atPath: directory + "/snapshot"), "the small threshold must have forced a snapshot")

            let reopened = try EmbeddedStore(directory: directory, options: options)
            let after = try await reopened.range(.prefix("/"))
            #expect(after.revision == before.revision)
            #expect(after.keyValues == before.keyValues)
            #expect(try await reopened.keepAlive(lease.id) == 60, "leases survive a restart")
            try await reopened.revokeLease(lease.id)
            #expect(try await reopened.get("/leased") == nil)
            await reopened.close()
        }
    }

    @Test func aTornLogTailIsCutAtTheLastWholeRecord() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory)
            for index in 0..<10 { try await store.put("/k/\(index)", "\(index)") }
            await store.close()

            // A crash mid-append leaves a partial record: a length that runs past the end.
            let wal = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/wal"))
            try wal.seekToEnd()
            try wal.write(contentsOf: Data([200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]))
            try wal.close()

            let reopened = try EmbeddedStore(directory: directory)
            #expect(try await reopened.range(.prefix("/k/")).keyValues.count == 10)
            try await reopened.put("/k/after", "tail")
            await reopened.close()
            let again = try EmbeddedStore(directory: directory)
            #expect(try await again.get("/k/after")?.text == "tail")
            #expect(try await again.range(.prefix("/k/")).keyValues.count == 11)
            await again.close()
        }
    }

    @Test func aCorruptRecordEndsReplayWithoutCrashing() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory)
            for index in 0..<5 { try await store.put("/k/\(index)", "\(index)") }
            await store.close()
            // Flip a byte in the last record's payload: its checksum no longer matches.
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/wal")))
            bytes[bytes.count - 3] ^= 0xFF
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/wal"))
            let reopened = try EmbeddedStore(directory: directory)
            #expect(try await reopened.range(.prefix("/k/")).keyValues.map(\.text) == ["0", "1", "2", "3"])
            await reopened.close()
        }
    }

    @Test func aSecondOpenOfTheSameDirectoryIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory)
            #expect {
                _ = try EmbeddedStore(directory: directory)
            } throws: { error in
                "\(error)".contains("another Hive process")
            }
            await store.close()
            let reopened = try EmbeddedStore(directory: directory)
            await reopened.close()
        }
    }

    @Test func aWatchResumesAfterRestartFromTheLog() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory)
            let mark = try await store.put("/r/1", "one")
            try await store.put("/r/2", "two")
            await store.close()
            let reopened = try EmbeddedStore(directory: directory)
            var iterator = await reopened.watch(.prefix("/r/"), fromRevision: mark).makeAsyncIterator()
            let batch = try #require(try await iterator.next())
            #expect(batch.events.map(\.keyValue.key) == ["/r/1", "/r/2"])
            await reopened.close()
        }
    }

    @Test func aWatchFromBeyondTheKeptHistoryIsCompacted() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory, options: .init(historyLimit: 10))
            let first = try await store.put("/c/0", "0")
            for index in 1..<40 { try await store.put("/c/\(index)", "\(index)") }
            var iterator = await store.watch(.prefix("/c/"), fromRevision: first).makeAsyncIterator()
            await #expect {
                _ = try await iterator.next()
            } throws: { error in
                guard case StoreError.compacted(let requested, _) = error else { return false }
                return requested == first
            }
            // Recent history is still there.
            let current = try await store.range(.prefix("/c/")).revision
            var recent = await store.watch(.prefix("/c/"), fromRevision: current - 2).makeAsyncIterator()
            #expect(try await recent.next()?.events.count == 3)
            await store.close()
        }
    }

    @Test func closingEndsWatchesAndRefusesCalls() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory)
            var iterator = await store.watch(.prefix("/"), fromRevision: nil).makeAsyncIterator()
            await store.close()
            await #expect(throws: StoreError.closed) { _ = try await iterator.next() }
            await #expect(throws: StoreError.closed) { try await store.put("/x", "y") }
        }
    }

    /// A process writing to the store is killed with SIGKILL mid-stream; every
    /// write it had acknowledged must be there when the store reopens.
    @Test func killedMidWriteLosesNoAcknowledgedWrite() async throws {
        let hive = try hiveExecutable()
        try await withTemporaryDirectory { directory in
            for round in 0..<3 {
                let process = Process()
                process.executableURL = hive
                process.arguments = ["debug", "store-writer", "--directory", directory, "--snapshot-threshold", "16384"]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                // Kill after a different number of acknowledgements each round.
                let acknowledged = readAcknowledgements(from: output.fileHandleForReading, until: 150 + round * 97)
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                #expect(process.terminationReason == .uncaughtSignal)
                #expect(acknowledged.count >= 150)

                let store = try EmbeddedStore(directory: directory)
                let keys = try await store.range(.prefix("/w/")).keyValues
                let present = Dictionary(uniqueKeysWithValues: keys.map { ($0.key, $0.text) })
                let pairs = Set(try await store.range(.prefix("/pair/")).keyValues.map(\.key))
                for index in acknowledged {
                    #expect(present["/w/\(index)"] == "value-\(index)", "acknowledged write \(index) lost in round \(round)")
                }
                for index in 0..<(acknowledged.max() ?? 0) where index % 10 == 9 {
                    #expect(pairs.contains("/pair/\(index)"))
                }
                // Transactions are atomic: no half of a pair without the other.
                for key in pairs {
                    #expect(present[key.replacingOccurrences(of: "/pair/", with: "/w/")] != nil)
                }
                await store.close()
                try FileManager.default.removeItem(atPath: directory)
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
        }
    }

    private func readAcknowledgements(from handle: FileHandle, until target: Int) -> [Int] {
        var acknowledged: [Int] = []
        var buffer = ""
        while acknowledged.count < target {
            let data = handle.availableData
            if data.isEmpty { break }
            buffer += String(decoding: data, as: UTF8.self)
            while let newline = buffer.firstIndex(of: "\n") {
                let line = buffer[..<newline]
                if line.hasPrefix("ack "), let index = Int(line.dropFirst(4)) { acknowledged.append(index) }
                buffer = String(buffer[buffer.index(after: newline)...])
            }
        }
        return acknowledged
    }
}

/// The `hive` binary built next to the test bundle.
func hiveExecutable() throws -> URL {
    let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [products, products.deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent("hive")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    throw HiveBinaryMissing(searched: products.path)
}

struct HiveBinaryMissing: Error, CustomStringConvertible {
    var searched: String
    var description: String { "the hive executable was not found in \(searched); run the tests with `swift test`, which builds it" }
}
