import Foundation
import HiveClient
import HiveModel
import struct HiveModel.Port
import HivePacket
import HiveSandbox
import Testing

/// Floods across hosts, on real namespaces: bridge blue with vm1 on h1,
/// vm2, vm3 and vm4 on h2, vm5 on h3. Broadcasts from vm1 reach h2 as one
/// Geneve packet each on blue's flood key (h2 delivers to its three VMs),
/// and h3, with one port, as one packet on vm5's key; tshark on the
/// underlay counts them. With vm4's outbound chain dropping them, h2 gets
/// one packet per VM that may have the frame, and vm4 none.
@Suite(.serialized) struct FloodEndToEndTests {
    static let vms = [
        OverlayLab.VM(name: "vm1", host: 1, address: "10.0.1.11", mac: "02:00:0a:00:01:0b"),
        OverlayLab.VM(name: "vm2", host: 2, address: "10.0.1.12", mac: "02:00:0a:00:01:0c"),
        OverlayLab.VM(name: "vm3", host: 2, address: "10.0.1.13", mac: "02:00:0a:00:01:0d"),
        OverlayLab.VM(name: "vm4", host: 2, address: "10.0.1.14", mac: "02:00:0a:00:01:0e"),
        OverlayLab.VM(name: "vm5", host: 3, address: "10.0.1.15", mac: "02:00:0a:00:01:0f"),
    ]
    static let receivers = ["vm2", "vm3", "vm4", "vm5"]
    static let udpPort = 9999
    static let frames = 5

    @Test func floodsReachEachRemoteHostOnceOnTheBridgesFloodKey() async throws {
        try await OverlayLab.run(hosts: 3, vms: Self.vms) { lab in
            let blue = try await lab.client.create(Bridge(name: "blue")).object
            var ports: [String: Port] = [:]
            for vm in Self.vms { ports[vm.name] = try await lab.plug(vm.name, into: blue.id).port }
            try await lab.waitForBoundPorts(5)
            let floodKey = try await lab.client.get(blue.id).object.tunnelKey
            #expect(floodKey != 0)
            // h1 knows where every port is once it reaches each remote VM.
            for vm in Self.vms.dropFirst() {
                #expect(await lab.pingEventually(from: "vm1", to: vm.address), "vm1 -> \(vm.name)")
            }

            // Five broadcasts, each one UDP datagram to 255.255.255.255.
            let (packets, received) = try await Self.broadcast(lab, tag: "all")
            let toH2 = packets.filter { $0.source == "100.64.0.1" && $0.destination == "100.64.0.2" }
            let toH3 = packets.filter { $0.source == "100.64.0.1" && $0.destination == "100.64.0.3" }
            print("floodsReachEachRemoteHostOnceOnTheBridgesFloodKey: \(Self.frames) broadcasts -> h2 \(toH2.count) packets (VNIs \(Set(toH2.map(\.vni)))), h3 \(toH3.count) packets (VNIs \(Set(toH3.map(\.vni)))); received \(received)")
            #expect(toH2.count == Self.frames, "one packet to h2 per broadcast: \(toH2)")
            #expect(toH2.allSatisfy { $0.vni == floodKey }, "on blue's flood key \(floodKey): \(toH2)")
            #expect(toH3.count == Self.frames, "one packet to h3 per broadcast: \(toH3)")
            #expect(toH3.allSatisfy { $0.vni == ports["vm5"]!.tunnelKey }, "h3's one port by its own key: \(toH3)")
            for vm in Self.receivers {
                #expect(received[vm] == Self.frames, "\(vm) got every broadcast: \(received)")
            }

            // vm4's outbound chain drops UDP: h2 must not deliver to it, so it gets vm2's and vm3's copies by their keys.
            let chain = try await lab.client.create(Chain(name: "no-udp")).object
            _ = try await lab.client.insert(Rule(chainId: chain.id, conditions: RuleConditions(ipProtocol: Match(IPProtocolNumber.udp)), action: .drop))
            var vm4 = try await lab.client.get(ports["vm4"]!.id).object
            vm4.outboundChainId = chain.id
            _ = try await lab.client.update(vm4)
            try await Task.sleep(for: .seconds(1))
            let (partial, partialReceived) = try await Self.broadcast(lab, tag: "but-vm4")
            let partialToH2 = partial.filter { $0.source == "100.64.0.1" && $0.destination == "100.64.0.2" }
            print("floodsReachEachRemoteHostOnceOnTheBridgesFloodKey: vm4 excluded -> h2 \(partialToH2.count) packets (VNIs \(Set(partialToH2.map(\.vni)))); received \(partialReceived)")
            #expect(partialToH2.count == 2 * Self.frames, "one packet per VM that may have it: \(partialToH2)")
            #expect(Set(partialToH2.map(\.vni)) == [ports["vm2"]!.tunnelKey, ports["vm3"]!.tunnelKey], "by vm2's and vm3's keys: \(partialToH2)")
            #expect(partialReceived["vm4"] == 0, "vm4's chain keeps the broadcasts from it: \(partialReceived)")
            for vm in ["vm2", "vm3", "vm5"] {
                #expect(partialReceived[vm] == Self.frames, "\(vm) still got every broadcast: \(partialReceived)")
            }
        }
    }

    /// Sends `frames` broadcasts from vm1 while tshark captures the
    /// underlay and each receiver listens; returns the Geneve packets that
    /// carried them and how many each receiver got.
    static func broadcast(_ lab: OverlayLab, tag: String) async throws -> ([TunnelCapture.Packet], [String: Int]) {
        try await blocking {
            let capture = try TunnelCapture(lab: lab, seconds: 12)
            let listeners = try receivers.map { try BroadcastListener(namespace: lab.namespace($0), port: udpPort, seconds: 8) }
            _ = try NetworkNamespace.run(
                lab.namespace("vm1"), ["python3", "-c", sender, "255.255.255.255", "\(udpPort)", "\(frames)", "hive-flood-\(tag)"], timeout: .seconds(30))
            var received: [String: Int] = [:]
            for (vm, listener) in zip(receivers, listeners) {
                received[vm] = try listener.finish().filter { $0.hasPrefix("hive-flood-\(tag)-") }.count
            }
            let packets = try capture.finish().filter { $0.innerUDPPort == udpPort }
            return (packets, received)
        }
    }

    static let sender = """
        import socket, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
        for n in range(int(sys.argv[3])):
            s.sendto(f"{sys.argv[4]}-{n}".encode(), (sys.argv[1], int(sys.argv[2])))
            time.sleep(0.2)
        """
}

/// A UDP socket in a VM that prints every datagram it gets for a while.
final class BroadcastListener: @unchecked Sendable {
    static let script = """
        import socket, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(sys.argv[1])))
        s.settimeout(0.2)
        print("listening", flush=True)
        deadline = time.time() + float(sys.argv[2])
        while time.time() < deadline:
            try:
                data, _ = s.recvfrom(2048)
            except socket.timeout:
                continue
            print(data.decode(errors="replace"), flush=True)
        """

    private let process: Process
    private let output = Pipe()
    private var said = ""

    /// Returns once the socket is bound.
    init(namespace: String, port: Int, seconds: Int) throws {
        process = try NetworkNamespace.start(namespace, ["python3", "-c", Self.script, "\(port)", "\(seconds)"], standardOutput: output.fileHandleForWriting)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, process.isRunning, !said.contains("listening") {
            said += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        }
        guard said.contains("listening") else {
            if process.isRunning { process.terminate() }
            throw LabError("the listener in \(namespace) did not start: \(said)")
        }
    }

    /// Waits for the listener to end; the datagrams it got, one per line.
    func finish() throws -> [String] {
        process.waitUntilExit()
        try output.fileHandleForWriting.close()
        said += String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return said.split(separator: "\n").map(String.init).filter { $0 != "listening" }
    }
}
