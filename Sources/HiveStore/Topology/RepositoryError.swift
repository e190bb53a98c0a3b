import HiveModel

/// Why the repository refused a change. Each case says what was wrong, with
/// the offending value, so the API can pass it to the user as it is.
public enum RepositoryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The object failed its own validation.
    case invalid([FieldError])
    case notFound(ObjectKind, String)
    /// A field names an object that does not exist (or is of the wrong kind).
    case missingReference(field: String, kind: ObjectKind, id: String)
    /// Other objects still name this one and deleting it would leave them dangling.
    case inUse(ObjectKind, String, referrers: [Referrer])
    /// Another object already holds a name (or binding, or address) that must be unique.
    case duplicate(ObjectKind, key: String, existing: String)
    /// The caller's revision is not the stored one: someone changed the object since it was read.
    case staleRevision(ObjectKind, String, expected: Revision, actual: Revision)
    /// The change is well-formed but not allowed in the current topology.
    case refused(field: String, value: String, reason: String)
    /// Concurrent changes kept invalidating this one; try again.
    case contention(String)
    /// A stored document could not be decoded.
    case corrupt(key: String, detail: String)
    case tunnelKeysExhausted

    public struct Referrer: Hashable, Sendable, CustomStringConvertible {
        public var kind: ObjectKind
        public var id: String
        public var field: String
        public var description: String { "\(kind.rawValue) \(id) (field \(field))" }
    }

    public var description: String {
        switch self {
        case .invalid(let errors):
            return "invalid: " + errors.map(\.description).joined(separator: "; ")
        case .notFound(let kind, let id):
            return "\(kind.rawValue) \(id) not found"
        case .missingReference(let field, let kind, let id):
            return "\(field): \(kind.rawValue) \(id) does not exist"
        case .inUse(let kind, let id, let referrers):
            let shown = referrers.prefix(5).map(\.description).joined(separator: ", ")
            let more = referrers.count > 5 ? " and \(referrers.count - 5) more" : ""
            return "\(kind.rawValue) \(id) is still referenced by \(shown)\(more); remove those references first"
        case .duplicate(let kind, let key, let existing):
            if let address = UniqueKey.portAddress(inKey: key) {
                return "fixedIPs: address \(address) is already used by port \(existing) on this bridge"
                    + " (expected an address no other port of the bridge has, or \"auto\" for a free one)"
            }
            if key.hasPrefix("mac/"), let mac = key.split(separator: "/").last {
                return "mac: \(mac) is already the MAC of port \(existing) on this bridge"
                    + " (expected a MAC no other port of the bridge has; omit it for a generated one)"
            }
            if kind == .floatingIP, key.hasPrefix("floating-ip/") {
                return "address: \(key.dropFirst("floating-ip/".count)) is already floating IP \(existing)"
                    + " (expected an address no other floating IP has, of any tenant; move that one with a PUT of its portId instead)"
            }
            if kind == .securityGroupRule, key.hasPrefix("rule/") {
                return "security-group-rule: security group \(key.split(separator: "/").dropFirst().first ?? "?") already has rule \(existing)"
                    + " for the same traffic (direction, etherType, ipProtocol, ports, icmpType, icmpCode and remote);"
                    + " expected a rule that allows something the group does not allow yet"
            }
            return "\(kind.rawValue) '\(key)' already exists (id \(existing))"
        case .staleRevision(let kind, let id, let expected, let actual):
            return "\(kind.rawValue) \(id) was changed by someone else: you have revision \(expected), the store has \(actual); re-read and retry"
        case .refused(let field, let value, let reason):
            return "\(field): '\(value)' \(reason)"
        case .contention(let detail):
            return "too many concurrent changes, try again: \(detail)"
        case .corrupt(let key, let detail):
            return "stored object at \(key) is unreadable: \(detail)"
        case .tunnelKeysExhausted:
            return "no free tunnel key is left (all 16,776,959 are allocated)"
        }
    }
}

extension UniqueKey {
    /// The address of a key built by `portAddress(deviceId:address:)`
    /// ("address/<bridge>/10.0.1.11"), or nil for any other key.
    public static func portAddress(inKey key: String) -> String? {
        let parts = key.split(separator: "/")
        guard parts.count == 3, parts[0] == "address" else { return nil }
        return String(parts[2])
    }
}
