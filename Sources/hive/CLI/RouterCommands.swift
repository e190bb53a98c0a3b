import ArgumentParser
import HiveClient
import HiveModel

struct RouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Virtual L3 routers: create, list, show, update, delete.",
        discussion: """
            A router forwards between the subnets of its ports by its routes. Give \
            it one port per subnet (`hive port create --router`), link each to a \
            bridge port (`hive port link`), then add routes (`hive route create`).

            Its external gateway is the port leading outside: packets from the \
            networks behind the router leaving by it are translated to the SNAT \
            address (the port's own by default), unless their VM has a floating IP \
            (`hive floating-ip`). Create the router and that port first, then set it \
            with `hive router update NAME --gateway-port PORT`.

            Examples:
              hive router create edge
              hive router list
              hive router show edge
              hive router update edge --inbound-chain edge-in
              hive router update edge --gateway-port uplink --snat-address 198.51.100.2
              hive router update edge --no-gateway
              hive router delete edge
            """,
        subcommands: [Create.self, ListCommand<Router>.self, ShowCommand<Router>.self, Update.self, DeleteCommand<Router>.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a router.",
            discussion: """
                Examples:
                  hive router create edge
                  hive router create edge --inbound-chain edge-in
                """)

        @Argument(help: "The router's name, unique within the tenant.")
        var name: String
        @OptionGroup var settings: DeviceSettings
        @OptionGroup(title: "External gateway") var gateway: GatewaySettings
        @Option(help: "The owning tenant (admin token only; a tenant token always creates in its own tenant).")
        var tenant: String?

        func validate() throws {
            guard !gateway.changesAnything else {
                throw ValidationError("""
                    a new router has no ports yet, so none can be its gateway: create the router, then its \
                    port leading outside (hive port create PORT --router \(name) --address A/N), then \
                    hive router update \(name) --gateway-port PORT
                    """)
            }
        }
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            try await Router.create(connection, output) { resolver in
                var router = Router(tenantId: tenant, name: name)
                try await settings.apply(to: &router, resolver)
                return router
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a router's name or settings.",
            discussion: """
                Only the options given change. `none` removes a chain. \
                --gateway-port sets the external gateway (SNAT to the port's address \
                unless --snat-address or --no-snat say otherwise); --snat-address and \
                --snat/--no-snat alone change the current one; --no-gateway removes it.

                Examples:
                  hive router update edge --inbound-chain edge-in
                  hive router update edge --admin-state down
                  hive router update edge --gateway-port uplink
                  hive router update edge --gateway-port uplink --snat-address 198.51.100.2
                  hive router update edge --no-snat
                  hive router update edge --no-gateway
                """)

        @Argument(help: "The router's name or id.")
        var router: String
        @Option(help: "A new name.")
        var name: String?
        @OptionGroup var settings: DeviceSettings
        @OptionGroup(title: "External gateway") var gateway: GatewaySettings
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            guard name != nil || settings.changesAnything || gateway.changesAnything else {
                throw CLIError("""
                    nothing to change: give --name, --admin-state, --inbound-chain, --outbound-chain, \
                    --gateway-port, --snat-address, --snat/--no-snat or --no-gateway
                    """)
            }
            try await Router.update(router, connection, output) { updated, resolver in
                if let name { updated.name = name }
                try await settings.apply(to: &updated, resolver)
                try await gateway.apply(to: &updated, resolver)
            }
        }
    }
}

extension Router: CLIResource {
    static let fieldFlags = [
        "name": "NAME", "tenantId": "--tenant", "inboundChainId": "--inbound-chain",
        "outboundChainId": "--outbound-chain", "adminStateUp": "--admin-state",
        "gateway.portId": "--gateway-port", "gateway.snatAddress": "--snat-address", "gateway": "--gateway-port",
    ]
    static var emptyListHint: String { "No routers. Create one with: hive router create NAME" }
    static var referenceHelp: String { "The router's name or id." }
    static var showAbstract: String { "Show a router, its gateway, ports, routes and floating IPs." }
    static var deleteDiscussion: String { "The router must have no ports left; its routes go with it." }

    static func sections(_ item: Revisioned<Router>, _ printer: Printer) async throws -> [(String, String)] {
        [("Ports:", await printer.section(try await printer.client.ports(onDevice: item.object.id.uuid))),
         ("Routes:", await printer.section(try await printer.client.routes(of: item.object.id))),
         ("Floating IPs:", await printer.section(try await printer.client.floatingIPs(router: item.object.id)))]
    }
}
