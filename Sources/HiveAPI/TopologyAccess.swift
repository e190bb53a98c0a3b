import Foundation
import HiveModel
import HiveStore

/// The repository as one principal sees it. A tenant sees only objects
/// with its `tenantId`: anything else reads as missing (404), and a body
/// naming anything else is refused as a missing reference (422), exactly as
/// if the object did not exist. Admin sees and may name everything.
struct TopologyAccess: Sendable {
    let repository: TopologyRepository
    let principal: Principal

    /// The object, if it exists and the principal may see it.
    func find<T: TopologyObject>(_ id: ObjectID<T>) async throws -> Stored<T>? {
        guard let stored = try await repository.find(id), principal.mayAccess(tenantId: stored.object.tenantId) else {
            return nil
        }
        return stored
    }

    /// The object, or 404 `not_found`.
    func get<T: TopologyObject>(_ id: ObjectID<T>) async throws -> Stored<T> {
        guard let stored = try await find(id) else { throw RepositoryError.notFound(T.kind, id.description) }
        return stored
    }

    /// Every visible object of a kind, in id order.
    func list<T: TopologyObject>(_ type: T.Type) async throws -> [Stored<T>] {
        try await repository.list(T.self).items.filter { principal.mayAccess(tenantId: $0.object.tenantId) }
    }

    /// Puts a tenant's own id into an object it writes. A body naming another
    /// tenant is refused; admin may name any tenant or none.
    func assignTenant<T: TopologyObject>(to object: inout T) throws {
        guard case .tenant(let tenant) = principal else { return }
        if let given = object.tenantId, given != tenant {
            throw APIError.invalid(
                field: "tenantId", value: given,
                problem: "is not your tenant (expected '\(tenant)' or no tenantId; your token belongs to tenant '\(tenant)')")
        }
        object.tenantId = tenant
    }

    /// Refuses a tenant's object that names an object of another tenant (or
    /// an admin-owned one), with the message the repository gives for a
    /// missing object. Objects that do not exist are left to the repository,
    /// which checks existence inside its transaction.
    func checkReferences<T: TopologyObject>(of object: T) async throws {
        guard case .tenant(let tenant) = principal else { return }
        for reference in object.references {
            guard let referencedOwner = try await owner(of: reference.kind, reference.id) else { continue }
            if referencedOwner != tenant {
                throw RepositoryError.missingReference(
                    field: reference.field, kind: reference.kind, id: reference.id.uuidString.lowercased())
            }
        }
    }

    /// nil when the object does not exist; `.some(nil)` when admin owns it.
    private func owner(of kind: ObjectKind, _ uuid: UUID) async throws -> String?? {
        func tenant<T: TopologyObject>(_ type: T.Type) async throws -> String?? {
            guard let stored = try await repository.find(ObjectID<T>(uuid)) else { return nil }
            return .some(stored.object.tenantId)
        }
        switch kind {
        case .bridge: return try await tenant(Bridge.self)
        case .router: return try await tenant(Router.self)
        case .port: return try await tenant(Port.self)
        case .route: return try await tenant(Route.self)
        case .chain: return try await tenant(Chain.self)
        case .rule: return try await tenant(Rule.self)
        case .portGroup: return try await tenant(PortGroup.self)
        case .ipAddressGroup: return try await tenant(IPAddressGroup.self)
        case .host: return try await tenant(HiveModel.Host.self)
        case .tunnelZone: return try await tenant(TunnelZone.self)
        case .binding: return try await tenant(Binding.self)
        case .dhcpSubnet: return try await tenant(DHCPSubnet.self)
        case .securityGroup: return try await tenant(SecurityGroup.self)
        case .securityGroupRule: return try await tenant(SecurityGroupRule.self)
        case .floatingIP: return try await tenant(FloatingIP.self)
        }
    }
}
