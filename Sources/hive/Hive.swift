import ArgumentParser

@main
struct Hive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hive",
        abstract: "Hive: distributed network virtualization.",
        discussion: APIClientCommands.quickStart,
        version: HiveVersion.current,
        subcommands: [SandboxCommand.self, TopologyCommand.self, Debug.self, APICommand.self, AgentCommand.self, TraceCommand.self, StoreCommand.self],
        groupedSubcommands: APIClientCommands.groups)
}

/// The version `hive --version` prints.
enum HiveVersion {
    static let current = "0.13.0"
}
