import HiveModel
import HiveStore
import Hummingbird

extension FloatingIP: APIResource {
    static var collection: String { "floating-ips" }
    /// A PUT may give only `portId` (and `fixedAddress`): moving or releasing
    /// the address leaves its router and the address itself as they are.
    func fieldsKeptWhenOmitted() -> [String: JSONFragment] {
        ["routerId": JSONFragment(routerId), "address": JSONFragment(address)]
    }
}

extension HiveAPIServer {
    /// /v1/floating-ips (filters `?routerId=` and `?portId=`) and
    /// /v1/floating-ips/{id}. A PUT moves the address to another port, or
    /// releases it with `portId` null or absent.
    func addFloatingIPRoutes(to v1: RouterGroup<APIRequestContext>) {
        let floatingIPs = ResourceHandlers<FloatingIP>(repository: repository)
        v1.get("floating-ips") { request, context in
            let query = try request.query(allowing: ["routerId", "portId"])
            let router = try query.id("routerId")
            let port = try query.id("portId")
            return try await floatingIPs.list(request, context, query: ["routerId", "portId"]) { floatingIP in
                (router.map { $0 == floatingIP.routerId.uuid } ?? true) && (port.map { $0 == floatingIP.portId?.uuid } ?? true)
            }
        }
        v1.post("floating-ips") { try await floatingIPs.create($0, $1) }
        v1.get("floating-ips/{id}") { try await floatingIPs.read($0, $1) }
        v1.put("floating-ips/{id}") { try await floatingIPs.replace($0, $1) }
        v1.delete("floating-ips/{id}") { try await floatingIPs.delete($0, $1) }
    }
}
