import Foundation
import Testing

/// Changing and taking down a topology with `hive`: updates, unlinking,
/// groups, and deletions in the order the API allows them.
@Suite("hive CLI against a live API: updates and deletions")
struct LifecycleTests {
    @Test func updateUnlinkAndTearDown() async throws {
        try await withLiveServer { server in
            try await server.ok("bridge", "create", "web")
            try await server.ok("router", "create", "edge")
            try await server.ok("port", "create", "to-web", "--router", "edge", "--address", "10.0.1.1/24")
            try await server.ok("port", "create", "uplink", "--bridge", "web")
            try await server.ok("port", "link", "to-web", "uplink")
            try await server.ok("chain", "create", "web-in")
            try await server.ok("port", "create", "vm1", "--bridge", "web", "--inbound-chain", "web-in")

            // Renames and settings; ids stay.
            let before = try await server.ok("bridge", "show", "web", "--json").json()
            let renamed = try await server.ok("bridge", "update", "web", "--name", "frontend", "--admin-state", "down", "--json").json()
            #expect(renamed["id"] as? String == before["id"] as? String)
            #expect(renamed["name"] as? String == "frontend" && renamed["adminStateUp"] as? Bool == false)
            let nothing = try await server.fails("bridge", "update", "frontend")
            #expect(nothing.stderr.contains("nothing to change"), "\(nothing)")

            // A chain in use cannot go; detached, it can.
            let inUse = try await server.fails("chain", "delete", "web-in")
            #expect(inUse.stderr.contains("409"), "\(inUse)")
            let detached = try await server.ok("port", "update", "vm1", "--inbound-chain", "none", "--json").json()
            #expect(detached["inboundChainId"] == nil, "\(detached)")
            try await server.ok("chain", "delete", "web-in")
            #expect(try await server.ok("chain", "list", "--json").items().isEmpty)

            // Port groups and IP groups.
            try await server.ok("port-group", "create", "web-servers")
            try await server.ok("port-group", "add-port", "web-servers", "vm1")
            let members = try await server.ok("port-group", "show", "web-servers")
            #expect(members.stdout.contains("vm1"), "\(members)")
            let vm1 = try await server.ok("port", "show", "vm1", "--json").json()
            #expect((vm1["portGroupIds"] as? [String])?.count == 1)
            try await server.ok("port-group", "remove-port", "web-servers", "vm1")
            #expect(try await server.ok("port-group", "show", "web-servers").stdout.contains("Member ports:\n  none"))
            try await server.ok("ip-group", "create", "office", "--address", "192.0.2.0/24", "--address", "198.51.100.7")
            let group = try await server.ok("ip-group", "update", "office", "--add-address", "203.0.113.0/25",
                                            "--remove-address", "198.51.100.7/32", "--json").json()
            #expect(group["addresses"] as? [String] == ["192.0.2.0/24", "203.0.113.0/25"])

            // DHCP host entries come and go by MAC.
            try await server.ok("dhcp", "create", "--bridge", "frontend", "--subnet", "10.0.1.0/24", "--range", "10.0.1.100-10.0.1.199")
            let added = try await server.ok("dhcp", "update", "10.0.1.0/24", "--bridge", "frontend", "--gateway", "10.0.1.1",
                                            "--add-host-entry", "02:00:00:00:01:10=10.0.1.10=vm1", "--mtu", "1450", "--json").json()
            #expect((added["hostEntries"] as? [[String: Any]])?.first?["hostname"] as? String == "vm1")
            #expect(added["mtu"] as? Int == 1450 && added["gateway"] as? String == "10.0.1.1")
            let removed = try await server.ok("dhcp", "update", "10.0.1.0/24", "--bridge", "frontend",
                                              "--remove-host-entry", "02:00:00:00:01:10", "--mtu", "none", "--json").json()
            #expect((removed["hostEntries"] as? [Any])?.isEmpty ?? true)
            #expect(removed["mtu"] == nil)

            // Unlink, then the ports and devices can go.
            let linked = try await server.fails("port", "delete", "to-web")
            #expect(linked.stderr.contains("409"), "\(linked)")
            let unlinked = try await server.ok("port", "unlink", "to-web", "--json").json()
            #expect(unlinked["peerId"] == nil)
            #expect(try await server.ok("port", "show", "uplink", "--json").json()["peerId"] == nil)
            let hasPorts = try await server.fails("router", "delete", "edge")
            #expect(hasPorts.stderr.contains("409"), "\(hasPorts)")
            try await server.ok("port", "delete", "to-web", "--router", "edge")
            try await server.ok("router", "delete", "edge")
            try await server.ok("port", "delete", "uplink")
            try await server.ok("port", "delete", "vm1")
            try await server.ok("bridge", "delete", "frontend")
            #expect(try await server.ok("dhcp", "list", "--json").items().isEmpty, "DHCP subnets go with their bridge")
            #expect(try await server.ok("bridge", "list", "--json").items().isEmpty)
            #expect(try await server.ok("port", "list", "--json").items().isEmpty)
        }
    }

    @Test func unbindAndTakeHostsOutOfZones() async throws {
        try await withLiveServer { server in
            let admin = LiveServer.adminToken
            try await server.ok("bridge", "create", "web")
            try await server.ok("port", "create", "vm1", "--bridge", "web")
            try await server.ok("host", "create", "compute-1", "--underlay-address", "192.168.10.11", token: admin)
            try await server.ok("tunnel-zone", "create", "underlay", "--kind", "vxlan", token: admin)
            try await server.ok("tunnel-zone", "add-member", "underlay", "--host", "compute-1", token: admin)
            let binding = try await server.ok("binding", "create", "--host", "compute-1", "--port", "vm1",
                                              "--interface", "tap-vm1", "--json", token: admin).json()
            let bindingID = try #require(binding["id"] as? String)

            let busy = try await server.fails("host", "delete", "compute-1", token: admin)
            #expect(busy.stderr.contains("409"), "\(busy)")
            let shown = try await server.ok("host", "show", "compute-1", token: admin)
            #expect(shown.stdout.contains("tap-vm1"), "\(shown)")

            try await server.ok("binding", "delete", bindingID, token: admin)
            let zone = try await server.ok("tunnel-zone", "remove-member", "underlay", "--host", "compute-1", "--json", token: admin).json()
            #expect((zone["members"] as? [Any])?.isEmpty == true && zone["kind"] as? String == "vxlan")
            try await server.ok("host", "delete", "compute-1", token: admin)
            try await server.ok("tunnel-zone", "delete", "underlay", token: admin)
            #expect(try await server.ok("host", "list", "--json", token: admin).items().isEmpty)
            #expect(try await server.ok("binding", "list", "--json", token: admin).items().isEmpty)
        }
    }
}
