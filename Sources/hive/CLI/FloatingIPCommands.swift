import ArgumentParser
import HiveClient
import HiveModel
import HivePacket

extension FloatingIP: Nameable, CLIResource {
    static var noun: String { "floating IP" }
    static var command: String { "floating-ip" }
    /// A floating IP is named by its address.
    var displayName: String? { address.description }
    static var emptyListHint: String { "No floating IPs. Create one with: hive floating-ip create --router ROUTER --address ADDRESS" }
    static var referenceHelp: String { "The floating IP's address or id." }
    static let fieldFlags = [
        "routerId": "--router", "address": "--address", "portId": "--port", "fixedAddress": "--fixed-address",
        "tenantId": "--tenant",
    ]
}

struct FloatingIPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "floating-ip",
        abstract: "Public addresses of VMs: create, list, show, update (move, release), delete.",
        discussion: """
            A floating IP is an address of the outside network that a router \
            translates to a VM's fixed IP: packets to it reach the VM, and the VM's \
            packets leaving by the router's external ports come from it. Without \
            --port it is reserved for the tenant and unused. A floating IP is named \
            by its address or id.

            Ports are named as elsewhere: by id, by name, or as DEVICE/PORT \
            (web/vm1) when names repeat.

            Examples:
              hive floating-ip create --router provider --address 198.51.100.10 --port vm1
              hive floating-ip create --router provider --address 198.51.100.11
              hive floating-ip update 198.51.100.10 --port vm2
              hive floating-ip update 198.51.100.10 --no-port
              hive floating-ip list
              hive floating-ip delete 198.51.100.10
            """,
        subcommands: [Create.self, ListCommand<FloatingIP>.self, ShowCommand<FloatingIP>.self, Update.self, DeleteCommand<FloatingIP>.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a floating IP, optionally for a VM's port.",
            discussion: """
                Examples:
                  hive floating-ip create --router provider --address 198.51.100.10 --port vm1
                  hive floating-ip create --router provider --address 198.51.100.10 \\
                      --port web/vm1 --fixed-address 10.0.1.5
                """)

        @Option(help: ArgumentHelp("The router that translates it, where packets to the address arrive (name or id).", valueName: "router"))
        var router: String
        @Option(help: ArgumentHelp("The public address; unique across tenants.", valueName: "address"), transform: Parse.address)
        var address: IPv4.Address
        @Option(help: ArgumentHelp("The VM's port (a bridge port with a fixed IP; name, DEVICE/PORT or id).", valueName: "port"))
        var port: String?
        @Option(help: ArgumentHelp("Which of the port's fixed IPs (default: its first).", valueName: "address"), transform: Parse.address)
        var fixedAddress: IPv4.Address?
        @Option(help: "The owning tenant (admin token only).")
        var tenant: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func validate() throws {
            if fixedAddress != nil && port == nil { throw ValidationError("--fixed-address goes with --port, the port whose fixed IP it is") }
        }

        func run() async throws {
            try await FloatingIP.create(connection, output) { resolver in
                var floatingIP = FloatingIP(tenantId: tenant, routerId: try await resolver.id(router, Router.self), address: address)
                if let port { floatingIP.portId = try await resolver.portID(port) }
                floatingIP.fixedAddress = fixedAddress
                return floatingIP
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a floating IP to another port, or release it.",
            discussion: """
                Examples:
                  hive floating-ip update 198.51.100.10 --port vm2
                  hive floating-ip update 198.51.100.10 --port vm2 --fixed-address 10.0.1.7
                  hive floating-ip update 198.51.100.10 --no-port
                """)

        @Argument(help: "The floating IP's address or id.")
        var floatingIP: String
        @Option(help: ArgumentHelp("The port to move it to (name, DEVICE/PORT or id).", valueName: "port"))
        var port: String?
        @Option(help: ArgumentHelp("Which of the port's fixed IPs (default: its first).", valueName: "address"), transform: Parse.address)
        var fixedAddress: IPv4.Address?
        @Flag(help: "Release it: no port, the address stays reserved.")
        var noPort = false
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func validate() throws {
            if noPort && (port != nil || fixedAddress != nil) {
                throw ValidationError("give --port (moves it) or --no-port (releases it), not both")
            }
            guard noPort || port != nil || fixedAddress != nil else {
                throw ValidationError("nothing to change: give --port, --fixed-address or --no-port")
            }
        }

        func run() async throws {
            try await FloatingIP.update(floatingIP, connection, output) { updated, resolver in
                if noPort {
                    updated.portId = nil
                    updated.fixedAddress = nil
                }
                if let port {
                    updated.portId = try await resolver.portID(port)
                    updated.fixedAddress = nil
                }
                if let fixedAddress { updated.fixedAddress = fixedAddress }
            }
        }
    }
}
