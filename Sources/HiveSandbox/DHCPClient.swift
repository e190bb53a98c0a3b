import Foundation

/// A real DHCP client run in a VM's namespace: ISC `dhclient` or busybox
/// `udhcpc`, each with a configuration script of Hive's that sets only the
/// interface (address, MTU, routes), never the machine's resolv.conf or
/// hostname, which a namespace shares with the host.
public enum DHCPClient: String, Sendable, CaseIterable {
    case dhclient
    case udhcpc

    /// What a client configured on an interface.
    public struct Lease: Sendable, CustomStringConvertible {
        /// "10.0.1.11/24".
        public var address: String
        public var mtu: Int
        /// The default route's next hop, if any.
        public var gateway: String?
        /// Every route, as `ip route` prints them.
        public var routes: [String]

        public var description: String { "\(address) mtu \(mtu) via \(gateway ?? "-") routes \(routes)" }
    }

    /// The client running in the background, and what it got.
    public final class Session: @unchecked Sendable {
        public let lease: Lease
        let process: Process
        let files: [String]

        init(lease: Lease, process: Process, files: [String]) {
            self.lease = lease
            self.process = process
            self.files = files
        }

        /// Stops the client (it would renew the lease) and removes its files.
        public func stop() {
            if process.isRunning { process.terminate() }
            for file in files { try? FileManager.default.removeItem(atPath: file) }
        }
    }

    /// Whether the client is installed here.
    public var isInstalled: Bool { (try? CommandRunner.resolved([rawValue])) != nil }

    /// Starts the client on `interface` in namespace `namespace` and waits
    /// until the interface has an IPv4 address (the client stays to renew).
    /// - Throws: `CommandFailure` when the client is missing or does not
    ///   configure the interface within `timeout`, with what it printed.
    public func configure(namespace: String, interface: String = "eth0", timeout: Duration = .seconds(30)) throws -> Session {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hive-dhcp-" + UUID().uuidString.prefix(8)).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = directory + "/configure.sh"
        try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        let arguments: [String]
        switch self {
        case .dhclient:
            let configuration = directory + "/dhclient.conf"
            try Self.dhclientConfiguration.write(toFile: configuration, atomically: true, encoding: .utf8)
            arguments = ["dhclient", "-d", "-1", "-v", "-cf", configuration, "-lf", directory + "/leases", "-pf", directory + "/pid",
                         "-sf", script, interface]
        case .udhcpc:
            arguments = ["udhcpc", "-f", "-i", interface, "-s", script, "-t", "10", "-T", "1", "-A", "1"]
        }
        let log = directory + "/output"
        FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let process = try NetworkNamespace.start(namespace, arguments, standardOutput: output, standardError: output)
        try? output.close()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let lease = try? Self.lease(namespace: namespace, interface: interface) {
                return Session(lease: lease, process: process, files: [directory])
            }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        if process.isRunning { process.terminate() }
        let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: directory)
        throw CommandFailure(command: arguments, outcome: .timedOut(after: timeout), standardError: "no address on \(interface) in \(namespace); the client said:\n" + said)
    }

    /// The interface's IPv4 address, MTU and routes; nil while it has no address.
    public static func lease(namespace: String, interface: String) throws -> Lease? {
        let addresses = try RootNamespace.run(["ip", "-n", namespace, "-4", "-o", "address", "show", "dev", interface])
        guard let address = addresses.split(separator: " ").drop(while: { $0 != "inet" }).dropFirst().first else { return nil }
        let link = try RootNamespace.run(["ip", "-n", namespace, "-o", "link", "show", "dev", interface])
        let words = link.split(separator: " ")
        let mtu = words.firstIndex(of: "mtu").flatMap { Int(words[$0 + 1]) } ?? 0
        let routes = try RootNamespace.run(["ip", "-n", namespace, "-4", "route", "show"])
            .split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) }
        let gateway = routes.first { $0.hasPrefix("default via ") }.map { String($0.split(separator: " ")[2]) }
        return Lease(address: String(address), mtu: mtu, gateway: gateway, routes: routes)
    }

    /// Called by both clients (they export different variables): sets the
    /// address, MTU and routes, classless routes (RFC 3442) over the router option.
    static let script = #"""
        #!/bin/sh
        # dhclient: $reason and new_*; udhcpc: $1 and $ip, $mask, $router, $mtu, $staticroutes.
        iface="${interface}"
        case "${reason:-$1}" in
            PREINIT|deconfig) ip link set dev "$iface" up; ip -4 address flush dev "$iface"; exit 0 ;;
            BOUND|RENEW|REBIND|REBOOT) address="$new_ip_address"; mtu="$new_interface_mtu"; routers="$new_routers"
                length="$new_subnet_mask"
                classless="$new_rfc3442_classless_static_routes" ;;
            bound|renew) address="$ip"; length="$mask"; routers="$router"; classless="" ; static="$staticroutes" ;;
            *) exit 0 ;;
        esac
        [ -n "$address" ] || exit 0
        ip -4 address flush dev "$iface"
        ip address add "$address/${length:-24}" dev "$iface"
        [ -n "$mtu" ] && ip link set dev "$iface" mtu "$mtu"
        ip -4 route flush dev "$iface" proto boot 2>/dev/null
        if [ -n "$classless" ]; then
            # dhclient: "len o1 o2 ... r1 r2 r3 r4" repeated, space-separated.
            set -- $classless
            while [ $# -gt 0 ]; do
                len=$1; shift; octets=$(( (len + 7) / 8 )); dest=""; i=0
                while [ $i -lt 4 ]; do
                    if [ $i -lt $octets ]; then part=$1; shift; else part=0; fi
                    dest="${dest:+$dest.}$part"; i=$((i + 1))
                done
                gw="$1.$2.$3.$4"; shift 4
                ip route replace "$dest/$len" via "$gw" dev "$iface" proto boot
            done
        elif [ -n "$static" ]; then
            # udhcpc: "dest/len gw dest/len gw ..."
            set -- $static
            while [ $# -gt 1 ]; do ip route replace "$1" via "$2" dev "$iface" proto boot; shift 2; done
        else
            for gw in $routers; do ip route replace default via "$gw" dev "$iface" proto boot; break; done
        fi
        exit 0
        """#

    static let dhclientConfiguration = """
        option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
        request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name,
                interface-mtu, rfc3442-classless-static-routes;
        timeout 20;
        retry 1;
        """
}
