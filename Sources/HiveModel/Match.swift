/// One rule condition: matches packets whose field equals (or lies in)
/// `value`, or, with `invert`, packets whose field does not.
/// JSON: `{"value": ..., "invert": true}`, `invert` omitted when false.
public struct Match<Value: Codable & Hashable & Sendable>: Codable, Hashable, Sendable {
    public var value: Value
    public var invert: Bool

    public init(_ value: Value, invert: Bool = false) {
        self.value = value
        self.invert = invert
    }

    /// Matches packets whose field is anything but `value`.
    public static func not(_ value: Value) -> Match { Match(value, invert: true) }

    enum CodingKeys: String, CodingKey {
        case value, invert
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        value = try container.decodeField(Value.self, forKey: .value)
        invert = try container.decode(Bool.self, forKey: .invert, default: false)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(value, forKey: .value)
        if invert { try container.encode(invert, forKey: .invert) }
    }
}

extension Match: CustomStringConvertible {
    public var description: String { invert ? "!\(value)" : "\(value)" }
}
