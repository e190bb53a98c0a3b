import HivePacket

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator, so every
/// random test replays exactly from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array where Element == UInt8 {
    /// Lowercase hex, for readable failure messages.
    var hexString: String {
        let digits = Swift.Array<Character>("0123456789abcdef")
        return String(flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] })
    }
}

/// Parses a literal address the test knows is valid.
func ip(_ text: String) -> IPv4.Address { IPv4.Address(parsing: text)! }
func ip6(_ text: String) -> IPv6.Address { IPv6.Address(parsing: text)! }
func mac(_ text: String) -> EthernetAddress { EthernetAddress(parsing: text)! }
