import CHiveSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// A tiny HTTP/1.0 server for the sandbox: something for `curl` to reach in
// a VM (through its floating IP) and in the outside world (telling the
// client which address it came from, which makes SNAT visible). Not a web
// server: one thread, one connection at a time; a request is read up to
// its blank line (at most `requestLimit` bytes, for at most `ioTimeout`),
// and every request, whatever its method or path, is answered `200 OK`
// with the body the owner makes from the client's address.
//
// Threads: the server's own thread enters the namespace (setns), makes
// the listening socket there and stays for its life; it alone reads and
// writes the sockets. `stop()` may be called from any thread: it wakes the
// server thread through an eventfd, waits for it to end, then closes the
// listening socket and the eventfd. A stopped server is not restarted; one
// never stopped keeps its thread (which holds it) until the process ends.
//
// Teardown order matters: an open socket keeps its namespace alive after
// `ip netns delete`, interfaces and all. Stop the servers before removing
// the network.

/// An HTTP/1.0 server in a network namespace that answers every request
/// with `200 OK` and a body computed from the client's address.
public final class SandboxHTTPServer: @unchecked Sendable {
    /// The namespace it listens in; nil: this process's.
    public let namespace: String?
    /// The address it listens on, e.g. "0.0.0.0" or "203.0.113.10".
    public let address: String
    /// The TCP port it listens on (the one the kernel chose when asked for 0).
    public let port: UInt16

    /// The longest request read; the rest is ignored.
    public static let requestLimit = 8192
    /// How long one client may take to send its request and take the answer.
    public static let ioTimeout: Duration = .seconds(2)

    private let listener: Int32
    private let wakeup: Int32
    private let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var stopped = false
    private var answered = 0

    private init(namespace: String?, address: String, port: UInt16, listener: Int32, wakeup: Int32) {
        self.namespace = namespace
        self.address = address
        self.port = port
        self.listener = listener
        self.wakeup = wakeup
    }

    /// "203.0.113.10:80 in namespace hive-internet".
    public var endpointDescription: String {
        "\(address):\(port)" + (namespace.map { " in namespace \($0)" } ?? "")
    }

    /// How many requests it has answered.
    public var requestsAnswered: Int { lock.withLock { answered } }

    /// Starts a server listening on `address`:`port` (TCP) inside namespace
    /// `namespace` (nil: this process's), answering every request with
    /// `200 OK` and `body(clientAddress)` as text. Returns once it listens.
    ///
    /// - Parameter body: called on the server's thread with the client's
    ///   IPv4 address, e.g. "198.51.100.2".
    /// - Throws: `SocketFailure` when the namespace cannot be entered or
    ///   the address cannot be bound (not an IPv4 address, not local, in
    ///   use); nothing is left open then.
    public static func start(
        namespace: String?, address: String = "0.0.0.0", port: UInt16 = 80, body: @escaping @Sendable (_ clientAddress: String) -> String
    ) throws -> SandboxHTTPServer {
        let endpoint = "\(address):\(port)" + (namespace.map { " in namespace \($0)" } ?? "")
        let started = Started()
        let thread = Thread {
            let server: SandboxHTTPServer
            do {
                try NamespaceThread.enter(namespace)
                let (listener, boundPort) = try openListener(address: address, port: port, subject: endpoint)
                let wakeup = hive_eventfd_open()
                if wakeup < 0 {
                    close(listener)
                    throw SocketFailure(operation: "open an eventfd for", subject: endpoint, code: -wakeup)
                }
                server = SandboxHTTPServer(namespace: namespace, address: address, port: boundPort, listener: listener, wakeup: wakeup)
                started.result = .success(server)
            } catch {
                started.result = .failure(error)
                started.done.signal()
                return
            }
            started.done.signal()
            server.serve(body)
        }
        thread.name = "hive-http-\(namespace ?? "self")"
        thread.start()
        started.done.wait()
        return try started.result!.get()
    }

    /// Stops serving and closes the sockets; a connection being answered is
    /// finished first (at most `ioTimeout`). Calling it again does nothing.
    public func stop() {
        let first = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        _ = hive_eventfd_signal(wakeup)
        finished.wait()
        close(listener)
        close(wakeup)
    }

    /// The server thread's loop: waits for a connection or the wakeup,
    /// answers the connection, until stopped.
    private func serve(_ body: @Sendable (String) -> String) {
        defer { finished.signal() }
        var descriptors = [
            pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            descriptors[0].revents = 0
            descriptors[1].revents = 0
            let ready = poll(&descriptors, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if descriptors[1].revents != 0 { return }
            guard descriptors[0].revents & Int16(POLLIN) != 0 else { continue }
            var peer = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let connection = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &length) }
            }
            guard connection >= 0 else { continue }
            // Not for the commands the sandbox starts meanwhile (Glibc's Swift module lacks accept4).
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            answer(connection, client: Self.text(of: peer.sin_addr), body: body)
            lock.withLock { answered += 1 }
        }
    }

    /// Reads the request up to its blank line, writes the answer, closes.
    private func answer(_ connection: Int32, client: String, body: @Sendable (String) -> String) {
        defer { close(connection) }
        Self.setTimeouts(connection, Self.ioTimeout)
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while request.count < Self.requestLimit {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            request += buffer[0..<count]
            // A bare "\n\n" ends it too: a person typing into `nc` sends that.
            if request.count >= 4, request.suffix(4).elementsEqual(end) || request.suffix(2).elementsEqual([10, 10]) { break }
        }
        let text = body(client)
        let response = "HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(text.utf8.count)\r\n"
            + "Connection: close\r\n\r\n" + text
        Self.sendAll(connection, Array(response.utf8))
        shutdown(connection, Int32(SHUT_WR))
    }

    /// A bound, listening TCP socket and the port it got.
    private static func openListener(address: String, port: UInt16, subject: String) throws -> (Int32, UInt16) {
        var socketAddress = try socketAddress(address, port, subject: subject)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketFailure.current("open a TCP socket for", subject) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let failure = SocketFailure.current("bind", subject)
            close(fd)
            throw failure
        }
        guard listen(fd, 16) == 0 else {
            let failure = SocketFailure.current("listen on", subject)
            close(fd)
            throw failure
        }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: local.sin_port))
    }

    /// `address`:`port` as a sockaddr_in; throws EINVAL for anything but a dotted quad.
    static func socketAddress(_ address: String, _ port: UInt16, subject: String) throws -> sockaddr_in {
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &socketAddress.sin_addr) == 1 else {
            throw SocketFailure(operation: "use", subject: subject + " (expected an IPv4 address, e.g. 203.0.113.10)", code: EINVAL)
        }
        return socketAddress
    }

    static func setTimeouts(_ fd: Int32, _ timeout: Duration) {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes all of `bytes` unless the peer goes away or times out;
    /// MSG_NOSIGNAL: a closed peer must not raise SIGPIPE in the sandbox.
    @discardableResult
    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    /// "198.51.100.2".
    static func text(of address: in_addr) -> String {
        var address = address
        var characters = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &address, &characters, socklen_t(characters.count)) != nil else { return "?" }
        return String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Written by the server thread before it signals `done`, read after.
    private final class Started: @unchecked Sendable {
        var result: Result<SandboxHTTPServer, any Error>?
        let done = DispatchSemaphore(value: 0)
    }
}

/// A minimal HTTP/1.0 GET from inside a namespace, for the sandbox's checks
/// and tests: no `curl` needed.
public enum SandboxHTTPClient {
    /// What came back.
    public struct Response: Sendable, Hashable {
        /// The status code of the status line, e.g. 200.
        public var status: Int
        /// The body after the blank line, as text.
        public var body: String

        public init(status: Int, body: String) {
            self.status = status
            self.body = body
        }
    }

    /// Fetches `http://address:port/path` from inside namespace `namespace`
    /// (nil: this process's). Blocks for at most about `timeout` in all.
    ///
    /// - Throws: `SocketFailure` when the namespace cannot be entered, the
    ///   connection is refused or times out (ETIMEDOUT), or the answer is
    ///   not HTTP (EPROTO).
    public static func get(
        address: String, port: UInt16 = 80, path: String = "/", namespace: String? = nil, timeout: Duration = .seconds(3)
    ) throws -> Response {
        let subject = "http://\(address):\(port)\(path)" + (namespace.map { " from namespace \($0)" } ?? "")
        return try NamespaceThread.run(in: namespace) {
            var target = try SandboxHTTPServer.socketAddress(address, port, subject: subject)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SocketFailure.current("open a TCP socket for", subject) }
            defer { close(fd) }
            // SO_SNDTIMEO also bounds a blocking connect on Linux (EINPROGRESS after it).
            SandboxHTTPServer.setTimeouts(fd, timeout)
            let connected = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                let code = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT : errno
                throw SocketFailure(operation: "connect to", subject: subject, code: code)
            }
            let request = "GET \(path) HTTP/1.0\r\nHost: \(address)\r\nUser-Agent: hive-sandbox\r\n\r\n"
            guard SandboxHTTPServer.sendAll(fd, Array(request.utf8)) else { throw SocketFailure.current("send a request to", subject) }
            var answer: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while answer.count < 1 << 20 {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count == 0 { break }
                if count < 0 {
                    let code = errno == EAGAIN ? ETIMEDOUT : errno
                    throw SocketFailure(operation: "read the answer of", subject: subject, code: code)
                }
                answer += buffer[0..<count]
            }
            return try parse(answer, subject: subject)
        }
    }

    /// "HTTP/1.x STATUS ...\r\n headers \r\n\r\n body".
    static func parse(_ answer: [UInt8], subject: String) throws -> Response {
        let text = String(decoding: answer, as: UTF8.self)
        let statusLine = text.prefix { $0 != "\r" && $0 != "\n" }.split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/"), let status = Int(statusLine[1]) else {
            throw SocketFailure(operation: "read an HTTP answer from", subject: subject + " (got \(text.prefix(40).debugDescription))", code: EPROTO)
        }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return Response(status: status, body: body)
    }
}
