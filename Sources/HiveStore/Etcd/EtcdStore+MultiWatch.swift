// Many ranges on few gateway streams. An agent watches one range per
// device, chain or group it has loaded; a stream each would be hundreds of
// connections per agent, thousands of watch streams per etcd member.
//
// The gateway reads a watch request's body as a sequence of create
// requests, so one `POST /v3/watch` can create many watchers. But Go's
// HTTP/1.1 server discards what a handler has not yet read of a request
// body once the handler starts its response (golang/go#15527), and the
// gateway answers the first create while it still reads the others: when
// its reading falls behind (a loaded machine), the creates after that point
// are lost without an error. So a stream checks that etcd confirmed every
// watcher it asked for; when confirmations stop short for
// `watchCreationStall`, the ranges not confirmed go on a new stream, and
// this one keeps (and maps events for) only those confirmed.
//
// Ranges added later go on a new stream of their own, so a growth does not
// re-create what is already watched; when growths have opened
// `maxWatchStreams` streams, the next one ends every stream and puts all
// ranges back on as few as hold them (`maxRangesPerWatchStream` each). A
// stream with no confirmation at all for `watchFirstConfirmation` is a
// member not answering: it is tried on the next.
//
// Each range has one `WatchCursor` and is followed by one stream at a time,
// so re-creating a stream (a member's loss, a consolidation) resumes each
// range exactly where it was; etcd orders events within a watcher only, so
// a batch's revision is a resume point for its own range.

import HiveHTTP
import NIOHTTP1
import Synchronization

extension EtcdStore {
    /// More streams than this for one multi-range watch, and a growth puts all its ranges back on one.
    static let maxWatchStreams = 8
    /// Create requests per stream: keeps a body well under what the gateway reads in one go.
    static let maxRangesPerWatchStream = 400
    /// No confirmation for this long, with some still due: the rest of the body was not read.
    static let watchCreationStall = Duration.seconds(2)
    /// No confirmation at all for this long: try the next member.
    static let watchFirstConfirmation = Duration.seconds(15)

    public func watch(_ ranges: [WatchedRange]) async -> MultiWatch {
        let (stream, continuation) = WatchStream.makeStream()
        let watched = WatchedRanges(ranges)
        let started: Bool = state.withLock { state in
            guard !state.closed else { return false }
            let id = state.nextTaskID
            state.nextTaskID += 1
            let task = Task {
                await self.runWatch(watched, into: continuation)
                self.state.withLock { _ = $0.tasks.removeValue(forKey: id) }
            }
            state.tasks[id] = task
            continuation.onTermination = { _ in task.cancel() }
            return true
        }
        if !started { continuation.finish(throwing: StoreError.closed) }
        return MultiWatch(events: stream) { watched.add($0) }
    }

    enum PassEnd { case consumerGone, regroup }

    enum MultiWatchStep {
        /// Ranges to put on a stream; `grown` when `MultiWatch.add` brought them.
        case unplaced([Int], grown: Bool)
        case consumerGone
    }

    private func runWatch(_ watched: WatchedRanges, into continuation: WatchStream.Continuation) async {
        do {
            try checkUsable()
            // One pass per set of streams; a pass ends when its ranges are to go back on a few.
            while true {
                let next = try await withThrowingTaskGroup(of: MultiWatchStep.self) { group -> PassEnd in
                    // Streams growths opened this pass (not a regrouping's, not a stall's remnants).
                    var grownStreams = 0
                    group.addTask { try await watched.nextUnplaced() }
                    while let step = try await group.next() {
                        guard case .unplaced(let indexes, let grown) = step else {
                            group.cancelAll()
                            return .consumerGone
                        }
                        if grown {
                            if grownStreams >= Self.maxWatchStreams {
                                group.cancelAll()
                                return .regroup
                            }
                            grownStreams += 1
                        }
                        for start in stride(from: 0, to: indexes.count, by: Self.maxRangesPerWatchStream) {
                            let part = Array(indexes[start..<min(start + Self.maxRangesPerWatchStream, indexes.count)])
                            group.addTask {
                                try await self.followStream(part, watched, into: continuation)
                                return .consumerGone
                            }
                        }
                        group.addTask { try await watched.nextUnplaced() }
                    }
                    return .consumerGone
                }
                guard next == .regroup else { return }
                // Only now: every stream of the pass has ended, none can hand back ranges any more.
                watched.placeAllAgain()
            }
        } catch {
            finish(continuation, after: error)
        }
    }

    /// Follows some ranges on one stream, from member to member, until the
    /// consumer goes away (returns) or the watch fails (throws).
    private func followStream(
        _ indexes: [Int], _ watched: WatchedRanges, into continuation: WatchStream.Continuation
    ) async throws {
        var indexes = indexes
        try await followAcrossMembers({ ["ranges": "\(indexes.count)"] }) { endpoint in
            try await follow(&indexes, watched, on: endpoint, into: continuation)
        }
    }

    enum StreamWatcherOutcome {
        case ended(StreamEnd)
        /// Confirmations stopped short: the rest of the body was not read.
        case stalled
        /// Every watcher asked for was confirmed.
        case confirmed
        /// Not one confirmation for `watchFirstConfirmation`: the member does not answer.
        case unanswered
    }

    /// Follows one stream on one member. A stall leaves `indexes` holding only the confirmed ranges.
    private func follow(
        _ indexes: inout [Int], _ watched: WatchedRanges, on endpoint: HTTPEndpoint,
        into continuation: WatchStream.Continuation
    ) async throws -> StreamEnd {
        var body: [UInt8] = []
        for (range, next) in watched.startPoints(indexes) {
            let (key, rangeEnd) = Self.wireBounds(range)
            body += try EtcdJSON.encode(EtcdJSON.WatchRequest(create: .init(
                key: key, rangeEnd: rangeEnd, startRevision: EtcdJSON.Int64Value(next), progressNotify: false)))
            body.append(UInt8(ascii: "\n"))
        }
        let request = HTTPRequest(path: "/v3/watch", body: body, headers: [("Grpc-Metadata-hasleader", "true")])
        let confirmations = WatcherConfirmations(expected: indexes.count)
        let asked = indexes
        return try await withThrowingTaskGroup(of: StreamWatcherOutcome.self) { group in
            group.addTask {
                .ended(try await self.read(request, on: endpoint, asked, watched, confirmations, into: continuation))
            }
            group.addTask { await confirmations.waitForStallOrAll() }
            defer { group.cancelAll() }
            while let outcome = try await group.next() {
                switch outcome {
                case .ended(let end):
                    return end
                case .confirmed:
                    break
                case .unanswered:
                    return .lost("\(endpoint) confirmed no watcher within \(Self.watchFirstConfirmation)", established: false)
                case .stalled:
                    let kept = confirmations.giveUpOnTheRest()
                    guard kept < asked.count else { break }
                    watchCreationShortfalls.add(1, ordering: .relaxed)
                    logger.debug("etcd watch stream confirmed part of its ranges; the rest go on a new stream", metadata: [
                        "endpoint": "\(endpoint)", "confirmed": "\(kept)", "asked": "\(asked.count)",
                    ])
                    watched.placeAgain(Array(asked[kept...]))
                    indexes = Array(asked[..<kept])
                }
            }
            return .lost("\(endpoint) ended the watch stream", established: true)
        }
    }

    private func read(
        _ request: HTTPRequest, on endpoint: HTTPEndpoint, _ indexes: [Int], _ watched: WatchedRanges,
        _ confirmations: WatcherConfirmations, into continuation: WatchStream.Continuation
    ) async throws -> StreamEnd {
        var established = false
        // Watchers are created in the order of the requests; later messages name them by id.
        var indexOfWatcher: [Int64: Int] = [:]
        do {
            var status = HTTPResponseStatus.ok
            var errorBody: [UInt8] = []
            var lines = LineSplitter()
            for try await event in try await http.stream(request, to: endpoint) {
                switch event {
                case .head(let head):
                    status = head.status
                case .body(let chunk) where status != .ok:
                    errorBody += chunk.readableBytesView
                case .body(let chunk):
                    for line in lines.append(Array(chunk.readableBytesView)) {
                        let message = try EtcdJSON.decode(
                            EtcdJSON.StreamMessage<EtcdJSON.WatchResponse>.self, from: line, what: "/v3/watch")
                        let id = message.result?.watchID.orZero ?? 0
                        let index: Int
                        if message.result?.created == true {
                            // A confirmation that comes after this stream gave up on it: its range is elsewhere.
                            guard let position = confirmations.confirm() else { continue }
                            index = indexes[position]
                            indexOfWatcher[id] = index
                        } else if let known = indexOfWatcher[id] {
                            index = known
                        } else {
                            if let error = message.error { return .lost(error.message, established: established) }
                            continue
                        }
                        switch watched.receive(message, at: index) {
                        case .ignore:
                            break
                        case .established:
                            established = true
                        case .deliver(let batch):
                            // Progress notices claim nothing across ranges: only events go on.
                            if !batch.events.isEmpty, case .terminated = continuation.yield(batch) { return .consumerGone }
                        case .compacted(let error):
                            throw error
                        case .lost(let reason):
                            return .lost(reason, established: established)
                        }
                    }
                }
            }
            try Task.checkCancellation()
            guard status == .ok else {
                let reply = MemberReply(status: status, body: errorBody, endpoint: endpoint, followsUncertainAttempt: false)
                if let unavailable = Self.memberUnavailable(reply) {
                    return .lost(unavailable.reason, established: false)
                }
                throw Self.storeError(for: reply, path: "/v3/watch", lease: 0, revision: 0)
            }
            return .lost("\(endpoint) ended the watch stream", established: established)
        } catch let error as HTTPClientError {
            if error.kind == .shutDown { throw StoreError.closed }
            return .lost("\(error)", established: established)
        }
    }
}

/// The confirmations (etcd's `created`) one stream has had for the watchers
/// it asked for, shared by the stream's reader and its stall check.
final class WatcherConfirmations: Sendable {
    private struct State {
        /// Confirmations to map; lowered to `confirmed` when the stream gives up on the rest.
        var limit: Int
        var confirmed = 0
        var lastConfirmation = ContinuousClock.now
    }

    private let state: Mutex<State>

    init(expected: Int) { state = Mutex(State(limit: expected)) }

    /// A confirmation arrived: the position of the request it confirms, or
    /// nil when the stream has given up on it.
    func confirm() -> Int? {
        state.withLock { state in
            guard state.confirmed < state.limit else { return nil }
            defer { state.confirmed += 1 }
            state.lastConfirmation = .now
            return state.confirmed
        }
    }

    /// Stops mapping confirmations; returns how many were had.
    func giveUpOnTheRest() -> Int {
        state.withLock { state in
            state.limit = state.confirmed
            return state.confirmed
        }
    }

    /// Returns `.confirmed` once every watcher is; `.stalled` when, after
    /// a first confirmation, none came for `watchCreationStall`;
    /// `.unanswered` when none came at all for `watchFirstConfirmation`.
    fileprivate func waitForStallOrAll() async -> EtcdStore.StreamWatcherOutcome {
        let started = ContinuousClock.now
        while true {
            let outcome: EtcdStore.StreamWatcherOutcome? = state.withLock { state in
                if state.confirmed >= state.limit { return .confirmed }
                if state.confirmed == 0 {
                    return ContinuousClock.now - started >= EtcdStore.watchFirstConfirmation ? .unanswered : nil
                }
                return ContinuousClock.now - state.lastConfirmation >= EtcdStore.watchCreationStall ? .stalled : nil
            }
            if let outcome { return outcome }
            do { try await Task.sleep(for: .milliseconds(200)) } catch { return .confirmed }
        }
    }
}

/// The ranges of a multi-range watch with a cursor each, shared by the
/// watch's streams and `MultiWatch.add`; and the ranges waiting for a stream.
final class WatchedRanges: Sendable {
    struct Entry {
        var range: KeyRange
        var cursor: WatchCursor
    }

    private struct State {
        var entries: [Entry]
        var unplaced: [Int]
        var grown = false
        var waiter: CheckedContinuation<Placement, any Error>?

        mutating func take() -> Placement {
            defer { unplaced = []; grown = false }
            return Placement(indexes: unplaced, grown: grown)
        }
    }

    /// Ranges to put on a stream; `grown` when `MultiWatch.add` brought some.
    struct Placement {
        var indexes: [Int]
        var grown: Bool
    }

    private let state: Mutex<State>

    init(_ ranges: [WatchedRange]) {
        state = Mutex(State(
            entries: ranges.map { Entry(range: $0.range, cursor: WatchCursor(next: $0.from)) },
            unplaced: Array(ranges.indices)))
    }

    var count: Int { state.withLock { $0.entries.count } }

    func startPoints(_ indexes: [Int]) -> [(KeyRange, Revision)] {
        state.withLock { state in indexes.map { (state.entries[$0].range, state.entries[$0].cursor.next) } }
    }

    func add(_ ranges: [WatchedRange]) {
        place(ranges: ranges, grown: true)
    }

    /// Ranges a stream did not get confirmed: onto another.
    func placeAgain(_ indexes: [Int]) {
        guard !indexes.isEmpty else { return }
        hand { state in state.unplaced += indexes }
    }

    /// Every range, to go back on one stream.
    func placeAllAgain() {
        hand { state in state.unplaced = Array(state.entries.indices) }
    }

    private func place(ranges: [WatchedRange], grown: Bool) {
        hand { state in
            let first = state.entries.count
            state.entries += ranges.map { Entry(range: $0.range, cursor: WatchCursor(next: $0.from)) }
            state.unplaced += Array(first..<state.entries.count)
            state.grown = state.grown || grown
        }
    }

    /// Changes the unplaced ranges and hands them to a waiting stream starter.
    private func hand(_ change: (inout State) -> Void) {
        let handed: (CheckedContinuation<Placement, any Error>, Placement)? = state.withLock { state in
            change(&state)
            guard let waiter = state.waiter, !state.unplaced.isEmpty else { return nil }
            state.waiter = nil
            return (waiter, state.take())
        }
        if let (waiter, placement) = handed { waiter.resume(returning: placement) }
    }

    /// The next ranges waiting for a stream; throws when the task is cancelled.
    func nextUnplaced() async throws -> EtcdStore.MultiWatchStep {
        let placement = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Placement, any Error>) in
                enum Now { case take(Placement), cancelled, wait }
                let now: Now = state.withLock { state in
                    if Task.isCancelled { return .cancelled }
                    if !state.unplaced.isEmpty { return .take(state.take()) }
                    state.waiter = waiter
                    return .wait
                }
                switch now {
                case .take(let placement): waiter.resume(returning: placement)
                case .cancelled: waiter.resume(throwing: CancellationError())
                case .wait: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
        return .unplaced(placement.indexes, grown: placement.grown)
    }

    func receive(_ message: EtcdJSON.StreamMessage<EtcdJSON.WatchResponse>, at index: Int) -> WatchCursor.Action {
        state.withLock { $0.entries[index].cursor.receive(message) }
    }
}
