import HivePacket

/// What a route does with the packets it matches.
public enum RouteKind: String, Codable, CaseIterable, Sendable {
    /// Forward out of `egressPortId`, to `nextHopGateway` when set, else to the destination itself.
    case normal
    /// Discard silently.
    case blackhole
    /// Discard and answer with ICMP destination unreachable.
    case reject
}

/// One entry in a router's forwarding table, matched by longest destination
/// prefix, then by source prefix; `weight` orders equal matches (lower wins).
public struct Route: TopologyObject {
    public static let kind = ObjectKind.route

    public var id: RouteID
    public var tenantId: String?
    public var routerId: RouterID
    /// The matched destination network, in network form.
    public var destination: IPv4.Prefix
    /// The matched source network, in network form; 0.0.0.0/0 matches any source.
    public var source: IPv4.Prefix
    /// The next router on the path; nil when the destination is directly connected.
    public var nextHopGateway: IPv4.Address?
    /// The router port packets leave by; required for `normal` routes.
    public var egressPortId: PortID?
    /// At least 1.
    public var weight: UInt32
    public var kind: RouteKind

    public static let anySource = IPv4.Prefix(address: .any, length: 0)
    public static let defaultWeight: UInt32 = 100

    public init(
        id: RouteID = RouteID(), tenantId: String? = nil, routerId: RouterID, destination: IPv4.Prefix,
        source: IPv4.Prefix = Route.anySource, nextHopGateway: IPv4.Address? = nil, egressPortId: PortID? = nil,
        weight: UInt32 = Route.defaultWeight, kind: RouteKind = .normal
    ) {
        self.id = id
        self.tenantId = tenantId
        self.routerId = routerId
        self.destination = destination
        self.source = source
        self.nextHopGateway = nextHopGateway
        self.egressPortId = egressPortId
        self.weight = weight
        self.kind = kind
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, routerId, destination, source, nextHopGateway, egressPortId, weight
        case kind
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(RouteID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        routerId = try container.decode(RouterID.self, forKey: .routerId)
        destination = try container.decode(IPv4.Prefix.self, forKey: .destination)
        source = try container.decode(IPv4.Prefix.self, forKey: .source, default: Route.anySource)
        nextHopGateway = try container.decodeIfPresent(IPv4.Address.self, forKey: .nextHopGateway)
        egressPortId = try container.decodeIfPresent(PortID.self, forKey: .egressPortId)
        weight = try container.decode(UInt32.self, forKey: .weight, default: Route.defaultWeight)
        kind = try container.decode(RouteKind.self, forKey: .kind, default: .normal)
    }

    /// Deleting the router or the egress port deletes the route with it.
    public var references: [ObjectReference] {
        var references = [ObjectReference(routerId, field: "routerId", onTargetDeletion: .cascade)]
        if let egressPortId {
            references.append(ObjectReference(egressPortId, field: "egressPortId", onTargetDeletion: .cascade))
        }
        return references
    }

    public var uniqueKeys: [String] { [] }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkTenant(tenantId)
        problems.checkNetworkForm(destination, field: "destination")
        problems.checkNetworkForm(source, field: "source")
        if weight == 0 {
            problems.add("weight", weight, "is too low (expected at least 1; lower weights win among equal routes)")
        }
        switch kind {
        case .normal:
            if egressPortId == nil {
                problems.add("egressPortId", "", "is required for a normal route (expected the router port packets leave by; use kind 'blackhole' or 'reject' to discard)")
            }
            if let nextHopGateway {
                problems.checkUnicast(nextHopGateway, field: "nextHopGateway", role: "next-hop router address", allowLoopback: false)
            }
        case .blackhole, .reject:
            let discards = "a \(kind.rawValue) route discards packets (use kind 'normal' to forward)"
            if let egressPortId {
                problems.add("egressPortId", egressPortId, "must be absent: \(discards)")
            }
            if let nextHopGateway {
                problems.add("nextHopGateway", nextHopGateway, "must be absent: \(discards)")
            }
        }
        try problems.check()
    }
}
