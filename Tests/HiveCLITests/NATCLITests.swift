import Foundation
import HiveClient
import HiveModel
import HivePacket
import Testing

/// `hive router --gateway-port`, `hive rule --action snat|dnat --to` and
/// `hive floating-ip`, and the typed client's floating IP calls, against a
/// live API.
@Suite("hive NAT commands against a live API")
struct NATCLITests {
    @Test func aGatewayASNATRuleAndAFloatingIP() async throws {
        try await withLiveServer { server in
            // A router with its way out, and a VM network behind it.
            try await server.ok("router", "create", "provider")
            try await server.ok("port", "create", "uplink", "--router", "provider", "--address", "198.51.100.2/24")
            try await server.ok("port", "create", "to-web", "--router", "provider", "--address", "10.0.1.1/24")
            try await server.ok("bridge", "create", "web")
            try await server.ok("dhcp", "create", "--bridge", "web", "--subnet", "10.0.1.0/24", "--range", "10.0.1.100-10.0.1.199",
                                "--gateway", "10.0.1.1")
            try await server.ok("port", "create", "vm1", "--bridge", "web", "--address", "10.0.1.5", "--address", "10.0.1.6")
            try await server.ok("port", "create", "vm2", "--bridge", "web", "--address", "10.0.1.7")

            // The gateway: set, changed, shown, refused on create, removed.
            let early = try await server.fails("router", "create", "edge", "--gateway-port", "uplink")
            #expect(early.stderr.contains("hive router update edge --gateway-port PORT"), "\(early)")
            let gateway = try await server.ok("router", "update", "provider", "--gateway-port", "uplink", "--snat-address", "198.51.100.3",
                                              "--json").json()
            let stored = try #require(gateway["gateway"] as? [String: Any], "\(gateway)")
            #expect(stored["snatAddress"] as? String == "198.51.100.3" && stored["enableSNAT"] as? Bool == true, "\(stored)")
            let noSNAT = try await server.ok("router", "update", "provider", "--no-snat")
            #expect(noSNAT.stdout.contains("uplink, no SNAT"), "\(noSNAT)")
            try await server.ok("router", "update", "provider", "--snat", "--snat-address", "none")
            let shown = try await server.ok("router", "show", "provider")
            #expect(shown.stdout.contains("uplink, SNAT to the port's address"), "\(shown)")
            let bridgePort = try await server.fails("router", "update", "provider", "--gateway-port", "vm1")
            #expect(bridgePort.stderr.contains("no port named 'vm1' on router 'provider'"), "\(bridgePort)")
            let both = try await server.fails("router", "update", "provider", "--no-gateway", "--no-snat")
            #expect(both.stderr.contains("--no-gateway"), "\(both)")
            let inUse = try await server.fails("port", "delete", "uplink")
            #expect(inUse.stderr.contains("gateway.portId"), "\(inUse)")
            let removed = try await server.ok("router", "update", "provider", "--no-gateway", "--json").json()
            #expect(removed["gateway"] == nil, "\(removed)")
            let none = try await server.fails("router", "update", "provider", "--no-snat")
            #expect(none.stderr.contains("has no gateway"), "\(none)")
            try await server.ok("router", "update", "provider", "--gateway-port", "provider/uplink")

            // NAT rules: the target in the listing and in the JSON.
            try await server.ok("chain", "create", "provider-out")
            try await server.ok("rule", "create", "--chain", "provider-out", "--src", "10.0.1.0/24", "--action", "snat",
                                "--to", "198.51.100.5-198.51.100.6:1024-65535")
            let dnat = try await server.ok("rule", "create", "--chain", "provider-out", "--action", "dnat", "--to", "10.0.1.5:8080", "--json").json()
            let target = (dnat["action"] as? [String: Any])?["target"] as? [String: Any]
            #expect(target?["firstAddress"] as? String == "10.0.1.5" && target?["firstPort"] as? Int == 8080, "\(dnat)")
            let rules = try await server.ok("rule", "list", "--chain", "provider-out")
            #expect(rules.stdout.contains("snat to 198.51.100.5-198.51.100.6:1024-65535"), "\(rules)")
            #expect(rules.stdout.contains("dnat to 10.0.1.5:8080"), "\(rules)")
            let ruleShow = try await server.ok("rule", "show", try #require(dnat["id"] as? String))
            #expect(ruleShow.stdout.contains("dnat to 10.0.1.5:8080"), "\(ruleShow)")
            let noTarget = try await server.fails("rule", "create", "--chain", "provider-out", "--action", "snat")
            #expect(noTarget.stderr.contains("--to"), "\(noTarget)")
            let badTarget = try await server.fails("rule", "create", "--chain", "provider-out", "--action", "snat", "--to", "198.51.100")
            #expect(badTarget.stderr.contains("ADDRESS[-ADDRESS][:PORT[-PORT]]"), "\(badTarget)")
            let backwards = try await server.fails("rule", "create", "--chain", "provider-out", "--action", "snat",
                                                   "--to", "198.51.100.9-198.51.100.5")
            #expect(backwards.stderr.contains("action.target.lastAddress is --to"), "\(backwards)")
            let toWithAccept = try await server.fails("rule", "create", "--chain", "provider-out", "--action", "accept", "--to", "10.0.1.5")
            #expect(toWithAccept.stderr.contains("--to goes with --action snat or dnat"), "\(toWithAccept)")

            // A floating IP: created for vm1, moved to vm2, released, deleted.
            let created = try await server.ok("floating-ip", "create", "--router", "provider", "--address", "198.51.100.10",
                                              "--port", "web/vm1", "--fixed-address", "10.0.1.6")
            #expect(created.stdout.contains("198.51.100.10") && created.stdout.contains("vm1 (bridge web)"), "\(created)")
            let list = try await server.ok("floating-ip", "list")
            #expect(list.stdout.contains("198.51.100.10") && list.stdout.contains("10.0.1.6"), "\(list)")
            let notFixed = try await server.fails("floating-ip", "create", "--router", "provider", "--address", "198.51.100.11",
                                                  "--port", "vm2", "--fixed-address", "10.0.1.5")
            #expect(notFixed.stderr.contains("fixedAddress is --fixed-address"), "\(notFixed)")
            let taken = try await server.fails("floating-ip", "create", "--router", "provider", "--address", "198.51.100.10")
            #expect(taken.stderr.contains("409") && taken.stderr.contains("address is --address"), "\(taken)")
            let vmInUse = try await server.fails("port", "delete", "vm1")
            #expect(vmInUse.stderr.contains("floating-ip"), "\(vmInUse)")

            let moved = try await server.ok("floating-ip", "update", "198.51.100.10", "--port", "vm2", "--json").json()
            #expect(moved["portId"] as? String != nil && moved["fixedAddress"] == nil, "\(moved)")
            let show = try await server.ok("floating-ip", "show", "198.51.100.10")
            #expect(show.stdout.contains("vm2 (bridge web)"), "\(show)")
            let routerShow = try await server.ok("router", "show", "provider")
            #expect(routerShow.stdout.contains("Floating IPs:") && routerShow.stdout.contains("198.51.100.10"), "\(routerShow)")
            let released = try await server.ok("floating-ip", "update", "198.51.100.10", "--no-port")
            #expect(released.stdout.contains("- (not associated)"), "\(released)")
            let nothing = try await server.fails("floating-ip", "update", "198.51.100.10")
            #expect(nothing.stderr.contains("nothing to change"), "\(nothing)")
            try await server.ok("port", "delete", "vm1")
            let deleted = try await server.ok("floating-ip", "delete", "198.51.100.10")
            #expect(deleted.stdout.contains("Deleted floating IP 198.51.100.10"), "\(deleted)")
            let gone = try await server.fails("floating-ip", "show", "198.51.100.10")
            #expect(gone.stderr.contains("no floating IP named '198.51.100.10'"), "\(gone)")
            #expect(try await server.ok("floating-ip", "list").stdout.contains("No floating IPs"))

            // Another tenant sees none of it.
            try await server.ok("floating-ip", "create", "--router", "provider", "--address", "198.51.100.12")
            let other = try await server.ok("floating-ip", "list", "--json", token: LiveServer.globexToken).items()
            #expect(other.isEmpty, "\(other)")
        }
    }

    @Test func theClientsFloatingIPCalls() async throws {
        try await withLiveServer { server in
            let client = server.client
            let router = try await client.create(Router(name: "provider")).object.id
            let spare = try await client.create(Router(name: "spare")).object.id
            let first = try await client.create(FloatingIP(routerId: router, address: IPv4.Address(parsing: "198.51.100.20")!))
            let second = try await client.create(FloatingIP(routerId: spare, address: IPv4.Address(parsing: "198.51.100.21")!))
            #expect(first.object.tenantId == "acme")
            #expect(try await client.floatingIPs(router: router).map(\.object.id) == [first.object.id])
            #expect(try await client.floatingIPs(router: spare).map(\.object.id) == [second.object.id])
            #expect(try await client.floatingIPs(port: PortID()).isEmpty)
            #expect(Set(try await client.list(FloatingIP.self).map(\.object.id)) == [first.object.id, second.object.id])
            try await client.delete(first.object.id, ifRevision: first.revision)
            #expect(try await client.list(FloatingIP.self).map(\.object.id) == [second.object.id])
        }
    }
}
