// The embedded store: Hive's NSDB in one process, durable on local disk.
//
// It keeps etcd's data model (revisions, versions, leases, transactions,
// watches from a revision) so code written against `Store` behaves the same
// on a laptop sandbox and on a real etcd cluster.
//
// Invariants:
// - Every write is appended to the log (`StoreFiles`) and applied to the
//   key space writers plan against (`State.keys`), but readers and watchers
//   see it only once an fdatasync covers it (`LogSyncer`, group commit);
//   until then `State.pending` holds what it replaced, and reads answer
//   with that. The writer is acknowledged after that. A write that fails to
//   append changes nothing; a failed sync is seen by no one: its writes are
//   cut from the log, their callers get an error, watches end, and the
//   store refuses every later call (reopen it).
// - A read-only transaction that saw pending writes waits until they are durable.
// - All state lives in one `Mutex`; watchers are fed under it, so each
//   watcher sees revisions in order, without gaps, exactly once.
// - The log is replaced by a snapshot when it grows past
//   `Options.snapshotThreshold`. Watches can resume from any revision still in
//   the in-memory history (the log's records since the last snapshot after a
//   restart, up to `Options.historyLimit` revisions); older ones are compacted.
//
// Threads: any task may call any method. A timer on a private queue expires
// leases. Nothing here blocks on the network; a call blocks only for its
// append (and the awaited fdatasync).

import Dispatch
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class EmbeddedStore: Store {
    public struct Options: Sendable {
        /// Log size (bytes) that triggers a snapshot.
        public var snapshotThreshold: Int
        /// Revisions of history kept for watches that resume from the past.
        public var historyLimit: Int
        /// The most compares, or operations of one branch, a transaction may
        /// hold; unlimited by default. Set it to etcd's 128 to see code
        /// behave as it will on a cluster.
        public var maxOperationsPerTransaction: Int

        /// The log's fdatasync; tests put a failing one here.
        var syncLog: LogSyncer.Sync?

        public init(snapshotThreshold: Int = 64 << 20, historyLimit: Int = 100_000, maxOperationsPerTransaction: Int = .max) {
            self.snapshotThreshold = snapshotThreshold
            self.historyLimit = historyLimit
            self.maxOperationsPerTransaction = maxOperationsPerTransaction
        }
    }

    struct LeaseState {
        var ttl: Int64
        var deadline: ContinuousClock.Instant
        var keys: Set<String> = []
    }

    struct Watcher {
        var range: KeyRange
        var continuation: WatchStream.Continuation
    }

    /// A write appended and applied to `keys` that no sync covers yet.
    struct PendingWrite {
        var sequence: UInt64
        /// Where its record starts in the log.
        var logOffset: Int
        var revision: Revision
        var events: [WatchEvent]
        /// The keys it changed, as they were before it (nil: absent).
        var before: [String: KeyValue?]
    }

    struct State {
        /// Every write, durable or not: what transactions plan against.
        var keys = KeySpace()
        /// The revision of the last change; a new store starts at 1, as etcd does.
        var revision: Revision = 1
        /// The revision readers and watchers see: the last durable one.
        var visibleRevision: Revision = 1
        /// Writes not yet durable, oldest first.
        var pending: [PendingWrite] = []
        /// Why the store refuses every call (a failed sync).
        var failure: StoreError?
        /// Events at or below this revision are no longer kept.
        var compactRevision: Revision = 0
        var history: [(revision: Revision, events: [WatchEvent])] = []
        var watchers: [Int: Watcher] = [:]
        var nextWatcherID = 0
        var leases: [LeaseID: LeaseState] = [:]
        var writeSequence: UInt64 = 0
        var closed = false
    }

    public let directory: String
    let options: Options
    let files: StoreFiles
    let syncer: LogSyncer
    let state: Mutex<State>
    // DispatchSource is thread-safe; it is only scheduled, resumed and cancelled.
    nonisolated(unsafe) private let timer: any DispatchSourceTimer

    /// Opens the store in `directory`, creating it if needed, and replays its
    /// snapshot and log. Only one process may open a directory at a time.
    public init(directory: String, options: Options = Options()) throws {
        self.directory = directory
        self.options = options
        files = try StoreFiles(directory: directory)
        var initial = State()
        let now = ContinuousClock.now
        if let snapshot = try files.readSnapshot() {
            initial.revision = snapshot.revision
            initial.compactRevision = snapshot.revision
            for lease in snapshot.leases {
                initial.leases[lease.id] = LeaseState(ttl: lease.ttl, deadline: now + .seconds(lease.ttl))
            }
            for keyValue in snapshot.keyValues {
                initial.keys.set(keyValue)
                if keyValue.lease != 0 { initial.leases[keyValue.lease]?.keys.insert(keyValue.key) }
            }
        }
        for record in try files.openLog() where record.revision == 0 || record.revision > initial.revision {
            let (events, _) = Self.apply(record, to: &initial, now: now)
            Self.publish(events, at: record.revision, in: &initial, historyLimit: options.historyLimit)
        }
        initial.visibleRevision = initial.revision
        if let syncLog = options.syncLog {
            syncer = LogSyncer(logDescriptor: files.walDescriptor, sync: syncLog)
        } else {
            syncer = LogSyncer(logDescriptor: files.walDescriptor)
        }
        state = Mutex(initial)
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "hive.store.leases"))
        timer.schedule(deadline: .now() + .milliseconds(100), repeating: .milliseconds(100))
        timer.setEventHandler { [weak self] in self?.expireLeases() }
        timer.resume()
        syncer.setHandlers(LogSyncer.Handlers(
            durable: { [weak self] sequence in self?.publishDurable(upTo: sequence) },
            failed: { [weak self] code in self?.discardPending(LogSyncer.failureError(code)) }))
    }

    deinit {
        timer.cancel()
    }

    /// Closes the store (`closeDurably`); a failed final sync is logged as
    /// an error, since `Store.close()` cannot throw.
    public func close() async {
        do {
            try await closeDurably()
        } catch {
            Logger(label: "hive.store.embedded").error("closing the embedded store in \(directory): \(error)")
        }
    }

    /// Ends watches, syncs the log a last time and releases the directory.
    /// Throws when the log is not durable: the final fdatasync failed (or an
    /// earlier one did). Then the writes it did not cover were acknowledged
    /// to no one (their callers get the error), and they are cut from the
    /// log, as after any failed sync. Closing again does nothing.
    public func closeDurably() async throws {
        timer.cancel()
        let watchers = state.withLock { state -> [Watcher]? in
            guard !state.closed else { return nil }
            state.closed = true
            defer { state.watchers.removeAll() }
            return Array(state.watchers.values)
        }
        guard let watchers else { return }
        for watcher in watchers { watcher.continuation.finish(throwing: StoreError.closed) }
        let failure = syncer.close()
        let cut = state.withLock { state -> Bool in
            defer { files.closeFiles() }
            guard failure != nil, let first = state.pending.first else { return false }
            // The final sync failed: what it did not cover stays unseen after a restart too.
            files.cutLog(at: first.logOffset)
            state.pending.removeAll()
            return true
        }
        if let failure {
            var message = "the embedded store's log in \(directory) is not durable: fdatasync failed (\(String(cString: strerror(failure))))"
            if cut { message += "; the writes it did not cover were refused and cut from the log" }
            throw StoreError.unavailable(message)
        }
    }

    // MARK: Reads

    public func range(_ range: KeyRange) async throws -> RangeResult {
        try state.withLock { state in
            try state.checkUsable()
            return RangeResult(keyValues: Self.visibleKeyValues(in: range, of: state), revision: state.visibleRevision)
        }
    }

    /// The durable keys in a range: the key space with pending writes undone.
    static func visibleKeyValues(in range: KeyRange, of state: State) -> [KeyValue] {
        let latest = state.keys.keyValues(in: range)
        guard !state.pending.isEmpty else { return latest }
        var durable: [String: KeyValue?] = [:]
        // The oldest pending write to touch a key knows its durable value.
        for write in state.pending.reversed() {
            for (key, value) in write.before where range.contains(key) { durable[key] = value }
        }
        guard !durable.isEmpty else { return latest }
        var merged: [String: KeyValue] = [:]
        for keyValue in latest { merged[keyValue.key] = keyValue }
        for (key, value) in durable { merged[key] = value }
        return merged.values.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }

    // MARK: Writes

    @discardableResult
    public func put(_ key: String, value: [UInt8], lease: LeaseID) async throws -> Revision {
        let result = try await transaction(Transaction(success: [.put(key: key, value: value, lease: lease)]))
        return result.revision
    }

    @discardableResult
    public func delete(_ range: KeyRange) async throws -> (deleted: Int64, revision: Revision) {
        let result = try await transaction(Transaction(success: [.delete(range)]))
        guard case .delete(let deleted) = result.responses.first else { return (0, result.revision) }
        return (deleted, result.revision)
    }

    public var maxOperationsPerTransaction: Int { options.maxOperationsPerTransaction }

    public func transaction(_ transaction: Transaction) async throws -> TransactionResult {
        let largest = max(transaction.compares.count, transaction.success.count, transaction.failure.count)
        if largest > options.maxOperationsPerTransaction {
            throw StoreError.rejected(
                "too many operations in one transaction: \(largest), expected at most \(options.maxOperationsPerTransaction)")
        }
        let (result, sequence) = try state.withLock { state -> (TransactionResult, UInt64?) in
            try state.checkUsable()
            let succeeded = transaction.compares.allSatisfy { $0.holds(in: state.keys) }
            let operations = succeeded ? transaction.success : transaction.failure
            let (record, responses) = try Self.plan(operations, in: state)
            // What it read may include writes not yet durable: answer once they are.
            var sequence = state.pending.last?.sequence
            if !record.changes.isEmpty {
                sequence = try append(record, to: &state)
            }
            return (TransactionResult(succeeded: succeeded, revision: state.revision, responses: responses), sequence)
        }
        if let sequence { try await syncer.waitDurable(sequence) }
        return result
    }

    /// Works out what a branch changes, without changing anything.
    static func plan(_ operations: [Operation], in state: State) throws -> (LogRecord, [OperationResponse]) {
        let revision = state.revision + 1
        var record = LogRecord(revision: revision)
        var responses: [OperationResponse] = []
        // Keys written so far in this branch: nil marks a deletion.
        var pending: [String: KeyValue?] = [:]
        var putKeys: Set<String> = []
        var deletedRanges: [KeyRange] = []

        func current(_ range: KeyRange) -> [KeyValue] {
            var merged: [String: KeyValue] = [:]
            for keyValue in state.keys.keyValues(in: range) { merged[keyValue.key] = keyValue }
            for (key, value) in pending where range.contains(key) { merged[key] = value }
            return merged.values.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        }

        for operation in operations {
            switch operation {
            case .put(let key, let value, let lease):
                guard !putKeys.contains(key), !deletedRanges.contains(where: { $0.contains(key) }) else {
                    throw StoreError.rejected("duplicate key given in txn request: \(key)")
                }
                if lease != 0, state.leases[lease] == nil { throw StoreError.leaseNotFound(lease) }
                putKeys.insert(key)
                let previous = current(.key(key)).first
                pending[key] = KeyValue(
                    key: key, value: value, createRevision: previous?.createRevision ?? revision,
                    modRevision: revision, version: (previous?.version ?? 0) + 1, lease: lease)
                record.changes.append(.put(key: key, value: value, lease: lease))
                responses.append(.put(previous: previous))
            case .delete(let range):
                guard !putKeys.contains(where: { range.contains($0) }) else {
                    throw StoreError.rejected("duplicate key given in txn request: delete of \(range) overlaps a put")
                }
                deletedRanges.append(range)
                let doomed = current(range)
                for keyValue in doomed {
                    pending[keyValue.key] = .some(nil)
                    record.changes.append(.delete(key: keyValue.key))
                }
                responses.append(.delete(deleted: Int64(doomed.count)))
            case .get(let range):
                responses.append(.get(current(range)))
            }
        }
        return (record, responses)
    }

    /// Appends a record and applies it; returns its sequence for `waitDurable`.
    /// Called under the state lock.
    private func append(_ record: LogRecord, to state: inout State) throws -> UInt64 {
        let logOffset = files.walSize
        try files.append(record)
        state.writeSequence += 1
        syncer.noteWritten(state.writeSequence)
        let (events, before) = Self.apply(record, to: &state, now: .now)
        state.pending.append(PendingWrite(
            sequence: state.writeSequence, logOffset: logOffset, revision: record.revision, events: events, before: before))
        if files.walSize > options.snapshotThreshold, (try? takeSnapshot(of: state)) != nil {
            // The snapshot holds every write so far, on stable storage.
            publishPending(upTo: state.writeSequence, in: &state)
        }
        return state.writeSequence
    }

    /// Called by the syncer once the log is durable up to `sequence`.
    private func publishDurable(upTo sequence: UInt64) {
        state.withLock { publishPending(upTo: sequence, in: &$0) }
    }

    private func publishPending(upTo sequence: UInt64, in state: inout State) {
        while let write = state.pending.first, write.sequence <= sequence {
            state.pending.removeFirst()
            Self.publish(write.events, at: write.revision, in: &state, historyLimit: options.historyLimit)
        }
    }

    /// Called by the syncer when a sync failed: the writes it did not cover
    /// are seen by no one, now or after a restart (they are cut from the
    /// log), and the store refuses every later call.
    private func discardPending(_ error: StoreError) {
        let watchers = state.withLock { state -> [Watcher] in
            guard !state.closed, state.failure == nil else { return [] }
            state.failure = error
            if let first = state.pending.first { files.cutLog(at: first.logOffset) }
            state.pending.removeAll()
            defer { state.watchers.removeAll() }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.continuation.finish(throwing: error) }
    }

    private func takeSnapshot(of state: State) throws {
        let leases = state.leases.map { Lease(id: $0.key, ttl: $0.value.ttl) }
        try files.writeSnapshot(StoreFiles.Snapshot(
            revision: state.revision, keyValues: state.keys.allKeyValues(), leases: leases))
    }

    /// Applies a record to the key space and leases; returns its events and
    /// the values of the keys it changed from before. Used live and at replay.
    static func apply(
        _ record: LogRecord, to state: inout State, now: ContinuousClock.Instant
    ) -> (events: [WatchEvent], before: [String: KeyValue?]) {
        var before: [String: KeyValue?] = [:]
        for lease in record.grantedLeases {
            state.leases[lease.id] = LeaseState(ttl: lease.ttl, deadline: now + .seconds(lease.ttl))
        }
        var events: [WatchEvent] = []
        let revision = record.revision
        for change in record.changes {
            switch change {
            case .put(let key, let value, let lease):
                let previous = state.keys[key]
                if before[key] == nil { before[key] = .some(previous) }
                if let previous, previous.lease != 0, previous.lease != lease {
                    state.leases[previous.lease]?.keys.remove(key)
                }
                if lease != 0 { state.leases[lease]?.keys.insert(key) }
                let keyValue = KeyValue(
                    key: key, value: value, createRevision: previous?.createRevision ?? revision,
                    modRevision: revision, version: (previous?.version ?? 0) + 1, lease: lease)
                state.keys.set(keyValue)
                events.append(WatchEvent(kind: .put, keyValue: keyValue))
            case .delete(let key):
                guard let previous = state.keys.remove(key) else { continue }
                if before[key] == nil { before[key] = .some(previous) }
                if previous.lease != 0 { state.leases[previous.lease]?.keys.remove(key) }
                events.append(WatchEvent(kind: .delete, keyValue: KeyValue(
                    key: key, value: [], createRevision: 0, modRevision: revision, version: 0, lease: 0)))
            }
        }
        for lease in record.revokedLeases { state.leases.removeValue(forKey: lease) }
        if !events.isEmpty { state.revision = revision }
        return (events, before)
    }

    /// Makes a record's events visible: to reads, to the history, to the watchers.
    static func publish(_ events: [WatchEvent], at revision: Revision, in state: inout State, historyLimit: Int) {
        guard !events.isEmpty else { return }
        state.visibleRevision = revision
        state.history.append((revision, events))
        if state.history.count > historyLimit + historyLimit / 4 {
            let excess = state.history.count - historyLimit
            state.compactRevision = state.history[excess - 1].revision
            state.history.removeFirst(excess)
        }
        for watcher in state.watchers.values {
            let matching = events.filter { watcher.range.contains($0.keyValue.key) }
            if !matching.isEmpty {
                watcher.continuation.yield(WatchBatch(events: matching, revision: revision))
            }
        }
    }

    // MARK: Watches

    public func watch(_ range: KeyRange, fromRevision: Revision?) async -> WatchStream {
        let (stream, continuation) = WatchStream.makeStream()
        let watcherID: Int? = state.withLock { state in
            guard !state.closed, state.failure == nil else {
                continuation.finish(throwing: state.failure ?? StoreError.closed)
                return nil
            }
            let start = fromRevision ?? state.visibleRevision + 1
            if start <= state.compactRevision {
                continuation.finish(throwing: StoreError.compacted(requested: start, compactRevision: state.compactRevision))
                return nil
            }
            // Replay kept history in batches of whole revisions.
            var first = state.history.partitioningIndex { $0.revision >= start }
            while first < state.history.count {
                var events: [WatchEvent] = []
                var last = state.visibleRevision
                while first < state.history.count, events.count < 1000 {
                    events += state.history[first].events.filter { range.contains($0.keyValue.key) }
                    last = state.history[first].revision
                    first += 1
                }
                if !events.isEmpty { continuation.yield(WatchBatch(events: events, revision: last)) }
            }
            let id = state.nextWatcherID
            state.nextWatcherID += 1
            state.watchers[id] = Watcher(range: range, continuation: continuation)
            return id
        }
        if let watcherID {
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLock { $0.watchers.removeValue(forKey: watcherID) }
            }
        }
        return stream
    }

    // MARK: Leases

    public func grantLease(ttl: Int64) async throws -> Lease {
        guard ttl >= 1 else { throw StoreError.rejected("lease TTL must be at least 1 second, got \(ttl)") }
        let (lease, sequence) = try state.withLock { state -> (Lease, UInt64) in
            try state.checkUsable()
            var id: LeaseID
            repeat { id = Int64.random(in: 1...Int64.max) } while state.leases[id] != nil
            let lease = Lease(id: id, ttl: ttl)
            return (lease, try append(LogRecord(grantedLeases: [lease]), to: &state))
        }
        try await syncer.waitDurable(sequence)
        // The TTL counts from the grant the caller sees, not from before a
        // slow fsync: a short lease must not lapse before it is returned.
        state.withLock { state in
            if var current = state.leases[lease.id] {
                current.deadline = .now + .seconds(ttl)
                state.leases[lease.id] = current
            }
        }
        return lease
    }

    @discardableResult
    public func keepAlive(_ lease: LeaseID) async throws -> Int64 {
        try state.withLock { state in
            try state.checkUsable()
            guard var current = state.leases[lease] else { throw StoreError.leaseNotFound(lease) }
            current.deadline = .now + .seconds(current.ttl)
            state.leases[lease] = current
            return current.ttl
        }
    }

    public func revokeLease(_ lease: LeaseID) async throws {
        let sequence = try state.withLock { state -> UInt64 in
            try state.checkUsable()
            guard state.leases[lease] != nil else { throw StoreError.leaseNotFound(lease) }
            return try append(Self.revocation(of: [lease], in: state), to: &state)
        }
        try await syncer.waitDurable(sequence)
    }

    static func revocation(of leases: [LeaseID], in state: State) -> LogRecord {
        let keys = leases.flatMap { state.leases[$0]?.keys ?? [] }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return LogRecord(
            revision: keys.isEmpty ? 0 : state.revision + 1,
            changes: keys.map { .delete(key: $0) },
            revokedLeases: leases)
    }

    private func expireLeases() {
        let now = ContinuousClock.now
        let wrote = state.withLock { state -> Bool in
            guard !state.closed, state.failure == nil else { return false }
            let expired = state.leases.filter { $0.value.deadline <= now }.map(\.key)
            guard !expired.isEmpty else { return false }
            // A failed append leaves the leases in place; the next tick retries.
            return (try? append(Self.revocation(of: expired, in: state), to: &state)) != nil
        }
        if wrote { syncer.requestSync() }
    }
}

extension Array {
    /// The first index whose element satisfies `predicate`, for an array
    /// partitioned so that all non-matching elements come first.
    /// - Complexity: O(log n)
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if predicate(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}

extension EmbeddedStore.State {
    func checkUsable() throws {
        if closed { throw StoreError.closed }
        if let failure { throw failure }
    }
}
