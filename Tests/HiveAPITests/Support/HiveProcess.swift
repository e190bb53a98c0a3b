import Foundation
import Testing

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

/// The repository root, found from this file's path.
func repositoryRoot(file: StaticString = #filePath) -> URL {
    var url = URL(fileURLWithPath: "\(file)")
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
}

/// A running `hive api` process, with what it printed.
/// Runs a command to its end, returning its exit status and output (stdout and stderr).
/// `environment` is added to this process's own.
func runCommand(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

final class APIProcess: @unchecked Sendable {
    let process = Process()
    private let output = Pipe()
    private let errors = Pipe()
    private let lock = NSLock()
    private var printed = ""
    private var logged = ""

    init(arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = try hiveExecutable()
        process.arguments = ["api"] + arguments
        var env = ProcessInfo.processInfo.environment
        env["HIVE_ADMIN_TOKEN"] = nil
        env["HIVE_TENANT_TOKENS"] = nil
        env.merge(environment) { _, new in new }
        process.environment = env
        process.standardOutput = output
        process.standardError = errors
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.lock.withLock { self?.printed += String(decoding: data, as: UTF8.self) }
        }
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.lock.withLock { self?.logged += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    var standardOutput: String { lock.withLock { printed } }
    var standardError: String { lock.withLock { logged } }

    /// The URL from "hive api listening on http(s)://HOST:PORT", once printed.
    /// The wait is long because the whole suite shares two cores; a process that exits ends it at once.
    func waitForURL(seconds: Double = 120) async throws -> URL {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let range = standardOutput.range(of: #"https?://[^ ]+"#, options: .regularExpression),
               let url = URL(string: String(standardOutput[range])) {
                return url
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ProcessFailure(message: "hive api printed no URL; stdout: \(standardOutput) stderr: \(standardError)")
    }

    /// Waits for exit (SIGKILL after `seconds`); returns the exit status.
    func waitForExit(seconds: Double = 60) async -> Int32 {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        output.fileHandleForReading.readabilityHandler = nil
        errors.fileHandleForReading.readabilityHandler = nil
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

struct ProcessFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
