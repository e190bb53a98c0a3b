import Foundation
import HiveModel

/// One object as the API returned it: the model value, the store revision it
/// was read at (send it back as `ifRevision` to update only that version),
/// and the JSON itself.
public struct Revisioned<Object: TopologyObject>: Sendable {
    public var object: Object
    /// The store revision of the object's last change (also its ETag).
    public var revision: Int64
    /// Hosts only: whether the host's agent holds its liveness lease.
    public var alive: Bool?
    /// The object's JSON exactly as the API sent it, including `revision`.
    public var json: Data

    public init(object: Object, revision: Int64, alive: Bool? = nil, json: Data) {
        self.object = object
        self.revision = revision
        self.alive = alive
        self.json = json
    }

    /// The fields the API adds to the model JSON.
    private struct Envelope: Decodable {
        var revision: Int64
        var alive: Bool?
    }

    init(json: Data) throws(HiveClientError) {
        do {
            object = try JSONDecoder().decode(Object.self, from: json)
            let envelope = try JSONDecoder().decode(Envelope.self, from: json)
            revision = envelope.revision
            alive = envelope.alive
            self.json = json
        } catch {
            throw .unexpectedResponse(
                status: 200, detail: "the API returned a \(Object.kind) this client cannot read: \(describeDecodingError(error))")
        }
    }
}
