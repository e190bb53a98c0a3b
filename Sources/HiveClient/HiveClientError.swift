import Foundation
import HiveModel

/// Why a call to the Hive API failed. The description is written for the
/// person at the terminal: what went wrong and, where known, what to change.
public enum HiveClientError: Error, Sendable, CustomStringConvertible {
    /// The API answered with an error document.
    case api(ServerError)
    /// No HTTP answer came back: the server is down, the endpoint is wrong, or the network failed.
    case unreachable(endpoint: URL, reason: String)
    /// The API answered with something this client cannot read (a proxy's
    /// error page, an incompatible server).
    case unexpectedResponse(status: Int, detail: String)

    /// The HTTP status of an API error (0 when there was no HTTP answer).
    public var status: Int {
        switch self {
        case .api(let error): return error.status
        case .unreachable: return 0
        case .unexpectedResponse(let status, _): return status
        }
    }

    /// The API's error code ("invalid", "not_found", "stale_revision", ...), when it sent one.
    public var code: String? {
        if case .api(let error) = self { return error.code }
        return nil
    }

    public var description: String {
        switch self {
        case .api(let error):
            return error.description
        case .unreachable(let endpoint, let reason) where reason.hasPrefix("TLS:"):
            return "cannot reach the Hive API at \(endpoint.absoluteString) securely: \(reason.dropFirst(5)) "
                + "(the API's CA is given with --ca-file PATH or HIVE_CA_FILE)"
        case .unreachable(let endpoint, let reason):
            return "cannot reach the Hive API at \(endpoint.absoluteString): \(reason); is `hive api` running? "
                + "(set the endpoint with --endpoint URL or HIVE_ENDPOINT)"
        case .unexpectedResponse(let status, let detail):
            return status == 0 || status == 200 ? detail : "unexpected answer (HTTP \(status)): \(detail)"
        }
    }

    /// The error for a non-2xx answer: the API's error document when the body is one.
    init(status: Int, body: Data, request: String) {
        if let document = try? JSONDecoder().decode(ServerError.Document.self, from: body) {
            self = .api(ServerError(status: status, document.error))
            return
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let shown = text.isEmpty ? "an empty body" : "'\(text)'"
        self = .unexpectedResponse(status: status, detail: "\(request) answered \(shown), not a Hive error document; is the endpoint a Hive API?")
    }
}

/// The API's error document: `{"error": {"code", "message", "field", "value", "details"}}`.
public struct ServerError: Sendable, Hashable, CustomStringConvertible {
    /// One field's problem, from a 422 `invalid` answer.
    public struct Detail: Codable, Sendable, Hashable {
        public var field: String
        public var value: String?
        public var problem: String
    }

    public var status: Int
    /// "malformed", "unauthorized", "forbidden", "not_found", "conflict", "stale_revision", "invalid", ...
    public var code: String
    /// Names the field and the bad value.
    public var message: String
    public var field: String?
    public var value: String?
    public var details: [Detail]

    public init(status: Int, code: String, message: String, field: String? = nil, value: String? = nil, details: [Detail] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.value = value
        self.details = details
    }

    struct Document: Decodable {
        struct Body: Decodable {
            var code: String
            var message: String
            var field: String?
            var value: String?
            var details: [Detail]?

            enum CodingKeys: String, CodingKey { case code, message, field, value, details }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                code = try container.decode(String.self, forKey: .code)
                message = try container.decode(String.self, forKey: .message)
                field = try? container.decodeIfPresent(String.self, forKey: .field)
                value = try? container.decodeIfPresent(String.self, forKey: .value)
                // Details only refine the message; an unreadable list is dropped, not fatal.
                details = try? container.decodeIfPresent([Detail].self, forKey: .details)
            }
        }
        var error: Body
    }

    init(status: Int, _ body: Document.Body) {
        self.init(status: status, code: body.code, message: body.message, field: body.field,
                  value: body.value, details: body.details ?? [])
    }

    /// The server's message and status, with a hint where the fix is not in the message.
    public var description: String {
        let hint: String
        switch code {
        case "unauthorized" where !message.contains("HIVE_TOKEN"): hint = "; check --token-file, HIVE_TOKEN_FILE, --token or HIVE_TOKEN"
        case "forbidden": hint = "; this needs an admin token"
        case "stale_revision": hint = "; someone else changed it meanwhile: read it again and retry"
        default: hint = ""
        }
        return "\(message) (HTTP \(status) \(code)\(hint))"
    }
}
