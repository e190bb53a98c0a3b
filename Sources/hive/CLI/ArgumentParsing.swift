import ArgumentParser
import Foundation
import HiveModel
import HivePacket
import struct HiveModel.Port

// Parsers for option values. Each throws a `ValueError` saying what was
// expected; argument-parser prints it after the flag and the value:
// "The value '10.0.0.300' is invalid for '--gateway <address>': expected an IPv4 address like 10.0.0.1".

/// Why one option value was refused; the flag and value are added by argument-parser.
struct ValueError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum Parse {
    @Sendable static func address(_ text: String) throws -> IPv4.Address {
        guard let address = IPv4.Address(parsing: text) else {
            throw ValueError("expected an IPv4 address like 10.0.0.1")
        }
        return address
    }

    /// A network ("10.0.0.0/24"); a bare address is a /32.
    @Sendable static func prefix(_ text: String) throws -> IPv4.Prefix {
        guard let prefix = IPv4.Prefix(parsing: text) else {
            throw ValueError("expected an IPv4 network like 10.0.0.0/24 (a bare address like 10.0.0.5 means 10.0.0.5/32)")
        }
        return prefix
    }

    /// A router port's address with its subnet length, "10.0.0.1/24".
    @Sendable static func interfaceAddress(_ text: String) throws -> IPv4.Prefix {
        guard text.contains("/"), let prefix = IPv4.Prefix(parsing: text) else {
            throw ValueError("expected the port's address with its subnet length, like 10.0.0.1/24")
        }
        return prefix
    }

    @Sendable static func mac(_ text: String) throws -> EthernetAddress {
        guard let mac = EthernetAddress(parsing: text) else {
            throw ValueError("expected a MAC address like 02:00:00:00:00:01")
        }
        return mac
    }

    /// A bridge port's fixed IP: a plain address, or `auto` for a free one
    /// of the bridge's DHCP pools (`Port.automaticAddress`).
    @Sendable static func fixedIP(_ text: String) throws -> IPv4.Address {
        if text == "auto" { return Port.automaticAddress }
        if text.contains("/") {
            throw ValueError("a bridge port's address has no length: its subnet is the bridge's DHCP subnet (expected a plain address like 10.0.1.11, or auto)")
        }
        guard let address = IPv4.Address(parsing: text), address != Port.automaticAddress else {
            throw ValueError("expected an IPv4 address like 10.0.1.11, or auto for a free one of the bridge's DHCP pool")
        }
        return address
    }

    /// "ADDRESS" or "ADDRESS=MAC"; the address may be a network ("10.0.2.0/24").
    @Sendable static func allowedAddressPair(_ text: String) throws -> AllowedAddressPair {
        let parts = text.split(separator: "=", omittingEmptySubsequences: false)
        let expected = "expected ADDRESS or ADDRESS=MAC, like 10.0.1.250 or 10.0.2.0/24=02:00:00:00:00:99"
        guard parts.count == 1 || parts.count == 2 else { throw ValueError(expected) }
        guard let prefix = AllowedAddressPair.parsePrefix(String(parts[0])) else {
            throw ValueError("'\(parts[0])' is not an IPv4 address or network (\(expected))")
        }
        guard parts.count == 2 else { return AllowedAddressPair(prefix: prefix) }
        guard let mac = EthernetAddress(parsing: String(parts[1])) else {
            throw ValueError("'\(parts[1])' is not a MAC address (\(expected))")
        }
        return AllowedAddressPair(prefix: prefix, mac: mac)
    }

    @Sendable static func macLimit(_ text: String) throws -> Int {
        guard let value = Int(text), Port.macLimitRange.contains(value) else {
            throw ValueError("expected a number of MACs from \(Port.macLimitRange.lowerBound) to \(Port.macLimitRange.upperBound)")
        }
        return value
    }

    /// "DESTINATION=NEXT-HOP", like "10.9.0.0/16=10.0.1.254".
    @Sendable static func hostRoute(_ text: String) throws -> DHCPHostRoute {
        let parts = text.split(separator: "=", omittingEmptySubsequences: false)
        let expected = "expected NETWORK=NEXT-HOP, like 10.9.0.0/16=10.0.1.254"
        guard parts.count == 2 else { throw ValueError(expected) }
        guard let destination = IPv4.Prefix(parsing: String(parts[0])) else {
            throw ValueError("'\(parts[0])' is not an IPv4 network (\(expected))")
        }
        guard let nextHop = IPv4.Address(parsing: String(parts[1])) else {
            throw ValueError("'\(parts[1])' is not an IPv4 address (\(expected))")
        }
        return DHCPHostRoute(destination: destination, nextHop: nextHop)
    }

    /// A DNS domain for DHCP clients; the API checks its labels.
    @Sendable static func domainName(_ text: String) throws -> String {
        guard !text.isEmpty, !text.contains(where: \.isWhitespace) else {
            throw ValueError("expected a domain name like example.internal")
        }
        return text
    }

    /// `parse`, or `none` to remove the setting.
    static func orNone<Value>(_ parse: @escaping @Sendable (String) throws -> Value) -> @Sendable (String) throws -> Removable<Value> {
        { text in
            if text == noneKeyword { return .removed }
            do {
                return .set(try parse(text))
            } catch let error as ValueError {
                throw ValueError("\(error.description) (or none)")
            }
        }
    }

    /// "80" or "1000-2000".
    @Sendable static func portRange(_ text: String) throws -> PortRange {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        let numbers = parts.map { UInt16($0.trimmingCharacters(in: .whitespaces)) }
        switch (parts.count, numbers.first ?? nil, numbers.last ?? nil) {
        case (1, let port?, _): return PortRange(port)
        case (2, let start?, let end?) where start <= end: return PortRange(start: start, end: end)
        case (2, let start?, let end?): throw ValueError("the range starts above its end (expected START-END with START <= END, like \(end)-\(start))")
        default: throw ValueError("expected a port (0 to 65535) like 80, or a range like 1000-2000")
        }
    }

    /// "10.0.0.100-10.0.0.199".
    @Sendable static func addressRange(_ text: String) throws -> AddressRange {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = IPv4.Address(parsing: parts[0]), let end = IPv4.Address(parsing: parts[1]) else {
            throw ValueError("expected FIRST-LAST addresses like 10.0.0.100-10.0.0.199")
        }
        return AddressRange(first: start, last: end)
    }

    /// "MAC=IP" or "MAC=IP=HOSTNAME".
    @Sendable static func hostEntry(_ text: String) throws -> DHCPHostEntry {
        let parts = text.split(separator: "=", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else {
            throw ValueError("expected MAC=IP or MAC=IP=HOSTNAME, like 02:00:00:00:00:10=10.0.0.10=web1")
        }
        guard let mac = EthernetAddress(parsing: parts[0]) else {
            throw ValueError("'\(parts[0])' is not a MAC address (expected MAC=IP[=HOSTNAME], like 02:00:00:00:00:10=10.0.0.10)")
        }
        guard let address = IPv4.Address(parsing: parts[1]) else {
            throw ValueError("'\(parts[1])' is not an IPv4 address (expected MAC=IP[=HOSTNAME], like 02:00:00:00:00:10=10.0.0.10)")
        }
        return DHCPHostEntry(mac: mac, address: address, hostname: parts.count == 3 ? String(parts[2]) : nil)
    }

    static let protocolNames: [(String, UInt8)] = [
        ("icmp", IPProtocolNumber.icmp), ("tcp", IPProtocolNumber.tcp), ("udp", IPProtocolNumber.udp),
        ("sctp", IPProtocolNumber.sctp), ("icmpv6", IPProtocolNumber.icmpv6),
    ]

    /// "tcp", "udp", "icmp", "sctp" or a number 0-255.
    @Sendable static func ipProtocol(_ text: String) throws -> UInt8 {
        if let named = protocolNames.first(where: { $0.0 == text.lowercased() }) { return named.1 }
        guard let number = UInt8(text) else {
            throw ValueError("expected tcp, udp, icmp, icmpv6, sctp or a protocol number from 0 to 255")
        }
        return number
    }

    static let etherTypeNames: [(String, UInt16)] = [("ipv4", 0x0800), ("arp", 0x0806), ("ipv6", 0x86DD), ("vlan", 0x8100)]

    /// "ipv4", "arp", "ipv6", "vlan", hex like 0x0800, or decimal.
    @Sendable static func etherType(_ text: String) throws -> UInt16 {
        let lowered = text.lowercased()
        if let named = etherTypeNames.first(where: { $0.0 == lowered }) { return named.1 }
        let value = lowered.hasPrefix("0x") ? UInt16(lowered.dropFirst(2), radix: 16) : UInt16(lowered)
        guard let value else {
            throw ValueError("expected ipv4, arp, ipv6, vlan or a number like 0x0800")
        }
        return value
    }

    /// 0-255, for ICMP types and codes.
    @Sendable static func byte(_ text: String) throws -> UInt8 {
        guard let value = UInt8(text) else { throw ValueError("expected a whole number from 0 to 255") }
        return value
    }

    @Sendable static func weight(_ text: String) throws -> UInt32 {
        guard let value = UInt32(text), value >= 1 else {
            throw ValueError("expected a whole number of at least 1 (lower weights win among equal routes)")
        }
        return value
    }

    @Sendable static func mtu(_ text: String) throws -> UInt16 {
        guard let value = UInt16(text), DHCPSubnet.mtuRange.contains(value) else {
            throw ValueError("expected an MTU from \(DHCPSubnet.mtuRange.lowerBound) to \(DHCPSubnet.mtuRange.upperBound)")
        }
        return value
    }

    @Sendable static func leaseSeconds(_ text: String) throws -> UInt32 {
        guard let value = UInt32(text), value >= DHCPSubnet.minimumLeaseSeconds else {
            throw ValueError("expected a number of seconds, at least \(DHCPSubnet.minimumLeaseSeconds)")
        }
        return value
    }

    /// A NAT rule's target: "198.51.100.5", "198.51.100.5-198.51.100.6",
    /// with an optional ":8080" or ":1024-65535".
    @Sendable static func natTarget(_ text: String) throws -> NATTarget {
        guard let target = NATTarget(parsing: text) else {
            throw ValueError("expected ADDRESS[-ADDRESS][:PORT[-PORT]], like 198.51.100.5, 198.51.100.5-198.51.100.6:1024-65535 or 10.0.1.5:8080")
        }
        return target
    }

    /// A position in a chain, 0 for the first rule.
    @Sendable static func position(_ text: String) throws -> Int {
        guard let value = Int(text), value >= 0 else {
            throw ValueError("expected 0 (insert first) or a higher position; omit it to append")
        }
        return value
    }
}

/// A DHCP pool, "10.0.0.100-10.0.0.199".
struct AddressRange {
    var first: IPv4.Address
    var last: IPv4.Address
}

/// `up` or `down`, for `--admin-state`.
enum AdminState: String, ExpressibleByArgument, CaseIterable {
    case up, down
    var isUp: Bool { self == .up }
    init(_ isUp: Bool) { self = isUp ? .up : .down }
}

/// `on` or `off`, for boolean settings.
enum Switch: String, ExpressibleByArgument, CaseIterable {
    case on, off
    var isOn: Bool { self == .on }
}

extension RouteKind: ExpressibleByArgument {}
extension TunnelKind: ExpressibleByArgument {}
extension ConnectionState: ExpressibleByArgument {}
extension FragmentPolicy: ExpressibleByArgument {}
extension RuleAction.ActionType: ExpressibleByArgument {}

/// "none" in a reference option removes the reference (`--inbound-chain none`).
let noneKeyword = "none"

/// A value of an option that also takes `none` (`--gateway none`, `--mac-limit none`).
enum Removable<Value> {
    case set(Value)
    case removed

    /// What to store: the value, or nil for `none`.
    var value: Value? {
        switch self {
        case .set(let value): return value
        case .removed: return nil
        }
    }
}
