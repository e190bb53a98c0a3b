// The Hive REST API: the front door through which tenants and operators
// describe virtual networks. It validates intent and writes it to the NSDB
// through `TopologyRepository`; it keeps no state of its own, so any number
// of API servers can run side by side, and it is never on the packet path.
//
// Shape of a request:
//
//   MetricsMiddleware   counts it by route pattern, method and status
//   ErrorMiddleware     turns any thrown error into the JSON error body
//   /v1 routes:
//     AuthenticationMiddleware   bearer token -> Principal (admin or tenant)
//     ResourceHandlers<T>        decode, check tenancy, call the repository
//
// Invariants:
// - A tenant never sees another tenant's objects: they read as missing
//   (404) and naming them in a body is refused as a missing reference (422).
// - Bad input is always 4xx and says which field or parameter was wrong and
//   with what value; 5xx means the server or the NSDB failed (503 for an
//   NSDB that does not answer).
// - `openapi.yaml` (in this module's resources) describes exactly these
//   routes; a test compares it with the router.
//
// The contract with the CLI is /work/api-contract.md in the workspace, and
// docs/api.md in the repository.

import Foundation
import HiveStore
import Hummingbird
import HummingbirdTLS
import Logging
import Prometheus

/// Builds the API's router and application from a repository and the
/// accepted tokens. Tests run the router in-process; `hive api` runs the
/// application as a service.
public struct HiveAPIServer: Sendable {
    public let repository: TopologyRepository
    /// The accepted tokens; replace its table to change them while serving.
    public let tokenSource: TokenSource
    public var tokens: TokenTable { tokenSource.table }
    public let metrics: APIMetrics
    /// Asks the agents for their state (flows, port status), with their token.
    public let agents: AgentStateClient

    public init(
        repository: TopologyRepository, tokens: TokenTable, metrics: APIMetrics = APIMetrics(), agentToken: String? = nil,
        tokenSource: TokenSource? = nil
    ) {
        self.repository = repository
        self.tokenSource = tokenSource ?? TokenSource(tokens)
        self.metrics = metrics
        agents = AgentStateClient(token: agentToken)
    }

    /// The router with every route and middleware.
    public func buildRouter() -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        let routeTable = RouteTable()
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        router.add(middleware: ErrorMiddleware(routes: routeTable, metrics: metrics))
        addServiceRoutes(to: router)

        let v1 = router.group("v1").add(middleware: AuthenticationMiddleware(source: tokenSource))
        addBridgeRoutes(to: v1)
        addDHCPRoutes(to: v1)
        addRouterRoutes(to: v1)
        addFloatingIPRoutes(to: v1)
        addPortRoutes(to: v1)
        addChainRoutes(to: v1)
        addGroupRoutes(to: v1)
        addSecurityGroupRoutes(to: v1)
        addHostRoutes(to: v1)
        addTunnelZoneRoutes(to: v1)
        addBindingRoutes(to: v1)
        addAgentStateRoutes(to: v1)
        addTraceRoutes(to: v1)

        routeTable.set(router.routes.map { (method: $0.method.rawValue, path: $0.path.description) })
        return router
    }

    /// An application serving the router on `address`, over TLS when `tls`
    /// is given (then a plain HTTP request fails the handshake: no answer).
    /// `onServerRunning` receives the bound port (useful when asking for port 0).
    public func buildApplication(
        host: String, port: Int, tls: APITLSFiles? = nil, logger: Logger,
        onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        Application(
            router: buildRouter(),
            server: try tls.map { try .tls(.http1(), tlsConfiguration: $0.serverConfiguration()) } ?? .http1(),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "hive-api"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// The OpenAPI document describing every route, as served at `/openapi.yaml`.
    public static let openAPIDocument: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
              let text = try? String(contentsOf: url, encoding: .utf8)
        else { return "" }
        return text
    }()
}

// MARK: Unauthenticated routes

extension HiveAPIServer {
    /// `/healthz`, `/metrics` and `/openapi.yaml`: no token needed, so load
    /// balancers, Prometheus and API tools can use them.
    func addServiceRoutes(to router: Router<APIRequestContext>) {
        let repository = repository
        let metrics = metrics
        router.get("healthz") { request, _ -> Response in
            _ = try request.query(allowing: [])
            do {
                _ = try await repository.store.range(.key(TopologyKeys.root + "healthz"))
                return JSONResponse.make(status: .ok, body: Health(status: "ok", message: nil))
            } catch {
                metrics.recordFailure(error)
                return JSONResponse.make(status: .serviceUnavailable, body: Health(status: "unavailable", message: "the NSDB does not answer: \(error)"))
            }
        }
        router.get("metrics") { request, _ -> Response in
            _ = try request.query(allowing: [])
            let body = metrics.exposition()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .contentLength: String(body.count)],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.get("openapi.yaml") { request, _ -> Response in
            _ = try request.query(allowing: [])
            let body = ByteBuffer(string: Self.openAPIDocument)
            return Response(
                status: .ok,
                headers: [.contentType: "application/yaml", .contentLength: String(body.readableBytes)],
                body: .init(byteBuffer: body))
        }
    }

    struct Health: Encodable {
        var status: String
        var message: String?
    }
}
