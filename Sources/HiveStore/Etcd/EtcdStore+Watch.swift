// Watches over the gateway's `/v3/watch` stream, surviving member loss.
//
// One task per watch, registered in the store's state (so `close()` ends
// it) and cancelled when the consumer stops iterating. The task opens a
// streaming `POST /v3/watch` with a `create_request`; the gateway answers
// with one JSON message per line: `created`, then event batches (events of
// one or more whole revisions), progress notices, or a `canceled` message.
//
// Exactly-once delivery rests on one number, `WatchCursor.next`: the oldest
// revision not yet delivered. Each batch advances it past its last event;
// when the stream breaks (member killed, no leader), the watch is created
// again on the next member with `start_revision = next`, and any event
// older than `next` is dropped. Progress notices never move it (etcd 3.4
// has known bugs where a notice runs ahead of unsynced events), and no
// batch handed to the consumer claims a revision past `next - 1`: a
// consumer that resumes its own watch from the last batch's revision + 1
// (the agent does) resumes from the last event it applied.
//
// The request carries `hasleader` metadata, so a member cut off from the
// leader cancels the watch instead of leaving it silently stale.

import HiveHTTP
import Logging
import NIOHTTP1

extension EtcdStore {
    public func watch(_ range: KeyRange, fromRevision: Revision?) async -> WatchStream {
        let (stream, continuation) = WatchStream.makeStream()
        var fromRevision = fromRevision
        if fromRevision == nil {
            // Read the revision now, so every change after this call returns is delivered.
            do {
                fromRevision = try await currentRevision(of: range) + 1
            } catch {
                continuation.finish(throwing: error)
                return stream
            }
        }
        let start = fromRevision
        let started: Bool = state.withLock { state in
            guard !state.closed else { return false }
            let id = state.nextTaskID
            state.nextTaskID += 1
            let task = Task {
                await self.runWatch(range, from: start, into: continuation)
                self.state.withLock { _ = $0.tasks.removeValue(forKey: id) }
            }
            state.tasks[id] = task
            continuation.onTermination = { _ in task.cancel() }
            return true
        }
        if !started { continuation.finish(throwing: StoreError.closed) }
        return stream
    }

    /// The store's current revision, read through a count-only range.
    func currentRevision(of range: KeyRange) async throws -> Revision {
        let (key, rangeEnd) = Self.wireBounds(range)
        let response = try await call(
            "/v3/kv/range", EtcdJSON.RangeRequest(key: key, rangeEnd: rangeEnd, limit: 1, countOnly: true),
            as: EtcdJSON.RangeResponse.self, retry: .always)
        return response.header?.revision.orZero ?? 0
    }

    /// How one watch stream on one member ended, when it did not throw.
    enum StreamEnd {
        /// Broken or refused; `established` when etcd had confirmed the watch.
        case lost(String, established: Bool)
        /// The consumer stopped iterating.
        case consumerGone
    }

    private func runWatch(_ range: KeyRange, from fromRevision: Revision?, into continuation: WatchStream.Continuation) async {
        do {
            try checkUsable()
            var start: Revision
            if let fromRevision {
                start = fromRevision
            } else {
                start = try await currentRevision(of: range) + 1
            }
            var cursor = WatchCursor(next: start)
            try await followAcrossMembers({ ["next-revision": "\(cursor.next)"] }) { endpoint in
                try await follow(range, on: endpoint, cursor: &cursor, into: continuation)
            }
        } catch {
            finish(continuation, after: error)
        }
    }

    /// Runs `attempt` on one member after another until the consumer goes
    /// away (returns), or no member gave a stream etcd confirmed within the
    /// retry window (throws `unavailable`). A stream that had worked gets a
    /// fresh window and a short pause; one that never did, a longer one.
    func followAcrossMembers(
        _ describe: () -> Logger.Metadata, _ attempt: (HTTPEndpoint) async throws -> StreamEnd
    ) async throws {
        var member = state.withLock { $0.preferred }
        var deadline = ContinuousClock.now + options.retryWindow
        var backoff = Duration.milliseconds(50)
        var lastErrors: [HTTPEndpoint: String] = [:]
        while true {
            try Task.checkCancellation()
            try checkUsable()
            let endpoint = endpoints[member]
            switch try await attempt(endpoint) {
            case .consumerGone:
                return
            case .lost(let reason, let established):
                lastErrors[endpoint] = reason
                var metadata = describe()
                metadata["endpoint"] = "\(endpoint)"
                metadata["error"] = "\(reason)"
                logger.debug("etcd watch stream lost; resuming on the next member", metadata: metadata)
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
    }

    /// Ends a watch's stream after its task stopped on `error`.
    func finish(_ continuation: WatchStream.Continuation, after error: any Error) {
        if state.withLock({ $0.closed }) {
            continuation.finish(throwing: StoreError.closed)
        } else if error is CancellationError {
            continuation.finish()
        } else {
            continuation.finish(throwing: error)
        }
    }

    /// Follows one watch stream on one member until it breaks.
    private func follow(
        _ range: KeyRange, on endpoint: HTTPEndpoint, cursor: inout WatchCursor,
        into continuation: WatchStream.Continuation
    ) async throws -> StreamEnd {
        let (key, rangeEnd) = Self.wireBounds(range)
        let body = try EtcdJSON.encode(EtcdJSON.WatchRequest(create: .init(
            key: key, rangeEnd: rangeEnd, startRevision: EtcdJSON.Int64Value(cursor.next), progressNotify: true)))
        let request = HTTPRequest(path: "/v3/watch", body: body, headers: [("Grpc-Metadata-hasleader", "true")])
        var established = false
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
                        switch cursor.receive(message) {
                        case .ignore:
                            break
                        case .established:
                            established = true
                        case .deliver(let batch):
                            if case .terminated = continuation.yield(batch) { return .consumerGone }
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
                throw Self.storeError(for: reply, path: "/v3/watch", lease: 0, revision: cursor.next)
            }
            return .lost("\(endpoint) ended the watch stream", established: established)
        } catch let error as HTTPClientError {
            if error.kind == .shutDown { throw StoreError.closed }
            return .lost("\(error)", established: established)
        }
    }
}

/// What a watch has delivered, and what to do with each gateway message.
/// A value type with one mutating step, so the exactly-once rules are
/// testable without a network.
struct WatchCursor {
    /// The oldest revision not yet delivered; a re-created watch starts here.
    var next: Revision

    enum Action {
        case ignore
        /// etcd confirmed the watch.
        case established
        case deliver(WatchBatch)
        /// The watch's start revision is compacted: end the stream with this error.
        case compacted(StoreError)
        /// The member gave up on the watch; re-create it elsewhere.
        case lost(String)
    }

    mutating func receive(_ message: EtcdJSON.StreamMessage<EtcdJSON.WatchResponse>) -> Action {
        if let error = message.error { return .lost(error.message) }
        guard let response = message.result else { return .ignore }
        if response.canceled == true {
            let compactRevision = response.compactRevision.orZero
            if compactRevision > 0 {
                // etcd's compact_revision is the oldest revision it still
                // keeps; StoreError counts the newest one it dropped.
                return .compacted(.compacted(requested: next, compactRevision: compactRevision - 1))
            }
            return .lost("watch canceled: \(response.cancelReason ?? "no reason given")")
        }
        if response.created == true { return .established }
        let wireEvents = response.events ?? []
        let revision = response.header?.revision.orZero ?? 0
        if wireEvents.isEmpty {
            // A progress notice; pass it on only if it does not run behind
            // what was delivered, and claiming no more than was delivered:
            // etcd 3.4 can send one ahead of events still on their way, and a
            // consumer resuming from a batch's revision would skip them.
            guard revision > 0, revision >= next - 1 else { return .ignore }
            return .deliver(WatchBatch(events: [], revision: next - 1))
        }
        let events = wireEvents.compactMap(Self.event).filter { $0.keyValue.modRevision >= next }
        guard let last = events.last else { return .ignore }
        next = last.keyValue.modRevision + 1
        // Not the header's revision: a catch-up split over several messages
        // carries the store's current revision in each, ahead of its events.
        return .deliver(WatchBatch(events: events, revision: last.keyValue.modRevision))
    }

    static func event(_ wire: EtcdJSON.Event) -> WatchEvent? {
        guard let keyValue = wire.kv?.model else { return nil }
        switch wire.type {
        case nil, "PUT": return WatchEvent(kind: .put, keyValue: keyValue)
        case "DELETE": return WatchEvent(kind: .delete, keyValue: keyValue)
        default: return nil
        }
    }
}

/// Splits a byte stream into newline-terminated lines (the gateway's message delimiter).
struct LineSplitter {
    private var pending: [UInt8] = []

    /// Adds bytes; returns the complete, non-empty lines they finish.
    mutating func append(_ bytes: [UInt8]) -> [[UInt8]] {
        pending += bytes
        var lines: [[UInt8]] = []
        var start = pending.startIndex
        while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending[start..<newline]
            if line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }) {
                lines.append(Array(line))
            }
            start = pending.index(after: newline)
        }
        pending.removeSubrange(..<start)
        return lines
    }
}
