import Foundation
import Testing

/// Installing Hive as an operator does (scripts/install.sh into a prefix),
/// and the API's tokens file: owner-only, long tokens, errors that name the
/// line and never the token, reloaded on SIGHUP.
@Suite struct InstallTests {
    @Test func theDocumentedCommandInstallsIntoAPrefixWithCompletionAndUnitsThatVerify() async throws {
        try await withTemporaryDirectory { prefix in
            let root = repositoryRoot()
            let installed = try runCommand(["bash", root.appendingPathComponent("scripts/install.sh").path, "--prefix", prefix, "--binary", try hiveExecutable().path])
            #expect(installed.status == 0, "\(installed.output)")
            let version = try runCommand([prefix + "/bin/hive", "--version"])
            #expect(version.status == 0 && version.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3, "\(version.output)")
            let completion = try String(contentsOfFile: prefix + "/share/bash-completion/completions/hive", encoding: .utf8)
            #expect(completion.contains("complete") && completion.contains("hive"))
            #expect(FileManager.default.fileExists(atPath: prefix + "/share/zsh/site-functions/_hive"))
            let units = ["hive-api.service", "hive-agent.service"].map { prefix + "/lib/systemd/system/" + $0 }
            for unit in units {
                let text = try String(contentsOfFile: unit, encoding: .utf8)
                #expect(text.contains("ExecStart=\(prefix)/bin/hive ") && text.contains("EnvironmentFile=\(prefix)/etc/hive/"), "\(text)")
                #expect(!text.contains("@"), "every placeholder filled: \(text)")
            }
            #expect(try String(contentsOfFile: units[0], encoding: .utf8).contains("--tokens-file \(prefix)/etc/hive/tokens"), "no token on the command line")
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
                Issue.record("systemd-analyze is missing: run scripts/install-test-deps.sh")
                return
            }
            let verified = try runCommand(["systemd-analyze", "verify"] + units)
            #expect(verified.status == 0, "\(verified.output)")

            // Settings the operator changed are kept by a second install.
            try "HIVE_API_LISTEN=127.0.0.1:1\n".write(toFile: prefix + "/etc/hive/api.env", atomically: true, encoding: .utf8)
            #expect(try runCommand(["bash", root.appendingPathComponent("scripts/install.sh").path, "--prefix", prefix, "--binary", try hiveExecutable().path]).status == 0)
            #expect(try String(contentsOfFile: prefix + "/etc/hive/api.env", encoding: .utf8) == "HIVE_API_LISTEN=127.0.0.1:1\n")
        }
    }

    @Test func theTokensFileIsPrivateLongAndReloadedOnHangUp() async throws {
        try await withTemporaryDirectory { directory in
            let tokens = directory + "/tokens"
            let admin = "admin-0123456789abcdef", acme = "acme-0123456789abcdef", globex = "globex-0123456789abcdef"
            func write(_ text: String, mode: Int) throws {
                try text.write(toFile: tokens, atomically: false, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: tokens)
            }
            let arguments = ["--listen", "127.0.0.1:0", "--data-dir", directory + "/store", "--tokens-file", tokens]

            // Readable by others, or a short token: refused, naming the line, never the token.
            try write("admin \(admin)\n", mode: 0o644)
            let open = try APIProcess(arguments: arguments)
            #expect(await open.waitForExit() != 0)
            #expect(open.standardError.contains("chmod 600"), "\(open.standardError)")
            try write("# the admin\nadmin \(admin)\ntenant acme short\n", mode: 0o600)
            let short = try APIProcess(arguments: arguments)
            #expect(await short.waitForExit() != 0)
            #expect(short.standardError.contains("line 3") && short.standardError.contains("at least 16"), "\(short.standardError)")
            #expect(!short.standardError.contains("acme short"), "the token is not printed")

            try write("admin \(admin)\ntenant acme \(acme)\n", mode: 0o600)
            let server = try APIProcess(arguments: arguments)
            let url = try await server.waitForURL()
            let bridges = url.appendingPathComponent("v1/bridges")
            #expect(try await HTTP.send("GET", bridges, token: acme).status == 200)
            #expect(try await HTTP.send("GET", bridges, token: globex).status == 401)

            // globex in, acme out, without a restart.
            try write("admin \(admin)\ntenant globex \(globex)\n", mode: 0o600)
            kill(server.process.processIdentifier, SIGHUP)
            var reloaded = false
            for _ in 0..<50 where !reloaded {
                try await Task.sleep(for: .milliseconds(100))
                reloaded = try await HTTP.send("GET", bridges, token: globex).status == 200
            }
            #expect(reloaded, "SIGHUP reloads the tokens: \(server.standardError)")
            #expect(try await HTTP.send("GET", bridges, token: acme).status == 401, "a removed token stops working")

            // A broken file keeps the tokens in force.
            try write("admin\n", mode: 0o600)
            kill(server.process.processIdentifier, SIGHUP)
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await HTTP.send("GET", bridges, token: globex).status == 200)
            kill(server.process.processIdentifier, SIGTERM)
            #expect(await server.waitForExit() == 0)
            #expect(!server.standardError.contains(globex) && !server.standardError.contains(admin), "no token in the log")
        }
    }
}
