import Foundation
import Testing

/// The "Done when", as a new user would do it with `hive` against a
/// live `hive api`: build a topology, read it back as tables and as JSON,
/// and check a second tenant sees none of it.
@Suite("hive CLI against a live API: building a topology")
struct ScenarioTests {
    @Test func buildTwoBridgesARouterChainsZoneAndBindingsThenReadItBack() async throws {
        try await withLiveServer { server in
            // Two bridges and a router with a port linked to each.
            try await server.ok("bridge", "create", "web")
            try await server.ok("bridge", "create", "db")
            try await server.ok("router", "create", "edge")
            try await server.ok("port", "create", "to-web", "--router", "edge", "--address", "10.0.1.1/24")
            try await server.ok("port", "create", "to-db", "--router", "edge", "--address", "10.0.2.1/24", "--mac", "02:00:00:00:02:01")
            try await server.ok("port", "create", "uplink", "--bridge", "web")
            try await server.ok("port", "create", "uplink", "--bridge", "db")
            let link = try await server.ok("port", "link", "to-web", "uplink", "--peer-bridge", "web")
            #expect(link.stdout.contains("uplink (bridge web)"), "\(link)")
            try await server.ok("port", "link", "to-db", "uplink", "--peer-bridge", "db")

            // Routes.
            try await server.ok("route", "create", "--router", "edge", "--destination", "10.0.1.0/24", "--port", "to-web")
            try await server.ok("route", "create", "--router", "edge", "--destination", "10.0.2.0/24", "--port", "to-db", "--weight", "50")
            try await server.ok("route", "create", "--router", "edge", "--destination", "10.99.0.0/16", "--kind", "blackhole")

            // A chain with rules, attached to a port.
            try await server.ok("chain", "create", "web-in")
            try await server.ok("rule", "create", "--chain", "web-in", "--ct-state", "established", "--action", "accept")
            try await server.ok("rule", "create", "--chain", "web-in", "--protocol", "tcp", "--dst-port", "80", "--action", "accept")
            try await server.ok("rule", "create", "--chain", "web-in", "--action", "drop")
            try await server.ok("rule", "create", "--chain", "web-in", "--not-src", "10.0.0.0/8", "--action", "reject", "--position", "0")
            try await server.ok("port", "create", "vm1", "--bridge", "web")
            try await server.ok("port", "create", "vm2", "--bridge", "db")
            try await server.ok("port", "update", "vm1", "--bridge", "web", "--inbound-chain", "web-in")
            try await server.ok("dhcp", "create", "--bridge", "web", "--subnet", "10.0.1.0/24", "--range", "10.0.1.100-10.0.1.199",
                                "--gateway", "10.0.1.1", "--dns", "10.0.1.1", "--host-entry", "02:00:00:00:01:10=10.0.1.10=vm1")

            // A tunnel zone with two hosts, and bindings: admin only.
            let admin = LiveServer.adminToken
            try await server.ok("host", "create", "compute-1", "--underlay-address", "192.168.10.11", token: admin)
            try await server.ok("host", "create", "compute-2", "--underlay-address", "192.168.10.12", token: admin)
            try await server.ok("tunnel-zone", "create", "underlay", token: admin)
            try await server.ok("tunnel-zone", "add-member", "underlay", "--host", "compute-1", "--address", "192.168.10.11", token: admin)
            try await server.ok("tunnel-zone", "add-member", "underlay", "--host", "compute-2", token: admin)
            try await server.ok("binding", "create", "--host", "compute-1", "--port", "vm1", "--interface", "tap-vm1", token: admin)
            try await server.ok("binding", "create", "--host", "compute-2", "--port", "vm2", "--bridge", "db", "--interface", "tap-vm2", token: admin)

            try await readBackAsTables(server)
            try await readBackAsJSON(server)
            try await secondTenantSeesNothing(server)
        }
    }

    private func readBackAsTables(_ server: LiveServer) async throws {
        let bridges = try await server.ok("bridge", "list")
        let bridgeLines = bridges.stdout.split(separator: "\n")
        #expect(bridgeLines.first?.hasPrefix("NAME") == true, "\(bridges)")
        #expect(bridgeLines.count == 3, "a header and two bridges: \(bridges)")
        #expect(bridgeLines.contains { $0.hasPrefix("web ") && $0.contains("acme") }, "\(bridges)")
        #expect(bridgeLines.contains { $0.hasPrefix("db ") }, "\(bridges)")

        let router = try await server.ok("router", "show", "edge")
        for expected in ["edge", "to-web", "10.0.1.1/24", "to-db", "10.0.2.1/24", "02:00:00:00:02:01",
                         "uplink (bridge web)", "uplink (bridge db)", "10.0.1.0/24", "10.0.2.0/24", "10.99.0.0/16", "blackhole"] {
            #expect(router.stdout.contains(expected), "router show lacks \(expected): \(router)")
        }
        // Columns line up: every route row has its kind at the KIND column.
        let routes = try await server.ok("route", "list", "--router", "edge")
        let routeLines = routes.stdout.split(separator: "\n").map(String.init)
        let kindColumn = try #require(routeLines.first?.range(of: "KIND")?.lowerBound).utf16Offset(in: routeLines[0])
        #expect(routeLines.count == 4, "\(routes)")
        for line in routeLines.dropFirst() {
            let kind = line.dropFirst(kindColumn).prefix { $0 != " " }
            #expect(["normal", "blackhole"].contains(String(kind)), "misaligned row '\(line)' in \(routes)")
        }
        #expect(routeLines.contains { $0.hasPrefix("10.0.2.0/24") && $0.contains(" to-db ") && $0.contains(" 50 ") }, "\(routes)")

        let chain = try await server.ok("chain", "show", "web-in")
        let ruleRows = chain.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.first?.isNumber == true }
        #expect(ruleRows.count == 4, "\(chain)")
        if ruleRows.count == 4 {
            #expect(ruleRows[0].hasPrefix("0") && ruleRows[0].contains("reject") && ruleRows[0].contains("not src 10.0.0.0/8"), "\(chain)")
            #expect(ruleRows[1].contains("accept") && ruleRows[1].contains("ct-state established"), "\(chain)")
            #expect(ruleRows[2].contains("accept") && ruleRows[2].contains("protocol tcp, dst-port 80"), "\(chain)")
            #expect(ruleRows[3].hasPrefix("3") && ruleRows[3].contains("drop") && ruleRows[3].contains("any packet"), "\(chain)")
        }

        let vm1 = try await server.ok("port", "show", "vm1")
        #expect(vm1.stdout.contains("inbound chain") && vm1.stdout.contains("web-in"), "\(vm1)")
        #expect(vm1.stdout.contains("bridge web"), "\(vm1)")

        let ports = try await server.ok("port", "list", "--bridge", "web")
        #expect(ports.stdout.split(separator: "\n").count == 3, "header, uplink and vm1: \(ports)")

        let dhcp = try await server.ok("dhcp", "show", "10.0.1.0/24", "--bridge", "web")
        for expected in ["10.0.1.100-10.0.1.199", "02:00:00:00:01:10=10.0.1.10=vm1", "10.0.1.1"] {
            #expect(dhcp.stdout.contains(expected), "\(dhcp)")
        }

        let admin = LiveServer.adminToken
        let zone = try await server.ok("tunnel-zone", "show", "underlay", token: admin)
        for expected in ["underlay", "geneve", "compute-1", "192.168.10.11", "compute-2", "192.168.10.12"] {
            #expect(zone.stdout.contains(expected), "tunnel-zone show lacks \(expected): \(zone)")
        }
        let hosts = try await server.ok("host", "list", token: admin)
        #expect(hosts.stdout.contains("compute-1") && hosts.stdout.contains("ALIVE"), "\(hosts)")
        let bindings = try await server.ok("binding", "list", "--host", "compute-1", token: admin)
        let bindingLines = bindings.stdout.split(separator: "\n")
        #expect(bindingLines.count == 2, "\(bindings)")
        #expect(bindingLines.last?.contains("tap-vm1") == true && bindingLines.last?.contains("vm1 (bridge web)") == true, "\(bindings)")
    }

    private func readBackAsJSON(_ server: LiveServer) async throws {
        let bridges = try await server.ok("bridge", "list", "--json").items()
        #expect(Set(bridges.compactMap { $0["name"] as? String }) == ["web", "db"])
        #expect(bridges.allSatisfy { $0["tenantId"] as? String == "acme" && $0["revision"] is NSNumber })

        let toWeb = try await server.ok("port", "show", "to-web", "--json").json()
        let webUplink = try await server.ok("port", "show", "uplink", "--bridge", "web", "--json").json()
        #expect(toWeb["address"] as? String == "10.0.1.1")
        #expect(toWeb["subnet"] as? String == "10.0.1.0/24")
        #expect(toWeb["deviceKind"] as? String == "router")
        #expect(toWeb["peerId"] as? String == webUplink["id"] as? String, "to-web is linked to web's uplink")
        #expect(webUplink["peerId"] as? String == toWeb["id"] as? String)

        let routes = try await server.ok("route", "list", "--router", "edge", "--json").items()
        #expect(routes.count == 3)
        let dbRoute = try #require(routes.first { $0["destination"] as? String == "10.0.2.0/24" })
        #expect(dbRoute["weight"] as? Int == 50)
        #expect(dbRoute["kind"] as? String == "normal")
        #expect(routes.contains { $0["kind"] as? String == "blackhole" && $0["egressPortId"] == nil })

        let chain = try await server.ok("chain", "show", "web-in", "--json").json()
        let rules = try await server.ok("rule", "list", "--chain", "web-in", "--json").items()
        #expect(rules.map { $0["id"] as? String } == (chain["ruleIds"] as? [String] ?? []), "rules list in chain order")
        let first = try #require(rules.first)
        #expect((first["action"] as? [String: Any])?["type"] as? String == "reject")
        let source = (first["conditions"] as? [String: Any])?["sourcePrefix"] as? [String: Any]
        #expect(source?["value"] as? String == "10.0.0.0/8")
        #expect(source?["invert"] as? Bool == true)
        let web = rules.dropFirst(2).first.flatMap { $0["conditions"] as? [String: Any] }
        #expect((web?["ipProtocol"] as? [String: Any])?["value"] as? Int == 6)
        #expect(((web?["destinationPorts"] as? [String: Any])?["value"] as? [String: Any])?["start"] as? Int == 80)

        let vm1 = try await server.ok("port", "show", "vm1", "--json").json()
        #expect(vm1["inboundChainId"] as? String == chain["id"] as? String)

        let admin = LiveServer.adminToken
        let zone = try await server.ok("tunnel-zone", "show", "underlay", "--json", token: admin).json()
        let members = try #require(zone["members"] as? [[String: Any]])
        #expect(Set(members.compactMap { $0["address"] as? String }) == ["192.168.10.11", "192.168.10.12"])
        let bindings = try await server.ok("binding", "list", "--json", token: admin).items()
        #expect(Set(bindings.compactMap { $0["interfaceName"] as? String }) == ["tap-vm1", "tap-vm2"])
        #expect(bindings.contains { $0["portId"] as? String == vm1["id"] as? String })
        let hosts = try await server.ok("host", "list", "--json", token: admin).items()
        #expect(hosts.count == 2 && hosts.allSatisfy { $0["alive"] is Bool }, "hosts carry alive: \(hosts)")
    }

    /// Tenant globex's token sees none of acme's objects, by name, by id or in lists.
    private func secondTenantSeesNothing(_ server: LiveServer) async throws {
        let globex = LiveServer.globexToken
        for kind in ["bridge", "router", "port", "chain", "port-group", "ip-group"] {
            let items = try await server.ok(kind, "list", "--json", token: globex).items()
            #expect(items.isEmpty, "globex sees acme's \(kind)s: \(items)")
        }
        #expect(try await server.ok("route", "list", "--json", token: globex).items().isEmpty)
        #expect(try await server.ok("dhcp", "list", "--json", token: globex).items().isEmpty)
        let empty = try await server.ok("bridge", "list", token: globex)
        #expect(empty.stdout.contains("No bridges"), "\(empty)")

        let byName = try await server.fails("bridge", "show", "web", token: globex)
        #expect(byName.stderr.contains("no bridge named 'web'"), "\(byName)")
        let webID = try #require(try await server.ok("bridge", "show", "web", "--json").json()["id"] as? String)
        let byID = try await server.fails("bridge", "show", webID, token: globex)
        #expect(byID.stderr.contains("404") || byID.stderr.contains("not found"), "\(byID)")
        let delete = try await server.fails("bridge", "delete", webID, token: globex)
        #expect(delete.stderr.contains("not found") || delete.stderr.contains("404"), "\(delete)")
        #expect(try await server.ok("bridge", "show", "web").stdout.contains("web"), "acme's bridge survives globex's attempt")

        let hosts = try await server.fails("host", "list", token: globex)
        #expect(hosts.stderr.contains("403") || hosts.stderr.lowercased().contains("admin"), "\(hosts)")
    }
}
