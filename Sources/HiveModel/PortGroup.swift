/// A named set of ports, matched as a unit by rules (`inPortGroup`).
/// Ports join by listing the group in `Port.portGroupIds`.
public struct PortGroup: TopologyObject {
    public static let kind = ObjectKind.portGroup

    public var id: PortGroupID
    public var tenantId: String?
    /// Unique per tenant.
    public var name: String
    /// Share connection-tracking state across the member ports, so a reply
    /// may return through a different member than the request left by.
    public var stateful: Bool

    public init(id: PortGroupID = PortGroupID(), tenantId: String? = nil, name: String, stateful: Bool = false) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.stateful = stateful
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, name, stateful
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(PortGroupID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        name = try container.decode(String.self, forKey: .name)
        stateful = try container.decode(Bool.self, forKey: .stateful, default: false)
    }

    public var references: [ObjectReference] { [] }

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
