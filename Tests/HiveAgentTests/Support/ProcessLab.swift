import Foundation
import HiveClient
import HiveSandbox
import HiveTestSupport

/// The deployment shape of a real cloud on one machine: an etcd cluster,
/// `hive api` and `hive agent` processes, hosts and VMs in namespaces.
/// Everything it starts is stopped and removed however the test ends.
struct ProcessLab {
    /// A VM on host `host` (1, 2, ...), named without the lab's prefix.
    struct VM {
        var name: String
        var host: Int
        var mac: String
        var address: String
        var gateway: String? = nil
    }

    let hive: String
    let prefix: String
    let cluster: EtcdCluster
    let state: String
    let processes: ProcessList
    let url: URL
    let cli: CLI
    let client: HiveClient

    static let adminToken = "process-lab-admin"

    static func run(cluster: EtcdCluster, hosts: Int = 2, vms: [VM], _ body: (ProcessLab) async throws -> Void) async throws {
        let hive = try hiveExecutable().path
        let prefix = "hive-" + String(UInt32.random(in: 0..<0xFFFF), radix: 16) + "-"
        let network = SandboxNetwork(
            prefix: prefix,
            hosts: (1...hosts).map { .init(name: prefix + "h\($0)", underlayAddress: "100.64.0.\($0)/24") },
            vms: vms.map {
                .init(name: prefix + $0.name, host: prefix + "h\($0.host)", hostInterface: prefix + $0.name, mac: $0.mac, address: $0.address, gateway: $0.gateway)
            })
        try await blocking { try network.create() }
        let state = FileManager.default.temporaryDirectory.appendingPathComponent(prefix + UUID().uuidString).path
        let processes = ProcessList()
        // Removed before returning, however the test ends: a process that
        // exits right after a test would never run a deferred, queued cleanup.
        @Sendable func cleanUp() async {
            processes.terminateAll()
            _ = try? await blocking {
                processes.waitAll()
                network.destroy()
                try? FileManager.default.removeItem(atPath: state)
            }
        }
        do {
            let api = try APIProcess(arguments: ["--listen", "127.0.0.1:0", "--etcd", cluster.endpoints.joined(separator: ","), "--admin-token", adminToken])
            processes.add(api.process)
            let url = try await api.waitForURL()
            try await body(ProcessLab(
                hive: hive, prefix: prefix, cluster: cluster, state: state, processes: processes, url: url,
                cli: CLI(hive: hive, endpoint: url.absoluteString, token: adminToken), client: HiveClient(endpoint: url, token: adminToken)))
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }

    /// Starts host `number`'s agent on `etcd` (default: every member), keeping its state in `state/h<number>`.
    @discardableResult
    func startAgent(_ number: Int, etcd: [String]? = nil) throws -> Process {
        let process = try RootNamespace.start([
            hive, "agent", "--name", "h\(number)", "--underlay", "100.64.0.\(number)", "--netns", prefix + "h\(number)",
            "--tunnel-zone", "lab", "--etcd", (etcd ?? cluster.endpoints).joined(separator: ","),
            "--state-dir", state + "/h\(number)", "--log-level", "warning",
        ], standardError: FileHandle(forWritingAtPath: "/dev/null"))
        processes.add(process)
        return process
    }

    func namespace(_ vm: String) -> String { prefix + vm }
}
