import Foundation

/// An object's identity, typed by the kind of object it names so a `PortID`
/// cannot be passed where a `RouterID` is wanted. Stored and printed as a
/// lowercase UUID string.
public struct ObjectID<Object>: Hashable, Sendable {
    public var uuid: UUID

    /// A fresh random (version 4) id.
    public init() { uuid = UUID() }

    public init(_ uuid: UUID) { self.uuid = uuid }

    /// Parses a UUID string in either case ("3f2504e0-4f89-11d3-9a0c-0305e82c3301").
    public init?(parsing text: String) {
        guard let uuid = UUID(uuidString: text) else { return nil }
        self.uuid = uuid
    }
}

extension ObjectID: Comparable {
    /// Byte order, which matches the order of the lowercase strings, so sorted
    /// ids list the same way in memory and in the store.
    public static func < (lhs: ObjectID, rhs: ObjectID) -> Bool {
        withUnsafeBytes(of: lhs.uuid.uuid) { left in
            withUnsafeBytes(of: rhs.uuid.uuid) { right in
                left.lexicographicallyPrecedes(right)
            }
        }
    }
}

extension ObjectID: CustomStringConvertible {
    public var description: String { uuid.uuidString.lowercased() }
}

extension ObjectID: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = ObjectID(parsing: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: uuidProblem(text))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// The message for a string that should have been a UUID; shared with untyped UUID fields.
func uuidProblem(_ text: String) -> String {
    "'\(text)' is not an object id (expected a UUID like 3f2504e0-4f89-11d3-9a0c-0305e82c3301)"
}

public typealias BridgeID = ObjectID<Bridge>
public typealias RouterID = ObjectID<Router>
public typealias PortID = ObjectID<Port>
public typealias RouteID = ObjectID<Route>
public typealias ChainID = ObjectID<Chain>
public typealias RuleID = ObjectID<Rule>
public typealias PortGroupID = ObjectID<PortGroup>
public typealias IPAddressGroupID = ObjectID<IPAddressGroup>
public typealias HostID = ObjectID<Host>
public typealias TunnelZoneID = ObjectID<TunnelZone>
public typealias BindingID = ObjectID<Binding>
public typealias DHCPSubnetID = ObjectID<DHCPSubnet>
public typealias SecurityGroupID = ObjectID<SecurityGroup>
public typealias SecurityGroupRuleID = ObjectID<SecurityGroupRule>
public typealias FloatingIPID = ObjectID<FloatingIP>
