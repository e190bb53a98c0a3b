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
        subcommands: [Create.self, ListCommand<Route>.self, ShowCommand<Route>.self, DeleteCommand<Route>.self])

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
            try await Route.create(connection, output) { resolver in
                let routerID = try await resolver.id(router, Router.self)
                var route = Route(tenantId: tenant, routerId: routerID, destination: destination, kind: kind)
                if let source { route.source = source }
                route.nextHopGateway = gateway
                if let weight { route.weight = weight }
                if let port { route.egressPortId = try await resolver.portID(port, router: routerID.description) }
                return route
            }
        }
    }
}

extension Route: CLIResource {
    static var noun: String { "route" }
    static let fieldFlags = [
        "routerId": "--router", "destination": "--destination", "source": "--source",
        "nextHopGateway": "--gateway", "egressPortId": "--port", "weight": "--weight", "kind": "--kind",
        "tenantId": "--tenant",
    ]
    static var emptyListHint: String { "No routes. Add one with: hive route create --router ROUTER --destination NETWORK --port PORT" }
    static var referenceHelp: String { "The route's id." }
    static var listAbstract: String { "List routes, of one router or of all." }
    static var listDiscussion: String {
        """
        Examples:
          hive route list --router edge
          hive route list --json
        """
    }

    static func find(_ reference: String, _ scope: NoOptions, _ resolver: Resolver) async throws -> Revisioned<Route> {
        try await byID(reference, resolver, list: "hive route list")
    }

    static func list(_ filter: RouterFilter, _ resolver: Resolver) async throws -> [Revisioned<Route>] {
        if let router = filter.router { return try await resolver.client.routes(of: try await resolver.id(router, Router.self)) }
        var routes: [Revisioned<Route>] = []
        for router in try await resolver.client.list(Router.self) { routes += try await resolver.client.routes(of: router.object.id) }
        return routes
    }

    static func send(_ new: Route, _ client: HiveClient) async throws -> Revisioned<Route> { try await client.create(new) }
}

/// `hive route list --router`.
struct RouterFilter: ParsableArguments {
    @Option(help: ArgumentHelp("Only this router's routes (name or id).", valueName: "router"))
    var router: String?
}
