import ArgumentParser
import Foundation
import HiveModel
import HivePacket

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
        ("sctp", IPProtocolNumber.sctp), ("icmpv6", 58),
    ]

    /// "tcp", "udp", "icmp", "sctp" or a number 0-255.
    @Sendable static func ipProtocol(_ text: String) throws -> UInt8 {
        if let named = protocolNames.first(where: { $0.0 == text.lowercased() }) { return named.1 }
        guard let number = UInt8(text) else {
            throw ValueError("expected tcp, udp, icmp, sctp or a protocol number from 0 to 255")
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
