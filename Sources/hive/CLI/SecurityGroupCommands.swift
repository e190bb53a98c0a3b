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
        subcommands: [Create.self, ListCommand<SecurityGroup>.self, ShowCommand<SecurityGroup>.self, Update.self,
                      DeleteCommand<SecurityGroup>.self, RuleCommand.self])

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
            try await SecurityGroup.create(connection, output, withSections: true) { _ in
                SecurityGroup(tenantId: tenant, name: name, description: description)
            }
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
            try await SecurityGroup.update(group, connection, output, flags: ["name": "--name", "description": "--description"]) { updated, _ in
                if let name { updated.name = name }
                if let description { updated.description = description.value }
            }
        }
    }
}

extension SecurityGroup: CLIResource {
    static let fieldFlags = ["name": "NAME", "tenantId": "--tenant", "description": "--description"]
    static var emptyListHint: String { "No security groups. Create one with: hive security-group create NAME" }
    static var referenceHelp: String { "The group's name or id." }
    static var showAbstract: String { "Show a security group, its rules and its member ports." }
    static var deleteAbstract: String { "Delete a security group and its rules." }
    static var deleteDiscussion: String { "Refused while a port lists it or another group's rule names it as remote group." }

    static func sections(_ item: Revisioned<SecurityGroup>, _ printer: Printer) async throws -> [(String, String)] {
        let rules = try await printer.client.securityGroupRules(of: item.object.id)
        let members = try await printer.client.list(Port.self).filter { $0.object.securityGroupIds.contains(item.object.id) }
        return [("Rules:", await printer.section(rules)), ("Member ports:", await printer.section(members))]
    }

    static func deletedText(_ item: Revisioned<SecurityGroup>) -> String {
        "Deleted security group \(item.object.name) (\(item.object.id)) and its rules."
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
            subcommands: [Create.self, ListCommand<SecurityGroupRule>.self, DeleteCommand<SecurityGroupRule>.self])

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
                try await SecurityGroupRule.create(connection, output) { resolver in
                    SecurityGroupRule(
                        securityGroupId: try await resolver.id(group, SecurityGroup.self), direction: direction, etherType: etherType,
                        ipProtocol: ipProtocol, ports: port, icmpType: icmpType, icmpCode: icmpCode, remotePrefix: remote,
                        remoteGroupId: try await resolver.optionalID(remoteGroup, SecurityGroup.self), description: description)
                }
            }
        }
    }
}

extension SecurityGroupRule: CLIResource {
    static var noun: String { "security group rule" }
    static let fieldFlags = [
        "securityGroupId": "--group", "direction": "--direction", "etherType": "--ethertype", "ipProtocol": "--protocol",
        "ports": "--port", "icmpType": "--icmp-type", "icmpCode": "--icmp-code", "remotePrefix": "--remote",
        "remoteGroupId": "--remote-group", "description": "--description",
    ]
    static var emptyListHint: String { "No security group rules. Create one with: hive security-group rule create --group GROUP ..." }
    static var referenceHelp: String { "The rule's id." }
    static var listAbstract: String { "List security group rules, all or one group's." }
    static var listDiscussion: String {
        """
        Examples:
          hive security-group rule list --group web
          hive security-group rule list --json
        """
    }
    static var deleteAbstract: String { "Delete a security group rule." }
    static var deleteDiscussion: String {
        """
        Rules have no names: take the id from `hive security-group show GROUP`.

        Example:
          hive security-group rule delete 3f2504e0-4f89-11d3-9a0c-0305e82c3301
        """
    }

    static func find(_ reference: String, _ scope: NoOptions, _ resolver: Resolver) async throws -> Revisioned<SecurityGroupRule> {
        try await byID(reference, resolver, list: "hive security-group show GROUP")
    }

    static func list(_ filter: SecurityGroupFilter, _ resolver: Resolver) async throws -> [Revisioned<SecurityGroupRule>] {
        guard let group = filter.group else { return try await resolver.client.list(SecurityGroupRule.self) }
        return try await resolver.client.securityGroupRules(of: try await resolver.id(group, SecurityGroup.self))
    }
}

/// `hive security-group rule list --group`.
struct SecurityGroupFilter: ParsableArguments {
    @Option(help: ArgumentHelp("Only this security group's rules (name or id).", valueName: "group"))
    var group: String?
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
}
