import Foundation
import HiveHTTP
import HiveModel
import NIOCore
import NIOHTTP1

/// How the API asks a host's agent for its state (GET /state/* on the URL
/// the agent recorded in its host, `agentEndpoint`), with the token the
/// agents share (`hive api --agent-token-file`). One request per call, a
/// short timeout: an agent that does not answer makes the caller say so,
/// it does not hold the API up. On HiveHTTP, not URLSession: that would
/// load libcurl and some thirty libraries into every `hive` process, the
/// agent's too (about 6 MB of its RSS).
public struct AgentStateClient: Sendable {
    /// The agents' control token; nil: the API asks no agent.
    public let token: String?
    public var timeout: TimeInterval
    private let client = HTTPClient(connectTimeout: .seconds(3), maxIdlePerEndpoint: 0)

    public init(token: String?, timeout: TimeInterval = 3) {
        self.token = token
        self.timeout = timeout
    }

    /// Why an agent's state could not be had, in words for the caller.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// GET `<endpoint>/state/<path>?host=<host>&...`, decoded.
    func get<Report: Decodable & Sendable>(
        _ type: Report.Type, endpoint: String, path: String, host: HostID, query: [String: String] = [:]
    ) async throws(Failure) -> Report {
        guard let token else {
            throw Failure(description: "the API has no agent token (start it with --agent-token-file)")
        }
        guard var components = URLComponents(string: endpoint), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", var address = components.host, !address.isEmpty else {
            throw Failure(description: "the host's agentEndpoint '\(endpoint)' is not an http:// or https:// URL")
        }
        components.path = (components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path) + "/state/" + path
        components.queryItems = [URLQueryItem(name: "host", value: host.description)]
            + query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        if address.hasPrefix("["), address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
        let server = HTTPEndpoint(host: address, port: components.port ?? (scheme == "https" ? 443 : 80), usesTLS: scheme == "https")
        var target = components.percentEncodedPath
        if let query = components.percentEncodedQuery { target += "?" + query }
        let request = HTTPRequest(
            method: .GET, path: target, headers: [("Authorization", "Bearer \(token)"), ("Accept", "application/json")],
            timeout: .milliseconds(Int64(timeout * 1000)))
        let response: HTTPResponse
        do {
            response = try await (server.usesTLS ? Self.tlsClient() : client).unary(request, to: server)
        } catch {
            throw Failure(description: "\(endpoint) did not answer (\(Self.describe(error)))")
        }
        let data = Data(response.body)
        guard response.status == .ok else {
            let message = (try? JSONDecoder().decode(ErrorDocument.self, from: data))?.error.message ?? "no error document"
            throw Failure(description: "\(endpoint) answered \(response.status.code): \(message)")
        }
        do {
            return try JSONDecoder().decode(Report.self, from: data)
        } catch {
            throw Failure(description: "\(endpoint) answered with a report the API cannot read: \(describeDecodingError(error))")
        }
    }

    /// For an agent listening with TLS: the system's roots.
    private static func tlsClient() throws -> HTTPClient {
        try HTTPClient(connectTimeout: .seconds(3), maxIdlePerEndpoint: 0, tls: HTTPTLSOptions())
    }

    private struct ErrorDocument: Decodable {
        struct Content: Decodable {
            var message: String
        }

        var error: Content
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? HTTPClientError else { return "\(error)" }
        switch error.kind {
        case .connectFailed: return error.detail
        case .timedOut: return "no answer within the timeout"
        case .closedBeforeSending, .failedAfterSending: return "the connection was closed before an answer arrived"
        case .shutDown: return "the client is shut down"
        }
    }
}
