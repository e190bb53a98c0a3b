import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HiveModel

/// How the API asks a host's agent for its state (GET /state/* on the URL
/// the agent recorded in its host, `agentEndpoint`), with the token the
/// agents share (`hive api --agent-token-file`). One request per call, a
/// short timeout: an agent that does not answer makes the caller say so,
/// it does not hold the API up.
public struct AgentStateClient: Sendable {
    /// The agents' control token; nil: the API asks no agent.
    public let token: String?
    public var timeout: TimeInterval

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
        guard var components = URLComponents(string: endpoint) else {
            throw Failure(description: "the host's agentEndpoint '\(endpoint)' is not a URL")
        }
        components.path = (components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path) + "/state/" + path
        components.queryItems = [URLQueryItem(name: "host", value: host.description)]
            + query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        guard let url = components.url else {
            throw Failure(description: "the host's agentEndpoint '\(endpoint)' is not a URL")
        }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw Failure(description: "\(endpoint) did not answer (\(Self.describe(error)))")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            let message = (try? JSONDecoder().decode(ErrorDocument.self, from: data))?.error.message ?? "no error document"
            throw Failure(description: "\(endpoint) answered \(status): \(message)")
        }
        do {
            return try JSONDecoder().decode(Report.self, from: data)
        } catch {
            throw Failure(description: "\(endpoint) answered with a report the API cannot read: \(describeDecodingError(error))")
        }
    }

    private struct ErrorDocument: Decodable {
        struct Content: Decodable {
            var message: String
        }

        var error: Content
    }

    private static func describe(_ error: any Error) -> String {
        guard let urlError = error as? URLError else { return "\(error)" }
        switch urlError.code {
        case .cannotConnectToHost: return "connection refused"
        case .timedOut: return "no answer within the timeout"
        case .cannotFindHost, .dnsLookupFailed: return "the host name does not resolve"
        case .networkConnectionLost: return "the connection was closed before an answer arrived"
        default: return urlError.localizedDescription
        }
    }
}
