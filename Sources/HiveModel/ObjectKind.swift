/// The kinds of topology object. Raw values appear in store key paths and
/// in `ObjectReference`, so they are a storage contract: never rename one.
public enum ObjectKind: String, Codable, CaseIterable, Sendable {
    case bridge
    case router
    case port
    case route
    case chain
    case rule
    case portGroup = "port-group"
    case ipAddressGroup = "ip-address-group"
    case host
    case tunnelZone = "tunnel-zone"
    case binding
    case dhcpSubnet = "dhcp-subnet"
    case securityGroup = "security-group"
    case securityGroupRule = "security-group-rule"
    case floatingIP = "floating-ip"
}

extension ObjectKind: CustomStringConvertible {
    public var description: String { rawValue }
}
