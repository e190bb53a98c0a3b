import Foundation
import Testing

/// A VM's bridge port with `hive`: its addresses (explicit or auto), allowed
/// address pairs, port security and MAC limit, and the DHCP subnet options
/// they depend on; created, read back as tables and JSON, changed, refused.
@Suite("hive CLI against a live API: port addresses and DHCP options")
struct AddressingTests {
    /// The line of a `show` table that starts with `label`.
    private func line(_ label: String, of result: CommandResult) -> String {
        result.stdout.split(separator: "\n").map(String.init).first { $0.hasPrefix(label + " ") } ?? ""
    }

    @Test func createShowListAndUpdateABridgePortsAddresses() async throws {
        try await withLiveServer { server in
            try await server.ok("bridge", "create", "web")
            let subnet = try await server.ok("dhcp", "create", "--bridge", "web", "--subnet", "10.0.1.0/24",
                                             "--range", "10.0.1.100-10.0.1.199", "--gateway", "10.0.1.1",
                                             "--host-route", "10.9.0.0/16=10.0.1.254", "--host-route", "10.8.0.0/16=10.0.1.253",
                                             "--domain-name", "example.internal", "--json").json()
            #expect(subnet["hostRoutes"] as? [[String: String]] == [["destination": "10.9.0.0/16", "nextHop": "10.0.1.254"],
                                                                   ["destination": "10.8.0.0/16", "nextHop": "10.0.1.253"]])
            #expect(subnet["domainName"] as? String == "example.internal")

            let vm1 = try await server.ok("port", "create", "vm1", "--bridge", "web", "--address", "10.0.1.11", "--address", "auto",
                                          "--allowed-address", "10.0.1.250=02:00:00:00:00:99", "--allowed-address", "10.0.2.0/24",
                                          "--json").json()
            #expect(vm1["fixedIPs"] as? [String] == ["10.0.1.11", "10.0.1.100"])
            #expect(vm1["allowedAddressPairs"] as? [[String: String]] == [["address": "10.0.1.250", "mac": "02:00:00:00:00:99"],
                                                                          ["address": "10.0.2.0/24"]])
            #expect(vm1["portSecurity"] as? Bool == true)
            let vm1MAC = try #require(vm1["mac"] as? String, "a bridge port gets a generated MAC: \(vm1)")
            let vm2 = try await server.ok("port", "create", "vm2", "--bridge", "web", "--address", "auto", "--mac", "02:00:00:00:01:12",
                                          "--port-security", "off", "--mac-limit", "16", "--json").json()
            #expect(vm2["fixedIPs"] as? [String] == ["10.0.1.101"])
            #expect(vm2["mac"] as? String == "02:00:00:00:01:12")
            #expect(vm2["portSecurity"] as? Bool == false && vm2["macLimit"] as? Int == 16)

            // Tables: show has a line per setting, list an address and MAC column.
            let shown = try await server.ok("port", "show", "vm1")
            #expect(line("MAC", of: shown).hasSuffix(vm1MAC), "\(shown)")
            #expect(line("fixed IPs", of: shown).hasSuffix("10.0.1.11, 10.0.1.100"), "\(shown)")
            #expect(line("allowed addresses", of: shown).hasSuffix("10.0.1.250 (02:00:00:00:00:99), 10.0.2.0/24"), "\(shown)")
            #expect(line("port security", of: shown).hasSuffix(" on"), "\(shown)")
            #expect(line("MAC limit", of: shown).contains("64 (default)"), "\(shown)")
            let shown2 = try await server.ok("port", "show", "vm2")
            #expect(line("port security", of: shown2).hasSuffix(" off") && line("MAC limit", of: shown2).hasSuffix(" 16"), "\(shown2)")
            let listed = try await server.ok("port", "list", "--bridge", "web")
            let rows = listed.stdout.split(separator: "\n").map(String.init)
            #expect(rows.first?.contains("ADDRESS") == true && rows.first?.contains("MAC") == true, "\(listed)")
            #expect(rows.contains { $0.hasPrefix("vm1 ") && $0.contains("10.0.1.11, 10.0.1.100") && $0.contains(vm1MAC) }, "\(listed)")
            #expect(rows.contains { $0.hasPrefix("vm2 ") && $0.contains("10.0.1.101") && $0.contains("02:00:00:00:01:12") }, "\(listed)")
            let dhcp = try await server.ok("dhcp", "show", "10.0.1.0/24", "--bridge", "web")
            #expect(line("host routes", of: dhcp).hasSuffix("10.9.0.0/16 via 10.0.1.254, 10.8.0.0/16 via 10.0.1.253"), "\(dhcp)")
            #expect(line("domain name", of: dhcp).hasSuffix("example.internal"), "\(dhcp)")

            // Updates replace what they name and keep the rest.
            let moved = try await server.ok("port", "update", "vm1", "--address", "10.0.1.12", "--no-allowed-addresses",
                                            "--port-security", "off", "--mac-limit", "256", "--json").json()
            #expect(moved["fixedIPs"] as? [String] == ["10.0.1.12"])
            #expect((moved["allowedAddressPairs"] as? [Any])?.isEmpty == true)
            #expect(moved["portSecurity"] as? Bool == false && moved["macLimit"] as? Int == 256)
            #expect(moved["mac"] as? String == vm1MAC)
            let reused = try await server.ok("port", "create", "vm3", "--bridge", "web", "--address", "10.0.1.11", "--json").json()
            #expect(reused["fixedIPs"] as? [String] == ["10.0.1.11"], "vm1's old address is free again")
            let back = try await server.ok("port", "update", "vm2", "--mac-limit", "none", "--port-security", "on",
                                           "--allowed-address", "10.0.1.251", "--mac", "02:00:00:00:01:13", "--json").json()
            #expect(back["macLimit"] == nil && back["portSecurity"] as? Bool == true)
            #expect(back["allowedAddressPairs"] as? [[String: String]] == [["address": "10.0.1.251"]])
            #expect(back["mac"] as? String == "02:00:00:00:01:13" && back["fixedIPs"] as? [String] == ["10.0.1.101"])
            let bare = try await server.ok("port", "update", "vm2", "--no-addresses", "--json").json()
            #expect((bare["fixedIPs"] as? [Any])?.isEmpty == true)

            let replaced = try await server.ok("dhcp", "update", "10.0.1.0/24", "--bridge", "web", "--host-route", "10.7.0.0/16=10.0.1.252",
                                               "--domain-name", "none", "--json").json()
            #expect(replaced["hostRoutes"] as? [[String: String]] == [["destination": "10.7.0.0/16", "nextHop": "10.0.1.252"]])
            #expect(replaced["domainName"] == nil)
            let noRoutes = try await server.ok("dhcp", "update", "10.0.1.0/24", "--bridge", "web", "--no-host-routes", "--json").json()
            #expect((noRoutes["hostRoutes"] as? [Any])?.isEmpty == true)

            // A router port still takes one address with its length.
            try await server.ok("router", "create", "edge")
            let routerPort = try await server.ok("port", "create", "to-web", "--router", "edge", "--address", "10.0.1.1/24", "--json").json()
            #expect(routerPort["address"] as? String == "10.0.1.1" && routerPort["subnet"] as? String == "10.0.1.0/24")
            #expect(routerPort["fixedIPs"] == nil)
        }
    }

    @Test func addressingMistakesNameTheFlagTheValueAndWhatWouldDo() async throws {
        try await withLiveServer { server in
            try await server.ok("bridge", "create", "web")
            try await server.ok("router", "create", "edge")
            try await server.ok("port", "create", "to-web", "--router", "edge", "--address", "10.0.1.1/24")
            let noSubnet = try await server.fails("port", "create", "vm0", "--bridge", "web", "--address", "auto")
            #expect(noSubnet.stderr.contains("fixedIPs[0]") && noSubnet.stderr.contains("no DHCP subnet"), "\(noSubnet)")
            #expect(noSubnet.stderr.contains("--address"), "names the flag: \(noSubnet)")

            try await server.ok("dhcp", "create", "--bridge", "web", "--subnet", "10.0.1.0/24", "--range", "10.0.1.100-10.0.1.101",
                                "--gateway", "10.0.1.1")
            let holder = try await server.ok("port", "create", "vm1", "--bridge", "web", "--address", "10.0.1.11", "--json").json()
            let duplicate = try await server.fails("port", "create", "vm2", "--bridge", "web", "--address", "10.0.1.11")
            for expected in ["address 10.0.1.11 is already used by port \(holder["id"] as? String ?? "?")", "409", "--address"] {
                #expect(duplicate.stderr.contains(expected), "lacks \(expected): \(duplicate)")
            }
            let outside = try await server.fails("port", "create", "vm2", "--bridge", "web", "--address", "10.0.5.5")
            for expected in ["fixedIPs[0]", "'10.0.5.5'", "10.0.1.0/24", "--address"] {
                #expect(outside.stderr.contains(expected), "lacks \(expected): \(outside)")
            }
            let gateway = try await server.fails("port", "create", "vm2", "--bridge", "web", "--address", "10.0.1.1")
            #expect(gateway.stderr.contains("gateway") && gateway.stderr.contains("10.0.1.1"), "\(gateway)")
            try await server.ok("port", "create", "vm2", "--bridge", "web", "--address", "auto")
            try await server.ok("port", "create", "vm3", "--bridge", "web", "--address", "auto")
            let exhausted = try await server.fails("port", "create", "vm4", "--bridge", "web", "--address", "auto")
            for expected in ["fixedIPs[0]", "'auto'", "10.0.1.100-10.0.1.101", "taken", "--address"] {
                #expect(exhausted.stderr.contains(expected), "lacks \(expected): \(exhausted)")
            }

            // Caught before any request.
            let withLength = try await server.fails("port", "create", "vm4", "--bridge", "web", "--address", "10.0.1.20/24")
            #expect(withLength.stderr.contains("--address '10.0.1.20/24'") && withLength.stderr.contains("like 10.0.1.11"), "\(withLength)")
            let notAnAddress = try await server.fails("port", "create", "vm4", "--bridge", "web", "--address", "10.0.1.300")
            #expect(notAnAddress.stderr.contains("'10.0.1.300'") && notAnAddress.stderr.contains("auto"), "\(notAnAddress)")
            let twoRouterAddresses = try await server.fails("port", "create", "to-db", "--router", "edge",
                                                            "--address", "10.0.2.1/24", "--address", "10.0.3.1/24")
            #expect(twoRouterAddresses.stderr.contains("one address"), "\(twoRouterAddresses)")
            let securityOnRouter = try await server.fails("port", "update", "to-web", "--port-security", "off")
            #expect(securityOnRouter.stderr.contains("--port-security") && securityOnRouter.stderr.contains("bridge ports"),
                    "\(securityOnRouter)")
            let badPair = try await server.fails("port", "update", "vm1", "--allowed-address", "10.0.1.250=02:00:00:00:00")
            #expect(badPair.stderr.contains("'02:00:00:00:00' is not a MAC") && badPair.stderr.contains("ADDRESS=MAC"), "\(badPair)")
            let badLimit = try await server.fails("port", "update", "vm1", "--mac-limit", "0")
            #expect(badLimit.stderr.contains("--mac-limit") && badLimit.stderr.contains("1 to 65536"), "\(badLimit)")
            let both = try await server.fails("port", "update", "vm1", "--address", "10.0.1.12", "--no-addresses")
            #expect(both.stderr.contains("--no-addresses") && both.stderr.contains("not both"), "\(both)")
            let badRoute = try await server.fails("dhcp", "update", "10.0.1.0/24", "--bridge", "web", "--host-route", "10.9.0.0/16")
            #expect(badRoute.stderr.contains("'10.9.0.0/16'") && badRoute.stderr.contains("NETWORK=NEXT-HOP"), "\(badRoute)")

            // Refused by the API, with the flag added.
            let farHop = try await server.fails("dhcp", "update", "10.0.1.0/24", "--bridge", "web", "--host-route", "10.9.0.0/16=10.5.0.1")
            #expect(farHop.stderr.contains("hostRoutes[0].nextHop") && farHop.stderr.contains("10.5.0.1")
                    && farHop.stderr.contains("--host-route"), "\(farHop)")
            let badDomain = try await server.fails("dhcp", "update", "10.0.1.0/24", "--bridge", "web", "--domain-name", "bad..name")
            #expect(badDomain.stderr.contains("domainName") && badDomain.stderr.contains("--domain-name"), "\(badDomain)")

            // Nothing refused was stored.
            let ports = try await server.ok("port", "list", "--bridge", "web", "--json").items()
            #expect(Set(ports.compactMap { $0["name"] as? String }) == ["vm1", "vm2", "vm3"])
            #expect(try await server.ok("port", "show", "vm1", "--json").json()["fixedIPs"] as? [String] == ["10.0.1.11"])
        }
    }

    /// `hive --help` teaches a topology; its commands run as printed.
    @Test func theHelpWalkthroughRunsAsPrinted() async throws {
        let help = try await runHive(["--help"])
        #expect(help.succeeded, "\(help)")
        #expect(help.stdout.contains("--address 10.0.1.11") && help.stdout.contains("--address auto"),
                "the walkthrough creates VM ports with addresses: \(help.stdout)")
        var commands: [(arguments: [String], admin: Bool)] = []
        var admin = false
        var pending = ""
        for rawLine in help.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if !rawLine.hasPrefix(" ") && line.hasSuffix(":") { admin = line.contains("admin") }
            guard !pending.isEmpty || rawLine.hasPrefix("  hive ") else { continue }
            pending += (pending.isEmpty ? "" : " ") + line
            if pending.hasSuffix("\\") {
                pending.removeLast()
                continue
            }
            commands.append((pending.split(separator: " ").dropFirst().map(String.init), admin))
            pending = ""
        }
        #expect(commands.count > 20, "\(commands)")
        try await withLiveServer { server in
            for command in commands {
                let token = command.admin ? LiveServer.adminToken : LiveServer.acmeToken
                let result = try await runHive(command.arguments,
                                               environment: ["HIVE_ENDPOINT": server.endpoint.absoluteString, "HIVE_TOKEN": token])
                #expect(result.succeeded, "\(result)")
            }
            let vm2 = try await server.ok("port", "show", "vm2", "--json").json()
            #expect(vm2["fixedIPs"] as? [String] == ["10.0.1.100"], "\(vm2)")
        }
    }
}
