import ArgumentParser
import HiveClient
import HiveModel
import HivePacket
import struct HiveModel.Port

struct PortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "port",
        abstract: "Ports of bridges and routers: create, list, show, status, update, delete, link, unlink.",
        discussion: """
            A port belongs to one bridge or router. Linking two ports makes them \
            interior (a wire between two devices); an unlinked port is exterior \
            and can be bound to a VM's interface on a host (`hive binding`). \
            Router ports have an address on their subnet. A VM's bridge port has \
            the VM's MAC and addresses (--address, from a DHCP subnet of the \
            bridge; `auto` picks a free one); with port security on (the \
            default) the VM may send only from those and its --allowed-address \
            pairs.

            A port is named by its id, or by its name: within --bridge/--router when \
            given, else among all ports (if only one has that name).

            Examples:
              hive port create web-uplink --bridge web
              hive port create to-web --router edge --address 10.0.1.1/24
              hive port link to-web web-uplink
              hive port create vm1 --bridge web --address 10.0.1.11
              hive port create vm2 --bridge web --address auto
              hive port update vm1 --inbound-chain web-in
              hive port list --bridge web
              hive port unlink to-web
              hive port delete vm1 --bridge web
            """,
        subcommands: [Create.self, ListCommand<Port>.self, ShowCommand<Port>.self, PortStatusCommand.self, Update.self, DeleteCommand<Port>.self,
                      Link.self, Unlink.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a port on a bridge, or on a router with its address.",
            discussion: """
                Router ports need --address, the router's own address with the subnet \
                length. A VM's bridge port takes its addresses with --address: each \
                inside a DHCP subnet of the bridge (`hive dhcp create`), or `auto` \
                for the first free one of a subnet's range. The API generates a MAC \
                unless --mac is given.

                Examples:
                  hive port create vm1 --bridge web --address 10.0.1.11
                  hive port create vm2 --bridge web --address auto --mac 02:00:00:00:01:12
                  hive port create lb1 --bridge web --address 10.0.1.21 \\
                      --allowed-address 10.0.1.250=02:00:00:00:00:99
                  hive port create fw1 --bridge web --address 10.0.1.30 \\
                      --port-security off --mac-limit 16
                  hive port create vm3 --bridge web --address auto \\
                      --security-group web --security-group ssh
                  hive port create uplink --bridge web
                  hive port create to-web --router edge --address 10.0.1.1/24
                  hive port create to-db --router edge --address 10.0.2.1/24 \\
                      --mac 02:00:00:00:02:01
                """)

        @Argument(help: "The port's name, unique on its device (optional).")
        var name: String?
        @Option(help: ArgumentHelp("The bridge to add the port to (name or id).", valueName: "bridge"))
        var bridge: String?
        @Option(help: ArgumentHelp("The router to add the port to (name or id).", valueName: "router"))
        var router: String?
        @OptionGroup var addressing: PortAddressOptions
        @Option(help: "The port's MAC (default: generated).", transform: Parse.mac)
        var mac: EthernetAddress?
        @Option(name: .customLong("port-group"), help: ArgumentHelp("A port group to join (name or id); repeatable.", valueName: "group"))
        var portGroups: [String] = []
        @Option(name: .customLong("security-group"),
                help: ArgumentHelp("Bridge ports with port security: a security group filtering the port (name or id); repeatable.", valueName: "group"))
        var securityGroups: [String] = []
        @OptionGroup var settings: DeviceSettings
        @Option(help: "The owning tenant (admin token only; a tenant token always creates in its own tenant).")
        var tenant: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func validate() throws {
            switch (bridge, router) {
            case (nil, nil): throw ValidationError("give the port's device: --bridge NAME or --router NAME --address 10.0.0.1/24")
            case (.some, .some): throw ValidationError("give --bridge or --router, not both: a port belongs to one device")
            case (nil, .some) where addressing.addresses.isEmpty:
                throw ValidationError("a router port needs --address, the router's address on the subnet, like --address 10.0.1.1/24")
            case (nil, .some): try addressing.check(for: .router)
            case (.some, nil): try addressing.check(for: .bridge)
            }
        }

        func run() async throws {
            try await Port.create(connection, output) { resolver in
                var port: Port
                if let router {
                    port = Port(tenantId: tenant, deviceId: try await resolver.id(router, Router.self).uuid, deviceKind: .router, name: name)
                } else if let bridge {
                    port = Port(tenantId: tenant, bridge: try await resolver.id(bridge, Bridge.self), name: name)
                } else {
                    throw CLIError("give --bridge or --router")
                }
                port.mac = mac
                try addressing.apply(to: &port)
                for group in portGroups { port.portGroupIds.append(try await resolver.id(group, PortGroup.self)) }
                for group in securityGroups { port.securityGroupIds.append(try await resolver.id(group, SecurityGroup.self)) }
                try await settings.apply(to: &port, resolver)
                return port
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a port's name, chains, port groups, addresses, MAC or port security.",
            discussion: """
                Only the options given change. `none` removes a chain. On a bridge \
                port, --address replaces the fixed IPs, --allowed-address the \
                allowed pairs and --security-group the security groups; \
                --no-addresses, --no-allowed-addresses and --no-security-groups \
                remove them.

                Examples:
                  hive port update vm1 --inbound-chain web-in --outbound-chain web-out
                  hive port update vm1 --add-port-group web-servers
                  hive port update vm1 --address 10.0.1.11 --address 10.0.1.12
                  hive port update lb1 --allowed-address 10.0.1.250=02:00:00:00:00:99 \\
                      --allowed-address 10.0.2.0/24
                  hive port update fw1 --port-security off --mac-limit 256
                  hive port update vm1 --no-allowed-addresses --port-security on
                  hive port update vm1 --security-group web --security-group ssh
                  hive port update fw1 --no-security-groups --port-security off
                  hive port update to-web --router edge --address 10.0.1.254/24
                  hive port update vm1 --inbound-chain none
                """)

        @Argument(help: "The port's name or id.")
        var port: String
        @OptionGroup var scope: PortScope
        @Option(help: "A new name.")
        var name: String?
        @OptionGroup var addressing: PortAddressOptions
        @Flag(help: "Bridge ports: remove every fixed IP.")
        var noAddresses = false
        @Flag(help: "Bridge ports: remove every allowed address pair.")
        var noAllowedAddresses = false
        @Option(help: "A new MAC.", transform: Parse.mac)
        var mac: EthernetAddress?
        @Option(help: ArgumentHelp("Join a port group (name or id); repeatable.", valueName: "group"))
        var addPortGroup: [String] = []
        @Option(help: ArgumentHelp("Leave a port group (name or id); repeatable.", valueName: "group"))
        var removePortGroup: [String] = []
        @Option(name: .customLong("security-group"),
                help: ArgumentHelp("Bridge ports: the security groups, replacing the port's (name or id); repeatable.", valueName: "group"))
        var securityGroups: [String] = []
        @Flag(help: "Bridge ports: take the port out of every security group.")
        var noSecurityGroups = false
        @OptionGroup var settings: DeviceSettings
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func validate() throws {
            if noAddresses && !addressing.addresses.isEmpty {
                throw ValidationError("give --address (replaces the addresses) or --no-addresses (removes them), not both")
            }
            if noAllowedAddresses && !addressing.allowedAddresses.isEmpty {
                throw ValidationError("give --allowed-address (replaces the pairs) or --no-allowed-addresses (removes them), not both")
            }
            if noSecurityGroups && !securityGroups.isEmpty {
                throw ValidationError("give --security-group (replaces the groups) or --no-security-groups (removes them), not both")
            }
        }

        func run() async throws {
            guard name != nil || mac != nil || !addPortGroup.isEmpty || !removePortGroup.isEmpty
                    || settings.changesAnything || addressing.changesAnything || noAddresses || noAllowedAddresses
                    || !securityGroups.isEmpty || noSecurityGroups else {
                throw CLIError("""
                    nothing to change: give --name, --address, --no-addresses, --allowed-address, \
                    --no-allowed-addresses, --port-security, --mac-limit, --mac, --add-port-group, \
                    --remove-port-group, --security-group, --no-security-groups, --admin-state, \
                    --inbound-chain or --outbound-chain
                    """)
            }
            try await Port.update(port, scope, connection, output) { updated, resolver in
                if let name { updated.name = name }
                try addressing.apply(to: &updated)
                if noAddresses || noAllowedAddresses {
                    guard updated.deviceKind == .bridge else {
                        throw CLIError("--no-addresses and --no-allowed-addresses are for bridge ports; \(port) is a router port")
                    }
                    if noAddresses { updated.fixedIPs = [] }
                    if noAllowedAddresses { updated.allowedAddressPairs = [] }
                }
                if let mac { updated.mac = mac }
                for group in addPortGroup {
                    let id = try await resolver.id(group, PortGroup.self)
                    if !updated.portGroupIds.contains(id) { updated.portGroupIds.append(id) }
                }
                for group in removePortGroup {
                    let id = try await resolver.id(group, PortGroup.self)
                    updated.portGroupIds.removeAll { $0 == id }
                }
                if noSecurityGroups { updated.securityGroupIds = [] }
                if !securityGroups.isEmpty {
                    updated.securityGroupIds = []
                    for group in securityGroups { updated.securityGroupIds.append(try await resolver.id(group, SecurityGroup.self)) }
                }
                try await settings.apply(to: &updated, resolver)
            }
        }
    }

    struct Link: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Link two ports of different devices with a virtual wire.",
            discussion: """
                Both ports become interior. Typical: a router port to a bridge port.

                Examples:
                  hive port link to-web web-uplink
                  hive port link uplink uplink --router edge --peer-bridge web
                """)

        @Argument(help: "One port's name or id.")
        var port: String
        @Argument(help: "The other port's name or id.")
        var peer: String
        @OptionGroup var scope: PortScope
        @Option(help: ArgumentHelp("The bridge the peer port is on, to find it by name.", valueName: "bridge"))
        var peerBridge: String?
        @Option(help: ArgumentHelp("The router the peer port is on, to find it by name.", valueName: "router"))
        var peerRouter: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let resolver = Resolver(client)
            let first = try await resolver.portID(port, bridge: scope.bridge, router: scope.router)
            let second = try await resolver.portID(peer, bridge: peerBridge, router: peerRouter)
            let linked = try await explainingFields(["peerId": "PEER"]) { try await client.link(first, to: second) }
            try await Printer(output, client).object(linked)
        }
    }

    struct Unlink: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Unlink a port from its peer; both become exterior.",
            discussion: """
                Example:
                  hive port unlink to-web
                """)

        @Argument(help: "The port's name or id.")
        var port: String
        @OptionGroup var scope: PortScope
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let id = try await Resolver(client).portID(port, bridge: scope.bridge, router: scope.router)
            let unlinked = try await client.unlink(id)
            try await Printer(output, client).object(unlinked)
        }
    }
}

extension Port: CLIResource {
    static let fieldFlags = [
        "name": "NAME", "tenantId": "--tenant", "deviceId": "--bridge/--router", "address": "--address",
        "subnet": "--address", "mac": "--mac", "inboundChainId": "--inbound-chain", "outboundChainId": "--outbound-chain",
        "portGroupIds": "--port-group", "peerId": "PEER", "adminStateUp": "--admin-state",
        "fixedIPs": "--address", "allowedAddressPairs": "--allowed-address", "portSecurity": "--port-security",
        "macLimit": "--mac-limit", "securityGroupIds": "--security-group",
    ]
    static var emptyListHint: String { "No ports. Create one with: hive port create NAME --bridge BRIDGE" }
    static var referenceHelp: String { "The port's name or id." }
    static var listAbstract: String { "List ports, all or those of one bridge or router." }
    static var listDiscussion: String {
        """
        Examples:
          hive port list
          hive port list --bridge web
          hive port list --router edge --json
        """
    }
    static var showAbstract: String { "Show a port, its link and its binding, and where it lives now (`hive port status`)." }
    static var deleteDiscussion: String { "Unlink it first if it is linked; its binding and the routes leaving by it go with it." }

    static func find(_ reference: String, _ scope: PortScope, _ resolver: Resolver) async throws -> Revisioned<Port> {
        try await resolver.port(reference, bridge: scope.bridge, router: scope.router)
    }

    static func list(_ filter: PortListFilter, _ resolver: Resolver) async throws -> [Revisioned<Port>] {
        if let bridge = filter.bridge { return try await resolver.client.ports(onDevice: try await resolver.id(bridge, Bridge.self).uuid) }
        if let router = filter.router { return try await resolver.client.ports(onDevice: try await resolver.id(router, Router.self).uuid) }
        return try await resolver.client.list(Port.self)
    }

    static func sections(_ item: Revisioned<Port>, _ printer: Printer) async throws -> [(String, String)] {
        [await PortStatusText.section(printer.client, item.object.id)]
    }
}

/// `hive port list --bridge|--router`.
struct PortListFilter: ParsableArguments {
    @Option(help: ArgumentHelp("Only this bridge's ports (name or id).", valueName: "bridge"))
    var bridge: String?
    @Option(help: ArgumentHelp("Only this router's ports (name or id).", valueName: "router"))
    var router: String?

    func validate() throws {
        if bridge != nil && router != nil { throw ValidationError("give --bridge or --router, not both") }
    }
}

/// `--bridge`/`--router` to find a port by name on one device.
struct PortScope: ParsableArguments {
    @Option(help: ArgumentHelp("Find the port by name on this bridge (name or id).", valueName: "bridge"))
    var bridge: String?
    @Option(help: ArgumentHelp("Find the port by name on this router (name or id).", valueName: "router"))
    var router: String?
}
