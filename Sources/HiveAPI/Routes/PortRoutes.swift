import HiveModel
import HiveStore
import Hummingbird

import struct HiveModel.Port

extension Port: APIResource {
    static var collection: String { "ports" }

    /// Links are made with /link. Every port gets a generated MAC when none
    /// is given: a router port answers ARP with it, and a bridge port's VM
    /// is given it (port security holds the VM to it).
    mutating func prepareForCreate() {
        tunnelKey = 0
        peerId = nil
        if mac == nil { mac = Port.generatedMAC() }
    }

    mutating func keepManagedFields(of stored: Port) {
        tunnelKey = stored.tunnelKey
        peerId = stored.peerId
    }

    func fieldsKeptWhenOmitted() -> [String: JSONFragment] {
        var fields = ["deviceId": JSONFragment(deviceId.uuidString.lowercased()), "deviceKind": JSONFragment(deviceKind)]
        if let mac { fields["mac"] = JSONFragment(mac) }
        return fields
    }
}

/// The body of POST /v1/ports/{id}/link.
struct LinkRequest: Decodable {
    var peerId: PortID
}

extension HiveAPIServer {
    /// /v1/ports (filter `?deviceId=`), /v1/ports/{id}, and linking: /v1/ports/{id}/link.
    func addPortRoutes(to v1: RouterGroup<APIRequestContext>) {
        let repository = repository
        let ports = ResourceHandlers<Port>(repository: repository)
        v1.get("ports") { request, context in
            let device = try request.query(allowing: ["deviceId"]).id("deviceId")
            return try await ports.list(request, context, query: ["deviceId"]) { port in
                device.map { $0 == port.deviceId } ?? true
            }
        }
        v1.post("ports") { try await ports.create($0, $1) }
        v1.get("ports/{id}") { try await ports.read($0, $1) }
        v1.put("ports/{id}") { try await ports.replace($0, $1) }
        v1.delete("ports/{id}") { try await ports.delete($0, $1) }

        // Linking makes both ports interior; 200 with the port in the path.
        v1.post("ports/{id}/link") { request, context in
            let access = try ports.access(context)
            _ = try request.query(allowing: [])
            let id = try context.pathID(Port.self)
            _ = try await access.get(id)
            let link = try await JSONObjectBody.read(request, context: context).decode(LinkRequest.self)
            guard try await access.find(link.peerId) != nil else {
                throw RepositoryError.missingReference(field: "peerId", kind: .port, id: link.peerId.description)
            }
            let (port, _) = try await repository.link(id, link.peerId)
            return try await ports.respond(port)
        }
        v1.delete("ports/{id}/link") { request, context in
            let access = try ports.access(context)
            _ = try request.query(allowing: [])
            let id = try context.pathID(Port.self)
            _ = try await access.get(id)
            return try await ports.respond(repository.unlink(id))
        }
    }
}
