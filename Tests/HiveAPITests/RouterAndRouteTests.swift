import Foundation
import Testing

@Suite struct RouterAndRouteTests {
    @Test func routerCRUD() async throws {
        try await withAPI { api in
            let id = try await api.create("/v1/routers", Body.router("edge"))
            #expect(try await api.get("/v1/routers/\(id)").string("name") == "edge")
            #expect(try await api.get("/v1/routers").itemIDs == [id])
            let replaced = try await api.put("/v1/routers/\(id)", #"{"name": "core", "adminStateUp": false}"#)
            #expect(replaced.string("name") == "core")
            #expect(replaced.bool("adminStateUp") == false)
            #expect(try await api.delete("/v1/routers/\(id)").status == .noContent)
            #expect(try await api.get("/v1/routers").itemIDs.isEmpty)
        }
    }

    @Test func routesTakeTheirRouterFromThePath() async throws {
        try await withAPI { api in
            let router = try await api.create("/v1/routers", Body.router("edge"))
            let other = try await api.create("/v1/routers", Body.router("other"))
            let port = try await api.create("/v1/ports", Body.routerPort(router, address: "10.0.0.1", subnet: "10.0.0.0/24"))

            let created = try await api.post(
                "/v1/routers/\(router)/routes", #"{"destination": "10.1.0.0/16", "nextHopGateway": "10.0.0.254", "egressPortId": "\#(port)"}"#)
            #expect(created.status == .created, "\(created.text)")
            let route = try #require(created.string("id"))
            #expect(created.string("routerId") == router)
            #expect(created.string("source") == "0.0.0.0/0")
            #expect(created.int("weight") == 100)
            #expect(created.string("kind") == "normal")
            _ = try await api.create("/v1/routers/\(other)/routes", #"{"destination": "0.0.0.0/0", "kind": "blackhole"}"#)

            #expect(try await api.get("/v1/routers/\(router)/routes").itemIDs == [route])
            #expect(try await api.get("/v1/routes/\(route)").string("destination") == "10.1.0.0/16")

            // PUT may omit routerId; it stays.
            let replaced = try await api.put("/v1/routes/\(route)", #"{"destination": "10.2.0.0/16", "egressPortId": "\#(port)", "weight": 5}"#)
            #expect(replaced.status == .ok, "\(replaced.text)")
            #expect(replaced.string("routerId") == router)
            #expect(replaced.int("weight") == 5)

            // A routerId in the body must agree with the path.
            let mismatch = try await api.post("/v1/routers/\(router)/routes", #"{"routerId": "\#(other)", "destination": "0.0.0.0/0", "kind": "reject"}"#)
            expectError(mismatch, .unprocessableContent, "invalid", mentioning: ["routerId: '\(other)'", router])

            // Deleting the router takes its routes with it.
            #expect(try await api.delete("/v1/ports/\(port)").status == .noContent)
            #expect(try await api.delete("/v1/routers/\(router)").status == .noContent)
            expectError(try await api.get("/v1/routes/\(route)"), .notFound, "not_found")
        }
    }

    @Test func routeErrors() async throws {
        try await withAPI { api in
            let router = try await api.create("/v1/routers", Body.router("edge"))
            let missingRouter = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
            expectError(
                try await api.post("/v1/routers/\(missingRouter)/routes", #"{"destination": "0.0.0.0/0", "kind": "blackhole"}"#),
                .notFound, "not_found", mentioning: [missingRouter])
            let invalid = try await api.post("/v1/routers/\(router)/routes", #"{"destination": "10.0.0.5/24", "weight": 0}"#)
            expectError(invalid, .unprocessableContent, "invalid", mentioning: ["destination: '10.0.0.5/24'", "weight: '0'", "egressPortId"])
            let missingPort = try await api.post(
                "/v1/routers/\(router)/routes", #"{"destination": "0.0.0.0/0", "egressPortId": "\#(missingRouter)"}"#)
            expectError(missingPort, .unprocessableContent, "invalid", mentioning: ["egressPortId", "does not exist"])
            #expect(missingPort.errorField == "egressPortId")
        }
    }
}
