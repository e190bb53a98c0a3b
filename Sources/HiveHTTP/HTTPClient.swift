// A small HTTP/1.1 client on SwiftNIO, plain or over TLS: the etcd store
// speaks to etcd's JSON gateway with it, the CLI to the Hive API.
//
// Unary calls borrow a keep-alive connection from a per-endpoint pool of
// idle ones (or open a new one) and give it back when the response is read
// to its end. Streams (watch) get a connection of their own that closes with
// the stream. Every live connection is registered so `shutDown()` can close
// them all and wait for their serving tasks: no task outlives the client.
//
// TLS: an `https://` endpoint gets a `NIOSSLClientHandler` made from the
// client's one `NIOSSLContext` (trusted CAs, optional client certificate),
// and `connect` returns only once the handshake is done, so a certificate
// problem is a `connectFailed` (nothing sent) with a readable reason.
//
// Threads: any task may call any method; the pool is one `Mutex`.

import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One server address, from a `http://host:port` or `https://host:port` URL.
package struct HTTPEndpoint: Hashable, Sendable, CustomStringConvertible {
    package var host: String
    package var port: Int
    /// `https`: TLS on the connection.
    package var usesTLS: Bool

    package init(host: String, port: Int, usesTLS: Bool = false) {
        self.host = host
        self.port = port
        self.usesTLS = usesTLS
    }

    /// Parses `http://host:port` or `https://host:port` (a trailing slash is
    /// allowed); nil for anything else (another scheme, a path, no port).
    package init?(url: String) {
        let usesTLS = url.hasPrefix("https://")
        guard usesTLS || url.hasPrefix("http://") else { return nil }
        var rest = url.dropFirst(usesTLS ? "https://".count : "http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"),
              let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        var host = rest[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty, !host.contains("/") else { return nil }
        self.host = String(host)
        self.port = port
        self.usesTLS = usesTLS
    }

    package var description: String { "\(usesTLS ? "https" : "http")://\(authority)" }

    /// `host:port`, with an IPv6 host in brackets: the Host header's value.
    package var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A complete response of a unary call.
package struct HTTPResponse: Sendable {
    package var status: HTTPResponseStatus
    package var body: [UInt8]
}

package final class HTTPClient: Sendable {
    package let group: any EventLoopGroup
    package let connectTimeout: TimeAmount
    package let maxIdlePerEndpoint: Int
    /// For `https://` endpoints; nil when none was configured (then such an endpoint fails to connect).
    let tls: NIOSSLContext?
    private let state = Mutex(State())

    private struct State {
        var idle: [HTTPEndpoint: [HTTPConnection]] = [:]
        var live: [Int: (connection: HTTPConnection, task: Task<Void, Never>)] = [:]
        var nextID = 0
        var isShutDown = false
    }

    /// - Parameter tls: how to speak to `https://` endpoints (`HTTPTLSOptions.makeContext()`).
    package init(
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, connectTimeout: TimeAmount,
        maxIdlePerEndpoint: Int, tls: NIOSSLContext? = nil
    ) {
        self.group = group
        self.connectTimeout = connectTimeout
        self.maxIdlePerEndpoint = maxIdlePerEndpoint
        self.tls = tls
    }

    /// Sends a request and reads the whole response, reusing an idle connection when there is one.
    package func unary(_ request: HTTPRequest, to endpoint: HTTPEndpoint) async throws -> HTTPResponse {
        let connection = try await checkOut(endpoint)
        var status: HTTPResponseStatus?
        var body: [UInt8] = []
        for try await event in connection.send(request, keepConnection: true) {
            switch event {
            case .head(let head): status = head.status
            case .body(let chunk): body.append(contentsOf: chunk.readableBytesView)
            }
        }
        // The stream ends without an error only at the response's end, or
        // when this task was cancelled (the connection is then closing).
        if Task.isCancelled {
            connection.close()
            throw CancellationError()
        }
        guard let status else {
            connection.close()
            throw HTTPClientError(kind: .failedAfterSending, endpoint: endpoint, detail: "response had no head")
        }
        checkIn(connection)
        return HTTPResponse(status: status, body: body)
    }

    /// Sends a request on a connection of its own and returns the response as
    /// it arrives. Ending the iteration (or cancelling its task) closes the connection.
    package func stream(_ request: HTTPRequest, to endpoint: HTTPEndpoint) async throws -> HTTPResponseStream {
        let connection = try await connect(endpoint)
        return connection.send(request, keepConnection: false)
    }

    /// Open connections, idle or busy (streams included).
    package var connectionCount: Int { state.withLock { $0.live.count } }

    /// Closes every connection and waits until their tasks have ended. Later calls fail.
    package func shutDown() async {
        let live = state.withLock { state in
            state.isShutDown = true
            state.idle = [:]
            return Array(state.live.values)
        }
        for entry in live { entry.connection.close() }
        for entry in live { await entry.task.value }
    }

    // MARK: Pool

    private func checkOut(_ endpoint: HTTPEndpoint) async throws -> HTTPConnection {
        var stale: [HTTPConnection] = []
        let reused: HTTPConnection? = state.withLock { state in
            while let candidate = state.idle[endpoint]?.popLast() {
                if candidate.isReusable { return candidate }
                stale.append(candidate)
            }
            return nil
        }
        for connection in stale { connection.close() }
        if let reused { return reused }
        return try await connect(endpoint)
    }

    private func checkIn(_ connection: HTTPConnection) {
        let kept: Bool = state.withLock { state in
            guard !state.isShutDown, connection.isReusable,
                  state.idle[connection.endpoint, default: []].count < maxIdlePerEndpoint
            else { return false }
            state.idle[connection.endpoint, default: []].append(connection)
            return true
        }
        if !kept { connection.close() }
    }

    private func connect(_ endpoint: HTTPEndpoint) async throws -> HTTPConnection {
        if state.withLock({ $0.isShutDown }) {
            throw HTTPClientError(kind: .shutDown, endpoint: endpoint, detail: "")
        }
        if endpoint.usesTLS, self.tls == nil {
            throw HTTPClientError(kind: .connectFailed, endpoint: endpoint, detail: "no TLS configuration for an https endpoint")
        }
        let tls = endpoint.usesTLS ? self.tls : nil
        // An IP address is checked against the certificate's IP SANs (NIOSSL does so without a hostname).
        let serverHostname = endpoint.isIPAddress ? nil : endpoint.host
        let handshake = TLSHandshakeWaiter()
        let wire: HTTPConnection.Wire
        do {
            wire = try await Self.bootstrap(group: group, connectTimeout: connectTimeout)
                .connect(host: endpoint.host, port: endpoint.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandlers(
                                NIOSSLClientHandler(context: tls, serverHostname: serverHostname),
                                handshake.handler(on: channel.eventLoop))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try HTTPConnection.Wire(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw HTTPClientError(kind: .connectFailed, endpoint: endpoint, detail: Self.describeConnectFailure(error))
        }
        if tls != nil {
            do {
                try await handshake.completed(within: connectTimeout, on: wire.channel)
            } catch {
                try? await wire.channel.close()
                throw HTTPClientError(kind: .connectFailed, endpoint: endpoint, detail: HTTPTLSOptions.describe(error))
            }
        }
        let connection: HTTPConnection? = state.withLock { state in
            guard !state.isShutDown else { return nil }
            let id = state.nextID
            state.nextID += 1
            let connection = HTTPConnection(endpoint: endpoint, id: id, channel: wire.channel)
            let task = Task {
                await connection.serve(wire)
                self.forget(id)
            }
            state.live[id] = (connection, task)
            return connection
        }
        guard let connection else {
            try? await wire.channel.close()
            throw HTTPClientError(kind: .shutDown, endpoint: endpoint, detail: "")
        }
        return connection
    }

    private func forget(_ id: Int) {
        state.withLock { _ = $0.live.removeValue(forKey: id) }
    }

    /// NIO's connect errors, in words.
    static func describeConnectFailure(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError {
            let failures = error.connectionErrors.map { "\($0.error)" }
            if failures.contains(where: { $0.contains("Connection refused") }) { return "connection refused" }
            if failures.isEmpty, error.dnsAError != nil || error.dnsAAAAError != nil { return "the host name does not resolve" }
            if !failures.isEmpty { return failures.joined(separator: "; ") }
        }
        if let error = error as? ChannelError, case .connectTimeout(let amount) = error {
            return "no connection within \(HTTPConnection.describe(amount))"
        }
        return "\(error)"
    }

    private static func bootstrap(group: any EventLoopGroup, connectTimeout: TimeAmount) -> ClientBootstrap {
        var bootstrap = ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
        #if canImport(Glibc)
        // Probe an idle connection after 10 s, every 5 s, 3 times: a watch on
        // a member that vanished without a FIN (power loss, partition) ends
        // within ~25 s instead of the kernel's default two hours.
        bootstrap = bootstrap
            .channelOption(ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: TCP_KEEPIDLE)), value: 10)
            .channelOption(ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: TCP_KEEPINTVL)), value: 5)
            .channelOption(ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: TCP_KEEPCNT)), value: 3)
        #endif
        return bootstrap
    }
}
