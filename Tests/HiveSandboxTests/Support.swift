import Foundation
import HiveSandbox

/// A prefix no other test (or run) uses: "hive-" and four random
/// characters and "-", ten in all, the longest allowed.
func uniquePrefix() -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
    return "hive-" + String((0..<4).map { _ in alphabet.randomElement()! }) + "-"
}

/// The namespaces that exist and start with `prefix`.
func namespaces(startingWith prefix: String) -> [String] {
    NetworkNamespace.list().filter { $0.hasPrefix(prefix) }.sorted()
}

/// Two hosts on the underlay and one VM on each, all named with `prefix`.
func twoHostNetwork(prefix: String) -> SandboxNetwork {
    SandboxNetwork(
        prefix: prefix,
        hosts: [
            .init(name: prefix + "h1", underlayAddress: "100.64.0.1/24"),
            .init(name: prefix + "h2", underlayAddress: "100.64.0.2/24"),
        ],
        vms: [
            .init(
                name: prefix + "vm1", host: prefix + "h1", hostInterface: prefix + "vm1", mac: "02:00:00:00:01:0a",
                address: "10.0.1.10/24", gateway: "10.0.1.1"),
            .init(
                name: prefix + "vm2", host: prefix + "h2", hostInterface: prefix + "vm2", mac: "02:00:00:00:02:0a",
                address: "10.0.2.10/24", gateway: "10.0.2.1", mtu: 1450),
        ])
}

/// One interface as `ip -j -s address show` prints it.
struct InterfaceInfo: Decodable {
    struct Address: Decodable {
        var family: String
        var local: String
        var prefixlen: Int
    }
    struct Statistics: Decodable {
        struct Counters: Decodable { var packets: Int }
        var rx: Counters
        var tx: Counters
    }
    var ifname: String
    var mtu: Int
    var address: String?
    var flags: [String]
    var addrInfo: [Address]?
    var stats64: Statistics?
}

/// One route as `ip -j route show` prints it.
struct RouteInfo: Decodable {
    var dst: String
    var gateway: String?
    var dev: String
}

/// The interfaces of `namespace` (all, or the one named `device`).
func interfaces(in namespace: String, device: String? = nil) throws -> [InterfaceInfo] {
    let output = try NetworkNamespace.run(
        namespace, ["ip", "-j", "-s", "address", "show"] + (device.map { ["dev", $0] } ?? []))
    return try decode([InterfaceInfo].self, output)
}

/// The IPv4 routes of the main table in `namespace`.
func routes(in namespace: String) throws -> [RouteInfo] {
    try decode([RouteInfo].self, NetworkNamespace.run(namespace, ["ip", "-j", "-4", "route", "show"]))
}

func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return try decoder.decode(type, from: Data(json.utf8))
}

/// Waits up to `timeout` for `process` to exit; true when it did.
func waitForExit(_ process: Process, timeout: Duration = .seconds(5)) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline {
        Thread.sleep(forTimeInterval: 0.02)
    }
    return !process.isRunning
}

/// Kills `process` if a failed test left it running.
func stop(_ process: Process) {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
}

/// One hypervisor host with a VM, two gateway hosts, and the upstream
/// namespace linked to the gateways' `ext0`, as `hive sandbox` builds them.
func networkWithUpstream(prefix: String) -> SandboxNetwork {
    SandboxNetwork(
        prefix: prefix,
        hosts: [
            .init(name: prefix + "h1", underlayAddress: "100.64.0.1/24"),
            .init(name: prefix + "gw1", underlayAddress: "100.64.0.11/24"),
            .init(name: prefix + "gw2", underlayAddress: "100.64.0.12/24"),
        ],
        vms: [
            .init(
                name: prefix + "vm1", host: prefix + "h1", hostInterface: prefix + "vm1", mac: "02:00:00:00:01:0a",
                address: "10.0.1.10/24", gateway: "10.0.1.1")
        ],
        upstream: .init(
            name: prefix + "internet",
            uplinks: [
                .init(host: prefix + "gw1", hostInterface: "ext0", interface: "gw1", address: "192.0.2.1/28", nextHop: "192.0.2.2"),
                .init(host: prefix + "gw2", hostInterface: "ext0", interface: "gw2", address: "192.0.2.17/28", nextHop: "192.0.2.18"),
            ],
            serverAddress: "203.0.113.10/24",
            routedPrefixes: ["198.51.100.0/24"]))
}

/// A route with its next hops, as `ip -j route show` prints a multipath one.
struct MultipathRouteInfo: Decodable {
    struct NextHop: Decodable {
        var gateway: String
        var dev: String
        var flags: [String]
    }
    var dst: String
    var nexthops: [NextHop]?
}

/// The route to exactly `prefix` in `namespace`, with its next hops.
func multipathRoute(to prefix: String, in namespace: String) throws -> MultipathRouteInfo? {
    let output = try NetworkNamespace.run(namespace, ["ip", "-j", "-4", "route", "show", "exact", prefix])
    return try decode([MultipathRouteInfo].self, output).first
}

/// The value of a sysctl inside `namespace`, e.g. "1".
func sysctl(_ name: String, in namespace: String) throws -> String {
    try NetworkNamespace.run(namespace, ["sysctl", "-n", name]).trimmingCharacters(in: .whitespacesAndNewlines)
}
