import Foundation
import Testing

/// Requests the server cannot read: always 4xx, naming what was wrong.
@Suite struct ErrorFormatTests {
    @Test func malformedJSONIsNamed() async throws {
        try await withAPI { api in
            let reply = try await api.post("/v1/bridges", #"{"name": "web""#)
            expectError(reply, .badRequest, "malformed", mentioning: ["not valid JSON"])
        }
    }

    @Test func emptyAndNonObjectBodiesAreMalformed() async throws {
        try await withAPI { api in
            expectError(try await api.send(.post, "/v1/bridges"), .badRequest, "malformed", mentioning: ["empty"])
            expectError(try await api.post("/v1/bridges", "[1, 2]"), .badRequest, "malformed", mentioning: ["not a JSON object"])
            expectError(try await api.post("/v1/bridges", "\"web\""), .badRequest, "malformed", mentioning: ["not a JSON object"])
        }
    }

    @Test func wrongFieldTypesNameTheField() async throws {
        try await withAPI { api in
            let reply = try await api.post("/v1/bridges", #"{"name": "web", "adminStateUp": "yes"}"#)
            expectError(reply, .badRequest, "malformed", mentioning: ["adminStateUp", "true or false"])
            #expect(reply.errorField == "adminStateUp")

            let number = try await api.post("/v1/bridges", #"{"name": 42}"#)
            expectError(number, .badRequest, "malformed", mentioning: ["'name'"])

            let missing = try await api.post("/v1/bridges", #"{"adminStateUp": true}"#)
            expectError(missing, .badRequest, "malformed", mentioning: ["field 'name' is missing"])
            #expect(missing.errorField == "name")
        }
    }

    @Test func badValuesInsideFieldsNameThePathAndValue() async throws {
        try await withAPI { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let reply = try await api.post(
                "/v1/bridges/\(bridge)/dhcp-subnets", #"{"subnet": "10.0.0.0/33", "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.20"}"#)
            expectError(reply, .badRequest, "malformed", mentioning: ["subnet", "'10.0.0.0/33'", "not an IPv4 CIDR"])
            #expect(reply.errorField == "subnet")

            let badChain = try await api.post("/v1/bridges", #"{"name": "x", "inboundChainId": "chain-1"}"#)
            expectError(badChain, .badRequest, "malformed", mentioning: ["inboundChainId", "'chain-1'", "UUID"])

            let outOfRange = try await api.post("/v1/routers", #"{"name": "r"}"#)
            let router = try #require(outOfRange.string("id"))
            let weight = try await api.post("/v1/routers/\(router)/routes", #"{"destination": "0.0.0.0/0", "kind": "blackhole", "weight": -1}"#)
            expectError(weight, .badRequest, "malformed", mentioning: ["weight"])
        }
    }

    @Test func nullMeansAbsentExceptForFieldsTheServerFillsIn() async throws {
        try await withAPI { api in
            let created = try await api.post("/v1/bridges", #"{"name": "web", "inboundChainId": null, "adminStateUp": null}"#)
            #expect(created.status == .created, "\(created.text)")
            #expect(created.bool("adminStateUp") == true)
            let id = try #require(created.string("id"))
            let nullID = try await api.post("/v1/bridges", #"{"id": null, "name": "db"}"#)
            expectError(nullID, .badRequest, "malformed", mentioning: ["'id' is null", "leave it out"])
            let router = try await api.create("/v1/routers", Body.router("edge"))
            let port = try await api.create("/v1/ports", Body.routerPort(router, address: "10.0.0.1", subnet: "10.0.0.0/24"))
            expectError(try await api.put("/v1/ports/\(port)", #"{"deviceId": null}"#), .badRequest, "malformed", mentioning: ["deviceId"])
            // tenantId: null is no tenant.
            let owned = try await api.create("/v1/bridges", #"{"name": "shared", "tenantId": "acme"}"#)
            #expect(try await api.put("/v1/bridges/\(owned)", #"{"name": "shared", "tenantId": null}"#).string("tenantId") == nil)
            #expect(try await api.get("/v1/bridges/\(id)").status == .ok)
        }
    }

    @Test func unknownAndBadQueryParametersAreRefused() async throws {
        try await withAPI { api in
            let unknown = try await api.get("/v1/ports?device=abc")
            expectError(unknown, .badRequest, "malformed", mentioning: ["'device'", "deviceId"])
            let bad = try await api.get("/v1/ports?deviceId=abc")
            expectError(bad, .badRequest, "malformed", mentioning: ["deviceId", "'abc'"])
            let none = try await api.get("/v1/bridges?limit=3")
            expectError(none, .badRequest, "malformed", mentioning: ["'limit'", "takes no query parameters"])
        }
    }

    @Test func unknownPathsAre404AndWrongMethods405() async throws {
        try await withAPI { api in
            let unknown = try await api.get("/v1/switches")
            expectError(unknown, .notFound, "not_found", mentioning: ["/v1/switches"])
            let wrongMethod = try await api.send(.patch, "/v1/bridges")
            expectError(wrongMethod, .methodNotAllowed, "method_not_allowed", mentioning: ["GET, POST"])
            #expect(wrongMethod.headers[.allow] == "GET, POST")
            let noPut = try await api.send(.put, "/v1/bindings/3f2504e0-4f89-11d3-9a0c-0305e82c3301", json: "{}")
            #expect(noPut.status == .methodNotAllowed)
            #expect(noPut.headers[.allow] == "DELETE, GET")
        }
    }

    @Test func oversizedBodiesAre413() async throws {
        try await withAPI { api in
            let huge = #"{"name": "\#(String(repeating: "x", count: 1 << 20))"}"#
            expectError(try await api.post("/v1/bridges", huge), .contentTooLarge, "too_large")
        }
    }
}
