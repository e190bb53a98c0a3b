#if os(Linux)
import Foundation
import Glibc
import HiveDatapath
import HivePacket
import HiveSandbox
import Synchronization
import Testing

// What the datapath tests share: a fixed-policy upcall handler, sandbox
// topologies that are always torn down, datapaths that are always stopped,
// raw sockets to write and read frames as a VM's NIC or a peer host would,
// and polling with a generous deadline instead of sleeps.

// MARK: - The upcall handler

/// An upcall handler with a fixed policy: frames from in-port K go to
/// `routes[K]`, and from a port without a route they drop. Every decision
/// is cached, tagged with `policyTag` and the tag of its in-port.
///
/// Called on the datapath thread; the test thread changes the routes and
/// reads the misses, so both sit behind a lock.
final class PolicyHandler: UpcallHandler, Sendable {
    /// Carried by every flow: invalidating it drops them all.
    static let policyTag: FlowTag = 0xFFFF_0000
    /// Carried by the flows of packets that came in by `portKey`.
    static func portTag(_ portKey: UInt32) -> FlowTag { FlowTag(portKey) }

    private struct State: Sendable {
        var routes: [UInt32: [FlowOutput]]
        var misses: [FlowKey] = []
        var failedPorts: [UInt32] = []
        var tracedPorts: Set<UInt32> = []
        /// Each flow hit reported for tracing: the packet's port and the flow's packet count.
        var traceHits: [(portKey: UInt32, packets: UInt64)] = []
        var traceLimited = 0
    }

    private let state: Mutex<State>

    init(routes: [UInt32: [FlowOutput]]) {
        state = Mutex(State(routes: routes))
    }

    /// Replaces the policy; cached flows keep the old one until invalidated.
    func setRoutes(_ routes: [UInt32: [FlowOutput]]) {
        state.withLock { $0.routes = routes }
    }

    /// The key of every miss so far, in order.
    var misses: [FlowKey] { state.withLock { $0.misses } }

    func misses(where matches: (FlowKey) -> Bool) -> Int {
        misses.filter(matches).count
    }

    /// The ports the datapath reported failed and closed, in order.
    var failedPorts: [UInt32] { state.withLock { $0.failedPorts } }

    func beginBatch() {}

    /// Arms tracing on these ports (none: off).
    func trace(ports: Set<UInt32>) { state.withLock { $0.tracedPorts = ports } }
    var traceHits: [(portKey: UInt32, packets: UInt64)] { state.withLock { $0.traceHits } }
    /// Misses on traced ports that the upcall limit dropped.
    var traceLimited: Int { state.withLock { $0.traceLimited } }
    func traceLimited(frame: UnsafeRawBufferPointer, key: FlowKey) { state.withLock { $0.traceLimited += 1 } }

    var isTracing: Bool { state.withLock { !$0.tracedPorts.isEmpty } }
    func isTraced(portKey: UInt32) -> Bool { state.withLock { $0.tracedPorts.contains(portKey) } }
    func traceHit(frame: UnsafeRawBufferPointer, key: FlowKey, flow: FlowTable.Entry, now: UInt64) {
        state.withLock { $0.traceHits.append((key.inPort, flow.packets)) }
    }

    func portFailed(portKey: UInt32, error: SystemError) {
        state.withLock { $0.failedPorts.append(portKey) }
    }

    func handleMiss(frame: UnsafeRawBufferPointer, key: FlowKey, decision: inout UpcallDecision) {
        let outputs = state.withLock { state in
            state.misses.append(key)
            return state.routes[key.inPort] ?? []
        }
        decision.actions = FlowActions(outputs: outputs)
        decision.cache = true
        decision.tags.append(Self.policyTag)
        decision.tags.append(Self.portTag(key.inPort))
    }
}

extension FlowKey {
    var isICMPEchoRequest: Bool { isIPv4 && ipProtocol == .icmp && icmpType == 8 }
    var isICMPEchoReply: Bool { isIPv4 && ipProtocol == .icmp && icmpType == 0 }
}

// MARK: - Topologies

/// A prefix no other test or run uses: "hive-d", three random characters
/// and "-", the ten characters a sandbox prefix may have.
func uniqueDatapathPrefix() -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
    return "hive-d" + String((0..<3).map { _ in alphabet.randomElement()! }) + "-"
}

/// Addresses of the test topologies.
enum Topology {
    static let underlay1 = IPv4.Address(100, 64, 0, 1)
    static let underlay2 = IPv4.Address(100, 64, 0, 2)
    static let vm1Address = "10.0.0.1"
    static let vm2Address = "10.0.0.2"
    static let vm1MAC = EthernetAddress(0x02, 0x00, 0x00, 0x00, 0x00, 0x01)
    static let vm2MAC = EthernetAddress(0x02, 0x00, 0x00, 0x00, 0x00, 0x02)
    /// The port keys the tests give vm1's and vm2's host ends.
    static let vm1Key: UInt32 = 1
    static let vm2Key: UInt32 = 2

    /// Host h1 (and h2 when `twoHosts`) on the underlay; vm1 on h1, vm2 on
    /// h2 or also on h1; both VMs in 10.0.0.0/24.
    static func network(prefix: String, twoHosts: Bool) -> SandboxNetwork {
        let h1 = SandboxNetwork.Host(name: prefix + "h1", underlayAddress: "100.64.0.1/24")
        let h2 = SandboxNetwork.Host(name: prefix + "h2", underlayAddress: "100.64.0.2/24")
        return SandboxNetwork(
            prefix: prefix,
            hosts: twoHosts ? [h1, h2] : [h1],
            vms: [
                .init(
                    name: prefix + "vm1", host: h1.name, hostInterface: prefix + "vm1", mac: "\(vm1MAC)",
                    address: vm1Address + "/24"),
                .init(
                    name: prefix + "vm2", host: twoHosts ? h2.name : h1.name, hostInterface: prefix + "vm2",
                    mac: "\(vm2MAC)", address: vm2Address + "/24"),
            ])
    }
}

/// Builds `network`, runs `body`, and removes every namespace of it
/// however `body` ends.
func withNetwork<T>(_ network: SandboxNetwork, _ body: (SandboxNetwork) throws -> T) throws -> T {
    defer { network.destroy() }
    try network.create()
    return try body(network)
}

/// Starts a datapath in host namespace `host` with its tunnel socket on
/// `underlay`:6081 and `ports` (port key, interface in `host`) bound, runs
/// `body`, and stops it (closing every socket) however `body` ends.
func withDatapath<T>(
    host: String, underlay: IPv4.Address, handler: PolicyHandler, ports: [(key: UInt32, interface: String)],
    configuration: DatapathConfiguration = DatapathConfiguration(),
    _ body: (Datapath<PolicyHandler>) throws -> T
) throws -> T {
    let tunnelFD = try DatapathSockets.openUDPSocket(address: underlay, port: 6081, namespace: host)
    let datapath: Datapath<PolicyHandler>
    do {
        datapath = try Datapath(handler: handler, tunnelFD: tunnelFD, underlayAddress: underlay, configuration: configuration)
    } catch {
        DatapathSockets.close(tunnelFD)
        throw error
    }
    try datapath.start()
    defer { datapath.stop() }
    for port in ports {
        try bindPort(port.key, interface: port.interface, in: host, to: datapath)
    }
    return try body(datapath)
}

/// Opens a packet socket on `interface` in namespace `host`, adds it to
/// `datapath` as port `key`, and waits until the datapath reports it
/// bound; returns the socket, which the datapath now owns.
@discardableResult
func bindPort(_ key: UInt32, interface: String, in host: String, to datapath: Datapath<PolicyHandler>) throws -> Int32 {
    let socket = try DatapathSockets.openPacketSocket(interface: interface, namespace: host)
    datapath.addPort(LocalPort(portKey: key, interfaceName: interface, fd: socket.fd))
    // Bound once the thread has applied the command and published.
    guard eventually({ datapath.statistics.ports[key] != nil }) else {
        throw TestFailure("the datapath in \(host) did not report port \(key) (\(interface)) bound within 10 s")
    }
    return socket.fd
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Waiting and pinging

/// Polls `condition` every 20 ms until it holds or `timeout` passes;
/// whether it held. The deadline is generous: only a broken datapath
/// reaches it.
func eventually(within timeout: Duration = .seconds(10), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        Thread.sleep(forTimeInterval: 0.02)
    }
}

/// How a `ping -c count -W 2` from namespace `vm` to `address` went: the
/// replies received, or nil when none came (ping exited with status 1).
/// Throws when ping could not run at all.
func ping(from vm: String, _ address: String, count: Int = 3, interval: String = "1") throws -> Int? {
    do {
        let output = try NetworkNamespace.run(
            vm, ["ping", "-n", "-c", "\(count)", "-i", interval, "-W", "2", address], timeout: .seconds(60))
        return receivedCount(in: output)
    } catch let failure as CommandFailure where failure.exitStatus == 1 {
        return nil
    }
}

/// Pings as `ping(from:_:count:interval:)` and expects `expected` replies
/// (nil: none at all).
func expectPing(
    from vm: String, to address: String, count: Int, interval: String = "1", replies expected: Int?, _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let replies = try ping(from: vm, address, count: count, interval: interval)
    #expect(replies == expected, comment, sourceLocation: sourceLocation)
}

/// "3 packets transmitted, 3 received, 0% packet loss" -> 3.
private func receivedCount(in output: String) -> Int? {
    guard let line = output.split(separator: "\n").first(where: { $0.contains(" received") }) else { return nil }
    for part in line.split(separator: ",") where part.contains("received") {
        return Int(part.trimmingCharacters(in: .whitespaces).split(separator: " ")[0])
    }
    return nil
}

/// A `ping` left running in the background (one ICMP identifier for all
/// its packets, so one flow each way); killed at `stop()`.
final class BackgroundPing {
    let process: Process

    init(from vm: String, _ address: String) throws {
        process = try NetworkNamespace.start(vm, ["ping", "-n", "-i", "0.1", address])
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}

/// Whether executable `name` is installed (on PATH or in sbin).
func isInstalled(_ name: String) -> Bool {
    (try? SandboxTools.check([name])) != nil
}

// MARK: - Raw sockets

/// A packet socket on an interface, to write frames the way a VM's NIC
/// would and read what arrives. Closed on deinit.
final class RawPort {
    let fd: Int32

    init(interface: String, namespace: String) throws {
        fd = try DatapathSockets.openPacketSocket(interface: interface, namespace: namespace, virtioNetHeaders: false).fd
    }

    deinit { DatapathSockets.close(fd) }

    /// Writes one frame; false when the kernel refused it.
    @discardableResult
    func send(_ frame: [UInt8]) -> Bool {
        frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) } == frame.count
    }

    /// Reads frames until one satisfies `matches` or `timeout` passes.
    func receive(within timeout: Duration = .seconds(10), matching matches: ([UInt8]) -> Bool) -> [UInt8]? {
        receiveMatching(fd: fd, within: timeout, matches)
    }
}

/// A UDP socket bound in a namespace, to play a peer host on the tunnel.
final class UDPPeer {
    let fd: Int32

    init(address: IPv4.Address, port: UInt16, namespace: String) throws {
        fd = try DatapathSockets.openUDPSocket(address: address, port: port, namespace: namespace, receiveCoalesced: false)
    }

    deinit { DatapathSockets.close(fd) }

    /// Sends one datagram; false when the kernel refused it.
    @discardableResult
    func send(_ payload: [UInt8], to address: IPv4.Address, port: UInt16) -> Bool {
        var destination = sockaddr_in()
        destination.sin_family = sa_family_t(AF_INET)
        destination.sin_port = port.bigEndian
        destination.sin_addr = in_addr(s_addr: address.value.bigEndian)
        let sent = payload.withUnsafeBytes { bytes in
            withUnsafePointer(to: &destination) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        return sent == payload.count
    }

    /// Reads datagrams until one satisfies `matches` or `timeout` passes.
    func receive(within timeout: Duration = .seconds(10), matching matches: ([UInt8]) -> Bool) -> [UInt8]? {
        receiveMatching(fd: fd, within: timeout, matches)
    }
}

private func receiveMatching(fd: Int32, within timeout: Duration, _ matches: ([UInt8]) -> Bool) -> [UInt8]? {
    let deadline = ContinuousClock.now + timeout
    var buffer = [UInt8](repeating: 0, count: 9216)
    while ContinuousClock.now < deadline {
        var polled = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&polled, 1, 50) > 0 else { continue }
        let length = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if length >= 0 {
            let received = Array(buffer[0..<length])
            if matches(received) { return received }
        }
    }
    return nil
}

/// The inode of the socket open as `fd`, nil when `fd` is not open: tells
/// "closed" from "closed and the number reused by another socket".
func socketInode(_ fd: Int32) -> UInt64? {
    var status = stat()
    guard fstat(fd, &status) == 0 else { return nil }
    return UInt64(status.st_ino)
}

// MARK: - Frames

/// Builds frames byte by byte, for the datapath tests' malformed input.
enum TestFrames {
    /// An Ethernet header from vm1 to vm2 with `etherType`, then `payload`.
    static func ethernet(_ etherType: UInt16, _ payload: [UInt8] = []) -> [UInt8] {
        var bytes: [UInt8] = []
        Ethernet.Header(destination: Topology.vm2MAC, source: Topology.vm1MAC, etherType: Ethernet.EtherType(etherType))
            .write(to: &bytes)
        return bytes + payload
    }

    /// A 20-byte IPv4 header from vm1 to vm2 with `firstByte` (version and
    /// header length), `totalLength` and `protocol`; checksum left zero.
    static func ipv4Header(firstByte: UInt8 = 0x45, totalLength: UInt16, protocol: UInt8 = 1) -> [UInt8] {
        [
            firstByte, 0, UInt8(totalLength >> 8), UInt8(totalLength & 0xFF), 0, 0, 0x40, 0, 64, `protocol`, 0, 0,
            10, 0, 0, 1, 10, 0, 0, 2,
        ]
    }

    /// A frame of an experimental EtherType (0x88B5, IEEE 802 local use) that
    /// carries `marker`: the kernels ignore it, the tests recognize it.
    static func marked(_ marker: String, from source: EthernetAddress = Topology.vm1MAC, to destination: EthernetAddress = Topology.vm2MAC) -> [UInt8] {
        var bytes: [UInt8] = []
        Ethernet.Header(destination: destination, source: source, etherType: Ethernet.EtherType(0x88B5)).write(to: &bytes)
        bytes += Array(marker.utf8)
        if bytes.count < 60 { bytes += [UInt8](repeating: 0, count: 60 - bytes.count) }
        return bytes
    }

    /// `marked(marker)` with an 802.1Q tag of VLAN `vlan` after the addresses.
    static func marked(_ marker: String, vlan: UInt16) -> [UInt8] {
        var bytes = marked(marker)
        bytes.insert(contentsOf: [0x81, 0x00, UInt8(vlan >> 8), UInt8(vlan & 0xFF)], at: 12)
        return bytes
    }

    /// A Geneve header: `firstByte` (version and options length in words),
    /// `flags`, `protocolType`, `vni`; then `rest` (options and inner frame).
    static func geneve(firstByte: UInt8 = 0, flags: UInt8 = 0, protocolType: UInt16 = 0x6558, vni: UInt32, _ rest: [UInt8] = []) -> [UInt8] {
        [
            firstByte, flags, UInt8(protocolType >> 8), UInt8(protocolType & 0xFF),
            UInt8(vni >> 16 & 0xFF), UInt8(vni >> 8 & 0xFF), UInt8(vni & 0xFF), 0,
        ] + rest
    }
}

/// SplitMix64, so the random garbage is the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
#endif

