/// An IP protocol number: the IPv4 protocol field and the IPv6 next header.
public struct IPProtocol: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    public static let hopByHopOptions = IPProtocol(0)
    public static let icmp = IPProtocol(1)
    public static let tcp = IPProtocol(6)
    public static let udp = IPProtocol(17)
    public static let routing = IPProtocol(43)
    public static let fragment = IPProtocol(44)
    public static let gre = IPProtocol(47)
    public static let encapsulatingSecurityPayload = IPProtocol(50)
    public static let authenticationHeader = IPProtocol(51)
    public static let icmpv6 = IPProtocol(58)
    public static let noNextHeader = IPProtocol(59)
    public static let destinationOptions = IPProtocol(60)
    public static let sctp = IPProtocol(132)
}

extension IPProtocol: CustomStringConvertible {
    public var description: String {
        switch rawValue {
        case 0: "hop-by-hop"
        case 1: "ICMP"
        case 6: "TCP"
        case 17: "UDP"
        case 43: "routing"
        case 44: "fragment"
        case 47: "GRE"
        case 50: "ESP"
        case 51: "AH"
        case 58: "ICMPv6"
        case 59: "no-next-header"
        case 60: "destination-options"
        case 132: "SCTP"
        default: "protocol \(rawValue)"
        }
    }
}

/// Where a packet sits in a fragmented datagram, as far as finding its
/// transport header goes.
public enum FragmentKind: UInt8, Hashable, Sendable {
    /// Not a fragment.
    case none = 0
    /// Offset 0 with more fragments to come: carries the transport header.
    case first = 1
    /// Nonzero offset: no transport header, ports are unknown.
    case later = 2
}
