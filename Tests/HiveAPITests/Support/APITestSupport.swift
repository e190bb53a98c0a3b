import Foundation
import HiveAPI
import HiveModel
import HiveStore
import Hummingbird
import HummingbirdTesting
import Testing

/// The tokens every test server accepts.
enum Token {
    static let admin = "admin-token-1"
    static let acme = "acme-token-1"
    static let globex = "globex-token-1"

    static var table: TokenTable {
        var table = TokenTable()
        table.add(token: admin, for: .admin)
        table.add(token: acme, for: .tenant("acme"))
        table.add(token: globex, for: .tenant("globex"))
        return table
    }
}

/// A fresh directory under the system temp dir, removed after `body`, also when it throws.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("hive-api-test-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// Runs `body` against a fresh API server on a fresh embedded store, in-process
/// (`.router`) or on a loopback port (`.live`).
func withAPI(
    _ setup: TestingSetup = .router,
    _ body: @Sendable (APIClient) async throws -> Void
) async throws {
    try await withTemporaryDirectory { directory in
        let store = try EmbeddedStore(directory: directory)
        do {
            try await withAPI(store: store, setup, body)
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }
}

/// As `withAPI`, on a given store.
func withAPI(
    store: any Store, _ setup: TestingSetup = .router,
    _ body: @Sendable (APIClient) async throws -> Void
) async throws {
    let repository = TopologyRepository(store: store)
    let server = HiveAPIServer(repository: repository, tokens: Token.table)
    let application = Application(router: server.buildRouter())
    try await application.test(setup) { client in
        try await body(APIClient(client: client, repository: repository))
    }
}

/// Sends requests with a token and JSON, and reads replies as JSON.
struct APIClient: Sendable {
    let client: any TestClientProtocol
    let repository: TopologyRepository

    @discardableResult
    func send(
        _ method: HTTPRequest.Method, _ path: String, token: String? = Token.admin, json: String? = nil,
        headers: HTTPFields = [:]
    ) async throws -> Reply {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        if json != nil { fields[.contentType] = "application/json" }
        let response = try await client.execute(
            uri: path, method: method, headers: fields, body: json.map { ByteBuffer(string: $0) })
        return Reply(status: response.status, headers: response.headers, body: Array(response.body.readableBytesView))
    }

    func get(_ path: String, token: String? = Token.admin) async throws -> Reply {
        try await send(.get, path, token: token)
    }

    func post(_ path: String, _ json: String, token: String? = Token.admin) async throws -> Reply {
        try await send(.post, path, token: token, json: json)
    }

    func put(_ path: String, _ json: String, token: String? = Token.admin, ifMatch: String? = nil) async throws -> Reply {
        try await send(.put, path, token: token, json: json, headers: ifMatch.map { [.ifMatch: $0] } ?? [:])
    }

    func delete(_ path: String, token: String? = Token.admin, ifMatch: String? = nil) async throws -> Reply {
        try await send(.delete, path, token: token, headers: ifMatch.map { [.ifMatch: $0] } ?? [:])
    }

    /// Creates an object and returns its id, failing the test unless the answer is 201.
    func create(_ path: String, _ json: String, token: String = Token.admin, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let reply = try await post(path, json, token: token)
        #expect(reply.status == .created, "POST \(path) \(json): \(reply.text)", sourceLocation: sourceLocation)
        return try #require(reply.string("id"), "POST \(path) gave no id: \(reply.text)", sourceLocation: sourceLocation)
    }
}

/// One HTTP answer.
struct Reply: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object, or empty.
    var object: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }

    func string(_ key: String) -> String? { object[key] as? String }
    func int(_ key: String) -> Int? { (object[key] as? NSNumber)?.intValue }
    func bool(_ key: String) -> Bool? { object[key] as? Bool }

    /// `items` of a list reply.
    var items: [[String: Any]] { object["items"] as? [[String: Any]] ?? [] }
    var itemIDs: [String] { items.compactMap { $0["id"] as? String } }

    private var error: [String: Any] { object["error"] as? [String: Any] ?? [:] }
    var errorCode: String? { error["code"] as? String }
    var errorMessage: String { error["message"] as? String ?? "" }
    var errorField: String? { error["field"] as? String }
    var errorValue: String? { error["value"] as? String }
    var errorDetails: [[String: String]] { error["details"] as? [[String: String]] ?? [] }
}

/// Expects an error reply with this status and code, whose message contains every fragment.
func expectError(
    _ reply: Reply, _ status: HTTPResponse.Status, _ code: String, mentioning fragments: [String] = [],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(reply.status == status, "expected \(status.code), got \(reply.status.code): \(reply.text)", sourceLocation: sourceLocation)
    #expect(reply.errorCode == code, "expected code \(code): \(reply.text)", sourceLocation: sourceLocation)
    #expect(reply.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(reply.errorMessage.contains(fragment), "message lacks '\(fragment)': \(reply.errorMessage)", sourceLocation: sourceLocation)
    }
}

/// Common bodies.
enum Body {
    static func bridge(_ name: String, extra: String = "") -> String { #"{"name": "\#(name)"\#(extra)}"# }
    static func router(_ name: String) -> String { #"{"name": "\#(name)"}"# }
    static func bridgePort(_ bridge: String, name: String? = nil) -> String {
        #"{"deviceId": "\#(bridge)", "deviceKind": "bridge"\#(name.map { #", "name": "\#($0)""# } ?? "")}"#
    }
    static func routerPort(_ router: String, address: String, subnet: String) -> String {
        #"{"deviceId": "\#(router)", "deviceKind": "router", "address": "\#(address)", "subnet": "\#(subnet)"}"#
    }
    static func chain(_ name: String) -> String { #"{"name": "\#(name)"}"# }
    static let acceptRule = #"{"action": {"type": "accept"}}"#
    static func host(_ name: String, address: String = "192.0.2.10") -> String {
        #"{"name": "\#(name)", "underlayAddresses": ["\#(address)"]}"#
    }
}
