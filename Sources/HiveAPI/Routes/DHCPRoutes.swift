import HiveModel
import HiveStore
import Hummingbird

extension DHCPSubnet: APIResource {
    static var collection: String { "dhcp-subnets" }
    func fieldsKeptWhenOmitted() -> [String: JSONFragment] { ["bridgeId": JSONFragment(bridgeId)] }
}

extension HiveAPIServer {
    /// A bridge's DHCP subnets: /v1/bridges/{id}/dhcp-subnets and /v1/dhcp-subnets/{id}.
    func addDHCPRoutes(to v1: RouterGroup<APIRequestContext>) {
        let bridges = ResourceHandlers<Bridge>(repository: repository)
        let subnets = ResourceHandlers<DHCPSubnet>(repository: repository)
        v1.get("bridges/{id}/dhcp-subnets") { request, context in
            let bridge = try await bridges.access(context).get(context.pathID(Bridge.self))
            return try await subnets.list(request, context) { subnet in subnet.bridgeId == bridge.object.id }
        }
        v1.post("bridges/{id}/dhcp-subnets") { request, context in
            let bridge = try await bridges.access(context).get(context.pathID(Bridge.self))
            let parent = ParentField<DHCPSubnet>(name: "bridgeId", id: bridge.object.id.uuid, value: { $0.bridgeId.uuid })
            return try await subnets.create(request, context, parent: parent)
        }
        v1.get("dhcp-subnets/{id}") { try await subnets.read($0, $1) }
        v1.put("dhcp-subnets/{id}") { try await subnets.replace($0, $1) }
        v1.delete("dhcp-subnets/{id}") { try await subnets.delete($0, $1) }
    }
}
