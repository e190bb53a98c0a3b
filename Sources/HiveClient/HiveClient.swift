// A typed client of Hive's REST API (docs: /work/api-contract.md, served by
// `hive api`). The CLI is written against it; tests use it to arrange state.
//
// - Every call is one HTTP request over URLSession; nothing is cached and
//   nothing retried, so what a caller sees is what the API said.
// - Objects travel as their HiveModel JSON. Answers decode into the model
//   type plus the store `revision` (and a host's `alive`), and keep the JSON
//   exactly as the API sent it, for `--json` output.
// - Every failure is a `HiveClientError`: the API's own error document
//   (status, code, message naming the field and value), an endpoint that
//   cannot be reached, or an answer this client cannot read.
//
// A `HiveClient` is an immutable value and may be shared between tasks.

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HiveModel

public struct HiveClient: Sendable {
    /// The API's base URL, e.g. http://127.0.0.1:9696 (the `/v1` prefix is added per call).
    public let endpoint: URL
    /// The bearer token: admin or one tenant's.
    public let token: String
    /// How long one request may take before it counts as unreachable.
    public var timeout: TimeInterval

    let session: URLSession

    public init(endpoint: URL, token: String, timeout: TimeInterval = 30, session: URLSession = .shared) {
        self.endpoint = endpoint
        self.token = token
        self.timeout = timeout
        self.session = session
    }

    /// An HTTP method the API uses.
    enum Method: String {
        case get = "GET", post = "POST", put = "PUT", delete = "DELETE"
    }

    /// The API's answer to one request: a 2xx status and its body.
    struct Answer {
        var status: Int
        var body: Data
    }

    /// Sends one request under `/v1/` and returns a 2xx answer; anything else throws.
    /// - Parameters:
    ///   - path: segments after `/v1/`, e.g. `["bridges", id]`.
    ///   - ifMatch: a revision the object must still have (PUT, DELETE), else 409 `stale_revision`.
    func send(
        _ method: Method, _ path: [String], query: [URLQueryItem] = [], body: Data? = nil, ifMatch: Int? = nil
    ) async throws(HiveClientError) -> Answer {
        var url = endpoint.appendingPathComponent("v1")
        for segment in path { url.appendPathComponent(segment) }
        if !query.isEmpty, var components = URLComponents(url: url, resolvingAgainstBaseURL: false) {
            components.queryItems = query
            url = components.url ?? url
        }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method.rawValue
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let ifMatch {
            request.setValue("\"\(ifMatch)\"", forHTTPHeaderField: "If-Match")
        }

        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            throw .unreachable(endpoint: endpoint, reason: Self.describeTransportError(error))
        }
        guard let http = response as? HTTPURLResponse else {
            throw .unexpectedResponse(status: 0, detail: "\(method.rawValue) \(url.path) got a non-HTTP answer")
        }
        guard (200..<300).contains(http.statusCode) else {
            throw HiveClientError(status: http.statusCode, body: data, request: "\(method.rawValue) \(url.path)")
        }
        return Answer(status: http.statusCode, body: data)
    }

    /// Why URLSession gave up, in words (its `localizedDescription` is often just a code on Linux).
    private static func describeTransportError(_ error: any Error) -> String {
        guard let urlError = error as? URLError else { return "\(error.localizedDescription)" }
        switch urlError.code {
        case .cannotConnectToHost: return "connection refused"
        case .timedOut: return "no answer within the timeout"
        case .cannotFindHost, .dnsLookupFailed: return "the host name does not resolve"
        case .networkConnectionLost: return "the connection was closed before an answer arrived"
        case .notConnectedToInternet: return "no network connection"
        case .unsupportedURL, .badURL: return "the endpoint is not a usable http:// or https:// URL"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
             .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot:
            return "the TLS connection failed (\(urlError.localizedDescription))"
        default: return urlError.localizedDescription
        }
    }
}

// MARK: JSON

extension HiveClient {
    /// The model JSON of `object` for a request body; `id` is left out when
    /// `includeId` is false so the server generates it.
    static func body<Object: Encodable>(_ object: Object, includeId: Bool = true) throws(HiveClientError) -> Data {
        do {
            let bytes = try ModelJSON.encode(object)
            if includeId { return Data(bytes) }
            guard var document = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                return Data(bytes)
            }
            document["id"] = nil
            return try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
        } catch {
            throw .unexpectedResponse(status: 0, detail: "cannot encode the request body: \(error)")
        }
    }

    /// Decodes one object answer.
    static func object<Object: TopologyObject>(_ type: Object.Type, from answer: Answer) throws(HiveClientError) -> Revisioned<Object> {
        try Revisioned(json: answer.body)
    }

    /// Decodes a `{"items": [...]}` answer.
    static func listing<Object: TopologyObject>(_ type: Object.Type, from answer: Answer) throws(HiveClientError) -> [Revisioned<Object>] {
        let items: [Any]
        do {
            guard let document = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any],
                  let list = document["items"] as? [Any] else {
                throw HiveClientError.unexpectedResponse(
                    status: answer.status, detail: "a \(Object.kind) list answer has no \"items\" list")
            }
            items = list
        } catch let error as HiveClientError {
            throw error
        } catch {
            throw .unexpectedResponse(status: answer.status, detail: "a \(Object.kind) list answer is not JSON: \(error)")
        }
        var decoded: [Revisioned<Object>] = []
        for item in items {
            let data: Data
            do {
                data = try JSONSerialization.data(withJSONObject: item, options: [.sortedKeys, .withoutEscapingSlashes])
            } catch {
                throw .unexpectedResponse(status: answer.status, detail: "a \(Object.kind) list item is not an object")
            }
            decoded.append(try Revisioned(json: data))
        }
        return decoded
    }
}
