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
        subcommands: [Create.self, ListCommand<Rule>.self, ShowCommand<Rule>.self, DeleteCommand<Rule>.self])

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
            try await Rule.create(connection, output, send: { try await $0.insert($1, at: position) }) { resolver in
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
                return Rule(tenantId: tenant, chainId: chainID, conditions: try await match.conditions(resolver), action: ruleAction)
            }
        }
    }
}

extension Rule: CLIResource {
    static var noun: String { "rule" }
    static let fieldFlags = RuleConditionOptions.fieldFlags.merging([
        "chainId": "--chain", "action.chainId": "--jump-chain", "action": "--action", "action.target": "--to",
        "action.target.firstAddress": "--to", "action.target.lastAddress": "--to",
        "action.target.firstPort": "--to", "action.target.lastPort": "--to",
        "position": "--position", "tenantId": "--tenant",
    ]) { first, _ in first }
    static var emptyListHint: String { "No chains. Create one with: hive chain create NAME" }
    static var referenceHelp: String { "The rule's id." }
    static var listAbstract: String { "List a chain's rules in order, or every chain's." }
    static var listDiscussion: String {
        """
        Examples:
          hive rule list --chain web-in
          hive rule list --chain web-in --json
        """
    }
    static var deleteAbstract: String { "Delete a rule from its chain." }

    static func find(_ reference: String, _ scope: NoOptions, _ resolver: Resolver) async throws -> Revisioned<Rule> {
        try await byID(reference, resolver, list: "hive rule list --chain CHAIN")
    }

    static func send(_ new: Rule, _ client: HiveClient) async throws -> Revisioned<Rule> { try await client.insert(new) }

    static func list(_ filter: ChainFilter, _ resolver: Resolver) async throws -> [Revisioned<Rule>] {
        var rules: [Revisioned<Rule>] = []
        for chain in try await filter.chains(resolver) { rules += try await resolver.client.rules(of: chain.object.id) }
        return rules
    }

    /// One chain's rules as a table; without --chain, each chain's under its name.
    static func printList(_ rules: [Revisioned<Rule>], _ filter: ChainFilter, _ printer: Printer) async throws {
        if printer.json { return await printer.list(rules, empty: emptyListHint) }
        guard filter.chain == nil else { return print(await RuleTable.render(rules, printer.names)) }
        let chains = try await filter.chains(Resolver(printer.client))
        guard !chains.isEmpty else { return print(emptyListHint) }
        for (index, chain) in chains.enumerated() {
            if index > 0 { print("") }
            print("Chain \(chain.object.name) (\(chain.object.id)):")
            print(await RuleTable.render(rules.filter { $0.object.chainId == chain.object.id }, printer.names))
        }
    }
}

/// `hive rule list --chain`.
struct ChainFilter: ParsableArguments {
    @Option(help: ArgumentHelp("Only this chain's rules (name or id).", valueName: "chain"))
    var chain: String?

    /// The chain named, or every chain.
    func chains(_ resolver: Resolver) async throws -> [Revisioned<Chain>] {
        guard let chain else { return try await resolver.client.list(Chain.self) }
        return [try await resolver.object(chain, Chain.self)]
    }
}
