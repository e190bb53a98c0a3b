import ArgumentParser
import HiveClient
import HiveModel

struct RuleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rule",
        abstract: "Rules in chains: create (at a position), list, show, delete.",
        discussion: """
            A rule has conditions and an action. It matches a packet when every \
            condition given matches; no conditions match every packet. Actions: \
            accept, drop, reject (drop and answer), jump (to --jump-chain; its \
            return comes back), return, continue (go on to the next rule), and on \
            router chains snat and dnat (translate a new connection's source or \
            destination to --to, its replies back, and accept).

            Examples:
              hive rule create --chain web-in --ct-state established --action accept
              hive rule create --chain web-in --protocol tcp --dst-port 80 --action accept
              hive rule create --chain web-in --protocol icmp --icmp-type 8 --action accept
              hive rule create --chain web-in --not-src 10.0.0.0/8 --action drop \\
                  --position 0
              hive rule create --chain web-in --action jump --jump-chain common-in
              hive rule create --chain edge-out --src 10.0.1.0/24 --action snat \
                  --to 198.51.100.5-198.51.100.6:1024-65535
              hive rule create --chain edge-in --dst 198.51.100.7 --protocol tcp \
                  --dst-port 80 --action dnat --to 10.0.1.5:8080
              hive rule list --chain web-in
            """,
        subcommands: [Create.self, List.self, Show.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a rule to a chain, at the end or at a position.",
            discussion: """
                Every condition has a --not-<condition> twin that matches the opposite: \
                --not-src 10.0.0.0/8, --not-protocol tcp, --not-dst-port 22, \
                --not-in-port vm1, --not-ct-state established, and so on.

                Ports, port groups and IP address groups are given by name or id.

                Examples:
                  hive rule create --chain web-in --ct-state established --action accept
                  hive rule create --chain web-in --protocol tcp --dst-port 80 --action accept
                  hive rule create --chain web-in --protocol tcp --src-port 1000-2000 \\
                      --src 10.0.0.0/8 --action accept
                  hive rule create --chain web-in --src-ip-group office --action accept \\
                      --position 0
                  hive rule create --chain web-in --not-src 10.0.0.0/8 --action drop
                  hive rule create --chain web-in --action jump --jump-chain common-in
                  hive rule create --chain edge-out --action snat --to 198.51.100.5
                  hive rule create --chain edge-in --dst 198.51.100.7 --action dnat \
                      --to 10.0.1.5:8080
                """)

        @Option(help: ArgumentHelp("The chain (name or id).", valueName: "chain"))
        var chain: String
        @Option(help: ArgumentHelp("Where to insert: 0 is first; default: after the last rule.", valueName: "n"),
                transform: Parse.position)
        var position: Int?
        @Option(help: "What to do with a matching packet.")
        var action: RuleAction.ActionType?
        @Option(help: ArgumentHelp("The chain to jump to, for --action jump (name or id).", valueName: "chain"))
        var jumpChain: String?
        @Option(help: ArgumentHelp("""
            What --action snat or dnat translates to: an address or range, with an optional port or \
            range (198.51.100.5, 198.51.100.5-198.51.100.6:1024-65535, 10.0.1.5:8080).
            """, valueName: "target"), transform: Parse.natTarget)
        var to: NATTarget?
        @OptionGroup(title: "Conditions (each also as --not-<condition>)") var match: RuleConditionOptions
        @Option(help: "The owning tenant (admin token only).")
        var tenant: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func validate() throws {
            let translates = action == .snat || action == .dnat
            if translates, to == nil {
                throw ValidationError("--action \(action!.rawValue) needs --to ADDRESS[-ADDRESS][:PORT[-PORT]], what it translates to")
            }
            if !translates, to != nil {
                throw ValidationError("--to goes with --action snat or dnat\(action.map { ", not --action \($0.rawValue)" } ?? "")")
            }
            switch (action, jumpChain) {
            case (nil, nil):
                throw ValidationError("give --action: accept, drop, reject, jump (with --jump-chain), return, continue, snat or dnat (with --to)")
            case (let action?, .some) where action != .jump:
                throw ValidationError("--jump-chain goes with --action jump, not --action \(action.rawValue)")
            case (.jump?, nil):
                throw ValidationError("--action jump needs --jump-chain CHAIN, the chain to jump to")
            default:
                break
            }
        }

        func run() async throws {
            let client = try connection.client()
            let resolver = Resolver(client)
            let chainID = try await resolver.id(chain, Chain.self)
            let ruleAction: RuleAction
            switch action ?? .jump {
            case .accept: ruleAction = .accept
            case .drop: ruleAction = .drop
            case .reject: ruleAction = .reject
            case .return: ruleAction = .return
            case .continue: ruleAction = .continue
            case .jump:
                guard let jumpChain else { throw CLIError("--action jump needs --jump-chain CHAIN") }
                ruleAction = .jump(try await resolver.id(jumpChain, Chain.self))
            case .snat, .dnat:
                guard let to else { throw CLIError("--action \(action!.rawValue) needs --to TARGET") }
                ruleAction = action == .snat ? .snat(to) : .dnat(to)
            }
            let rule = Rule(tenantId: tenant, chainId: chainID, conditions: try await match.conditions(resolver), action: ruleAction)
            let flags = RuleConditionOptions.fieldFlags.merging([
                "chainId": "--chain", "action.chainId": "--jump-chain", "action": "--action", "action.target": "--to",
                "action.target.firstAddress": "--to", "action.target.lastAddress": "--to",
                "action.target.firstPort": "--to", "action.target.lastPort": "--to",
                "position": "--position", "tenantId": "--tenant",
            ]) { first, _ in first }
            let created = try await explainingFields(flags) {
                try await client.insert(rule, at: position)
            }
            try await Printer(output, client).object(created)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a chain's rules in order, or every chain's.",
            discussion: """
                Examples:
                  hive rule list --chain web-in
                  hive rule list --chain web-in --json
                """)

        @Option(help: ArgumentHelp("Only this chain's rules (name or id).", valueName: "chain"))
        var chain: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let chains = chain == nil
                ? try await client.list(Chain.self)
                : [try await Resolver(client).object(chain!, Chain.self)]
            var groups: [(Chain, [Revisioned<Rule>])] = []
            for item in chains { groups.append((item.object, try await client.rules(of: item.object.id))) }
            if output.json {
                print(JSONText.items(groups.flatMap { $0.1.map(\.json) }))
                return
            }
            let names = NameBook(client)
            if chain != nil {
                print(await RuleTable.render(groups.first?.1 ?? [], names))
                return
            }
            guard !groups.isEmpty else {
                print("No chains. Create one with: hive chain create NAME")
                return
            }
            for (index, (chain, rules)) in groups.enumerated() {
                if index > 0 { print("") }
                print("Chain \(chain.name) (\(chain.id)):")
                print(await RuleTable.render(rules, names))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a rule.")

        @Argument(help: "The rule's id.")
        var rule: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            try await Printer(output, client).object(try await client.get(try parseID(rule, Rule.self, list: "hive rule list --chain CHAIN")))
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a rule from its chain.")

        @Argument(help: "The rule's id.")
        var rule: String
        @OptionGroup var connection: ClientOptions

        func run() async throws {
            let client = try connection.client()
            let id = try parseID(rule, Rule.self, list: "hive rule list --chain CHAIN")
            try await client.delete(id)
            print("Deleted rule \(id).")
        }
    }
}
