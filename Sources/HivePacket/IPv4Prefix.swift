extension IPv4 {
    /// An IPv4 prefix in CIDR form ("10.0.0.0/24"). The address keeps the
    /// bits the user wrote, so a router port can say "10.0.0.1/24"; use
    /// `network` for the masked form.
    public struct Prefix: Hashable, Sendable {
        public var address: Address
        public var length: UInt8

        /// - Precondition: `length <= 32`.
        @inlinable
        public init(address: Address, length: UInt8) {
            precondition(length <= 32, "IPv4 prefix length \(length) is over 32")
            self.address = address
            self.length = length
        }

        /// Parses "a.b.c.d/n"; a bare address parses as a /32.
        public init?(parsing text: some StringProtocol) {
            if let slash = text.firstIndex(of: "/") {
                guard let address = Address(parsing: text[..<slash]) else { return nil }
                let lengthText = text[text.index(after: slash)...]
                guard !lengthText.isEmpty, lengthText.utf8.count <= 2,
                      lengthText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                      let length = UInt8(lengthText), length <= 32
                else { return nil }
                self.init(address: address, length: length)
            } else {
                guard let address = Address(parsing: text) else { return nil }
                self.init(address: address, length: 32)
            }
        }

        @inlinable
        public var mask: UInt32 { length == 0 ? 0 : UInt32.max << (32 - UInt32(length)) }

        /// The prefix with host bits cleared.
        @inlinable
        public var network: Prefix { Prefix(address: Address(address.value & mask), length: length) }

        /// True when the host bits are zero, as a route destination should be.
        @inlinable
        public var isNetwork: Bool { address.value & ~mask == 0 }

        @inlinable
        public var broadcast: Address { Address(address.value | ~mask) }

        /// - Complexity: O(1)
        @inlinable
        public func contains(_ other: Address) -> Bool { other.value & mask == address.value & mask }

        /// True when every address of `other` is in this prefix.
        @inlinable
        public func contains(_ other: Prefix) -> Bool { other.length >= length && contains(other.address) }
    }
}

extension IPv4.Prefix: CustomStringConvertible {
    public var description: String { "\(address)/\(length)" }
}

extension IPv4.Prefix: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let prefix = IPv4.Prefix(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not an IPv4 CIDR (expected like 10.0.0.0/24)")
        }
        self = prefix
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
