import ArgumentParser
import Foundation
import HiveModel
import HivePacket
import HiveStore

/// Reading and seeding the topology straight from the NSDB. The REST API and
/// its CLI come on top of this; these commands are for operators and for a
/// first look at Hive.
struct TopologyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Show the virtual topology stored in the NSDB, or seed a demo one.",
        subcommands: [Show.self, Demo.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every stored object, grouped by kind.")

        @OptionGroup var store: StoreOptions

        @Flag(help: "Print JSON (one object per kind, keyed by kind) instead of tables.")
        var json = false

        @Option(help: ArgumentHelp("Only this kind.", discussion: ObjectKind.allCases.map(\.rawValue).joined(separator: ", ")))
        var kind: ObjectKind?

        func run() async throws {
            try await withStore(store) { store in
                let repository = TopologyRepository(store: store)
                let kinds = kind.map { [$0] } ?? ObjectKind.allCases
                var documents: [String: [TopologyRow]] = [:]
                for kind in kinds {
                    documents[kind.rawValue] = try await TopologyRow.list(kind, in: repository)
                }
                if json {
                    var output: [String: [Any]] = [:]
                    for (kind, rows) in documents {
                        output[kind] = try rows.map { try JSONSerialization.jsonObject(with: Data($0.json)) }
                    }
                    let data = try JSONSerialization.data(withJSONObject: output, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                    print(String(decoding: data, as: UTF8.self))
                    return
                }
                let live = try await repository.liveHosts().hosts.map(\.description)
                for kind in kinds {
                    let rows = documents[kind.rawValue] ?? []
                    guard !rows.isEmpty else { continue }
                    print("\(kind.rawValue) (\(rows.count))")
                    print(Table(
                        headers: ["NAME", "ID", "TENANT", "DETAILS"],
                        rows: rows.map { row in
                            let details = kind == .host ? row.details + (live.contains(row.id) ? " alive" : " down") : row.details
                            return [row.name, row.id, row.tenant, details]
                        }).rendered)
                }
                if documents.values.allSatisfy(\.isEmpty) {
                    print("No topology stored in the \(self.store.summary). Try `hive topology demo`.")
                }
            }
        }
    }

    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a small demo topology (two bridges, a router, a firewall chain, two hosts).")

        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await withStore(store) { store in
                let repository = TopologyRepository(store: store)
                if try await repository.list(Router.self).items.contains(where: { $0.object.name == "edge" && $0.object.tenantId == "demo" }) {
                    print("The demo topology is already in the \(self.store.summary).")
                } else {
                    try await DemoTopology.create(in: repository)
                    print("Stored the demo topology in the \(self.store.summary).")
                }
                print("See it with: hive topology show\(self.store.flagsForDisplay)")
            }
        }
    }
}

extension ObjectKind: ExpressibleByArgument {}

extension StoreOptions {
    var flagsForDisplay: String {
        if let etcd {
            let tls = [("--etcd-ca-file", etcdCAFile), ("--etcd-cert-file", etcdCertificateFile), ("--etcd-key-file", etcdKeyFile)]
            return " --etcd \(etcd)" + tls.compactMap { flag, path in path.map { " \(flag) \($0)" } }.joined()
        }
        if let dataDirectory { return " --data-dir \(dataDirectory)" }
        return ""
    }
}

/// One object as a table row, and its JSON.
struct TopologyRow {
    var name: String
    var id: String
    var tenant: String
    var details: String
    var json: [UInt8]

    static func list(_ kind: ObjectKind, in repository: TopologyRepository) async throws -> [TopologyRow] {
        switch kind {
        case .bridge: return try await rows(Bridge.self, repository) { "tunnel key \($0.tunnelKey)" + ($0.adminStateUp ? "" : ", down") }
        case .router: return try await rows(Router.self, repository) { $0.adminStateUp ? "" : "down" }
        case .port:
            return try await rows(Port.self, repository) { port in
                var parts = ["\(port.deviceKind.rawValue) \(port.deviceId.uuidString.lowercased().prefix(8))", "key \(port.tunnelKey)"]
                if let address = port.address, let subnet = port.subnet { parts.append("\(address) in \(subnet)") }
                if let mac = port.mac { parts.append(mac.description) }
                if let peer = port.peerId { parts.append("linked to \(peer.description.prefix(8))") }
                if let chain = port.inboundChainId { parts.append("in-chain \(chain.description.prefix(8))") }
                if let chain = port.outboundChainId { parts.append("out-chain \(chain.description.prefix(8))") }
                return parts.joined(separator: ", ")
            }
        case .route:
            return try await rows(Route.self, repository) { route in
                var text = "\(route.destination) \(route.kind.rawValue)"
                if let gateway = route.nextHopGateway { text += " via \(gateway)" }
                if let port = route.egressPortId { text += " port \(port.description.prefix(8))" }
                return text + ", router \(route.routerId.description.prefix(8))"
            }
        case .chain: return try await rows(Chain.self, repository) { "\($0.ruleIds.count) rules" }
        case .rule:
            return try await rows(Rule.self, repository) { rule in
                "chain \(rule.chainId.description.prefix(8)), \(rule.action.type.rawValue)"
            }
        case .portGroup: return try await rows(PortGroup.self, repository) { $0.stateful ? "stateful" : "" }
        case .ipAddressGroup: return try await rows(IPAddressGroup.self, repository) { $0.addresses.map(\.description).joined(separator: " ") }
        case .host: return try await rows(Host.self, repository) { $0.underlayAddresses.map(\.description).joined(separator: " ") }
        case .tunnelZone: return try await rows(TunnelZone.self, repository) { "\($0.kind.rawValue), \($0.members.count) hosts" }
        case .binding:
            return try await rows(Binding.self, repository) { binding in
                "port \(binding.portId.description.prefix(8)) on host \(binding.hostId.description.prefix(8)) as \(binding.interfaceName)"
            }
        case .dhcpSubnet:
            return try await rows(DHCPSubnet.self, repository) { "\($0.subnet) range \($0.rangeStart)-\($0.rangeEnd)" }
        case .securityGroup: return try await rows(SecurityGroup.self, repository) { $0.description ?? "" }
        case .securityGroupRule:
            return try await rows(SecurityGroupRule.self, repository) { rule in
                "group \(rule.securityGroupId.description.prefix(8)), \(rule.direction.rawValue) \(rule.etherType.rawValue)"
            }
        case .floatingIP:
            return try await rows(FloatingIP.self, repository) { ip in
                "\(ip.address) on router \(ip.routerId.description.prefix(8))" + (ip.portId.map { " -> port \($0.description.prefix(8))" } ?? "")
            }
        }
    }

    private static func rows<T: TopologyObject>(
        _ type: T.Type, _ repository: TopologyRepository, details: (T) -> String
    ) async throws -> [TopologyRow] {
        try await repository.list(type).items.map { stored in
            let name = Mirror(reflecting: stored.object).children.first { $0.label == "name" }?.value
            return TopologyRow(
                name: (name as? String) ?? (name as? String?)?.flatMap { $0 } ?? "-",
                id: stored.object.id.description,
                tenant: stored.object.tenantId ?? "-",
                details: details(stored.object),
                json: try stored.object.jsonBytes())
        }
    }
}
