import HivePacket

/// What a NAT rule translates to: a range of addresses and, optionally, of
/// ports (TCP and UDP ports, ICMP echo identifiers).
///
/// Coded as `{"firstAddress": "198.51.100.5", "lastAddress": "198.51.100.6",
/// "firstPort": 1024, "lastPort": 65535}`; `lastAddress` defaults to
/// `firstAddress`, and the ports to "keep the packet's port when possible":
/// 1024-65535 for `snat` (the port is kept when it is in that range and free),
/// the packet's own port for `dnat`.
public struct NATTarget: Codable, Hashable, Sendable {
    public var firstAddress: IPv4.Address
    public var lastAddress: IPv4.Address
    /// 0: not set (the default range of the action).
    public var firstPort: UInt16
    public var lastPort: UInt16

    /// SNAT's ports when a target names none: the unprivileged range, as
    /// MidoNet and Linux's masquerade use.
    public static let defaultSourcePorts: ClosedRange<UInt16> = 1024...65535

    public init(firstAddress: IPv4.Address, lastAddress: IPv4.Address? = nil, firstPort: UInt16 = 0, lastPort: UInt16 = 0) {
        self.firstAddress = firstAddress
        self.lastAddress = lastAddress ?? firstAddress
        self.firstPort = firstPort
        self.lastPort = lastPort == 0 ? firstPort : lastPort
    }

    public init(address: IPv4.Address, ports: ClosedRange<UInt16>? = nil) {
        self.init(firstAddress: address, firstPort: ports?.lowerBound ?? 0, lastPort: ports?.upperBound ?? 0)
    }

    enum CodingKeys: String, CodingKey {
        case firstAddress, lastAddress, firstPort, lastPort
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        firstAddress = try container.decode(IPv4.Address.self, forKey: .firstAddress)
        lastAddress = try container.decodeIfPresent(IPv4.Address.self, forKey: .lastAddress) ?? firstAddress
        firstPort = try container.decodeIfPresent(UInt16.self, forKey: .firstPort) ?? 0
        lastPort = try container.decodeIfPresent(UInt16.self, forKey: .lastPort) ?? firstPort
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(firstAddress, forKey: .firstAddress)
        try container.encode(lastAddress, forKey: .lastAddress)
        if firstPort != 0 {
            try container.encode(firstPort, forKey: .firstPort)
            try container.encode(lastPort, forKey: .lastPort)
        }
    }

    /// Whether the target names ports.
    public var hasPorts: Bool { firstPort != 0 }

    /// The number of addresses in the range.
    public var addressCount: Int { Int(lastAddress.value) - Int(firstAddress.value) + 1 }

    func problems(field: String) -> ValidationProblems {
        var problems = ValidationProblems()
        problems.checkUnicast(firstAddress, field: "\(field).firstAddress", role: "NAT address", allowLoopback: false)
        problems.checkUnicast(lastAddress, field: "\(field).lastAddress", role: "NAT address", allowLoopback: false)
        if lastAddress.value < firstAddress.value {
            problems.add("\(field).lastAddress", lastAddress, "is below firstAddress \(firstAddress) (expected a range first..last)")
        } else if lastAddress.value - firstAddress.value >= 256 {
            problems.add("\(field).lastAddress", lastAddress, "makes a range of more than 256 addresses (expected at most 256)")
        }
        if firstPort == 0, lastPort != 0 {
            problems.add("\(field).firstPort", 0, "must be set when lastPort is (expected a port from 1 to 65535)")
        }
        if lastPort < firstPort {
            problems.add("\(field).lastPort", lastPort, "is below firstPort \(firstPort) (expected a range first..last)")
        }
        return problems
    }
}

extension NATTarget: CustomStringConvertible {
    public var description: String {
        var text = firstAddress == lastAddress ? "\(firstAddress)" : "\(firstAddress)-\(lastAddress)"
        if hasPorts { text += firstPort == lastPort ? ":\(firstPort)" : ":\(firstPort)-\(lastPort)" }
        return text
    }

    /// Parses "198.51.100.5", "198.51.100.5-198.51.100.6", with an optional
    /// ":1024-65535" or ":8080"; nil when malformed.
    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let addresses = parts[0].split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = IPv4.Address(parsing: addresses[0]) else { return nil }
        var last = first
        if addresses.count == 2 {
            guard let parsed = IPv4.Address(parsing: addresses[1]) else { return nil }
            last = parsed
        }
        var firstPort: UInt16 = 0
        var lastPort: UInt16 = 0
        if parts.count == 2 {
            let ports = parts[1].split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let low = UInt16(ports[0]), low > 0 else { return nil }
            firstPort = low
            lastPort = low
            if ports.count == 2 {
                guard let high = UInt16(ports[1]), high > 0 else { return nil }
                lastPort = high
            }
        }
        self.init(firstAddress: first, lastAddress: last, firstPort: firstPort, lastPort: lastPort)
    }
}

/// A router's external gateway, as a Neutron router's: the port that leads
/// to the outside (an uplink, or a link to a provider router) and the
/// address that tenant traffic leaving by it is translated to.
///
/// With SNAT on, a packet leaving by `portId` whose source lies in the
/// subnet of one of the router's other ports (the tenant networks behind
/// it) is translated to `snatAddress` (the gateway port's own address when
/// unset), unless its VM has a floating IP; replies are translated back.
public struct RouterGateway: Codable, Hashable, Sendable {
    /// A port of the router.
    public var portId: PortID
    /// Nil: the gateway port's address.
    public var snatAddress: IPv4.Address?
    /// False: the gateway routes without translation.
    public var enableSNAT: Bool

    public init(portId: PortID, snatAddress: IPv4.Address? = nil, enableSNAT: Bool = true) {
        self.portId = portId
        self.snatAddress = snatAddress
        self.enableSNAT = enableSNAT
    }

    enum CodingKeys: String, CodingKey {
        case portId, snatAddress, enableSNAT
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        portId = try container.decode(PortID.self, forKey: .portId)
        snatAddress = try container.decodeIfPresent(IPv4.Address.self, forKey: .snatAddress)
        enableSNAT = try container.decodeIfPresent(Bool.self, forKey: .enableSNAT) ?? true
    }
}

/// A public address of a VM: the router `routerId` translates packets to
/// `address` into packets to the port's fixed IP (DNAT), and the VM's
/// packets leaving by one of the router's external ports (exterior ports,
/// the gateway port) from the fixed IP into packets from `address` (SNAT),
/// ICMP included. Without `portId` the address is reserved and unused.
public struct FloatingIP: TopologyObject {
    public static let kind = ObjectKind.floatingIP

    public var id: FloatingIPID
    public var tenantId: String?
    /// The router that translates: where packets to `address` arrive.
    public var routerId: RouterID
    /// Unique among floating IPs.
    public var address: IPv4.Address
    /// The VM's port; nil: not associated.
    public var portId: PortID?
    /// Which of the port's fixed IPs; nil: its first.
    public var fixedAddress: IPv4.Address?

    public init(
        id: FloatingIPID = FloatingIPID(), tenantId: String? = nil, routerId: RouterID, address: IPv4.Address, portId: PortID? = nil,
        fixedAddress: IPv4.Address? = nil
    ) {
        self.id = id
        self.tenantId = tenantId
        self.routerId = routerId
        self.address = address
        self.portId = portId
        self.fixedAddress = fixedAddress
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, routerId, address, portId, fixedAddress
    }

    /// Deleting the router deletes its floating IPs; a port with a floating
    /// IP cannot be deleted until the address is moved or released.
    public var references: [ObjectReference] {
        var references = [ObjectReference(routerId, field: "routerId", onTargetDeletion: .cascade)]
        if let portId { references.append(ObjectReference(portId, field: "portId", onTargetDeletion: .refuse)) }
        return references
    }

    /// "floating-ip/<address>": one floating IP per address, across tenants.
    public var uniqueKeys: [String] { [UniqueKey.floatingAddress(address)] }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkTenant(tenantId)
        problems.checkUnicast(address, field: "address", role: "floating IP", allowLoopback: false)
        if let fixedAddress {
            problems.checkUnicast(fixedAddress, field: "fixedAddress", role: "fixed IP", allowLoopback: false)
            if portId == nil {
                problems.add("fixedAddress", fixedAddress, "needs a portId (expected the port whose fixed IP it is)")
            }
        }
        try problems.check()
    }
}
