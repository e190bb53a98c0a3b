import HiveModel

// Security groups in the repository. A group is created with its initial
// rules (one transaction), and a group's rules and member ports are one
// tenant's policy: a rule takes its group's tenant, a remote group and a
// port's groups must be of the same tenant. These hold for every caller,
// admin included (the API already hides other tenants' objects from
// tenants), so a tenant's group never filters, or reveals the addresses of,
// another tenant's ports. A group's tenant never changes, so checking it
// when a rule or port is written is enough.

extension TopologyObject {
    /// New objects that are created with this one, in its transaction.
    var createdWith: [any TopologyObject] {
        switch self {
        case let group as SecurityGroup: return group.initialRules()
        default: return []
        }
    }
}

extension TopologyRepository {
    /// An object `plan` creates, else the stored one.
    func find<T: TopologyObject>(_ id: ObjectID<T>, in plan: ChangePlan) async throws -> T? {
        if let planned = plan.created[TopologyKeys.object(T.kind, id)] as? T { return planned }
        return try await find(id)?.object
    }

    func securityGroupRules(_ group: SecurityGroup, previous: SecurityGroup?) throws {
        guard let previous, previous.tenantId != group.tenantId else { return }
        throw RepositoryError.refused(
            field: "tenantId", value: group.tenantId ?? "none",
            reason: "cannot change; the group, its rules and its member ports belong to \(tenantText(previous.tenantId))")
    }

    /// A rule is never changed (delete it and create another, as in Neutron);
    /// it belongs to its group's tenant; its remote group is of that tenant.
    func securityGroupRuleRules(_ rule: inout SecurityGroupRule, previous: SecurityGroupRule?, plan: ChangePlan) async throws {
        if previous != nil {
            throw RepositoryError.refused(
                field: "id", value: rule.id.description,
                reason: "is a security group rule, which cannot change; delete it and create the rule you want")
        }
        guard let group = try await find(rule.securityGroupId, in: plan) else {
            throw RepositoryError.missingReference(field: "securityGroupId", kind: .securityGroup, id: rule.securityGroupId.description)
        }
        if rule.tenantId == nil { rule.tenantId = group.tenantId }
        guard rule.tenantId == group.tenantId else {
            throw RepositoryError.refused(
                field: "tenantId", value: rule.tenantId ?? "none",
                reason: "differs from the tenant of security group \(group.id) (\(tenantText(group.tenantId))); omit tenantId and the rule takes its group's")
        }
        if let remote = rule.remoteGroupId, remote != group.id, let remoteGroup = try await find(remote, in: plan),
           remoteGroup.tenantId != group.tenantId {
            throw RepositoryError.refused(
                field: "remoteGroupId", value: remote.description,
                reason: "is a security group of \(tenantText(remoteGroup.tenantId)), not of the rule's \(tenantText(group.tenantId)) (expected a group of the same tenant)")
        }
    }

    /// A port may list only its own tenant's security groups.
    func portSecurityGroupRules(_ port: Port, plan: ChangePlan) async throws {
        for (index, id) in port.securityGroupIds.enumerated() {
            // A missing group is the reference check's to report.
            guard let group = try await find(id, in: plan), group.tenantId != port.tenantId else { continue }
            throw RepositoryError.refused(
                field: "securityGroupIds[\(index)]", value: id.description,
                reason: "is a security group of \(tenantText(group.tenantId)); a port of \(tenantText(port.tenantId)) may only use its own tenant's groups")
        }
    }

    private func tenantText(_ tenantId: String?) -> String {
        tenantId.map { "tenant '\($0)'" } ?? "no tenant (admin)"
    }
}
