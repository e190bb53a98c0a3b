import HiveClient

/// The API names fields by their JSON names ("egressPortId"); a command's
/// user typed flags ("--port"). Runs `body`, and when the API refuses a field
/// this command sets, adds which flag that is to the server's message.
func explainingFields<T>(_ flags: [String: String], _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch HiveClientError.api(let error) {
        var seen: Set<String> = []
        var hints: [String] = []
        for field in ([error.field] + error.details.map(\.field)).compactMap({ $0 }) {
            guard let flag = flag(for: field, in: flags), seen.insert(field).inserted else { continue }
            hints.append("\(field) is \(flag)")
        }
        guard !hints.isEmpty else { throw HiveClientError.api(error) }
        throw CLIError("\(error)\n(in this command: \(hints.joined(separator: ", ")))")
    }
}

/// The flag for an API field path, trying "hostEntries[1].mac", then
/// "hostEntries.mac", then "hostEntries".
private func flag(for field: String, in flags: [String: String]) -> String? {
    let withoutIndexes = field.replacing(/\[\d+\]/, with: "")
    let first = String(withoutIndexes.split(separator: ".").first ?? "")
    for candidate in [field, withoutIndexes, first] {
        if let flag = flags[candidate] { return flag }
    }
    return nil
}
