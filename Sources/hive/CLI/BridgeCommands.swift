import ArgumentParser
import HiveClient
import HiveModel

struct BridgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridge",
        abstract: "Virtual L2 switches: create, list, show, update, delete.",
        discussion: """
            A bridge is one Ethernet segment. VMs attach to its exterior ports (see \
            `hive binding`); a router joins it through an interior port linked to a \
            router port (see `hive port link`).

            Examples:
              hive bridge create web
              hive bridge list
              hive bridge show web
              hive bridge update web --inbound-chain web-in
              hive bridge delete web
            """,
        subcommands: [Create.self, List.self, Show.self, Update.self, Delete.self])

    static let fieldFlags: [String: String] = [
        "name": "NAME", "tenantId": "--tenant", "inboundChainId": "--inbound-chain",
        "outboundChainId": "--outbound-chain", "adminStateUp": "--admin-state",
    ]

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a bridge.",
            discussion: """
                Examples:
                  hive bridge create web
                  hive bridge create db --inbound-chain db-in --arp-suppression off
                """)

        @Argument(help: "The bridge's name, unique within the tenant.")
        var name: String

        @OptionGroup var settings: BridgeSettings
        @Option(help: "The owning tenant (admin token only; a tenant token always creates in its own tenant).")
        var tenant: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let resolver = Resolver(client)
            var bridge = Bridge(tenantId: tenant, name: name)
            try await settings.apply(to: &bridge, resolver)
            let created = try await explainingFields(BridgeCommand.fieldFlags) { try await client.create(bridge) }
            try await Printer(output, client).object(created)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List bridges.")

        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            await Printer(output, client).list(try await client.list(Bridge.self),
                                               empty: "No bridges. Create one with: hive bridge create NAME")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a bridge, its ports and its DHCP subnets.")

        @Argument(help: "The bridge's name or id.")
        var bridge: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let item = try await Resolver(client).object(bridge, Bridge.self)
            let printer = Printer(output, client)
            try await printer.object(item) { _ in
                [("Ports:", await printer.section(try await client.ports(onDevice: item.object.id.uuid))),
                 ("DHCP subnets:", await printer.section(try await client.dhcpSubnets(of: item.object.id)))]
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a bridge's name or settings.",
            discussion: """
                Only the options given change. `none` removes a chain.

                Examples:
                  hive bridge update web --inbound-chain web-in
                  hive bridge update web --inbound-chain none --admin-state down
                  hive bridge update web --name frontend
                """)

        @Argument(help: "The bridge's name or id.")
        var bridge: String
        @Option(help: "A new name.")
        var name: String?
        @OptionGroup var settings: BridgeSettings
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            guard name != nil || settings.changesAnything else {
                throw CLIError("nothing to change: give --name, --admin-state, --inbound-chain, --outbound-chain or --arp-suppression")
            }
            let client = try connection.client()
            let resolver = Resolver(client)
            let current = try await resolver.object(bridge, Bridge.self)
            var updated = current.object
            if let name { updated.name = name }
            try await settings.apply(to: &updated, resolver)
            let saved = try await explainingFields(BridgeCommand.fieldFlags) {
                try await client.update(updated, ifRevision: current.revision)
            }
            try await Printer(output, client).object(saved)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a bridge.",
            discussion: "The bridge must have no ports left; its DHCP subnets go with it.")

        @Argument(help: "The bridge's name or id.")
        var bridge: String
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let item = try await Resolver(client).object(bridge, Bridge.self)
            try await client.delete(item.object.id, ifRevision: item.revision)
            print("Deleted bridge \(item.object.name) (\(item.object.id)).")
        }
    }
}

/// Settings shared by `bridge create` and `bridge update`.
struct BridgeSettings: ParsableArguments {
    @OptionGroup var device: DeviceSettings
    @Option(help: "Answer ARP requests from known addresses instead of flooding them (default on).")
    var arpSuppression: Switch?

    var changesAnything: Bool { device.changesAnything || arpSuppression != nil }

    func apply(to bridge: inout Bridge, _ resolver: Resolver) async throws {
        try await device.apply(to: &bridge, resolver)
        if let arpSuppression { bridge.arpSuppression = arpSuppression.isOn }
    }
}
