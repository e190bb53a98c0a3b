import ArgumentParser
import HiveClient
import HiveModel
import HivePacket

struct RouteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Routes of a router: create, list, show, delete.",
        discussion: """
            A router picks the route with the longest matching destination, then \
            the longest source; among equals, the lowest weight. A normal route \
            leaves by a port of the router, to --gateway when the destination is \
            not directly connected; blackhole and reject routes discard.

            Examples:
              hive route create --router edge --destination 10.0.1.0/24 --port to-web
              hive route create --router edge --destination 0.0.0.0/0 \\
                  --port uplink --gateway 192.0.2.1
              hive route create --router edge --destination 10.99.0.0/16 --kind blackhole
              hive route list --router edge
              hive route delete 5f0c3c9e-...
            """,
        subcommands: [Create.self, List.self, Show.self, Delete.self])

    static let fieldFlags: [String: String] = [
        "routerId": "--router", "destination": "--destination", "source": "--source",
        "nextHopGateway": "--gateway", "egressPortId": "--port", "weight": "--weight", "kind": "--kind",
        "tenantId": "--tenant",
    ]

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a route to a router.",
            discussion: """
                Examples:
                  hive route create --router edge --destination 10.0.1.0/24 --port to-web
                  hive route create --router edge --destination 0.0.0.0/0 \\
                      --port uplink --gateway 192.0.2.1
                  hive route create --router edge --destination 10.99.0.0/16 --kind reject
                """)

        @Option(help: ArgumentHelp("The router (name or id).", valueName: "router"))
        var router: String
        @Option(help: ArgumentHelp("The destination network, like 10.0.1.0/24 (0.0.0.0/0 for a default route).", valueName: "network"),
                transform: Parse.prefix)
        var destination: IPv4.Prefix
        @Option(help: ArgumentHelp("Only packets from this network (default: any source).", valueName: "network"),
                transform: Parse.prefix)
        var source: IPv4.Prefix?
        @Option(help: ArgumentHelp("The next router's address, when the destination is not directly connected.", valueName: "address"),
                transform: Parse.address)
        var gateway: IPv4.Address?
        @Option(help: ArgumentHelp("The router port packets leave by (name or id); required for normal routes.", valueName: "port"))
        var port: String?
        @Option(help: ArgumentHelp("Preference among equal matches; lower wins (default \(Route.defaultWeight)).", valueName: "n"),
                transform: Parse.weight)
        var weight: UInt32?
        @Option(help: "normal forwards; blackhole drops silently; reject drops and answers ICMP unreachable.")
        var kind: RouteKind = .normal
        @Option(help: "The owning tenant (admin token only).")
        var tenant: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let resolver = Resolver(client)
            let routerID = try await resolver.id(router, Router.self)
            var route = Route(tenantId: tenant, routerId: routerID, destination: destination, kind: kind)
            if let source { route.source = source }
            route.nextHopGateway = gateway
            if let weight { route.weight = weight }
            if let port { route.egressPortId = try await resolver.portID(port, router: routerID.description) }
            let created = try await explainingFields(RouteCommand.fieldFlags) { try await client.create(route) }
            try await Printer(output, client).object(created)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List routes, of one router or of all.",
            discussion: """
                Examples:
                  hive route list --router edge
                  hive route list --json
                """)

        @Option(help: ArgumentHelp("Only this router's routes (name or id).", valueName: "router"))
        var router: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            var routes: [Revisioned<Route>] = []
            if let router {
                routes = try await client.routes(of: try await Resolver(client).id(router, Router.self))
            } else {
                for router in try await client.list(Router.self) {
                    routes += try await client.routes(of: router.object.id)
                }
            }
            await Printer(output, client).list(routes, empty: "No routes. Add one with: hive route create --router ROUTER --destination NETWORK --port PORT")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a route.")

        @Argument(help: "The route's id.")
        var route: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            try await Printer(output, client).object(try await client.get(try parseID(route, Route.self, list: "hive route list")))
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a route.")

        @Argument(help: "The route's id.")
        var route: String
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let id = try parseID(route, Route.self, list: "hive route list")
            try await client.delete(id)
            print("Deleted route \(id).")
        }
    }
}

/// An id for objects without names (routes, rules, bindings, DHCP subnets).
func parseID<Object>(_ text: String, _ type: Object.Type, list: String) throws -> ObjectID<Object> where Object: TopologyObject {
    guard let id = ObjectID<Object>(parsing: text) else {
        throw CLIError("'\(text)' is not a \(Object.kind) id (expected a UUID like 3f2504e0-4f89-11d3-9a0c-0305e82c3301; `\(list)` shows them)")
    }
    return id
}
