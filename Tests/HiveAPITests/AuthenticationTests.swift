import Foundation
import HiveAPI
import Testing

@Suite struct AuthenticationTests {
    @Test func missingOrUnknownTokensAre401() async throws {
        try await withAPI { api in
            let none = try await api.get("/v1/bridges", token: nil)
            expectError(none, .unauthorized, "unauthorized", mentioning: ["missing bearer token"])
            #expect(none.headers[.wwwAuthenticate] == "Bearer")
            expectError(try await api.get("/v1/bridges", token: "guess"), .unauthorized, "unauthorized", mentioning: ["not recognised"])
            expectError(try await api.post("/v1/bridges", Body.bridge("web"), token: "guess"), .unauthorized, "unauthorized")
            let basic = try await api.send(.get, "/v1/bridges", token: nil, headers: [.authorization: "Basic YWRtaW46YWRtaW4="])
            expectError(basic, .unauthorized, "unauthorized", mentioning: ["'Basic'", "Bearer"])
            // A bare token without the scheme is refused without echoing it.
            let bare = try await api.send(.get, "/v1/bridges", token: nil, headers: [.authorization: Token.admin])
            expectError(bare, .unauthorized, "unauthorized", mentioning: ["no scheme", "Bearer"])
            #expect(!bare.text.contains(Token.admin.prefix(8)), "\(bare.text)")
            #expect(try await api.get("/v1/bridges").status == .ok)
            #expect(try await api.send(.get, "/v1/bridges", token: nil, headers: [.authorization: "bearer \(Token.admin)"]).status == .ok)
        }
    }

    @Test func serviceRoutesNeedNoToken() async throws {
        try await withAPI { api async throws in
            #expect(try await api.get("/healthz", token: nil).status == .ok)
            #expect(try await api.get("/metrics", token: nil).status == .ok)
            #expect(try await api.get("/openapi.yaml", token: nil).status == .ok)
        }
    }

    @Test(arguments: ["/v1/hosts", "/v1/tunnel-zones", "/v1/bindings"])
    func adminOnlyResourcesAre403ForTenants(path: String) async throws {
        try await withAPI { api in
            let list = try await api.get(path, token: Token.acme)
            expectError(list, .forbidden, "forbidden", mentioning: ["admin-only", "acme"])
            expectError(try await api.post(path, "{}", token: Token.acme), .forbidden, "forbidden")
            let id = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
            expectError(try await api.get("\(path)/\(id)", token: Token.acme), .forbidden, "forbidden")
            expectError(try await api.delete("\(path)/\(id)", token: Token.acme), .forbidden, "forbidden")
            #expect(try await api.get(path).status == .ok)
        }
    }

    @Test func tenantTokensParse() throws {
        let pairs = try TokenTable.parseTenantTokens("acme=tok1, globex=tok2")
        #expect(pairs.map(\.tenant) == ["acme", "globex"])
        #expect(pairs.map(\.token) == ["tok1", "tok2"])
        #expect(throws: TokenConfigurationError.self) { try TokenTable.parseTenantTokens("acme") }
        #expect(throws: TokenConfigurationError.self) { try TokenTable.parseTenantTokens("=tok") }
        #expect(throws: TokenConfigurationError.self) { try TokenTable.parseTenantTokens("a/b=tok") }
        #expect(throws: TokenConfigurationError.self) { try TokenTable.parseTenantTokens("-=tok") }
        var table = TokenTable()
        table.add(token: "t1", for: .admin)
        table.add(token: "t2", for: .tenant("acme"))
        #expect(table.principal(for: "t1") == .admin)
        #expect(table.principal(for: "t2") == .tenant("acme"))
        #expect(table.principal(for: "t3") == nil)
        #expect(table.principal(for: "t") == nil)
    }
}
