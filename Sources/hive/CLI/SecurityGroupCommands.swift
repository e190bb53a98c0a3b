import ArgumentParser
import HiveClient
import HiveModel
import HivePacket
import struct HiveModel.Port

struct SecurityGroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "security-group",
        abstract: "Security groups and their rules: create, list, show, update, delete, rule.",
        discussion: """
            A security group is a set of allow rules for the VM ports that list it \
            (`hive port create|update --security-group NAME`), as in OpenStack \
            Neutron: stateful (replies pass), allow-only (a port with groups drops \
            what none of its groups' rules allow), and a rule's remote may be \
            another group (its members' addresses). A new group allows all egress; \
            one named `default` also admits its own members. Groups need port \
            security on.

            Examples:
              hive security-group create web --description "web servers"
              hive security-group rule create --group web --protocol tcp --port 80 \\
                  --remote 0.0.0.0/0
              hive security-group rule create --group web --protocol tcp --port 22 \\
                  --remote-group bastion
              hive port update vm1 --security-group web --security-group default
              hive security-group show web
            """,
        subcommands: [Create.self, List.self, Show.self, Update.self, Delete.self, RuleCommand.self])

    static let fieldFlags: [String: String] = ["name": "NAME", "tenantId": "--tenant", "description": "--description"]

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a security group with its initial rules.",
            discussion: """
                The group starts with rules allowing all egress (IPv4 and IPv6); a \
                group named `default` also allows ingress from its own members.

                Examples:
                  hive security-group create web
                  hive security-group create default
                  hive security-group create db --description "database servers"
                """)

        @Argument(help: "The group's name, unique within the tenant.")
        var name: String
        @Option(help: "Free text about the group.")
        var description: String?
        @Option(help: "The owning tenant (admin token only).")
        var tenant: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let group = SecurityGroup(tenantId: tenant, name: name, description: description)
            let created = try await explainingFields(SecurityGroupCommand.fieldFlags) { try await client.create(group) }
            try await SecurityGroupCommand.show(created, client, output)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List security groups.")

        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            await Printer(output, client).list(try await client.list(SecurityGroup.self),
                                               empty: "No security groups. Create one with: hive security-group create NAME")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a security group, its rules and its member ports.")

        @Argument(help: "The group's name or id.")
        var group: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            try await SecurityGroupCommand.show(try await Resolver(client).object(group, SecurityGroup.self), client, output)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rename a security group or change its description.",
            discussion: """
                Rules are added and removed with `hive security-group rule`.

                Example:
                  hive security-group update web --name frontend --description "public web"
                """)

        @Argument(help: "The group's name or id.")
        var group: String
        @Option(help: "A new name.")
        var name: String?
        @Option(help: "A new description (`none` removes it).", transform: Parse.orNone { $0 })
        var description: Removable<String>?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            guard name != nil || description != nil else { throw CLIError("nothing to change: give --name or --description") }
            let client = try connection.client()
            let current = try await Resolver(client).object(group, SecurityGroup.self)
            var updated = current.object
            if let name { updated.name = name }
            if let description { updated.description = description.value }
            let saved = try await explainingFields(["name": "--name", "description": "--description"]) {
                try await client.update(updated, ifRevision: current.revision)
            }
            try await Printer(output, client).object(saved)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a security group and its rules.",
            discussion: "Refused while a port lists it or another group's rule names it as remote group.")

        @Argument(help: "The group's name or id.")
        var group: String
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let item = try await Resolver(client).object(group, SecurityGroup.self)
            try await client.delete(item.object.id, ifRevision: item.revision)
            print("Deleted security group \(item.object.name) (\(item.object.id)) and its rules.")
        }
    }

    /// The group's fields, then its rules and member ports.
    static func show(_ item: Revisioned<SecurityGroup>, _ client: HiveClient, _ output: OutputOptions) async throws {
        let printer = Printer(output, client)
        try await printer.object(item) { _ in
            let rules = try await client.securityGroupRules(of: item.object.id)
            let members = try await client.list(Port.self).filter { $0.object.securityGroupIds.contains(item.object.id) }
            return [("Rules:", await printer.section(rules)), ("Member ports:", await printer.section(members))]
        }
    }
}

extension SecurityGroupCommand {
    struct RuleCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rule",
            abstract: "A security group's allow rules: create, list, delete.",
            discussion: """
                A rule allows one direction's traffic of one IP version, optionally \
                only one protocol, port range or ICMP type, and only from (ingress) \
                or to (egress) a network or a group's members. Rules cannot change: \
                delete one and create another.
                """,
            subcommands: [Create.self, List.self, Delete.self])

        static let fieldFlags: [String: String] = [
            "securityGroupId": "--group", "direction": "--direction", "etherType": "--ethertype", "ipProtocol": "--protocol",
            "ports": "--port", "icmpType": "--icmp-type", "icmpCode": "--icmp-code", "remotePrefix": "--remote",
            "remoteGroupId": "--remote-group", "description": "--description",
        ]

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add an allow rule to a security group.",
                discussion: """
                    Without --remote or --remote-group the peer may be anyone. --remote \
                    takes IPv4 networks only: an IPv6 rule has a --remote-group or no remote.

                    Examples:
                      hive security-group rule create --group web --protocol tcp --port 80 \\
                          --remote 0.0.0.0/0
                      hive security-group rule create --group web --protocol tcp --port 8000-8080
                      hive security-group rule create --group web --protocol icmp --icmp-type 8
                      hive security-group rule create --group db --protocol tcp --port 5432 \\
                          --remote-group web
                      hive security-group rule create --group web --ethertype IPv6 \\
                          --protocol icmpv6 --remote-group web
                      hive security-group rule create --group web --direction egress \\
                          --protocol udp --port 53 --remote 10.0.0.2
                    """)

            @Option(help: ArgumentHelp("The security group (name or id).", valueName: "group"))
            var group: String
            @Option(help: "Which traffic: to the port (ingress) or from it (egress).")
            var direction: TrafficDirection = .ingress
            @Option(name: .customLong("ethertype"), help: ArgumentHelp("IPv4 or IPv6 (default IPv4).", valueName: "IPv4|IPv6"),
                    transform: Parse.ruleEtherType)
            var etherType: RuleEtherType = .ipv4
            @Option(name: .customLong("protocol"), help: ArgumentHelp("tcp, udp, icmp, icmpv6, sctp or a number 0-255 (default any).", valueName: "protocol"),
                    transform: Parse.ipProtocol)
            var ipProtocol: UInt8?
            @Option(help: ArgumentHelp("TCP, UDP or SCTP destination port or range, like 80 or 8000-8080.", valueName: "port"),
                    transform: Parse.portRange)
            var port: PortRange?
            @Option(help: ArgumentHelp("ICMP type (with --protocol icmp or icmpv6).", valueName: "n"), transform: Parse.byte)
            var icmpType: UInt8?
            @Option(help: ArgumentHelp("ICMP code (with --icmp-type).", valueName: "n"), transform: Parse.byte)
            var icmpCode: UInt8?
            @Option(help: ArgumentHelp("The peer's IPv4 network, like 0.0.0.0/0 (a bare address is a /32).", valueName: "network"),
                    transform: Parse.prefix)
            var remote: IPv4.Prefix?
            @Option(help: ArgumentHelp("The peer is a member of this security group (name or id).", valueName: "group"))
            var remoteGroup: String?
            @Option(help: "Free text about the rule.")
            var description: String?
            @OptionGroup var output: OutputOptions
            @OptionGroup var connection: ClientOptions

            func validate() throws {
                if remote != nil && remoteGroup != nil {
                    throw ValidationError("give --remote (a network) or --remote-group (a group's members), not both")
                }
            }

            func run() async throws {
                let client = try connection.client()
                let resolver = Resolver(client)
                let rule = SecurityGroupRule(
                    securityGroupId: try await resolver.id(group, SecurityGroup.self), direction: direction, etherType: etherType,
                    ipProtocol: ipProtocol, ports: port, icmpType: icmpType, icmpCode: icmpCode, remotePrefix: remote,
                    remoteGroupId: try await resolver.optionalID(remoteGroup, SecurityGroup.self), description: description)
                let created = try await explainingFields(RuleCommand.fieldFlags) { try await client.create(rule) }
                try await Printer(output, client).object(created)
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List security group rules, all or one group's.",
                discussion: """
                    Examples:
                      hive security-group rule list --group web
                      hive security-group rule list --json
                    """)

            @Option(help: ArgumentHelp("Only this security group's rules (name or id).", valueName: "group"))
            var group: String?
            @OptionGroup var output: OutputOptions
            @OptionGroup var connection: ClientOptions

            func run() async throws {
                let client = try connection.client()
                let rules: [Revisioned<SecurityGroupRule>]
                if let group {
                    rules = try await client.securityGroupRules(of: try await Resolver(client).id(group, SecurityGroup.self))
                } else {
                    rules = try await client.list(SecurityGroupRule.self)
                }
                await Printer(output, client).list(rules, empty: "No security group rules. Create one with: hive security-group rule create --group GROUP ...")
            }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Delete a security group rule.",
                discussion: """
                    Rules have no names: take the id from `hive security-group show GROUP`.

                    Example:
                      hive security-group rule delete 3f2504e0-4f89-11d3-9a0c-0305e82c3301
                    """)

            @Argument(help: "The rule's id.", transform: Parse.securityGroupRuleID)
            var rule: SecurityGroupRuleID
            @OptionGroup var connection: ClientOptions

            func run() async throws {
                let client = try connection.client()
                let item = try await client.get(rule)
                try await client.delete(rule, ifRevision: item.revision)
                print("Deleted security group rule \(rule).")
            }
        }
    }
}

extension TrafficDirection: ExpressibleByArgument {}

extension Parse {
    /// "IPv4" or "IPv6", in any case.
    @Sendable static func ruleEtherType(_ text: String) throws -> RuleEtherType {
        guard let value = RuleEtherType.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
            throw ValueError("expected IPv4 or IPv6")
        }
        return value
    }

    @Sendable static func securityGroupRuleID(_ text: String) throws -> SecurityGroupRuleID {
        guard let id = SecurityGroupRuleID(parsing: text) else {
            throw ValueError("expected a rule id like 3f2504e0-4f89-11d3-9a0c-0305e82c3301 (rules have no names; see `hive security-group show GROUP`)")
        }
        return id
    }
}
