import Foundation
import Testing

@Suite struct PortTests {
    @Test func portsOnBridgesAndRoutersWithDeviceFilter() async throws {
        try await withAPI { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let router = try await api.create("/v1/routers", Body.router("edge"))
            let bridgePort = try await api.post("/v1/ports", Body.bridgePort(bridge, name: "vm1"))
            #expect(bridgePort.status == .created)
            let a = try #require(bridgePort.string("id"))
            #expect(try #require(bridgePort.int("tunnelKey")) > 0)
            #expect(bridgePort.string("mac") != nil, "a bridge port gets a MAC when none is given")
            let b = try await api.create("/v1/ports", Body.bridgePort(bridge))
            let routerPort = try await api.post("/v1/ports", Body.routerPort(router, address: "10.0.0.1", subnet: "10.0.0.0/24"))
            let c = try #require(routerPort.string("id"))
            let mac = try #require(routerPort.string("mac"), "a router port gets a MAC when none is given")
            #expect(mac.split(separator: ":").count == 6)

            #expect(try await api.get("/v1/ports").itemIDs == [a, b, c].sorted())
            #expect(try await api.get("/v1/ports?deviceId=\(bridge)").itemIDs == [a, b].sorted())
            #expect(try await api.get("/v1/ports?deviceId=\(router)").itemIDs == [c])
            #expect(try await api.get("/v1/ports?deviceId=\(router.uppercased())").itemIDs == [c])

            // PUT keeps deviceId, deviceKind and mac when omitted.
            let replaced = try await api.put("/v1/ports/\(c)", #"{"name": "uplink", "address": "10.0.0.1", "subnet": "10.0.0.0/24"}"#)
            #expect(replaced.status == .ok, "\(replaced.text)")
            #expect(replaced.string("deviceId") == router)
            #expect(replaced.string("deviceKind") == "router")
            #expect(replaced.string("mac") == mac)
            #expect(replaced.string("name") == "uplink")
            let renamed = try await api.put("/v1/ports/\(a)", #"{"name": "vm1-renamed", "adminStateUp": false}"#)
            #expect(renamed.string("deviceId") == bridge)
            #expect(renamed.bool("adminStateUp") == false)

            // A port cannot move to another device.
            let moved = try await api.put("/v1/ports/\(b)", Body.bridgePort(try await api.create("/v1/bridges", Body.bridge("db"))))
            expectError(moved, .conflict, "conflict", mentioning: ["deviceId", "cannot change"])
        }
    }

    @Test func portValidationAndReferences() async throws {
        try await withAPI { api in
            let router = try await api.create("/v1/routers", Body.router("edge"))
            let noAddress = try await api.post("/v1/ports", #"{"deviceId": "\#(router)", "deviceKind": "router"}"#)
            expectError(noAddress, .unprocessableContent, "invalid", mentioning: ["address is required", "subnet is required"])
            let outside = try await api.post("/v1/ports", Body.routerPort(router, address: "10.0.1.5", subnet: "10.0.0.0/24"))
            expectError(outside, .unprocessableContent, "invalid", mentioning: ["address: '10.0.1.5' is outside"])
            // A router id given as a bridge: the bridge does not exist.
            let wrongKind = try await api.post("/v1/ports", Body.bridgePort(router))
            expectError(wrongKind, .unprocessableContent, "invalid", mentioning: ["deviceId", "bridge \(router) does not exist"])
            let badKind = try await api.post("/v1/ports", #"{"deviceId": "\#(router)", "deviceKind": "switch"}"#)
            expectError(badKind, .badRequest, "malformed", mentioning: ["deviceKind"])
        }
    }

    @Test func linkAndUnlink() async throws {
        try await withAPI { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let router = try await api.create("/v1/routers", Body.router("edge"))
            let bridgePort = try await api.create("/v1/ports", Body.bridgePort(bridge))
            let routerPort = try await api.create("/v1/ports", Body.routerPort(router, address: "10.0.0.1", subnet: "10.0.0.0/24"))

            let linked = try await api.post("/v1/ports/\(routerPort)/link", #"{"peerId": "\#(bridgePort)"}"#)
            #expect(linked.status == .ok, "\(linked.text)")
            #expect(linked.string("peerId") == bridgePort)
            #expect(try await api.get("/v1/ports/\(bridgePort)").string("peerId") == routerPort)

            // A linked port cannot be linked again, nor deleted.
            let other = try await api.create("/v1/ports", Body.bridgePort(bridge))
            expectError(try await api.post("/v1/ports/\(other)/link", #"{"peerId": "\#(routerPort)"}"#), .conflict, "conflict", mentioning: ["already linked"])
            expectError(try await api.delete("/v1/ports/\(bridgePort)"), .conflict, "conflict", mentioning: ["peerId"])
            // PUT ignores peerId: links change only through /link.
            let put = try await api.put("/v1/ports/\(bridgePort)", #"{"name": "uplink"}"#)
            #expect(put.string("peerId") == routerPort)

            let unlinked = try await api.delete("/v1/ports/\(bridgePort)/link")
            #expect(unlinked.status == .ok)
            #expect(unlinked.string("peerId") == nil)
            #expect(try await api.get("/v1/ports/\(routerPort)").string("peerId") == nil)
            expectError(try await api.delete("/v1/ports/\(bridgePort)/link"), .conflict, "conflict", mentioning: ["is not linked"])
        }
    }

    @Test func linkErrors() async throws {
        try await withAPI { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let a = try await api.create("/v1/ports", Body.bridgePort(bridge))
            let b = try await api.create("/v1/ports", Body.bridgePort(bridge))
            expectError(try await api.post("/v1/ports/\(a)/link", #"{"peerId": "\#(b)"}"#), .conflict, "conflict", mentioning: ["same device"])
            expectError(try await api.post("/v1/ports/\(a)/link", #"{"peerId": "\#(a)"}"#), .conflict, "conflict", mentioning: ["itself"])
            let missing = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
            expectError(try await api.post("/v1/ports/\(a)/link", #"{"peerId": "\#(missing)"}"#), .unprocessableContent, "invalid", mentioning: ["peerId", missing])
            expectError(try await api.post("/v1/ports/\(a)/link", #"{"peer": "\#(b)"}"#), .badRequest, "malformed", mentioning: ["peerId"])
            expectError(try await api.post("/v1/ports/\(missing)/link", #"{"peerId": "\#(b)"}"#), .notFound, "not_found")
        }
    }

    @Test func peerIdAndTunnelKeyInACreateBodyAreIgnored() async throws {
        try await withAPI { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let other = try await api.create("/v1/ports", Body.bridgePort(bridge))
            let reply = try await api.post("/v1/ports", #"{"deviceId": "\#(bridge)", "deviceKind": "bridge", "peerId": "\#(other)", "tunnelKey": 99999999}"#)
            #expect(reply.status == .created, "\(reply.text)")
            #expect(reply.string("peerId") == nil)
            #expect(reply.int("tunnelKey") != 99999999)
        }
    }
}
