import HiveModel
import HiveStore
import Hummingbird

extension Bridge: APIResource {
    static var collection: String { "bridges" }
    mutating func prepareForCreate() { tunnelKey = 0 }
    mutating func keepManagedFields(of stored: Bridge) { tunnelKey = stored.tunnelKey }
}

extension HiveAPIServer {
    /// /v1/bridges and /v1/bridges/{id}.
    func addBridgeRoutes(to v1: RouterGroup<APIRequestContext>) {
        let bridges = ResourceHandlers<Bridge>(repository: repository)
        v1.get("bridges") { try await bridges.list($0, $1) }
        v1.post("bridges") { try await bridges.create($0, $1) }
        v1.get("bridges/{id}") { try await bridges.read($0, $1) }
        v1.put("bridges/{id}") { try await bridges.replace($0, $1) }
        v1.delete("bridges/{id}") { try await bridges.delete($0, $1) }
    }
}
