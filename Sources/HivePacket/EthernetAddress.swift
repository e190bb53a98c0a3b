/// A 48-bit IEEE 802 MAC address, held in the low bits of a UInt64.
public struct EthernetAddress: Hashable, Sendable {
    public var value: UInt64

    @inlinable
    public init(_ value: UInt64) { self.value = value & 0xFFFF_FFFF_FFFF }

    @inlinable
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ e: UInt8, _ f: UInt8) {
        value = UInt64(a) << 40 | UInt64(b) << 32 | UInt64(c) << 24 | UInt64(d) << 16 | UInt64(e) << 8 | UInt64(f)
    }

    /// Parses six colon- or dash-separated pairs of hex digits ("02:00:5e:10:00:01").
    public init?(parsing text: some StringProtocol) {
        var result: UInt64 = 0
        var groups = 0
        var digits = 0
        var separator: UInt8 = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ":") || byte == UInt8(ascii: "-") {
                if separator == 0 { separator = byte }
                guard byte == separator, digits == 2, groups < 5 else { return nil }
                groups += 1
                digits = 0
                continue
            }
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            guard digits < 2 else { return nil }
            result = result << 4 | UInt64(nibble)
            digits += 1
        }
        guard groups == 5, digits == 2 else { return nil }
        value = result
    }

    public static let broadcast = EthernetAddress(0xFFFF_FFFF_FFFF)
    public static let zero = EthernetAddress(0)

    /// The I/G bit: group (multicast or broadcast) addresses.
    @inlinable public var isMulticast: Bool { value & 0x0100_0000_0000 != 0 }
    @inlinable public var isBroadcast: Bool { value == 0xFFFF_FFFF_FFFF }
    /// The U/L bit: locally administered, as generated MACs should be.
    @inlinable public var isLocallyAdministered: Bool { value & 0x0200_0000_0000 != 0 }
}

extension EthernetAddress: CustomStringConvertible {
    public var description: String {
        let hex: [Character] = Array("0123456789abcdef")
        var text = ""
        text.reserveCapacity(17)
        for index in 0..<6 {
            let byte = Int(value >> UInt64(40 - 8 * index) & 0xFF)
            if index > 0 { text.append(":") }
            text.append(hex[byte >> 4])
            text.append(hex[byte & 0xF])
        }
        return text
    }
}

extension EthernetAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let address = EthernetAddress(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a MAC address (expected like 02:00:00:00:00:01)")
        }
        self = address
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
