import HivePacket

/// A physical or virtual machine running the Hive agent. Admin-only.
public struct Host: TopologyObject {
    public static let kind = ObjectKind.host

    public var id: HostID
    /// Always nil: hosts belong to no tenant.
    public var tenantId: String?
    /// Usually the machine's hostname; unique across all hosts.
    public var name: String
    /// Addresses other hosts can reach this one on for tunnels.
    public var underlayAddresses: [IPv4.Address]

    public init(id: HostID = HostID(), name: String, underlayAddresses: [IPv4.Address] = []) {
        self.id = id
        self.tenantId = nil
        self.name = name
        self.underlayAddresses = underlayAddresses
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, name, underlayAddresses
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(HostID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        name = try container.decode(String.self, forKey: .name)
        underlayAddresses = try container.decode([IPv4.Address].self, forKey: .underlayAddresses, default: [])
    }

    public var references: [ObjectReference] { [] }

    /// The bare name: host names contain no '/', and hosts have no other key.
    public var uniqueKeys: [String] { [name] }

    public func validate() throws(ModelError) {
        var problems = ValidationProblems()
        problems.checkAdminOnly(tenantId, kind: Self.kind)
        let accepted = "(expected a hostname: 1 to 253 bytes without whitespace or '/')"
        let bytes = name.utf8.count
        if bytes == 0 {
            problems.add("name", "", "must not be empty \(accepted)")
        } else if bytes > 253 {
            problems.add("name", name, "is \(bytes) bytes long \(accepted)")
        }
        if name.unicodeScalars.contains(where: { $0 == "/" || $0.properties.isWhitespace || isControl($0) }) {
            problems.add("name", name, "contains whitespace, '/' or a control character \(accepted)")
        }
        for (index, address) in underlayAddresses.enumerated() {
            problems.checkUnicast(address, field: "underlayAddresses[\(index)]", role: "underlay address")
        }
        problems.checkNoDuplicates(underlayAddresses, field: "underlayAddresses", what: "address")
        try problems.check()
    }
}
