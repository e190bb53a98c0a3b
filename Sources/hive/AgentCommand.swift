import ArgumentParser
import Foundation
import HiveAgent
import HiveAgentHTTP
import HiveModel
import HivePacket
import HiveStore
import Logging
import ServiceLifecycle

/// `hive agent`: runs the agent of one host until SIGINT or SIGTERM.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the Hive agent of this host: bind its ports, simulate, tunnel.",
        discussion: """
            The agent registers this host in the NSDB (its id is kept in --state-dir), joins a tunnel zone \
            when asked, binds the interfaces of the ports bound to this host (hive binding create), and \
            forwards their traffic. Run it as root: it opens packet sockets.

            With --metrics-listen it serves Prometheus metrics at /metrics, and with --control-token-file \
            also its state (flows, ports) at /state/*, for `hive flows` and `hive port show` through the API; \
            it records the listener's URL in its host (--agent-endpoint to give another).

            Example, in a host's network namespace, on a shared etcd:
              ip netns exec compute-1 hive agent --name compute-1 --underlay 100.64.0.1 \\
                  --tunnel-zone underlay --etcd http://127.0.0.1:2379 \\
                  --metrics-listen 0.0.0.0:9697 --control-token-file /etc/hive/agent-token
            """)

    @Option(help: ArgumentHelp("This host's name in the NSDB.", valueName: "name"))
    var name = ProcessInfo.processInfo.hostName

    @Option(help: ArgumentHelp("This host's underlay IPv4 address: the tunnel socket binds here.", valueName: "address"))
    var underlay: String

    @Option(name: .customLong("host-id"), help: ArgumentHelp("Use this host id instead of the one kept in --state-dir.", valueName: "uuid"))
    var hostID: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp(
        "Where the agent keeps its host id, its last view of the NSDB and its connections across restarts.",
        discussion: "Default: ~/.hive/agent. An agent started while the NSDB is unreachable forwards from the view kept here."))
    var stateDirectory: String?

    @Option(name: .customLong("tunnel-zone"), help: ArgumentHelp("Join this tunnel zone (created if missing).", valueName: "name"))
    var tunnelZone: String?

    @Option(name: .customLong("netns"), help: ArgumentHelp("Use the interfaces and underlay of this network namespace (as `ip netns` names it).", valueName: "name"))
    var networkNamespace: String?

    @Option(name: .customLong("tunnel-port"), help: "The Geneve UDP port of every host.")
    var tunnelPort: UInt16 = 6081

    @Option(name: .customLong("metrics-listen"), help: ArgumentHelp("Serve Prometheus metrics at http://HOST:PORT/metrics.", valueName: "host:port"))
    var metricsListen: String?

    @Option(name: .customLong("control-token-file"), help: ArgumentHelp(
        "Serve the agent's state (GET /state/flows, /state/summary, /state/ports) on the metrics listener to this bearer token.",
        discussion: "One line; the file must be readable by its owner only (chmod 600). The API is given the same token (hive api --agent-token-file).",
        valueName: "path"))
    var controlTokenFile: String?

    @Option(name: .customLong("agent-endpoint"), help: ArgumentHelp(
        "The URL the API reaches the metrics listener at, recorded in this host.",
        discussion: "Default: http://HOST:PORT of --metrics-listen, with the underlay address for a wildcard HOST.", valueName: "url"))
    var agentEndpoint: String?

    @Option(name: .customLong("lease-ttl"), help: ArgumentHelp(
        "Seconds this host stays alive in the NSDB without a keep-alive (renewed every third of it).",
        discussion: "Other hosts see this one dead, and stop routing through its uplinks, this long after it dies. Default: 10; at least 2."))
    var leaseTTL: Int64 = 10

    @Option(name: .customLong("upcalls-per-port"), help: ArgumentHelp(
        "New flows per second one VM port may send to the simulation; beyond that its misses drop (upcall_limited).",
        discussion: "Protects the host from a VM flooding new flows; a burst of a tenth of it passes at once. Default: 20000.",
        valueName: "per-second"))
    var upcallsPerPort = 20_000

    @Option(name: .customLong("datapath-nice"), help: ArgumentHelp(
        "The datapath thread's nice value (-20 to 19).",
        discussion: "Below 0 the datapath runs ahead of the VMs' processes, so one VM's flood delays the others' packets less, but VMs sharing the agent's cores get less CPU. Default: 0 (the process's). Write a negative value as --datapath-nice=-10.",
        valueName: "nice"))
    var datapathNice: Int32 = 0

    @OptionGroup var store: StoreOptions

    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel = "info"

    func validate() throws {
        guard IPv4.Address(parsing: underlay) != nil else {
            throw ValidationError("--underlay '\(underlay)' is not an IPv4 address (expected like 100.64.0.1)")
        }
        if let metricsListen { _ = try APICommand.parseListen(metricsListen) }
        if controlTokenFile != nil, metricsListen == nil {
            throw ValidationError("--control-token-file needs --metrics-listen HOST:PORT: the state is served on that listener")
        }
        if agentEndpoint != nil, controlTokenFile == nil {
            throw ValidationError("--agent-endpoint needs --control-token-file: without a token the agent serves no state to point the API at")
        }
        if let agentEndpoint, let problem = HiveModel.Host(name: "probe", agentEndpoint: agentEndpoint).validationErrors.first {
            throw ValidationError("--agent-endpoint: \(problem)")
        }
        if let hostID, HostID(parsing: hostID) == nil {
            throw ValidationError("--host-id '\(hostID)' is not a UUID")
        }
        guard leaseTTL >= 2 else {
            throw ValidationError("--lease-ttl \(leaseTTL) is too short (expected at least 2 seconds: the lease is renewed every third of it)")
        }
        guard (-20...19).contains(datapathNice) else {
            throw ValidationError("--datapath-nice \(datapathNice) is out of range (expected -20 to 19)")
        }
        guard (10...1_000_000).contains(upcallsPerPort) else {
            throw ValidationError("--upcalls-per-port \(upcallsPerPort) is out of range (expected 10 to 1000000 per second)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level '\(logLevel)' is not a level (expected trace, debug, info, notice, warning, error or critical)")
        }
    }

    func run() async throws {
        guard geteuid() == 0 else {
            throw ValidationError("hive agent must run as root: it opens packet sockets on the bound interfaces")
        }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "hive.agent")
        var configuration = AgentConfiguration(
            hostName: name, hostID: hostID.flatMap { HostID(parsing: $0) }, stateDirectory: stateDirectory ?? NSHomeDirectory() + "/.hive/agent",
            underlayAddress: IPv4.Address(parsing: underlay)!, networkNamespace: networkNamespace, tunnelZone: tunnelZone)
        configuration.datapath.tunnelPort = tunnelPort
        configuration.datapath.upcallsPerSecondPerPort = upcallsPerPort
        configuration.datapath.upcallBurstPerPort = max(1, upcallsPerPort / 10)
        configuration.datapath.threadNice = datapathNice
        configuration.leaseTTL = leaseTTL
        let token = try controlTokenFile.map { try TokenFile.read($0, option: "--control-token-file") }
        // The listener first: the agent records its URL (its port, when 0 was asked) as it registers.
        let directory = AgentDirectory()
        var listener: RunningAgentListener?
        if let metricsListen {
            let (host, port) = try APICommand.parseListen(metricsListen)
            let running = try await AgentHTTPServer.start(directory: directory, token: token, host: host, port: port, logger: logger)
            listener = running
            if token != nil {
                configuration.agentEndpoint = agentEndpoint ?? Self.endpoint(listening: host, port: running.port, underlay: underlay)
            }
        }
        let store = try self.store.open()
        let agent: Agent
        do {
            agent = try Agent(store: store, configuration: configuration, logger: logger)
        } catch {
            await listener?.stop()
            await store.close()
            throw ValidationError("cannot start the agent: \(error)")
        }
        directory.set([agent])
        let group = ServiceGroup(configuration: .init(
            services: [StoreService(store: store), agent],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            await listener?.stop()
            throw error
        }
        await listener?.stop()
    }

    /// The listener's URL as other machines reach it: its address, or the underlay's for a wildcard.
    static func endpoint(listening host: String, port: Int, underlay: String) -> String {
        let address = ["0.0.0.0", "::", ""].contains(host) ? underlay : host
        return "http://" + (address.contains(":") ? "[\(address)]" : address) + ":\(port)"
    }
}
