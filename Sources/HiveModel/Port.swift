import Foundation
import HivePacket

/// Which device a port belongs to; says how to read `Port.deviceId`.
public enum DeviceKind: String, Codable, CaseIterable, Sendable {
    case bridge
    case router

    var objectKind: ObjectKind {
        switch self {
        case .bridge: return .bridge
        case .router: return .router
        }
    }
}

/// A port on a bridge or router. An *interior* port is linked to a peer port
/// (`peerId`), joining two devices; an *exterior* port has no peer and can be
/// bound to a host interface by a `Binding`.
public struct Port: TopologyObject {
    public static let kind = ObjectKind.port

    public var id: PortID
    public var tenantId: String?
    /// The owning bridge or router, per `deviceKind`.
    public var deviceId: UUID
    public var deviceKind: DeviceKind
    /// Optional; unique per device when set.
    public var name: String?
    public var adminStateUp: Bool
    /// Applied to packets entering the device through this port.
    public var inboundChainId: ChainID?
    /// Applied to packets leaving the device through this port.
    public var outboundChainId: ChainID?
    /// Identifies the port in tunnel headers; 0 until the repository allocates one.
    public var tunnelKey: UInt32
    /// Set on interior ports: the port this one is linked to.
    public var peerId: PortID?
    public var portGroupIds: [PortGroupID]
    /// Router ports only: the router's own address on `subnet`.
    public var address: IPv4.Address?
    /// Router ports only: the directly connected network, in network form.
    public var subnet: IPv4.Prefix?
    /// The port's MAC: router ports answer ARP with it; on a bridge port it
    /// is the VM's MAC (a static entry of the bridge, enforced by port
    /// security). See `generatedMAC()`.
    public var mac: EthernetAddress?
    /// Bridge ports: the VM's IPv4 addresses, each inside a subnet of the
    /// bridge and unique on it. `automaticAddress` asks the repository for one.
    public var fixedIPs: [IPv4.Address]
    /// Bridge ports: extra addresses (and MACs) the VM may use.
    public var allowedAddressPairs: [AllowedAddressPair]
    /// Bridge ports: drop frames whose source MAC, IP or ARP sender is not the
    /// port's (anti-spoofing). Off, the port learns MACs, up to `macLimit`.
    public var portSecurity: Bool
    /// Bridge ports without port security: the most MACs learned on the port
    /// at once; nil means `defaultMACLimit`.
    public var macLimit: Int?
    /// Bridge ports with port security: the security groups whose rules
    /// filter the port's traffic (none: not filtered by groups).
    public var securityGroupIds: [SecurityGroupID]

    public init(
        id: PortID = PortID(), tenantId: String? = nil, deviceId: UUID, deviceKind: DeviceKind,
        name: String? = nil, adminStateUp: Bool = true,
        inboundChainId: ChainID? = nil, outboundChainId: ChainID? = nil, tunnelKey: UInt32 = 0,
        peerId: PortID? = nil, portGroupIds: [PortGroupID] = [],
        address: IPv4.Address? = nil, subnet: IPv4.Prefix? = nil, mac: EthernetAddress? = nil,
        fixedIPs: [IPv4.Address] = [], allowedAddressPairs: [AllowedAddressPair] = [], portSecurity: Bool = true,
        macLimit: Int? = nil, securityGroupIds: [SecurityGroupID] = []
    ) {
        self.id = id
        self.tenantId = tenantId
        self.deviceId = deviceId
        self.deviceKind = deviceKind
        self.name = name
        self.adminStateUp = adminStateUp
        self.inboundChainId = inboundChainId
        self.outboundChainId = outboundChainId
        self.tunnelKey = tunnelKey
        self.peerId = peerId
        self.portGroupIds = portGroupIds
        self.address = address
        self.subnet = subnet
        self.mac = mac
        self.fixedIPs = fixedIPs
        self.allowedAddressPairs = allowedAddressPairs
        self.portSecurity = portSecurity
        self.macLimit = macLimit
        self.securityGroupIds = securityGroupIds
    }

    /// A port on `bridge`.
    public init(
        id: PortID = PortID(), tenantId: String? = nil, bridge: BridgeID, name: String? = nil, mac: EthernetAddress? = nil,
        fixedIPs: [IPv4.Address] = [], allowedAddressPairs: [AllowedAddressPair] = [], portSecurity: Bool = true,
        securityGroupIds: [SecurityGroupID] = []
    ) {
        self.init(
            id: id, tenantId: tenantId, deviceId: bridge.uuid, deviceKind: .bridge, name: name, mac: mac,
            fixedIPs: fixedIPs, allowedAddressPairs: allowedAddressPairs, portSecurity: portSecurity,
            securityGroupIds: securityGroupIds)
    }

    /// A port on `router` with its address and connected subnet.
    public init(
        id: PortID = PortID(), tenantId: String? = nil, router: RouterID, name: String? = nil,
        address: IPv4.Address, subnet: IPv4.Prefix, mac: EthernetAddress? = nil
    ) {
        self.init(
            id: id, tenantId: tenantId, deviceId: router.uuid, deviceKind: .router, name: name,
            address: address, subnet: subnet, mac: mac)
    }

    /// The owning bridge, when this is a bridge port.
    public var bridgeId: BridgeID? { deviceKind == .bridge ? BridgeID(deviceId) : nil }
    /// The owning router, when this is a router port.
    public var routerId: RouterID? { deviceKind == .router ? RouterID(deviceId) : nil }
    /// Interior ports link devices; only exterior ports can be bound to host interfaces.
    public var isInterior: Bool { peerId != nil }

    /// A fresh MAC for a port: random, locally administered, unicast.
    public static func generatedMAC() -> EthernetAddress {
        var generator = SystemRandomNumberGenerator()
        return generatedMAC(using: &generator)
    }

    /// As `generatedMAC()`, drawing from `generator` (seeded in tests).
    public static func generatedMAC(using generator: inout some RandomNumberGenerator) -> EthernetAddress {
        let random = UInt64.random(in: 0...0xFFFF_FFFF_FFFF, using: &generator)
        // Set the U/L bit (locally administered) and clear the I/G bit (unicast) in the first octet.
        return EthernetAddress(random & ~0x0100_0000_0000 | 0x0200_0000_0000)
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, deviceId, deviceKind, name, adminStateUp, inboundChainId, outboundChainId
        case tunnelKey, peerId, portGroupIds, address, subnet, mac
        case fixedIPs, allowedAddressPairs, portSecurity, macLimit, securityGroupIds
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(PortID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        deviceId = try container.decodeUUID(forKey: .deviceId)
        deviceKind = try container.decode(DeviceKind.self, forKey: .deviceKind)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        adminStateUp = try container.decode(Bool.self, forKey: .adminStateUp, default: true)
        inboundChainId = try container.decodeIfPresent(ChainID.self, forKey: .inboundChainId)
        outboundChainId = try container.decodeIfPresent(ChainID.self, forKey: .outboundChainId)
        tunnelKey = try container.decode(UInt32.self, forKey: .tunnelKey, default: 0)
        peerId = try container.decodeIfPresent(PortID.self, forKey: .peerId)
        portGroupIds = try container.decode([PortGroupID].self, forKey: .portGroupIds, default: [])
        address = try container.decodeIfPresent(IPv4.Address.self, forKey: .address)
        subnet = try container.decodeIfPresent(IPv4.Prefix.self, forKey: .subnet)
        mac = try container.decodeIfPresent(EthernetAddress.self, forKey: .mac)
        fixedIPs = try container.decode(FixedIPList.self, forKey: .fixedIPs, default: FixedIPList([])).addresses
        allowedAddressPairs = try container.decode([AllowedAddressPair].self, forKey: .allowedAddressPairs, default: [])
        portSecurity = try container.decode(Bool.self, forKey: .portSecurity, default: true)
        macLimit = try container.decodeFieldIfPresent(Int.self, forKey: .macLimit)
        securityGroupIds = try container.decode([SecurityGroupID].self, forKey: .securityGroupIds, default: [])
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(tenantId, forKey: .tenantId)
        try container.encodeUUID(deviceId, forKey: .deviceId)
        try container.encode(deviceKind, forKey: .deviceKind)
        try container.encodeIfPresent(name, forKey: .name)
        try container.encode(adminStateUp, forKey: .adminStateUp)
        try container.encodeIfPresent(inboundChainId, forKey: .inboundChainId)
        try container.encodeIfPresent(outboundChainId, forKey: .outboundChainId)
        try container.encode(tunnelKey, forKey: .tunnelKey)
        try container.encodeIfPresent(peerId, forKey: .peerId)
        try container.encode(portGroupIds, forKey: .portGroupIds)
        try container.encodeIfPresent(address, forKey: .address)
        try container.encodeIfPresent(subnet, forKey: .subnet)
        try container.encodeIfPresent(mac, forKey: .mac)
        if deviceKind == .bridge {
            try container.encode(FixedIPList(fixedIPs), forKey: .fixedIPs)
            try container.encode(allowedAddressPairs, forKey: .allowedAddressPairs)
            try container.encode(portSecurity, forKey: .portSecurity)
            try container.encodeIfPresent(macLimit, forKey: .macLimit)
            try container.encode(securityGroupIds, forKey: .securityGroupIds)
        }
    }

    public var references: [ObjectReference] {
        var references = [
            ObjectReference(kind: deviceKind.objectKind, id: deviceId, field: "deviceId", onTargetDeletion: .refuse)
        ]
        references += chainReferences(inbound: inboundChainId, outbound: outboundChainId)
        if let peerId {
            references.append(ObjectReference(peerId, field: "peerId", onTargetDeletion: .refuse))
        }
        for (index, group) in portGroupIds.enumerated() {
            references.append(ObjectReference(group, field: "portGroupIds[\(index)]", onTargetDeletion: .refuse))
        }
        for (index, group) in securityGroupIds.enumerated() {
            references.append(ObjectReference(group, field: "securityGroupIds[\(index)]", onTargetDeletion: .refuse))
        }
        return references
    }

    public var uniqueKeys: [String] {
        var keys: [String] = []
        if let name { keys.append(UniqueKey.portName(deviceId: deviceId, name: name)) }
        if deviceKind == .bridge {
            if let mac { keys.append(UniqueKey.portMAC(deviceId: deviceId, mac: mac)) }
            for address in fixedIPs where address != Self.automaticAddress {
                keys.append(UniqueKey.portAddress(deviceId: deviceId, address: address))
            }
        }
        return keys
    }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkTenant(tenantId)
        if let name { problems.checkName(name) }
        problems.checkTunnelKey(tunnelKey)
        if let peerId, peerId == id {
            problems.add("peerId", peerId, "is the port's own id (expected the id of another port to link to)")
        }
        problems.checkNoDuplicates(portGroupIds, field: "portGroupIds", what: "port group")
        problems.checkNoDuplicates(securityGroupIds, field: "securityGroupIds", what: "security group")
        if !securityGroupIds.isEmpty {
            if deviceKind == .router {
                problems.add("securityGroupIds", securityGroupIds.map(\.description).joined(separator: ","), "must be empty on a router port (security groups filter VM ports; use chains on routers)")
            } else if !portSecurity {
                problems.add("securityGroupIds", securityGroupIds.map(\.description).joined(separator: ","), "must be empty when portSecurity is off (a port without port security has no security groups, as in Neutron)")
            }
        }
        switch deviceKind {
        case .router: validateRouterAddressing(&problems)
        case .bridge: validateBridgeAddressing(&problems)
        }
        if let mac { problems.checkUnicastMAC(mac, field: "mac") }
        validatePortAddresses(&problems)
        try problems.check()
    }

    private func validateRouterAddressing(_ problems: inout ValidationProblems) {
        if address == nil {
            problems.add("address", "", "is required on a router port (expected the router's address on the subnet, like 10.0.0.1)")
        }
        guard let subnet else {
            problems.add("subnet", "", "is required on a router port (expected the connected network, like 10.0.0.0/24)")
            return
        }
        if !subnet.isNetwork {
            problems.add("subnet", subnet, "has host bits set (expected the network form \(subnet.network); the port's own address goes in 'address')")
        }
        if let address {
            problems.checkHostAddress(address, in: subnet, field: "address", subnetRole: "the port's subnet")
        }
    }

    private func validateBridgeAddressing(_ problems: inout ValidationProblems) {
        if let address {
            problems.add("address", address, "must be absent on a bridge port (only router ports have addresses)")
        }
        if let subnet {
            problems.add("subnet", subnet, "must be absent on a bridge port (only router ports have subnets)")
        }
    }
}
