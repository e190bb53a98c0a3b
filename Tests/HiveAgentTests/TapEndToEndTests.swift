import Foundation
import HiveModel
import struct HiveModel.Port
import HivePacket
import HiveSandbox
import HiveTestSupport
import Testing

/// A VM on a tap device, as qemu/KVM attaches one: the test program holds
/// the tap's file descriptor (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, offloads
/// accepted with TUNSETOFFLOAD) and is the VM; the agent binds the tap's
/// interface like a veth. The program speaks ARP, ICMP and TCP to a
/// namespace VM on the other host, and hands Hive one 20,000-byte TCP
/// super-frame (GSO, partial checksum) that must reach that VM's stack as
/// valid TCP segments.
@Suite(.serialized) struct TapEndToEndTests {
    static let vms = [
        OverlayLab.VM(name: "vm2", host: 2, address: "10.0.1.12", gateway: "10.0.1.1", mac: "02:00:0a:00:01:0c"),
    ]

    @Test func aVMOnATapTalksARPICMPAndTCPWithSuperFramesToAVMOnAnotherHost() async throws {
        try await OverlayLab.run(vms: Self.vms) { lab in
            let blue = try await lab.client.create(Bridge(name: "blue")).object
            try await lab.plug("vm2", into: blue.id)
            let tapName = lab.prefix + "t1"
            let tapPort = try await lab.client.create(Port(
                bridge: blue.id, name: "tap1", mac: EthernetAddress(parsing: "02:00:0a:00:01:15")!, fixedIPs: [IPv4.Address(10, 0, 1, 21)])).object
            _ = try await lab.client.create(Binding(hostId: try await lab.hostID(1), portId: tapPort.id, interfaceName: tapName))

            let server = Pipe()
            let listener = try await blocking {
                try NetworkNamespace.start(lab.namespace("vm2"), ["python3", "-c", Self.server], standardOutput: server.fileHandleForWriting)
            }
            defer { if listener.isRunning { listener.terminate() } }
            // The tap exists while the program holds it; the agent binds it when it appears.
            let output = try await blocking {
                try NetworkNamespace.run(
                    lab.prefix + "h1", ["python3", "-c", TapVM.program, tapName, "02:00:0a:00:01:15", "10.0.1.21", "10.0.1.12", "5003"],
                    timeout: .seconds(90))
            }
            let received = try await blocking { () throws -> String in
                listener.waitUntilExit()
                try server.fileHandleForWriting.close()
                return String(decoding: server.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            }
            print("tap VM: \(output)")
            #expect(output.contains("arp 02:00:0a:00:01:0c"), "ARP answered with vm2's MAC")
            #expect(output.contains("icmp ok"), "vm2 answered the echo request")
            #expect(output.contains("tcp acked 20000"), "vm2's stack acknowledged every byte of the super-frame")
            let sent = output.split(separator: "\n").first { $0.hasPrefix("sha256 ") }.map { String($0.dropFirst(7)) }
            #expect(sent != nil && sent == received.trimmingCharacters(in: .whitespacesAndNewlines), "vm2 received exactly what the tap VM sent")
            // Counters are published every 50 ms or so: wait for them, not for a time.
            let counted = await eventually(within: 5) {
                let statistics = lab.agents[0].statistics
                return statistics.superFramesReceived >= 1 && statistics.superFramesSegmented >= 1
            }
            #expect(counted, "the tap's super-frame reached h1's datapath whole and was cut for the tunnel: \(lab.agents[0].statistics)")
        }
    }

    /// Accepts one connection on port 5003 and prints the sha256 of what it received.
    static let server = HashingTransfer.server(port: 5003, acceptTimeout: 60)
}

/// The VM behind the tap: raw frames with a virtio-net header before each.
enum TapVM {
    static let program = #"""
        import fcntl, hashlib, os, select, struct, subprocess, sys, time
        TUNSETIFF, TUNSETOFFLOAD, TUNSETVNETHDRSZ = 0x400454CA, 0x400454D0, 0x400454D8
        IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000
        TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 = 1, 2, 4
        name, mac_text, ip_text, peer_text, port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
        mac = bytes.fromhex(mac_text.replace(":", ""))
        ip = bytes(int(x) for x in ip_text.split(".")); peer = bytes(int(x) for x in peer_text.split("."))
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", 10))
        fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
        for args in (["addrgenmode", "none"], ["mtu", "1400", "up"]):
            subprocess.run(["ip", "link", "set", "dev", name] + args, check=True)

        def csum(data):
            if len(data) % 2: data += b"\0"
            s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
            while s >> 16: s = (s & 0xFFFF) + (s >> 16)
            return s
        def ipv4(proto, payload, ident=1):
            h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0, ip, peer)
            return h[:10] + struct.pack("!H", ~csum(h) & 0xFFFF) + h[12:] + payload
        NONE = bytes(10)
        def send(frame, vnet=NONE): os.write(fd, vnet + frame)
        peer_mac = None
        def frames(until, want):
            # Reads until want(frame) returns something; answers ARP for our address meanwhile.
            while time.time() < until:
                r, _, _ = select.select([fd], [], [], 0.2)
                if not r: continue
                frame = os.read(fd, 70000)[10:]
                if frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x01" and frame[38:42] == ip:
                    send(frame[6:12] + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac + ip + frame[22:28] + frame[28:32])
                    continue
                got = want(frame)
                if got is not None: return got
            return None
        def eth(payload, kind=b"\x08\x00"): return peer_mac + mac + kind + payload

        deadline = time.time() + 40
        while peer_mac is None and time.time() < deadline:  # the agent binds the tap when it appears
            send(b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + bytes(6) + peer)
            peer_mac = frames(time.time() + 0.5, lambda f: f[22:28] if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02" and f[28:32] == peer else None)
        if peer_mac is None: sys.exit("no ARP answer for " + peer_text)
        print("arp " + ":".join("%02x" % b for b in peer_mac), flush=True)

        icmp = b"\x08\x00\x00\x00\x12\x34\x00\x01" + b"tap-vm" * 10
        icmp = icmp[:2] + struct.pack("!H", ~csum(icmp) & 0xFFFF) + icmp[4:]
        reply = None
        for _ in range(20):
            send(eth(ipv4(1, icmp)))
            reply = frames(time.time() + 0.5, lambda f: True if f[23] == 1 and f[34] == 0 and f[26:30] == peer else None)
            if reply: break
        if not reply: sys.exit("no echo reply")
        print("icmp ok", flush=True)

        def tcp(seq, ack, flags, payload=b"", options=b"", partial=False):
            off = (20 + len(options)) // 4
            h = struct.pack("!HHIIBBHHH", 40000, port, seq, ack, off << 4, flags, 65535, 0, 0) + options
            pseudo = csum(ip + peer + struct.pack("!HH", 6, len(h) + len(payload)))
            if partial:  # CHECKSUM_PARTIAL: the field holds the pseudo-header sum only
                c = pseudo
            else:
                c = ~csum(ip + peer + struct.pack("!HH", 6, len(h) + len(payload)) + h + payload) & 0xFFFF
            return h[:16] + struct.pack("!H", c) + h[18:] + payload
        def segment_from_peer(f):
            if f[12:14] != b"\x08\x00" or f[23] != 6 or f[26:30] != peer: return None
            t = f[14 + (f[14] & 15) * 4:]
            return struct.unpack("!IIB", t[4:12] + t[13:14])
        isn = 1000
        synack = None
        for _ in range(20):
            send(eth(ipv4(6, tcp(isn, 0, 0x02, options=struct.pack("!BBH", 2, 4, 1348)))))
            synack = frames(time.time() + 0.5, lambda f: (lambda s: s if s and s[2] & 0x12 == 0x12 else None)(segment_from_peer(f)))
            if synack: break
        if not synack: sys.exit("no SYN-ACK")
        peer_seq = synack[0] + 1
        send(eth(ipv4(6, tcp(isn + 1, peer_seq, 0x10))))

        # One super-frame: 20,000 bytes that the kernel would cut into 1,348-byte segments.
        data = os.urandom(20000)
        vnet = struct.pack("<BBHHHH", 1, 1, 14 + 20 + 20, 1348, 14 + 20, 16)  # NEEDS_CSUM, GSO_TCPV4
        send(eth(ipv4(6, tcp(isn + 1, peer_seq, 0x18, data, partial=True), ident=2)), vnet)
        print("sha256 " + hashlib.sha256(data).hexdigest(), flush=True)
        acked = frames(time.time() + 15, lambda f: (lambda s: s[1] - isn - 1 if s and s[2] & 0x10 and s[1] == isn + 1 + len(data) else None)(segment_from_peer(f)))
        if acked is None: sys.exit("the data was not acknowledged")
        print("tcp acked %d" % acked, flush=True)
        fin = isn + 1 + len(data)
        for _ in range(20):
            send(eth(ipv4(6, tcp(fin, peer_seq, 0x11), ident=3)))
            if frames(time.time() + 0.5, lambda f: True if (lambda s: s and s[1] == fin + 1)(segment_from_peer(f)) else None): break
        """#
}
