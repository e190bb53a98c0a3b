import Foundation
import HiveAPI
import HiveAgent
import HiveAgentHTTP
import HiveClient
import HiveModel
import struct HiveModel.Port
import HivePacket
import HiveSandbox
import HiveStore
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// A whole Hive on real namespaces, in this process: hosts on an underlay,
/// VMs on veth pairs, the embedded store, the REST API on a loopback port
/// and one agent per host. Tests build the virtual network through the API
/// (`client`, admin) as a user would, and send real traffic between VMs.
final class OverlayLab: Sendable {
    struct VM: Sendable {
        var name: String
        var host: Int
        var address: String
        var prefixLength: Int = 24
        var gateway: String?
        var mac: String
        /// Leave eth0 unconfigured: a DHCP client gets `address` from Hive.
        var dhcp = false
        var mtu = 1400
        var portSecurity = true
        /// Create the port without an address: Hive gives it one from the pool when the VM asks DHCP.
        var addressless = false
    }

    let prefix: String
    let network: SandboxNetwork
    let vms: [VM]
    let client: HiveClient
    let endpoint: URL
    let store: EmbeddedStore
    /// The agents' listener (metrics, and their state behind `agentToken`); the API asks it.
    let agentEndpoint: URL
    private let agentDirectory: AgentDirectory
    /// Each agent runs in a service group of its own, so one can restart.
    private let runners: Mutex<[AgentRunner]>
    private let logger: Logger

    /// The agents, h1 first.
    var agents: [Agent] { runners.withLock { $0.map(\.agent) } }

    private init(
        prefix: String, network: SandboxNetwork, vms: [VM], client: HiveClient, endpoint: URL, runners: [AgentRunner],
        store: EmbeddedStore, logger: Logger, agentEndpoint: URL, agentDirectory: AgentDirectory
    ) {
        self.agentEndpoint = agentEndpoint
        self.agentDirectory = agentDirectory
        self.store = store
        self.prefix = prefix
        self.network = network
        self.vms = vms
        self.client = client
        self.endpoint = endpoint
        self.runners = Mutex(runners)
        self.logger = logger
    }

    /// An agent and the service group running it.
    struct AgentRunner: Sendable {
        var agent: Agent
        var group: ServiceGroup
        var task: Task<Void, any Error>
        var store: SeverableStore

        static func start(_ agent: Agent, store: SeverableStore, logger: Logger) -> AgentRunner {
            let group = ServiceGroup(configuration: .init(services: [agent], logger: logger))
            return AgentRunner(agent: agent, group: group, task: Task { try await group.run() }, store: store)
        }

        func stop() async {
            await group.triggerGracefulShutdown()
            _ = try? await task.value
        }
    }

    /// Stops host `number`'s agent (it saves its state) and starts a new one
    /// with the same configuration (it reads the state back).
    func restartAgent(_ number: Int) async throws {
        let old = runners.withLock { $0[number - 1] }
        await old.stop()
        let severable = SeverableStore(store)
        let agent = try Agent(store: severable, configuration: old.agent.configuration, logger: logger)
        let runner = AgentRunner.start(agent, store: severable, logger: logger)
        runners.withLock { $0[number - 1] = runner }
        agentDirectory.set(agents)
    }

    /// Stops host `number`'s agent and starts a new one with no view cache,
    /// whose store does not answer until `heal()` is called on the store returned.
    func restartAgentWithoutViewCache(_ number: Int) async throws -> (runner: AgentRunner, store: SeverableStore) {
        let old = runners.withLock { $0[number - 1] }
        await old.stop()
        if let directory = old.agent.configuration.stateDirectory {
            try? FileManager.default.removeItem(atPath: directory + "/view")
        }
        let severable = SeverableStore(store, severed: true)
        let agent = try Agent(store: severable, configuration: old.agent.configuration, logger: logger)
        let runner = AgentRunner.start(agent, store: severable, logger: logger)
        runners.withLock { $0[number - 1] = runner }
        agentDirectory.set(agents)
        return (runner, severable)
    }

    /// Host `number`'s agent dies: it stops talking to the store (its lease
    /// is neither renewed nor revoked, so it lapses after the TTL), and its
    /// datapath stops.
    func killAgent(_ number: Int) async {
        let runner = runners.withLock { $0[number - 1] }
        runner.store.sever()
        await runner.stop()
    }

    /// Moves VM `vm`'s host end from its host to host `number` and binds
    /// its port there (the VM keeps its namespace, addresses and sockets).
    func migrate(_ vm: String, port: PortID, to number: Int) async throws {
        guard let spec = vms.first(where: { $0.name == vm }) else { throw LabError("no VM \(vm) in the lab") }
        let interface = prefix + vm
        let current = try await client.bindings(port: port)
        let source = try await currentHostNamespace(of: interface) ?? prefix + "h\(spec.host)"
        try await blocking {
            try NetworkNamespace.run(source, ["ip", "link", "set", "dev", interface, "netns", self.prefix + "h\(number)"])
            try NetworkNamespace.run(self.prefix + "h\(number)", ["ip", "link", "set", "dev", interface, "up"])
        }
        for binding in current { try await client.delete(binding.object.id) }
        _ = try await client.create(Binding(hostId: try await hostID(number), portId: port, interfaceName: interface))
    }

    private func currentHostNamespace(of interface: String) async throws -> String? {
        let hosts = network.hosts.map(\.name)
        return try await blocking {
            hosts.first { host in (try? NetworkNamespace.run(host, ["ip", "link", "show", "dev", interface])) != nil }
        }
    }

    static let adminToken = "lab-admin-token-0001"
    static let agentToken = "lab-agent-token-0001"

    /// Builds the lab, runs `body`, and always tears everything down.
    static func run(
        hosts: Int = 2, vms: [VM], configure: @Sendable (inout AgentConfiguration) -> Void = { _ in },
        _ body: (OverlayLab) async throws -> Void
    ) async throws {
        try requireRoot()
        let prefix = "hive-" + String(UInt32.random(in: 0..<0xFFFF), radix: 16) + "-"
        let network = SandboxNetwork(
            prefix: prefix,
            hosts: (1...hosts).map { SandboxNetwork.Host(name: prefix + "h\($0)", underlayAddress: "100.64.0.\($0)/24") },
            vms: vms.map { vm in
                SandboxNetwork.VM(
                    name: prefix + vm.name, host: prefix + "h\(vm.host)", hostInterface: prefix + vm.name,
                    mac: vm.mac, address: vm.dhcp ? nil : "\(vm.address)/\(vm.prefixLength)", gateway: vm.gateway, mtu: vm.mtu)
            })
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(prefix + UUID().uuidString).path
        // Making and removing namespaces runs `ip` to completion: off the cooperative pool.
        try await blocking { try network.create() }
        do {
            try await runServices(
                network: network, vms: vms, hosts: hosts, prefix: prefix, directory: directory, configure: configure, body)
        } catch {
            try? await blocking { network.destroy(); SandboxNetwork.destroyAll(prefix: prefix) }
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        // destroyAll: also the namespaces a test added under the lab's prefix.
        try? await blocking { network.destroy(); SandboxNetwork.destroyAll(prefix: prefix) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func runServices(
        network: SandboxNetwork, vms: [VM], hosts: Int, prefix: String, directory: String,
        configure: @Sendable (inout AgentConfiguration) -> Void, _ body: (OverlayLab) async throws -> Void
    ) async throws {
        let store = try EmbeddedStore(directory: directory)
        var logger = Logger(label: "hive.lab")
        logger.logLevel = .warning
        // The agents' listener first: each agent records its URL in its host.
        let agentDirectory = AgentDirectory()
        let listener: RunningAgentListener
        do {
            listener = try await AgentHTTPServer.start(directory: agentDirectory, token: agentToken, host: "127.0.0.1", port: 0, logger: logger)
        } catch {
            await store.close()
            throw error
        }
        do {
            try await runAgentsAndAPI(
                network: network, vms: vms, hosts: hosts, prefix: prefix, directory: directory, configure: configure, store: store,
                logger: logger, listener: listener, agentDirectory: agentDirectory, body)
        } catch {
            await listener.stop()
            throw error
        }
        await listener.stop()
    }

    private static func runAgentsAndAPI(
        network: SandboxNetwork, vms: [VM], hosts: Int, prefix: String, directory: String,
        configure: @Sendable (inout AgentConfiguration) -> Void, store: EmbeddedStore, logger: Logger,
        listener: RunningAgentListener, agentDirectory: AgentDirectory, _ body: (OverlayLab) async throws -> Void
    ) async throws {
        let agentEndpoint = URL(string: "http://127.0.0.1:\(listener.port)")!
        var agents: [(Agent, SeverableStore)] = []
        for number in 1...hosts {
            let state = directory + "/h\(number)"
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            var configuration = AgentConfiguration(
                hostName: "h\(number)", hostID: HostID(), stateDirectory: state, underlayAddress: IPv4.Address(100, 64, 0, UInt8(number)),
                networkNamespace: prefix + "h\(number)", tunnelZone: "lab")
            configuration.leaseTTL = 5
            configuration.agentEndpoint = agentEndpoint.absoluteString
            configure(&configuration)
            let severable = SeverableStore(store)
            agents.append((try Agent(store: severable, configuration: configuration, logger: logger), severable))
        }
        agentDirectory.set(agents.map(\.0))
        var tokens = TokenTable()
        tokens.add(token: adminToken, for: .admin)
        let bound = PortBox()
        let application = try HiveAPIServer(repository: TopologyRepository(store: store), tokens: tokens, agentToken: agentToken)
            .buildApplication(host: "127.0.0.1", port: 0, logger: logger) { port in bound.set(port) }
        let group = ServiceGroup(configuration: .init(services: [application], logger: logger))
        let running = Task { try await group.run() }
        let lab: OverlayLab
        do {
            let port = try await bound.wait()
            let endpoint = URL(string: "http://127.0.0.1:\(port)")!
            let client = HiveClient(endpoint: endpoint, token: adminToken)
            lab = OverlayLab(
                prefix: prefix, network: network, vms: vms, client: client, endpoint: endpoint,
                runners: agents.map { AgentRunner.start($0.0, store: $0.1, logger: logger) }, store: store, logger: logger,
                agentEndpoint: agentEndpoint, agentDirectory: agentDirectory)
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            await store.close()
            throw error
        }
        do {
            try await lab.waitForHosts(hosts)
            try await body(lab)
        } catch {
            await lab.stopAll()
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            await store.close()
            throw error
        }
        await lab.stopAll()
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        await store.close()
    }

    private func stopAll() async {
        for runner in runners.withLock({ $0 }) { await runner.stop() }
    }

    static func requireRoot() throws {
        guard getuid() == 0 else {
            throw LabError("end-to-end tests need root (network namespaces, veth pairs, packet sockets)")
        }
    }

    // MARK: Topology through the API

    func waitForHosts(_ count: Int) async throws {
        let ok = try await eventually(within: 20) { try await self.client.list(Host.self).count >= count }
        guard ok else { throw LabError("the agents did not register \(count) hosts") }
    }

    func hostID(_ number: Int) async throws -> HostID {
        guard let host = try await client.list(Host.self).first(where: { $0.object.name == "h\(number)" }) else {
            throw LabError("host h\(number) is not registered")
        }
        return host.object.id
    }

    /// A bridge port for `vm` with its MAC and address (a subnet of the
    /// bridge holds it: made here when missing, DHCP on, gateway the VM's),
    /// bound to its host interface on its host.
    @discardableResult
    func plug(_ vm: String, into bridge: BridgeID) async throws -> (port: Port, binding: Binding) {
        guard let spec = vms.first(where: { $0.name == vm }) else { throw LabError("no VM \(vm) in the lab") }
        let address = IPv4.Address(parsing: spec.address)!
        let network = IPv4.Prefix(address: address, length: UInt8(spec.prefixLength)).network
        let subnets = try await client.dhcpSubnets(of: bridge).map(\.object)
        if !subnets.contains(where: { $0.bridgeId == bridge && $0.subnet.contains(address) }) {
            let last = network.broadcast.value
            _ = try await client.create(DHCPSubnet(
                bridgeId: bridge, subnet: network, rangeStart: IPv4.Address(last - 50), rangeEnd: IPv4.Address(last - 10),
                gateway: spec.gateway.flatMap(IPv4.Address.init(parsing:))))
        }
        let port = try await client.create(Port(
            bridge: bridge, name: vm, mac: EthernetAddress(parsing: spec.mac)!, fixedIPs: spec.addressless ? [] : [address],
            portSecurity: spec.portSecurity)).object
        let binding = try await client.create(Binding(hostId: try await hostID(spec.host), portId: port.id, interfaceName: prefix + vm)).object
        return (port, binding)
    }

    /// A router port with `address`/`subnet`, linked to a new port of `bridge`, and the route to the subnet.
    @discardableResult
    func connect(_ router: RouterID, to bridge: BridgeID, address: String, subnet: String) async throws -> Route {
        let routerPort = try await client.create(Port(
            router: router, name: "to-\(bridge.description.prefix(8))",
            address: IPv4.Address(parsing: address)!, subnet: IPv4.Prefix(parsing: subnet)!, mac: Port.generatedMAC())).object
        let uplink = try await client.create(Port(bridge: bridge, name: "uplink")).object
        _ = try await client.link(routerPort.id, to: uplink.id)
        return try await client.create(Route(routerId: router, destination: IPv4.Prefix(parsing: subnet)!, egressPortId: routerPort.id)).object
    }

    /// Waits until every agent has opened the interfaces of its bindings.
    func waitForBoundPorts(_ count: Int) async throws {
        let ok = await eventually(within: 20) { self.agents.reduce(0) { $0 + $1.statistics.ports.count } >= count }
        guard ok else { throw LabError("the agents did not bind \(count) ports") }
    }

    // MARK: Traffic

    func namespace(_ vm: String) -> String { prefix + vm }

    /// `ping -c count` from a VM; true when every echo was answered.
    func ping(from vm: String, to address: String, count: Int = 3) async -> Bool {
        let namespace = namespace(vm)
        return (try? await blocking {
            try NetworkNamespace.run(namespace, ["ping", "-c", "\(count)", "-i", "0.2", "-W", "2", address], timeout: .seconds(30))
        }) != nil
    }

    /// Pings until one answer comes back (the first packets resolve ARP and set up flows).
    func pingEventually(from vm: String, to address: String, within seconds: Double = 15) async -> Bool {
        await eventually(within: seconds) { await self.ping(from: vm, to: address, count: 1) }
    }
}

struct LabError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The API's port, once bound.
final class PortBox: @unchecked Sendable {
    private let lock = NSLock()
    private var port: Int?
    func set(_ value: Int) { lock.withLock { port = value } }
    func wait() async throws -> Int {
        for _ in 0..<600 {
            if let port = lock.withLock({ port }) { return port }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LabError("the API did not start listening")
    }
}

func eventually(within seconds: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(200))
    }
    return try await condition()
}

/// A `ping` left running in a VM, counting its answers.
final class PingMonitor: @unchecked Sendable {
    private let process: Process
    private let pipe = Pipe()
    private let lock = NSLock()
    private var answered = 0
    private var buffer = ""

    init(namespace: String, address: String, interval: String = "0.1", interface: String? = nil) throws {
        let handle = pipe.fileHandleForWriting
        let from = interface.map { ["-I", $0] } ?? []
        process = try NetworkNamespace.start(namespace, ["ping", "-i", interval, "-W", "1"] + from + [address], standardOutput: handle)
        pipe.fileHandleForReading.readabilityHandler = { [weak self] reading in
            let data = reading.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock {
                self.buffer += String(decoding: data, as: UTF8.self)
                while let newline = self.buffer.firstIndex(of: "\n") {
                    if self.buffer[..<newline].contains("bytes from") { self.answered += 1 }
                    self.buffer.removeSubrange(...newline)
                }
            }
        }
    }

    var answers: Int { lock.withLock { answered } }

    func stop() {
        // SIGTERM ends ping at once; no wait for it on a cooperative thread.
        process.terminate()
        pipe.fileHandleForReading.readabilityHandler = nil
    }
}
