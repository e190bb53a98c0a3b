import HiveModel
import HiveStore
import Hummingbird

extension SecurityGroup: APIResource {
    static var collection: String { "security-groups" }
}

extension SecurityGroupRule: APIResource {
    static var collection: String { "security-group-rules" }
}

extension HiveAPIServer {
    /// /v1/security-groups (created with their initial rules) and
    /// /v1/security-group-rules (filter `?securityGroupId=`). Rules cannot
    /// change, as in Neutron: no PUT (405); delete one and create another.
    func addSecurityGroupRoutes(to v1: RouterGroup<APIRequestContext>) {
        let groups = ResourceHandlers<SecurityGroup>(repository: repository)
        v1.get("security-groups") { try await groups.list($0, $1) }
        v1.post("security-groups") { try await groups.create($0, $1) }
        v1.get("security-groups/{id}") { try await groups.read($0, $1) }
        v1.put("security-groups/{id}") { try await groups.replace($0, $1) }
        v1.delete("security-groups/{id}") { try await groups.delete($0, $1) }

        let rules = ResourceHandlers<SecurityGroupRule>(repository: repository)
        v1.get("security-group-rules") { request, context in
            let group = try request.query(allowing: ["securityGroupId"]).id("securityGroupId")
            return try await rules.list(request, context, query: ["securityGroupId"]) { rule in
                group.map { $0 == rule.securityGroupId.uuid } ?? true
            }
        }
        v1.post("security-group-rules") { try await rules.create($0, $1) }
        v1.get("security-group-rules/{id}") { try await rules.read($0, $1) }
        v1.delete("security-group-rules/{id}") { try await rules.delete($0, $1) }
    }
}
