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
        subcommands: [Create.self, ListCommand<Bridge>.self, ShowCommand<Bridge>.self, Update.self, DeleteCommand<Bridge>.self])

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
            try await Bridge.create(connection, output) { resolver in
                var bridge = Bridge(tenantId: tenant, name: name)
                try await settings.apply(to: &bridge, resolver)
                return bridge
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
            try await Bridge.update(bridge, connection, output) { updated, resolver in
                if let name { updated.name = name }
                try await settings.apply(to: &updated, resolver)
            }
        }
    }
}

extension Bridge: CLIResource {
    static let fieldFlags = [
        "name": "NAME", "tenantId": "--tenant", "inboundChainId": "--inbound-chain",
        "outboundChainId": "--outbound-chain", "adminStateUp": "--admin-state",
    ]
    static var emptyListHint: String { "No bridges. Create one with: hive bridge create NAME" }
    static var referenceHelp: String { "The bridge's name or id." }
    static var showAbstract: String { "Show a bridge, its ports and its DHCP subnets." }
    static var deleteDiscussion: String { "The bridge must have no ports left; its DHCP subnets go with it." }

    static func sections(_ item: Revisioned<Bridge>, _ printer: Printer) async throws -> [(String, String)] {
        [("Ports:", await printer.section(try await printer.client.ports(onDevice: item.object.id.uuid))),
         ("DHCP subnets:", await printer.section(try await printer.client.dhcpSubnets(of: item.object.id)))]
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
