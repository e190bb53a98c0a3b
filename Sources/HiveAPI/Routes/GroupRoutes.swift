import HiveModel
import HiveStore
import Hummingbird

extension PortGroup: APIResource {
    static var collection: String { "port-groups" }
}

extension IPAddressGroup: APIResource {
    static var collection: String { "ip-address-groups" }
}

extension HiveAPIServer {
    /// /v1/port-groups and /v1/ip-address-groups, each with /{id}.
    func addGroupRoutes(to v1: RouterGroup<APIRequestContext>) {
        let portGroups = ResourceHandlers<PortGroup>(repository: repository)
        v1.get("port-groups") { try await portGroups.list($0, $1) }
        v1.post("port-groups") { try await portGroups.create($0, $1) }
        v1.get("port-groups/{id}") { try await portGroups.read($0, $1) }
        v1.put("port-groups/{id}") { try await portGroups.replace($0, $1) }
        v1.delete("port-groups/{id}") { try await portGroups.delete($0, $1) }

        let addressGroups = ResourceHandlers<IPAddressGroup>(repository: repository)
        v1.get("ip-address-groups") { try await addressGroups.list($0, $1) }
        v1.post("ip-address-groups") { try await addressGroups.create($0, $1) }
        v1.get("ip-address-groups/{id}") { try await addressGroups.read($0, $1) }
        v1.put("ip-address-groups/{id}") { try await addressGroups.replace($0, $1) }
        v1.delete("ip-address-groups/{id}") { try await addressGroups.delete($0, $1) }
    }
}
