/// One rule in a chain: when its conditions match, its action applies.
/// The chain's `ruleIds` gives the rule's position.
public struct Rule: TopologyObject {
    public static let kind = ObjectKind.rule

    public var id: RuleID
    public var tenantId: String?
    public var chainId: ChainID
    public var conditions: RuleConditions
    public var action: RuleAction

    public init(
        id: RuleID = RuleID(), tenantId: String? = nil, chainId: ChainID,
        conditions: RuleConditions = RuleConditions(), action: RuleAction
    ) {
        self.id = id
        self.tenantId = tenantId
        self.chainId = chainId
        self.conditions = conditions
        self.action = action
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, chainId, conditions, action
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(RuleID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        chainId = try container.decode(ChainID.self, forKey: .chainId)
        conditions = try container.decode(RuleConditions.self, forKey: .conditions, default: RuleConditions())
        action = try container.decode(RuleAction.self, forKey: .action)
    }

    /// Deleting the chain deletes its rules; a jump target or a named port or
    /// group cannot be deleted while a rule names it.
    public var references: [ObjectReference] {
        var references = [ObjectReference(chainId, field: "chainId", onTargetDeletion: .cascade)]
        if let target = action.jumpTarget {
            references.append(ObjectReference(target, field: "action.chainId", onTargetDeletion: .refuse))
        }
        return references + conditions.references
    }

    public var uniqueKeys: [String] { [] }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkTenant(tenantId)
        conditions.validate(into: &problems)
        if let target = action.jumpTarget, target == chainId {
            problems.add("action.chainId", target, "is the rule's own chain (a chain jumping to itself never ends; expected another chain)")
        }
        if let target = action.natTarget {
            for error in target.problems(field: "action.target").errors { problems.add(error.field, error.value, error.problem) }
        }
        try problems.check()
    }
}
