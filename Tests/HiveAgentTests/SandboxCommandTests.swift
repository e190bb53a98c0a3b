import Foundation
import HiveClient
import HiveModel
import HivePacket
import HiveSandbox
import Testing

/// `hive sandbox` as a new user runs it: up, a second one refused, the VMs
/// reachable, the outside world built and stored, `hive sandbox down`
/// removes everything. It uses the sandbox's fixed names (hive-h1,
/// hive-vm1, ...), so it stays out of the way of a sandbox someone is
/// running on this machine. Traffic through the uplinks (NAT) is not
/// required: only what the sandbox itself builds.
@Suite(.serialized) struct SandboxCommandTests {
    static let pidFile = "/run/hive-sandbox.pid"
    static let namespaces = [
        "hive-underlay", "hive-h1", "hive-h2", "hive-gw1", "hive-gw2", "hive-internet", "hive-vm1", "hive-vm2", "hive-vm3", "hive-vm4",
    ]

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
        for namespace in Self.namespaces {
            #expect(NetworkNamespace.exists(namespace), "\(namespace) exists while the sandbox runs")
        }
        let reached = try? await blocking { try NetworkNamespace.run("hive-vm2", ["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.2.13"]) }
        #expect(reached != nil, "vm2 reaches vm3 across the router and the hosts")
        // This build is not on the PATH: the guide says how to reach it, so its commands work as printed.
        let binDirectory = URL(fileURLWithPath: hive).deletingLastPathComponent().resolvingSymlinksInPath().path
        #expect(printed.text.contains("export PATH=\(binDirectory):$PATH"), "\(printed.text)")
        try await expectLiveTrace(hive, printed.text)
        // The guide names token files; the tokens in them are printed nowhere.
        for name in ["admin-token", "blue-token", "green-token"] {
            let token = try String(contentsOfFile: directory + "/" + name, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(token.count >= 16 && !printed.text.contains(token), "\(name) is not printed")
        }

        // The outside world: its server answers locally, vm1's web server
        // answers inside vm1, and the guide tells how to reach it from outside.
        #expect(printed.text.contains("server 203.0.113.10:80 in hive-internet: answering, \"you are 203.0.113.10\""), "\(printed.text)")
        #expect(printed.text.contains("ip netns exec hive-internet curl http://198.51.100.10/"))
        let vmServer = try? await blocking { try SandboxHTTPClient.get(address: "10.0.1.11", namespace: "hive-vm1") }
        #expect(vmServer?.body == "hello from vm1 (10.0.1.11)\n")
        let route = try? await blocking { try NetworkNamespace.run("hive-internet", ["ip", "route", "show", "198.51.100.0/24"]) }
        #expect(route?.contains("nexthop via 192.0.2.2 dev gw1") == true && route?.contains("nexthop via 192.0.2.18 dev gw2") == true)
        try await expectStoredEdge(printed.text)
        try await expectAgentState(printed.text, hive: hive)

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
        for namespace in Self.namespaces {
            #expect(!NetworkNamespace.exists(namespace), "\(namespace) is gone")
        }
        #expect(!FileManager.default.fileExists(atPath: Self.pidFile))
    }
}

/// Reads the provider router, edge's gateway, their routes and the uplinks'
/// bindings through the API, with the endpoint and admin token the sandbox printed.
private func expectStoredEdge(_ printed: String) async throws {
    func value(after marker: String) -> String? {
        printed.components(separatedBy: marker).dropFirst().first?.split(whereSeparator: \.isWhitespace).first.map(String.init)
    }
    let endpoint = try #require(value(after: "export HIVE_ENDPOINT=").flatMap(URL.init(string:)))
    let token = try sandboxToken(value(after: "export HIVE_TOKEN_FILE="))
    let client = HiveClient(endpoint: endpoint, token: token)

    let routers = try await client.list(Router.self).map(\.object)
    let provider = try #require(routers.first { $0.name == "provider" })
    let edge = try #require(routers.first { $0.name == "edge" })
    let ports = try await client.list(Port.self).map(\.object)
    let gatewayPort = try #require(ports.first { $0.routerId == edge.id && $0.name == "gateway" })
    #expect(edge.gateway == RouterGateway(portId: gatewayPort.id, snatAddress: IPv4.Address(198, 51, 100, 2)))
    let toEdge = try #require(ports.first { $0.routerId == provider.id && $0.name == "to-edge" })
    #expect(toEdge.peerId == gatewayPort.id && toEdge.address == IPv4.Address(198, 51, 100, 1))

    let uplinks = ports.filter { $0.routerId == provider.id && $0.name?.hasPrefix("uplink") == true }.sorted { $0.name! < $1.name! }
    #expect(uplinks.map { "\($0.address.map { "\($0)" } ?? "-")/\($0.subnet.map { "\($0.length)" } ?? "-")" } == ["192.0.2.2/28", "192.0.2.18/28"])
    let hosts = try await client.list(Host.self).map(\.object)
    for (uplink, host) in zip(uplinks, ["hive-gw1", "hive-gw2"]) {
        let binding = try #require(try await client.bindings(port: uplink.id).first?.object)
        #expect(binding.interfaceName == "ext0" && binding.hostId == hosts.first { $0.name == host }?.id, "\(uplink.name ?? "") is bound to \(host)/ext0")
    }
    let defaults = try await client.routes(of: provider.id).map(\.object).filter { $0.destination.length == 0 }
    #expect(Set(defaults.compactMap(\.nextHopGateway)) == [IPv4.Address(192, 0, 2, 1), IPv4.Address(192, 0, 2, 17)])
    #expect(Set(defaults.map(\.weight)).count == 1, "equal weights: ECMP")
    let edgeDefault = try await client.routes(of: edge.id).map(\.object).filter { $0.destination.length == 0 }
    #expect(edgeDefault.map(\.nextHopGateway) == [IPv4.Address(198, 51, 100, 1)])
}

/// `hive flows` and `hive port show` from another shell, with what the
/// sandbox printed: the API asks the sandbox's agents.
private func expectAgentState(_ printed: String, hive: String) async throws {
    func value(after marker: String) -> String? {
        printed.components(separatedBy: marker).dropFirst().first?.split(whereSeparator: \.isWhitespace).first.map(String.init)
    }
    let connection = ["--endpoint", try #require(value(after: "export HIVE_ENDPOINT=")), "--token", try sandboxToken(value(after: "export HIVE_TOKEN_FILE="))]
    _ = try? await blocking { try NetworkNamespace.run("hive-vm1", ["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.1.12"]) }
    let flows = try await blocking { try RootNamespace.run([hive, "flows", "--host", "hive-h1"] + connection) }
    #expect(flows.contains("on host hive-h1") && flows.contains("in-port=blue/vm1 "), "\(flows)")
    let summary = try await blocking { try RootNamespace.run([hive, "flows", "--host", "hive-h1", "--summary"] + connection) }
    #expect(summary.contains("hit rate"), "\(summary)")
    let port = try await blocking { try RootNamespace.run([hive, "port", "show", "blue/vm1"] + connection) }
    let state = port.split(separator: "\n").first { $0.hasPrefix("  state ") }
    #expect(state?.hasSuffix(" up") == true && port.contains("hive-h1 (alive)"), "\(port)")
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

/// `hive trace --live` as the guide prints it: vm1's echo requests, traced
/// on vm1's host, reach vm4 on the other host.
private func expectLiveTrace(_ hive: String, _ printed: String) async throws {
    func value(after marker: String) -> String? {
        printed.components(separatedBy: marker).dropFirst().first?.split(whereSeparator: \.isWhitespace).first.map(String.init)
    }
    let endpoint = try #require(value(after: "export HIVE_ENDPOINT="))
    let token = try sandboxToken(value(after: "export HIVE_TOKEN_FILE="))
    let pinging = Task {
        try? await Task.sleep(for: .seconds(1))
        _ = try? await blocking { try NetworkNamespace.run("hive-vm1", ["ping", "-c", "4", "-i", "0.5", "-W", "2", "10.0.2.14"]) }
    }
    let traced = try await blocking {
        try RootNamespace.run(
            [hive, "trace", "--live", "--port", "vm1", "--match", "icmp and dst host 10.0.2.14", "--count", "2", "--timeout", "20s",
             "--endpoint", endpoint, "--token", token], timeout: .seconds(40))
    }
    await pinging.value
    #expect(traced.contains("Tracing packets matching 'icmp and dst host 10.0.2.14' entering by port vm1"), "\(traced)")
    #expect(traced.components(separatedBy: "Result: OUTPUT to port green/vm4").count - 1 == 2, "two echo requests traced: \(traced)")
    #expect(traced.contains("host hive-h1: Packet: ICMP type 8"), "traced where they enter: \(traced)")
    #expect(traced.contains("Egress: port green/vm4 (host hive-h2, alive)"), "\(traced)")
    #expect(traced.contains("router edge"), "\(traced)")
}

/// The admin token from the file the sandbox's guide names (it prints no token).
private func sandboxToken(_ path: String?) throws -> String {
    let path = try #require(path, "the guide names the admin's token file")
    let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    #expect(mode & 0o077 == 0, "the token file is owner-only")
    return try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
}
