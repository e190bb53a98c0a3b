import Foundation
import HiveDatapath
import HiveModel
import struct HiveModel.Port
import HivePacket
import HiveSandbox
import Testing

/// End to end with the VMs' default offloads (nothing turned off): their
/// stacks hand Hive TCP super-frames of up to 64 KB, UDP GSO super-frames
/// and partial checksums, as real VMs do. Across a bridge (no rules) and a
/// router into a port with a rule chain, on two hosts, TCP, UDP and ICMP
/// must arrive intact, the underlay must carry only packets with correct
/// checksums, and the datapaths must count no drop of their own. Without
/// the datapath's offload handling the super-frames do not fit its buffers
/// and are dropped (`truncated`), and the transfers stall.
@Suite(.serialized) struct OffloadEndToEndTests {
    static let vms = [
        OverlayLab.VM(name: "vm1", host: 1, address: "10.0.1.11", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0b"),
        OverlayLab.VM(name: "vm2", host: 2, address: "10.0.1.12", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0c"),
        OverlayLab.VM(name: "vm3", host: 2, address: "10.0.2.13", gateway: "10.0.2.1", mac: "02:00:0a:00:02:0d"),
    ]

    /// OverlayTests' network, and on vm3's port a stateful chain on what reaches it.
    static func buildNetwork(_ lab: OverlayLab) async throws -> OverlayTests.Network {
        let network = try await OverlayTests.buildNetwork(lab)
        let chain = try await lab.client.create(Chain(name: "vm3-in")).object
        _ = try await lab.client.insert(Rule(chainId: chain.id, conditions: RuleConditions(connectionState: Match(.established)), action: .accept))
        for (number, ports) in [(IPProtocolNumber.tcp, [5001, 8000]), (IPProtocolNumber.udp, [9000])] {
            for port in ports {
                _ = try await lab.client.insert(Rule(chainId: chain.id, conditions: RuleConditions(
                    ipProtocol: Match(number), destinationPorts: Match(PortRange(UInt16(port)))), action: .accept))
            }
        }
        _ = try await lab.client.insert(Rule(chainId: chain.id, conditions: RuleConditions(ipProtocol: Match(IPProtocolNumber.icmp)), action: .accept))
        _ = try await lab.client.insert(Rule(chainId: chain.id, action: .drop))
        var vm3 = try await lab.client.get(network.ports["vm3"]!.id).object
        vm3.outboundChainId = chain.id
        _ = try await lab.client.update(vm3)
        return network
    }

    /// (name, address) of the two paths from vm1: a bridge, and a router into the chain.
    static let paths = [("vm2", "10.0.1.12"), ("vm3", "10.0.2.13")]

    @Test func vmsWithDefaultOffloadsTalkTCPUDPAndICMPAcrossABridgeAndARouterWithRules() async throws {
        try await OverlayLab.run(vms: Self.vms) { lab in
            _ = try await Self.buildNetwork(lab)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(lab.prefix + "www").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let blob = (0..<1_048_576).map { _ in UInt8.random(in: 0...255) }
            try Data(blob).write(to: URL(fileURLWithPath: directory + "/blob"))
            let servers = try await blocking {
                try Self.paths.flatMap { vm, _ in
                    [try NetworkNamespace.start(lab.namespace(vm), ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0", "--directory", directory]),
                     try NetworkNamespace.start(lab.namespace(vm), ["python3", "-c", UDPEcho.server])]
                }
            }
            defer { for server in servers where server.isRunning { server.terminate() } }
            for (vm, address) in Self.paths {
                #expect(await lab.pingEventually(from: "vm1", to: address), "vm1 -> \(vm)")
            }

            // 1. The underlay as the host's kernel sets it up (UDP segmentation offload on the
            //    veths): super-frames leave in UDP GSO sends and arrive coalesced (UDP_GRO).
            try await Self.exchange(lab, blob: blob)
            // Counters are published every 50 ms or so.
            _ = await eventually(within: 5) { lab.agents.reduce(0) { $0 + $1.statistics.tunnelCoalescedBuffers } > 0 }
            let statistics = lab.agents.map(\.statistics)
            let received = statistics.reduce(0) { $0 + $1.superFramesReceived }
            let segmented = statistics.reduce(0) { $0 + $1.superFramesSegmented }
            let completed = statistics.reduce(0) { $0 + $1.checksumsCompleted }
            let coalesced = statistics.reduce(0) { $0 + $1.tunnelCoalescedBuffers }
            let joined = statistics.reduce(0) { $0 + $1.coalescedSuperFrames }
            print("offloads: \(received) super-frames read, \(segmented) cut for the tunnel, \(completed) checksums completed, \(coalesced) coalesced tunnel buffers, \(joined) super-frames joined for the VMs")
            #expect(received > 0 && segmented > 0, "the VMs handed super-frames and they crossed the tunnel cut")
            #expect(completed > 0, "partial checksums were completed for the tunnel")
            #expect(coalesced > 0, "segments sent with UDP GSO arrived coalesced and were split")
            #expect(joined > 0, "consecutive segments were joined back into super-frames for the receiving VMs")

            // 2. The underlay split to wire size (a NIC without UDP segmentation offload), so
            //    that the capture holds every datagram: no inner checksum may be wrong.
            try await blocking {
                for host in lab.network.hosts {
                    _ = try NetworkNamespace.run(host.name, ["ethtool", "-K", SandboxNetwork.underlayInterface, "tx-udp-segmentation", "off"])
                }
            }
            let capture = try await blocking { try ChecksumCapture(lab: lab) }
            try await Self.exchange(lab, blob: blob)
            let checked = try await blocking { try capture.finish() }
            print("underlay capture: \(checked.packets) Geneve packets, \(checked.innerTCP) inner TCP, \(checked.innerUDP) inner UDP, \(checked.bad) with a bad checksum")
            #expect(checked.innerTCP > 1_000, "the capture holds the transfers (\(checked.innerTCP) inner TCP segments)")
            #expect(checked.verifiedTCP == checked.innerTCP, "tshark checked every inner TCP checksum (\(checked.verifiedTCP) good)")
            #expect(checked.innerUDP > 0)
            #expect(checked.bad == 0, "bad checksums on the underlay: \(checked.badExamples)")

            // No drop of the datapath's own, no socket overflow (policy drops, VMs' IPv6 chatter
            // included, are the simulation's and listed for the record).
            for (number, statistics) in lab.agents.map(\.statistics).enumerated() {
                let own = statistics.drops.filter { $0.key != .flowDrop && $0.value > 0 }
                #expect(own.isEmpty, "h\(number + 1) datapath drops: \(own)")
                #expect(statistics.tunnelKernelDrops == 0, "h\(number + 1) tunnel socket drops")
                for port in statistics.ports.values {
                    #expect(port.kernelDrops == 0 && port.tooBig == 0, "h\(number + 1) \(port.name): \(port.kernelDrops) kernel drops, \(port.tooBig) too big")
                }
                print("h\(number + 1) policy drops: \(statistics.drops[.flowDrop] ?? 0)")
            }
        }
    }

    /// TCP both ways, a 1 MB HTTP download, UDP (single datagrams and a UDP
    /// GSO send) and ICMP, from vm1 to vm2 (bridge) and vm3 (router, chain).
    static func exchange(_ lab: OverlayLab, blob: [UInt8]) async throws {
        let expected = sha256(blob)
        for (vm, address) in paths {
            let upload = try await TCPTransfer.run(lab, server: vm, serverAddress: address, client: "vm1", bytes: 2_000_000)
            #expect(upload.sent == upload.received && upload.sent.count == 64, "vm1 -> \(vm): TCP upload digest")
            let download = try await blocking {
                try NetworkNamespace.run(lab.namespace("vm1"), ["python3", "-c", HTTPDownload.client, "http://\(address):8000/blob"], timeout: .seconds(60))
            }
            #expect(download.trimmingCharacters(in: .whitespacesAndNewlines) == expected, "\(vm) -> vm1: the 1 MB HTTP download's sha256")
            let echoed = try await blocking {
                try NetworkNamespace.run(lab.namespace("vm1"), ["python3", "-c", UDPEcho.client, address], timeout: .seconds(60))
            }
            #expect(echoed.contains("echoed 20 datagrams and 8 segments"), "vm1 <-> \(vm) UDP: \(echoed)")
            #expect(await lab.ping(from: "vm1", to: address, count: 3), "vm1 -> \(vm) ICMP")
            let large = try await blocking {
                (try? NetworkNamespace.run(lab.namespace("vm1"), ["ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "1300", address], timeout: .seconds(30))) != nil
            }
            #expect(large, "vm1 -> \(vm) ICMP of 1,300 bytes")
        }
    }

    /// SHA-256 by Python's hashlib, as the client computes it.
    static func sha256(_ bytes: [UInt8]) -> String {
        let pipe = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())"]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = pipe
        try? process.run()
        input.fileHandleForWriting.write(Data(bytes))
        try? input.fileHandleForWriting.close()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Downloads a URL (retrying until the server listens) and prints its sha256.
enum HTTPDownload {
    static let client = """
        import hashlib, sys, time, urllib.request
        deadline = time.time() + 20
        while True:
            try:
                body = urllib.request.urlopen(sys.argv[1], timeout=20).read(); break
            except OSError:
                if time.time() > deadline: raise
                time.sleep(0.2)
        print(hashlib.sha256(body).hexdigest(), flush=True)
        """
}

/// A UDP echo on port 9000, and a client that checks 20 single datagrams of
/// 1,000 bytes and one UDP GSO send of 8 x 1,000 bytes (a UDP super-frame
/// on the VM's interface) all come back intact.
enum UDPEcho {
    static let server = """
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9000))
        while True:
            data, peer = s.recvfrom(65535); s.sendto(data, peer)
        """

    static let client = """
        import os, socket, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
        peer = (sys.argv[1], 9000)
        deadline = time.time() + 20
        while True:  # the first datagrams set up flows and ARP
            s.sendto(b"warm-up", peer)
            try:
                if s.recv(100) == b"warm-up": break
            except socket.timeout:
                if time.time() > deadline: sys.exit("no echo at all")
        def round_trip(payloads, send):
            want = set(payloads); send()
            s.settimeout(5)
            while want:
                data = s.recv(65535)
                if data in want: want.remove(data)
                elif data != b"warm-up": sys.exit("a datagram came back changed")
        singles = [os.urandom(1000) for _ in range(20)]
        round_trip(singles, lambda: [s.sendto(p, peer) for p in singles])
        segments = [os.urandom(1000) for _ in range(8)]
        s.setsockopt(socket.SOL_UDP, 103, 1000)  # UDP_SEGMENT
        round_trip(segments, lambda: s.sendto(b"".join(segments), peer))
        print("echoed 20 datagrams and 8 segments", flush=True)
        """
}

/// tshark on the underlay bridge, writing a capture file; at `finish()` the
/// file is read back with IP, UDP and TCP checksum validation on.
final class ChecksumCapture: @unchecked Sendable {
    struct Result {
        var packets = 0
        var innerTCP = 0
        /// Inner TCP segments whose checksum tshark verified good.
        var verifiedTCP = 0
        var innerUDP = 0
        var bad = 0
        var badExamples: [String] = []
    }

    private let process: Process
    private let errors = Pipe()
    private let file: String

    init(lab: OverlayLab) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark") else {
            throw LabError("tshark is missing: run scripts/install-test-deps.sh (it installs Debian's tshark)")
        }
        file = FileManager.default.temporaryDirectory.appendingPathComponent(lab.prefix + "underlay.pcapng").path
        process = try NetworkNamespace.start(
            lab.network.underlayNamespace,
            ["tshark", "-n", "-q", "-i", lab.network.underlayBridge, "-f", "udp port 6081", "-w", file],
            standardError: errors.fileHandleForWriting)
        let deadline = Date().addingTimeInterval(30)
        var said = ""
        while Date() < deadline, process.isRunning, !said.contains("Capturing on") {
            said += String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
        }
        guard said.contains("Capturing on") else {
            if process.isRunning { process.terminate() }
            throw LabError("tshark did not start capturing: \(said)")
        }
        // dumpcap says so a moment before its filter is live on a busy machine.
        Thread.sleep(forTimeInterval: 1)
    }

    /// Stops the capture and checks every packet: the outer IPv4 header and
    /// the inner packet's IPv4, TCP and UDP checksums. The outer UDP checksum
    /// is left to the sending host's kernel and NIC (checksum offload: a
    /// capture on the way shows it unfinished), not Hive's to compute.
    func finish() throws -> Result {
        if process.isRunning { process.interrupt() }
        process.waitUntilExit()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let text = try RootNamespace.run([
            "tshark", "-n", "-r", file, "-d", "udp.port==6081,geneve",
            "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
            "-T", "fields", "-E", "separator=|", "-e", "frame.number", "-e", "ip.checksum.status", "-e", "udp.checksum.status",
            "-e", "tcp.checksum.status",
        ], timeout: .seconds(120))
        var result = Result()
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.split(separator: ",").map(String.init) }
            guard fields.count >= 4 else { continue }
            result.packets += 1
            let ip = fields[1]
            let udp = fields[2]
            let tcp = fields[3]
            if !tcp.isEmpty { result.innerTCP += 1 }
            if tcp == ["1"] { result.verifiedTCP += 1 }
            if udp.count > 1 { result.innerUDP += 1 }
            // 0: bad (1 good, 2 not checked). udp[0] is the outer header's.
            if ip.contains("0") || udp.dropFirst().contains("0") || tcp.contains("0") {
                result.bad += 1
                if result.badExamples.count < 5 { result.badExamples.append(String(line)) }
            }
        }
        return result
    }
}
