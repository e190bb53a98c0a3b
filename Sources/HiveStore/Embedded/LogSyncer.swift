import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Group commit for the write-ahead log: writers append under the store's
/// mutex, then wait here until an fdatasync covers their record. One
/// fdatasync runs at a time on a private queue; writers that arrive while it
/// runs are covered by the next one, so a burst of writes costs a few syncs.
///
/// After each sync, and before any waiter is released, `durable` is told up
/// to which sequence the log is on stable storage (the store makes those
/// writes visible) or `failed` that the sync failed (the store discards
/// them). A failed sync is final: every later wait for a record it did not
/// cover throws.
final class LogSyncer: Sendable {
    /// fdatasync of a descriptor: 0, or the errno of its failure.
    typealias Sync = @Sendable (Int32) -> Int32

    struct Handlers {
        var durable: @Sendable (UInt64) -> Void
        var failed: @Sendable (Int32) -> Void
    }

    private struct State {
        var written: UInt64 = 0
        var synced: UInt64 = 0
        var syncing = false
        var closed = false
        /// The errno of a failed sync; nothing is durable after it.
        var failure: Int32?
        var handlers: Handlers?
        var waiters: [(sequence: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "hive.store.sync")
    private let descriptor: Int32
    private let sync: Sync

    /// Takes its own descriptor of the log so closing the store's does not race a sync.
    init(logDescriptor: Int32, sync: @escaping Sync = { fdatasync($0) == 0 ? 0 : errno }) {
        descriptor = dup(logDescriptor)
        self.sync = sync
    }

    func setHandlers(_ handlers: Handlers) {
        state.withLock { $0.handlers = handlers }
    }

    static func failureError(_ code: Int32) -> StoreError {
        StoreError.unavailable("fdatasync of the embedded store's log failed: \(String(cString: strerror(code)))")
    }

    /// Called under the store's mutex after each append.
    func noteWritten(_ sequence: UInt64) {
        state.withLock { $0.written = max($0.written, sequence) }
    }

    /// Returns once the record with this sequence number is on stable storage.
    func waitDurable(_ sequence: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let action: Int = state.withLock { state in
                if state.synced >= sequence { return 0 }
                if state.failure != nil { return 3 }
                // Closed: the final sync covered everything written (else `failure` is set).
                if state.closed { return 0 }
                state.waiters.append((sequence, continuation))
                if state.syncing { return 1 }
                state.syncing = true
                return 2
            }
            switch action {
            case 0: continuation.resume()
            case 2: queue.async { self.syncLoop() }
            case 3: continuation.resume(throwing: Self.failureError(state.withLock { $0.failure ?? EIO }))
            default: break
            }
        }
    }

    /// Asks for a sync without waiting (lease expiry writes).
    func requestSync() {
        let start = state.withLock { state -> Bool in
            guard !state.syncing, !state.closed, state.failure == nil, state.written > state.synced else { return false }
            state.syncing = true
            return true
        }
        if start { queue.async { self.syncLoop() } }
    }

    private func syncLoop() {
        while true {
            let (target, handlers) = state.withLock { ($0.written, $0.handlers) }
            let failure = sync(descriptor)
            // The store makes the writes visible (or discards them) before anyone hears back.
            if failure == 0 { handlers?.durable(target) } else { handlers?.failed(failure) }
            let (ready, again) = state.withLock { state in
                if failure == 0 { state.synced = max(state.synced, target) } else { state.failure = failure }
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
                    waiter.continuation.resume(throwing: Self.failureError(failure))
                }
            }
            if !again { return }
        }
    }

    /// Final sync at close (after a sync already under way). Every waiter is
    /// released: with success when the log is durable up to its record, with
    /// the failure otherwise. Returns the errno of the failed sync (this one,
    /// or an earlier one that left writes undurable), nil when everything
    /// written is on stable storage.
    @discardableResult
    func close() -> Int32? {
        queue.sync {
            let earlier = state.withLock { $0.failure }
            let failure = earlier ?? { let code = sync(descriptor); return code == 0 ? nil : code }()
            let waiters = state.withLock { state in
                state.closed = true
                if let failure { state.failure = failure } else { state.synced = state.written }
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters {
                if let failure {
                    waiter.continuation.resume(throwing: Self.failureError(failure))
                } else {
                    waiter.continuation.resume()
                }
            }
            Glibc.close(descriptor)
            return failure
        }
    }
}
