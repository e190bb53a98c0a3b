import Foundation
import HiveAgent
import HiveClient
import HiveModel
import struct HiveModel.Port
import HivePacket
import HiveSandbox
import HiveStore
import Testing

/// The port's services end to end, on real namespaces with real clients:
/// DHCP (dhclient and udhcpc), port security against scapy's forgeries, the
/// learning cap under a random-MAC flood, ICMP "fragmentation needed" from
/// the router, and ARP answered on the ingress host.
@Suite(.serialized) struct PortServicesEndToEndTests {
    /// Bridge blue (10.0.1.0/24) and green (10.0.2.0/24) joined by router edge.
    struct Network {
        var blue: Bridge
        var green: Bridge
        var ports: [String: Port]
    }

    static func buildNetwork(_ lab: OverlayLab, blue blueVMs: [String], green greenVMs: [String]) async throws -> Network {
        let blue = try await lab.client.create(Bridge(name: "blue")).object
        let green = try await lab.client.create(Bridge(name: "green")).object
        let edge = try await lab.client.create(Router(name: "edge")).object
        try await lab.connect(edge.id, to: blue.id, address: "10.0.1.1", subnet: "10.0.1.0/24")
        try await lab.connect(edge.id, to: green.id, address: "10.0.2.1", subnet: "10.0.2.0/24")
        var ports: [String: Port] = [:]
        for vm in blueVMs { ports[vm] = try await lab.plug(vm, into: blue.id).port }
        for vm in greenVMs { ports[vm] = try await lab.plug(vm, into: green.id).port }
        try await lab.waitForBoundPorts(blueVMs.count + greenVMs.count)
        return Network(blue: blue, green: green, ports: ports)
    }

    @Test func dhclientAndUdhcpcGetAddressRouterAndMTUThenPingAcrossTheRouter() async throws {
        for client in DHCPClient.allCases where !client.isInstalled {
            Issue.record("\(client.rawValue) is missing: run scripts/install-test-deps.sh")
            return
        }
        let vms = [
            OverlayLab.VM(name: "vm1", host: 1, address: "10.0.1.11", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0b", dhcp: true, mtu: 1500),
            OverlayLab.VM(name: "vm2", host: 2, address: "10.0.1.12", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0c", dhcp: true, mtu: 1500),
            OverlayLab.VM(name: "vm3", host: 2, address: "10.0.2.13", gateway: "10.0.2.1", mac: "02:00:0a:00:02:0d"),
            // No address on its port: the pool gives one when it asks.
            OverlayLab.VM(name: "vm4", host: 1, address: "10.0.1.14", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0e",
                          dhcp: true, mtu: 1500, addressless: true),
        ]
        try await OverlayLab.run(vms: vms) { lab in
            let network = try await Self.buildNetwork(lab, blue: ["vm1", "vm2", "vm4"], green: ["vm3"])
            let capture = try await blocking { try VMCapture(lab: lab, vm: "vm1", filter: "udp port 67 or udp port 68", seconds: 25) }
            // vm1's broadcasts, seen from vm2 (on the other host, same bridge): there should be none.
            let elsewhere = try await blocking {
                try VMCapture(lab: lab, vm: "vm2", filter: "udp port 67 and ether src 02:00:0a:00:01:0b", seconds: 25)
            }
            let sessions = try await blocking {
                [try DHCPClient.dhclient.configure(namespace: lab.namespace("vm1")),
                 try DHCPClient.udhcpc.configure(namespace: lab.namespace("vm2"))]
            }
            defer { for session in sessions { session.stop() } }
            for (session, address) in zip(sessions, ["10.0.1.11/24", "10.0.1.12/24"]) {
                #expect(session.lease.address == address, "\(session.lease)")
                #expect(session.lease.gateway == "10.0.1.1", "\(session.lease)")
                #expect(session.lease.mtu == 1442, "Geneve on a 1500-byte underlay: \(session.lease)")
            }
            #expect(await lab.pingEventually(from: "vm1", to: "10.0.2.13"), "dhclient's VM reaches across the router")
            #expect(await lab.pingEventually(from: "vm2", to: "10.0.2.13"), "udhcpc's VM reaches across the router")
            #expect(await lab.ping(from: "vm1", to: "10.0.1.12", count: 2), "and they reach each other")

            let replies = try await blocking { try capture.finish(displayFilter: "dhcp.option.dhcp == 2 || dhcp.option.dhcp == 5") }
            #expect(replies.frames >= 2, "an offer and an ack reached vm1: \(replies)")
            #expect(replies.warnings.isEmpty, "tshark decodes the replies without warnings: \(replies.warnings)")
            // The port without an address got the pool's first free one, kept on the port.
            let pooled = try await blocking { try DHCPClient.udhcpc.configure(namespace: lab.namespace("vm4")) }
            defer { pooled.stop() }
            let vm4 = try await lab.client.get(network.ports["vm4"]!.id).object
            #expect(vm4.fixedIPs.count == 1, "the port now holds its address: \(vm4.fixedIPs)")
            #expect(pooled.lease.address == "\(vm4.fixedIPs.first?.description ?? "?")/24", "\(pooled.lease)")
            #expect(pooled.lease.gateway == "10.0.1.1" && pooled.lease.mtu == 1442, "\(pooled.lease)")
            if let address = vm4.fixedIPs.first {
                #expect(await lab.pingEventually(from: "vm4", to: "10.0.2.13"), "and port security lets \(address) through")
            }

            let flooded = try await blocking { try elsewhere.finish(displayFilter: "dhcp") }
            #expect(flooded.frames == 0, "vm1's DHCP was answered on its host, not flooded: \(flooded)")
        }
    }

    @Test func spoofedIPMACAndARPReachNobodyAndAreCounted() async throws {
        let vms = [
            OverlayLab.VM(name: "vm1", host: 1, address: "10.0.1.11", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0b"),
            OverlayLab.VM(name: "vm2", host: 2, address: "10.0.1.12", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0c"),
            OverlayLab.VM(name: "evil", host: 1, address: "10.0.1.13", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0d"),
            OverlayLab.VM(name: "open", host: 1, address: "10.0.1.14", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0e", portSecurity: false),
        ]
        try await OverlayLab.run(vms: vms) { lab in
            let network = try await Self.buildNetwork(lab, blue: ["vm1", "vm2", "evil", "open"], green: [])
            #expect(await lab.pingEventually(from: "vm1", to: "10.0.1.12"))
            #expect(await lab.pingEventually(from: "evil", to: "10.0.1.1"), "the router learns evil's real address")
            // Pings sent before h1 saw vm2's binding drop (no place to send them); what follows must not.
            let policyBefore = Self.sample(await Agent.metricsText(lab.agents), "hive_port_drops_total", reason: "policy", interface: lab.prefix + "vm1")
            let monitor = try PingMonitor(namespace: lab.namespace("vm1"), address: "10.0.1.12")
            defer { monitor.stop() }

            // evil forges vm2's IP, vm2's MAC, and ARP claiming vm2's IP, at vm1 and the router.
            let capture = try await blocking {
                try VMCapture(lab: lab, vm: "vm1", filter: "icmp or arp", seconds: 12)
            }
            let before = monitor.answers
            try await blocking {
                try Scapy.run(in: lab.namespace("evil"), Scapy.forgeries, arguments: [
                    "02:00:0a:00:01:0d", "10.0.1.13", "10.0.1.12", "02:00:0a:00:01:0c", "10.0.1.11", "02:00:0a:00:01:0b",
                    "10.0.1.1", "\(network.ports["vm1"]!.mac!)",
                ])
            }
            let seen = try await blocking {
                try capture.finish(displayFilter: "icmp.ident == 0x5151 || icmp.ident == 0x5152 || arp.src.hw_mac == 02:00:0a:00:01:0d")
            }
            #expect(seen.frames == 0, "no forged frame reached vm1: \(seen)")
            #expect(monitor.answers > before + 5, "vm1 -> vm2 kept flowing: \(before) -> \(monitor.answers)")
            let neighbour = try await blocking { try NetworkNamespace.run(lab.namespace("vm1"), ["ip", "neigh", "show", "10.0.1.12"]) }
            #expect(!neighbour.contains("02:00:0a:00:01:0d"), "vm1 still knows vm2 at vm2's MAC: \(neighbour)")
            let routerEntry = try await lab.store.range(.prefix(TopologyKeys.root + "state/arp/")).keyValues
                .filter { $0.key.hasSuffix("/10.0.1.12") }.map(\.text)
            #expect(!routerEntry.contains("02:00:0a:00:01:0d"), "the router did not learn the forged ARP: \(routerEntry)")

            let metrics = await Agent.metricsText(lab.agents)
            for reason in ["spoofed_ip", "spoofed_mac", "spoofed_arp"] {
                let count = Self.sample(metrics, "hive_port_drops_total", reason: reason, interface: lab.prefix + "evil")
                #expect(count >= 5, "\(reason) counted on evil's port: \(count)")
            }
            // vm1's ARP answered by the bridge and its pings are not drops of any kind.
            let vm1Policy = Self.sample(metrics, "hive_port_drops_total", reason: "policy", interface: lab.prefix + "vm1")
            #expect(vm1Policy == policyBefore, "answers are not counted as drops: \(vm1Policy); \(metrics.split(separator: "\n").filter { $0.hasPrefix("hive_simulations_total") && $0.contains("drop") })")

            // The port without port security learns, but at most its cap.
            let flooded = monitor.answers
            try await blocking { try Scapy.run(in: lab.namespace("open"), Scapy.macFlood, arguments: ["10000", "02:00:0a:00:01:0b"]) }
            try await Task.sleep(for: .seconds(2))
            let openID = network.ports["open"]!.id.description
            let learned = try await lab.store.range(.prefix(TopologyKeys.root + "state/mac/\(network.blue.id)/")).keyValues
                .filter { $0.text == openID }
            #expect(learned.count == Port.defaultMACLimit, "10,000 source MACs leave the cap's \(Port.defaultMACLimit) entries: \(learned.count)")
            #expect(monitor.answers > flooded + 5, "vm1 -> vm2 kept flowing through the flood: \(flooded) -> \(monitor.answers)")
            let refused = Self.sample(await Agent.metricsText(lab.agents), "hive_mac_limit_refused_total", reason: nil, interface: nil)
            #expect(refused > 0, "the refused MACs are counted: \(refused)")
        }
    }

    @Test func oversizeDFAcrossTheRouterGetsFragmentationNeededAndARPStaysOnTheHost() async throws {
        let vms = [
            OverlayLab.VM(name: "vm1", host: 1, address: "10.0.1.11", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0b", mtu: 1500),
            OverlayLab.VM(name: "vm2", host: 2, address: "10.0.1.12", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0c", mtu: 1500),
            OverlayLab.VM(name: "vm3", host: 2, address: "10.0.2.13", gateway: "10.0.2.1", mac: "02:00:0a:00:02:0d", mtu: 1500),
        ]
        try await OverlayLab.run(vms: vms) { lab in
            _ = try await Self.buildNetwork(lab, blue: ["vm1", "vm2"], green: ["vm3"])
            #expect(await lab.pingEventually(from: "vm1", to: "10.0.2.13"))
            let vm1 = lab.namespace("vm1")
            let said = try await blocking {
                try NetworkNamespace.run(vm1, ["sh", "-c", "ping -c 1 -W 2 -M do -s 1472 10.0.2.13 2>&1; true"])
            }
            #expect(said.contains("mtu = 1442"), "the router says the next hop takes 1442 bytes: \(said)")
            let route = try await blocking { try NetworkNamespace.run(vm1, ["ip", "route", "get", "10.0.2.13"]) }
            #expect(route.contains("mtu 1442"), "vm1's kernel took the path MTU: \(route)")
            #expect(await lab.ping(from: "vm1", to: "10.0.2.13", count: 2), "smaller packets go on")
            let fits = try await blocking { try NetworkNamespace.run(vm1, ["sh", "-c", "ping -c 2 -W 2 -M do -s 1414 10.0.2.13 2>&1; true"]) }
            #expect(fits.contains(" 0% packet loss"), "1442 bytes fit the tunnel: \(fits)")

            // Bridged, too big: dropped and counted on the ingress port, never silently.
            _ = try? await blocking { try NetworkNamespace.run(vm1, ["ping", "-c", "2", "-W", "1", "-M", "do", "-s", "1472", "10.0.1.12"]) }
            let metrics = await Agent.metricsText(lab.agents)
            #expect(Self.sample(metrics, "hive_port_drops_total", reason: "too_big", interface: lab.prefix + "vm1") >= 2)

            // ARP for a known address is answered on the ingress host: none crosses the underlay.
            _ = try await blocking { try NetworkNamespace.run(vm1, ["ip", "neigh", "flush", "all"]) }
            let tunnel = try await blocking { try TunnelCapture(lab: lab, seconds: 6) }
            #expect(await lab.ping(from: "vm1", to: "10.0.1.12", count: 3))
            let packets = try await blocking { try tunnel.finish() }
            #expect(packets.contains { $0.innerProtocol == "ICMP" }, "the capture saw the pings: \(packets)")
            #expect(!packets.contains { $0.innerProtocol == "ARP" }, "no ARP crossed the underlay: \(packets)")
            let neighbour = try await blocking { try NetworkNamespace.run(vm1, ["ip", "neigh", "show", "10.0.1.12"]) }
            #expect(neighbour.contains("02:00:0a:00:01:0c"), "vm1 resolved vm2 by the bridge's answer: \(neighbour)")
        }
    }

    @Test func learnedMACsAgeWhenIdleAndStayWhileInUse() async throws {
        let vms = [
            OverlayLab.VM(name: "vm1", host: 1, address: "10.0.1.11", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0b"),
            OverlayLab.VM(name: "open", host: 2, address: "10.0.1.14", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0e", portSecurity: false),
        ]
        // Short times so the test is short: entries age after 4 s, busy flows are simulated again every second.
        try await OverlayLab.run(vms: vms, configure: { configuration in
            configuration.macAgeingTime = .seconds(4)
            configuration.datapath.flowHardTimeout = .seconds(1)
        }) { lab in
            let network = try await Self.buildNetwork(lab, blue: ["vm1", "open"], green: [])
            let open = lab.namespace("open")
            // Two more MACs behind the port without port security: one speaks once, one keeps talking.
            try await blocking { try Scapy.run(in: open, Scapy.talk, arguments: ["02:00:0a:00:01:52", "10.0.1.52", "1", "0"]) }
            let busy = try NetworkNamespace.start(
                open, [Scapy.python, "-c", Scapy.talk, "02:00:0a:00:01:51", "10.0.1.51", "300", "0.1"])
            defer { if busy.isRunning { busy.terminate() } }
            let prefix = TopologyKeys.root + "state/mac/\(network.blue.id)/"
            func learned() async throws -> Set<String> {
                Set(try await lab.store.range(.prefix(prefix)).keyValues.map { String($0.key.dropFirst(prefix.count)) })
            }
            let both = await eventually(within: 10) { (try? await learned())?.isSuperset(of: ["02:00:0a:00:01:51", "02:00:0a:00:01:52"]) ?? false }
            let before = try await learned()
            #expect(both, "both MACs were learned: \(before)")
            try await Task.sleep(for: .seconds(8))
            let after = try await learned()
            #expect(!after.contains("02:00:0a:00:01:52"), "the quiet MAC aged out of the NSDB: \(after)")
            #expect(after.contains("02:00:0a:00:01:51"), "the busy MAC, confirmed by its traffic, stayed: \(after)")
            #expect(busy.isRunning, "the busy MAC was still talking")
            let aged = Self.sample(await Agent.metricsText([lab.agents[1]]), "hive_mac_aged_total", reason: nil, interface: nil)
            #expect(aged >= 1, "ageing is counted")
            try await blocking { try Scapy.run(in: open, Scapy.talk, arguments: ["02:00:0a:00:01:52", "10.0.1.52", "1", "0"]) }
            #expect(await eventually(within: 5) { (try? await learned())?.contains("02:00:0a:00:01:52") ?? false },
                    "the quiet MAC is learned again when it speaks")
        }
    }

    /// The value of the first sample of `family` with the given labels.
    static func sample(_ metrics: String, _ family: String, reason: String?, interface: String?) -> Int {
        for line in metrics.split(separator: "\n") where line.hasPrefix(family + "{") {
            if let reason, !line.contains("reason=\"\(reason)\"") { continue }
            if let interface, !line.contains("interface=\"\(interface)\"") { continue }
            return Int(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }
}

/// tshark in a VM's namespace, writing a capture file to read afterwards.
final class VMCapture: @unchecked Sendable {
    struct Result: CustomStringConvertible {
        var frames: Int
        var warnings: [String]
        var description: String { "\(frames) frames, warnings \(warnings)" }
    }

    private let process: Process
    private let file: String
    private let errors = Pipe()

    init(lab: OverlayLab, vm: String, filter: String, seconds: Int) throws {
        file = FileManager.default.temporaryDirectory.appendingPathComponent("\(lab.prefix)\(vm)-\(UUID().uuidString.prefix(6)).pcap").path
        process = try NetworkNamespace.start(
            lab.namespace(vm), ["tshark", "-n", "-i", "eth0", "-f", filter, "-a", "duration:\(seconds)", "-w", file],
            standardError: errors.fileHandleForWriting)
        let deadline = Date().addingTimeInterval(30)
        var said = ""
        while Date() < deadline, process.isRunning, !said.contains("Capturing on") {
            said += String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
        }
        guard said.contains("Capturing on") else { throw LabError("tshark did not start capturing in \(vm): \(said)") }
    }

    /// Stops the capture; counts the frames matching `displayFilter` and
    /// lists tshark's expert warnings about them.
    func finish(displayFilter: String) throws -> Result {
        if process.isRunning { process.interrupt() }
        process.waitUntilExit()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let frames = try RootNamespace.run(["tshark", "-n", "-r", file, "-Y", displayFilter, "-T", "fields", "-e", "frame.number"])
            .split(separator: "\n").count
        let expert = try RootNamespace.run(["tshark", "-n", "-r", file, "-Y", displayFilter, "-q", "-z", "expert,warn"])
        let warnings = expert.split(separator: "\n").map(String.init).filter { $0.contains("Warning") || $0.contains("Malformed") }
            .filter { !$0.hasPrefix("=") }
        return Result(frames: frames, warnings: warnings)
    }
}

/// Frames forged with scapy (Debian's python3-scapy), in a VM.
enum Scapy {
    static var python: String { FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3" }

    static func run(in namespace: String, _ script: String, arguments: [String]) throws {
        try NetworkNamespace.run(namespace, [python, "-c", script] + arguments, timeout: .seconds(120))
    }

    /// argv: my MAC, my IP, victim IP, victim MAC, target IP, target MAC, router IP, router-side MAC (unused).
    /// Each forgery 10 times: vm2's IP from my MAC (ICMP id 0x5151), vm2's
    /// MAC with my IP (0x5152), gratuitous ARP and an ARP reply claiming
    /// vm2's IP at my MAC, to vm1 and to the router.
    static let forgeries = """
        import sys
        from scapy.all import Ether, IP, ICMP, ARP, sendp
        me, my_ip, victim_ip, victim_mac, target_ip, target_mac, router_ip = sys.argv[1:8]
        frames = [
            Ether(src=me, dst=target_mac) / IP(src=victim_ip, dst=target_ip) / ICMP(id=0x5151) / b"spoofed-ip",
            Ether(src=victim_mac, dst=target_mac) / IP(src=my_ip, dst=target_ip) / ICMP(id=0x5152) / b"spoofed-mac",
            Ether(src=me, dst="ff:ff:ff:ff:ff:ff") / ARP(op=2, hwsrc=me, psrc=victim_ip, hwdst="ff:ff:ff:ff:ff:ff", pdst=victim_ip),
            Ether(src=me, dst=target_mac) / ARP(op=2, hwsrc=me, psrc=victim_ip, hwdst=target_mac, pdst=target_ip),
            Ether(src=me, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=me, psrc=victim_ip, pdst=router_ip),
        ]
        sendp(frames * 10, iface="eth0", inter=0.01, verbose=0)
        """

    /// argv: source MAC, source IP, how many, seconds between: UDP to 10.0.1.11 (vm1).
    static let talk = """
        import sys, time
        from scapy.all import Ether, IP, UDP, Raw, sendp
        mac, address, count, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        frame = Ether(src=mac, dst="02:00:0a:00:01:0b") / IP(src=address, dst="10.0.1.11") / UDP(sport=4000, dport=9) / Raw(b"hello")
        for _ in range(count):
            sendp(frame, iface="eth0", verbose=0)
            time.sleep(gap)
        """

    /// argv: how many frames, the destination MAC. Random unicast source MACs.
    static let macFlood = """
        import random, sys
        from scapy.all import Ether, Raw, sendp
        count, destination = int(sys.argv[1]), sys.argv[2]
        def mac():
            first = (random.randrange(256) & 0xFC) | 0x02
            return ":".join("%02x" % b for b in [first] + [random.randrange(256) for _ in range(5)])
        frames = [Ether(src=mac(), dst=destination, type=0x88B5) / Raw(b"x" * 46) for _ in range(count)]
        sendp(frames, iface="eth0", verbose=0)
        """
}
