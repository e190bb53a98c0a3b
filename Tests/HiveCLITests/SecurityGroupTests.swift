import Foundation
import HiveClient
import HiveModel
import HivePacket
import Testing
import struct HiveModel.Port

/// `hive security-group` and ports' `--security-group`, and the typed
/// client's security group calls, against a live API.
@Suite("hive security-group against a live API")
struct SecurityGroupCLITests {
    @Test func groupsRulesAndPorts() async throws {
        try await withLiveServer { server in
            let created = try await server.ok("security-group", "create", "web", "--description", "web servers")
            #expect(created.stdout.contains("Rules:"), "\(created)")
            #expect(created.stdout.contains("egress IPv4 any to any") && created.stdout.contains("egress IPv6 any to any"), "\(created)")
            try await server.ok("security-group", "create", "default")
            let defaultGroup = try await server.ok("security-group", "show", "default")
            #expect(defaultGroup.stdout.contains("ingress IPv4 any from group default"), "\(defaultGroup)")
            #expect(defaultGroup.stdout.contains("ingress IPv6 any from group default"), "\(defaultGroup)")

            // Rules in the words of their flags.
            try await server.ok("security-group", "rule", "create", "--group", "web", "--direction", "ingress",
                                "--protocol", "tcp", "--port", "80", "--remote", "0.0.0.0/0")
            try await server.ok("security-group", "rule", "create", "--group", "web", "--protocol", "udp",
                                "--port", "8000-8080", "--remote-group", "default", "--description", "alt http")
            try await server.ok("security-group", "rule", "create", "--group", "web", "--protocol", "icmp",
                                "--icmp-type", "8", "--icmp-code", "0")
            let icmpv6 = try await server.ok("security-group", "rule", "create", "--group", "web", "--ethertype", "ipv6",
                                             "--protocol", "icmpv6", "--json").json()
            #expect(icmpv6["etherType"] as? String == "IPv6" && icmpv6["ipProtocol"] as? Int == 58, "\(icmpv6)")
            let show = try await server.ok("security-group", "show", "web")
            for line in ["ingress IPv4 tcp 80 from 0.0.0.0/0", "ingress IPv4 udp 8000-8080 from group default",
                         "ingress IPv4 icmp type 8 code 0 from any", "ingress IPv6 icmpv6 from any", "alt http"] {
                #expect(show.stdout.contains(line), "'\(line)' missing from: \(show)")
            }
            let listed = try await server.ok("security-group", "rule", "list", "--group", "web", "--json").items()
            #expect(listed.count == 6, "two initial rules and four created: \(listed)")
            #expect(try await server.ok("security-group", "rule", "list", "--json").items().count == 10)
            #expect(try await server.ok("security-group", "list").stdout.contains("web servers"))

            // Bad rules: refused by the CLI or by the API, naming the flag.
            let both = try await server.fails("security-group", "rule", "create", "--group", "web", "--remote", "10.0.0.0/8",
                                              "--remote-group", "default")
            #expect(both.stderr.contains("--remote") && both.stderr.contains("not both"), "\(both)")
            let portWithoutProtocol = try await server.fails("security-group", "rule", "create", "--group", "web", "--port", "80")
            #expect(portWithoutProtocol.stderr.contains("422") && portWithoutProtocol.stderr.contains("ports is --port"), "\(portWithoutProtocol)")
            let ipv6Network = try await server.fails("security-group", "rule", "create", "--group", "web", "--ethertype", "IPv6",
                                                     "--remote", "10.0.0.0/8")
            #expect(ipv6Network.stderr.contains("remotePrefix is --remote"), "\(ipv6Network)")
            let duplicate = try await server.fails("security-group", "rule", "create", "--group", "web", "--protocol", "tcp",
                                                   "--port", "80", "--remote", "0.0.0.0/0")
            #expect(duplicate.stderr.contains("409") && duplicate.stderr.contains("already has rule"), "\(duplicate)")
            let badEtherType = try await server.fails("security-group", "rule", "create", "--group", "web", "--ethertype", "arp")
            #expect(badEtherType.stderr.contains("expected IPv4 or IPv6"), "\(badEtherType)")
            let byName = try await server.fails("security-group", "rule", "delete", "web")
            #expect(byName.stderr.contains("rules have no names"), "\(byName)")

            // Ports list groups by name; replacing and clearing them.
            try await server.ok("bridge", "create", "net")
            try await server.ok("port", "create", "vm1", "--bridge", "net", "--security-group", "web", "--security-group", "default")
            let port = try await server.ok("port", "show", "vm1")
            #expect(port.stdout.contains("security groups") && port.stdout.contains("web, default"), "\(port)")
            let inUse = try await server.fails("security-group", "delete", "web")
            #expect(inUse.stderr.contains("409") && inUse.stderr.contains("securityGroupIds[0]"), "\(inUse)")
            let offWithGroups = try await server.fails("port", "update", "vm1", "--port-security", "off")
            #expect(offWithGroups.stderr.contains("securityGroupIds is --security-group"), "\(offWithGroups)")
            let replaced = try await server.ok("port", "update", "vm1", "--security-group", "default", "--json").json()
            #expect((replaced["securityGroupIds"] as? [String])?.count == 1, "\(replaced)")
            let both2 = try await server.fails("port", "update", "vm1", "--security-group", "web", "--no-security-groups")
            #expect(both2.stderr.contains("not both"), "\(both2)")
            let cleared = try await server.ok("port", "update", "vm1", "--no-security-groups", "--port-security", "off", "--json").json()
            #expect((cleared["securityGroupIds"] as? [String]) == [] && cleared["portSecurity"] as? Bool == false, "\(cleared)")

            // The group named by another's rule stays until that rule goes.
            let remoteInUse = try await server.fails("security-group", "delete", "default")
            #expect(remoteInUse.stderr.contains("remoteGroupId"), "\(remoteInUse)")
            let ruleID = try #require(listed.first { $0["remoteGroupId"] != nil }?["id"] as? String)
            try await server.ok("security-group", "rule", "delete", ruleID)
            try await server.ok("security-group", "delete", "default")

            let renamed = try await server.ok("security-group", "update", "web", "--name", "frontend", "--description", "none", "--json").json()
            #expect(renamed["name"] as? String == "frontend" && renamed["description"] == nil, "\(renamed)")
            try await server.ok("security-group", "delete", "frontend")
            #expect(try await server.ok("security-group", "rule", "list", "--json").items().isEmpty)
        }
    }

    @Test func theClientsSecurityGroupCalls() async throws {
        try await withLiveServer { server in
            let client = server.client
            let group = try await client.create(SecurityGroup(name: "web"))
            #expect(group.object.tenantId == "acme")
            let rules = try await client.securityGroupRules(of: group.object.id)
            #expect(rules.count == 2 && rules.allSatisfy { $0.object.direction == .egress }, "\(rules)")
            let rule = try await client.create(SecurityGroupRule(
                securityGroupId: group.object.id, direction: .ingress, ipProtocol: IPProtocolNumber.tcp, ports: PortRange(443)))
            #expect(rule.object.tenantId == "acme" && rule.object.ports == PortRange(443))
            #expect(try await client.get(rule.object.id).object == rule.object)
            var changed = rule.object
            changed.ports = PortRange(8443)
            let refused = await #expect(throws: HiveClientError.self) { try await client.update(changed) }
            #expect(refused?.status == 405, "rules cannot change: \(String(describing: refused))")
            try await client.delete(rule.object.id)
            #expect(try await client.list(SecurityGroupRule.self).count == 2)

            let other = HiveClient(endpoint: server.endpoint, token: LiveServer.globexToken)
            #expect(try await other.list(SecurityGroup.self).isEmpty)
            let hidden = await #expect(throws: HiveClientError.self) { try await other.get(group.object.id) }
            #expect(hidden?.status == 404)
        }
    }
}
