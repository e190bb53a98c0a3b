import HiveModel
import HiveStore
import Hummingbird

extension TunnelZone: APIResource {
    static var collection: String { "tunnel zones" }
    static var adminOnly: Bool { true }
}

extension HiveAPIServer {
    /// /v1/tunnel-zones, /v1/tunnel-zones/{id} and their members (admin-only).
    func addTunnelZoneRoutes(to v1: RouterGroup<APIRequestContext>) {
        let zones = ResourceHandlers<TunnelZone>(repository: repository)
        v1.get("tunnel-zones") { try await zones.list($0, $1) }
        v1.post("tunnel-zones") { try await zones.create($0, $1) }
        v1.get("tunnel-zones/{id}") { try await zones.read($0, $1) }
        v1.put("tunnel-zones/{id}") { try await zones.replace($0, $1) }
        v1.delete("tunnel-zones/{id}") { try await zones.delete($0, $1) }

        // 200 with the zone; a host joins a zone once.
        v1.post("tunnel-zones/{id}/members") { request, context in
            let member = try await JSONObjectBody.read(request, context: context).decode(TunnelZoneMember.self)
            return try await changeMembers(of: zones, request, context) { zone in
                if let existing = zone.members.first(where: { $0.hostId == member.hostId }) {
                    throw APIError(
                        .conflict, .conflict,
                        "hostId: host \(member.hostId) is already a member of tunnel zone \(zone.id) with address \(existing.address) (remove it first to change its address)",
                        field: "hostId", value: member.hostId.description)
                }
                zone.members.append(member)
            }
        }
        v1.delete("tunnel-zones/{id}/members/{hostId}") { request, context in
            let hostID = try context.pathID(Host.self, "hostId")
            return try await changeMembers(of: zones, request, context) { zone in
                guard let index = zone.members.firstIndex(where: { $0.hostId == hostID }) else {
                    throw APIError(
                        .notFound, .notFound, "host \(hostID) is not a member of tunnel zone \(zone.id)",
                        field: "hostId", value: hostID.description)
                }
                zone.members.remove(at: index)
            }
        }
    }

    /// Reads the zone, applies `change` and writes it back, guarded by
    /// `If-Match` when given; without it, a concurrent change to the zone
    /// makes this read and apply again rather than overwrite it.
    private func changeMembers(
        of zones: ResourceHandlers<TunnelZone>, _ request: Request, _ context: APIRequestContext,
        _ change: (inout TunnelZone) throws -> Void
    ) async throws -> Response {
        let access = try zones.access(context)
        _ = try request.query(allowing: [])
        let id = try context.pathID(TunnelZone.self)
        let expectedRevision = try request.expectedRevision()
        var attempts = 0
        while true {
            let current = try await access.get(id)
            var zone = current.object
            try change(&zone)
            do {
                return try await zones.respond(repository.update(zone, expectedRevision: expectedRevision ?? current.revision))
            } catch RepositoryError.staleRevision where expectedRevision == nil && attempts < 16 {
                attempts += 1
            }
        }
    }
}
