import ArgumentParser
import HiveClient
import HiveModel

// The subcommands every resource has in the same shape: list, show and
// delete. A resource describes itself (`CLIResource`) and names these as
// its subcommands (`ListCommand<FloatingIP>.self`); only create and update,
// whose flags differ, are written per resource.

/// A resource served by the generic `list`, `show` and `delete`.
protocol CLIResource: Nameable, Presentable {
    /// What `list` prints when there is none: how to make one.
    static var emptyListHint: String { get }
    /// The help of the argument naming one object ("The floating IP's address or id.").
    static var referenceHelp: String { get }
}

/// `hive <resource> list`.
struct ListCommand<Resource: CLIResource>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "list", abstract: "List \(Resource.noun)s.")
    }

    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ClientOptions

    func run() async throws {
        let client = try connection.client()
        await Printer(output, client).list(try await client.list(Resource.self), empty: Resource.emptyListHint)
    }
}

/// `hive <resource> show NAME-OR-ID`.
struct ShowCommand<Resource: CLIResource>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "show", abstract: "Show a \(Resource.noun).")
    }

    @Argument(help: ArgumentHelp(Resource.referenceHelp, valueName: Resource.noun.lowercased().replacingOccurrences(of: " ", with: "-")))
    var reference: String
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ClientOptions

    func run() async throws {
        let client = try connection.client()
        try await Printer(output, client).object(try await Resolver(client).object(reference, Resource.self))
    }
}

/// `hive <resource> delete NAME-OR-ID`, guarded by the revision it read.
struct DeleteCommand<Resource: CLIResource>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "delete", abstract: "Delete a \(Resource.noun).")
    }

    @Argument(help: ArgumentHelp(Resource.referenceHelp, valueName: Resource.noun.lowercased().replacingOccurrences(of: " ", with: "-")))
    var reference: String
    @OptionGroup var connection: ClientOptions

    func run() async throws {
        let client = try connection.client()
        let item = try await Resolver(client).object(reference, Resource.self)
        try await client.delete(item.object.id, ifRevision: item.revision)
        print("Deleted \(Resource.noun) \(item.object.displayName ?? item.object.id.description) (\(item.object.id)).")
    }
}
