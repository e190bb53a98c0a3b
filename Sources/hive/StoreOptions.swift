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
        discussion: "https:// URLs speak TLS (all members alike). Default: $HIVE_ETCD_ENDPOINTS."))
    var etcd: String?

    @Option(name: .customLong("etcd-ca-file"), help: ArgumentHelp(
        "PEM CA certificate that etcd's https members' certificates chain to (etcd's --trusted-ca-file).",
        discussion: "Default: $HIVE_ETCD_CA_FILE, else the system's roots.", valueName: "path"))
    var etcdCAFile: String?

    @Option(name: .customLong("etcd-cert-file"), help: ArgumentHelp(
        "PEM client certificate for an etcd started with --client-cert-auth; needs --etcd-key-file.",
        discussion: "Default: $HIVE_ETCD_CERT_FILE.", valueName: "path"))
    var etcdCertificateFile: String?

    @Option(name: .customLong("etcd-key-file"), help: ArgumentHelp(
        "PEM private key of --etcd-cert-file.",
        discussion: "Default: $HIVE_ETCD_KEY_FILE.", valueName: "path"))
    var etcdKeyFile: String?

    var etcdOptions: EtcdStore.Options {
        EtcdStore.Options(
            trustedCAFile: setting(etcdCAFile, else: "HIVE_ETCD_CA_FILE"),
            clientCertificateFile: setting(etcdCertificateFile, else: "HIVE_ETCD_CERT_FILE"),
            clientKeyFile: setting(etcdKeyFile, else: "HIVE_ETCD_KEY_FILE"))
    }

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
        let endpoints = etcdEndpoints ?? []
        for endpoint in endpoints
        where !((endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) && URL(string: endpoint)?.port != nil) {
            throw ValidationError("etcd endpoint '\(endpoint)' must look like http://HOST:PORT or https://HOST:PORT")
        }
        if Set(endpoints.map { $0.hasPrefix("https://") }).count > 1 {
            throw ValidationError("etcd endpoints mix http:// and https:// (\(endpoints.joined(separator: ","))); give every member with the same scheme")
        }
        let tls = etcdOptions
        let tlsFlags = etcdCAFile != nil || etcdCertificateFile != nil || etcdKeyFile != nil
        let tlsFiles = [tls.trustedCAFile, tls.clientCertificateFile, tls.clientKeyFile].contains { $0 != nil }
        // The environment's files matter only with etcd (the embedded store ignores them); flags always.
        if !endpoints.contains(where: { $0.hasPrefix("https://") }), tlsFlags || (tlsFiles && !endpoints.isEmpty) {
            throw ValidationError("--etcd-ca-file/--etcd-cert-file/--etcd-key-file need https:// etcd endpoints (--etcd or HIVE_ETCD_ENDPOINTS)")
        }
        if (tls.clientCertificateFile == nil) != (tls.clientKeyFile == nil) {
            throw ValidationError("give --etcd-cert-file and --etcd-key-file together")
        }
    }

    /// Opens the chosen store; the caller closes it.
    func open() throws -> any Store {
        if let endpoints = etcdEndpoints {
            return EtcdStore(endpoints: endpoints, options: etcdOptions)
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

/// A flag's value, else the environment variable's (empty counts as unset).
func setting(_ flag: String?, else variable: String) -> String? {
    flag ?? ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
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
