import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Group commit for the write-ahead log: writers append under the store's
/// mutex, then wait here until an fdatasync covers their record. One
/// fdatasync runs at a time on a private queue; writers that arrive while it
/// runs are covered by the next one, so a burst of writes costs a few syncs.
final class LogSyncer: Sendable {
    private struct State {
        var written: UInt64 = 0
        var synced: UInt64 = 0
        var syncing = false
        var closed = false
        var waiters: [(sequence: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "hive.store.sync")
    private let descriptor: Int32

    /// Takes its own descriptor of the log so closing the store's does not race a sync.
    init(logDescriptor: Int32) {
        descriptor = dup(logDescriptor)
    }

    /// Called under the store's mutex after each append.
    func noteWritten(_ sequence: UInt64) {
        state.withLock { $0.written = max($0.written, sequence) }
    }

    /// Returns once the record with this sequence number is on stable storage.
    func waitDurable(_ sequence: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let action: Int = state.withLock { state in
                if state.synced >= sequence || state.closed { return 0 }
                state.waiters.append((sequence, continuation))
                if state.syncing { return 1 }
                state.syncing = true
                return 2
            }
            switch action {
            case 0: continuation.resume()
            case 2: queue.async { self.syncLoop() }
            default: break
            }
        }
    }

    /// Asks for a sync without waiting (lease expiry writes).
    func requestSync() {
        let start = state.withLock { state -> Bool in
            guard !state.syncing, !state.closed, state.written > state.synced else { return false }
            state.syncing = true
            return true
        }
        if start { queue.async { self.syncLoop() } }
    }

    private func syncLoop() {
        while true {
            let target = state.withLock { $0.written }
            let failure = fdatasync(descriptor) == 0 ? 0 : errno
            let (ready, again) = state.withLock { state in
                if failure == 0 { state.synced = max(state.synced, target) }
                let ready = state.waiters.filter { $0.sequence <= target }
                state.waiters.removeAll { $0.sequence <= target }
                let again = !state.waiters.isEmpty && failure == 0
                if !again { state.syncing = false }
                return (ready, again)
            }
            var stillWaiting: [(sequence: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
            if failure != 0 {
                stillWaiting = state.withLock { state in
                    defer { state.waiters.removeAll() }
                    return state.waiters
                }
            }
            for waiter in ready + stillWaiting {
                if failure == 0 {
                    waiter.continuation.resume()
                } else {
                    waiter.continuation.resume(throwing: StoreError.unavailable(
                        "fdatasync of the embedded store's log failed: \(String(cString: strerror(failure)))"))
                }
            }
            if !again { return }
        }
    }

    /// Final sync at close; every waiter is released.
    func close() {
        queue.sync {
            _ = fdatasync(descriptor)
            let waiters = state.withLock { state in
                state.closed = true
                state.synced = state.written
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters { waiter.continuation.resume() }
            Glibc.close(descriptor)
        }
    }
}
