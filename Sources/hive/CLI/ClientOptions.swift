// The API commands (`hive bridge`, `hive port`, ... `hive dhcp`) share one
// shape: parse flags, build a `HiveClient` from --endpoint/--token, resolve
// names to ids, make one or a few API calls, print a table or the API's JSON.
// Every failure reaching `run()` is a `HiveClientError` or a `CLIError`
// whose description tells the user what to change; argument-parser prints it
// after "Error: " and exits 1.

import ArgumentParser
import Foundation
import HiveClient

/// Where the API is and who is asking. Included in every API command.
struct ClientOptions: ParsableArguments {
    static let defaultEndpoint = "http://127.0.0.1:9696"

    @Option(help: ArgumentHelp(
        "The Hive API's base URL.",
        discussion: "Default: $HIVE_ENDPOINT, else \(ClientOptions.defaultEndpoint).",
        valueName: "url"))
    var endpoint: String?

    @Option(help: ArgumentHelp(
        "The API token: the admin token or a tenant's (shows in `ps`; prefer --token-file).",
        discussion: "Default: $HIVE_TOKEN.",
        valueName: "token"))
    var token: String?

    @Option(help: ArgumentHelp(
        "A file holding the API token on one line, readable by its owner only (chmod 600).",
        discussion: "Default: $HIVE_TOKEN_FILE. --token and $HIVE_TOKEN take precedence.",
        valueName: "path"))
    var tokenFile: String?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp(
        "PEM CA certificate that an https endpoint's certificate must chain to.",
        discussion: "Default: $HIVE_CA_FILE, else the system's roots.", valueName: "path"))
    var caFile: String?

    /// A client for the chosen endpoint and token, or an error naming what is missing.
    func client() throws -> HiveClient {
        let environment = ProcessInfo.processInfo.environment
        let endpointText = endpoint ?? environment["HIVE_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultEndpoint
        guard let url = URL(string: endpointText), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", url.host != nil else {
            throw CLIError("the API endpoint '\(endpointText)' is not a URL like http://127.0.0.1:9696 "
                + "(set it with --endpoint URL or HIVE_ENDPOINT)")
        }
        let caFile = setting(caFile, else: "HIVE_CA_FILE")
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw CLIError("the CA file '\(caFile)' cannot be read (set it with --ca-file PATH or HIVE_CA_FILE)")
        }
        return HiveClient(endpoint: url, token: try chosenToken(environment), caFile: caFile)
    }

    /// --token, else --token-file, else $HIVE_TOKEN, else $HIVE_TOKEN_FILE.
    private func chosenToken(_ environment: [String: String]) throws -> String {
        if token != nil && tokenFile != nil { throw CLIError("give --token or --token-file, not both") }
        if let token, !token.isEmpty { return token }
        if let tokenFile { return try readTokenFile(tokenFile, option: "--token-file") }
        if let token = environment["HIVE_TOKEN"], !token.isEmpty { return token }
        if let path = environment["HIVE_TOKEN_FILE"], !path.isEmpty { return try readTokenFile(path, option: "HIVE_TOKEN_FILE") }
        throw CLIError("""
            no API token: pass --token-file FILE or set HIVE_TOKEN_FILE (a file with the token, chmod 600), \
            or --token TOKEN or HIVE_TOKEN. Use the admin token or a tenant token from the tokens file \
            `hive api` was started with (--tokens-file).
            """)
    }

    private func readTokenFile(_ path: String, option: String) throws -> String {
        do {
            return try TokenFile.read(path, option: option)
        } catch let error as ValidationError {
            throw CLIError(error.message)
        }
    }
}

/// `--json` for commands that print objects.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the API's JSON instead of a table (for scripts).")
    var json = false
}

/// A mistake the CLI catches before (or instead of) asking the API.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
