import HiveModel
import HiveStore
import Hummingbird

extension HiveModel.Router: APIResource {
    static var collection: String { "routers" }
}

extension Route: APIResource {
    static var collection: String { "routes" }
    func fieldsKeptWhenOmitted() -> [String: JSONFragment] { ["routerId": JSONFragment(routerId)] }
}

extension HiveAPIServer {
    /// Routers and their routes: /v1/routers, /v1/routers/{id}, /v1/routers/{id}/routes, /v1/routes/{id}.
    func addRouterRoutes(to v1: RouterGroup<APIRequestContext>) {
        let routers = ResourceHandlers<HiveModel.Router>(repository: repository)
        let routes = ResourceHandlers<Route>(repository: repository)
        v1.get("routers") { try await routers.list($0, $1) }
        v1.post("routers") { try await routers.create($0, $1) }
        v1.get("routers/{id}") { try await routers.read($0, $1) }
        v1.put("routers/{id}") { try await routers.replace($0, $1) }
        v1.delete("routers/{id}") { try await routers.delete($0, $1) }

        v1.get("routers/{id}/routes") { request, context in
            let router = try await routers.access(context).get(context.pathID(HiveModel.Router.self))
            return try await routes.list(request, context) { route in route.routerId == router.object.id }
        }
        v1.post("routers/{id}/routes") { request, context in
            let router = try await routers.access(context).get(context.pathID(HiveModel.Router.self))
            let parent = ParentField<Route>(name: "routerId", id: router.object.id.uuid, value: { $0.routerId.uuid })
            return try await routes.create(request, context, parent: parent)
        }
        v1.get("routes/{id}") { try await routes.read($0, $1) }
        v1.put("routes/{id}") { try await routes.replace($0, $1) }
        v1.delete("routes/{id}") { try await routes.delete($0, $1) }
    }
}
