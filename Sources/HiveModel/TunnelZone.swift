import HivePacket

/// The encapsulation hosts in a zone use to reach each other.
public enum TunnelKind: String, Codable, CaseIterable, Sendable {
    case geneve
    case vxlan
}

/// One host's membership in a tunnel zone, with the address it tunnels from.
public struct TunnelZoneMember: Codable, Hashable, Sendable {
    public var hostId: HostID
    public var address: IPv4.Address

    public init(hostId: HostID, address: IPv4.Address) {
        self.hostId = hostId
        self.address = address
    }
}

/// A set of hosts that reach each other with one encapsulation over one
/// underlay. Admin-only.
public struct TunnelZone: TopologyObject {
    public static let kind = ObjectKind.tunnelZone

    public var id: TunnelZoneID
    /// Always nil: tunnel zones belong to no tenant.
    public var tenantId: String?
    /// Unique across all tunnel zones.
    public var name: String
    public var kind: TunnelKind
    public var members: [TunnelZoneMember]
    /// The underlay's MTU between the zone's hosts; nil means 1500. The VMs'
    /// MTU is this less the tunnel overhead (`overhead`).
    public var underlayMTU: UInt16?

    public static let defaultUnderlayMTU: UInt16 = 1500
    public static let underlayMTURange: ClosedRange<UInt16> = 576...9216

    /// Bytes a tunnel adds around a VM's IP packet: the inner Ethernet
    /// header, Geneve with Hive's 8-byte option, UDP and the outer IPv4
    /// header. The agents encapsulate in Geneve in every zone today (a VXLAN
    /// zone's 8 bytes less will count once they speak VXLAN).
    public static func overhead(of kind: TunnelKind) -> UInt16 {
        14 + 16 + 8 + 20
    }

    /// The largest IP packet a VM may send through this zone.
    public var networkMTU: UInt16 { (underlayMTU ?? Self.defaultUnderlayMTU) - Self.overhead(of: kind) }

    public init(
        id: TunnelZoneID = TunnelZoneID(), name: String, kind: TunnelKind = .geneve, members: [TunnelZoneMember] = [],
        underlayMTU: UInt16? = nil
    ) {
        self.underlayMTU = underlayMTU
        self.id = id
        self.tenantId = nil
        self.name = name
        self.kind = kind
        self.members = members
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, name, kind, members, underlayMTU
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(TunnelZoneID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        name = try container.decode(String.self, forKey: .name)
        kind = try container.decode(TunnelKind.self, forKey: .kind, default: .geneve)
        members = try container.decode([TunnelZoneMember].self, forKey: .members, default: [])
        underlayMTU = try container.decodeFieldIfPresent(UInt16.self, forKey: .underlayMTU)
    }

    /// A host cannot be deleted while it is a member.
    public var references: [ObjectReference] {
        members.enumerated().map { index, member in
            ObjectReference(member.hostId, field: "members[\(index)].hostId", onTargetDeletion: .refuse)
        }
    }

    /// The bare name: tunnel zones have no other key.
    public var uniqueKeys: [String] { [name] }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkAdminOnly(tenantId, kind: Self.kind)
        problems.checkName(name)
        for (index, member) in members.enumerated() {
            problems.checkUnicast(member.address, field: "members[\(index)].address", role: "tunnel endpoint address")
        }
        problems.checkNoDuplicates(members.map(\.hostId), field: "members", suffix: ".hostId", what: "host")
        problems.checkNoDuplicates(members.map(\.address), field: "members", suffix: ".address", what: "address")
        if let underlayMTU, !Self.underlayMTURange.contains(underlayMTU) {
            problems.add("underlayMTU", underlayMTU,
                         "is out of range (expected \(Self.underlayMTURange.lowerBound) to \(Self.underlayMTURange.upperBound), or omit it for \(Self.defaultUnderlayMTU))")
        }
        try problems.check()
    }
}
