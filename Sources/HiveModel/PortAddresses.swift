import HivePacket

/// An extra address a port may use besides its fixed IPs (Neutron's allowed
/// address pair): a virtual IP moved between VMs by VRRP or keepalived, or a
/// whole network routed behind the VM. With `mac`, frames from that MAC may
/// carry the address too, and the bridge answers ARP for a single address
/// with it.
public struct AllowedAddressPair: Codable, Hashable, Sendable {
    /// A single address (/32) or a network.
    public var prefix: IPv4.Prefix
    public var mac: EthernetAddress?

    public init(prefix: IPv4.Prefix, mac: EthernetAddress? = nil) {
        self.prefix = prefix
        self.mac = mac
    }

    public init(address: IPv4.Address, mac: EthernetAddress? = nil) {
        self.init(prefix: IPv4.Prefix(address: address, length: 32), mac: mac)
    }

    enum CodingKeys: String, CodingKey {
        case address, mac
    }

    /// `address` is "10.0.1.250" (one address) or "10.0.2.0/24".
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let text = try container.decode(String.self, forKey: .address)
        guard let prefix = Self.parsePrefix(text) else {
            throw DecodingError.dataCorruptedError(
                forKey: .address, in: container,
                debugDescription: "'\(text)' is not an IPv4 address or CIDR (expected like 10.0.1.250 or 10.0.2.0/24)")
        }
        self.prefix = prefix
        mac = try container.decodeIfPresent(EthernetAddress.self, forKey: .mac)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(prefix.length == 32 ? prefix.address.description : prefix.description, forKey: .address)
        try container.encodeIfPresent(mac, forKey: .mac)
    }

    /// "a.b.c.d" as a /32, or "a.b.c.d/n".
    public static func parsePrefix(_ text: String) -> IPv4.Prefix? {
        if text.contains("/") { return IPv4.Prefix(parsing: text) }
        return IPv4.Address(parsing: text).map { IPv4.Prefix(address: $0, length: 32) }
    }
}

extension Port {
    /// In `fixedIPs`, the placeholder for "allocate a free address from a
    /// subnet of the bridge" (written "auto" in JSON). The repository
    /// replaces it inside the transaction that stores the port; a stored
    /// port never holds it.
    public static let automaticAddress = IPv4.Address.any

    /// Learned MACs a port without port security may have at once, unless it sets `macLimit`.
    public static let defaultMACLimit = 64
    public static let macLimitRange: ClosedRange<Int> = 1...65_536

    /// The learned-MAC cap in force.
    public var effectiveMACLimit: Int { macLimit ?? Self.defaultMACLimit }

    /// Every address the port's VM may send from, with the MAC it must use:
    /// the fixed IPs (port MAC) and the allowed pairs (their MAC, else the port's).
    public func allowedSources(portMAC: EthernetAddress) -> [(prefix: IPv4.Prefix, mac: EthernetAddress)] {
        fixedIPs.map { (IPv4.Prefix(address: $0, length: 32), portMAC) }
            + allowedAddressPairs.map { ($0.prefix, $0.mac ?? portMAC) }
    }

    func validatePortAddresses(_ problems: inout ValidationProblems) {
        if deviceKind == .router {
            if !fixedIPs.isEmpty {
                problems.add("fixedIPs", fixedIPs.map(\.description).joined(separator: ","),
                             "must be empty on a router port (a router port's address goes in 'address')")
            }
            if !allowedAddressPairs.isEmpty {
                problems.add("allowedAddressPairs", "\(allowedAddressPairs.count) pairs", "must be empty on a router port")
            }
        }
        for (index, address) in fixedIPs.enumerated() where address != Self.automaticAddress {
            problems.checkUnicast(address, field: "fixedIPs[\(index)]", role: "VM address", allowLoopback: false)
        }
        problems.checkNoDuplicates(fixedIPs.filter { $0 != Self.automaticAddress }, field: "fixedIPs", what: "address")
        if fixedIPs.count > 16 {
            problems.add("fixedIPs", "\(fixedIPs.count) addresses", "has too many entries (expected at most 16)")
        }
        if allowedAddressPairs.count > 32 {
            problems.add("allowedAddressPairs", "\(allowedAddressPairs.count) pairs", "has too many entries (expected at most 32)")
        }
        for (index, pair) in allowedAddressPairs.enumerated() {
            if !pair.prefix.isNetwork {
                problems.add("allowedAddressPairs[\(index)].address", pair.prefix,
                             "has host bits set (expected the network form \(pair.prefix.network), or a single address)")
            }
            if pair.prefix.length == 0 {
                problems.add("allowedAddressPairs[\(index)].address", pair.prefix,
                             "allows every address (expected a single address or a narrower network; turn port security off instead)")
            }
            if let mac = pair.mac { problems.checkUnicastMAC(mac, field: "allowedAddressPairs[\(index)].mac") }
        }
        problems.checkNoDuplicates(allowedAddressPairs.map { "\($0.prefix) \($0.mac?.description ?? "")" },
                                   field: "allowedAddressPairs", what: "pair")
        if let macLimit, !Self.macLimitRange.contains(macLimit) {
            problems.add("macLimit", macLimit,
                         "is out of range (expected \(Self.macLimitRange.lowerBound) to \(Self.macLimitRange.upperBound), or omit it for \(Self.defaultMACLimit))")
        }
    }
}

/// Decodes `fixedIPs`: addresses, or "auto" for one to be allocated.
struct FixedIPList: Codable {
    var addresses: [IPv4.Address]

    init(_ addresses: [IPv4.Address]) { self.addresses = addresses }

    init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        var addresses: [IPv4.Address] = []
        while !container.isAtEnd {
            let text = try container.decode(String.self)
            if text == "auto" {
                addresses.append(Port.automaticAddress)
            } else if let address = IPv4.Address(parsing: text), address != Port.automaticAddress {
                addresses.append(address)
            } else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "'\(text)' is not an IPv4 address (expected like 10.0.1.11, or \"auto\")")
            }
        }
        self.addresses = addresses
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        for address in addresses {
            try container.encode(address == Port.automaticAddress ? "auto" : address.description)
        }
    }
}
