import Hummingbird
import Logging

/// The request context of every Hive API route: Hummingbird's core storage
/// plus the principal the authentication middleware found.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AuthenticationMiddleware` for routes under `/v1`; nil on the
    /// unauthenticated routes (`/healthz`, `/metrics`, `/openapi.yaml`).
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Bodies larger than this are refused with 413. Well under etcd's 1.5 MiB
    /// request limit, so an accepted body always fits in one store write.
    public var maxUploadSize: Int { 1 << 20 }

    /// The authenticated principal; only routes behind the authentication
    /// middleware call this.
    func requirePrincipal() throws -> Principal {
        guard let principal else {
            throw APIError.unauthorized("missing bearer token: send the header 'Authorization: Bearer <token>'")
        }
        return principal
    }

    /// Refuses tenants on admin-only resources ("hosts are admin-only").
    func requireAdmin(for resource: String) throws {
        if case .tenant(let tenant) = try requirePrincipal() {
            throw APIError.forbidden("\(resource) are admin-only; tenant '\(tenant)' cannot see or change them")
        }
    }
}
