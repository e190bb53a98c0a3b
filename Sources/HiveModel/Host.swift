import Foundation
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
    /// Where the host's agent serves its state (flows, ports), e.g.
    /// http://192.0.2.10:9697: written by the agent when it registers, read
    /// by the API for `/v1/hosts/{id}/flows` and `/v1/ports/{id}/status`.
    public var agentEndpoint: String?

    public init(id: HostID = HostID(), name: String, underlayAddresses: [IPv4.Address] = [], agentEndpoint: String? = nil) {
        self.id = id
        self.tenantId = nil
        self.name = name
        self.underlayAddresses = underlayAddresses
        self.agentEndpoint = agentEndpoint
    }

    enum CodingKeys: String, CodingKey {
        case id, tenantId, name, underlayAddresses, agentEndpoint
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(HostID.self, forKey: .id)
        tenantId = try container.decodeIfPresent(String.self, forKey: .tenantId)
        name = try container.decode(String.self, forKey: .name)
        underlayAddresses = try container.decode([IPv4.Address].self, forKey: .underlayAddresses, default: [])
        agentEndpoint = try container.decodeFieldIfPresent(String.self, forKey: .agentEndpoint)
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
        if let agentEndpoint, let problem = Self.endpointProblem(agentEndpoint) {
            problems.add("agentEndpoint", agentEndpoint, problem)
        }
        try problems.check()
    }

    /// Why `endpoint` is not a usable agent URL, or nil. Credentials, a
    /// query or a fragment are refused: the API adds its own path and token.
    static func endpointProblem(_ endpoint: String) -> String? {
        let accepted = "(expected an http:// or https:// URL with a host, like http://192.0.2.10:9697)"
        guard endpoint.utf8.count <= 2048 else { return "is longer than 2048 bytes \(accepted)" }
        guard !endpoint.unicodeScalars.contains(where: { $0.properties.isWhitespace || isControl($0) }),
              let components = URLComponents(string: endpoint),
              let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty
        else { return "is not a URL \(accepted)" }
        if components.user != nil || components.password != nil || components.query != nil || components.fragment != nil {
            return "has credentials, a query or a fragment \(accepted)"
        }
        return nil
    }
}
