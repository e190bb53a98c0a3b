import Dispatch
import Foundation
import Synchronization
import Testing
@testable import HiveStore
#if canImport(Glibc)
import Glibc
#endif

/// An fdatasync the test holds and then lets succeed or fail.
final class SyncGate: Sendable {
    private let armed = Mutex(false)
    private let failing = Mutex(false)
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)

    /// The next syncs wait at the gate; once released they fail with EIO if `fail`.
    func arm(fail: Bool) {
        failing.withLock { $0 = fail }
        armed.withLock { $0 = true }
    }

    /// An embedded store in `directory` whose log syncs go through a new gate.
    static func store(in directory: String) throws -> (EmbeddedStore, SyncGate) {
        let gate = SyncGate()
        var options = EmbeddedStore.Options()
        options.syncLog = gate.sync
        return (try EmbeddedStore(directory: directory, options: options), gate)
    }

    var sync: LogSyncer.Sync {
        { descriptor in
            if self.armed.withLock({ $0 }) {
                self.entered.signal()
                self.release.wait()
                if self.failing.withLock({ $0 }) { return EIO }
            }
            return fdatasync(descriptor) == 0 ? 0 : errno
        }
    }
}

@Suite("Embedded store: visible only once durable")
struct EmbeddedSyncFailureTests {
    @Test func aWriteIsNotReadableBeforeItsSyncAndAFailedSyncIsSeenByNoOne() async throws {
        try await withTemporaryDirectory { directory in
            let (store, gate) = try SyncGate.store(in: directory)
            try await store.put("/k/a", "1")
            let watch = await store.watch(.prefix("/k/"), fromRevision: nil)
            let seen = Task { () -> (events: [String], ended: (any Error)?) in
                var events: [String] = []
                do {
                    for try await batch in watch { events += batch.events.map(\.keyValue.key) }
                    return (events, nil)
                } catch {
                    return (events, error)
                }
            }

            gate.arm(fail: true)
            let write = Task { try await store.put("/k/b", "2") }
            try await blocking { gate.entered.wait() }
            // The record is in the log, its sync under way: no reader sees it yet.
            #expect(try await store.get("/k/b") == nil)
            #expect(try await store.range(.prefix("/k/")).keyValues.map(\.key) == ["/k/a"])
            gate.release.signal()

            await #expect(throws: StoreError.self) { try await write.value }
            await #expect(throws: StoreError.self) { try await store.get("/k/b") }
            let (events, ended) = await seen.value
            #expect(events == [], "a watcher must not hear of a write that is not durable")
            #expect(ended != nil, "the watch ends with the store's failure")
            await #expect(throws: StoreError.self, "closing says the log is not durable") { try await store.closeDurably() }

            // Reopened, the store holds what was durable and nothing else.
            let reopened = try EmbeddedStore(directory: directory)
            #expect(try await reopened.range(.prefix("/k/")).keyValues.map(\.text) == ["1"])
            await reopened.close()
        }
    }

    @Test func aFailedFinalSyncAtCloseIsReportedAndItsWritesAreNotAcknowledged() async throws {
        try await withTemporaryDirectory { directory in
            let (store, gate) = try SyncGate.store(in: directory)
            try await store.put("/k/a", "1")
            gate.arm(fail: true)
            // A write whose sync is held at the gate, then close while it waits.
            let write = Task { try await store.put("/k/b", "2") }
            try await blocking { gate.entered.wait() }
            let closing = Task { try await store.closeDurably() }
            gate.release.signal()
            // Close's own sync (if the held one failed first, none is run: the store already failed).
            gate.release.signal()
            await #expect(throws: StoreError.self) { try await write.value }
            await #expect {
                try await closing.value
            } throws: { error in
                "\(error)".contains("not durable") && "\(error)".contains(directory)
            }
            // The write no one was told of is not there after a restart.
            let reopened = try EmbeddedStore(directory: directory)
            #expect(try await reopened.range(.prefix("/k/")).keyValues.map(\.text) == ["1"])
            try await reopened.closeDurably()
        }
        try await withTemporaryDirectory { directory in
            // Only the final sync fails: close throws, and `close()` (which cannot) logs it.
            let (store, gate) = try SyncGate.store(in: directory)
            try await store.put("/k/a", "1")
            gate.arm(fail: true)
            gate.release.signal()
            await #expect {
                try await store.closeDurably()
            } throws: { error in
                "\(error)".contains("fdatasync failed")
            }
            try await blocking { gate.entered.wait() }
            try await store.closeDurably()  // closing again does nothing
            let reopened = try EmbeddedStore(directory: directory)
            #expect(try await reopened.get("/k/a")?.text == "1", "what was durable before stays")
            try await reopened.closeDurably()
        }
    }

    @Test func aWriteBecomesVisibleWhenItsSyncCompletes() async throws {
        try await withTemporaryDirectory { directory in
            let (store, gate) = try SyncGate.store(in: directory)
            gate.arm(fail: false)
            let write = Task { try await store.put("/k/b", "2") }
            try await blocking { gate.entered.wait() }
            #expect(try await store.get("/k/b") == nil)
            gate.release.signal()
            let revision = try await write.value
            let read = try await store.range(.key("/k/b"))
            #expect(read.keyValues.map(\.text) == ["2"])
            #expect(read.revision >= revision)
            // Let later syncs (close's own) through.
            for _ in 0..<8 { gate.release.signal() }
            await store.close()
        }
    }
}
