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
        subcommands: [Create.self, List.self, Show.self, Update.self, Delete.self])

    static let fieldFlags: [String: String] = ["name": "NAME", "tenantId": "--tenant"]

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
            let client = try connection.client()
            let chain = Chain(tenantId: tenant, name: name)
            let created = try await explainingFields(ChainCommand.fieldFlags) { try await client.create(chain) }
            try await Printer(output, client).object(created)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List chains.")

        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            await Printer(output, client).list(try await client.list(Chain.self),
                                               empty: "No chains. Create one with: hive chain create NAME")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a chain and its rules in order.")

        @Argument(help: "The chain's name or id.")
        var chain: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let item = try await Resolver(client).object(chain, Chain.self)
            try await Printer(output, client).object(item) { names in
                [("Rules (first match decides):", await RuleTable.render(try await client.rules(of: item.object.id), names))]
            }
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
            let client = try connection.client()
            let current = try await Resolver(client).object(chain, Chain.self)
            var updated = current.object
            updated.name = name
            let saved = try await explainingFields(ChainCommand.fieldFlags) {
                try await client.update(updated, ifRevision: current.revision)
            }
            try await Printer(output, client).object(saved)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a chain and its rules.",
            discussion: "Refused while a device or port uses the chain or a rule jumps to it; detach it first (`--inbound-chain none`).")

        @Argument(help: "The chain's name or id.")
        var chain: String
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let item = try await Resolver(client).object(chain, Chain.self)
            try await client.delete(item.object.id, ifRevision: item.revision)
            print("Deleted chain \(item.object.name) (\(item.object.id)).")
        }
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
