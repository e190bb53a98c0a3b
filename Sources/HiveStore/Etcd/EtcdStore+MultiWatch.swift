// Several ranges on one gateway stream: an agent watches one range per
// device, chain or group it has loaded, and one HTTP stream each would be
// hundreds of connections per agent.
//
// The gateway reads a watch request's body as a sequence of create
// requests, so one `POST /v3/watch` creates every watcher; it cannot take
// more once the body is sent. Adding ranges therefore ends the stream and
// creates all the watchers again on a new one. Each watcher keeps its own
// `WatchCursor` (etcd orders events within a watcher, not across watchers:
// one catching up from history delivers old revisions after another's new
// ones), so re-creating after a member's loss or a growth resumes each
// range exactly where it was.

import HiveHTTP
import NIOHTTP1
import Synchronization

extension EtcdStore {
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

    private func runWatch(_ watched: WatchedRanges, into continuation: WatchStream.Continuation) async {
        do {
            try checkUsable()
            var member = state.withLock { $0.preferred }
            var deadline = ContinuousClock.now + options.retryWindow
            var backoff = Duration.milliseconds(50)
            var lastErrors: [HTTPEndpoint: String] = [:]
            while true {
                try Task.checkCancellation()
                try checkUsable()
                let endpoint = endpoints[member]
                switch try await follow(watched, on: endpoint, into: continuation) {
                case .consumerGone:
                    return
                case .grown:
                    continue
                case .lost(let reason, let established):
                    lastErrors[endpoint] = reason
                    logger.debug("etcd watch stream lost; resuming on the next member", metadata: [
                        "endpoint": "\(endpoint)", "ranges": "\(watched.count)", "error": "\(reason)",
                    ])
                    if established {
                        deadline = ContinuousClock.now + options.retryWindow
                        backoff = .milliseconds(50)
                    } else if ContinuousClock.now + backoff >= deadline {
                        throw StoreError.unavailable(Self.unavailableDetail(
                            path: "/v3/watch", endpoints: endpoints, lastErrors: lastErrors, window: options.retryWindow))
                    }
                    try await Task.sleep(for: backoff)
                    if !established { backoff = min(backoff * 2, .seconds(1)) }
                }
                member = (member + 1) % endpoints.count
            }
        } catch {
            if state.withLock({ $0.closed }) {
                continuation.finish(throwing: StoreError.closed)
            } else if error is CancellationError {
                continuation.finish()
            } else {
                continuation.finish(throwing: error)
            }
        }
    }

    private enum MultiStreamEnd {
        case lost(String, established: Bool)
        case consumerGone
        /// Ranges were added: create every watcher again.
        case grown
    }

    /// Follows one stream holding a watcher per range until it breaks or the ranges grow.
    private func follow(
        _ watched: WatchedRanges, on endpoint: HTTPEndpoint, into continuation: WatchStream.Continuation
    ) async throws -> MultiStreamEnd {
        let entries = watched.snapshot()
        var body: [UInt8] = []
        for entry in entries {
            let (key, rangeEnd) = Self.wireBounds(entry.range)
            body += try EtcdJSON.encode(EtcdJSON.WatchRequest(create: .init(
                key: key, rangeEnd: rangeEnd, startRevision: EtcdJSON.Int64Value(entry.cursor.next), progressNotify: false)))
            body.append(UInt8(ascii: "\n"))
        }
        let request = HTTPRequest(path: "/v3/watch", body: body, headers: [("Grpc-Metadata-hasleader", "true")])
        return try await withThrowingTaskGroup(of: MultiStreamEnd.self) { group in
            group.addTask {
                try await self.read(request, on: endpoint, watched: watched, count: entries.count, into: continuation)
            }
            group.addTask {
                await watched.waitForGrowth(beyond: entries.count)
                try Task.checkCancellation()
                return .grown
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private func read(
        _ request: HTTPRequest, on endpoint: HTTPEndpoint, watched: WatchedRanges, count: Int,
        into continuation: WatchStream.Continuation
    ) async throws -> MultiStreamEnd {
        var established = false
        // Watchers are created in the order of the requests; later messages name them by id.
        var created = 0
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
                        if message.result?.created == true, created < count {
                            index = created
                            indexOfWatcher[id] = index
                            created += 1
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

/// The ranges of a multi-range watch with a cursor each, shared by the
/// watch's task and `MultiWatch.add`.
final class WatchedRanges: Sendable {
    struct Entry {
        var range: KeyRange
        var cursor: WatchCursor
    }

    private struct State {
        var entries: [Entry]
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state: Mutex<State>

    init(_ ranges: [WatchedRange]) {
        state = Mutex(State(entries: ranges.map { Entry(range: $0.range, cursor: WatchCursor(next: $0.from)) }))
    }

    var count: Int { state.withLock { $0.entries.count } }

    func snapshot() -> [Entry] { state.withLock { $0.entries } }

    func add(_ ranges: [WatchedRange]) {
        let waiter = state.withLock { state in
            state.entries += ranges.map { Entry(range: $0.range, cursor: WatchCursor(next: $0.from)) }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func receive(_ message: EtcdJSON.StreamMessage<EtcdJSON.WatchResponse>, at index: Int) -> WatchCursor.Action {
        state.withLock { $0.entries[index].cursor.receive(message) }
    }

    /// Returns once there are more than `count` ranges, or the task is cancelled.
    func waitForGrowth(beyond count: Int) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.entries.count > count || Task.isCancelled { return true }
                    state.waiter = waiter
                    return false
                }
                if resumeNow { waiter.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
