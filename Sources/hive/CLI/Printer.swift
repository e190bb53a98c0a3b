import Foundation
import HiveClient
import HiveModel

/// How a resource shows in a list (one row) and alone (field lines).
protocol Presentable: APIResource {
    static var columns: [String] { get }
    static func row(_ item: Revisioned<Self>, _ names: NameBook) async -> [String]
    static func fields(_ item: Revisioned<Self>, _ names: NameBook) async -> [(String, String)]
}

/// Prints objects as tables, or with `--json` as the API returned them.
struct Printer {
    let json: Bool
    let names: NameBook
    var client: HiveClient { names.client }

    init(_ output: OutputOptions, _ client: HiveClient) {
        json = output.json
        names = NameBook(client)
    }

    /// A list: a table (or `empty` when there is nothing), or `{"items": [...]}`.
    func list<Object: Presentable>(_ items: [Revisioned<Object>], empty: String) async {
        if json {
            print(JSONText.items(items.map(\.json)))
            return
        }
        guard !items.isEmpty else {
            print(empty)
            return
        }
        var rows: [[String]] = []
        for item in items { rows.append(await Object.row(item, names)) }
        print(Table(headers: Object.columns, rows: rows).rendered)
    }

    /// One object: its fields, then any `sections` (tables of related objects),
    /// or with `--json` the object alone.
    func object<Object: Presentable>(
        _ item: Revisioned<Object>, sections: (NameBook) async throws -> [(String, String)] = { _ in [] }
    ) async throws {
        if json {
            print(JSONText.pretty(item.json))
            return
        }
        print(Table.details(await Object.fields(item, names)))
        for (title, body) in try await sections(names) {
            print("")
            print(title)
            print(body.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n"))
        }
    }

    /// A table of related objects for a `sections` entry, or "none".
    func section<Object: Presentable>(_ items: [Revisioned<Object>]) async -> String {
        guard !items.isEmpty else { return "none" }
        var rows: [[String]] = []
        for item in items { rows.append(await Object.row(item, names)) }
        return Table(headers: Object.columns, rows: rows).rendered
    }
}

/// JSON text for the terminal: indented, keys sorted, slashes unescaped.
enum JSONText {
    static func pretty(_ data: Data) -> String {
        guard let value = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
            return String(decoding: data, as: UTF8.self)
        }
        return render(value) ?? String(decoding: data, as: UTF8.self)
    }

    /// `{"items": [...]}` around objects, as the API's list answers are.
    static func items(_ objects: [Data]) -> String {
        let values = objects.compactMap { try? JSONSerialization.jsonObject(with: $0) }
        return render(["items": values]) ?? "{\"items\": []}"
    }

    private static func render(_ value: Any) -> String? {
        guard let data = try? JSONSerialization.data(
            withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
