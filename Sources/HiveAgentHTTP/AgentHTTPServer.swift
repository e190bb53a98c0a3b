// The agent's HTTP listener: what Prometheus scrapes and what operators
// (through the API, or directly) ask of the agents of this process.
//
//   GET /metrics                   Prometheus text; open, as scrapers expect
//   GET /state/flows[?port=ID][&limit=N]  installed flows (all, or one port's; the busiest N, 1000 by default)
//   GET /state/summary             flow counts, hit rate, upcall rate, drops
//   GET /state/ports               the host's bindings: up or down, counters
//
// /state/* need `Authorization: Bearer <token>` (the agent's
// --control-token-file); without a configured token they are off (403).
// One listener serves every agent of the process (the sandbox runs one per
// host): `?host=NAME-OR-ID` picks one, and may be left out when there is only
// one. Errors are the API's JSON error document, so the API can pass their
// message on.

import Foundation
import HiveAgent
import HiveModel
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// What the listener asks of an agent; `Agent` is one, tests give canned state.
public protocol AgentStateProvider: Sendable {
    var hostName: String { get }
    /// Nil until the agent has registered its host.
    func registeredHostID() async -> HostID?
    func flowsReport(port: PortID?, limit: Int) async throws(AgentStateError) -> AgentFlows
    func summaryReport() async throws(AgentStateError) -> AgentFlowSummary
    func portsReport() async throws(AgentStateError) -> AgentPorts
}

extension Agent: AgentStateProvider {
    public var hostName: String { configuration.hostName }
    public func registeredHostID() async -> HostID? { await hostID }
}

/// The agents a listener serves. Filled after the listener is up: an
/// agent records the listener's URL when it registers, and the URL is known
/// once the listener has bound its port.
public final class AgentDirectory: Sendable {
    private let entries = Mutex<(agents: [Agent], providers: [any AgentStateProvider])>(([], []))

    public init(_ agents: [Agent] = []) {
        set(agents)
    }

    public func set(_ agents: [Agent]) {
        entries.withLock { $0 = (agents, agents) }
    }

    /// Serves state from `providers` (and no metrics).
    public func set(providers: [any AgentStateProvider]) {
        entries.withLock { $0 = ([], providers) }
    }

    var agents: [Agent] { entries.withLock { $0.agents } }
    var providers: [any AgentStateProvider] { entries.withLock { $0.providers } }
}

public enum AgentHTTPServer {
    /// The router: /metrics, and /state/* behind `token` (nil: off).
    public static func router(directory: AgentDirectory, token: String?) -> Hummingbird.Router<BasicRequestContext> {
        let router = Hummingbird.Router()
        router.get("metrics") { _, _ -> Response in
            let text = await Agent.metricsText(directory.agents)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        let state = StateHandlers(directory: directory, token: token)
        router.get("state/flows") { request, _ in await state.answer(request, allowing: ["host", "port", "limit"]) { provider, query in
            try await provider.flowsReport(port: try query.port(), limit: try query.limit())
        } }
        router.get("state/summary") { request, _ in await state.answer(request, allowing: ["host"]) { provider, _ in
            try await provider.summaryReport()
        } }
        router.get("state/ports") { request, _ in await state.answer(request, allowing: ["host"]) { provider, _ in
            try await provider.portsReport()
        } }
        return router
    }

    /// The listener as a service.
    public static func application(
        directory: AgentDirectory, token: String?, host: String, port: Int, logger: Logger,
        onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(directory: directory, token: token),
            configuration: .init(address: .hostname(host, port: port), serverName: "hive-agent"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) }, logger: logger)
    }

    /// Starts the listener in a task of its own and returns once it listens
    /// (port 0 picks a free one), so its URL can go into the agents'
    /// configuration before they register.
    public static func start(
        directory: AgentDirectory, token: String?, host: String, port: Int, logger: Logger
    ) async throws -> RunningAgentListener {
        let (bound, reporter) = AsyncStream<Int>.makeStream()
        let application = application(directory: directory, token: token, host: host, port: port, logger: logger) { port in
            reporter.yield(port)
            reporter.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [application], logger: logger))
        let task = Task {
            defer { reporter.finish() }
            try await group.run()
        }
        for await port in bound { return RunningAgentListener(port: port, group: group, task: task) }
        try await task.value
        throw AgentListenerError(description: "the agent listener on \(host):\(port) stopped before it listened")
    }
}

/// A listener `AgentHTTPServer.start` started.
public struct RunningAgentListener: Sendable {
    public let port: Int
    let group: ServiceGroup
    let task: Task<Void, any Error>

    /// Stops it and waits until it has.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

public struct AgentListenerError: Error, CustomStringConvertible {
    public var description: String
}

/// The query of a /state request.
struct StateQuery {
    var values: [String: String]

    func limit() throws(StateRefusal) -> Int {
        guard let text = values["limit"] else { return AgentFlows.defaultLimit }
        guard let limit = Int(text), (1...AgentFlows.maximumLimit).contains(limit) else {
            throw StateRefusal(.badRequest, "malformed", "query parameter limit: '\(text.prefix(20))' is not a number from 1 to \(AgentFlows.maximumLimit)")
        }
        return limit
    }

    func port() throws(StateRefusal) -> PortID? {
        guard let text = values["port"] else { return nil }
        guard let id = PortID(parsing: text) else {
            throw StateRefusal(.badRequest, "malformed", "query parameter port: '\(text.prefix(80))' is not a port id (expected a UUID)")
        }
        return id
    }
}

/// A refused /state request: its status and the API's error document.
struct StateRefusal: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    var response: Response {
        struct Body: Encodable {
            struct Content: Encodable {
                var code: String
                var message: String
            }
            var error: Content
        }
        var response = StateHandlers.json(Body(error: .init(code: code, message: message)), status: status)
        if status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer" }
        return response
    }
}

struct StateHandlers: Sendable {
    let directory: AgentDirectory
    let token: [UInt8]?

    init(directory: AgentDirectory, token: String?) {
        self.directory = directory
        self.token = token.map { Array($0.utf8) }
    }

    /// Checks the token and the query, picks the agent, and answers with what `body` reports.
    func answer<Report: Encodable>(
        _ request: Request, allowing allowed: [String],
        _ body: @Sendable (any AgentStateProvider, StateQuery) async throws -> Report
    ) async -> Response {
        do {
            try authorize(request)
            let query = try Self.query(request, allowing: allowed)
            let provider = try await select(query.values["host"])
            return Self.json(try await body(provider, query))
        } catch let refusal as StateRefusal {
            return refusal.response
        } catch let error as AgentStateError {
            switch error.kind {
            case .notRegistered: return StateRefusal(.serviceUnavailable, "unavailable", error.description).response
            case .unknownPort: return StateRefusal(.notFound, "not_found", error.description).response
            }
        } catch {
            return StateRefusal(.internalServerError, "internal", "\(error)").response
        }
    }

    private func authorize(_ request: Request) throws(StateRefusal) {
        guard let token else {
            throw StateRefusal(.forbidden, "forbidden", "the agent's state is off: start the agent with --control-token-file")
        }
        guard let header = request.headers[.authorization] else {
            throw StateRefusal(.unauthorized, "unauthorized", "missing bearer token: send the header 'Authorization: Bearer <token>'")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
              Self.constantTimeEqual(Array(parts[1].trimmingCharacters(in: .whitespaces).utf8), token)
        else {
            throw StateRefusal(.unauthorized, "unauthorized", "the bearer token is not the agent's control token")
        }
    }

    /// The agent named by `host` (its name or id); the only one when nil.
    private func select(_ host: String?) async throws(StateRefusal) -> any AgentStateProvider {
        let providers = directory.providers
        guard let host else {
            guard providers.count == 1, let only = providers.first else {
                let names = providers.map(\.hostName).joined(separator: ", ")
                throw StateRefusal(.badRequest, "malformed", "this listener serves \(providers.count) agents (\(names)): give ?host=NAME-OR-ID")
            }
            return only
        }
        for provider in providers where provider.hostName == host { return provider }
        var unregistered = false
        if let id = HostID(parsing: host) {
            for provider in providers {
                let registered = await provider.registeredHostID()
                if registered == id { return provider }
                unregistered = unregistered || registered == nil
            }
        }
        if unregistered {
            throw StateRefusal(.serviceUnavailable, "unavailable", "an agent here has not registered its host yet; ask again in a moment")
        }
        throw StateRefusal(.notFound, "not_found", "no agent of host '\(host.prefix(80))' here (serving: \(providers.map(\.hostName).joined(separator: ", ")))")
    }

    static func query(_ request: Request, allowing allowed: [String]) throws(StateRefusal) -> StateQuery {
        var values: [String: String] = [:]
        for (key, value) in request.uri.queryParameters {
            let name = String(key)
            guard allowed.contains(name) else {
                throw StateRefusal(.badRequest, "malformed", "query parameter '\(name.prefix(40))' is not known (expected \(allowed.joined(separator: ", ")))")
            }
            values[name] = String(value)
        }
        return StateQuery(values: values)
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json", .contentLength: String(data.count)],
            body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
    }

    private static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
