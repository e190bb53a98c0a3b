/// An ordered list of rules that a device or port applies to packets, or
/// that another chain's rule jumps to.
public struct Chain: TopologyObject {
    public static let kind = ObjectKind.chain

    public var id: ChainID
    public var tenantId: String?
    /// Unique per tenant.
    public var name: String
    /// The rules in evaluation order. Rules name their chain, not the other way
    /// round, so these are not references; the repository keeps them in step.
    public var ruleIds: [RuleID]

    public init(id: ChainID = ChainID(), tenantId: String? = nil, name: String, ruleIds: [RuleID] = []) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.ruleIds = ruleIds
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, name, ruleIds
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(ChainID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        name = try container.decode(String.self, forKey: .name)
        ruleIds = try container.decode([RuleID].self, forKey: .ruleIds, default: [])
    }

    public var references: [ObjectReference] { [] }

    public var uniqueKeys: [String] {
        [UniqueKey.tenantScoped(tenantId: tenantId, name: name)]
    }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkTenant(tenantId)
        problems.checkName(name)
        problems.checkNoDuplicates(ruleIds, field: "ruleIds", what: "rule")
        try problems.check()
    }
}
