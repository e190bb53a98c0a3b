import ArgumentParser
import HiveClient
import HiveModel
import HivePacket

struct DHCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dhcp",
        abstract: "DHCP service on bridges: create, list, show, update, delete.",
        discussion: """
            Hive answers DHCP requests from a bridge's ports itself, leasing from \
            the range or handing fixed addresses to known MACs (--host-entry). \
            A DHCP subnet is also what a bridge port's addresses come from: \
            `hive port create --address` takes an address of the subnet, or auto \
            for a free one of the range. A DHCP subnet is named by its id, or by \
            its subnet with --bridge.

            Examples:
              hive dhcp create --bridge web --subnet 10.0.1.0/24 \\
                  --range 10.0.1.100-10.0.1.199 --gateway 10.0.1.1 --dns 10.0.1.1
              hive dhcp update 10.0.1.0/24 --bridge web \\
                  --add-host-entry 02:00:00:00:01:10=10.0.1.10=vm1
              hive dhcp list --bridge web
              hive dhcp show 10.0.1.0/24 --bridge web
              hive dhcp delete 10.0.1.0/24 --bridge web
            """,
        subcommands: [Create.self, ListCommand<DHCPSubnet>.self, ShowCommand<DHCPSubnet>.self, Update.self, DeleteCommand<DHCPSubnet>.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve DHCP for a subnet on a bridge.",
            discussion: """
                Examples:
                  hive dhcp create --bridge web --subnet 10.0.1.0/24 \\
                      --range 10.0.1.100-10.0.1.199 --gateway 10.0.1.1
                  hive dhcp create --bridge db --subnet 10.0.2.0/24 \\
                      --range 10.0.2.50-10.0.2.99 --gateway 10.0.2.1 \\
                      --dns 9.9.9.9 --dns 1.1.1.1 --mtu 1450 \\
                      --host-entry 02:00:00:00:02:10=10.0.2.10=db1 \\
                      --host-route 10.9.0.0/16=10.0.2.254 --domain-name db.internal
                """)

        @Option(help: ArgumentHelp("The bridge (name or id).", valueName: "bridge"))
        var bridge: String
        @Option(help: ArgumentHelp("The subnet, like 10.0.1.0/24.", valueName: "network"), transform: Parse.prefix)
        var subnet: IPv4.Prefix
        @Option(help: ArgumentHelp("The dynamic pool, FIRST-LAST inclusive, like 10.0.1.100-10.0.1.199.", valueName: "first-last"),
                transform: Parse.addressRange)
        var range: AddressRange
        @OptionGroup var settings: DHCPSettings
        @Option(help: "The owning tenant (admin token only).")
        var tenant: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            try await DHCPSubnet.create(connection, output) { resolver in
                var subnet = DHCPSubnet(
                    tenantId: tenant, bridgeId: try await resolver.id(bridge, Bridge.self), subnet: subnet,
                    rangeStart: range.first, rangeEnd: range.last)
                settings.apply(to: &subnet)
                return subnet
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a DHCP subnet's pool, options or host entries.",
            discussion: """
                Only the options given change. --dns and --host-route replace the DNS \
                servers and the host routes; `--gateway none`, `--mtu none` and \
                `--domain-name none` remove them, --no-host-routes removes the routes.

                Examples:
                  hive dhcp update 10.0.1.0/24 --bridge web --range 10.0.1.50-10.0.1.199
                  hive dhcp update 10.0.1.0/24 --bridge web \\
                      --host-route 10.9.0.0/16=10.0.1.254 --domain-name example.internal
                  hive dhcp update 10.0.1.0/24 --bridge web \\
                      --add-host-entry 02:00:00:00:01:10=10.0.1.10=vm1
                  hive dhcp update 10.0.1.0/24 --bridge web \\
                      --remove-host-entry 02:00:00:00:01:10
                  hive dhcp update 10.0.1.0/24 --bridge web --enabled off
                """)

        @Argument(help: "The DHCP subnet's id, or its subnet (like 10.0.1.0/24) with --bridge.")
        var subnet: String
        @OptionGroup var scope: DHCPScope
        @Option(help: ArgumentHelp("A new dynamic pool, FIRST-LAST.", valueName: "first-last"), transform: Parse.addressRange)
        var range: AddressRange?
        @OptionGroup var settings: DHCPSettings
        @Option(help: ArgumentHelp("Remove the fixed address of this MAC; repeatable.", valueName: "mac"), transform: Parse.mac)
        var removeHostEntry: [EthernetAddress] = []
        @Flag(help: "Offer no host routes any more.")
        var noHostRoutes = false
        @Option(help: "Serve (on) or stop serving (off) without deleting.")
        var enabled: Switch?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func validate() throws {
            if noHostRoutes && !settings.hostRoutes.isEmpty {
                throw ValidationError("give --host-route (replaces the routes) or --no-host-routes (removes them), not both")
            }
        }

        func run() async throws {
            guard range != nil || settings.changesAnything || !removeHostEntry.isEmpty || enabled != nil || noHostRoutes else {
                throw CLIError("""
                    nothing to change: give --range, --gateway, --dns, --mtu, --lease-seconds, --add-host-entry, \
                    --remove-host-entry, --host-route, --no-host-routes, --domain-name or --enabled
                    """)
            }
            var flags = DHCPSubnet.fieldFlags
            flags["hostEntries"] = "--add-host-entry"
            try await DHCPSubnet.update(subnet, scope, connection, output, flags: flags) { updated, _ in
                if let range { (updated.rangeStart, updated.rangeEnd) = (range.first, range.last) }
                for mac in removeHostEntry {
                    guard updated.hostEntries.contains(where: { $0.mac == mac }) else {
                        throw CLIError("--remove-host-entry \(mac): the subnet has no host entry for that MAC")
                    }
                    updated.hostEntries.removeAll { $0.mac == mac }
                }
                settings.apply(to: &updated)
                if noHostRoutes { updated.hostRoutes = [] }
                if let enabled { updated.enabled = enabled.isOn }
            }
        }
    }
}

extension DHCPSubnet: CLIResource {
    static var noun: String { "DHCP subnet" }
    static let fieldFlags = [
        "bridgeId": "--bridge", "subnet": "--subnet", "rangeStart": "--range", "rangeEnd": "--range",
        "gateway": "--gateway", "dnsServers": "--dns", "hostEntries": "--host-entry", "mtu": "--mtu",
        "leaseSeconds": "--lease-seconds", "enabled": "--enabled", "tenantId": "--tenant",
        "hostRoutes": "--host-route", "domainName": "--domain-name",
    ]
    static var emptyListHint: String {
        "No DHCP subnets. Create one with: hive dhcp create --bridge BRIDGE --subnet NETWORK --range FIRST-LAST"
    }
    static var referenceHelp: String { "The DHCP subnet's id, or its subnet (like 10.0.1.0/24) with --bridge." }
    static var listAbstract: String { "List DHCP subnets, of one bridge or of all." }
    static var listDiscussion: String {
        """
        Examples:
          hive dhcp list
          hive dhcp list --bridge web --json
        """
    }
    static var showAbstract: String { "Show a DHCP subnet with its host entries." }
    static var deleteAbstract: String { "Stop DHCP for a subnet and delete its configuration." }

    static func find(_ reference: String, _ scope: DHCPScope, _ resolver: Resolver) async throws -> Revisioned<DHCPSubnet> {
        try await findSubnet(reference, bridge: scope.bridge, resolver)
    }

    static func list(_ filter: BridgeFilter, _ resolver: Resolver) async throws -> [Revisioned<DHCPSubnet>] {
        try await subnets(on: filter.bridge, resolver)
    }

    static func send(_ new: DHCPSubnet, _ client: HiveClient) async throws -> Revisioned<DHCPSubnet> { try await client.create(new) }

    static func deletedText(_ item: Revisioned<DHCPSubnet>) -> String { "Deleted DHCP subnet \(item.object.subnet) (\(item.object.id))." }

    /// The subnets of `bridge`, or of every bridge.
    static func subnets(on bridge: String?, _ resolver: Resolver) async throws -> [Revisioned<DHCPSubnet>] {
        if let bridge { return try await resolver.client.dhcpSubnets(of: try await resolver.id(bridge, Bridge.self)) }
        var subnets: [Revisioned<DHCPSubnet>] = []
        for bridge in try await resolver.client.list(Bridge.self) { subnets += try await resolver.client.dhcpSubnets(of: bridge.object.id) }
        return subnets
    }
}

/// `--bridge` to find a DHCP subnet by its network.
struct DHCPScope: ParsableArguments {
    @Option(help: ArgumentHelp("The bridge, to find the subnet by network (name or id).", valueName: "bridge"))
    var bridge: String?
}

/// `hive dhcp list --bridge`.
struct BridgeFilter: ParsableArguments {
    @Option(help: ArgumentHelp("Only this bridge's subnets (name or id).", valueName: "bridge"))
    var bridge: String?
}

/// Options shared by `dhcp create` and `dhcp update`.
struct DHCPSettings: ParsableArguments {
    @Option(help: ArgumentHelp("The default router offered to clients (outside the range; `none` on update removes it).", valueName: "address"),
            transform: Parse.orNone(Parse.address))
    var gateway: Removable<IPv4.Address>?
    @Option(help: ArgumentHelp("A DNS server offered to clients; repeatable (on update, replaces the list).", valueName: "address"),
            transform: Parse.address)
    var dns: [IPv4.Address] = []
    @Option(help: ArgumentHelp("The MTU offered to clients, 68 to 9000 (`none` on update removes it).", valueName: "bytes"),
            transform: Parse.orNone(Parse.mtu))
    var mtu: Removable<UInt16>?
    @Option(help: ArgumentHelp("Lease time in seconds (default 86400).", valueName: "seconds"), transform: Parse.leaseSeconds)
    var leaseSeconds: UInt32?
    @Option(name: [.customLong("host-entry"), .customLong("add-host-entry")],
            help: ArgumentHelp("A fixed address for a MAC: MAC=IP or MAC=IP=HOSTNAME; repeatable.", valueName: "mac=ip[=name]"),
            transform: Parse.hostEntry)
    var hostEntries: [DHCPHostEntry] = []
    @Option(name: .customLong("host-route"),
            help: ArgumentHelp("""
                A route offered to clients besides the default route: the network, `=`, and the next hop \
                (an address of the subnet); repeatable (on update, replaces the list).
                """, valueName: "network=next-hop"),
            transform: Parse.hostRoute)
    var hostRoutes: [DHCPHostRoute] = []
    @Option(help: ArgumentHelp("The DNS domain offered to clients, like example.internal (`none` on update removes it).", valueName: "domain"),
            transform: Parse.orNone(Parse.domainName))
    var domainName: Removable<String>?

    var changesAnything: Bool {
        gateway != nil || !dns.isEmpty || mtu != nil || leaseSeconds != nil || !hostEntries.isEmpty
            || !hostRoutes.isEmpty || domainName != nil
    }

    func apply(to subnet: inout DHCPSubnet) {
        if let gateway { subnet.gateway = gateway.value }
        if !dns.isEmpty { subnet.dnsServers = dns }
        if let mtu { subnet.mtu = mtu.value }
        if let leaseSeconds { subnet.leaseSeconds = leaseSeconds }
        for entry in hostEntries {
            subnet.hostEntries.removeAll { $0.mac == entry.mac }
            subnet.hostEntries.append(entry)
        }
        if !hostRoutes.isEmpty { subnet.hostRoutes = hostRoutes }
        if let domainName { subnet.domainName = domainName.value }
    }
}

/// A DHCP subnet by id, or by network on `bridge` (or on any bridge when unique).
private func findSubnet(_ reference: String, bridge: String?, _ resolver: Resolver) async throws -> Revisioned<DHCPSubnet> {
    if let id = DHCPSubnetID(parsing: reference) { return try await resolver.client.get(id) }
    guard let network = IPv4.Prefix(parsing: reference) else {
        throw CLIError("'\(reference)' is neither a DHCP subnet id nor a network like 10.0.1.0/24")
    }
    let candidates = try await DHCPSubnet.subnets(on: bridge, resolver)
    let matches = candidates.filter { $0.object.subnet.network == network.network }
    switch matches.count {
    case 1:
        return matches[0]
    case 0:
        let scope = bridge.map { " on bridge \($0)" } ?? ""
        let existing = candidates.map(\.object.subnet.description)
        throw CLIError("no DHCP subnet \(network)\(scope)" + (existing.isEmpty ? "" : " (there are: \(existing.joined(separator: ", ")))"))
    default:
        throw CLIError("\(matches.count) bridges serve DHCP for \(network): ids \(matches.map(\.object.id.description).joined(separator: ", ")); give --bridge or the id")
    }
}
