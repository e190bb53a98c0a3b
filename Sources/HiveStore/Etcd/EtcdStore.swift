// The etcd backend of `Store`: a real etcd v3 cluster, spoken to over its
// gRPC JSON gateway with HTTP/1.1 (`POST /v3/kv/range` and friends), plain
// or over TLS (`https://` endpoints, a CA file, an optional client certificate
// for a cluster started with `--client-cert-auth`).
//
// Why the gateway and not gRPC: one HTTP/1.1 connection per request in
// flight is simple to reason about, needs nothing beyond SwiftNIO, and has
// no HTTP/2 ping policing that can drop a healthy connection.
//
// Invariants:
// - Requests go to the member that last answered (`State.preferred`); on a
//   connection failure the next member is tried, round after round with a
//   short backoff, until `Options.retryWindow` has passed; then the call
//   throws `StoreError.unavailable` naming every endpoint and the last error.
// - A request that never reached a member is always retried elsewhere. One
//   that may have reached it (the connection died after sending) is retried
//   too, except a transaction that writes: it throws `outcomeUnknown`, since
//   applying it twice could be wrong, and the caller re-reads instead.
// - A watch delivers each revision once, in order: it remembers the next
//   revision it owes and, when its stream breaks, re-creates the watch on
//   another member from exactly there (EtcdStore+Watch.swift).
// - Every task the store starts (one per watch) is registered in `State`
//   and cancelled by `close()`; the HTTP client closes every connection.
//
// Threads: the store is `Sendable`; any task may call any method. Mutable
// state is one `Mutex`; network I/O runs on the shared NIO event loops.

import HiveHTTP
import Logging
import NIOCore
import NIOSSL
import Synchronization

public final class EtcdStore: Store {
    public struct Options: Sendable {
        /// Allowed time for one request to one member: connect, send and the
        /// whole response. Watch streams have no such limit.
        public var requestTimeout: Duration
        /// How long a call keeps trying members before it throws
        /// `StoreError.unavailable`; also how long a watch keeps trying to
        /// reconnect before it ends with that error.
        public var retryWindow: Duration
        /// Idle keep-alive connections kept per member.
        public var idleConnectionsPerEndpoint: Int
        /// The cluster's `--max-txn-ops` (etcd's default is 128): the most
        /// compares, or operations of one branch, in one transaction.
        public var maxOperationsPerTransaction: Int
        /// For `https://` endpoints: PEM CA file the members' certificates
        /// chain to (nil: the system's roots), and the client certificate and
        /// key a cluster with `--client-cert-auth` requires.
        public var trustedCAFile: String?
        public var clientCertificateFile: String?
        public var clientKeyFile: String?

        public init(
            requestTimeout: Duration = .seconds(5), retryWindow: Duration = .seconds(10), idleConnectionsPerEndpoint: Int = 4,
            maxOperationsPerTransaction: Int = 128,
            trustedCAFile: String? = nil, clientCertificateFile: String? = nil, clientKeyFile: String? = nil
        ) {
            self.requestTimeout = requestTimeout
            self.retryWindow = retryWindow
            self.idleConnectionsPerEndpoint = idleConnectionsPerEndpoint
            self.maxOperationsPerTransaction = maxOperationsPerTransaction
            self.trustedCAFile = trustedCAFile
            self.clientCertificateFile = clientCertificateFile
            self.clientKeyFile = clientKeyFile
        }

        var tls: HTTPTLSOptions {
            HTTPTLSOptions(caFile: trustedCAFile, certificateFile: clientCertificateFile, keyFile: clientKeyFile)
        }
    }

    let endpoints: [HTTPEndpoint]
    /// Why the endpoints or TLS files cannot be used; when set, every call throws `unavailable` with it.
    let configurationError: String?
    let options: Options
    let logger: Logger
    let http: HTTPClient
    let state = Mutex(State())
    /// Watch streams whose creates etcd did not all confirm (their rest went on another stream).
    let watchCreationShortfalls = Atomic<Int>(0)

    struct State {
        /// Index into `endpoints` of the member that answered last.
        var preferred = 0
        var closed = false
        /// Watch tasks, cancelled by `close()`.
        var tasks: [Int: Task<Void, Never>] = [:]
        var nextTaskID = 0
    }

    /// A store on the etcd members at `endpoints` (`http://host:port` or
    /// `https://host:port` client URLs, all of one scheme). Nothing connects
    /// until the first call; a bad endpoint or TLS file makes every call throw
    /// `StoreError.unavailable` saying what is wrong (`configurationError`).
    public init(endpoints: [String], logger: Logger = Logger(label: "hive.store.etcd"), options: Options = Options()) {
        var parsed: [HTTPEndpoint] = []
        var invalid: [String] = []
        for endpoint in endpoints {
            if let valid = HTTPEndpoint(url: endpoint) { parsed.append(valid) } else { invalid.append(endpoint) }
        }
        var tls: NIOSSLContext?
        let configurationError: String?
        if !invalid.isEmpty || parsed.isEmpty {
            let bad = invalid.map { "\"\($0)\"" }.joined(separator: ", ")
            configurationError = parsed.isEmpty && invalid.isEmpty
                ? "no etcd endpoints configured; give client URLs like http://127.0.0.1:2379"
                : "invalid etcd endpoint(s) \(bad); expected http://host:port or https://host:port"
        } else if Set(parsed.map(\.usesTLS)).count > 1 {
            // One member in clear would leak what the TLS ones protect.
            configurationError = "etcd endpoints mix http:// and https:// (\(endpoints.joined(separator: ", "))); "
                + "give every member with the same scheme"
        } else if parsed[0].usesTLS {
            do {
                tls = try options.tls.makeContext()
                configurationError = nil
            } catch {
                configurationError = "etcd TLS: \(error)"
            }
        } else if options.tls != HTTPTLSOptions() {
            configurationError = "etcd TLS files are set but the endpoints are http:// (\(endpoints.joined(separator: ", "))); "
                + "use https:// endpoints"
        } else {
            configurationError = nil
        }
        self.endpoints = parsed
        self.configurationError = configurationError
        self.options = options
        self.logger = logger
        self.http = HTTPClient(
            connectTimeout: TimeAmount(options.requestTimeout),
            maxIdlePerEndpoint: options.idleConnectionsPerEndpoint, tls: tls)
    }

    public var maxOperationsPerTransaction: Int { options.maxOperationsPerTransaction }

    /// The endpoint requests go to first (the member that answered last).
    var currentEndpoint: String {
        endpoints.isEmpty ? "" : endpoints[state.withLock { $0.preferred }].description
    }

    // MARK: Key-value

    public func range(_ range: KeyRange) async throws -> RangeResult {
        let (key, rangeEnd) = Self.wireBounds(range)
        let response = try await call(
            "/v3/kv/range", EtcdJSON.RangeRequest(key: key, rangeEnd: rangeEnd),
            as: EtcdJSON.RangeResponse.self, retry: .always)
        return RangeResult(
            keyValues: (response.kvs ?? []).map(\.model),
            revision: response.header?.revision.orZero ?? 0)
    }

    @discardableResult
    public func put(_ key: String, value: [UInt8], lease: LeaseID) async throws -> Revision {
        let request = EtcdJSON.PutRequest(
            key: EtcdJSON.Bytes(key), value: EtcdJSON.Bytes(value),
            lease: lease == 0 ? nil : EtcdJSON.Int64Value(lease))
        let response = try await call(
            "/v3/kv/put", request, as: EtcdJSON.PutResponse.self, retry: .always, lease: lease)
        return response.header?.revision.orZero ?? 0
    }

    @discardableResult
    public func delete(_ range: KeyRange) async throws -> (deleted: Int64, revision: Revision) {
        let (key, rangeEnd) = Self.wireBounds(range)
        let response = try await call(
            "/v3/kv/deleterange", EtcdJSON.DeleteRangeRequest(key: key, rangeEnd: rangeEnd),
            as: EtcdJSON.DeleteRangeResponse.self, retry: .always)
        return (response.deleted.orZero, response.header?.revision.orZero ?? 0)
    }

    public func transaction(_ transaction: Transaction) async throws -> TransactionResult {
        let request = EtcdJSON.TxnRequest(
            compare: transaction.compares.map(Self.wireCompare),
            success: transaction.success.map(Self.wireOperation),
            failure: transaction.failure.map(Self.wireOperation))
        let writes = (transaction.success + transaction.failure).contains { operation in
            if case .get = operation { return false }
            return true
        }
        let lease = (transaction.success + transaction.failure).lazy.compactMap { operation -> LeaseID? in
            if case .put(_, _, let lease) = operation, lease != 0 { return lease }
            return nil
        }.first ?? 0
        let response = try await call(
            "/v3/kv/txn", request, as: EtcdJSON.TxnResponse.self,
            retry: writes ? .onlyBeforeSending : .always, lease: lease)
        let succeeded = response.succeeded ?? false
        let operations = succeeded ? transaction.success : transaction.failure
        let answers = response.responses ?? []
        guard answers.count == operations.count else {
            throw StoreError.rejected(
                "etcd answered a transaction of \(operations.count) operations with \(answers.count) responses")
        }
        let responses = zip(operations, answers).map { operation, answer -> OperationResponse in
            switch operation {
            case .put: return .put(previous: answer.put?.prevKeyValue?.model)
            case .delete: return .delete(deleted: answer.deleteRange?.deleted.orZero ?? 0)
            case .get: return .get((answer.range?.kvs ?? []).map(\.model))
            }
        }
        return TransactionResult(
            succeeded: succeeded, revision: response.header?.revision.orZero ?? 0, responses: responses)
    }

    /// Discards history up to `revision`: a watch from an older revision then
    /// fails with `StoreError.compacted`. etcd keeps `revision` itself.
    public func compact(revision: Revision) async throws {
        _ = try await call(
            "/v3/kv/compaction", EtcdJSON.CompactionRequest(revision: EtcdJSON.Int64Value(revision), physical: true),
            as: EtcdJSON.HeaderOnlyResponse.self, retry: .always, revision: revision)
    }

    // MARK: Lifetime

    /// Ends every watch (they throw `StoreError.closed`) and closes every
    /// connection; later calls throw `StoreError.closed`. Waits for the
    /// store's tasks to finish.
    public func close() async {
        let tasks = state.withLock { state in
            state.closed = true
            defer { state.tasks = [:] }
            return Array(state.tasks.values)
        }
        for task in tasks { task.cancel() }
        await http.shutDown()
        for task in tasks { await task.value }
    }

    // MARK: Wire forms

    /// etcd refuses an empty key; "every key" is `["\0", "\0")` for it.
    static func wireBounds(_ range: KeyRange) -> (EtcdJSON.Bytes, EtcdJSON.Bytes?) {
        var (key, rangeEnd) = range.bounds
        if key.isEmpty, rangeEnd == [0] { key = [0] }
        return (EtcdJSON.Bytes(key), rangeEnd.map(EtcdJSON.Bytes.init))
    }

    static func wireOperation(_ operation: Operation) -> EtcdJSON.RequestOp {
        switch operation {
        case .put(let key, let value, let lease):
            return EtcdJSON.RequestOp(put: EtcdJSON.PutRequest(
                key: EtcdJSON.Bytes(key), value: EtcdJSON.Bytes(value),
                lease: lease == 0 ? nil : EtcdJSON.Int64Value(lease), prevKeyValue: true))
        case .delete(let range):
            let (key, rangeEnd) = wireBounds(range)
            return EtcdJSON.RequestOp(deleteRange: EtcdJSON.DeleteRangeRequest(key: key, rangeEnd: rangeEnd))
        case .get(let range):
            let (key, rangeEnd) = wireBounds(range)
            return EtcdJSON.RequestOp(range: EtcdJSON.RangeRequest(key: key, rangeEnd: rangeEnd))
        }
    }

    /// A compare; a prefix compare uses etcd 3.3+'s `range_end`.
    static func wireCompare(_ compare: Compare) -> EtcdJSON.Compare {
        let (key, rangeEnd) = wireBounds(compare.range)
        let result: String
        switch compare.result {
        case .equal: result = "EQUAL"
        case .notEqual: result = "NOT_EQUAL"
        case .greater: result = "GREATER"
        case .less: result = "LESS"
        }
        var wire = EtcdJSON.Compare(key: key, rangeEnd: rangeEnd, target: "", result: result)
        switch compare.target {
        case .version(let version):
            wire.target = "VERSION"
            wire.version = EtcdJSON.Int64Value(version)
        case .createRevision(let revision):
            wire.target = "CREATE"
            wire.createRevision = EtcdJSON.Int64Value(revision)
        case .modRevision(let revision):
            wire.target = "MOD"
            wire.modRevision = EtcdJSON.Int64Value(revision)
        case .value(let value):
            wire.target = "VALUE"
            wire.value = EtcdJSON.Bytes(value)
        case .lease(let lease):
            wire.target = "LEASE"
            wire.lease = EtcdJSON.Int64Value(lease)
        }
        return wire
    }
}
