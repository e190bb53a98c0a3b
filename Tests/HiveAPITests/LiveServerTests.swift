import Foundation
import HummingbirdTesting
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The API over real HTTP on a loopback port: in-process (`.live`) and as
/// the `hive api` command a user runs.
@Suite struct LiveServerTests {
    @Test func resourcesOverHTTP() async throws {
        try await withAPI(.live) { api in
            let bridge = try await api.create("/v1/bridges", Body.bridge("web"))
            let router = try await api.create("/v1/routers", Body.router("edge"))
            let bridgePort = try await api.create("/v1/ports", Body.bridgePort(bridge))
            let routerPort = try await api.create("/v1/ports", Body.routerPort(router, address: "10.0.0.1", subnet: "10.0.0.0/24"))
            #expect(try await api.post("/v1/ports/\(routerPort)/link", #"{"peerId": "\#(bridgePort)"}"#).string("peerId") == bridgePort)
            #expect(try await api.get("/v1/ports?deviceId=\(bridge)").itemIDs == [bridgePort])

            let chain = try await api.create("/v1/chains", Body.chain("fw"))
            let second = try await api.create("/v1/chains/\(chain)/rules", Body.acceptRule)
            let first = try await api.create("/v1/chains/\(chain)/rules?position=0", #"{"action": {"type": "drop"}}"#)
            #expect(try await api.get("/v1/chains/\(chain)/rules").itemIDs == [first, second])

            let read = try await api.get("/v1/bridges/\(bridge)")
            let etag = try #require(read.headers[.eTag])
            #expect(try await api.put("/v1/bridges/\(bridge)", Body.bridge("web2"), ifMatch: etag).status == .ok)
            expectError(try await api.put("/v1/bridges/\(bridge)", Body.bridge("web3"), ifMatch: etag), .conflict, "stale_revision")

            expectError(try await api.get("/v1/bridges", token: nil), .unauthorized, "unauthorized")
            expectError(try await api.get("/v1/bridges/\(bridge)", token: Token.globex), .notFound, "not_found")
            expectError(try await api.post("/v1/bridges", #"{"name": "#), .badRequest, "malformed")
            expectError(try await api.get("/v1/hosts", token: Token.acme), .forbidden, "forbidden")
        }
    }

    @Test func hiveAPICommandServesAndShutsDownGracefully() async throws {
        try await withTemporaryDirectory { directory in
            let dataDirectory = directory + "/store"
            let arguments = ["--listen", "127.0.0.1:0", "--data-dir", dataDirectory, "--admin-token", "live-admin-token-01", "--tenant-token", "acme=live-acme-token-01"]
            let server = try APIProcess(arguments: arguments)
            let url = try await server.waitForURL()
            #expect(url.host == "127.0.0.1")
            #expect(server.standardOutput.contains("embedded store in \(dataDirectory)"))

            let health = try await HTTP.send("GET", url.appendingPathComponent("healthz"))
            #expect(health.status == 200)
            let created = try await HTTP.send("POST", url.appendingPathComponent("v1/bridges"), token: "live-acme-token-01", body: Body.bridge("web"))
            #expect(created.status == 201, "\(created.text)")
            #expect(try await HTTP.send("GET", url.appendingPathComponent("v1/bridges"), token: "wrong").status == 401)

            kill(server.process.processIdentifier, SIGTERM)
            #expect(await server.waitForExit() == 0, "SIGTERM shuts down gracefully: \(server.standardError)")

            // The store was closed cleanly: a new server opens it and finds the bridge.
            let restarted = try APIProcess(arguments: arguments)
            let again = try await restarted.waitForURL()
            let list = try await HTTP.send("GET", again.appendingPathComponent("v1/bridges"), token: "live-admin-token-01")
            #expect(list.text.contains(#""name":"web""#), "\(list.text)")
            #expect(list.text.contains(#""tenantId":"acme""#))
            kill(restarted.process.processIdentifier, SIGINT)
            #expect(await restarted.waitForExit() == 0)
        }
    }

    @Test func hiveAPICommandRefusesToStartWithoutTokens() async throws {
        try await withTemporaryDirectory { directory in
            let server = try APIProcess(arguments: ["--listen", "127.0.0.1:0", "--data-dir", directory + "/store"])
            #expect(await server.waitForExit() != 0)
            #expect(server.standardError.contains("no API token configured"), "\(server.standardError)")
            #expect(server.standardOutput.isEmpty)

            let badTenant = try APIProcess(arguments: ["--data-dir", directory + "/store", "--tenant-token", "acme"])
            #expect(await badTenant.waitForExit() != 0)
            #expect(badTenant.standardError.contains("TENANT=TOKEN"), "\(badTenant.standardError)")

            // Every source refuses a short token, naming the source and never the token.
            let secret = "sh0rt-s3cret"
            let shortAdmin = try APIProcess(arguments: ["--data-dir", directory + "/store", "--admin-token", secret])
            let shortTenant = try APIProcess(arguments: ["--data-dir", directory + "/store"], environment: ["HIVE_TENANT_TOKENS": "acme=\(secret)"])
            let malformed = try APIProcess(arguments: ["--data-dir", directory + "/store", "--tenant-token", "a/b=\(secret)-but-long-enough"])
            for (process, source) in [(shortAdmin, "--admin-token"), (shortTenant, "HIVE_TENANT_TOKENS"), (malformed, "--tenant-token")] {
                #expect(await process.waitForExit() != 0)
                #expect(process.standardError.contains(source), "\(process.standardError)")
                #expect(!process.standardError.contains(secret) && !process.standardOutput.contains(secret), "\(process.standardError)")
            }
            #expect(shortAdmin.standardError.contains("at least 16"), "\(shortAdmin.standardError)")
            #expect(shortTenant.standardError.contains("tenant 'acme'") && shortTenant.standardError.contains("at least 16"),
                    "\(shortTenant.standardError)")
        }
    }

    @Test func hiveAPICommandTakesTokensFromTheEnvironment() async throws {
        try await withTemporaryDirectory { directory in
            let server = try APIProcess(
                arguments: ["--listen", "127.0.0.1:0", "--data-dir", directory + "/store"],
                environment: ["HIVE_ADMIN_TOKEN": "env-admin-token-001", "HIVE_TENANT_TOKENS": "acme=env-acme-token-001,globex=env-globex-token-01"])
            let url = try await server.waitForURL()
            let bridges = url.appendingPathComponent("v1/bridges")
            #expect(try await HTTP.send("GET", bridges, token: "env-admin-token-001").status == 200)
            #expect(try await HTTP.send("POST", bridges, token: "env-globex-token-01", body: Body.bridge("db")).status == 201)
            #expect(try await HTTP.send("GET", bridges, token: "env-acme-token-001").text == #"{"items":[]}"#)
            kill(server.process.processIdentifier, SIGTERM)
            #expect(await server.waitForExit() == 0)
        }
    }
}

/// Minimal HTTP over URLSession, for talking to a separate process.
enum HTTP {
    struct Reply {
        var status: Int
        var text: String
    }

    static func send(_ method: String, _ url: URL, token: String? = nil, body: String? = nil) async throws -> Reply {
        var request = URLRequest(url: url)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return Reply(status: (response as? HTTPURLResponse)?.statusCode ?? 0, text: String(decoding: data, as: UTF8.self))
    }
}
