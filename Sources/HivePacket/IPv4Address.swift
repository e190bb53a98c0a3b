/// Namespace for IPv4 value types.
public enum IPv4 {}

extension IPv4 {
    /// An IPv4 address held in host byte order.
    public struct Address: Hashable, Comparable, Sendable {
        public var value: UInt32

        @inlinable
        public init(_ value: UInt32) { self.value = value }

        @inlinable
        public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
            value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
        }

        /// Parses dotted-quad notation ("192.0.2.1"); nil for anything else,
        /// including leading zeros, which some parsers read as octal.
        public init?(parsing text: some StringProtocol) {
            var octets: UInt32 = 0
            var count = 0
            var current: UInt32 = 0
            var digits = 0
            for byte in text.utf8 {
                if byte == UInt8(ascii: ".") {
                    guard digits > 0, count < 3 else { return nil }
                    octets = octets << 8 | current
                    count += 1
                    current = 0
                    digits = 0
                } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                    if digits > 0 && current == 0 { return nil }  // leading zero
                    current = current * 10 + UInt32(byte - UInt8(ascii: "0"))
                    digits += 1
                    guard current <= 255, digits <= 3 else { return nil }
                } else {
                    return nil
                }
            }
            guard digits > 0, count == 3 else { return nil }
            value = octets << 8 | current
        }

        @inlinable
        public static func < (lhs: Address, rhs: Address) -> Bool { lhs.value < rhs.value }

        public static let any = Address(0)
        public static let broadcast = Address(UInt32.max)

        @inlinable public var isMulticast: Bool { value >> 28 == 0xE }
        @inlinable public var isLoopback: Bool { value >> 24 == 127 }
        @inlinable public var isUnspecified: Bool { value == 0 }
    }
}

extension IPv4.Address: CustomStringConvertible {
    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }
}

extension IPv4.Address: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let address = IPv4.Address(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not an IPv4 address (expected dotted quad like 192.0.2.1)")
        }
        self = address
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
