/// A virtual L3 router. Its ports are `Port`s with `deviceKind == .router`;
/// its forwarding table is the `Route`s naming it.
public struct Router: TopologyObject {
    public static let kind = ObjectKind.router

    public var id: RouterID
    public var tenantId: String?
    /// Unique per tenant.
    public var name: String
    /// False drops every packet entering the router.
    public var adminStateUp: Bool
    /// Applied to packets entering the router, before the route lookup.
    public var inboundChainId: ChainID?
    /// Applied to packets leaving the router.
    public var outboundChainId: ChainID?

    public init(
        id: RouterID = RouterID(), tenantId: String? = nil, name: String, adminStateUp: Bool = true,
        inboundChainId: ChainID? = nil, outboundChainId: ChainID? = nil
    ) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.adminStateUp = adminStateUp
        self.inboundChainId = inboundChainId
        self.outboundChainId = outboundChainId
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, name, adminStateUp, inboundChainId, outboundChainId
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(RouterID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        name = try container.decode(String.self, forKey: .name)
        adminStateUp = try container.decode(Bool.self, forKey: .adminStateUp, default: true)
        inboundChainId = try container.decodeIfPresent(ChainID.self, forKey: .inboundChainId)
        outboundChainId = try container.decodeIfPresent(ChainID.self, forKey: .outboundChainId)
    }

    public var references: [ObjectReference] {
        chainReferences(inbound: inboundChainId, outbound: outboundChainId)
    }

    public var uniqueKeys: [String] {
        [UniqueKey.tenantScoped(tenantId: tenantId, name: name)]
    }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkTenant(tenantId)
        problems.checkName(name)
        try problems.check()
    }
}
