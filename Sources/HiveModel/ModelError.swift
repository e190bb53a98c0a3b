/// One problem with one field: what was given and what would be accepted.
public struct FieldError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Path of the field, e.g. "address", "members[2].hostId", "conditions.sourcePorts".
    public var field: String
    /// The offending value as text; empty when the problem is that the value is missing.
    public var value: String
    /// What is wrong and what would be accepted, phrased to follow the value
    /// ("is outside the port's subnet 10.0.0.0/24").
    public var problem: String

    public init(field: String, value: String, problem: String) {
        self.field = field
        self.value = value
        self.problem = problem
    }

    /// "address: '10.0.1.5' is outside the port's subnet 10.0.0.0/24", or for
    /// a missing value "address is required on a router port (...)".
    public var description: String {
        if value.isEmpty { return "\(field) \(problem)" }
        return "\(field): '\(Self.printable(value))' \(problem)"
    }

    /// Escapes control characters and shortens very long values, so a bad
    /// name cannot garble or flood a terminal.
    static func printable(_ value: String) -> String {
        var text = ""
        for scalar in value.unicodeScalars {
            if scalar.properties.generalCategory == .control {
                text += scalar.escaped(asASCII: true)
            } else {
                text.unicodeScalars.append(scalar)
            }
        }
        let limit = 80
        if text.count > limit { return text.prefix(limit) + "…" }
        return text
    }
}

/// Why a model object was rejected.
public enum ModelError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Every problem found, in field order.
    case invalid([FieldError])

    public var fieldErrors: [FieldError] {
        switch self {
        case .invalid(let errors): return errors
        }
    }

    public var description: String {
        fieldErrors.map(\.description).joined(separator: "; ")
    }
}
