#if os(Linux)
import Foundation
import HiveSandbox
import Testing

// The outside world: the upstream namespace, its veths to the gateway
// hosts' ext0, its sysctls and its multipath route. Real namespaces, each
// test with its own prefix, removed in a `defer`; traffic only to
// addresses inside them. No Hive datapath runs here, so nothing answers
// for the uplinks' next hops unless a test puts the address on ext0.
@Suite("Sandbox upstream namespace", .serialized, .enabled(if: SandboxPrivileges.isRoot, "needs root to create namespaces"))
struct SandboxUpstreamTests {
    init() throws {
        try SandboxTools.check(["ip", "ethtool", "ping", "sysctl"])
    }

    @Test func upstreamHasItsLinksServerAddressAndSysctls() async throws {
        try await onOwnThread {
            let network = networkWithUpstream(prefix: uniquePrefix())
            defer { network.destroy() }
            try network.create()
            let upstream = try #require(network.upstream)

            #expect(namespaces(startingWith: network.prefix) == network.namespaces.sorted())
            #expect(network.namespaces.contains(upstream.name))
            let links = try interfaces(in: upstream.name)
            func addresses(_ name: String) -> [String]? {
                links.first { $0.ifname == name }?.addrInfo?.filter { $0.family == "inet" }.map { "\($0.local)/\($0.prefixlen)" }
            }
            #expect(links.map(\.ifname).sorted() == ["gw1", "gw2", "lo"])
            #expect(addresses("gw1") == ["192.0.2.1/28"])
            #expect(addresses("gw2") == ["192.0.2.17/28"])
            #expect(addresses("lo")?.contains("203.0.113.10/24") == true)
            for link in links {
                #expect(link.flags.contains("UP"), "\(link.ifname) is up")
            }

            #expect(try sysctl("net.ipv4.ip_forward", in: upstream.name) == "1")
            #expect(try sysctl("net.ipv4.fib_multipath_hash_policy", in: upstream.name) == "1")
            #expect(try sysctl("net.ipv4.conf.all.ignore_routes_with_linkdown", in: upstream.name) == "1")
            // Only in the upstream namespace: a gateway host keeps the defaults.
            #expect(try sysctl("net.ipv4.ip_forward", in: upstream.uplinks[0].host) == "0")

            for uplink in upstream.uplinks {
                let ext0 = try #require(interfaces(in: uplink.host, device: uplink.hostInterface).first)
                #expect(ext0.mtu == SandboxNetwork.uplinkMTU)
                #expect(ext0.flags.contains("UP") && ext0.flags.contains("LOWER_UP"))
                #expect((ext0.addrInfo ?? []).isEmpty, "Hive owns ext0: no address, not even IPv6 link-local")
                let hostSide = try NetworkNamespace.run(uplink.host, ["ethtool", "-k", uplink.hostInterface])
                #expect(hostSide.contains("tx-checksumming: on"), "the kernel's default offloads, as on a real NIC")
                let upstreamSide = try NetworkNamespace.run(upstream.name, ["ethtool", "-k", uplink.interface])
                #expect(upstreamSide.contains("tx-checksumming: on"))
            }
            // Only gateway hosts have an ext0, and nothing sits in the root namespace.
            #expect(throws: CommandFailure.self) { try interfaces(in: network.hosts[0].name, device: "ext0") }
            let rootLinks = try RootNamespace.run(["ip", "-o", "link", "show"])
            #expect(!rootLinks.contains(network.prefix))
        }
    }

    @Test func eachUplinkJoinsItsGatewayHostToTheUpstream() async throws {
        try await onOwnThread {
            let network = networkWithUpstream(prefix: uniquePrefix())
            defer { network.destroy() }
            try network.create()
            let upstream = try #require(network.upstream)

            // With Hive's address put on ext0 for a moment, the upstream pings it over that link only.
            for uplink in upstream.uplinks {
                try NetworkNamespace.run(uplink.host, ["ip", "address", "add", uplink.nextHop + "/28", "dev", uplink.hostInterface])
                let reply = try NetworkNamespace.run(upstream.name, ["ping", "-c", "1", "-W", "2", uplink.nextHop])
                #expect(reply.contains("1 received"))
                let neighbour = try NetworkNamespace.run(upstream.name, ["ip", "neigh", "show", uplink.nextHop])
                #expect(neighbour.contains("dev \(uplink.interface)"))
            }
            // The server address answers inside the upstream namespace.
            let local = try NetworkNamespace.run(upstream.name, ["ping", "-c", "1", "-W", "2", "203.0.113.10"])
            #expect(local.contains("1 received"))
        }
    }

    @Test func multipathRouteSpreadsFlowsAndDropsAGatewayWhoseLinkIsDown() async throws {
        try await onOwnThread {
            let network = networkWithUpstream(prefix: uniquePrefix())
            defer { network.destroy() }
            try network.create()
            let upstream = try #require(network.upstream)

            let route = try #require(try multipathRoute(to: "198.51.100.0/24", in: upstream.name))
            #expect(route.nexthops?.map(\.gateway) == ["192.0.2.2", "192.0.2.18"])
            #expect(route.nexthops?.map(\.dev) == ["gw1", "gw2"])
            #expect(route.nexthops?.allSatisfy { $0.flags.isEmpty } == true)

            /// The interfaces the kernel picks for TCP flows to a floating IP from 32 source ports.
            func chosen() throws -> Set<String> {
                var devices: Set<String> = []
                for sourcePort in 40000..<40032 {
                    let output = try NetworkNamespace.run(
                        upstream.name, ["ip", "-j", "route", "get", "198.51.100.10", "ipproto", "tcp", "sport", "\(sourcePort)", "dport", "80"])
                    devices.formUnion(try decode([RouteInfo].self, output).map(\.dev))
                }
                return devices
            }
            // The L4 hash spreads flows over both gateways (with the default
            // L3 hash all 32 would take one path: same addresses).
            #expect(try chosen() == ["gw1", "gw2"])

            // gw1's ext0 goes down (its host died, or was cut off): its path leaves the route.
            try NetworkNamespace.run(upstream.uplinks[0].host, ["ip", "link", "set", "dev", "ext0", "down"])
            let withoutGW1 = try #require(try multipathRoute(to: "198.51.100.0/24", in: upstream.name))
            #expect(withoutGW1.nexthops?.first { $0.dev == "gw1" }?.flags.contains("linkdown") == true)
            #expect(try chosen() == ["gw2"])

            try NetworkNamespace.run(upstream.uplinks[0].host, ["ip", "link", "set", "dev", "ext0", "up"])
            #expect(try chosen() == ["gw1", "gw2"])
        }
    }

    @Test func destroyRemovesTheUpstreamAndGatewayHosts() async throws {
        try await onOwnThread {
            let prefix = uniquePrefix()
            let network = networkWithUpstream(prefix: prefix)
            defer { network.destroy() }
            try network.create()
            #expect(namespaces(startingWith: prefix) == [prefix + "gw1", prefix + "gw2", prefix + "h1", prefix + "internet", prefix + "underlay", prefix + "vm1"])

            network.destroy()
            #expect(namespaces(startingWith: prefix) == [])
            network.destroy()
            #expect(namespaces(startingWith: prefix) == [])
        }
    }

    @Test func failureAtTheUpstreamRemovesWhatCreateMade() async throws {
        try await onOwnThread {
            let prefix = uniquePrefix()
            let network = networkWithUpstream(prefix: prefix)
            let squatter = prefix + "internet"
            try RootNamespace.run(["ip", "netns", "add", squatter])
            defer { SandboxNetwork.destroyAll(prefix: prefix) }

            let failure = try #require(throws: CommandFailure.self) { try network.create() }
            #expect(failure.description.contains("netns add \(squatter)"))
            #expect(namespaces(startingWith: prefix) == [squatter], "only the namespace create did not make is left")
        }
    }
}
#endif

@Suite("Sandbox upstream validation")
struct SandboxUpstreamValidationTests {
    let network = networkWithUpstream(prefix: "hive-ab12-")

    @Test func theUpstreamNetworkIsValidAndListsItsNamespace() {
        #expect(network.validationProblems() == [])
        #expect(network.namespaces == [
            "hive-ab12-underlay", "hive-ab12-h1", "hive-ab12-gw1", "hive-ab12-gw2", "hive-ab12-internet", "hive-ab12-vm1",
        ])
        #expect(network.requiredTools.contains("sysctl"))
        #expect(!twoHostNetwork(prefix: "hive-ab12-").requiredTools.contains("sysctl"))
    }

    @Test func upstreamNameFollowsTheNamespaceRules() {
        var network = network
        network.upstream?.name = "internet"
        #expect(network.validationProblems().map(\.field) == ["upstream.name"])
        network.upstream?.name = "hive-ab12-gw1"
        #expect(network.validationProblems().map(\.field) == ["upstream.name"])
    }

    @Test func uplinkProblemsNameTheFieldAndWhatWouldDo() {
        var network = network
        network.upstream?.uplinks[0].host = "hive-ab12-gw9"
        network.upstream?.uplinks[1].hostInterface = "hive-ab12-vm1"
        network.upstream?.uplinks[1].host = "hive-ab12-h1"
        network.upstream?.uplinks[1].interface = "gw1"
        network.upstream?.uplinks[1].nextHop = "192.0.2.40"
        let problems = network.validationProblems()
        #expect(problems.map(\.field) == [
            "upstream.uplinks[0].host", "upstream.uplinks[1].hostInterface", "upstream.uplinks[1].interface", "upstream.uplinks[1].nextHop",
        ])
        #expect(problems[1].description.contains("is already used on host 'hive-ab12-h1'"))
        #expect(problems[3].description == "upstream.uplinks[1].nextHop: '192.0.2.40' is not another address in the uplink's subnet 192.0.2.16/28")
    }

    @Test func addressesAndPrefixesAreChecked() {
        var network = network
        network.upstream?.uplinks[1].address = "192.0.2.5/28"
        network.upstream?.uplinks[1].nextHop = "192.0.2.6"
        network.upstream?.serverAddress = "203.0.113.10"
        network.upstream?.routedPrefixes = ["198.51.100.0/24", "198.51.100/24"]
        #expect(network.validationProblems().map(\.field) == [
            "upstream.uplinks[1].address", "upstream.serverAddress", "upstream.routedPrefixes[1]",
        ])
        network = self.network
        network.upstream?.uplinks = []
        #expect(network.validationProblems().map(\.field) == ["upstream.routedPrefixes[0]"])
    }
}
