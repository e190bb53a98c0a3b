import Foundation
import Testing

/// Bad input ends with a non-zero exit and a message on stderr that names
/// what was wrong (the flag or field and the value) and what would do.
@Suite("hive CLI against a live API: errors")
struct ErrorTests {
    @Test func badInputIsExplainedWithTheFieldAndValue() async throws {
        try await withLiveServer { server in
            try await server.ok("bridge", "create", "web")
            try await server.ok("bridge", "create", "db")
            try await server.ok("router", "create", "edge")
            try await server.ok("port", "create", "to-web", "--router", "edge", "--address", "10.0.1.1/24")
            try await server.ok("port", "create", "uplink", "--bridge", "web")
            try await server.ok("port", "create", "uplink", "--bridge", "db")
            try await server.ok("chain", "create", "web-in")

            // Caught by the CLI before any request: the flag and the value, and what is expected.
            let badAddress = try await server.fails("port", "create", "x", "--router", "edge", "--address", "10.0.1.300/24")
            #expect(badAddress.stderr.contains("--address") && badAddress.stderr.contains("10.0.1.300/24"), "\(badAddress)")
            #expect(badAddress.stderr.contains("like 10.0.0.1/24"), "\(badAddress)")
            let noAddress = try await server.fails("port", "create", "x", "--router", "edge")
            #expect(noAddress.stderr.contains("--address"), "\(noAddress)")
            let badRange = try await server.fails("rule", "create", "--chain", "web-in", "--protocol", "tcp", "--dst-port", "90-80", "--action", "accept")
            #expect(badRange.stderr.contains("--dst-port") && badRange.stderr.contains("90-80"), "\(badRange)")
            let badKind = try await server.fails("route", "create", "--router", "edge", "--destination", "10.0.9.0/24", "--kind", "sideways")
            #expect(badKind.stderr.contains("sideways") && badKind.stderr.contains("blackhole"), "\(badKind)")
            let both = try await server.fails("rule", "create", "--chain", "web-in", "--src", "10.0.0.0/8", "--not-src", "10.0.0.0/8", "--action", "drop")
            #expect(both.stderr.contains("--src") && both.stderr.contains("--not-src"), "\(both)")
            let jump = try await server.fails("rule", "create", "--chain", "web-in", "--action", "jump")
            #expect(jump.stderr.contains("--jump-chain"), "\(jump)")

            // Refused by the API: its message names the field and value; the CLI adds the flag.
            let hostBits = try await server.fails("route", "create", "--router", "edge", "--destination", "10.0.1.5/24", "--port", "to-web")
            #expect(hostBits.stderr.contains("destination") && hostBits.stderr.contains("10.0.1.5/24"), "\(hostBits)")
            #expect(hostBits.stderr.contains("10.0.1.0/24"), "says what would be accepted: \(hostBits)")
            #expect(hostBits.stderr.contains("--destination"), "names the flag: \(hostBits)")
            let noPort = try await server.fails("route", "create", "--router", "edge", "--destination", "10.0.9.0/24")
            #expect(noPort.stderr.contains("egressPortId") && noPort.stderr.contains("--port"), "\(noPort)")
            let portsWithoutProtocol = try await server.fails("rule", "create", "--chain", "web-in", "--dst-port", "80", "--action", "accept")
            #expect(portsWithoutProtocol.stderr.contains("destinationPorts") && portsWithoutProtocol.stderr.contains("--dst-port"),
                    "\(portsWithoutProtocol)")
            let outsideSubnet = try await server.fails("dhcp", "create", "--bridge", "web", "--subnet", "10.0.1.0/24",
                                                       "--range", "10.0.1.100-10.0.2.10")
            #expect(outsideSubnet.stderr.contains("rangeEnd") && outsideSubnet.stderr.contains("10.0.2.10"), "\(outsideSubnet)")
            #expect(outsideSubnet.stderr.contains("--range"), "\(outsideSubnet)")
            let duplicate = try await server.fails("bridge", "create", "web")
            #expect(duplicate.stderr.contains("web") && duplicate.stderr.contains("409"), "\(duplicate)")
            let badPosition = try await server.fails("rule", "create", "--chain", "web-in", "--action", "drop", "--position", "7")
            #expect(badPosition.stderr.contains("position") && badPosition.stderr.contains("7"), "\(badPosition)")

            // Names: unknown ones list what exists; ambiguous ones list the candidates' ids.
            let unknown = try await server.fails("bridge", "show", "wbe")
            #expect(unknown.stderr.contains("no bridge named 'wbe'") && unknown.stderr.contains("db, web"), "\(unknown)")
            let uplinks = try await server.ok("port", "list", "--json").items().filter { $0["name"] as? String == "uplink" }
            let ambiguous = try await server.fails("port", "show", "uplink")
            #expect(ambiguous.stderr.contains("2 ports are named 'uplink'"), "\(ambiguous)")
            for port in uplinks {
                #expect(ambiguous.stderr.contains(port["id"] as? String ?? "?"), "lists each candidate's id: \(ambiguous)")
            }
            #expect(ambiguous.stderr.contains("--bridge"), "says how to pick one: \(ambiguous)")
            let missingChain = try await server.fails("port", "update", "uplink", "--bridge", "web", "--inbound-chain", "nope")
            #expect(missingChain.stderr.contains("no chain named 'nope'") && missingChain.stderr.contains("web-in"), "\(missingChain)")
            let notAnID = try await server.fails("route", "show", "10.0.1.0/24")
            #expect(notAnID.stderr.contains("'10.0.1.0/24' is not a route id"), "\(notAnID)")
            let gone = try await server.fails("route", "show", UUID().uuidString.lowercased())
            #expect(gone.stderr.contains("not found") || gone.stderr.contains("404"), "\(gone)")

            // Tokens and roles.
            let badToken = try await server.fails("bridge", "list", token: "wrong")
            #expect(badToken.stderr.contains("401") && badToken.stderr.contains("HIVE_TOKEN"), "\(badToken)")
            let tenantOnAdmin = try await server.fails("tunnel-zone", "list")
            #expect(tenantOnAdmin.stderr.contains("403") && tenantOnAdmin.stderr.contains("admin"), "\(tenantOnAdmin)")

            // Nothing bad was stored along the way.
            #expect(try await server.ok("bridge", "list", "--json").items().count == 2)
            #expect(try await server.ok("route", "list", "--json").items().isEmpty)
            #expect(try await server.ok("rule", "list", "--chain", "web-in", "--json").items().isEmpty)
        }
    }

    @Test func aMissingTokenSaysHowToGiveOne() async throws {
        let result = try await runHive(["bridge", "list"], environment: ["HIVE_ENDPOINT": "http://127.0.0.1:9"])
        #expect(!result.succeeded)
        #expect(result.stderr.contains("--token") && result.stderr.contains("HIVE_TOKEN"), "\(result)")
        assertReadableError(result)
    }

    /// `--token-file` / HIVE_TOKEN_FILE: a private file of one token; a
    /// readable-by-others or short one is refused without printing the token.
    @Test func theTokenComesFromAPrivateFile() async throws {
        try await withLiveServer { server in
            let directory = server.directory.path
            let good = directory + "/acme-token", open = directory + "/open-token", short = directory + "/short-token"
            #expect(FileManager.default.createFile(atPath: good, contents: Data((LiveServer.acmeToken + "\n").utf8),
                                                   attributes: [.posixPermissions: 0o600]))
            #expect(FileManager.default.createFile(atPath: open, contents: Data(LiveServer.acmeToken.utf8),
                                                   attributes: [.posixPermissions: 0o644]))
            #expect(FileManager.default.createFile(atPath: short, contents: Data("sh0rt-s3cret".utf8),
                                                   attributes: [.posixPermissions: 0o600]))
            let endpoint = ["HIVE_ENDPOINT": server.endpoint.absoluteString]
            let byFlag = try await runHive(["bridge", "list", "--token-file", good], environment: endpoint)
            #expect(byFlag.succeeded && byFlag.stdout.contains("No bridges"), "\(byFlag)")
            let byEnvironment = try await runHive(["bridge", "list"], environment: endpoint.merging(["HIVE_TOKEN_FILE": good]) { $1 })
            #expect(byEnvironment.succeeded, "\(byEnvironment)")
            let readable = try await runHive(["bridge", "list", "--token-file", open], environment: endpoint)
            #expect(!readable.succeeded && readable.stderr.contains("chmod 600"), "\(readable)")
            #expect(!readable.stderr.contains(LiveServer.acmeToken), "\(readable)")
            let tooShort = try await runHive(["bridge", "list"], environment: endpoint.merging(["HIVE_TOKEN_FILE": short]) { $1 })
            #expect(!tooShort.succeeded && tooShort.stderr.contains("at least 16"), "\(tooShort)")
            #expect(!tooShort.stderr.contains("sh0rt-s3cret") && !tooShort.stdout.contains("sh0rt-s3cret"), "\(tooShort)")
            let both = try await runHive(["bridge", "list", "--token-file", good, "--token", "x"], environment: endpoint)
            #expect(!both.succeeded && both.stderr.contains("not both"), "\(both)")
            assertReadableError(tooShort)
        }
    }

    @Test func anUnreachableAPISaysWhereItLookedAndWhatToStart() async throws {
        let port = try freePort()
        let result = try await runHive(["router", "list", "--endpoint", "http://127.0.0.1:\(port)", "--token", "T"])
        #expect(!result.succeeded)
        #expect(result.stderr.contains("cannot reach the Hive API at http://127.0.0.1:\(port)"), "\(result)")
        #expect(result.stderr.contains("hive api"), "\(result)")
        assertReadableError(result)
    }

    @Test func aBadEndpointIsNamed() async throws {
        let result = try await runHive(["bridge", "list", "--endpoint", "127.0.0.1:9696", "--token", "T"])
        #expect(!result.succeeded)
        #expect(result.stderr.contains("'127.0.0.1:9696'") && result.stderr.contains("http://"), "\(result)")
    }

    @Test func helpTeachesANewUserToBuildATopology() async throws {
        let help = try await runHive(["--help"])
        #expect(help.succeeded, "\(help)")
        for expected in ["hive bridge create", "hive port link", "hive route create", "hive rule create", "--address auto",
                         "hive tunnel-zone add-member", "hive binding create", "HIVE_TOKEN", "--generate-completion-script"] {
            #expect(help.stdout.contains(expected), "hive --help lacks \(expected)")
        }
        for command in ["bridge", "router", "port", "route", "chain", "rule", "port-group", "ip-group", "dhcp",
                        "host", "tunnel-zone", "binding"] {
            let commandHelp = try await runHive([command, "--help"])
            #expect(commandHelp.succeeded && commandHelp.stdout.contains("Examples:"), "hive \(command) --help: \(commandHelp)")
        }
        let completion = try await runHive(["--generate-completion-script", "bash"])
        #expect(completion.succeeded && completion.stdout.contains("tunnel-zone"), "\(completion)")
    }
}
