// The topology model: the virtual devices tenants define (bridges, routers,
// ports, routes, chains and rules, groups) and the admin objects that place
// them on physical hosts (hosts, tunnel zones, bindings).
//
// Every object is a plain value stored as one JSON document. The model knows
// nothing of the store; it tells the repository three things about each
// object, and the repository enforces them in the same transaction as the
// write:
//
// - `validate()`: the object is consistent on its own (an address lies in its
//   subnet, a route that forwards names a port). Collects every problem.
// - `references`: the other objects it names, each of which must exist, and
//   what deleting that target does to this object (refuse or cascade).
// - `uniqueKeys`: scoped names no two objects of the kind may share.
//
// Cross-object rules (a route's egress port belongs to its router, tunnel key
// allocation) are the repository's, since they need other objects.

import Foundation

/// The protocol the store's repository is written against.
public protocol TopologyObject: Codable, Sendable, Hashable, Identifiable where ID == ObjectID<Self> {
    static var kind: ObjectKind { get }
    var id: ObjectID<Self> { get set }
    /// Owning tenant; nil for admin-only objects (hosts, tunnel zones, bindings).
    var tenantId: String? { get set }
    /// Every other object this one names. The repository checks each exists, in the same transaction.
    var references: [ObjectReference] { get }
    /// Scoped names that must be unique among objects of this kind (e.g.
    /// "tenant-a/web" for a bridge name per tenant, "host/<hostId>/interface/veth0"
    /// for a binding). Built with `UniqueKey` so lookups can build the same key.
    var uniqueKeys: [String] { get }
    /// Checks this object alone; throws `ModelError.invalid` listing every problem.
    func validate() throws(ModelError)
}

/// One object naming another, so the repository can check the target exists
/// and decide what deleting the target does.
public struct ObjectReference: Hashable, Sendable {
    /// What deleting the *target* does to the referrer.
    public enum Deletion: Sendable {
        /// The target cannot be deleted while this referrer exists.
        case refuse
        /// Deleting the target deletes the referrer too.
        case cascade
    }

    public var kind: ObjectKind
    public var id: UUID
    /// Path of the naming field in the referrer, e.g. "inboundChainId",
    /// "conditions.inPortGroup", "portGroupIds[1]"; used in error messages.
    public var field: String
    public var onTargetDeletion: Deletion

    public init(kind: ObjectKind, id: UUID, field: String, onTargetDeletion: Deletion) {
        self.kind = kind
        self.id = id
        self.field = field
        self.onTargetDeletion = onTargetDeletion
    }

    /// A reference whose kind follows from the typed id.
    public init<Target: TopologyObject>(_ target: ObjectID<Target>, field: String, onTargetDeletion: Deletion) {
        self.init(kind: Target.kind, id: target.uuid, field: field, onTargetDeletion: onTargetDeletion)
    }
}

extension TopologyObject {
    /// The stored form: JSON with sorted keys, so equal objects give equal bytes.
    public func jsonBytes() throws -> [UInt8] {
        try ModelJSON.encode(self)
    }

    /// Decodes the stored form. On failure, `describeDecodingError` turns the
    /// thrown error into a message naming the field.
    public static func decode(jsonBytes: [UInt8]) throws -> Self {
        try ModelJSON.decode(Self.self, from: jsonBytes)
    }

    /// The problems `validate()` would throw, or an empty list.
    public var validationErrors: [FieldError] {
        do {
            try validate()
            return []
        } catch {
            return error.fieldErrors
        }
    }
}

/// The JSON settings every model document uses.
public enum ModelJSON {
    /// Sorted keys for byte-stable documents; slashes unescaped so CIDRs read as typed.
    public static func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    public static func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
