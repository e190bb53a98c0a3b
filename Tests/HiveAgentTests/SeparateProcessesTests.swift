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
        try await withEtcdCluster(members: 3) { cluster in
            try await ProcessLab.run(cluster: cluster, vms: [
                .init(name: "vm1", host: 1, mac: "02:00:0a:00:01:0b", address: "10.0.1.11/24"),
                .init(name: "vm2", host: 2, mac: "02:00:0a:00:01:0c", address: "10.0.1.12/24"),
            ]) { lab in
                let prefix = lab.prefix
                for number in 1...2 { try lab.startAgent(number) }

                // The network, with the CLI as an operator would.
                let (cli, client) = (lab.cli, lab.client)
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
}


/// Agents through a whole NSDB outage: learned state travels straight
/// between hosts, an agent restarted during the outage forwards from its
/// view cache, and a change it missed takes effect once it is back.
@Suite(.serialized) struct NSDBOutageTests {
    @Test func agentsForwardThroughAnNSDBOutageFromTheirCacheAndLearnFromEachOther() async throws {
        try OverlayLab.requireRoot()
        try await withEtcdCluster(members: 3) { cluster in
            try await ProcessLab.run(cluster: cluster, vms: [
                .init(name: "vm1", host: 1, mac: "02:00:0a:00:01:0b", address: "10.0.1.11/24", gateway: "10.0.1.1"),
                .init(name: "vm2", host: 2, mac: "02:00:0a:00:01:0c", address: "10.0.1.12/24", gateway: "10.0.1.1"),
                .init(name: "vm3", host: 2, mac: "02:00:0a:00:02:0d", address: "10.0.2.13/24", gateway: "10.0.2.1"),
            ]) { lab in
                let prefix = lab.prefix
                try lab.startAgent(1)
                // h2 knows only the third member: stopping that one cuts h2 off while the cluster keeps a quorum.
                var agent2 = try lab.startAgent(2, etcd: [cluster.endpoints[2]])

                let (cli, client) = (lab.cli, lab.client)
                #expect(try await eventually(within: 30) { try await client.list(Host.self).count == 2 }, "both agents registered")
                try await cli.run("bridge", "create", "blue")
                try await cli.run("bridge", "create", "green")
                try await cli.run("dhcp", "create", "--bridge", "blue", "--subnet", "10.0.1.0/24", "--range", "10.0.1.100-10.0.1.199")
                try await cli.run("port", "create", "vm1", "--bridge", "blue", "--mac", "02:00:0a:00:01:0b", "--address", "10.0.1.11")
                try await cli.run("port", "create", "vm2", "--bridge", "blue", "--mac", "02:00:0a:00:01:0c", "--address", "10.0.1.12")
                // No address the NSDB knows: the router must ask vm3 itself (ARP).
                try await cli.run("port", "create", "vm3", "--bridge", "green", "--mac", "02:00:0a:00:02:0d", "--port-security", "off")
                try await cli.run("router", "create", "r")
                try await cli.run("port", "create", "to-blue", "--router", "r", "--address", "10.0.1.1/24")
                try await cli.run("port", "create", "to-green", "--router", "r", "--address", "10.0.2.1/24")
                try await cli.run("port", "create", "uplink", "--bridge", "blue")
                try await cli.run("port", "create", "uplink", "--bridge", "green")
                try await cli.run("port", "link", "to-blue", "uplink", "--peer-bridge", "blue")
                try await cli.run("port", "link", "to-green", "uplink", "--peer-bridge", "green")
                try await cli.run("route", "create", "--router", "r", "--destination", "10.0.1.0/24", "--port", "to-blue")
                try await cli.run("route", "create", "--router", "r", "--destination", "10.0.2.0/24", "--port", "to-green")
                // vm2 may not reach vm3: a rule on vm2's way in (evaluated on h2, where vm2 is).
                try await cli.run("chain", "create", "vm2-in")
                let rule = try await cli.run("rule", "create", "--chain", "vm2-in", "--protocol", "icmp", "--dst", "10.0.2.13/32", "--action", "drop", "--json")
                try await cli.run("port", "update", "vm2", "--bridge", "blue", "--inbound-chain", "vm2-in")
                try await cli.run("binding", "create", "--host", "h1", "--port", "vm1", "--interface", prefix + "vm1")
                try await cli.run("binding", "create", "--host", "h2", "--port", "vm2", "--interface", prefix + "vm2")
                try await cli.run("binding", "create", "--host", "h2", "--port", "vm3", "--interface", prefix + "vm3")

                let reached = await eventually(within: 30) { (try? await NSRun.ping(prefix + "vm1", "10.0.1.12", count: 1)) != nil }
                #expect(reached, "vm1 reaches vm2")
                #expect((try? await NSRun.ping(prefix + "vm2", "10.0.2.13", count: 2)) == nil, "the rule keeps vm2 from vm3")
                // h2's cache holds the whole view (it is written within a second of a change).
                let cacheFile = lab.state + "/h2/view"
                let cached = await eventually(within: 10) {
                    let text = (try? String(contentsOfFile: cacheFile, encoding: .utf8)) ?? ""
                    return text.contains("\"format\"") && (try? Data(contentsOf: URL(fileURLWithPath: cacheFile))).map { data in
                        ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any]).flatMap { $0["records"] as? [[String: Any]] }?.count ?? 0 > 20
                    } == true
                }
                #expect(cached, "h2 wrote its view cache")
                try await Task.sleep(for: .milliseconds(1500))

                // The whole NSDB goes down.
                for member in 0..<3 { cluster.kill(member: member) }

                // A first packet to a VM behind the router that vm1 never talked to:
                // h1's router asks vm3's MAC (ARP through h2); h2 learns the answer and
                // sends it to h1 straight, with no NSDB to carry it.
                let routed = await eventually(within: 15) { (try? await NSRun.ping(prefix + "vm1", "10.0.2.13", count: 1)) != nil }
                #expect(routed, "with every etcd member stopped, vm1 reaches vm3 across the router, resolving its address anew")

                // h2's agent dies and comes back, with no NSDB to read: it forwards from its cache.
                kill(agent2.processIdentifier, SIGKILL)
                agent2.waitUntilExit()
                let restarted = ContinuousClock.now
                agent2 = try lab.startAgent(2, etcd: [cluster.endpoints[2]])
                // Short waits, so the time measured is the agent's, not ping's.
                let resumed = await eventually(within: 20) { (try? await NSRun.ping(prefix + "vm1", "10.0.1.12", count: 1, wait: "0.2")) != nil }
                let took = ContinuousClock.now - restarted
                #expect(resumed, "traffic through the restarted agent resumes from its view cache")
                print("NSDBOutageTests: vm1 -> vm2 answered \(took) after h2's agent was restarted with etcd down")
                #expect((try? await NSRun.ping(prefix + "vm1", "10.0.2.13", count: 1)) != nil, "and the routed path too")

                // The cluster is back but h2 is still cut off (its only member stays down):
                // the rule goes now, and h2 cannot know.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for member in 0..<2 { group.addTask { try await cluster.restart(member: member) } }
                    try await group.waitForAll()
                }
                let ruleID = try #require(try JSONSerialization.jsonObject(with: Data(rule.utf8)) as? [String: Any])["id"] as! String
                try await cli.run("rule", "delete", ruleID)
                #expect((try? await NSRun.ping(prefix + "vm2", "10.0.2.13", count: 2)) == nil, "h2, cut off, still drops by the old rule")

                // h2 reaches the NSDB again: it registers, reads the whole view, and the change takes effect.
                try await cluster.restart(member: 2)
                let unblocked = await eventually(within: 30) { (try? await NSRun.ping(prefix + "vm2", "10.0.2.13", count: 1)) != nil }
                #expect(unblocked, "the rule deleted while h2 was cut off stops dropping once h2 is back (no stale flow survives)")
                let alive = await eventually(within: 30) {
                    (try? await cli.run("host", "list"))?.split(separator: "\n").contains { $0.contains("h2") && $0.contains(" yes ") } ?? false
                }
                #expect(alive, "h2 is registered alive again")
                #expect(await eventually(within: 20) { (try? await NSRun.ping(prefix + "vm1", "10.0.1.12", count: 1)) != nil }, "and vm1 reaches vm2 through it")
            }
        }
    }
}

enum NSRun {
    @discardableResult
    static func ping(_ namespace: String, _ address: String, count: Int = 3, wait: String = "2") async throws -> String {
        try await blocking { try NetworkNamespace.run(namespace, ["ping", "-c", "\(count)", "-i", "0.2", "-W", wait, address], timeout: .seconds(30)) }
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
