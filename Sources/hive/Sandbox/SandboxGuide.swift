import Foundation
import HiveAgent
import HiveSandbox
import ServiceLifecycle

/// Waits for the agents to bind their VMs and uplinks, checks that the VMs
/// reach each other and tries the outside world, and tells the user what to
/// do next; then waits for shutdown.
struct SandboxGuide: Service {
    /// `export PATH=<this binary's directory>:$PATH` when a new shell would
    /// not find this `hive` (a build that was not installed), so every
    /// printed command works as printed; else nothing.
    static var pathExport: String {
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let directory = binary.deletingLastPathComponent().path
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let found = path.split(separator: ":").contains { entry in
            URL(fileURLWithPath: String(entry)).appendingPathComponent("hive").resolvingSymlinksInPath().path == binary.path
        }
        return found ? "" : "  export PATH=\(directory):$PATH\n"
    }

    let plan: SandboxPlan
    let agents: [Agent]
    let tokenFiles: (admin: String, blue: String, green: String)
    let url: URLBox
    let metrics: URLBox
    let servers: SandboxServers

    func run() async throws {
        let expected = plan.vms.count + plan.uplinks.count
        for _ in 0..<100 {
            let bound = agents.reduce(0) { $0 + $1.statistics.ports.count }
            if bound >= expected, url.url != nil, metrics.url != nil { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        // Each VM asks for its address like a cloud VM: a real DHCP client.
        let client = DHCPClient.allCases.reversed().first(where: \.isInstalled)
        say("\nDHCP in the VMs (\(client?.rawValue ?? "no client installed: apt-get install udhcpc")):")
        var sessions: [DHCPClient.Session] = []
        defer { for session in sessions { session.stop() } }
        if let client {
            for vm in plan.vms {
                do {
                    let session = try client.configure(namespace: plan.namespace(of: vm))
                    sessions.append(session)
                    say("  \(vm.name): \(session.lease.address), mtu \(session.lease.mtu), default via \(session.lease.gateway ?? "-")")
                } catch {
                    say("  \(vm.name): FAILED: \(error)")
                }
            }
        }
        let checks: [(String, String, String)] = [
            ("vm1", "10.0.1.12", "vm2, same bridge, other host"),
            ("vm1", "10.0.2.14", "vm4, across the router, other host"),
            ("vm2", "10.0.2.13", "vm3, across the router, other host"),
        ]
        say("\nChecking connectivity:")
        for (from, to, what) in checks {
            let namespace = plan.prefix + from
            let ok = (try? NetworkNamespace.run(namespace, ["ping", "-c", "3", "-i", "0.2", "-W", "1", to], timeout: .seconds(10))) != nil
            say("  \(from) -> \(to) (\(what)): \(ok ? "ok" : "FAILED")")
        }
        checkOutside()
        let endpoint = url.url ?? "http://127.0.0.1:9696"
        let metricsURL = metrics.url ?? "http://127.0.0.1:9697"
        say("""

            The sandbox is up. In another shell:

              ip netns exec \(plan.prefix)vm1 ping 10.0.2.14          # vm1 (blue, host 1) to vm4 (green, host 2)
              ip netns exec \(plan.prefix)vm2 ping 10.0.1.11          # same bridge, across hosts

            \(Self.pathExport)  export HIVE_ENDPOINT=\(endpoint)
              export HIVE_TOKEN_FILE=\(tokenFiles.admin)   # admin; tenants: \(tokenFiles.blue), \(tokenFiles.green)
              hive port list
              hive port show blue/vm1                             # its MAC, fixed IP, port security; host, interface, up, counters
              hive flows --host \(plan.prefix)h1                          # the flows h1's agent installed (after a ping)
              hive flows --host \(plan.prefix)h1 --port blue/vm1 --json   # those of vm1's port, for scripts
              hive flows --host \(plan.prefix)h1 --summary                # hit rate, upcalls per second, drops by reason
              hive trace --in-port blue/vm1 --dst-ip 10.0.2.14

              # Port security: vm1 pretends to be 10.0.1.99; nobody hears it, and the agent counts it.
              ip netns exec \(plan.prefix)vm1 ip address add 10.0.1.99/24 dev eth0
              ip netns exec \(plan.prefix)vm1 ping -c 3 -I 10.0.1.99 10.0.1.12
              curl -s \(metricsURL)/metrics | grep 'reason="spoofed_'
              ip netns exec \(plan.prefix)vm1 ip address del 10.0.1.99/24 dev eth0

              # Security groups (stateful): vm4 takes new connections on TCP 80 only, and
              # still gets the replies to its own.
              hive security-group create web --tenant green
              hive security-group rule create --group web --direction ingress --protocol tcp --port 80 --remote 0.0.0.0/0
              hive port update vm4 --security-group web          # vm1 -> vm4 ping stops (no ICMP rule)
              ip netns exec \(plan.prefix)vm4 ping -c 2 10.0.1.11   # vm4 -> vm1 gets its replies
              curl -s \(metricsURL)/metrics | grep -E 'hive_conntrack_entries|reason="security_group"'
              hive port update vm4 --no-security-groups

              hive chain create block-ping && hive rule create --chain block-ping --protocol icmp --action drop
              hive port update vm4 --inbound-chain block-ping    # the ping to vm4 stops
              hive trace --live --port vm4 --match icmp --count 2  # while vm1 pings vm4: which rule drops vm4's replies, on which host
              hive port update vm4 --inbound-chain none          # and comes back
              hive trace --live --port vm1 --match 'icmp and dst host 10.0.2.14' --count 1   # vm1's echo, hop by hop, to vm4's host

              # The outside world: \(plan.upstreamNamespace) routes \(plan.publicPrefix) to the uplinks (ECMP), and its
              # server \(plan.serverAddress) answers HTTP with the address it sees.
              ip netns exec \(plan.upstreamNamespace) curl http://\(plan.floatingIP)/          # vm1 by its floating IP
              ip netns exec \(plan.prefix)vm1 ping \(plan.serverAddress)                         # vm1 out, as \(plan.floatingIP)
              ip netns exec \(plan.prefix)vm3 curl http://\(plan.serverAddress)/                 # "you are \(plan.edgeGatewayAddress)": edge's SNAT
              hive floating-ip list                                          # \(plan.floatingIP) -> vm1
              hive router show edge                                          # its gateway: SNAT to \(plan.edgeGatewayAddress)
              curl -s \(metricsURL)/metrics | grep hive_nat_                   # SNAT port blocks leased, per host
              ip netns exec \(plan.upstreamNamespace) ip route show \(plan.publicPrefix)   # one next hop per gateway
              ip netns exec \(plan.prefix)gw1 ip link set dev ext0 down                 # gw1's path leaves the route
              ip netns exec \(plan.prefix)gw1 ip link set dev ext0 up

            Agent metrics (Prometheus): curl \(metricsURL)/metrics
            Ctrl-C (or `hive sandbox down`) removes everything.

            """)
        try? await gracefulShutdown()
    }

    /// Tries the paths through the provider router and reports each as
    /// answered or not, without failing the sandbox: they depend on NAT in
    /// the agents, which the east-west checks above do not.
    private func checkOutside() {
        let outside = plan.upstreamNamespace
        let server = "\(plan.serverAddress)"
        say("\nThe outside world (\(outside); vm1's floating IP \(plan.floatingIP), edge's SNAT address \(plan.edgeGatewayAddress)):")
        let local = try? SandboxHTTPClient.get(address: server, namespace: outside, timeout: .seconds(2))
        say("  server \(server):80 in \(outside): \(local.map { "answering, \"\(Self.line($0.body))\"" } ?? "NOT ANSWERING")")
        let attempts: [(from: String, to: String, what: String)] = [
            (outside, "\(plan.floatingIP)", "vm1's web server by its floating IP"),
            (plan.prefix + "vm3", server, "the outside server from vm3, through edge's SNAT"),
        ]
        for attempt in attempts {
            let answer = try? SandboxHTTPClient.get(address: attempt.to, namespace: attempt.from, timeout: .seconds(2))
            say("  \(attempt.from) -> http://\(attempt.to)/ (\(attempt.what)): \(answer.map { "answered \"\(Self.line($0.body))\"" } ?? "no answer")")
        }
        let pinged = (try? NetworkNamespace.run(
            plan.prefix + "vm1", ["ping", "-c", "1", "-W", "2", server], timeout: .seconds(5))) != nil
        say("  vm1 -> \(server) (ping, leaving as \(plan.floatingIP)): \(pinged ? "answered" : "no answer")")
    }

    /// The first line of `text`, for a one-line report.
    private static func line(_ text: String) -> String {
        String(text.prefix { $0 != "\n" })
    }
}
