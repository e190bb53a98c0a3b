import ArgumentParser
import HiveClient
import HiveModel
import HivePacket
import struct HiveModel.Port

struct PortGroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "port-group",
        abstract: "Named sets of ports for rules: create, list, show, update, delete, add-port, remove-port.",
        discussion: """
            Rules match a whole group with --in-port-group/--out-port-group. A port \
            joins with `hive port-group add-port` (or `hive port update --add-port-group`).

            Examples:
              hive port-group create web-servers
              hive port-group add-port web-servers vm1
              hive rule create --chain web-in --in-port-group web-servers --action accept
              hive port-group show web-servers
            """,
        subcommands: [Create.self, ListCommand<PortGroup>.self, ShowCommand<PortGroup>.self, Update.self, DeleteCommand<PortGroup>.self,
                      AddPort.self, RemovePort.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a port group.",
            discussion: """
                Examples:
                  hive port-group create web-servers
                  hive port-group create lb-backends --stateful on
                """)

        @Argument(help: "The group's name, unique within the tenant.")
        var name: String
        @Option(help: "Share connection tracking across the members, so replies may return by another member (default off).")
        var stateful: Switch = .off
        @Option(help: "The owning tenant (admin token only).")
        var tenant: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            try await PortGroup.create(connection, output) { _ in PortGroup(tenantId: tenant, name: name, stateful: stateful.isOn) }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Rename a port group or change --stateful.")

        @Argument(help: "The group's name or id.")
        var group: String
        @Option(help: "A new name.")
        var name: String?
        @Option(help: "Share connection tracking across the members.")
        var stateful: Switch?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            guard name != nil || stateful != nil else { throw CLIError("nothing to change: give --name or --stateful") }
            try await PortGroup.update(group, connection, output) { updated, _ in
                if let name { updated.name = name }
                if let stateful { updated.stateful = stateful.isOn }
            }
        }
    }

    struct AddPort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-port",
            abstract: "Make a port a member of the group.",
            discussion: """
                Example:
                  hive port-group add-port web-servers vm1 --bridge web
                """)

        @Argument(help: "The group's name or id.")
        var group: String
        @Argument(help: "The port's name or id.")
        var port: String
        @OptionGroup var scope: PortScope
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            try await Port.update(port, scope, connection, output, flags: [:]) { updated, resolver in
                let groupID = try await resolver.id(group, PortGroup.self)
                guard !updated.portGroupIds.contains(groupID) else {
                    throw CLIError("port \(updated.name ?? updated.id.description) is already in port group \(group)")
                }
                updated.portGroupIds.append(groupID)
            }
        }
    }

    struct RemovePort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-port",
            abstract: "Take a port out of the group.")

        @Argument(help: "The group's name or id.")
        var group: String
        @Argument(help: "The port's name or id.")
        var port: String
        @OptionGroup var scope: PortScope
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            try await Port.update(port, scope, connection, output, flags: [:]) { updated, resolver in
                let groupID = try await resolver.id(group, PortGroup.self)
                guard updated.portGroupIds.contains(groupID) else {
                    throw CLIError("port \(updated.name ?? updated.id.description) is not in port group \(group)")
                }
                updated.portGroupIds.removeAll { $0 == groupID }
            }
        }
    }
}

struct IPGroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ip-group",
        abstract: "Named sets of IP networks for rules: create, list, show, update, delete.",
        discussion: """
            Rules match a whole group with --src-ip-group/--dst-ip-group, so one \
            edit updates every rule using it.

            Examples:
              hive ip-group create office --address 192.0.2.0/24 --address 198.51.100.7
              hive ip-group update office --add-address 203.0.113.0/25
              hive rule create --chain web-in --src-ip-group office \\
                  --protocol tcp --dst-port 22 --action accept
            """,
        subcommands: [Create.self, ListCommand<IPAddressGroup>.self, ShowCommand<IPAddressGroup>.self, Update.self,
                      DeleteCommand<IPAddressGroup>.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an IP address group.",
            discussion: """
                Example:
                  hive ip-group create office --address 192.0.2.0/24 --address 198.51.100.7
                """)

        @Argument(help: "The group's name, unique within the tenant.")
        var name: String
        @Option(name: .customLong("address"), help: ArgumentHelp("A member network (a bare address is a /32); repeatable.", valueName: "network"),
                transform: Parse.prefix)
        var addresses: [IPv4.Prefix] = []
        @Option(help: "The owning tenant (admin token only).")
        var tenant: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            try await IPAddressGroup.create(connection, output) { _ in IPAddressGroup(tenantId: tenant, name: name, addresses: addresses) }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rename an IP address group or change its networks.",
            discussion: """
                Example:
                  hive ip-group update office --add-address 203.0.113.0/25 \\
                      --remove-address 198.51.100.7
                """)

        @Argument(help: "The group's name or id.")
        var group: String
        @Option(help: "A new name.")
        var name: String?
        @Option(help: ArgumentHelp("Add a network; repeatable.", valueName: "network"), transform: Parse.prefix)
        var addAddress: [IPv4.Prefix] = []
        @Option(help: ArgumentHelp("Remove a network; repeatable.", valueName: "network"), transform: Parse.prefix)
        var removeAddress: [IPv4.Prefix] = []
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            guard name != nil || !addAddress.isEmpty || !removeAddress.isEmpty else {
                throw CLIError("nothing to change: give --name, --add-address or --remove-address")
            }
            try await IPAddressGroup.update(group, connection, output, flags: ["name": "--name", "addresses": "--add-address"]) { updated, _ in
                if let name { updated.name = name }
                for address in removeAddress {
                    guard updated.addresses.contains(address) else {
                        let existing = updated.addresses.map(\.description).joined(separator: ", ")
                        throw CLIError("--remove-address \(address): the group has no such network (it has \(existing))")
                    }
                    updated.addresses.removeAll { $0 == address }
                }
                for address in addAddress where !updated.addresses.contains(address) { updated.addresses.append(address) }
            }
        }
    }
}

extension PortGroup: CLIResource {
    static let fieldFlags = ["name": "NAME", "tenantId": "--tenant", "stateful": "--stateful"]
    static var emptyListHint: String { "No port groups. Create one with: hive port-group create NAME" }
    static var referenceHelp: String { "The group's name or id." }
    static var showAbstract: String { "Show a port group and its member ports." }
    static var deleteDiscussion: String { "Refused while a port is a member or a rule names it." }

    static func sections(_ item: Revisioned<PortGroup>, _ printer: Printer) async throws -> [(String, String)] {
        let members = try await printer.client.list(Port.self).filter { $0.object.portGroupIds.contains(item.object.id) }
        return [("Member ports:", await printer.section(members))]
    }
}

extension IPAddressGroup: CLIResource {
    static let fieldFlags = ["name": "NAME", "tenantId": "--tenant", "addresses": "--address"]
    static var emptyListHint: String { "No IP address groups. Create one with: hive ip-group create NAME --address NETWORK" }
    static var referenceHelp: String { "The group's name or id." }
    static var showAbstract: String { "Show an IP address group." }
    static var deleteAbstract: String { "Delete an IP address group." }
    static var deleteDiscussion: String { "Refused while a rule names it." }
}
