import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
import HiveHTTP
@testable import HiveStore
import HiveTestSupport

/// The etcd gateway's wire format, decoded from bodies etcd 3.4 really sends.
@Suite("EtcdStore: gateway JSON")
struct EtcdStoreJSONTests {
    @Test func omittedZeroFieldsDecodeAsDefaults() throws {
        // A failed transaction: no `succeeded`; a key with an empty value: no `value`.
        let body = #"""
            {"header":{"cluster_id":"3249","member_id":"3319","revision":"3","raft_term":"2"},
             "responses":[{"response_range":{"header":{"revision":"3"},
               "kvs":[{"key":"YQ==","create_revision":"2","mod_revision":"2","version":"1"}],"count":"1"}}]}
            """#
        let response = try EtcdJSON.decode(EtcdJSON.TxnResponse.self, from: Array(body.utf8), what: "test")
        #expect(response.succeeded == nil)
        #expect(response.header?.revision.orZero == 3)
        let keyValue = try #require(response.responses?.first?.range?.kvs?.first?.model)
        #expect(keyValue == KeyValue(key: "a", value: [], createRevision: 2, modRevision: 2, version: 1, lease: 0))

        let empty = try EtcdJSON.decode(
            EtcdJSON.RangeResponse.self, from: Array(#"{"header":{"revision":"3"}}"#.utf8), what: "test")
        #expect(empty.kvs == nil)

        let keepAlive = try EtcdJSON.decode(
            EtcdJSON.StreamMessage<EtcdJSON.LeaseKeepAliveResponse>.self,
            from: Array(#"{"result":{"header":{"revision":"4"},"ID":"1234"}}"#.utf8), what: "test")
        #expect(keepAlive.result?.id.orZero == 1234)
        #expect(keepAlive.result?.ttl == nil, "an unknown lease is answered with TTL 0, left out")
    }

    @Test func errorBodiesOfBothShapesDecode() throws {
        let unary = try EtcdJSON.decode(EtcdJSON.ErrorBody.self, from: Array(#"""
            {"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}
            """#.utf8), what: "test")
        #expect(unary.grpcCode == 5)
        #expect(unary.text == "etcdserver: requested lease not found")
        let streamed = try EtcdJSON.decode(EtcdJSON.ErrorBody.self, from: Array(#"""
            {"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}
            """#.utf8), what: "test")
        #expect(streamed.grpcCode == 14)
        #expect(streamed.text == "etcdserver: no leader")

        let reply = EtcdStore.MemberReply(
            status: .notFound, body: Array(#"{"error":"etcdserver: requested lease not found","code":5}"#.utf8),
            endpoint: HTTPEndpoint(host: "127.0.0.1", port: 2379), followsUncertainAttempt: false)
        #expect(EtcdStore.memberUnavailable(reply) == nil, "a refusal is definite, not a member failure")
        #expect(EtcdStore.storeError(for: reply, path: "/v3/lease/revoke", lease: 7, revision: 0) == .leaseNotFound(7))
        let noLeader = EtcdStore.MemberReply(
            status: .serviceUnavailable, body: Array(#"{"error":"etcdserver: no leader","code":14}"#.utf8),
            endpoint: reply.endpoint, followsUncertainAttempt: false)
        #expect(EtcdStore.memberUnavailable(noLeader)?.mayHaveApplied == false)
        let timedOut = EtcdStore.MemberReply(
            status: .serviceUnavailable, body: Array(#"{"error":"etcdserver: request timed out","code":14}"#.utf8),
            endpoint: reply.endpoint, followsUncertainAttempt: false)
        #expect(EtcdStore.memberUnavailable(timedOut)?.mayHaveApplied == true)
    }

    @Test func watchCursorDeliversEachRevisionOnce() throws {
        func message(_ json: String) throws -> EtcdJSON.StreamMessage<EtcdJSON.WatchResponse> {
            try EtcdJSON.decode(EtcdJSON.StreamMessage<EtcdJSON.WatchResponse>.self, from: Array(json.utf8), what: "test")
        }
        var cursor = WatchCursor(next: 2)
        guard case .established = cursor.receive(try message(#"{"result":{"header":{"revision":"4"},"created":true}}"#)) else {
            Issue.record("created message not recognised")
            return
        }
        // Catch-up: several revisions in one message; a PUT has no `type`, a DELETE no create revision.
        let catchUp = try message(#"""
            {"result":{"header":{"revision":"6"},"events":[
              {"kv":{"key":"YQ==","create_revision":"2","mod_revision":"2","version":"1"}},
              {"kv":{"key":"YQ==","create_revision":"2","mod_revision":"5","version":"2","value":"eA=="}},
              {"kv":{"key":"YWE=","create_revision":"5","mod_revision":"5","version":"1","value":"eA=="}},
              {"type":"DELETE","kv":{"key":"YQ==","mod_revision":"6"}}]}}
            """#)
        guard case .deliver(let batch) = cursor.receive(catchUp) else {
            Issue.record("events not delivered")
            return
        }
        #expect(batch.events.map(\.kind) == [.put, .put, .put, .delete])
        #expect(batch.events.map(\.keyValue.modRevision) == [2, 5, 5, 6])
        #expect(batch.events[0].keyValue.value == [])
        #expect(batch.events[3].keyValue.key == "a")
        #expect(batch.revision == 6)
        #expect(cursor.next == 7)

        // The same revisions again (a re-created watch overlapping) are dropped.
        guard case .ignore = cursor.receive(catchUp) else {
            Issue.record("a replayed revision was delivered twice")
            return
        }
        // A progress notice behind what was delivered is dropped; a current one passes, up to what was delivered.
        guard case .ignore = cursor.receive(try message(#"{"result":{"header":{"revision":"4"}}}"#)) else {
            Issue.record("a stale progress notice was delivered")
            return
        }
        guard case .deliver(let progress) = cursor.receive(try message(#"{"result":{"header":{"revision":"9"}}}"#)) else {
            Issue.record("a progress notice was dropped")
            return
        }
        #expect(progress.events.isEmpty && progress.revision == 6, "a notice claims no more than was delivered")
        #expect(cursor.next == 7, "a progress notice must not move the resume point")

        let compacted = try message(#"{"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"4"}}"#)
        guard case .compacted(let error) = cursor.receive(compacted) else {
            Issue.record("compaction not recognised")
            return
        }
        #expect(error == .compacted(requested: 7, compactRevision: 3))
        guard case .lost = cursor.receive(try message(#"{"error":{"grpc_code":14,"message":"etcdserver: no leader"}}"#)) else {
            Issue.record("a stream error must re-create the watch")
            return
        }
    }

    @Test func lineSplitterJoinsChunks() {
        var splitter = LineSplitter()
        #expect(splitter.append(Array(#"{"a":"#.utf8)).isEmpty)
        #expect(splitter.append(Array("1}\n{\"b\"".utf8)) == [Array(#"{"a":1}"#.utf8)])
        #expect(splitter.append(Array(":2}\n\n".utf8)) == [Array(#"{"b":2}"#.utf8)])
    }

    @Test func endpointsParseHTTPAndHTTPS() {
        #expect(HTTPEndpoint(url: "http://127.0.0.1:2379") == HTTPEndpoint(host: "127.0.0.1", port: 2379))
        #expect(HTTPEndpoint(url: "http://[::1]:2379/")?.host == "::1")
        #expect(HTTPEndpoint(url: "https://127.0.0.1:2379") == HTTPEndpoint(host: "127.0.0.1", port: 2379, usesTLS: true))
        #expect(HTTPEndpoint(url: "https://127.0.0.1:2379")?.description == "https://127.0.0.1:2379")
        #expect(HTTPEndpoint(url: "ftp://127.0.0.1:2379") == nil)
        #expect(HTTPEndpoint(url: "http://127.0.0.1") == nil)
        #expect(HTTPEndpoint(url: "127.0.0.1:2379") == nil)
    }
}

/// Behaviour against real etcd processes. Serialized: each test runs its own
/// cluster, and failover timing is kinder without clusters competing for 2 cores.
@Suite("EtcdStore: live cluster", .serialized)
struct EtcdStoreClusterTests {
    @Test(arguments: [1, 3])
    func basicOperations(members: Int) async throws {
        try await withEtcdCluster(members: members) { cluster in
            try await withEtcdStore(cluster.endpoints) { store in
                try await Self.exerciseBasics(store)
            }
        }
    }

    private static func exerciseBasics(_ store: EtcdStore) async throws {
        let first = try await store.put("p/a", "1")
        try await store.put("p/b", value: [])
        try await store.put("q", "other")
        let a = try #require(try await store.get("p/a"))
        #expect(a.text == "1" && a.modRevision == first && a.version == 1)
        #expect(try await store.get("p/b")?.value == [], "an empty value (left out by the gateway) reads back empty")
        #expect(try await store.range(.prefix("p/")).keyValues.map(\.key) == ["p/a", "p/b"])
        #expect(try await store.range(.prefix("")).keyValues.map(\.key) == ["p/a", "p/b", "q"], "the empty prefix is every key")

        // Prefix compares use range_end: every key in the range must match.
        let all = try await store.transaction(Transaction(
            compares: [Compare(.prefix("p/"), .version(0), .greater)],
            success: [.put(key: "p/c", value: "3".bytes), .get(.prefix("p/"))]))
        #expect(all.succeeded)
        guard all.responses.count == 2, case .put(let previous) = all.responses[0], case .get(let seen) = all.responses[1] else {
            Issue.record("unexpected responses \(all.responses)")
            return
        }
        #expect(previous == nil)
        #expect(seen.map(\.key) == ["p/a", "p/b", "p/c"])
        let notAll = try await store.transaction(Transaction(
            compares: [Compare(.prefix("p/"), .value("1".bytes), .equal)],
            success: [.delete(.prefix("p/"))],
            failure: [.delete(.key("q"))]))
        #expect(!notAll.succeeded, "the gateway leaves out `succeeded: false`")
        #expect(notAll.responses == [.delete(deleted: 1)])
        let emptyRange = try await store.transaction(Transaction(compares: [Compare(.prefix("none/"), .value([]), .equal)]))
        #expect(!emptyRange.succeeded, "a value compare on an empty range fails, as in etcd")

        let deleted = try await store.delete(.prefix("p/"))
        #expect(deleted.deleted == 3)
        #expect(try await store.range(.prefix("")).keyValues.isEmpty)
    }

    @Test func refusalsMapToStoreErrors() async throws {
        try await withEtcdCluster(members: 1) { cluster in
          try await withEtcdStore(cluster.endpoints) { store in
            let unknown: LeaseID = 0x1234_5678
            await #expect(throws: StoreError.leaseNotFound(unknown)) { try await store.put("k", "v", lease: unknown) }
            await #expect(throws: StoreError.leaseNotFound(unknown)) { try await store.keepAlive(unknown) }
            await #expect(throws: StoreError.leaseNotFound(unknown)) { try await store.revokeLease(unknown) }
            let duplicate = await #expect(throws: StoreError.self) {
                try await store.transaction(Transaction(success: [
                    .put(key: "d", value: "1".bytes), .put(key: "d", value: "2".bytes),
                ]))
            }
            #expect(duplicate?.caseName == "rejected")
            #expect("\(String(describing: duplicate))".contains("duplicate key"), "the message should carry etcd's reason")
            let lease = try await store.grantLease(ttl: 30)
            #expect(lease.ttl == 30)
            #expect(try await store.keepAlive(lease.id) == 30)
            try await store.revokeLease(lease.id)
            await #expect(throws: StoreError.leaseNotFound(lease.id)) { try await store.keepAlive(lease.id) }
          }
        }
    }

    @Test func unaryCallsReuseKeepAliveConnections() async throws {
        try await withEtcdCluster(members: 1) { cluster in
            try await withEtcdStore(cluster.endpoints, options: .init(idleConnectionsPerEndpoint: 2)) { store in
                for index in 0..<50 { try await store.put("reuse/\(index)", "x") }
                #expect(store.http.connectionCount == 1, "sequential calls should share one connection")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<8 { group.addTask { _ = try await store.get("reuse/\(index)") } }
                    try await group.waitForAll()
                }
                // Connections beyond the idle limit are closed when handed back.
                let trimmed = await eventually(within: 10) { store.http.connectionCount <= 2 }
                #expect(trimmed, "\(store.http.connectionCount) connections left open")
            }
        }
    }

    @Test func failsOverWhenTheCurrentMemberDies() async throws {
        try await withEtcdCluster(members: 3) { cluster in
          try await withEtcdStore(cluster.endpoints) { store in
            try await store.put("f/before", "1")
            let used = try #require(cluster.endpoints.firstIndex(of: store.currentEndpoint))
            cluster.kill(member: used)
            try await store.put("f/after", "2")
            #expect(try await store.get("f/before")?.text == "1")
            #expect(store.currentEndpoint != cluster.endpoints[used], "the store should remember a member that works")
          }
        }
    }

    /// A writer and a watcher while the member in use is killed and later
    /// restarted: every acknowledged write is readable and watched, once, in order.
    @Test func memberKillLosesNoAcknowledgedWrite() async throws {
        try await withEtcdCluster(members: 3) { cluster in
          try await withEtcdStore(cluster.endpoints) { store in
            let start = try await store.range(.prefix("k/")).revision
            let log = EventLog()
            async let watched: Void = log.collect(await store.watch(.prefix("k/"), fromRevision: start + 1)) { events in
                events.contains { $0.keyValue.key == "k/end" }
            }

            // The writer runs on its own so the kill lands while a put is in flight.
            let total = 300
            let writes = WriteLog()
            async let writing: Void = {
                for index in 0..<total {
                    if let revision = try? await store.put("k/\(index)", "v\(index)") {
                        writes.append(key: "k/\(index)", value: "v\(index)", revision: revision)
                    }
                }
            }()
            #expect(await eventually(within: 120) { writes.count >= total / 3 })
            let used = try #require(cluster.endpoints.firstIndex(of: store.currentEndpoint))
            cluster.kill(member: used)
            let acknowledgedAtKill = writes.count
            #expect(await eventually(within: 120) { writes.count >= 2 * total / 3 })
            #expect(store.currentEndpoint != cluster.endpoints[used], "the store should have moved to a live member")
            try await cluster.restart(member: used)
            await writing
            try await store.put("k/end", "end")
            try await watched
            let events = log.events
            let acknowledged = writes.all

            #expect(acknowledged.count > acknowledgedAtKill + total / 3, "writes should go on through the failover")
            let stored = Dictionary(
                uniqueKeysWithValues: try await store.range(.prefix("k/")).keyValues.map { ($0.key, $0.text) })
            for write in acknowledged {
                #expect(stored[write.key] == write.value, "acknowledged \(write.key) lost")
            }
            let revisions = events.map(\.keyValue.modRevision)
            #expect(revisions == revisions.sorted() && Set(revisions).count == revisions.count,
                    "watch revisions out of order or repeated: \(revisions)")
            let seen = Set(events.map { "\($0.keyValue.key)@\($0.keyValue.modRevision)=\($0.keyValue.text)" })
            let missing = acknowledged.filter { !seen.contains("\($0.key)@\($0.revision)=\($0.value)") }
            #expect(missing.isEmpty, "watch missed acknowledged writes: \(missing.map(\.key))")
          }
        }
    }

    /// A watch pinned to one member follows it through a kill and restart,
    /// resuming where it was: nothing lost, nothing repeated.
    @Test func watchSurvivesMemberRestart() async throws {
        try await withEtcdCluster(members: 3) { cluster in
          try await withEtcdStore(Array(cluster.endpoints[1...])) { writer in
            // Long enough to outlast the restart on a slow machine; not a test threshold.
            try await withEtcdStore([cluster.endpoints[0]], options: .init(retryWindow: .seconds(120))) { watcher in
                let start = try await writer.put("r/start", "0")
                var written: [(key: String, revision: Revision)] = [("r/start", start)]
                let log = EventLog()
                async let watched: Void = log.collect(await watcher.watch(.prefix("r/"), fromRevision: start)) { events in
                    events.contains { $0.keyValue.key == "r/end" }
                }
                let established = await eventually(within: 60) { !log.events.isEmpty }
                #expect(established)

                cluster.kill(member: 0)
                for index in 0..<20 { written.append(("r/down/\(index)", try await writer.put("r/down/\(index)", "x"))) }
                try await cluster.restart(member: 0)
                for index in 0..<20 { written.append(("r/up/\(index)", try await writer.put("r/up/\(index)", "y"))) }
                written.append(("r/end", try await writer.put("r/end", "")))
                try await watched

                #expect(log.events.map(\.keyValue.key) == written.map(\.key))
                #expect(log.events.map(\.keyValue.modRevision) == written.map(\.revision))
            }
          }
        }
    }

    @Test func compactedWatchThrows() async throws {
        try await withEtcdCluster(members: 1) { cluster in
          try await withEtcdStore(cluster.endpoints) { store in
            let first = try await store.put("c/1", "1")
            try await store.put("c/2", "2")
            let third = try await store.put("c/3", "3")
            try await store.compact(revision: third)

            let stale = await store.watch(.prefix("c/"), fromRevision: first)
            await #expect(throws: StoreError.compacted(requested: first, compactRevision: third - 1)) {
                for try await _ in stale {}
            }
            // etcd keeps the compaction revision itself.
            var iterator = await store.watch(.prefix("c/"), fromRevision: third).makeAsyncIterator()
            let batch = try #require(try await iterator.next())
            #expect(batch.events.map(\.keyValue.key) == ["c/3"])
          }
        }
    }

    @Test func cancellingTheConsumerClosesTheStream() async throws {
        try await withEtcdCluster(members: 1) { cluster in
          try await withEtcdStore(cluster.endpoints) { store in
            try await store.put("x/0", "0")
            let before = store.http.connectionCount
            let watch = await store.watch(.prefix("x/"), fromRevision: 1)
            let consumer = Task {
                for try await _ in watch {}
            }
            let opened = await eventually(within: 10) { store.http.connectionCount > before }
            #expect(opened)
            consumer.cancel()
            _ = await consumer.result
            let closed = await eventually(within: 10) { store.http.connectionCount == before }
            #expect(closed, "the watch connection stayed open after its consumer went away")
          }
        }
    }

    @Test func closeEndsWatchesAndLaterCalls() async throws {
        try await withEtcdCluster(members: 1) { cluster in
            let store = EtcdStore(endpoints: cluster.endpoints)
            let revision = try await store.put("w/0", "0")
            var iterator = await store.watch(.prefix("w/"), fromRevision: revision).makeAsyncIterator()
            _ = try await iterator.next()
            await store.close()
            await #expect(throws: StoreError.closed) { _ = try await iterator.next() }
            await #expect(throws: StoreError.closed) { try await store.get("w/0") }
            #expect(store.http.connectionCount == 0)
        }
    }
}

/// Failure modes without etcd: nothing listening, and a server that takes a
/// request and hangs up before answering.
@Suite("EtcdStore: unreachable members")
struct EtcdStoreUnreachableTests {
    @Test func noMemberAnsweringIsUnavailableNamingEndpoints() async throws {
        // Held for the whole test: no other test's server may start listening there.
        let closed = try ClosedPorts(2)
        defer { closed.close() }
        let endpoints = closed.ports.map { "http://127.0.0.1:\($0)" }
        try await withEtcdStore(endpoints, options: .init(retryWindow: .milliseconds(300))) { store in
            let error = await #expect(throws: StoreError.self) { try await store.put("k", "v") }
            #expect(error?.caseName == "unavailable")
            for endpoint in endpoints {
                #expect("\(String(describing: error))".contains(endpoint), "the error should name \(endpoint)")
            }
            // Nothing was sent, so even a transaction is simply unavailable.
            let transaction = await #expect(throws: StoreError.self) {
                try await store.transaction(Transaction(success: [.put(key: "k", value: [])]))
            }
            #expect(transaction?.caseName == "unavailable")
        }
        try await withEtcdStore(endpoints, options: .init(retryWindow: .milliseconds(300))) { store in
            let watch = await store.watch(.prefix("k"), fromRevision: 1)
            let error = await #expect(throws: StoreError.self) { for try await _ in watch {} }
            #expect(error?.caseName == "unavailable")
        }
        try await withEtcdStore(["ftp://127.0.0.1:2379"]) { invalid in
            let error = await #expect(throws: StoreError.self) { try await invalid.get("k") }
            #expect("\(String(describing: error))".contains("http://host:port or https://host:port"))
        }
        try await withEtcdStore(["http://127.0.0.1:2379", "https://127.0.0.1:2380"]) { mixed in
            let error = await #expect(throws: StoreError.self) { try await mixed.get("k") }
            #expect("\(String(describing: error))".contains("mix http:// and https://"))
        }
        try await withEtcdStore(["https://127.0.0.1:2379"], options: .init(trustedCAFile: "/nonexistent/ca.pem")) { badCA in
            let error = await #expect(throws: StoreError.self) { try await badCA.get("k") }
            #expect("\(String(describing: error))".contains("cannot read the CA file /nonexistent/ca.pem"))
        }
    }

    @Test func writeWithLostAnswerIsOutcomeUnknownOnlyForTransactions() async throws {
        // The retry loop runs in this task: on an executor of its own it keeps its schedule.
        try await withTaskExecutorPreference(BlockingExecutor()) { try await writeWithLostAnswer() }
    }

    private func writeWithLostAnswer() async throws {
        let server = try await HangUpServer.start()
        // A window wide enough for several attempts (backoff 50 ms doubling to 1 s) even when
        // each attempt takes a second on a loaded machine (seen on CI with 2 s: only 2 attempts).
        try await withEtcdStore([server.endpoint], options: .init(retryWindow: .seconds(10))) { store in
            let transaction = await #expect(throws: StoreError.self) {
                try await store.transaction(Transaction(success: [.put(key: "k", value: [])]))
            }
            #expect(transaction?.caseName == "outcomeUnknown")
            #expect(server.requestsSeen() == 1, "a transaction must not be sent twice")
            // A put may be repeated safely: it is retried until the window closes.
            let put = await #expect(throws: StoreError.self) { try await store.put("k", "v") }
            #expect(put?.caseName == "unavailable")
            #expect(server.requestsSeen() > 2, "the put should have been retried")
        }
        try await server.stop()
    }
}

/// Accepts connections, waits for a request's first bytes, and closes without answering.
final class HangUpServer: Sendable {
    let channel: any Channel
    private let counter: RequestCounter

    var endpoint: String { "http://127.0.0.1:\(channel.localAddress?.port ?? 0)" }
    func requestsSeen() -> Int { counter.value }

    private init(channel: any Channel, counter: RequestCounter) {
        self.channel = channel
        self.counter = counter
    }

    static func start() async throws -> HangUpServer {
        let counter = RequestCounter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(HangUpHandler(counter: counter))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return HangUpServer(channel: channel, counter: counter)
    }

    func stop() async throws {
        try await channel.close()
    }

    final class RequestCounter: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        func increment() { count.withLock { $0 += 1 } }
    }

    final class HangUpHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let counter: RequestCounter
        init(counter: RequestCounter) { self.counter = counter }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            counter.increment()
            context.close(promise: nil)
        }
    }
}

/// A store that is always closed after `body`, also when it throws. With
/// HIVE_TEST_DEBUG set in the environment the store logs its failovers to stderr.
func withEtcdStore<T>(
    _ endpoints: [String], options: EtcdStore.Options = .init(), _ body: (EtcdStore) async throws -> T
) async throws -> T {
    var logger = Logger(label: "hive.store.etcd.test", factory: { StreamLogHandler.standardError(label: $0) })
    logger.logLevel = ProcessInfo.processInfo.environment["HIVE_TEST_DEBUG"] == nil ? Logger.Level.info : .debug
    let store = EtcdStore(endpoints: endpoints, logger: logger, options: options)
    do {
        let result = try await body(store)
        await store.close()
        return result
    } catch {
        await store.close()
        throw error
    }
}

/// Watch events gathered by a collecting task, readable while it runs.
final class EventLog: Sendable {
    private let storage = Mutex<[WatchEvent]>([])
    var events: [WatchEvent] { storage.withLock { $0 } }

    /// Reads batches until `done` holds for everything read so far. Throws
    /// what the stream throws, or after 300 s without `done`, so a lost event
    /// fails the test instead of hanging it.
    func collect(_ stream: WatchStream, until done: @escaping @Sendable ([WatchEvent]) -> Bool) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                for try await batch in stream {
                    let all = self.storage.withLock { events in
                        events += batch.events
                        return events
                    }
                    if done(all) { return true }
                }
                return false
            }
            group.addTask {
                try await Task.sleep(for: .seconds(300))
                return false
            }
            let finished = try await group.next() ?? false
            group.cancelAll()
            if !finished {
                throw EtcdClusterError("watch ended or stalled before the expected events; got \(self.events.count) events")
            }
        }
    }
}

extension StoreError {
    /// The case, without its payload, for assertions.
    var caseName: String {
        switch self {
        case .compacted: return "compacted"
        case .futureRevision: return "futureRevision"
        case .leaseNotFound: return "leaseNotFound"
        case .unavailable: return "unavailable"
        case .outcomeUnknown: return "outcomeUnknown"
        case .rejected: return "rejected"
        case .closed: return "closed"
        }
    }
}

/// Writes a test has seen acknowledged, in order, readable while the writer runs.
final class WriteLog: Sendable {
    private let storage = Mutex<[(key: String, value: String, revision: Revision)]>([])
    var all: [(key: String, value: String, revision: Revision)] { storage.withLock { $0 } }
    var count: Int { storage.withLock { $0.count } }
    func append(key: String, value: String, revision: Revision) {
        storage.withLock { $0.append((key, value, revision)) }
    }
}

