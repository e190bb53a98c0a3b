import ArgumentParser
import Foundation
import HiveStore

/// Which NSDB a command talks to: the embedded store (default) or etcd.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"),
            help: ArgumentHelp("Embedded store directory.", discussion: "Default: $HIVE_DATA_DIR, else ~/.hive/store."))
    var dataDirectory: String?

    @Option(help: ArgumentHelp(
        "etcd client URLs, comma-separated (e.g. http://10.0.0.1:2379,http://10.0.0.2:2379); use etcd instead of the embedded store.",
        discussion: "Default: $HIVE_ETCD_ENDPOINTS."))
    var etcd: String?

    var etcdEndpoints: [String]? {
        let text = etcd ?? ProcessInfo.processInfo.environment["HIVE_ETCD_ENDPOINTS"]
        guard let text, !text.isEmpty else { return nil }
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    var resolvedDataDirectory: String {
        if let dataDirectory { return dataDirectory }
        if let fromEnvironment = ProcessInfo.processInfo.environment["HIVE_DATA_DIR"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.path
        return home + "/.hive/store"
    }

    func validate() throws {
        if dataDirectory != nil && etcd != nil {
            throw ValidationError("give either --data-dir (embedded store) or --etcd (etcd cluster), not both")
        }
        for endpoint in etcdEndpoints ?? [] where !(endpoint.hasPrefix("http://") && URL(string: endpoint)?.port != nil) {
            throw ValidationError("etcd endpoint '\(endpoint)' must look like http://HOST:PORT")
        }
    }

    /// Opens the chosen store; the caller closes it.
    func open() throws -> any Store {
        if let endpoints = etcdEndpoints {
            return EtcdStore(endpoints: endpoints)
        }
        let directory = resolvedDataDirectory
        try FileManager.default.createDirectory(
            atPath: (directory as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        return try EmbeddedStore(directory: directory)
    }

    var summary: String {
        if let endpoints = etcdEndpoints { return "etcd at " + endpoints.joined(separator: ",") }
        return "embedded store in \(resolvedDataDirectory)"
    }
}

/// Runs `body` with the store open and closes it afterwards, also on error.
func withStore<T>(_ options: StoreOptions, _ body: (any Store) async throws -> T) async throws -> T {
    let store = try options.open()
    do {
        let result = try await body(store)
        await store.close()
        return result
    } catch {
        await store.close()
        throw error
    }
}
