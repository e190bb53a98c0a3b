import Foundation
import Testing

/// Runs scripts/api-fuzz.sh: schemathesis against the built `hive api` and
/// its OpenAPI document. Fails on any schemathesis failure (a 5xx, or a
/// status, body, content type or header the document does not allow).
@Suite struct FuzzTests {
    @Test(.timeLimit(.minutes(6)))
    func schemathesisFindsNoFailures() async throws {
        let hive = try hiveExecutable()
        let root = repositoryRoot()
        try await withTemporaryDirectory { directory in
            let log = URL(fileURLWithPath: directory).appendingPathComponent("fuzz.log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["bash", root.appendingPathComponent("scripts/api-fuzz.sh").path]
            var environment = ProcessInfo.processInfo.environment
            environment["HIVE_BIN"] = hive.path
            process.environment = environment
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            // Poll rather than block a cooperative thread for minutes.
            while process.isRunning {
                try await Task.sleep(for: .milliseconds(250))
            }
            try handle.close()
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            let summary = output.range(of: "SUMMARY").map { String(output[$0.lowerBound...]) } ?? String(output.suffix(3000))
            print("api-fuzz (exit \(process.terminationStatus)):\n\(summary)")
            #expect(process.terminationStatus == 0, "scripts/api-fuzz.sh failed:\n\(String(output.suffix(12000)))")
            #expect(output.contains(" passed"), "schemathesis printed no result:\n\(String(output.suffix(4000)))")
        }
    }
}
