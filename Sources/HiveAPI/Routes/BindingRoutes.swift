import HiveModel
import HiveStore
import Hummingbird

extension Binding: APIResource {
    static var collection: String { "bindings" }
    static var adminOnly: Bool { true }
}

extension HiveAPIServer {
    /// /v1/bindings (filters `?hostId=`, `?portId=`) and /v1/bindings/{id} (admin-only).
    /// A binding is not updated in place: unbind (DELETE) and bind again.
    func addBindingRoutes(to v1: RouterGroup<APIRequestContext>) {
        let bindings = ResourceHandlers<Binding>(repository: repository)
        v1.get("bindings") { request, context in
            _ = try bindings.access(context)
            let query = try request.query(allowing: ["hostId", "portId"])
            let host = try query.id("hostId")
            let port = try query.id("portId")
            return try await bindings.list(request, context, query: ["hostId", "portId"]) { binding in
                (host.map { $0 == binding.hostId.uuid } ?? true) && (port.map { $0 == binding.portId.uuid } ?? true)
            }
        }
        v1.post("bindings") { try await bindings.create($0, $1) }
        v1.get("bindings/{id}") { try await bindings.read($0, $1) }
        v1.delete("bindings/{id}") { try await bindings.delete($0, $1) }
    }
}
