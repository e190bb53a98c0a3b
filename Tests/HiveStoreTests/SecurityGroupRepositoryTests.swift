import Foundation
import HiveModel
import HivePacket
import Testing
@testable import HiveStore

import struct HiveModel.Port
import HiveTestSupport

/// Security groups in the repository: created with their initial rules in
/// one transaction, deleted with their rules, kept alive by the ports that
/// list them and by other groups' rules naming them as remote, and one
/// tenant's policy. Each scenario runs on the embedded store, and all of
/// them on etcd.
enum SecurityGroupScenarios {
    static let all: [(String, @Sendable (TopologyRepository) async throws -> Void)] = [
        ("created with initial rules", createdWithInitialRules),
        ("default group's self rules", defaultGroupAllowsItsMembers),
        ("failed create stores nothing", aRefusedCreateStoresNothing),
        ("cascade delete", deletingAGroupDeletesItsRules),
        ("refused while a port lists it", aGroupAPortListsCannotBeDeleted),
        ("refused while a remote", aGroupNamedAsRemoteCannotBeDeleted),
        ("duplicate rule", aDuplicateRuleIsRefused),
        ("port security off", aPortWithoutPortSecurityHasNoGroups),
        ("tenant scoping", groupsAreOneTenantsPolicy),
        ("rules cannot change", rulesCannotChange),
    ]

    static func rules(of group: SecurityGroupID, _ repository: TopologyRepository) async throws -> [SecurityGroupRule] {
        try await repository.list(SecurityGroupRule.self).items.map(\.object).filter { $0.securityGroupId == group }
    }

    static func bridge(_ repository: TopologyRepository, tenant: String = "acme") async throws -> BridgeID {
        try await repository.create(Bridge(tenantId: tenant, name: "web-\(UUID().uuidString.prefix(8))")).object.id
    }

    static func createdWithInitialRules(_ repository: TopologyRepository) async throws {
        let group = try await repository.create(SecurityGroup(tenantId: "acme", name: "web", description: "web servers"))
        let rules = try await rules(of: group.object.id, repository)
        #expect(rules.count == 2, "a new group allows all egress, IPv4 and IPv6: \(rules)")
        #expect(Set(rules.map(\.etherType)) == [.ipv4, .ipv6])
        for rule in rules {
            #expect(rule.direction == .egress)
            #expect(rule.ipProtocol == nil && rule.remotePrefix == nil && rule.remoteGroupId == nil)
            #expect(rule.tenantId == "acme", "a rule belongs to its group's tenant")
        }
        let stored = try await repository.list(SecurityGroupRule.self)
        #expect(stored.items.allSatisfy { $0.revision == group.revision }, "the rules were written in the group's transaction")
        #expect(try await integrityProblems(in: repository.store) == [])
    }

    static func defaultGroupAllowsItsMembers(_ repository: TopologyRepository) async throws {
        let group = try await repository.create(SecurityGroup(tenantId: "acme", name: SecurityGroup.defaultName)).object
        let rules = try await rules(of: group.id, repository)
        let ingress = rules.filter { $0.direction == .ingress }
        #expect(rules.count == 4)
        #expect(Set(ingress.map(\.etherType)) == [.ipv4, .ipv6])
        #expect(ingress.allSatisfy { $0.remoteGroupId == group.id }, "the default group's members may reach each other")
        // Its own rules do not keep it alive.
        try await repository.delete(SecurityGroup.self, id: group.id)
        #expect(try await repository.list(SecurityGroupRule.self).items.isEmpty)
        #expect(try await integrityProblems(in: repository.store) == [])
    }

    static func aRefusedCreateStoresNothing(_ repository: TopologyRepository) async throws {
        _ = try await repository.create(SecurityGroup(tenantId: "acme", name: "web"))
        let before = try await repository.store.range(.prefix(TopologyKeys.root)).keyValues.map(\.key)
        await #expect(throws: RepositoryError.self) {
            try await repository.create(SecurityGroup(tenantId: "acme", name: "web"))
        }
        // A companion that fails (here a rule of a group that does not exist) stops the group too.
        let group = SecurityGroup(tenantId: "acme", name: "db")
        let stray = SecurityGroupRule(securityGroupId: SecurityGroupID(), direction: .ingress)
        await #expect(throws: RepositoryError.missingReference(field: "securityGroupId", kind: .securityGroup, id: stray.securityGroupId.description)) {
            try await repository.create(group, with: group.initialRules() + [stray])
        }
        // Two companions claiming one unique key are refused like two creates.
        let twins = [SecurityGroupRule(securityGroupId: group.id, direction: .ingress),
                     SecurityGroupRule(securityGroupId: group.id, direction: .ingress)]
        await #expect {
            try await repository.create(group, with: twins)
        } throws: { error in
            guard case RepositoryError.duplicate(.securityGroupRule, _, _) = error else { return false }
            return true
        }
        let after = try await repository.store.range(.prefix(TopologyKeys.root)).keyValues.map(\.key)
        #expect(after == before, "a refused create left keys behind")
    }

    static func deletingAGroupDeletesItsRules(_ repository: TopologyRepository) async throws {
        let web = try await repository.create(SecurityGroup(tenantId: "acme", name: "web")).object
        let other = try await repository.create(SecurityGroup(tenantId: "acme", name: "other")).object
        _ = try await repository.create(SecurityGroupRule(
            securityGroupId: web.id, direction: .ingress, ipProtocol: IPProtocolNumber.tcp, ports: PortRange(80)))
        #expect(try await rules(of: web.id, repository).count == 3)
        try await repository.delete(SecurityGroup.self, id: web.id)
        #expect(try await rules(of: web.id, repository).isEmpty)
        #expect(try await rules(of: other.id, repository).count == 2, "another group's rules stay")
        #expect(try await integrityProblems(in: repository.store) == [])
    }

    static func aGroupAPortListsCannotBeDeleted(_ repository: TopologyRepository) async throws {
        let group = try await repository.create(SecurityGroup(tenantId: "acme", name: "web")).object
        let port = try await repository.create(Port(tenantId: "acme", bridge: try await bridge(repository), securityGroupIds: [group.id]))
        await #expect(throws: RepositoryError.inUse(.securityGroup, group.id.description, referrers: [
            .init(kind: .port, id: port.object.id.description, field: "securityGroupIds[0]"),
        ])) {
            try await repository.delete(SecurityGroup.self, id: group.id)
        }
        #expect(try await rules(of: group.id, repository).count == 2, "a refused delete keeps the rules")
        var updated = port.object
        updated.securityGroupIds = []
        _ = try await repository.update(updated)
        try await repository.delete(SecurityGroup.self, id: group.id)
        #expect(try await integrityProblems(in: repository.store) == [])
    }

    static func aGroupNamedAsRemoteCannotBeDeleted(_ repository: TopologyRepository) async throws {
        let database = try await repository.create(SecurityGroup(tenantId: "acme", name: "db")).object
        let web = try await repository.create(SecurityGroup(tenantId: "acme", name: "web")).object
        let rule = try await repository.create(SecurityGroupRule(
            securityGroupId: database.id, direction: .ingress, ipProtocol: IPProtocolNumber.tcp, ports: PortRange(5432),
            remoteGroupId: web.id)).object
        await #expect(throws: RepositoryError.inUse(.securityGroup, web.id.description, referrers: [
            .init(kind: .securityGroupRule, id: rule.id.description, field: "remoteGroupId"),
        ])) {
            try await repository.delete(SecurityGroup.self, id: web.id)
        }
        // Deleting the group that holds the rule frees the remote.
        try await repository.delete(SecurityGroup.self, id: database.id)
        try await repository.delete(SecurityGroup.self, id: web.id)
        let missing = SecurityGroupID()
        await #expect(throws: RepositoryError.missingReference(field: "remoteGroupId", kind: .securityGroup, id: missing.description)) {
            let group = try await repository.create(SecurityGroup(tenantId: "acme", name: "lonely")).object
            _ = try await repository.create(SecurityGroupRule(securityGroupId: group.id, direction: .ingress, remoteGroupId: missing))
        }
        #expect(try await integrityProblems(in: repository.store) == [])
    }

    static func aDuplicateRuleIsRefused(_ repository: TopologyRepository) async throws {
        let group = try await repository.create(SecurityGroup(tenantId: "acme", name: "web")).object
        let http = SecurityGroupRule(securityGroupId: group.id, direction: .ingress, ipProtocol: IPProtocolNumber.tcp,
                                     ports: PortRange(80), remotePrefix: prefix("0.0.0.0/0"))
        let first = try await repository.create(http).object
        var again = http
        again.id = SecurityGroupRuleID()
        again.description = "same traffic, other words"
        await #expect {
            try await repository.create(again)
        } throws: { error in
            guard case RepositoryError.duplicate(.securityGroupRule, _, let existing) = error else { return false }
            return existing == first.id.description && "\(error)".contains("already has rule \(first.id)")
        }
        // Different traffic is not a duplicate: another port, or the same in another group.
        var https = again
        https.id = SecurityGroupRuleID()
        https.ports = PortRange(443)
        _ = try await repository.create(https)
        let other = try await repository.create(SecurityGroup(tenantId: "acme", name: "other")).object
        again.id = SecurityGroupRuleID()
        again.securityGroupId = other.id
        _ = try await repository.create(again)
        // An initial rule written again by hand is a duplicate too.
        await #expect(throws: RepositoryError.self) {
            try await repository.create(SecurityGroupRule(securityGroupId: group.id, direction: .egress))
        }
    }

    static func aPortWithoutPortSecurityHasNoGroups(_ repository: TopologyRepository) async throws {
        let group = try await repository.create(SecurityGroup(tenantId: "acme", name: "web")).object
        let bridge = try await bridge(repository)
        await #expect {
            try await repository.create(Port(tenantId: "acme", bridge: bridge, portSecurity: false, securityGroupIds: [group.id]))
        } throws: { error in
            guard case RepositoryError.invalid(let errors) = error else { return false }
            return errors.contains { $0.field == "securityGroupIds" && $0.problem.contains("portSecurity is off") }
        }
        let port = try await repository.create(Port(tenantId: "acme", bridge: bridge, securityGroupIds: [group.id])).object
        var unsecured = port
        unsecured.portSecurity = false
        await #expect(throws: RepositoryError.self) { try await repository.update(unsecured) }
        unsecured.securityGroupIds = []
        _ = try await repository.update(unsecured)
        #expect(try await repository.list(Port.self).items.first { $0.object.id == port.id }?.object.portSecurity == false)
    }

    static func groupsAreOneTenantsPolicy(_ repository: TopologyRepository) async throws {
        let acme = try await repository.create(SecurityGroup(tenantId: "acme", name: "web")).object
        let globex = try await repository.create(SecurityGroup(tenantId: "globex", name: "web")).object
        // A port of globex cannot use acme's group, even when admin writes it.
        let globexBridge = try await bridge(repository, tenant: "globex")
        await #expect(throws: RepositoryError.refused(
            field: "securityGroupIds[1]", value: acme.id.description,
            reason: "is a security group of tenant 'acme'; a port of tenant 'globex' may only use its own tenant's groups")) {
            try await repository.create(Port(tenantId: "globex", bridge: globexBridge, securityGroupIds: [globex.id, acme.id]))
        }
        let port = try await repository.create(Port(tenantId: "globex", bridge: globexBridge, securityGroupIds: [globex.id])).object
        var moved = port
        moved.securityGroupIds.append(acme.id)
        await #expect(throws: RepositoryError.self) { try await repository.update(moved) }
        // A rule's remote group is of its tenant; its tenant is its group's.
        await #expect {
            try await repository.create(SecurityGroupRule(securityGroupId: acme.id, direction: .ingress, remoteGroupId: globex.id))
        } throws: { error in
            guard case RepositoryError.refused(let field, _, _) = error else { return false }
            return field == "remoteGroupId"
        }
        let inherited = try await repository.create(SecurityGroupRule(securityGroupId: globex.id, direction: .ingress)).object
        #expect(inherited.tenantId == "globex")
        await #expect {
            try await repository.create(SecurityGroupRule(tenantId: "acme", securityGroupId: globex.id, direction: .ingress, etherType: .ipv6))
        } throws: { error in
            guard case RepositoryError.refused(let field, _, _) = error else { return false }
            return field == "tenantId"
        }
        // And a group's tenant never changes.
        var handedOver = acme
        handedOver.tenantId = "globex"
        handedOver.name = "handed-over"
        await #expect(throws: RepositoryError.self) { try await repository.update(handedOver) }
        #expect(try await repository.get(acme.id).object.tenantId == "acme")
    }

    static func rulesCannotChange(_ repository: TopologyRepository) async throws {
        let group = try await repository.create(SecurityGroup(tenantId: "acme", name: "web")).object
        var rule = try await rules(of: group.id, repository)[0]
        rule.description = "edited"
        await #expect {
            try await repository.update(rule)
        } throws: { error in
            guard case RepositoryError.refused(let field, _, let reason) = error else { return false }
            return field == "id" && reason.contains("cannot change")
        }
    }
}

@Suite("Security groups in the repository")
struct SecurityGroupRepositoryTests {
    @Test(arguments: SecurityGroupScenarios.all.map(\.0))
    func embedded(_ scenario: String) async throws {
        let run = try #require(SecurityGroupScenarios.all.first { $0.0 == scenario }?.1)
        try await withEmbeddedRepository { try await run($0) }
    }

    @Test(.timeLimit(.minutes(5)))
    func etcd() async throws {
        try await withEtcdCluster(members: 1) { cluster in
            let store = EtcdStore(endpoints: cluster.endpoints)
            // Each scenario in a fresh key space: delete everything in between.
            for (name, run) in SecurityGroupScenarios.all {
                _ = try await store.transaction(Transaction(compares: [], success: [.delete(.prefix(TopologyKeys.root))], failure: []))
                do {
                    try await run(TopologyRepository(store: store))
                } catch {
                    Issue.record("etcd, \(name): \(error)")
                }
            }
            await store.close()
        }
    }
}
