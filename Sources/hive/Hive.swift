import ArgumentParser

@main
struct Hive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hive",
        abstract: "Hive: distributed network virtualization.",
        subcommands: [TopologyCommand.self, Debug.self])
}
