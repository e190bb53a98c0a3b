/// A virtual L2 switch. Its ports are `Port`s with `deviceKind == .bridge`.
public struct Bridge: TopologyObject {
    public static let kind = ObjectKind.bridge

    public var id: BridgeID
    public var tenantId: String?
    /// Unique per tenant.
    public var name: String
    /// False drops every packet entering the bridge.
    public var adminStateUp: Bool
    /// Applied to packets entering the bridge, before MAC learning/forwarding.
    public var inboundChainId: ChainID?
    /// Applied to packets leaving the bridge.
    public var outboundChainId: ChainID?
    /// Answer ARP requests from known IP-to-MAC entries instead of flooding them.
    public var arpSuppression: Bool
    /// The flood-set key carried in tunnel headers; 0 until the repository allocates one.
    public var tunnelKey: UInt32

    public init(
        id: BridgeID = BridgeID(), tenantId: String? = nil, name: String, adminStateUp: Bool = true,
        inboundChainId: ChainID? = nil, outboundChainId: ChainID? = nil, arpSuppression: Bool = true,
        tunnelKey: UInt32 = 0
    ) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.adminStateUp = adminStateUp
        self.inboundChainId = inboundChainId
        self.outboundChainId = outboundChainId
        self.arpSuppression = arpSuppression
        self.tunnelKey = tunnelKey
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, name, adminStateUp, inboundChainId, outboundChainId, arpSuppression, tunnelKey
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(BridgeID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        name = try container.decode(String.self, forKey: .name)
        adminStateUp = try container.decode(Bool.self, forKey: .adminStateUp, default: true)
        inboundChainId = try container.decodeIfPresent(ChainID.self, forKey: .inboundChainId)
        outboundChainId = try container.decodeIfPresent(ChainID.self, forKey: .outboundChainId)
        arpSuppression = try container.decode(Bool.self, forKey: .arpSuppression, default: true)
        tunnelKey = try container.decode(UInt32.self, forKey: .tunnelKey, default: 0)
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
        problems.checkTunnelKey(tunnelKey)
        try problems.check()
    }
}

/// Inbound/outbound chain references, shared by bridges, routers and ports:
/// a chain in use cannot be deleted.
func chainReferences(inbound: ChainID?, outbound: ChainID?) -> [ObjectReference] {
    var references: [ObjectReference] = []
    if let inbound {
        references.append(ObjectReference(inbound, field: "inboundChainId", onTargetDeletion: .refuse))
    }
    if let outbound {
        references.append(ObjectReference(outbound, field: "outboundChainId", onTargetDeletion: .refuse))
    }
    return references
}
