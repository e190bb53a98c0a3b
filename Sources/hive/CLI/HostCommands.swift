import ArgumentParser
import HiveClient
import HiveModel
import HivePacket
import struct HiveModel.Host

// Hosts, tunnel zones and bindings place the virtual topology on machines.
// They are admin-only: the API refuses them to tenant tokens (403).

struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Machines running the Hive agent (admin): list, show, create, delete.",
        discussion: """
            An agent registers its host itself; `create` is for preparing hosts \
            ahead of their agents and for tests. ALIVE says whether the host's \
            agent is currently connected.

            Examples:
              hive host list
              hive host show compute-1
              hive host create compute-1 --underlay-address 192.168.10.11
            """,
        subcommands: [ListCommand<Host>.self, ShowCommand<Host>.self, Create.self, DeleteCommand<Host>.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a host ahead of its agent.",
            discussion: """
                Example:
                  hive host create compute-1 --underlay-address 192.168.10.11
                """)

        @Argument(help: "The host's name, usually its hostname; unique.")
        var name: String
        @Option(name: .customLong("underlay-address"), help: ArgumentHelp("An address other hosts reach this one on; repeatable.", valueName: "address"),
                transform: Parse.address)
        var underlayAddresses: [IPv4.Address] = []
        @Option(name: .customLong("agent-endpoint"), help: ArgumentHelp(
            "Where its agent serves its state (its agent records this itself when it registers).", valueName: "url"))
        var agentEndpoint: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            try await Host.create(connection, output) { _ in
                Host(name: name, underlayAddresses: underlayAddresses, agentEndpoint: agentEndpoint)
            }
        }
    }
}

extension Host: CLIResource {
    static let fieldFlags = ["name": "NAME", "underlayAddresses": "--underlay-address", "agentEndpoint": "--agent-endpoint"]
    static var emptyListHint: String { "No hosts. Hosts appear when their agents register (or: hive host create NAME)." }
    static var referenceHelp: String { "The host's name or id." }
    static var listAbstract: String { "List hosts and whether their agents are alive." }
    static var showAbstract: String { "Show a host and the ports bound on it." }
    static var deleteDiscussion: String { "Refused while it has bindings or is in a tunnel zone." }

    static func sections(_ item: Revisioned<Host>, _ printer: Printer) async throws -> [(String, String)] {
        [("Bindings:", await printer.section(try await printer.client.bindings(host: item.object.id)))]
    }
}

struct TunnelZoneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tunnel-zone",
        abstract: "Sets of hosts that tunnel to each other (admin): create, list, show, delete, add-member, remove-member.",
        discussion: """
            Hosts in one zone reach each other with one encapsulation (geneve or \
            vxlan), each from its member address.

            Examples:
              hive tunnel-zone create underlay
              hive tunnel-zone add-member underlay --host compute-1 --address 192.168.10.11
              hive tunnel-zone add-member underlay --host compute-2
              hive tunnel-zone show underlay
              hive tunnel-zone remove-member underlay --host compute-2
            """,
        subcommands: [Create.self, ListCommand<TunnelZone>.self, ShowCommand<TunnelZone>.self, DeleteCommand<TunnelZone>.self,
                      AddMember.self, RemoveMember.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a tunnel zone.",
            discussion: """
                Examples:
                  hive tunnel-zone create underlay
                  hive tunnel-zone create legacy --kind vxlan
                  hive tunnel-zone create jumbo --underlay-mtu 9000
                """)

        @Argument(help: "The zone's name, unique.")
        var name: String
        @Option(help: "The encapsulation (default geneve).")
        var kind: TunnelKind = .geneve
        @Option(name: .customLong("underlay-mtu"),
                help: ArgumentHelp("The underlay's MTU (576 to 9216; default 1500). VMs get it less the tunnel overhead.", valueName: "bytes"))
        var underlayMTU: UInt16?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            try await TunnelZone.create(connection, output) { _ in TunnelZone(name: name, kind: kind, underlayMTU: underlayMTU) }
        }
    }

    struct AddMember: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-member",
            abstract: "Add a host to a tunnel zone.",
            discussion: """
                Without --address, the host's first underlay address is used.

                Examples:
                  hive tunnel-zone add-member underlay --host compute-1 --address 192.168.10.11
                  hive tunnel-zone add-member underlay --host compute-2
                """)

        @Argument(help: "The zone's name or id.")
        var zone: String
        @Option(help: ArgumentHelp("The host (name or id).", valueName: "host"))
        var host: String
        @Option(help: ArgumentHelp("The address the host tunnels from (default: its first underlay address).", valueName: "address"),
                transform: Parse.address)
        var address: IPv4.Address?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let resolver = Resolver(client)
            let zoneID = try await resolver.id(zone, TunnelZone.self)
            let hostItem = try await resolver.object(host, Host.self)
            guard let address = address ?? hostItem.object.underlayAddresses.first else {
                throw CLIError("host \(hostItem.object.name) has no underlay address to tunnel from; give one with --address")
            }
            let updated = try await explainingFields(["hostId": "--host", "address": "--address", "members": "--host/--address"]) {
                try await client.addMember(hostItem.object.id, address: address, to: zoneID)
            }
            try await Printer(output, client).object(updated)
        }
    }

    struct RemoveMember: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-member",
            abstract: "Remove a host from a tunnel zone.",
            discussion: """
                Example:
                  hive tunnel-zone remove-member underlay --host compute-2
                """)

        @Argument(help: "The zone's name or id.")
        var zone: String
        @Option(help: ArgumentHelp("The host (name or id).", valueName: "host"))
        var host: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let resolver = Resolver(client)
            let zoneID = try await resolver.id(zone, TunnelZone.self)
            let hostID = try await resolver.id(host, Host.self)
            try await Printer(output, client).object(try await client.removeMember(hostID, from: zoneID))
        }
    }
}

extension TunnelZone: CLIResource {
    static let fieldFlags = ["name": "NAME", "kind": "--kind", "underlayMTU": "--underlay-mtu"]
    static var emptyListHint: String { "No tunnel zones. Create one with: hive tunnel-zone create NAME" }
    static var referenceHelp: String { "The zone's name or id." }
    static var listAbstract: String { "List tunnel zones and their members." }
    static var showAbstract: String { "Show a tunnel zone and its members." }

    static func sections(_ item: Revisioned<TunnelZone>, _ printer: Printer) async throws -> [(String, String)] {
        var rows: [[String]] = []
        for member in item.object.members {
            rows.append([await printer.names.name(member.hostId), member.hostId.description, member.address.description])
        }
        return [("Members:", rows.isEmpty ? "none" : Table(headers: ["HOST", "ID", "ADDRESS"], rows: rows).rendered)]
    }
}

struct BindingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "binding",
        abstract: "Attach exterior ports to host interfaces (admin): create, list, show, delete.",
        discussion: """
            A binding says where a port's traffic enters and leaves: a tap or veth \
            interface on a host. Only exterior (unlinked) ports can be bound.

            Examples:
              hive binding create --host compute-1 --port vm1 --interface tap-vm1
              hive binding list --host compute-1
              hive binding delete 7d3a0f52-...
            """,
        subcommands: [Create.self, ListCommand<Binding>.self, ShowCommand<Binding>.self, DeleteCommand<Binding>.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bind a port to an interface on a host.",
            discussion: """
                Examples:
                  hive binding create --host compute-1 --port vm1 --interface tap-vm1
                  hive binding create --host compute-2 --port vm1 --bridge db \\
                      --interface tap-db1
                """)

        @Option(help: ArgumentHelp("The host (name or id).", valueName: "host"))
        var host: String
        @Option(help: ArgumentHelp("The exterior port (name or id).", valueName: "port"))
        var port: String
        @Option(help: ArgumentHelp("The Linux interface on the host, like tap-vm1 (at most 15 bytes).", valueName: "name"))
        var interface: String
        @OptionGroup var scope: PortScope
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            try await Binding.create(connection, output) { resolver in
                Binding(hostId: try await resolver.id(host, Host.self),
                        portId: try await resolver.portID(port, bridge: scope.bridge, router: scope.router),
                        interfaceName: interface)
            }
        }
    }
}

extension Binding: CLIResource {
    static var noun: String { "binding" }
    static let fieldFlags = ["hostId": "--host", "portId": "--port", "interfaceName": "--interface"]
    static var emptyListHint: String { "No bindings. Create one with: hive binding create --host HOST --port PORT --interface NAME" }
    static var referenceHelp: String { "The binding's id." }
    static var listAbstract: String { "List bindings, optionally of one host or one port." }
    static var listDiscussion: String {
        """
        Examples:
          hive binding list
          hive binding list --host compute-1
        """
    }
    static var deleteAbstract: String { "Delete a binding (unbind the port)." }

    static func find(_ reference: String, _ scope: NoOptions, _ resolver: Resolver) async throws -> Revisioned<Binding> {
        try await byID(reference, resolver, list: "hive binding list")
    }

    static func list(_ filter: BindingFilter, _ resolver: Resolver) async throws -> [Revisioned<Binding>] {
        var portID: PortID?
        if let port = filter.port { portID = try await resolver.portID(port, bridge: filter.scope.bridge, router: filter.scope.router) }
        return try await resolver.client.bindings(host: try await resolver.optionalID(filter.host, Host.self), port: portID)
    }
}

/// `hive binding list --host|--port`.
struct BindingFilter: ParsableArguments {
    @Option(help: ArgumentHelp("Only this host's bindings (name or id).", valueName: "host"))
    var host: String?
    @Option(help: ArgumentHelp("Only this port's binding (name or id).", valueName: "port"))
    var port: String?
    @OptionGroup var scope: PortScope
}
