import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The `hive` executable `swift test` built next to the test bundle.
func hiveExecutable() throws -> URL {
    let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [products, products.deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent("hive")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    throw HiveBinaryMissing(searched: products.path)
}

struct HiveBinaryMissing: Error, CustomStringConvertible {
    var searched: String
    var description: String { "the hive executable was not found in \(searched); run the tests with `swift test`, which builds it" }
}

/// What one run of `hive` printed and how it ended.
struct CommandResult: CustomStringConvertible {
    var arguments: [String]
    var status: Int32
    var stdout: String
    var stderr: String

    var succeeded: Bool { status == 0 }

    var description: String {
        "hive \(arguments.joined(separator: " ")) -> exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)"
    }

    /// stdout parsed as a JSON object.
    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw UnexpectedOutput(result: self, expected: "a JSON object")
        }
        return object
    }

    /// The objects of a `{"items": [...]}` answer.
    func items() throws -> [[String: Any]] {
        guard let items = try json()["items"] as? [[String: Any]] else {
            throw UnexpectedOutput(result: self, expected: "{\"items\": [...]}")
        }
        return items
    }
}

struct UnexpectedOutput: Error, CustomStringConvertible {
    var result: CommandResult
    var expected: String
    var description: String { "expected \(expected) from \(result)" }
}

/// Runs the built `hive` with `arguments` and `environment` added to a clean
/// environment (no HIVE_* variables leak in from the caller's shell), output
/// captured in files so a chatty process can never block on a full pipe.
func runHive(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hive-cli-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let stdoutURL = directory.appendingPathComponent("stdout")
    let stderrURL = directory.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)

    let process = Process()
    process.executableURL = try hiveExecutable()
    process.arguments = arguments
    var base = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HIVE_") }
    base["COLUMNS"] = "200"
    process.environment = base.merging(environment) { _, new in new }
    let stdoutHandle = try FileHandle(forWritingTo: stdoutURL)
    let stderrHandle = try FileHandle(forWritingTo: stderrURL)
    process.standardOutput = stdoutHandle
    process.standardError = stderrHandle
    process.standardInput = FileHandle.nullDevice

    let status = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
        process.terminationHandler = { finished in continuation.resume(returning: finished.terminationStatus) }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    try stdoutHandle.close()
    try stderrHandle.close()
    return CommandResult(
        arguments: arguments, status: status,
        stdout: String(decoding: try Data(contentsOf: stdoutURL), as: UTF8.self),
        stderr: String(decoding: try Data(contentsOf: stderrURL), as: UTF8.self))
}

/// A TCP port nobody listens on right now (the kernel's pick for port 0).
func freePort() throws -> Int {
    let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socketFD >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(socketFD) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
    }
    guard named == 0 else { throw POSIXError(.EINVAL) }
    return Int(UInt16(bigEndian: address.sin_port))
}
