import ArgumentParser
import HiveClient
import HiveModel

// Every resource command has one implementation here. `list`, `show` and
// `delete` are generic commands a resource names as its subcommands
// (`ListCommand<Bridge>.self`); `create` and `update`, whose flags differ,
// are written per resource but only as their flags and how they build or
// change the object: `Resource.create(...)` and `Resource.update(...)` do
// the rest (the client, finding the object, sending with the revision it
// read, field hints on errors, printing).
//
// A resource describes itself with `CLIResource`; every hook has a default,
// so a named top-level resource (like a security group) needs only its
// noun, its empty-list hint and its reference help. Resources that differ
// override a hook: an extra search scope (`port show vm1 --bridge web`), a
// list filter (`route list --router edge`), sections after show (a bridge's
// ports), or objects without names found by id (routes, rules, bindings).

/// A resource served by the generic `list`, `show` and `delete`, and by the
/// `create`/`update` helpers.
protocol CLIResource: Presentable {
    /// "bridge", "port group"; used in messages and help.
    static var noun: String { get }
    /// What `list` prints when there is none: how to make one.
    static var emptyListHint: String { get }
    /// The help of the argument naming one object ("The floating IP's address or id.").
    static var referenceHelp: String { get }
    /// API field names to the flags that set them, for error hints (`explainingFields`).
    static var fieldFlags: [String: String] { get }

    /// Help texts of the generic commands.
    static var listAbstract: String { get }
    static var listDiscussion: String { get }
    static var showAbstract: String { get }
    static var deleteAbstract: String { get }
    static var deleteDiscussion: String { get }

    /// Options that narrow where `show`, `update` and `delete` look for an object by name.
    associatedtype Scope: ParsableArguments = NoOptions
    /// Options of `list` that filter what it lists.
    associatedtype Filter: ParsableArguments = NoOptions

    /// The object `reference` names (a name, an id, or what the resource accepts).
    static func find(_ reference: String, _ scope: Scope, _ resolver: Resolver) async throws -> Revisioned<Self>
    /// What `list` lists.
    static func list(_ filter: Filter, _ resolver: Resolver) async throws -> [Revisioned<Self>]
    /// How `list` prints them (default: a table, or the empty-list hint).
    static func printList(_ items: [Revisioned<Self>], _ filter: Filter, _ printer: Printer) async throws
    /// Tables of related objects `show` prints after the fields (a bridge's ports).
    static func sections(_ item: Revisioned<Self>, _ printer: Printer) async throws -> [(String, String)]
    /// Sends a new object (default: POST to its collection).
    static func send(_ new: Self, _ client: HiveClient) async throws -> Revisioned<Self>
    /// What `delete` prints once it is gone.
    static func deletedText(_ item: Revisioned<Self>) -> String
}

/// No options: the default `Scope` and `Filter`.
struct NoOptions: ParsableArguments {}

extension CLIResource {
    static var fieldFlags: [String: String] { [:] }
    static var listAbstract: String { "List \(noun)s." }
    static var listDiscussion: String { "" }
    static var showAbstract: String { "Show a \(noun)." }
    static var deleteAbstract: String { "Delete a \(noun)." }
    static var deleteDiscussion: String { "" }

    static func printList(_ items: [Revisioned<Self>], _ filter: Filter, _ printer: Printer) async throws {
        await printer.list(items, empty: emptyListHint)
    }

    static func sections(_ item: Revisioned<Self>, _ printer: Printer) async throws -> [(String, String)] { [] }

    static func deletedText(_ item: Revisioned<Self>) -> String { "Deleted \(noun) \(item.object.id)." }

    /// `find` for objects named only by id (routes, rules, bindings): `list` is the command that shows the ids.
    static func byID(_ reference: String, _ resolver: Resolver, list: String) async throws -> Revisioned<Self> {
        guard let id = ObjectID<Self>(parsing: reference) else {
            throw CLIError("""
                '\(reference)' is not a \(noun) id (\(noun)s have no names: give a UUID like \
                3f2504e0-4f89-11d3-9a0c-0305e82c3301; `\(list)` shows them)
                """)
        }
        return try await resolver.client.get(id)
    }

    /// `hive <resource> create`: `build` makes the object from the flags,
    /// `send` (default `send(_:_:)`) sends it, and what the API made of it
    /// is printed (with `show`'s sections when `withSections`).
    static func create(
        _ connection: ClientOptions, _ output: OutputOptions, flags: [String: String]? = nil, withSections: Bool = false,
        send: ((HiveClient, Self) async throws -> Revisioned<Self>)? = nil,
        build: (Resolver) async throws -> Self
    ) async throws {
        let client = try connection.client()
        let new = try await build(Resolver(client))
        let created = try await explainingFields(flags ?? fieldFlags) {
            if let send { return try await send(client, new) }
            return try await Self.send(new, client)
        }
        let printer = Printer(output, client)
        try await printer.object(created) { _ in
            if withSections { return try await sections(created, printer) }
            return []
        }
    }

    /// `hive <resource> update`: finds the object, lets `change` apply the
    /// flags, and sends it guarded by the revision it read, so a concurrent
    /// change is refused instead of overwritten.
    static func update(
        _ reference: String, _ scope: Scope, _ connection: ClientOptions, _ output: OutputOptions,
        flags: [String: String]? = nil, change: (inout Self, Resolver) async throws -> Void
    ) async throws {
        let client = try connection.client()
        let resolver = Resolver(client)
        let current = try await find(reference, scope, resolver)
        var updated = current.object
        try await change(&updated, resolver)
        let saved = try await explainingFields(flags ?? fieldFlags) {
            try await client.update(updated, ifRevision: current.revision)
        }
        try await Printer(output, client).object(saved)
    }
}

extension CLIResource where Scope == NoOptions {
    /// `update` for resources without a search scope.
    static func update(
        _ reference: String, _ connection: ClientOptions, _ output: OutputOptions,
        flags: [String: String]? = nil, change: (inout Self, Resolver) async throws -> Void
    ) async throws {
        try await update(reference, NoOptions(), connection, output, flags: flags, change: change)
    }
}

extension CLIResource where Self: Nameable {
    static func find(_ reference: String, _ scope: Scope, _ resolver: Resolver) async throws -> Revisioned<Self> {
        try await resolver.object(reference, Self.self)
    }

    static func deletedText(_ item: Revisioned<Self>) -> String {
        "Deleted \(noun) \(item.object.displayName ?? item.object.id.description) (\(item.object.id))."
    }
}

extension CLIResource where Self: TopLevelResource {
    static func send(_ new: Self, _ client: HiveClient) async throws -> Revisioned<Self> { try await client.create(new) }
}

extension CLIResource where Self: TopLevelResource, Filter == NoOptions {
    static func list(_ filter: Filter, _ resolver: Resolver) async throws -> [Revisioned<Self>] {
        try await resolver.client.list(Self.self)
    }
}

/// The argument naming one object: "bridge", "port-group".
private func referenceValueName<Resource: CLIResource>(_ type: Resource.Type) -> String {
    Resource.noun.lowercased().replacingOccurrences(of: " ", with: "-")
}

/// `hive <resource> list`.
struct ListCommand<Resource: CLIResource>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "list", abstract: Resource.listAbstract, discussion: Resource.listDiscussion)
    }

    @OptionGroup var filter: Resource.Filter
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ClientOptions

    func run() async throws {
        let client = try connection.client()
        try await Resource.printList(try await Resource.list(filter, Resolver(client)), filter, Printer(output, client))
    }
}

/// `hive <resource> show NAME-OR-ID`: the fields, then the resource's sections.
struct ShowCommand<Resource: CLIResource>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "show", abstract: Resource.showAbstract)
    }

    @Argument(help: ArgumentHelp(Resource.referenceHelp, valueName: referenceValueName(Resource.self)))
    var reference: String
    @OptionGroup var scope: Resource.Scope
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ClientOptions

    func run() async throws {
        let client = try connection.client()
        let item = try await Resource.find(reference, scope, Resolver(client))
        let printer = Printer(output, client)
        try await printer.object(item) { _ in try await Resource.sections(item, printer) }
    }
}

/// `hive <resource> delete NAME-OR-ID`, guarded by the revision it read.
struct DeleteCommand<Resource: CLIResource>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "delete", abstract: Resource.deleteAbstract, discussion: Resource.deleteDiscussion)
    }

    @Argument(help: ArgumentHelp(Resource.referenceHelp, valueName: referenceValueName(Resource.self)))
    var reference: String
    @OptionGroup var scope: Resource.Scope
    @OptionGroup var connection: ClientOptions

    func run() async throws {
        let client = try connection.client()
        let item = try await Resource.find(reference, scope, Resolver(client))
        try await client.delete(item.object.id, ifRevision: item.revision)
        print(Resource.deletedText(item))
    }
}
