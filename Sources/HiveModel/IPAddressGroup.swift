import HivePacket

/// A named set of networks, matched as a unit by rules
/// (`sourceAddressGroup`), so one edit updates every rule using it.
public struct IPAddressGroup: TopologyObject {
    public static let kind = ObjectKind.ipAddressGroup

    public var id: IPAddressGroupID
    public var tenantId: String?
    /// Unique per tenant.
    public var name: String
    /// Members in network form; a single host is a /32.
    public var addresses: [IPv4.Prefix]

    public init(id: IPAddressGroupID = IPAddressGroupID(), tenantId: String? = nil, name: String, addresses: [IPv4.Prefix] = []) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.addresses = addresses
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, name, addresses
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(IPAddressGroupID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        name = try container.decode(String.self, forKey: .name)
        addresses = try container.decode([IPv4.Prefix].self, forKey: .addresses, default: [])
    }

    public var references: [ObjectReference] { [] }

    public var uniqueKeys: [String] {
        [UniqueKey.tenantScoped(tenantId: tenantId, name: name)]
    }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkTenant(tenantId)
        problems.checkName(name)
        for (index, prefix) in addresses.enumerated() {
            problems.checkNetworkForm(prefix, field: "addresses[\(index)]")
        }
        problems.checkNoDuplicates(addresses, field: "addresses", what: "network")
        try problems.check()
    }
}
