import Foundation
import HiveModel
import HiveStore
import Hummingbird

/// JSON responses: one stored object (its model JSON plus `revision`, and an
/// ETag), a list of them, or any other encodable body.
enum JSONResponse {
    static let contentType = "application/json"

    /// Sorted keys and unescaped slashes, as the model's own documents.
    static func encode(_ value: some Encodable) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return ByteBuffer(data: try encoder.encode(value))
        } catch {
            // Model values always encode; reaching here is a programming error.
            preconditionFailure("encoding a response failed: \(error)")
        }
    }

    static func make(status: HTTPResponse.Status, body: some Encodable, headers: HTTPFields = [:]) -> Response {
        let buffer = encode(body)
        var fields = headers
        fields[.contentType] = contentType
        fields[.contentLength] = String(buffer.readableBytes)
        return Response(status: status, headers: fields, body: .init(byteBuffer: buffer))
    }

    /// One object: 200 (or `status`) with its JSON, `revision`, and `ETag: "<revision>"`.
    static func object<T: TopologyObject>(_ stored: Stored<T>, status: HTTPResponse.Status = .ok, alive: Bool? = nil) -> Response {
        make(status: status, body: ObjectBody(stored: stored, alive: alive), headers: [.eTag: entityTag(stored.revision)])
    }

    /// `{"items": [...]}`, each item as `object` writes it.
    static func list<T: TopologyObject>(_ items: [Stored<T>], alive: (Stored<T>) -> Bool? = { _ in nil }) -> Response {
        make(status: .ok, body: ListBody(items: items.map { ObjectBody(stored: $0, alive: alive($0)) }))
    }

    static func noContent() -> Response {
        Response(status: .noContent)
    }

    static func entityTag(_ revision: Revision) -> String { "\"\(revision)\"" }
}

/// The model JSON of an object with the API's read-only additions.
struct ObjectBody<T: TopologyObject>: Encodable {
    var stored: Stored<T>
    var alive: Bool?

    enum AddedKeys: String, CodingKey {
        case revision, alive
    }

    func encode(to encoder: any Encoder) throws {
        try stored.object.encode(to: encoder)
        var container = encoder.container(keyedBy: AddedKeys.self)
        try container.encode(stored.revision, forKey: .revision)
        try container.encodeIfPresent(alive, forKey: .alive)
    }
}

struct ListBody<T: TopologyObject>: Encodable {
    var items: [ObjectBody<T>]
}
