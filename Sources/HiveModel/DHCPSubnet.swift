import HivePacket

/// A fixed address handed to one MAC.
public struct DHCPHostEntry: Codable, Hashable, Sendable {
    public var mac: EthernetAddress
    public var address: IPv4.Address
    /// Offered as the client's hostname; a single DNS label.
    public var hostname: String?

    public init(mac: EthernetAddress, address: IPv4.Address, hostname: String? = nil) {
        self.mac = mac
        self.address = address
        self.hostname = hostname
    }
}

/// A route handed to DHCP clients (option 121, RFC 3442).
public struct DHCPHostRoute: Codable, Hashable, Sendable {
    public var destination: IPv4.Prefix
    public var nextHop: IPv4.Address

    public init(destination: IPv4.Prefix, nextHop: IPv4.Address) {
        self.destination = destination
        self.nextHop = nextHop
    }
}

/// DHCP service on a bridge for one subnet: the agent answers DHCP requests
/// from the bridge's ports, leasing from the range or from the host entries.
public struct DHCPSubnet: TopologyObject {
    public static let kind = ObjectKind.dhcpSubnet

    public var id: DHCPSubnetID
    public var tenantId: String?
    public var bridgeId: BridgeID
    /// In network form; unique per bridge.
    public var subnet: IPv4.Prefix
    /// First and last address of the dynamic pool, inclusive.
    public var rangeStart: IPv4.Address
    public var rangeEnd: IPv4.Address
    /// The default router offered to clients; outside the pool.
    public var gateway: IPv4.Address?
    public var dnsServers: [IPv4.Address]
    public var hostEntries: [DHCPHostEntry]
    /// Interface MTU offered to clients (option 26); 68...9000. Unset, the
    /// agent offers the tunnel path's MTU (the underlay's less the tunnel overhead).
    public var mtu: UInt16?
    /// Extra routes offered with the default route (option 121).
    public var hostRoutes: [DHCPHostRoute]
    /// Offered as option 15; dot-separated DNS labels.
    public var domainName: String?
    /// At least 60.
    public var leaseSeconds: UInt32
    /// False stops answering without deleting the configuration.
    public var enabled: Bool

    public static let defaultLeaseSeconds: UInt32 = 86_400
    public static let mtuRange: ClosedRange<UInt16> = 68...9000
    public static let minimumLeaseSeconds: UInt32 = 60

    public init(
        id: DHCPSubnetID = DHCPSubnetID(), tenantId: String? = nil, bridgeId: BridgeID, subnet: IPv4.Prefix,
        rangeStart: IPv4.Address, rangeEnd: IPv4.Address, gateway: IPv4.Address? = nil,
        dnsServers: [IPv4.Address] = [], hostEntries: [DHCPHostEntry] = [], mtu: UInt16? = nil,
        leaseSeconds: UInt32 = DHCPSubnet.defaultLeaseSeconds, enabled: Bool = true,
        hostRoutes: [DHCPHostRoute] = [], domainName: String? = nil
    ) {
        self.id = id
        self.tenantId = tenantId
        self.bridgeId = bridgeId
        self.subnet = subnet
        self.rangeStart = rangeStart
        self.rangeEnd = rangeEnd
        self.gateway = gateway
        self.dnsServers = dnsServers
        self.hostEntries = hostEntries
        self.mtu = mtu
        self.leaseSeconds = leaseSeconds
        self.enabled = enabled
        self.hostRoutes = hostRoutes
        self.domainName = domainName
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, bridgeId, subnet, rangeStart, rangeEnd, gateway, dnsServers, hostEntries
        case mtu, leaseSeconds, enabled, hostRoutes, domainName
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(DHCPSubnetID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        bridgeId = try container.decode(BridgeID.self, forKey: .bridgeId)
        subnet = try container.decode(IPv4.Prefix.self, forKey: .subnet)
        rangeStart = try container.decode(IPv4.Address.self, forKey: .rangeStart)
        rangeEnd = try container.decode(IPv4.Address.self, forKey: .rangeEnd)
        gateway = try container.decodeIfPresent(IPv4.Address.self, forKey: .gateway)
        dnsServers = try container.decode([IPv4.Address].self, forKey: .dnsServers, default: [])
        hostEntries = try container.decode([DHCPHostEntry].self, forKey: .hostEntries, default: [])
        mtu = try container.decodeFieldIfPresent(UInt16.self, forKey: .mtu)
        leaseSeconds = try container.decode(UInt32.self, forKey: .leaseSeconds, default: DHCPSubnet.defaultLeaseSeconds)
        enabled = try container.decode(Bool.self, forKey: .enabled, default: true)
        hostRoutes = try container.decode([DHCPHostRoute].self, forKey: .hostRoutes, default: [])
        domainName = try container.decodeIfPresent(String.self, forKey: .domainName)
    }

    /// The address the subnet's DHCP server answers from (its server
    /// identifier): the gateway, else the subnet's last host address, which
    /// no port may then hold.
    public var serverAddress: IPv4.Address {
        gateway ?? IPv4.Address(subnet.network.broadcast.value &- 1)
    }

    /// Why a port may not hold `address` in this subnet (nil when it may):
    /// outside it, its network or broadcast address (as `checkHostAddress`
    /// judges them), its gateway, or the DHCP server's address.
    public func portAddressProblem(_ address: IPv4.Address) -> String? {
        var problems = ValidationProblems()
        problems.checkHostAddress(address, in: subnet, field: "", subnetRole: "subnet")
        if let problem = problems.errors.first?.problem { return problem }
        if address == gateway { return "is the gateway of subnet \(subnet) (expected a free host address)" }
        if address == serverAddress {
            return "is the DHCP server's address of subnet \(subnet), which has no gateway (expected another host address)"
        }
        return nil
    }

    /// The dynamic pool as a range, when start <= end.
    public var range: ClosedRange<IPv4.Address>? {
        rangeStart <= rangeEnd ? rangeStart...rangeEnd : nil
    }

    /// Deleting the bridge deletes its DHCP subnets.
    public var references: [ObjectReference] {
        [ObjectReference(bridgeId, field: "bridgeId", onTargetDeletion: .cascade)]
    }

    public var uniqueKeys: [String] {
        [UniqueKey.dhcpSubnet(bridgeId: bridgeId, subnet: subnet)]
    }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkTenant(tenantId)
        problems.checkNetworkForm(subnet, field: "subnet")
        let subnetRole = "the subnet"

        problems.checkHostAddress(rangeStart, in: subnet, field: "rangeStart", subnetRole: subnetRole)
        problems.checkHostAddress(rangeEnd, in: subnet, field: "rangeEnd", subnetRole: subnetRole)
        if rangeStart > rangeEnd {
            problems.add("rangeEnd", rangeEnd, "is below rangeStart \(rangeStart) (expected rangeStart <= rangeEnd)")
        }

        if let gateway {
            problems.checkHostAddress(gateway, in: subnet, field: "gateway", subnetRole: subnetRole)
            if let range, range.contains(gateway) {
                problems.add("gateway", gateway, "is inside the pool \(rangeStart)-\(rangeEnd) (expected an address the pool will not lease out)")
            }
        }
        for (index, server) in dnsServers.enumerated() {
            problems.checkUnicast(server, field: "dnsServers[\(index)]", role: "DNS server address")
        }
        problems.checkNoDuplicates(dnsServers, field: "dnsServers", what: "DNS server")

        if let mtu, !Self.mtuRange.contains(mtu) {
            problems.add("mtu", mtu, "is out of range (expected \(Self.mtuRange.lowerBound) to \(Self.mtuRange.upperBound), or omit it)")
        }
        if leaseSeconds < Self.minimumLeaseSeconds {
            problems.add("leaseSeconds", leaseSeconds, "is too short (expected at least \(Self.minimumLeaseSeconds) seconds)")
        }
        validateHostEntries(&problems)
        for (index, route) in hostRoutes.enumerated() {
            problems.checkNetworkForm(route.destination, field: "hostRoutes[\(index)].destination")
            problems.checkHostAddress(route.nextHop, in: subnet, field: "hostRoutes[\(index)].nextHop", subnetRole: "the subnet")
        }
        if hostRoutes.count > 24 {
            problems.add("hostRoutes", "\(hostRoutes.count) routes", "has too many entries (expected at most 24: option 121 holds 255 bytes)")
        }
        if let domainName {
            let labels = domainName.split(separator: ".", omittingEmptySubsequences: false)
            if domainName.utf8.count > 253 {
                problems.add("domainName", domainName, "is longer than 253 bytes")
            } else if let problem = labels.lazy.compactMap({ dnsLabelProblem(String($0)) }).first {
                problems.add("domainName", domainName, problem)
            }
        }
        try problems.check()
    }

    private func validateHostEntries(_ problems: inout ValidationProblems) {
        for (index, entry) in hostEntries.enumerated() {
            let field = "hostEntries[\(index)]"
            problems.checkUnicastMAC(entry.mac, field: "\(field).mac")
            problems.checkHostAddress(entry.address, in: subnet, field: "\(field).address", subnetRole: "the subnet")
            if let gateway, entry.address == gateway {
                problems.add("\(field).address", entry.address, "is the gateway (expected an address free for a host)")
            }
            if let hostname = entry.hostname, let problem = dnsLabelProblem(hostname) {
                problems.add("\(field).hostname", hostname, problem)
            }
        }
        problems.checkNoDuplicates(hostEntries.map(\.mac), field: "hostEntries", suffix: ".mac", what: "MAC")
        problems.checkNoDuplicates(hostEntries.map(\.address), field: "hostEntries", suffix: ".address", what: "address")
    }
}
