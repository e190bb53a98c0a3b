import ArgumentParser
import Foundation
import HiveAPI
import HiveAgent
import HiveAgentHTTP
import HiveModel
import HivePacket
import HiveSandbox
import HiveStore
import Logging
import ServiceLifecycle

/// `hive sandbox`: all of Hive on one machine, in network namespaces.
struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run Hive on this machine: hosts and VMs in network namespaces, the store, the API and the agents.",
        subcommands: [Up.self, Down.self],
        defaultSubcommand: Up.self)

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "up",
            abstract: "Build the sandbox and run it until Ctrl-C (the default).",
            discussion: """
                Creates namespaces hive-underlay, hive-h1 and hive-h2 (hosts on a 100.64.0.0/24 underlay), \
                hive-gw1 and hive-gw2 (gateway hosts), hive-internet (the outside world: an upstream router on \
                192.0.2.0/24 links to the gateways' ext0, a server at 203.0.113.10) and hive-vm1 ... hive-vm4 \
                (VMs on veth pairs), starts the embedded store, the API and one agent per host in this process, \
                stores a demo network (tenant blue: bridge blue with vm1 and vm2; tenant green: bridge green with \
                vm3 and vm4; the router edge between them; the provider router with uplinks on gw1 and gw2, \
                edge's gateway with SNAT to 198.51.100.2, vm1's floating IP 198.51.100.10), runs tiny HTTP \
                servers in vm1 and hive-internet, checks that the VMs reach each other, and prints what to try. \
                Ctrl-C, SIGTERM or `hive sandbox down` removes everything it made. Needs root.
                """)

        @Option(help: ArgumentHelp("Where the API listens, HOST:PORT.", valueName: "host:port"))
        var listen = "127.0.0.1:9696"

        @Option(name: .customLong("data-dir"), help: ArgumentHelp("The sandbox's embedded store (emptied on start).", discussion: "Default: ~/.hive/sandbox."))
        var dataDirectory: String?

        @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error or critical.", valueName: "level"))
        var logLevel = "notice"

        func run() async throws {
            let plan = SandboxPlan()
            let network = plan.network
            do {
                try SandboxPrivileges.check()
                try SandboxTools.check(network.requiredTools)
            } catch {
                throw CLIError("\(error)")
            }
            let level = Logger.Level(rawValue: logLevel) ?? .notice
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "hive.sandbox")
            let lock = try SandboxLock.acquire()
            defer { lock.release() }

            // Leftovers of a crashed run have exactly these names; other hive-
            // namespaces (a test's, a benchmark's) are not ours to remove.
            network.destroy()
            say("Creating namespaces: \(network.namespaces.joined(separator: ", "))")
            try network.create()
            defer {
                network.destroy()
                say("Removed the sandbox's namespaces and interfaces.")
            }

            let directory = dataDirectory ?? (FileManager.default.homeDirectoryForCurrentUser.path + "/.hive/sandbox")
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let store = try EmbeddedStore(directory: directory + "/store")
            let repository = TopologyRepository(store: store)
            try await repository.fillScopes()
            let hosts = try await SandboxTopology.create(plan, in: repository)

            // Something for curl to reach: vm1 by its floating IP, and a
            // server outside that tells each client the address it came from.
            // Stopped before the namespaces go (defers run in reverse): an
            // open socket would keep its namespace alive.
            let servers = try SandboxServers.start(plan)
            defer { servers.stop() }

            let tokens = SandboxTokens()
            let tokenFiles = try tokens.writeFiles(in: directory)
            let (host, port) = try APICommand.parseListen(listen)
            // The agents' listener (metrics and state) before the agents: each records its URL in its host.
            let agentDirectory = AgentDirectory()
            let listener = try await AgentHTTPServer.start(
                directory: agentDirectory, token: tokens.agent, host: host, port: port == 0 ? 0 : port + 1, logger: Logger(label: "hive.metrics"))
            let metricsBox = URLBox()
            metricsBox.set("http://\(host):\(listener.port)")
            var agents: [Agent] = []
            for host in plan.hosts {
                let name = plan.namespace(of: host)
                var configuration = AgentConfiguration(
                    hostName: name, hostID: hosts[host.name], underlayAddress: host.underlayAddress, networkNamespace: name)
                configuration.leaseTTL = 5
                configuration.agentEndpoint = metricsBox.url
                agents.append(try Agent(store: store, configuration: configuration, logger: Logger(label: "hive.agent.\(name)")))
            }
            agentDirectory.set(agents)

            let urlBox = URLBox()
            let server = HiveAPIServer(repository: repository, tokens: tokens.table, agentToken: tokens.agent)
            let application = try server.buildApplication(host: host, port: port, logger: Logger(label: "hive.api")) { boundPort in
                urlBox.set("http://\(host):\(boundPort)")
            }
            let guide = SandboxGuide(plan: plan, agents: agents, tokenFiles: tokenFiles, url: urlBox, metrics: metricsBox, servers: servers)
            let group = ServiceGroup(configuration: .init(
                services: [StoreService(store: store), application] + agents.map { $0 as any Service } + [guide],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
            // On an error the process ends, and the listener with it.
            try await group.run()
            await listener.stop()
            say("\nStopping the sandbox.")
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "down",
            abstract: "Stop a running sandbox and remove every hive- namespace left behind.")

        func run() async throws {
            do { try SandboxPrivileges.check() } catch { throw CLIError("\(error)") }
            if let pid = SandboxLock.runningPID() {
                say("Stopping the sandbox (pid \(pid)).")
                kill(pid, SIGTERM)
                for _ in 0..<150 where kill(pid, 0) == 0 { try await Task.sleep(for: .milliseconds(100)) }
                if kill(pid, 0) == 0 {
                    say("It did not stop within 15 s; killing it.")
                    kill(pid, SIGKILL)
                }
            }
            let network = SandboxPlan().network
            let before = NetworkNamespace.list().filter(network.namespaces.contains)
            network.destroy()
            SandboxLock.removeStale()
            say(before.isEmpty ? "No sandbox namespaces left." : "Removed: \(before.joined(separator: ", ")).")
        }
    }
}

/// The sandbox's tiny HTTP servers: one in vm1 (reached from outside by its
/// floating IP) and one in the outside world, which tells each client its
/// address as seen there (SNAT at work).
struct SandboxServers: Sendable {
    let vm: SandboxHTTPServer
    let outside: SandboxHTTPServer

    static func start(_ plan: SandboxPlan) throws -> SandboxServers {
        let vm = plan.vms.first { $0.name == plan.floatingVM }!
        let greeting = "hello from \(vm.name) (\(vm.address))\n"
        let vmServer = try SandboxHTTPServer.start(namespace: plan.namespace(of: vm), address: "0.0.0.0", port: 80) { _ in greeting }
        do {
            let outside = try SandboxHTTPServer.start(namespace: plan.upstreamNamespace, address: "\(plan.serverAddress)", port: 80) { client in
                "you are \(client)\n"
            }
            return SandboxServers(vm: vmServer, outside: outside)
        } catch {
            vmServer.stop()
            throw error
        }
    }

    func stop() {
        vm.stop()
        outside.stop()
    }
}

/// The URL the API bound, once known.
final class URLBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: String?
    func set(_ url: String) { lock.withLock { value = url } }
    var url: String? { lock.withLock { value } }
}

/// Random tokens for the admin and the two tenants, and the one the API
/// shows the agents' listener.
struct SandboxTokens: Sendable {
    let admin = "admin-" + SandboxTokens.random()
    let blue = "blue-" + SandboxTokens.random()
    let green = "green-" + SandboxTokens.random()
    let agent = "agent-" + SandboxTokens.random()

    var table: TokenTable {
        var table = TokenTable()
        table.add(token: admin, for: .admin)
        table.add(token: blue, for: .tenant("blue"))
        table.add(token: green, for: .tenant("green"))
        return table
    }

    /// Owner-only files holding the admin's and the tenants' tokens, in the
    /// sandbox's directory (removed with it): the guide names the files, so
    /// no token is printed.
    func writeFiles(in directory: String) throws -> (admin: String, blue: String, green: String) {
        let files = (admin: directory + "/admin-token", blue: directory + "/blue-token", green: directory + "/green-token")
        for (path, token) in [(files.admin, admin), (files.blue, blue), (files.green, green)] {
            guard FileManager.default.createFile(atPath: path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ValidationError("cannot write the sandbox's token file \(path)")
            }
        }
        return files
    }

    static func random() -> String {
        (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}

/// One sandbox at a time: a pid file under /run.
struct SandboxLock {
    static let path = "/run/hive-sandbox.pid"

    static func runningPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0
        else { return nil }
        return pid
    }

    static func acquire() throws -> SandboxLock {
        if let pid = runningPID(), pid != getpid() {
            throw CLIError("a sandbox is already running (pid \(pid)); stop it with Ctrl-C there, or `hive sandbox down`")
        }
        try "\(getpid())\n".write(toFile: path, atomically: true, encoding: .utf8)
        return SandboxLock()
    }

    static func removeStale() {
        if runningPID() == nil { try? FileManager.default.removeItem(atPath: path) }
    }

    func release() {
        try? FileManager.default.removeItem(atPath: Self.path)
    }
}

/// Prints a line at once (unbuffered), so a script or a pipe reading the
/// sandbox's output sees its progress as it happens.
func say(_ text: String = "") {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
