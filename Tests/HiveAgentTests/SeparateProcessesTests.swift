import Foundation
import HiveClient
import HiveModel
import HivePacket
import HiveSandbox
import Testing
import struct HiveModel.Port
import HiveTestSupport

/// The deployment shape of a real cloud: a three-member etcd cluster, `hive
/// api` and one `hive agent` per host as separate processes, the network
/// built with the `hive` CLI.
@Suite(.serialized) struct SeparateProcessesTests {
    @Test func agentProcessesOnAnEtcdClusterConnectVMsAcrossHosts() async throws {
        try OverlayLab.requireRoot()
        let hive = try hiveExecutable().path
        try await withEtcdCluster(members: 3) { cluster in
            let endpoints = cluster.endpoints.joined(separator: ",")
            let prefix = "hive-" + String(UInt32.random(in: 0..<0xFFFF), radix: 16) + "-"
            let network = SandboxNetwork(
                prefix: prefix,
                hosts: [.init(name: prefix + "h1", underlayAddress: "100.64.0.1/24"), .init(name: prefix + "h2", underlayAddress: "100.64.0.2/24")],
                vms: [
                    .init(name: prefix + "vm1", host: prefix + "h1", hostInterface: prefix + "vm1", mac: "02:00:0a:00:01:0b", address: "10.0.1.11/24"),
                    .init(name: prefix + "vm2", host: prefix + "h2", hostInterface: prefix + "vm2", mac: "02:00:0a:00:01:0c", address: "10.0.1.12/24"),
                ])
            try await blocking { try network.create() }
            let state = FileManager.default.temporaryDirectory.appendingPathComponent(prefix + UUID().uuidString).path
            let processes = ProcessList()
            defer {
                // Stopped and removed without waiting here; `ip netns delete` kills what is left inside.
                processes.terminateAll()
                DispatchQueue.global().async {
                    processes.waitAll()
                    network.destroy()
                    try? FileManager.default.removeItem(atPath: state)
                }
            }
            let api = try APIProcess(arguments: ["--listen", "127.0.0.1:0", "--etcd", endpoints, "--admin-token", "etcd-admin"])
            processes.add(api.process)
            let url = try await api.waitForURL()
            for number in 1...2 {
                let log = FileHandle(forWritingAtPath: "/dev/null")
                processes.add(try RootNamespace.start([
                    hive, "agent", "--name", "h\(number)", "--underlay", "100.64.0.\(number)", "--netns", prefix + "h\(number)",
                    "--tunnel-zone", "lab", "--etcd", endpoints, "--state-dir", state + "/h\(number)", "--log-level", "warning",
                ], standardError: log))
            }

            // The network, with the CLI as an operator would.
            let cli = CLI(hive: hive, endpoint: url.absoluteString, token: "etcd-admin")
            let client = HiveClient(endpoint: url, token: "etcd-admin")
            let registered = try await eventually(within: 30) { try await client.list(Host.self).count == 2 }
            #expect(registered, "both agents registered their hosts")
            try await cli.run("bridge", "create", "blue")
            try await cli.run("dhcp", "create", "--bridge", "blue", "--subnet", "10.0.1.0/24", "--range", "10.0.1.100-10.0.1.199")
            // Each port with its VM's MAC and address, as a cloud's compute service would create them.
            try await cli.run("port", "create", "vm1", "--bridge", "blue", "--mac", "02:00:0a:00:01:0b", "--address", "10.0.1.11")
            try await cli.run("port", "create", "vm2", "--bridge", "blue", "--mac", "02:00:0a:00:01:0c", "--address", "10.0.1.12")
            try await cli.run("binding", "create", "--host", "h1", "--port", "vm1", "--interface", prefix + "vm1")
            try await cli.run("binding", "create", "--host", "h2", "--port", "vm2", "--interface", prefix + "vm2")

            let reached = await eventually(within: 30) {
                (try? await NSRun.ping(prefix + "vm1", "10.0.1.12", count: 1)) != nil
            }
            #expect(reached, "vm1 reaches vm2 through two agent processes sharing etcd")
            #expect((try? await NSRun.ping(prefix + "vm2", "10.0.1.11")) != nil)
            let hosts = try await cli.run("host", "list")
            #expect(hosts.contains("h1") && hosts.contains("h2"), "hive host list shows both hosts: \(hosts)")

            // The whole NSDB goes down: the agents keep forwarding with what they know,
            // for flows they cached and for new ones (a new ping is a new flow).
            for member in 0..<3 { cluster.kill(member: member) }
            try await Task.sleep(for: .seconds(1))
            #expect((try? await NSRun.ping(prefix + "vm1", "10.0.1.12")) != nil, "forwarding goes on while etcd is down")
            #expect((try? await NSRun.ping(prefix + "vm2", "10.0.1.11")) != nil, "and new flows are simulated on the last view")

            // It comes back: the agents' watches resume, and a change made now takes effect.
            // All at once: one member alone has no quorum, so is never healthy.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for member in 0..<3 { group.addTask { try await cluster.restart(member: member) } }
                try await group.waitForAll()
            }
            try await cli.run("chain", "create", "no-icmp")
            try await cli.run("rule", "create", "--chain", "no-icmp", "--protocol", "icmp", "--action", "drop")
            try await cli.run("port", "update", "vm2", "--bridge", "blue", "--inbound-chain", "no-icmp")
            let blocked = await eventually(within: 20) { (try? await NSRun.ping(prefix + "vm1", "10.0.1.12", count: 2)) == nil }
            #expect(blocked, "a rule added after the outage reaches the agents")
        }
    }
}

enum NSRun {
    @discardableResult
    static func ping(_ namespace: String, _ address: String, count: Int = 3) async throws -> String {
        try await blocking { try NetworkNamespace.run(namespace, ["ping", "-c", "\(count)", "-i", "0.2", "-W", "2", address], timeout: .seconds(30)) }
    }
}

/// Processes a test started, to stop however it ends.
final class ProcessList: @unchecked Sendable {
    private let lock = NSLock()
    private var processes: [Process] = []
    func add(_ process: Process) { lock.withLock { processes.append(process) } }
    func terminateAll() { for process in lock.withLock({ processes }) where process.isRunning { process.terminate() } }
    func waitAll() { for process in lock.withLock({ processes }) { process.waitUntilExit() } }
}

/// The built `hive` CLI, pointed at one API.
struct CLI {
    var hive: String
    var endpoint: String
    var token: String

    @discardableResult
    func run(_ arguments: String...) async throws -> String {
        let command = ["env", "HIVE_ENDPOINT=\(endpoint)", "HIVE_TOKEN=\(token)", hive] + arguments
        return try await blocking { try RootNamespace.run(command, timeout: .seconds(60)) }
    }
}
