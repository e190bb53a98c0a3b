import Foundation
import HiveClient
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A `hive api` child process on a loopback port with its own embedded store
/// in a temporary directory, and tokens in an owner-only tokens file (the
/// way operations.md says to run it): an admin's, tenant acme's and tenant
/// globex's.
struct LiveServer {
    static let adminToken = "cli-test-admin-token"
    static let acmeToken = "cli-test-acme-token"
    static let globexToken = "cli-test-globex-token"

    let endpoint: URL
    let process: Process
    let directory: URL

    /// Runs `hive` against this server with `token`.
    func hive(_ arguments: String..., token: String = LiveServer.acmeToken) async throws -> CommandResult {
        try await runHive(arguments, environment: ["HIVE_ENDPOINT": endpoint.absoluteString, "HIVE_TOKEN": token])
    }

    /// `hive(...)`, expecting success; records the output as a test failure otherwise.
    @discardableResult
    func ok(_ arguments: String..., token: String = LiveServer.acmeToken,
            sourceLocation: SourceLocation = #_sourceLocation) async throws -> CommandResult {
        let result = try await runHive(arguments, environment: ["HIVE_ENDPOINT": endpoint.absoluteString, "HIVE_TOKEN": token])
        try #require(result.succeeded, "\(result)", sourceLocation: sourceLocation)
        return result
    }

    /// `hive(...)`, expecting failure (non-zero exit, a message on stderr).
    func fails(_ arguments: String..., token: String = LiveServer.acmeToken,
               sourceLocation: SourceLocation = #_sourceLocation) async throws -> CommandResult {
        let result = try await runHive(arguments, environment: ["HIVE_ENDPOINT": endpoint.absoluteString, "HIVE_TOKEN": token])
        try #require(!result.succeeded, "expected a failure: \(result)", sourceLocation: sourceLocation)
        #expect(!result.stderr.isEmpty, "a failure must say why on stderr: \(result)", sourceLocation: sourceLocation)
        assertReadableError(result, sourceLocation: sourceLocation)
        return result
    }

    var client: HiveClient { HiveClient(endpoint: endpoint, token: Self.acmeToken) }
}

/// Errors a user sees are sentences, not Swift dumps or traces.
func assertReadableError(_ result: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) {
    for marker in ["HiveClientError", "CLIError(", "ServerError(", "Fatal error", "Stack dump", "DecodingError", "Swift."] {
        #expect(!result.stderr.contains(marker), "stderr shows internals (\(marker)): \(result)", sourceLocation: sourceLocation)
    }
}

/// Starts `hive api` on a free loopback port with a fresh data directory
/// (and `arguments` added), waits until /healthz answers, runs `body`, and
/// always stops the server and removes the directory, also when `body` throws.
func withLiveServer<T>(arguments: [String] = [], _ body: (LiveServer) async throws -> T) async throws -> T {
    let server = try await startServer(arguments: arguments)
    do {
        let result = try await body(server)
        await stop(server)
        return result
    } catch {
        await stop(server)
        throw error
    }
}

private func startServer(arguments: [String]) async throws -> LiveServer {
    var lastProblem = ""
    // A free port can be taken between the check and the server's bind; try a few.
    for _ in 0..<3 {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hive-cli-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = try freePort()
        let log = directory.appendingPathComponent("server.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        let tokens = directory.appendingPathComponent("tokens").path
        let tokenLines = "admin \(LiveServer.adminToken)\ntenant acme \(LiveServer.acmeToken)\ntenant globex \(LiveServer.globexToken)\n"
        _ = FileManager.default.createFile(atPath: tokens, contents: Data(tokenLines.utf8), attributes: [.posixPermissions: 0o600])

        let process = Process()
        process.executableURL = try hiveExecutable()
        process.arguments = [
            "api", "--listen", "127.0.0.1:\(port)", "--data-dir", directory.appendingPathComponent("store").path,
            "--tokens-file", tokens,
        ] + arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HIVE_") }
        process.standardOutput = logHandle
        process.standardError = logHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? logHandle.close()

        let server = LiveServer(endpoint: URL(string: "http://127.0.0.1:\(port)")!, process: process, directory: directory)
        let probe = HiveClient(endpoint: server.endpoint, token: LiveServer.adminToken, timeout: 2)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning {
            if await probe.isHealthy() { return server }
            try await Task.sleep(for: .milliseconds(100))
        }
        lastProblem = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        await stop(server)
    }
    throw ServerDidNotStart(log: lastProblem)
}

private func stop(_ server: LiveServer) async {
    if server.process.isRunning {
        kill(server.process.processIdentifier, SIGTERM)
        for _ in 0..<100 where server.process.isRunning {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if server.process.isRunning { kill(server.process.processIdentifier, SIGKILL) }
    }
    server.process.waitUntilExit()
    try? FileManager.default.removeItem(at: server.directory)
}

struct ServerDidNotStart: Error, CustomStringConvertible {
    var log: String
    var description: String { "`hive api` did not answer /healthz; its output:\n\(log)" }
}
