import Foundation
import HiveSandbox
import Testing

/// `hive sandbox` as a new user runs it: up, a second one refused, the VMs
/// reachable, `hive sandbox down` removes everything. It uses the sandbox's
/// fixed names (hive-h1, hive-vm1, ...), so it stays out of the way of a
/// sandbox someone is running on this machine.
@Suite(.serialized) struct SandboxCommandTests {
    static let pidFile = "/run/hive-sandbox.pid"

    static var sandboxAlreadyRunning: Bool {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return false }
        return kill(pid, 0) == 0
    }

    @Test(.enabled(if: getuid() == 0 && !sandboxAlreadyRunning, "needs root, and no sandbox already running here"))
    func sandboxComesUpRefusesASecondAndGoesDownCleanly() async throws {
        let hive = try hiveExecutable().path
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hive-sandbox-test-" + UUID().uuidString).path
        let output = Pipe()
        let sandbox = try RootNamespace.start(
            [hive, "sandbox", "--listen", "127.0.0.1:0", "--data-dir", directory], standardOutput: output.fileHandleForWriting)
        let printed = OutputCollector(output)
        defer {
            if sandbox.isRunning { sandbox.terminate() }
            sandbox.waitUntilExit()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let up = await eventually(within: 90) { printed.text.contains("The sandbox is up") || !sandbox.isRunning }
        #expect(up && sandbox.isRunning, "the sandbox came up: \(printed.text)")
        #expect(printed.text.components(separatedBy: ": ok").count - 1 == 3, "every connectivity check passed: \(printed.text)")
        for namespace in ["hive-underlay", "hive-h1", "hive-h2", "hive-vm1", "hive-vm4"] {
            #expect(NetworkNamespace.exists(namespace), "\(namespace) exists while the sandbox runs")
        }
        let reached = try? await blocking { try NetworkNamespace.run("hive-vm2", ["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.2.13"]) }
        #expect(reached != nil, "vm2 reaches vm3 across the router and the hosts")

        let second = try await blocking { () -> (Int32, String) in
            let errors = Pipe()
            let process = try RootNamespace.start([hive, "sandbox", "--listen", "127.0.0.1:0"], standardError: errors.fileHandleForWriting)
            process.waitUntilExit()
            try errors.fileHandleForWriting.close()
            return (process.terminationStatus, String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
        #expect(second.0 != 0 && second.1.contains("already running"), "a second sandbox is refused: \(second.1)")
        #expect(NetworkNamespace.exists("hive-vm1"), "and it removed nothing of the first")

        let down = try await blocking { try RootNamespace.run([hive, "sandbox", "down"], timeout: .seconds(60)) }
        #expect(down.contains("Stopping the sandbox"))
        let stopped = await eventually(within: 20) { !sandbox.isRunning }
        #expect(stopped, "hive sandbox down stopped it")
        for namespace in ["hive-underlay", "hive-h1", "hive-h2", "hive-vm1", "hive-vm2", "hive-vm3", "hive-vm4"] {
            #expect(!NetworkNamespace.exists(namespace), "\(namespace) is gone")
        }
        #expect(!FileManager.default.fileExists(atPath: Self.pidFile))
    }
}

/// Collects what a process writes to a pipe.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var collected = ""

    init(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.collected += String(decoding: data, as: UTF8.self) }
        }
    }

    var text: String { lock.withLock { collected } }
}
