import Foundation
import HiveModel
import Testing

/// Bridges exercise the handlers every resource shares: create, read, list,
/// replace, delete, ETag / If-Match, and their error paths.
@Suite struct BridgeTests {
    @Test func createReadListReplaceDelete() async throws {
        try await withAPI { api in
            let created = try await api.post("/v1/bridges", Body.bridge("web", extra: #", "arpSuppression": false"#))
            #expect(created.status == .created)
            let id = try #require(created.string("id"))
            #expect(created.string("name") == "web")
            #expect(created.bool("arpSuppression") == false)
            #expect(created.bool("adminStateUp") == true)
            let tunnelKey = try #require(created.int("tunnelKey"))
            #expect(tunnelKey > 0, "the server allocates a tunnel key")
            let revision = try #require(created.int("revision"))
            #expect(created.headers[.eTag] == "\"\(revision)\"")

            let read = try await api.get("/v1/bridges/\(id)")
            #expect(read.status == .ok)
            #expect(read.string("name") == "web")
            #expect(read.headers[.eTag] == "\"\(revision)\"")

            let second = try await api.create("/v1/bridges", Body.bridge("db"))
            let list = try await api.get("/v1/bridges")
            #expect(list.status == .ok)
            #expect(list.itemIDs == [id, second].sorted(), "lists are sorted by id")
            #expect(list.items.allSatisfy { $0["revision"] is NSNumber })

            // PUT replaces; tunnelKey is the server's, whatever the body says.
            let replaced = try await api.put("/v1/bridges/\(id)", #"{"name": "web2", "adminStateUp": false, "tunnelKey": 5}"#)
            #expect(replaced.status == .ok, "\(replaced.text)")
            #expect(replaced.string("name") == "web2")
            #expect(replaced.bool("adminStateUp") == false)
            #expect(replaced.bool("arpSuppression") == true, "PUT replaces: omitted fields take their defaults")
            #expect(replaced.int("tunnelKey") == tunnelKey)
            #expect(try #require(replaced.int("revision")) > revision)

            let deleted = try await api.delete("/v1/bridges/\(id)")
            #expect(deleted.status == .noContent)
            #expect(deleted.body.isEmpty)
            expectError(try await api.get("/v1/bridges/\(id)"), .notFound, "not_found", mentioning: ["bridge \(id) not found"])
            #expect(try await api.get("/v1/bridges").itemIDs == [second])
        }
    }

    @Test func createKeepsAGivenIdAndRefusesItTwice() async throws {
        try await withAPI { api in
            let id = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
            let created = try await api.post("/v1/bridges", #"{"id": "\#(id)", "name": "web"}"#)
            #expect(created.string("id") == id)
            let again = try await api.post("/v1/bridges", #"{"id": "\#(id)", "name": "other"}"#)
            expectError(again, .conflict, "conflict", mentioning: [id])
        }
    }

    @Test func ifMatchGuardsReplaceAndDelete() async throws {
        try await withAPI { api in
            let created = try await api.post("/v1/bridges", Body.bridge("web"))
            let id = try #require(created.string("id"))
            let first = try #require(created.headers[.eTag])

            let updated = try await api.put("/v1/bridges/\(id)", Body.bridge("web-1"), ifMatch: first)
            #expect(updated.status == .ok)
            let second = try #require(updated.headers[.eTag])
            #expect(second != first)

            // The first revision is stale now: 409 stale_revision naming both revisions.
            let stale = try await api.put("/v1/bridges/\(id)", Body.bridge("web-2"), ifMatch: first)
            expectError(stale, .conflict, "stale_revision", mentioning: [id, first.trimmingCharacters(in: ["\""])])
            expectError(try await api.delete("/v1/bridges/\(id)", ifMatch: first), .conflict, "stale_revision")
            #expect(try await api.get("/v1/bridges/\(id)").string("name") == "web-1", "a refused change changes nothing")

            // Quotes are optional.
            let unquoted = second.trimmingCharacters(in: ["\""])
            #expect(try await api.delete("/v1/bridges/\(id)", ifMatch: unquoted).status == .noContent)
        }
    }

    @Test func badIfMatchIsMalformed() async throws {
        try await withAPI { api in
            let id = try await api.create("/v1/bridges", Body.bridge("web"))
            let reply = try await api.put("/v1/bridges/\(id)", Body.bridge("x"), ifMatch: "yesterday")
            expectError(reply, .badRequest, "malformed", mentioning: ["If-Match", "'yesterday'"])
            #expect(reply.errorField == "If-Match")
        }
    }

    @Test func duplicateNameIsAConflict() async throws {
        try await withAPI { api in
            _ = try await api.create("/v1/bridges", Body.bridge("web"))
            let duplicate = try await api.post("/v1/bridges", Body.bridge("web"))
            expectError(duplicate, .conflict, "conflict", mentioning: ["web", "already exists"])
            #expect(duplicate.errorField == "name")
            // The same name in another tenant is fine.
            #expect(try await api.post("/v1/bridges", Body.bridge("web"), token: Token.acme).status == .created)
        }
    }

    @Test func bridgeWithPortsIsInUse() async throws {
        try await withAPI { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let port = try await api.create("/v1/ports", Body.bridgePort(bridge))
            let refused = try await api.delete("/v1/bridges/\(bridge)")
            expectError(refused, .conflict, "conflict", mentioning: ["still referenced", port, "deviceId"])
            #expect(try await api.delete("/v1/ports/\(port)").status == .noContent)
            #expect(try await api.delete("/v1/bridges/\(bridge)").status == .noContent)
        }
    }

    @Test func invalidFieldsAreNamedWithTheirValues() async throws {
        try await withAPI { api in
            let reply = try await api.post("/v1/bridges", #"{"name": "   ", "tenantId": "a/b"}"#)
            expectError(reply, .unprocessableContent, "invalid", mentioning: ["name", "tenantId: 'a/b'"])
            let fields = Set(reply.errorDetails.compactMap { $0["field"] })
            #expect(fields == ["name", "tenantId"])
            #expect(reply.errorDetails.contains { $0["field"] == "tenantId" && $0["value"] == "a/b" })

            let uuidName = try await api.post("/v1/bridges", #"{"name": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}"#)
            expectError(uuidName, .unprocessableContent, "invalid", mentioning: ["name: '3f2504e0-4f89-11d3-9a0c-0305e82c3301'", "looks like an object id"])
        }
    }

    @Test func missingBridgeIs404AndBadIdIs400() async throws {
        try await withAPI { api in
            let missing = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
            expectError(try await api.get("/v1/bridges/\(missing)"), .notFound, "not_found", mentioning: [missing])
            expectError(try await api.put("/v1/bridges/\(missing)", Body.bridge("x")), .notFound, "not_found")
            expectError(try await api.delete("/v1/bridges/\(missing)"), .notFound, "not_found")
            let bad = try await api.get("/v1/bridges/not-a-uuid")
            expectError(bad, .badRequest, "malformed", mentioning: ["'not-a-uuid'", "not a bridge id"])
            #expect(bad.errorField == "id")
            #expect(bad.errorValue == "not-a-uuid")
        }
    }

    @Test func replaceRefusesAnotherIdInTheBody() async throws {
        try await withAPI { api in
            let id = try await api.create("/v1/bridges", Body.bridge("web"))
            let other = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
            let reply = try await api.put("/v1/bridges/\(id)", #"{"id": "\#(other)", "name": "web"}"#)
            expectError(reply, .unprocessableContent, "invalid", mentioning: ["id: '\(other)'", id])
        }
    }
}
