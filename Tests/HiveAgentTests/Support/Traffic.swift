import Foundation
import HiveSandbox
import HiveTestSupport

/// A TCP transfer between two VMs with Python's standard library: the
/// server hashes what it receives and answers with the digest.
enum TCPTransfer {
    static let server = HashingTransfer.server(port: 5001)
    static let client = HashingTransfer.client(port: 5001)

    /// Returns the client's and the server's digests.
    static func run(_ lab: OverlayLab, server: String, serverAddress: String, client: String, bytes: Int) async throws -> (sent: String, received: String) {
        try await blocking { try runBlocking(lab, server: server, serverAddress: serverAddress, client: client, bytes: bytes) }
    }

    private static func runBlocking(_ lab: OverlayLab, server: String, serverAddress: String, client: String, bytes: Int) throws -> (sent: String, received: String) {
        let pipe = Pipe()
        let listener = try NetworkNamespace.start(lab.namespace(server), ["python3", "-c", Self.server], standardOutput: pipe.fileHandleForWriting)
        defer { if listener.isRunning { listener.terminate() } }
        let sent = try NetworkNamespace.run(lab.namespace(client), ["python3", "-c", Self.client, serverAddress, "\(bytes)"], timeout: .seconds(60))
        listener.waitUntilExit()
        try pipe.fileHandleForWriting.close()
        let received = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (sent.trimmingCharacters(in: .whitespacesAndNewlines), received.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// tshark on the underlay bridge, decoding Geneve.
final class TunnelCapture: @unchecked Sendable {
    struct Packet: CustomStringConvertible {
        var source: String
        var destination: String
        var vni: UInt32
        var innerProtocol: String
        /// The inner UDP datagram's destination port, if it carries one.
        var innerUDPPort: Int?
        var description: String { "\(source)->\(destination) vni \(vni) \(innerProtocol)" }
    }

    private let process: Process
    private let output = Pipe()
    private let errors = Pipe()

    /// Captures for `seconds` (the VMs' own IPv6 and ARP chatter comes too).
    init(lab: OverlayLab, seconds: Int) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark") else {
            throw LabError("tshark is missing: run scripts/install-test-deps.sh (it installs Debian's tshark)")
        }
        process = try NetworkNamespace.start(
            lab.network.underlayNamespace,
            ["tshark", "-l", "-n", "-i", lab.network.underlayBridge, "-f", "udp port 6081", "-a", "duration:\(seconds)",
             "-d", "udp.port==6081,geneve", "-T", "fields", "-E", "separator=|",
             "-e", "ip.src", "-e", "ip.dst", "-e", "geneve.vni", "-e", "_ws.col.Protocol", "-e", "udp.dstport"],
            standardOutput: output.fileHandleForWriting, standardError: errors.fileHandleForWriting)
        // Traffic sent before tshark says it is capturing would be missed.
        let deadline = Date().addingTimeInterval(30)
        var said = ""
        while Date() < deadline, process.isRunning, !said.contains("Capturing on") {
            let data = errors.fileHandleForReading.availableData
            said += String(decoding: data, as: UTF8.self)
        }
        guard said.contains("Capturing on") else { throw LabError("tshark did not start capturing: \(said)") }
        // dumpcap says so a moment before its filter is live on a busy machine.
        Thread.sleep(forTimeInterval: 1)
    }

    func finish() throws -> [Packet] {
        process.waitUntilExit()
        try output.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 4 else { return nil }
            // The outer and inner IP headers both fill ip.src: the first is the outer one.
            let source = fields[0].split(separator: ",").first.map(String.init) ?? ""
            let destination = fields[1].split(separator: ",").first.map(String.init) ?? ""
            let vniText = fields[2]
            let vni = vniText.hasPrefix("0x") ? UInt32(vniText.dropFirst(2), radix: 16) : UInt32(vniText)
            guard let vni else { return nil }
            // The outer UDP header (6081) comes first, an inner one after it.
            let udpPorts = fields.count > 4 ? fields[4].split(separator: ",").dropFirst() : []
            return Packet(source: source, destination: destination, vni: vni, innerProtocol: fields[3], innerUDPPort: udpPorts.first.flatMap { Int($0) })
        }
    }
}

/// Short TCP connections, each "hello" then "ok" then closed: what flow
/// setup costs per connection (upcalls counted around a run of them).
enum ShortConnections {
    /// Serves `python3 -c server PORT`: accepts, reads, answers "ok", closes.
    static let server = """
        import socket, sys
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64); s.settimeout(60)
        print("listening", flush=True)
        while True:
            c, _ = s.accept(); c.settimeout(10); c.recv(16); c.sendall(b"ok"); c.close()
        """

    /// `python3 -c client ADDRESS PORT COUNT`: COUNT connections one after
    /// the other (retrying the first for 15 s while the path comes up); prints "done".
    static let client = """
        import socket, sys, time
        deadline = time.time() + 15
        for n in range(int(sys.argv[3])):
            while True:
                try:
                    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); break
                except OSError:
                    if time.time() > deadline: raise
                    time.sleep(0.2)
            c.sendall(b"hello"); assert c.recv(2) == b"ok"; c.close()
        print("done", flush=True)
        """
}
