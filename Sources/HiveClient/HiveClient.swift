// A typed client of Hive's REST API (docs: /work/api-contract.md, served by
// `hive api`). The CLI is written against it; tests use it to arrange state.
//
// - Every call is one HTTP/1.1 request on a fresh connection (HiveHTTP, on
//   SwiftNIO); nothing is cached and nothing retried, so what a caller sees
//   is what the API said. Not URLSession: on Linux it cannot be told to
//   trust a private CA (FoundationNetworking reads a CA bundle path only on
//   Android), and an https API usually has one (`caFile`).
// - Objects travel as their HiveModel JSON. Answers decode into the model
//   type plus the store `revision` (and a host's `alive`), and keep the JSON
//   exactly as the API sent it, for `--json` output.
// - Every failure is a `HiveClientError`: the API's own error document
//   (status, code, message naming the field and value), an endpoint that
//   cannot be reached, or an answer this client cannot read.
//
// A `HiveClient` is an immutable value and may be shared between tasks.

import Foundation
import HiveHTTP
import HiveModel
import NIOCore
import NIOHTTP1

public struct HiveClient: Sendable {
    /// The API's base URL, e.g. http://127.0.0.1:9696 (the `/v1` prefix is added per call).
    public let endpoint: URL
    /// The bearer token: admin or one tenant's.
    public let token: String
    /// How long one request may take before it counts as unreachable.
    public var timeout: TimeInterval
    /// PEM CA certificate(s) an https endpoint's certificate must chain to; nil: the system's roots.
    public let caFile: String?

    /// The connections' client, or why the TLS files cannot be used (every call then throws it).
    let transport: Result<HTTPClient, HiveClientError>

    public init(endpoint: URL, token: String, timeout: TimeInterval = 30, caFile: String? = nil) {
        self.endpoint = endpoint
        self.token = token
        self.timeout = timeout
        self.caFile = caFile
        transport = Self.makeTransport(endpoint: endpoint, caFile: caFile, timeout: timeout)
    }

    private static func makeTransport(endpoint: URL, caFile: String?, timeout: TimeInterval) -> Result<HTTPClient, HiveClientError> {
        // No idle connections kept: a client may be dropped at any time, and nothing must linger after it.
        let connectTimeout = TimeAmount.milliseconds(Int64(timeout * 1000))
        guard endpoint.scheme?.lowercased() == "https" || caFile != nil else {
            return .success(HTTPClient(connectTimeout: connectTimeout, maxIdlePerEndpoint: 0))
        }
        do {
            return .success(try HTTPClient(connectTimeout: connectTimeout, maxIdlePerEndpoint: 0, tls: HTTPTLSOptions(caFile: caFile)))
        } catch {
            return .failure(.unreachable(endpoint: endpoint, reason: "TLS: \(error)"))
        }
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
        var headers = [("Authorization", "Bearer \(token)"), ("Accept", "application/json")]
        if let ifMatch { headers.append(("If-Match", "\"\(ifMatch)\"")) }
        let answer = try await exchange(method.rawValue, url, body: body.map { Array($0) } ?? [], headers: headers)
        guard (200..<300).contains(answer.status) else {
            throw HiveClientError(status: answer.status, body: answer.body, request: "\(method.rawValue) \(url.path)")
        }
        return answer
    }

    /// One request to `url` on a fresh connection; any status is returned, only transport failures throw.
    func exchange(_ method: String, _ url: URL, body: [UInt8] = [], headers: [(String, String)] = []) async throws(HiveClientError) -> Answer {
        let client: HTTPClient
        switch transport {
        case .success(let transport): client = transport
        case .failure(let error): throw error
        }
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              var host = url.host, !host.isEmpty,
              let components = URLComponents(url: url, resolvingAgainstBaseURL: false) else {
            throw .unreachable(endpoint: endpoint, reason: "the endpoint is not a usable http:// or https:// URL")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let server = HTTPEndpoint(host: host, port: url.port ?? (scheme == "https" ? 443 : 80), usesTLS: scheme == "https")
        var target = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { target += "?" + query }
        let request = HTTPRequest(
            method: HTTPMethod(rawValue: method), path: target, body: body, headers: headers,
            timeout: .milliseconds(Int64(timeout * 1000)))
        do {
            let response = try await client.unary(request, to: server)
            return Answer(status: Int(response.status.code), body: Data(response.body))
        } catch let error as HTTPClientError {
            throw .unreachable(endpoint: endpoint, reason: Self.describeTransportError(error))
        } catch {
            throw .unreachable(endpoint: endpoint, reason: "\(error)")
        }
    }

    /// Why no answer came, in words.
    private static func describeTransportError(_ error: HTTPClientError) -> String {
        switch error.kind {
        case .connectFailed: return error.detail
        case .timedOut: return "no answer within the timeout"
        case .closedBeforeSending, .failedAfterSending: return "the connection was closed before an answer arrived (\(error.detail))"
        case .shutDown: return "the client is shut down"
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
