// Sending a request to the cluster: member choice, failover, retries, and
// mapping etcd's error bodies to `StoreError`.
//
// A member's answer is either definite (success, or a refusal such as
// "requested lease not found") or says the member cannot serve now (no
// leader, request timed out: gRPC Unavailable/DeadlineExceeded), which is
// treated like a connection failure: try the next member.

import HiveHTTP
import Logging
import NIOCore
import NIOHTTP1

extension EtcdStore {
    /// May a request be sent again after an attempt that may have reached a member?
    enum RetryPolicy {
        /// Reads, and writes whose repetition is harmless (put, delete, lease calls).
        case always
        /// Transactions that write: after a possible delivery, throw `outcomeUnknown`.
        case onlyBeforeSending
    }

    /// A definite answer from one member.
    struct MemberReply {
        var status: HTTPResponseStatus
        var body: [UInt8]
        var endpoint: HTTPEndpoint
        /// An earlier attempt may have reached a member and been applied
        /// (so "not found" may mean "already done").
        var followsUncertainAttempt: Bool
    }

    /// Sends `body` to `path` and decodes a successful answer; a refusal becomes a `StoreError`.
    func call<Response: Decodable>(
        _ path: String, _ body: some Encodable, as type: Response.Type, retry: RetryPolicy,
        lease: LeaseID = 0, revision: Revision = 0
    ) async throws -> Response {
        let reply = try await send(path, body: try EtcdJSON.encode(body), retry: retry)
        guard reply.status == .ok else {
            throw Self.storeError(for: reply, path: path, lease: lease, revision: revision)
        }
        return try EtcdJSON.decode(type, from: reply.body, what: path)
    }

    /// Sends a request until a member answers definitely, failing over
    /// between members with backoff for up to `options.retryWindow`.
    func send(_ path: String, body: [UInt8], retry: RetryPolicy) async throws -> MemberReply {
        try checkUsable()
        let deadline = ContinuousClock.now + options.retryWindow
        var backoff = Duration.milliseconds(50)
        var lastErrors: [HTTPEndpoint: String] = [:]
        var uncertain = false
        while true {
            let first = state.withLock { $0.preferred }
            for offset in 0..<endpoints.count {
                try Task.checkCancellation()
                try checkUsable()
                let remaining = deadline - ContinuousClock.now
                if !lastErrors.isEmpty, remaining <= .zero {
                    throw StoreError.unavailable(Self.unavailableDetail(
                        path: path, endpoints: endpoints, lastErrors: lastErrors, window: options.retryWindow))
                }
                let index = (first + offset) % endpoints.count
                let endpoint = endpoints[index]
                // An attempt may not run far past the window, nor be cut too short to succeed.
                let timeout = max(min(options.requestTimeout, remaining), .seconds(1))
                let request = HTTPRequest(path: path, body: body, timeout: TimeAmount(timeout))
                let failure: String
                do {
                    let response = try await http.unary(request, to: endpoint)
                    let reply = MemberReply(
                        status: response.status, body: response.body, endpoint: endpoint,
                        followsUncertainAttempt: uncertain)
                    guard let unavailable = Self.memberUnavailable(reply) else {
                        prefer(index)
                        return reply
                    }
                    if unavailable.mayHaveApplied {
                        if retry == .onlyBeforeSending {
                            throw StoreError.outcomeUnknown("\(path) at \(endpoint): \(unavailable.reason)")
                        }
                        uncertain = true
                    }
                    failure = unavailable.reason
                } catch let error as HTTPClientError {
                    if error.kind == .shutDown { throw StoreError.closed }
                    if error.requestMayHaveBeenSent {
                        if retry == .onlyBeforeSending {
                            throw StoreError.outcomeUnknown("\(path): \(error)")
                        }
                        uncertain = true
                    }
                    failure = "\(error)"
                }
                lastErrors[endpoint] = failure
                logger.debug("etcd request failed; trying the next member", metadata: [
                    "path": "\(path)", "endpoint": "\(endpoint)", "error": "\(failure)",
                ])
            }
            if ContinuousClock.now + backoff >= deadline {
                throw StoreError.unavailable(Self.unavailableDetail(
                    path: path, endpoints: endpoints, lastErrors: lastErrors, window: options.retryWindow))
            }
            try await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(1))
        }
    }

    /// Throws when the store cannot send anything: closed, or misconfigured (endpoints, TLS files).
    func checkUsable() throws {
        if state.withLock({ $0.closed }) { throw StoreError.closed }
        if let configurationError { throw StoreError.unavailable(configurationError) }
    }

    /// Makes `index` the member tried first; logs when that changes.
    func prefer(_ index: Int) {
        let previous = state.withLock { state in
            defer { state.preferred = index }
            return state.preferred
        }
        if previous != index {
            logger.notice("etcd store switched members", metadata: [
                "from": "\(endpoints[previous])", "to": "\(endpoints[index])",
            ])
        }
    }

    static func unavailableDetail(
        path: String, endpoints: [HTTPEndpoint], lastErrors: [HTTPEndpoint: String], window: Duration
    ) -> String {
        let tried = endpoints.map { endpoint in "\(endpoint) (\(lastErrors[endpoint] ?? "not tried"))" }
        return "no etcd member answered \(path) within \(window); tried \(tried.joined(separator: ", "))"
    }

    // MARK: Error mapping

    /// A reply saying this member cannot serve now; nil for a definite answer.
    static func memberUnavailable(_ reply: MemberReply) -> (reason: String, mayHaveApplied: Bool)? {
        guard reply.status != .ok else { return nil }
        guard let error = try? EtcdJSON.decode(EtcdJSON.ErrorBody.self, from: reply.body, what: "an error") else {
            // Not the gateway's JSON: a proxy or a member half up. Server
            // errors are the member's problem; client errors are ours.
            guard reply.status.code >= 500 else { return nil }
            return ("HTTP \(reply.status.code) \(String(decoding: reply.body.prefix(200), as: UTF8.self))", true)
        }
        let code = error.grpcCode ?? 0
        // gRPC Canceled (1), DeadlineExceeded (4), Unavailable (14).
        guard code == 1 || code == 4 || code == 14 else { return nil }
        let message = error.text
        let neverProposed = ["no leader", "too many requests", "not capable", "unhealthy cluster", "leader changed"]
        let safe = neverProposed.contains { message.contains($0) }
        return ("\(message) (gRPC code \(code))", !safe)
    }

    /// The `StoreError` for a definite refusal.
    static func storeError(for reply: MemberReply, path: String, lease: LeaseID, revision: Revision) -> StoreError {
        let error = try? EtcdJSON.decode(EtcdJSON.ErrorBody.self, from: reply.body, what: "an error")
        let message = error?.text ?? String(decoding: reply.body.prefix(200), as: UTF8.self)
        if message.contains("requested lease not found") { return .leaseNotFound(lease) }
        if message.contains("required revision has been compacted") {
            return .compacted(requested: revision, compactRevision: 0)
        }
        if message.contains("required revision is a future revision") {
            return .futureRevision(requested: revision, current: 0)
        }
        let code = error?.grpcCode.map { ", gRPC code \($0)" } ?? ""
        return .rejected("etcd at \(reply.endpoint) refused \(path): \(message) (HTTP \(reply.status.code)\(code))")
    }
}
