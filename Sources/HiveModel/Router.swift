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
    /// The external gateway: default SNAT for the tenant networks behind it.
    public var gateway: RouterGateway?

    public init(
        id: RouterID = RouterID(), tenantId: String? = nil, name: String, adminStateUp: Bool = true,
        inboundChainId: ChainID? = nil, outboundChainId: ChainID? = nil, gateway: RouterGateway? = nil
    ) {
        self.gateway = gateway
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.adminStateUp = adminStateUp
        self.inboundChainId = inboundChainId
        self.outboundChainId = outboundChainId
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, name, adminStateUp, inboundChainId, outboundChainId, gateway
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(RouterID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        name = try container.decode(String.self, forKey: .name)
        adminStateUp = try container.decode(Bool.self, forKey: .adminStateUp, default: true)
        inboundChainId = try container.decodeIfPresent(ChainID.self, forKey: .inboundChainId)
        outboundChainId = try container.decodeIfPresent(ChainID.self, forKey: .outboundChainId)
        gateway = try container.decodeIfPresent(RouterGateway.self, forKey: .gateway)
    }

    /// The gateway's port cannot be deleted while it is the gateway.
    public var references: [ObjectReference] {
        var references = chainReferences(inbound: inboundChainId, outbound: outboundChainId)
        if let gateway { references.append(ObjectReference(gateway.portId, field: "gateway.portId", onTargetDeletion: .refuse)) }
        return references
    }

    public var uniqueKeys: [String] {
        [UniqueKey.tenantScoped(tenantId: tenantId, name: name)]
    }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkTenant(tenantId)
        problems.checkName(name)
        if let address = gateway?.snatAddress {
            problems.checkUnicast(address, field: "gateway.snatAddress", role: "SNAT address", allowLoopback: false)
        }
        try problems.check()
    }
}
