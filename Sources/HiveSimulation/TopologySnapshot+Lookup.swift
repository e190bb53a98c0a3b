import HiveModel
import HivePacket

extension TopologySnapshot {
    /// The route `router` would choose for a packet from `source` to
    /// `destination` (before ECMP): the first of the equal-cost routes, and
    /// how many there are. Nil when no route matches or the router is unknown.
    /// - Complexity: one hash lookup for the router, then the table's
    ///   O(prefix lengths in use); no allocation.
    public func lookupRoute(
        in router: RouterID, destination: IPv4.Address, source: IPv4.Address = .any
    ) -> (route: RouteID, equalCost: Int)? {
        guard let index = compiled.routerIndex[router] else { return nil }
        let table = compiled.routeTables[Int(index)]
        guard let match = table.lookup(destination: destination, source: source) else { return nil }
        return (table.routes[Int(match.group.start)].id, match.count)
    }
}
