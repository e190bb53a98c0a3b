import ArgumentParser
import Foundation
import HiveAPI
import HiveStore
import Logging
import ServiceLifecycle

/// `hive api`: serves the REST API on the chosen NSDB until SIGINT or SIGTERM.
struct APICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Serve the Hive REST API.",
        discussion: """
            Every /v1 request needs 'Authorization: Bearer <token>'. Keep the tokens in a file \
            (--tokens-file, owner-only, reloaded on SIGHUP): an admin token sees everything, a tenant's \
            token only its tenant's objects. For tests only, tokens may instead come from --admin-token \
            or $HIVE_ADMIN_TOKEN and --tenant-token TENANT=TOKEN or $HIVE_TENANT_TOKENS \
            ("acme=TOKEN,globex=TOKEN"); flags show in `ps` and take precedence over the environment. \
            Every token, from any source, has at least 16 characters (openssl rand -hex 16); \
            no message or log line prints one.

            The API is described by GET /openapi.yaml; /healthz and /metrics need no token.

            With --agent-token-file the API also asks the agents for their state (/v1/hosts/{id}/flows, \
            /v1/ports/{id}/status), at the URL each agent records in its host, with that token: the one \
            the agents were given with --control-token-file.
            """)

    @Option(help: ArgumentHelp("Address to listen on, HOST:PORT; port 0 picks a free port.", valueName: "host:port"))
    var listen = "127.0.0.1:9696"

    @OptionGroup var store: StoreOptions

    @Option(name: .customLong("admin-token"), help: ArgumentHelp(
        "For tests: a token that grants admin access (repeatable; use --tokens-file otherwise).", valueName: "token"))
    var adminTokens: [String] = []

    @Option(name: .customLong("tenant-token"), help: ArgumentHelp(
        "For tests: a tenant's token, TENANT=TOKEN (repeatable; use --tokens-file otherwise).", valueName: "tenant=token"))
    var tenantTokens: [String] = []

    @Option(name: .customLong("tokens-file"), help: ArgumentHelp(
        "The API's tokens, one per line: 'admin TOKEN' or 'tenant NAME TOKEN'; reloaded on SIGHUP.",
        discussion: "Owner-only (chmod 600); tokens of at least 16 characters. With it, --admin-token, --tenant-token and the environment are not read.",
        valueName: "path"))
    var tokensFile: String?

    @Option(name: .customLong("agent-token-file"), help: ArgumentHelp(
        "The agents' control token, to ask them for their flows and ports.",
        discussion: "One line; the file must be readable by its owner only (chmod 600).", valueName: "path"))
    var agentTokenFile: String?

    @Option(name: .customLong("tls-cert-file"), help: ArgumentHelp(
        "Serve HTTPS with this PEM certificate (then any intermediates); needs --tls-key-file.",
        discussion: "Default: $HIVE_TLS_CERT_FILE. Without it the API serves plain HTTP.", valueName: "path"))
    var tlsCertificateFile: String?

    @Option(name: .customLong("tls-key-file"), help: ArgumentHelp(
        "The PEM private key of --tls-cert-file.",
        discussion: "Default: $HIVE_TLS_KEY_FILE. Keep it readable by the API's user only.", valueName: "path"))
    var tlsKeyFile: String?

    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel = "info"

    func validate() throws {
        _ = try listenAddress()
        _ = try tokenTable()
        if let agentTokenFile { _ = try TokenFile.read(agentTokenFile, option: "--agent-token-file") }
        do {
            _ = try tlsFiles()?.serverConfiguration()
        } catch {
            throw ValidationError("\(error)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level '\(logLevel)' is not a level (expected trace, debug, info, notice, warning, error or critical)")
        }
    }

    func run() async throws {
        let (host, port) = try listenAddress()
        let tokens = try tokenTable()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "hive.api")

        let store = try self.store.open()
        let agentToken = try agentTokenFile.map { try TokenFile.read($0, option: "--agent-token-file") }
        let source = TokenSource(tokens)
        let repository = TopologyRepository(store: store)
        // Agents load objects by scope: a store from before scopes gets its copies now.
        try await repository.fillScopes()
        let server = HiveAPIServer(repository: repository, tokens: tokens, agentToken: agentToken, tokenSource: source)
        let reloads = tokensFile.map { Self.reloadOnHangUp($0, into: source, logger: logger) }
        defer { reloads?.cancel() }
        let summary = self.store.summary
        let principals = tokens.principals.map(\.description).joined(separator: ", ")
        let tls = try tlsFiles()
        let scheme = tls == nil ? "http" : "https"
        let application = try server.buildApplication(host: host, port: port, tls: tls, logger: logger) { boundPort in
            let shownHost = host.contains(":") ? "[\(host)]" : host
            // Unbuffered, so a script reading the URL sees it at once.
            let line = "hive api listening on \(scheme)://\(shownHost):\(boundPort) (\(summary); tokens for \(principals))\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        // Shut down in reverse start order: the server stops taking requests, then the store closes.
        let group = ServiceGroup(configuration: .init(
            services: [StoreService(store: store), application],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }

    /// The HTTPS certificate and key from the flags, else the environment; nil for plain HTTP.
    func tlsFiles() throws -> APITLSFiles? {
        switch (setting(tlsCertificateFile, else: "HIVE_TLS_CERT_FILE"), setting(tlsKeyFile, else: "HIVE_TLS_KEY_FILE")) {
        case (nil, nil): return nil
        case (let certificate?, let key?): return APITLSFiles(certificateFile: certificate, keyFile: key)
        default: throw ValidationError("give --tls-cert-file and --tls-key-file together (or HIVE_TLS_CERT_FILE and HIVE_TLS_KEY_FILE)")
        }
    }

    /// "HOST:PORT", "[::1]:PORT" or ":PORT" (all interfaces).
    func listenAddress() throws -> (host: String, port: Int) {
        try Self.parseListen(listen)
    }

    static func parseListen(_ listen: String) throws -> (host: String, port: Int) {
        guard let colon = listen.lastIndex(of: ":") else {
            throw ValidationError("--listen '\(listen)' must be HOST:PORT (for example 127.0.0.1:9696)")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        guard let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen '\(listen)': the port must be a number from 0 to 65535")
        }
        return (host, port)
    }

    /// On SIGHUP, reads the tokens file again; a file that does not read
    /// keeps the tokens in force, and says why (never a token).
    static func reloadOnHangUp(_ path: String, into source: TokenSource, logger: Logger) -> any DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)
        let hangUps = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangUps.setEventHandler {
            do {
                let table = try TokensFile.read(path)
                source.replace(with: table)
                logger.notice("tokens reloaded", metadata: ["file": "\(path)", "principals": "\(table.principals.count)"])
            } catch {
                logger.error("tokens not reloaded, the previous ones stay in force: \(error)")
            }
        }
        hangUps.resume()
        return hangUps
    }

    /// Tokens from the tokens file, else the flags, else the environment; at
    /// least one. Every token, whatever its source, has at least
    /// `TokenTable.minimumTokenLength` characters; errors name its source, never the token.
    func tokenTable() throws -> TokenTable {
        if let tokensFile { return try TokensFile.read(tokensFile) }
        let environment = ProcessInfo.processInfo.environment
        var table = TokenTable()
        let admins = adminTokens.isEmpty ? [environment["HIVE_ADMIN_TOKEN"]].compactMap { $0 }.filter { !$0.isEmpty } : adminTokens
        let adminSource = adminTokens.isEmpty ? "HIVE_ADMIN_TOKEN" : "--admin-token"
        for token in admins {
            if let problem = TokenTable.tokenProblem(token) { throw ValidationError("the admin token of \(adminSource) \(problem)") }
            table.add(token: token, for: .admin)
        }
        let tenantText = tenantTokens.isEmpty ? environment["HIVE_TENANT_TOKENS"] ?? "" : tenantTokens.joined(separator: ",")
        let tenantSource = tenantTokens.isEmpty ? "HIVE_TENANT_TOKENS" : "--tenant-token"
        do {
            for (tenant, token) in try TokenTable.parseTenantTokens(tenantText) {
                if let problem = TokenTable.tokenProblem(token) {
                    throw ValidationError("the token of tenant '\(tenant)' (\(tenantSource)) \(problem)")
                }
                table.add(token: token, for: .tenant(tenant))
            }
        } catch let error as TokenConfigurationError {
            throw ValidationError("\(tenantSource): \(error.message)")
        }
        if table.isEmpty {
            throw ValidationError("""
                no API token configured: every request needs one. Give --tokens-file FILE (owner-only; lines \
                'admin TOKEN' and 'tenant NAME TOKEN'); for tests, --admin-token TOKEN (or HIVE_ADMIN_TOKEN) \
                and/or --tenant-token TENANT=TOKEN (or HIVE_TENANT_TOKENS="acme=TOKEN,globex=TOKEN")
                """)
        }
        return table
    }
}

/// Closes the store when the service group shuts down, after the server
/// (services stop in reverse start order).
struct StoreService: Service {
    let store: any Store

    func run() async throws {
        try? await gracefulShutdown()
        await store.close()
    }
}
