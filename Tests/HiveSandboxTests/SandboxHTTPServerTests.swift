#if os(Linux)
import Foundation
import HiveSandbox
import Testing

/// A namespace of its own with only loopback up; removed by `remove`.
private func loopbackNamespace() throws -> (name: String, prefix: String) {
    let prefix = uniquePrefix()
    let name = prefix + "http"
    try RootNamespace.run(["ip", "netns", "add", name])
    try RootNamespace.run(["ip", "-n", name, "link", "set", "dev", "lo", "up"])
    return (name, prefix)
}

// The sandbox's tiny HTTP server, against loopback inside a test namespace.
@Suite("Sandbox HTTP server", .serialized, .enabled(if: SandboxPrivileges.isRoot, "needs root to create namespaces"))
struct SandboxHTTPServerTests {
    @Test func answersEveryRequestWithTheBodyForTheClientAddress() async throws {
        try await onOwnThread {
            let (namespace, prefix) = try loopbackNamespace()
            defer { SandboxNetwork.destroyAll(prefix: prefix) }
            let server = try SandboxHTTPServer.start(namespace: namespace, address: "127.0.0.1", port: 0) { client in "you are \(client)\n" }
            defer { server.stop() }
            #expect(server.port != 0)

            let answer = try SandboxHTTPClient.get(address: "127.0.0.1", port: server.port, path: "/anything", namespace: namespace)
            #expect(answer == SandboxHTTPClient.Response(status: 200, body: "you are 127.0.0.1\n"))
            let again = try SandboxHTTPClient.get(address: "127.0.0.1", port: server.port, namespace: namespace)
            #expect(again.body == "you are 127.0.0.1\n")
            #expect(server.requestsAnswered == 2)

            // What curl, the guide's client, sees: status line and headers too.
            if (try? RootNamespace.run(["curl", "--version"])) != nil {
                let curl = try NetworkNamespace.run(namespace, ["curl", "-s", "-i", "-m", "3", "http://127.0.0.1:\(server.port)/"])
                #expect(curl.hasPrefix("HTTP/1.0 200 OK\r\n"))
                #expect(curl.contains("Content-Length: 18\r\n"))
                #expect(curl.hasSuffix("\r\n\r\nyou are 127.0.0.1\n"))
            }
        }
    }

    @Test func listensOnlyInsideItsNamespace() async throws {
        try await onOwnThread {
            let (namespace, prefix) = try loopbackNamespace()
            defer { SandboxNetwork.destroyAll(prefix: prefix) }
            let server = try SandboxHTTPServer.start(namespace: namespace, address: "127.0.0.1", port: 0) { _ in "hello\n" }
            defer { server.stop() }
            #expect(server.endpointDescription == "127.0.0.1:\(server.port) in namespace \(namespace)")

            // This process's own loopback is another namespace's: nobody listens there
            // (unless something else took the port, which then is not our server either).
            let here = try? SandboxHTTPClient.get(address: "127.0.0.1", port: server.port, timeout: .seconds(1))
            #expect(here?.body != "hello\n")
            #expect(try SandboxHTTPClient.get(address: "127.0.0.1", port: server.port, namespace: namespace).body == "hello\n")
        }
    }

    @Test func stopClosesTheSocketAndIsIdempotent() async throws {
        try await onOwnThread {
            let (namespace, prefix) = try loopbackNamespace()
            defer { SandboxNetwork.destroyAll(prefix: prefix) }
            let server = try SandboxHTTPServer.start(namespace: namespace, address: "0.0.0.0", port: 80) { _ in "hello from vm1 (10.0.1.11)\n" }
            defer { server.stop() }
            #expect(try SandboxHTTPClient.get(address: "127.0.0.1", namespace: namespace).body == "hello from vm1 (10.0.1.11)\n")

            server.stop()
            let refused = try #require(throws: SocketFailure.self) {
                try SandboxHTTPClient.get(address: "127.0.0.1", namespace: namespace, timeout: .seconds(1))
            }
            // Refused, or (a connection the kernel had queued as the socket closed) reset: no answer either way.
            #expect(refused.code == ECONNREFUSED || refused.code == ECONNRESET, "\(refused)")
            server.stop()
            // The port is free again: a new server takes it.
            let next = try SandboxHTTPServer.start(namespace: namespace, address: "0.0.0.0", port: 80) { _ in "next\n" }
            defer { next.stop() }
            #expect(try SandboxHTTPClient.get(address: "127.0.0.1", namespace: namespace).body == "next\n")
        }
    }

    @Test func aClientThatSendsNothingDoesNotStopTheServer() async throws {
        try await onOwnThread {
            let (namespace, prefix) = try loopbackNamespace()
            defer { SandboxNetwork.destroyAll(prefix: prefix) }
            let server = try SandboxHTTPServer.start(namespace: namespace, address: "127.0.0.1", port: 0) { _ in "ok\n" }
            defer { server.stop() }

            // A connection that never sends its request holds the server for at most ioTimeout.
            let idle = try NamespaceThread.run(in: namespace) { () -> Int32 in
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = server.port.bigEndian
                address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
                _ = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                return fd
            }
            defer { close(idle) }
            let started = ContinuousClock.now
            let answer = try SandboxHTTPClient.get(address: "127.0.0.1", port: server.port, namespace: namespace, timeout: .seconds(5))
            #expect(answer.body == "ok\n")
            #expect(ContinuousClock.now - started < SandboxHTTPServer.ioTimeout + .seconds(2))
        }
    }

    @Test func failuresSayWhatAndWhere() async throws {
        try await onOwnThread {
            let (namespace, prefix) = try loopbackNamespace()
            defer { SandboxNetwork.destroyAll(prefix: prefix) }

            let notLocal = try #require(throws: SocketFailure.self) {
                try SandboxHTTPServer.start(namespace: namespace, address: "203.0.113.10", port: 80) { _ in "" }
            }
            #expect(notLocal.code == EADDRNOTAVAIL)
            #expect(notLocal.description.hasPrefix("cannot bind 203.0.113.10:80 in namespace \(namespace): "))

            let missing = prefix + "none"
            let noNamespace = try #require(throws: SocketFailure.self) {
                try SandboxHTTPServer.start(namespace: missing, port: 0) { _ in "" }
            }
            #expect(noNamespace.description.hasPrefix("cannot enter network namespace \(missing): "))

            let badAddress = try #require(throws: SocketFailure.self) {
                try SandboxHTTPClient.get(address: "203.0.113", namespace: namespace)
            }
            #expect(badAddress.description.contains("expected an IPv4 address"))
        }
    }
}
#endif
