import Foundation
import HiveModel
import HiveStore
import Hummingbird

/// An error as the API reports it:
///
/// ```json
/// {"error": {"code": "invalid", "message": "address: '10.0.1.5' is outside the port's subnet 10.0.0.0/24",
///            "field": "address", "value": "10.0.1.5",
///            "details": [{"field": "address", "value": "10.0.1.5", "problem": "is outside ..."}]}}
/// ```
///
/// `code` is one of a fixed set a client can switch on; `message` is for
/// people and names the field and the offending value where there is one.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// 400: the request could not be read (bad JSON, wrong type, bad id in the path, bad query).
        case malformed
        /// 401: no token, or an unknown one.
        case unauthorized
        /// 403: a tenant asked for an admin-only resource.
        case forbidden
        /// 404: no such object (or not the caller's), or no such route.
        case notFound = "not_found"
        /// 405: the path exists but not with this method.
        case methodNotAllowed = "method_not_allowed"
        /// 409: the change conflicts with stored state (a duplicate, an object in use, a refused link).
        case conflict
        /// 409: `If-Match` named a revision that is no longer current.
        case staleRevision = "stale_revision"
        /// 413: the body is larger than the API accepts.
        case tooLarge = "too_large"
        /// 422: the object is well-formed but invalid (every problem is in `details`).
        case invalid
        /// 500: a fault of the server, never of the request.
        case `internal`
        /// 503: the NSDB did not answer.
        case unavailable
        /// 409: a host's agent could not be asked for its state.
        case agentUnavailable = "agent_unavailable"
    }

    public var status: HTTPResponse.Status
    public var code: Code
    public var message: String
    public var field: String?
    public var value: String?
    public var details: [FieldError]
    public var headers: HTTPFields

    public init(
        _ status: HTTPResponse.Status, _ code: Code, _ message: String,
        field: String? = nil, value: String? = nil, details: [FieldError] = [], headers: HTTPFields = [:]
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.value = value
        self.details = details
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code.rawValue): \(message)" }

    static func malformed(_ message: String, field: String? = nil, value: String? = nil) -> APIError {
        APIError(.badRequest, .malformed, message, field: field, value: value)
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(.unauthorized, .unauthorized, message, headers: [.wwwAuthenticate: "Bearer"])
    }

    static func forbidden(_ message: String) -> APIError {
        APIError(.forbidden, .forbidden, message)
    }

    static func invalid(_ problems: [FieldError]) -> APIError {
        APIError(
            .unprocessableContent, .invalid, problems.map(\.description).joined(separator: "; "),
            field: problems.first?.field, value: problems.first.map(\.value), details: problems)
    }

    static func invalid(field: String, value: String, problem: String) -> APIError {
        invalid([FieldError(field: field, value: value, problem: problem)])
    }
}

// MARK: Translation of other errors

extension APIError {
    /// The API form of any error a handler threw. Input problems become 4xx;
    /// only faults of the server or the store become 5xx.
    init(translating error: any Error) {
        switch error {
        case let error as APIError:
            self = error
        case let error as RepositoryError:
            self.init(repositoryError: error)
        case let error as StoreError:
            self.init(storeError: error)
        case let error as HTTPError:
            self.init(status: error.status, message: error.body, headers: error.headers)
        case let error as any HTTPResponseError:
            // Hummingbird's own refusals, such as a body over the size limit.
            self.init(status: error.status, message: nil, headers: [:])
        default:
            self.init(.internalServerError, .internal, "internal error: \(error)")
        }
    }

    private init(repositoryError error: RepositoryError) {
        let message = error.description
        switch error {
        case .invalid(let problems):
            self = .invalid(problems)
        case .notFound(_, let id):
            self.init(.notFound, .notFound, message, value: id)
        case .missingReference(let field, let kind, let id):
            self = .invalid(field: field, value: id, problem: "names a \(kind.rawValue) that does not exist")
            self.message = message
        case .inUse(_, let id, _):
            self.init(.conflict, .conflict, message, value: id)
        case .duplicate(let kind, let key, _):
            if let address = UniqueKey.portAddress(inKey: key) {
                self.init(.conflict, .conflict, message, field: "fixedIPs", value: address)
            } else {
                self.init(.conflict, .conflict, message, field: Self.uniqueField(kind: kind, key: key))
            }
        case .staleRevision(_, let id, _, _):
            self.init(.conflict, .staleRevision, message, value: id)
        case .refused(let field, let value, _):
            self.init(.conflict, .conflict, message, field: field, value: value)
        case .contention, .tunnelKeysExhausted:
            self.init(.conflict, .conflict, message)
        case .corrupt:
            self.init(.internalServerError, .internal, message)
        }
    }

    /// The field a unique key was built from (see `UniqueKey`).
    private static func uniqueField(kind: ObjectKind, key: String) -> String? {
        if key.hasPrefix("id ") { return "id" }
        switch kind {
        case .securityGroupRule: return nil  // the whole rule, not one field
        case .binding: return key.hasPrefix("port/") ? "portId" : "interfaceName"
        case .dhcpSubnet: return "subnet"
        case .floatingIP: return "address"
        default: return "name"
        }
    }

    private init(storeError error: StoreError) {
        switch error {
        case .unavailable, .closed, .rejected:
            self.init(.serviceUnavailable, .unavailable, "the NSDB is unavailable, try again later (\(error))")
        case .outcomeUnknown:
            self.init(.serviceUnavailable, .unavailable,
                      "the NSDB stopped answering during the change; it may or may not have been applied, re-read before retrying (\(error))")
        case .compacted, .futureRevision, .leaseNotFound:
            self.init(.internalServerError, .internal, "store error: \(error)")
        }
    }

    private init(status: HTTPResponse.Status, message: String?, headers: HTTPFields) {
        let code: Code
        let text: String
        switch status.code {
        case 404:
            code = .notFound
            text = message ?? "no such route"
        case 413:
            code = .tooLarge
            text = message ?? "the request body is too large (at most 1 MiB is accepted)"
        case 400..<500:
            code = .malformed
            text = message ?? status.reasonPhrase
        default:
            code = .internal
            text = message ?? status.reasonPhrase
        }
        self.init(status, code, text, headers: headers)
    }
}

// MARK: The JSON body

extension APIError {
    private struct Body: Encodable {
        struct Detail: Encodable {
            var field: String
            var value: String
            var problem: String
        }

        struct Content: Encodable {
            var code: String
            var message: String
            var field: String?
            var value: String?
            var details: [Detail]?
        }

        var error: Content
    }

    /// The error as a JSON response.
    func response() -> Response {
        let body = Body(error: .init(
            code: code.rawValue, message: message, field: field, value: value,
            details: details.isEmpty ? nil : details.map { .init(field: $0.field, value: $0.value, problem: $0.problem) }))
        var response = JSONResponse.make(status: status, body: body)
        response.headers.append(contentsOf: headers)
        return response
    }
}
