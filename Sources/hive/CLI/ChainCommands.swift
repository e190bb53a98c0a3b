import ArgumentParser
import HiveClient
import HiveModel

struct ChainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chain",
        abstract: "Firewall chains (ordered rule lists): create, list, show, update, delete.",
        discussion: """
            A chain is applied where it is attached: to a port, bridge or router, \
            inbound (packets entering the device through it: from the VM, for a \
            VM's port) or outbound (packets leaving by it: to the VM). Its rules \
            are tried in order and the first matching rule's action decides \
            (continue goes on to the next). Add rules with `hive rule create`. \
            A chain with a --ct-state rule tracks connections (both directions \
            of the port or device it is attached to): "established" matches the \
            packets of a connection that has seen a reply, both ways.

            Examples:
              hive chain create web-in
              hive rule create --chain web-in --ct-state established --action accept
              hive rule create --chain web-in --protocol tcp --dst-port 80 --action accept
              hive rule create --chain web-in --action drop
              hive port update vm1 --outbound-chain web-in    # what reaches vm1
              hive chain show web-in
            """,
        subcommands: [Create.self, ListCommand<Chain>.self, ShowCommand<Chain>.self, Update.self, DeleteCommand<Chain>.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an empty chain.",
            discussion: """
                Example:
                  hive chain create web-in
                """)

        @Argument(help: "The chain's name, unique within the tenant.")
        var name: String
        @Option(help: "The owning tenant (admin token only; a tenant token always creates in its own tenant).")
        var tenant: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            try await Chain.create(connection, output) { _ in Chain(tenantId: tenant, name: name) }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rename a chain.",
            discussion: "Rules are added and removed with `hive rule create` and `hive rule delete`.")

        @Argument(help: "The chain's name or id.")
        var chain: String
        @Option(help: "The new name.")
        var name: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            try await Chain.update(chain, connection, output) { updated, _ in updated.name = name }
        }
    }
}

extension Chain: CLIResource {
    static let fieldFlags = ["name": "NAME", "tenantId": "--tenant"]
    static var emptyListHint: String { "No chains. Create one with: hive chain create NAME" }
    static var referenceHelp: String { "The chain's name or id." }
    static var showAbstract: String { "Show a chain and its rules in order." }
    static var deleteAbstract: String { "Delete a chain and its rules." }
    static var deleteDiscussion: String {
        "Refused while a device or port uses the chain or a rule jumps to it; detach it first (`--inbound-chain none`)."
    }

    static func sections(_ item: Revisioned<Chain>, _ printer: Printer) async throws -> [(String, String)] {
        [("Rules (first match decides):", await RuleTable.render(try await printer.client.rules(of: item.object.id), printer.names))]
    }
}

/// Rules of one chain with their positions.
enum RuleTable {
    static func render(_ rules: [Revisioned<Rule>], _ names: NameBook) async -> String {
        guard !rules.isEmpty else { return "none" }
        var rows: [[String]] = []
        for (position, rule) in rules.enumerated() {
            let item = rule.object
            rows.append(["\(position)", item.id.description, await Rule.actionText(item.action, names),
                         await ConditionText.describe(item.conditions, names)])
        }
        return Table(headers: ["POS", "ID", "ACTION", "CONDITIONS"], rows: rows).rendered
    }
}
