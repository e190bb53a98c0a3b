import Foundation
import HiveModel
import HivePacket
import struct HiveModel.Host
import struct HiveModel.Port

/// A model type the API serves at `/v1/<collection>/{id}` (GET, PUT, DELETE).
public protocol APIResource: TopologyObject {
    /// The path segment after `/v1`, e.g. "bridges".
    static var collection: String { get }
}

/// A resource also listed and created at `/v1/<collection>` itself; routes,
/// rules and DHCP subnets are created and listed under their parent instead.
public protocol TopLevelResource: APIResource {}

extension Bridge: TopLevelResource { public static var collection: String { "bridges" } }
extension Router: TopLevelResource { public static var collection: String { "routers" } }
extension Port: TopLevelResource { public static var collection: String { "ports" } }
extension Chain: TopLevelResource { public static var collection: String { "chains" } }
extension PortGroup: TopLevelResource { public static var collection: String { "port-groups" } }
extension IPAddressGroup: TopLevelResource { public static var collection: String { "ip-address-groups" } }
extension Host: TopLevelResource { public static var collection: String { "hosts" } }
extension TunnelZone: TopLevelResource { public static var collection: String { "tunnel-zones" } }
extension Binding: TopLevelResource { public static var collection: String { "bindings" } }
extension FloatingIP: TopLevelResource { public static var collection: String { "floating-ips" } }
extension SecurityGroup: TopLevelResource { public static var collection: String { "security-groups" } }
/// Rules cannot change: `update` on one is refused (405).
extension SecurityGroupRule: TopLevelResource { public static var collection: String { "security-group-rules" } }
extension Route: APIResource { public static var collection: String { "routes" } }
extension Rule: APIResource { public static var collection: String { "rules" } }
extension DHCPSubnet: APIResource { public static var collection: String { "dhcp-subnets" } }

// MARK: Any resource

extension HiveClient {
    /// GET /v1/<collection>/{id}.
    public func get<Object: APIResource>(_ id: ObjectID<Object>) async throws(HiveClientError) -> Revisioned<Object> {
        try Self.object(Object.self, from: await send(.get, [Object.collection, id.description]))
    }

    /// PUT /v1/<collection>/{id}: replaces the object. With `ifRevision`, only
    /// if it is still at that revision (else 409 `stale_revision`).
    public func update<Object: APIResource>(_ object: Object, ifRevision: Int64? = nil) async throws(HiveClientError) -> Revisioned<Object> {
        let body = try Self.body(object)
        return try Self.object(Object.self, from: await send(
            .put, [Object.collection, object.id.description], body: body, ifMatch: ifRevision.map(Int.init)))
    }

    /// DELETE /v1/<collection>/{id}. With `ifRevision`, only if it is still at that revision.
    public func delete<Object: APIResource>(_ id: ObjectID<Object>, ifRevision: Int64? = nil) async throws(HiveClientError) {
        _ = try await send(.delete, [Object.collection, id.description], ifMatch: ifRevision.map(Int.init))
    }

    /// GET /v1/<collection>: every object the token may see, sorted by id.
    public func list<Object: TopLevelResource>(_ type: Object.Type) async throws(HiveClientError) -> [Revisioned<Object>] {
        try Self.listing(Object.self, from: await send(.get, [Object.collection]))
    }

    /// POST /v1/<collection>. The server assigns the id and fills managed
    /// fields (tunnel keys, a tenant token's tenant).
    public func create<Object: TopLevelResource>(_ object: Object) async throws(HiveClientError) -> Revisioned<Object> {
        let body = try Self.body(object, includeId: false)
        return try Self.object(Object.self, from: await send(.post, [Object.collection], body: body))
    }
}

// MARK: Ports

extension HiveClient {
    /// The ports of one bridge or router (GET /v1/ports?deviceId=).
    public func ports(onDevice deviceId: UUID) async throws(HiveClientError) -> [Revisioned<Port>] {
        let query = [URLQueryItem(name: "deviceId", value: deviceId.uuidString.lowercased())]
        return try Self.listing(Port.self, from: await send(.get, [Port.collection], query: query))
    }

    /// Links two ports into an interior link; returns `port`, now with its `peerId`.
    public func link(_ port: PortID, to peer: PortID) async throws(HiveClientError) -> Revisioned<Port> {
        let body = try Self.body(["peerId": peer.description])
        return try Self.object(Port.self, from: await send(.post, [Port.collection, port.description, "link"], body: body))
    }

    /// Unlinks a port from its peer; both become exterior. Returns `port`.
    public func unlink(_ port: PortID) async throws(HiveClientError) -> Revisioned<Port> {
        try Self.object(Port.self, from: await send(.delete, [Port.collection, port.description, "link"]))
    }
}

// MARK: Routes

extension HiveClient {
    /// A router's routes (GET /v1/routers/{id}/routes).
    public func routes(of router: RouterID) async throws(HiveClientError) -> [Revisioned<Route>] {
        try Self.listing(Route.self, from: await send(.get, [Router.collection, router.description, "routes"]))
    }

    /// Adds a route to `route.routerId` (POST /v1/routers/{id}/routes).
    public func create(_ route: Route) async throws(HiveClientError) -> Revisioned<Route> {
        let body = try Self.body(route, includeId: false)
        return try Self.object(Route.self, from: await send(.post, [Router.collection, route.routerId.description, "routes"], body: body))
    }
}

// MARK: Rules

extension HiveClient {
    /// A chain's rules in evaluation order (GET /v1/chains/{id}/rules).
    public func rules(of chain: ChainID) async throws(HiveClientError) -> [Revisioned<Rule>] {
        try Self.listing(Rule.self, from: await send(.get, [Chain.collection, chain.description, "rules"]))
    }

    /// Inserts a rule into `rule.chainId` at `position` (0 is first; nil appends).
    public func insert(_ rule: Rule, at position: Int? = nil) async throws(HiveClientError) -> Revisioned<Rule> {
        let body = try Self.body(rule, includeId: false)
        let query = position.map { [URLQueryItem(name: "position", value: String($0))] } ?? []
        return try Self.object(Rule.self, from: await send(
            .post, [Chain.collection, rule.chainId.description, "rules"], query: query, body: body))
    }
}

// MARK: Floating IPs

extension HiveClient {
    /// Floating IPs, optionally only those of one router and/or one port
    /// (GET /v1/floating-ips?routerId=&portId=).
    public func floatingIPs(router: RouterID? = nil, port: PortID? = nil) async throws(HiveClientError) -> [Revisioned<FloatingIP>] {
        var query: [URLQueryItem] = []
        if let router { query.append(URLQueryItem(name: "routerId", value: router.description)) }
        if let port { query.append(URLQueryItem(name: "portId", value: port.description)) }
        return try Self.listing(FloatingIP.self, from: await send(.get, [FloatingIP.collection], query: query))
    }
}

// MARK: Security groups

extension HiveClient {
    /// One security group's rules (GET /v1/security-group-rules?securityGroupId=).
    public func securityGroupRules(of group: SecurityGroupID) async throws(HiveClientError) -> [Revisioned<SecurityGroupRule>] {
        let query = [URLQueryItem(name: "securityGroupId", value: group.description)]
        return try Self.listing(SecurityGroupRule.self, from: await send(.get, [SecurityGroupRule.collection], query: query))
    }
}

// MARK: DHCP

extension HiveClient {
    /// A bridge's DHCP subnets (GET /v1/bridges/{id}/dhcp-subnets).
    public func dhcpSubnets(of bridge: BridgeID) async throws(HiveClientError) -> [Revisioned<DHCPSubnet>] {
        try Self.listing(DHCPSubnet.self, from: await send(.get, [Bridge.collection, bridge.description, "dhcp-subnets"]))
    }

    /// Adds DHCP service to `subnet.bridgeId` (POST /v1/bridges/{id}/dhcp-subnets).
    public func create(_ subnet: DHCPSubnet) async throws(HiveClientError) -> Revisioned<DHCPSubnet> {
        let body = try Self.body(subnet, includeId: false)
        return try Self.object(DHCPSubnet.self, from: await send(
            .post, [Bridge.collection, subnet.bridgeId.description, "dhcp-subnets"], body: body))
    }
}

// MARK: Tunnel zones and bindings (admin)

extension HiveClient {
    /// Adds a host to a tunnel zone, tunnelling from `address`; returns the zone.
    public func addMember(_ host: HostID, address: IPv4.Address, to zone: TunnelZoneID) async throws(HiveClientError) -> Revisioned<TunnelZone> {
        let body = try Self.body(TunnelZoneMember(hostId: host, address: address))
        return try Self.object(TunnelZone.self, from: await send(
            .post, [TunnelZone.collection, zone.description, "members"], body: body))
    }

    /// Removes a host from a tunnel zone; returns the zone.
    public func removeMember(_ host: HostID, from zone: TunnelZoneID) async throws(HiveClientError) -> Revisioned<TunnelZone> {
        try Self.object(TunnelZone.self, from: await send(
            .delete, [TunnelZone.collection, zone.description, "members", host.description]))
    }

    /// Bindings, optionally only those of one host and/or one port.
    public func bindings(host: HostID? = nil, port: PortID? = nil) async throws(HiveClientError) -> [Revisioned<Binding>] {
        var query: [URLQueryItem] = []
        if let host { query.append(URLQueryItem(name: "hostId", value: host.description)) }
        if let port { query.append(URLQueryItem(name: "portId", value: port.description)) }
        return try Self.listing(Binding.self, from: await send(.get, [Binding.collection], query: query))
    }
}

// MARK: Health

extension HiveClient {
    /// True when GET /healthz answers 200 (the API is up and its store answers).
    public func isHealthy() async -> Bool {
        (try? await exchange("GET", endpoint.appendingPathComponent("healthz")))?.status == 200
    }
}
