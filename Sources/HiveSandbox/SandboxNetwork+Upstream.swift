import Foundation

// The outside world of a sandbox network: one namespace (e.g.
// "hive-internet") that plays the upstream router of a provider network.
//
//   gateway host (e.g. P+"gw1"):  ext0, no address: Hive's uplink port owns it
//          |  veth
//   upstream namespace (P+"internet"): gw1 192.0.2.1/28, gw2 192.0.2.17/28, lo 203.0.113.10/24
//          |  veth
//   gateway host P+"gw2":  ext0
//
// It forwards (ip_forward), reaches the provider's addresses (floating IPs,
// SNAT addresses) by one multipath route whose next hops are Hive's uplink
// ports, hashed on the 5-tuple (fib_multipath_hash_policy=1, as a real
// upstream router spreads flows over ECMP paths), and drops a next hop whose
// link is down (ignore_routes_with_linkdown), so a gateway host that goes
// away takes its path with it. A "server" address lives on its loopback: lo
// makes the whole prefix local, so any address in it answers.

extension SandboxNetwork {
    /// The upstream router: a namespace linked to gateway hosts by veths.
    public struct Upstream: Sendable, Hashable {
        /// The namespace name; starts with the network's prefix, e.g. "hive-internet".
        public var name: String
        /// One link per gateway host; their `nextHop`s are the multipath route's.
        public var uplinks: [Uplink]
        /// An address with its prefix length on the namespace's loopback,
        /// e.g. "203.0.113.10/24" (a dummy interface would do, but not every
        /// kernel has the module); nil for none.
        public var serverAddress: String?
        /// The prefixes reached over the uplinks, each by one multipath route
        /// through every uplink's `nextHop`, e.g. ["198.51.100.0/24"].
        public var routedPrefixes: [String]

        public init(name: String, uplinks: [Uplink], serverAddress: String? = nil, routedPrefixes: [String] = []) {
            self.name = name
            self.uplinks = uplinks
            self.serverAddress = serverAddress
            self.routedPrefixes = routedPrefixes
        }
    }

    /// A gateway host's link to the upstream router: a veth with one end in
    /// the host (no address, for Hive's datapath) and one in the upstream
    /// namespace (with an address on the uplink's subnet).
    public struct Uplink: Sendable, Hashable {
        /// The `name` of the host the link starts in.
        public var host: String
        /// The end in the host namespace (at most 15 characters), e.g. "ext0",
        /// which a router port is bound to. It gets no address, not even IPv6
        /// link-local: Hive owns it.
        public var hostInterface: String
        /// The end in the upstream namespace, e.g. "gw1".
        public var interface: String
        /// The address of `interface` with its prefix length, e.g. "192.0.2.1/28".
        public var address: String
        /// Hive's side of the link, e.g. "192.0.2.2": another address in
        /// `address`'s subnet, the next hop of the routed prefixes.
        public var nextHop: String

        public init(host: String, hostInterface: String, interface: String, address: String, nextHop: String) {
            self.host = host
            self.hostInterface = hostInterface
            self.interface = interface
            self.address = address
            self.nextHop = nextHop
        }
    }

    /// The MTU of both ends of every uplink: an ordinary Ethernet's.
    public static let uplinkMTU = 1500

    /// The sysctls set in the upstream namespace, in order.
    public static let upstreamSysctls = [
        "net.ipv4.ip_forward=1",
        // Hash on addresses, protocol and ports: flows, not only hosts, spread over the paths.
        "net.ipv4.fib_multipath_hash_policy=1",
        // A next hop whose link is down leaves the multipath route.
        "net.ipv4.conf.all.ignore_routes_with_linkdown=1",
    ]

    func createUpstream(_ upstream: Upstream, recordingIn created: inout [String]) throws {
        let name = upstream.name
        try NetworkNamespace.add(name)
        created.append(name)
        try ip(name, "link", "set", "dev", "lo", "up")
        for sysctl in Self.upstreamSysctls {
            try NetworkNamespace.run(name, ["sysctl", "-q", "-w", sysctl])
        }
        if let server = upstream.serverAddress {
            try ip(name, "address", "add", server, "dev", "lo")
        }
        for uplink in upstream.uplinks {
            let mtu = "\(Self.uplinkMTU)"
            try ip(name, "link", "add", "name", uplink.interface, "type", "veth", "peer", "name", uplink.hostInterface, "netns", uplink.host)
            try ip(name, "link", "set", "dev", uplink.interface, "mtu", mtu)
            try ip(name, "address", "add", uplink.address, "dev", uplink.interface)
            try ip(name, "link", "set", "dev", uplink.interface, "up")
            try ip(uplink.host, "link", "set", "dev", uplink.hostInterface, "addrgenmode", "none")
            try ip(uplink.host, "link", "set", "dev", uplink.hostInterface, "mtu", mtu, "up")
        }
        guard !upstream.uplinks.isEmpty else { return }
        for prefix in upstream.routedPrefixes {
            // One path per uplink, equal weight: ECMP.
            let nextHops = upstream.uplinks.flatMap { ["nexthop", "via", $0.nextHop, "dev", $0.interface] }
            try RootNamespace.run(["ip", "-n", name, "route", "add", prefix] + nextHops)
        }
    }

    /// Problems with `upstream` but its name, in field order, passed to
    /// `report(field, value, problem)`; `hostInterfaces` holds the [host,
    /// interface] pairs taken by the VMs.
    func upstreamProblems(
        _ upstream: Upstream, hostInterfaces: inout Set<[String]>, report: (String, String, String) -> Void
    ) {
        let hostNames = Set(hosts.map(\.name))
        var interfaces: Set<String> = []
        var subnets: [IPv4CIDR] = []
        for (index, uplink) in upstream.uplinks.enumerated() {
            let field = "upstream.uplinks[\(index)]"
            if !hostNames.contains(uplink.host) {
                report("\(field).host", uplink.host, "is not the name of a host in this network")
            }
            if let problem = Self.interfaceProblem(uplink.hostInterface) {
                report("\(field).hostInterface", uplink.hostInterface, problem)
            } else if !hostInterfaces.insert([uplink.host, uplink.hostInterface]).inserted {
                report("\(field).hostInterface", uplink.hostInterface, "is already used on host '\(uplink.host)' (by a VM or another uplink)")
            }
            if let problem = Self.interfaceProblem(uplink.interface) {
                report("\(field).interface", uplink.interface, problem)
            } else if !interfaces.insert(uplink.interface).inserted {
                report("\(field).interface", uplink.interface, "is already another uplink's in '\(upstream.name)'")
            }
            guard let cidr = IPv4CIDR(parsing: uplink.address) else {
                report("\(field).address", uplink.address, IPv4CIDR.expectation)
                continue
            }
            if subnets.contains(where: { $0.contains(cidr.address) || cidr.contains($0.address) }) {
                report("\(field).address", uplink.address, "overlaps another uplink's subnet; each link needs its own")
            }
            subnets.append(cidr)
            if let next = IPv4CIDR.parseAddress(uplink.nextHop) {
                if !cidr.contains(next) || next == cidr.address {
                    report("\(field).nextHop", uplink.nextHop, "is not another address in the uplink's subnet \(cidr.subnetDescription)")
                }
            } else {
                report("\(field).nextHop", uplink.nextHop, "is not an IPv4 address, e.g. 192.0.2.2")
            }
        }
        if let server = upstream.serverAddress, IPv4CIDR(parsing: server) == nil {
            report("upstream.serverAddress", server, IPv4CIDR.expectation)
        }
        for (index, prefix) in upstream.routedPrefixes.enumerated() {
            if let cidr = IPv4CIDR(parsing: prefix) {
                if cidr.address & cidr.mask != cidr.address {
                    report("upstream.routedPrefixes[\(index)]", prefix, "has host bits set (expected the network, \(cidr.subnetDescription))")
                } else if upstream.uplinks.isEmpty {
                    report("upstream.routedPrefixes[\(index)]", prefix, "cannot be routed without uplinks (expected at least one uplink)")
                }
            } else {
                report("upstream.routedPrefixes[\(index)]", prefix, "is not an IPv4 prefix, e.g. 198.51.100.0/24")
            }
        }
    }
}
