import Foundation
import HiveModel
import Hummingbird
import Synchronization

/// Who is making a request, as established from its bearer token.
public enum Principal: Hashable, Sendable, CustomStringConvertible {
    /// Sees and changes every object, including the admin-only hosts,
    /// tunnel zones and bindings.
    case admin
    /// Sees and changes only objects whose `tenantId` is this tenant.
    case tenant(String)

    /// True when an object owned by `tenantId` (nil: admin-owned) is visible.
    func mayAccess(tenantId: String?) -> Bool {
        switch self {
        case .admin: return true
        case .tenant(let tenant): return tenantId == tenant
        }
    }

    public var description: String {
        switch self {
        case .admin: return "admin"
        case .tenant(let tenant): return "tenant \(tenant)"
        }
    }
}

/// The bearer tokens the API accepts and whom each stands for.
public struct TokenTable: Sendable {
    private var entries: [(token: [UInt8], principal: Principal)] = []

    public init() {}

    /// Adds a token; a later entry for the same token replaces an earlier one.
    public mutating func add(token: String, for principal: Principal) {
        entries.removeAll { $0.token == Array(token.utf8) }
        entries.append((Array(token.utf8), principal))
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// The shortest token `hive api` accepts, from any source (its tokens
    /// file, its flags, its environment): 16 characters, 128 bits as hex.
    public static let minimumTokenLength = 16

    /// Why `token` cannot be a configured token, or nil. Never quotes the
    /// token: the answer goes into errors and logs.
    public static func tokenProblem(_ token: String) -> String? {
        if token.contains(where: \.isWhitespace) { return "contains whitespace" }
        guard token.count >= minimumTokenLength else {
            return "is \(token.count) characters; use at least \(minimumTokenLength) (for example: openssl rand -hex 16)"
        }
        return nil
    }

    /// The principals configured, for a start-up log line (never the tokens).
    public var principals: [Principal] { entries.map(\.principal) }

    /// The principal for `token`, or nil. Compares against every entry in
    /// time independent of where the tokens differ, so response timing does
    /// not reveal how much of a guess was right.
    public func principal(for token: String) -> Principal? {
        let presented = Array(token.utf8)
        var found: Principal?
        for entry in entries where Self.constantTimeEqual(entry.token, presented) {
            found = entry.principal
        }
        return found
    }

    private static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }

    /// Parses tenant tokens written as "acme=tok1,globex=tok2" (the form of
    /// `HIVE_TENANT_TOKENS`) or one "acme=tok1" (the form of `--tenant-token`).
    public static func parseTenantTokens(_ text: String) throws(TokenConfigurationError) -> [(tenant: String, token: String)] {
        var pairs: [(tenant: String, token: String)] = []
        // Errors name the entry by its position and tenant, never its token.
        for (index, item) in text.split(separator: ",", omittingEmptySubsequences: true).enumerated() {
            let entry = item.trimmingCharacters(in: .whitespaces)
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex,
                  entry.index(after: equals) != entry.endIndex
            else {
                throw TokenConfigurationError(message: "tenant token \(index + 1) must look like TENANT=TOKEN (for example acme=$(openssl rand -hex 16))")
            }
            let tenant = String(entry[..<equals])
            let token = String(entry[entry.index(after: equals)...])
            if let problem = tenantProblem(tenant) {
                throw TokenConfigurationError(message: "tenant token \(index + 1): tenant '\(tenant)' \(problem)")
            }
            pairs.append((tenant, token))
        }
        return pairs
    }

    /// Why `tenant` cannot own objects, or nil. Asks the model, so the rule
    /// stays the one `tenantId` fields are validated with.
    public static func tenantProblem(_ tenant: String) -> String? {
        let probe = Bridge(tenantId: tenant, name: "probe")
        return probe.validationErrors.first(where: { $0.field == "tenantId" })?.description
    }
}

public struct TokenConfigurationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// The tokens a running server accepts, replaceable while it runs (`hive
/// api` reloads its tokens file on SIGHUP): each request reads the current
/// table.
public final class TokenSource: Sendable {
    private let current: Mutex<TokenTable>

    public init(_ table: TokenTable) { current = Mutex(table) }

    public var table: TokenTable { current.withLock { $0 } }

    public func replace(with table: TokenTable) { current.withLock { $0 = table } }
}

/// Resolves the bearer token of every request under `/v1` to a `Principal`,
/// or answers 401.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let source: TokenSource

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw APIError.unauthorized("missing bearer token: send the header 'Authorization: Bearer <token>'")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            // A header of one word may be a bare token: never echo it.
            guard parts.count == 2 else {
                throw APIError.unauthorized("the Authorization header has no scheme (expected 'Bearer <token>')")
            }
            throw APIError.unauthorized("the Authorization header uses scheme '\(parts[0].prefix(20))' (expected 'Bearer <token>')")
        }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        guard let principal = source.table.principal(for: token) else {
            throw APIError.unauthorized("the bearer token is not recognised (check --token-file, HIVE_TOKEN_FILE, --token or HIVE_TOKEN)")
        }
        var context = context
        context.principal = principal
        return try await next(request, context)
    }
}
