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
        subcommands: [Create.self, List.self, Show.self, Update.self, Delete.self, AddPort.self, RemovePort.self])

    static let fieldFlags: [String: String] = ["name": "NAME", "tenantId": "--tenant", "stateful": "--stateful"]

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
            let client = try connection.client()
            let group = PortGroup(tenantId: tenant, name: name, stateful: stateful.isOn)
            let created = try await explainingFields(PortGroupCommand.fieldFlags) { try await client.create(group) }
            try await Printer(output, client).object(created)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List port groups.")

        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            await Printer(output, client).list(try await client.list(PortGroup.self),
                                               empty: "No port groups. Create one with: hive port-group create NAME")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a port group and its member ports.")

        @Argument(help: "The group's name or id.")
        var group: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let item = try await Resolver(client).object(group, PortGroup.self)
            let printer = Printer(output, client)
            try await printer.object(item) { _ in
                let members = try await client.list(Port.self).filter { $0.object.portGroupIds.contains(item.object.id) }
                return [("Member ports:", await printer.section(members))]
            }
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
            let client = try connection.client()
            let current = try await Resolver(client).object(group, PortGroup.self)
            var updated = current.object
            if let name { updated.name = name }
            if let stateful { updated.stateful = stateful.isOn }
            let saved = try await explainingFields(PortGroupCommand.fieldFlags) {
                try await client.update(updated, ifRevision: current.revision)
            }
            try await Printer(output, client).object(saved)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a port group.",
            discussion: "Refused while a port is a member or a rule names it.")

        @Argument(help: "The group's name or id.")
        var group: String
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let item = try await Resolver(client).object(group, PortGroup.self)
            try await client.delete(item.object.id, ifRevision: item.revision)
            print("Deleted port group \(item.object.name) (\(item.object.id)).")
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
            let client = try connection.client()
            let resolver = Resolver(client)
            let groupID = try await resolver.id(group, PortGroup.self)
            let current = try await resolver.port(port, bridge: scope.bridge, router: scope.router)
            guard !current.object.portGroupIds.contains(groupID) else {
                throw CLIError("port \(current.object.name ?? current.object.id.description) is already in port group \(group)")
            }
            var updated = current.object
            updated.portGroupIds.append(groupID)
            try await Printer(output, client).object(try await client.update(updated, ifRevision: current.revision))
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
            let client = try connection.client()
            let resolver = Resolver(client)
            let groupID = try await resolver.id(group, PortGroup.self)
            let current = try await resolver.port(port, bridge: scope.bridge, router: scope.router)
            guard current.object.portGroupIds.contains(groupID) else {
                throw CLIError("port \(current.object.name ?? current.object.id.description) is not in port group \(group)")
            }
            var updated = current.object
            updated.portGroupIds.removeAll { $0 == groupID }
            try await Printer(output, client).object(try await client.update(updated, ifRevision: current.revision))
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
        subcommands: [Create.self, List.self, Show.self, Update.self, Delete.self])

    static let fieldFlags: [String: String] = ["name": "NAME", "tenantId": "--tenant", "addresses": "--address"]

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
            let client = try connection.client()
            let group = IPAddressGroup(tenantId: tenant, name: name, addresses: addresses)
            let created = try await explainingFields(IPGroupCommand.fieldFlags) { try await client.create(group) }
            try await Printer(output, client).object(created)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List IP address groups.")

        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            await Printer(output, client).list(try await client.list(IPAddressGroup.self),
                                               empty: "No IP address groups. Create one with: hive ip-group create NAME --address NETWORK")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an IP address group.")

        @Argument(help: "The group's name or id.")
        var group: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            try await Printer(output, client).object(try await Resolver(client).object(group, IPAddressGroup.self))
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
            let client = try connection.client()
            let current = try await Resolver(client).object(group, IPAddressGroup.self)
            var updated = current.object
            if let name { updated.name = name }
            for address in removeAddress {
                guard updated.addresses.contains(address) else {
                    throw CLIError("--remove-address \(address): the group has no such network (it has \(updated.addresses.map(\.description).joined(separator: ", ")))")
                }
                updated.addresses.removeAll { $0 == address }
            }
            for address in addAddress where !updated.addresses.contains(address) { updated.addresses.append(address) }
            let saved = try await explainingFields(["name": "--name", "addresses": "--add-address"]) {
                try await client.update(updated, ifRevision: current.revision)
            }
            try await Printer(output, client).object(saved)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete an IP address group.",
            discussion: "Refused while a rule names it.")

        @Argument(help: "The group's name or id.")
        var group: String
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let item = try await Resolver(client).object(group, IPAddressGroup.self)
            try await client.delete(item.object.id, ifRevision: item.revision)
            print("Deleted IP address group \(item.object.name) (\(item.object.id)).")
        }
    }
}
