// One HTTP/1.1 keep-alive connection to one endpoint.
//
// A task owns the channel for its whole life (`NIOAsyncChannel.executeThenClose`)
// and serves exchanges one at a time: write the request, forward the
// response parts to the exchange's stream, then wait for the next exchange.
// Whoever holds the connection (a pool checkout) sends one exchange, reads
// its stream to the end, and only then sends another or hands it back.
//
// Invariants:
// - At most one exchange is in flight (`State.current`).
// - An exchange fails with `closedBeforeSending` only if no byte of it was
//   written; once writing starts, a failure is `failedAfterSending` or
//   `timedOut`, because the server may have acted on it. The exception is a
//   server refusing the TLS session (a client-certificate alert, which TLS
//   1.3 delivers after the client's first write): `connectFailed`, since
//   the server read nothing on that connection.
// - When the serving task ends, the connection is closed for good: later
//   sends fail at once with `closedBeforeSending`.

import NIOCore
import NIOHTTP1
import Synchronization

/// A request the client sends; always with a JSON body here.
package struct HTTPRequest: Sendable {
    package var method: HTTPMethod = .POST
    package var path: String
    package var body: [UInt8] = []
    /// Extra header fields (name, value).
    package var headers: [(String, String)] = []
    /// Time allowed from the first byte written to the end of the response;
    /// nil for a stream that may last forever.
    package var timeout: TimeAmount?

    package init(method: HTTPMethod = .POST, path: String, body: [UInt8] = [], headers: [(String, String)] = [], timeout: TimeAmount? = nil) {
        self.method = method
        self.path = path
        self.body = body
        self.headers = headers
        self.timeout = timeout
    }
}

/// A response as it arrives: the head, then body chunks; the stream ends with the response.
package enum HTTPResponseEvent: Sendable {
    case head(HTTPResponseHead)
    case body(ByteBuffer)
}

package typealias HTTPResponseStream = AsyncThrowingStream<HTTPResponseEvent, any Error>

/// Why an HTTP exchange did not complete.
package struct HTTPClientError: Error, CustomStringConvertible {
    package enum Kind: Sendable {
        /// No connection could be made; nothing was sent.
        case connectFailed
        /// The connection was gone before the request was written.
        case closedBeforeSending
        /// The connection failed after the request was (partly) written.
        case failedAfterSending
        /// No complete response within the request's timeout.
        case timedOut
        /// The client is shut down.
        case shutDown
    }

    package var kind: Kind
    package var endpoint: HTTPEndpoint
    package var detail: String

    package init(kind: Kind, endpoint: HTTPEndpoint, detail: String) {
        self.kind = kind
        self.endpoint = endpoint
        self.detail = detail
    }

    /// True when the server may have received, and acted on, the request.
    package var requestMayHaveBeenSent: Bool {
        switch kind {
        case .connectFailed, .closedBeforeSending, .shutDown: return false
        case .failedAfterSending, .timedOut: return true
        }
    }

    package var description: String {
        switch kind {
        case .connectFailed: return "cannot connect to \(endpoint): \(detail)"
        case .closedBeforeSending: return "connection to \(endpoint) closed before sending: \(detail)"
        case .failedAfterSending: return "connection to \(endpoint) failed after sending: \(detail)"
        case .timedOut: return "no answer from \(endpoint) within \(detail)"
        case .shutDown: return "HTTP client shut down (\(endpoint))"
        }
    }
}

/// One request/response on a connection, seen from both sides.
final class HTTPExchange: Sendable {
    let request: HTTPRequest
    let events: HTTPResponseStream.Continuation
    private let flags = Mutex<(writing: Bool, timedOut: Bool)>((false, false))

    init(request: HTTPRequest, events: HTTPResponseStream.Continuation) {
        self.request = request
        self.events = events
    }

    var hasStartedWriting: Bool { flags.withLock { $0.writing } }
    var hasTimedOut: Bool { flags.withLock { $0.timedOut } }
    func markWriting() { flags.withLock { $0.writing = true } }
    func markTimedOut() { flags.withLock { $0.timedOut = true } }

    /// Ends the response stream with an error; a no-op once the stream ended.
    func fail(_ kind: HTTPClientError.Kind, _ endpoint: HTTPEndpoint, _ detail: String) {
        events.finish(throwing: HTTPClientError(kind: kind, endpoint: endpoint, detail: detail))
    }
}

final class HTTPConnection: Sendable {
    typealias Wire = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    let endpoint: HTTPEndpoint
    let id: Int
    private let channel: any Channel
    private let exchanges: AsyncStream<HTTPExchange>.Continuation
    private let exchangeQueue: AsyncStream<HTTPExchange>
    private let state = Mutex(State())

    private struct State {
        var current: HTTPExchange?
        var closed = false
        /// False once the server said `Connection: close` or a stream exchange used it.
        var reusable = true
    }

    init(endpoint: HTTPEndpoint, id: Int, channel: any Channel) {
        self.endpoint = endpoint
        self.id = id
        self.channel = channel
        (exchangeQueue, exchanges) = AsyncStream.makeStream(of: HTTPExchange.self)
    }

    /// Idle, open and willing to take another request.
    var isReusable: Bool {
        channel.isActive && state.withLock { !$0.closed && $0.reusable && $0.current == nil }
    }

    /// Starts one exchange. The caller must read the returned stream to its
    /// end before sending another. With `keepConnection` false (streams), the
    /// connection closes when the response ends or its reader goes away.
    func send(_ request: HTTPRequest, keepConnection: Bool) -> HTTPResponseStream {
        let (stream, continuation) = HTTPResponseStream.makeStream()
        let exchange = HTTPExchange(request: request, events: continuation)
        let channel = self.channel
        continuation.onTermination = { reason in
            // A reader that stops early (cancelled) leaves a half-read
            // response on the wire: the connection cannot be reused.
            if !keepConnection { channel.close(promise: nil) }
            if case .cancelled = reason { channel.close(promise: nil) }
        }
        let accepted: Bool = state.withLock { state in
            guard !state.closed, state.current == nil else { return false }
            state.current = exchange
            if !keepConnection { state.reusable = false }
            return true
        }
        guard accepted else {
            exchange.fail(.closedBeforeSending, endpoint, "connection closed or busy")
            return stream
        }
        if case .terminated = exchanges.yield(exchange) {
            state.withLock { $0.current = nil }
            exchange.fail(.closedBeforeSending, endpoint, "connection closed")
        }
        return stream
    }

    /// Closes the connection; an exchange in flight fails.
    func close() {
        exchanges.finish()
        channel.close(promise: nil)
    }

    /// The serving loop; returns when the connection is closed.
    func serve(_ wire: Wire) async {
        var failure = "connection closed"
        var refused = false
        do {
            try await wire.executeThenClose { inbound, outbound in
                var responses = inbound.makeAsyncIterator()
                for await exchange in self.exchangeQueue {
                    let keepOpen = try await self.perform(exchange, responses: &responses, outbound: outbound)
                    if !keepOpen { return }
                }
            }
        } catch let error as HTTPClientError {
            failure = error.detail
        } catch {
            failure = HTTPTLSOptions.describe(error)
            refused = HTTPTLSOptions.isRefusal(error)
        }
        let pending: HTTPExchange? = state.withLock { state in
            state.closed = true
            defer { state.current = nil }
            return state.current
        }
        exchanges.finish()
        if let pending {
            if refused {
                // The server rejected the TLS session (TLS 1.3 says so only
                // after the client's first write): it read nothing of the request.
                pending.fail(.connectFailed, endpoint, failure)
            } else if pending.hasTimedOut {
                pending.fail(.timedOut, endpoint, "\(pending.request.timeout.map(Self.describe) ?? "the timeout")")
            } else if pending.hasStartedWriting {
                pending.fail(.failedAfterSending, endpoint, failure)
            } else {
                pending.fail(.closedBeforeSending, endpoint, failure)
            }
        }
    }

    /// Sends one request and forwards its response. Returns whether the
    /// connection may serve another exchange; throws when the connection broke
    /// (the pending exchange is then failed by `serve`).
    private func perform(
        _ exchange: HTTPExchange,
        responses: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    ) async throws -> Bool {
        let request = exchange.request
        var deadline: Scheduled<Void>?
        if let timeout = request.timeout {
            let channel = self.channel
            deadline = channel.eventLoop.scheduleTask(in: timeout) {
                exchange.markTimedOut()
                channel.close(promise: nil)
            }
        }
        defer { deadline?.cancel() }

        var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.path)
        head.headers.add(name: "Host", value: endpoint.authority)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(request.body.count))
        for (name, value) in request.headers {
            head.headers.add(name: name, value: value)
        }
        exchange.markWriting()
        do {
            try await outbound.write(contentsOf: [
                .head(head), .body(.byteBuffer(ByteBuffer(bytes: request.body))), .end(nil),
            ])
        } catch let writeError {
            // The server may have closed with a reason the inbound side holds
            // (a TLS alert: "certificate required"); that says more than "closed".
            do { _ = try await responses.next() } catch { throw error }
            throw writeError
        }

        var keepAlive = true
        while let part = try await responses.next() {
            switch part {
            case .head(let responseHead):
                keepAlive = responseHead.isKeepAlive
                if case .terminated = exchange.events.yield(.head(responseHead)) { return false }
            case .body(let chunk):
                if case .terminated = exchange.events.yield(.body(chunk)) { return false }
            case .end:
                let reusable = state.withLock { state in
                    state.current = nil
                    if !keepAlive { state.reusable = false }
                    return state.reusable
                }
                exchange.events.finish()
                return reusable
            }
        }
        throw HTTPClientError(kind: .failedAfterSending, endpoint: endpoint, detail: "server closed the connection mid-response")
    }

    static func describe(_ amount: TimeAmount) -> String {
        let milliseconds = amount.nanoseconds / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }
}
