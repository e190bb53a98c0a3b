import ArgumentParser
import Foundation
import HiveAPI
import HiveClient
import HiveModel
import HiveStore

/// `hive trace`: what the network does with a packet, step by step.
///
/// Without `--live` it simulates a packet the flags describe, as the
/// ingress host's agent would, on the NSDB's live state (topology, learned
/// MAC and ARP tables, bindings, host liveness), through the API
/// (`POST /v1/traces`) or straight from the NSDB. With `--live` it arms a
/// trace request on a port and prints the real packets the agents trace.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Show the path a packet takes through the virtual network, and why it is dropped.",
        discussion: """
            Simulated: describe the packet by its ingress port and headers; unset MACs and the source IP follow \
            from the topology and the learned tables, and every assumption is printed.
              hive trace --in-port blue/vm1 --dst-ip 10.0.2.12 --protocol tcp --dst-port 80

            Live: trace real packets entering the network by a port, on whichever host they enter, as they happen.
              hive trace --live --port blue/vm1 --match 'tcp and dst port 80' --count 5 --timeout 30s
            --match takes ip, icmp, tcp, udp, arp, [src|dst] host A, [src|dst] net P, [src|dst] port N, joined by \
            'and'; without it, --protocol, --src-ip, --dst-ip, --src-port and --dst-port build the filter.

            The API is used when a token is given (--token or $HIVE_TOKEN, with --endpoint or $HIVE_ENDPOINT), \
            for example from a running `hive sandbox`; a simulated trace can also read the NSDB itself \
            (--data-dir or --etcd), which must not be held by another process.
            """)

    @OptionGroup var store: StoreOptions

    @OptionGroup var api: ClientOptions

    @Option(name: [.customLong("in-port"), .customLong("port")], help: "The ingress port: its name, device/name, or id.")
    var inPort: String

    @Flag(help: "Trace real packets entering by the port, on the agents, as they happen (through the API).")
    var live = false

    @Option(help: "Live: which packets to trace, e.g. 'tcp and dst port 80' (default: what the header flags give, else all).")
    var match: String?

    @Option(help: "Live: stop after this many packets (1 to 100).")
    var count = 10

    @Option(help: "Live: stop after this long (e.g. 30s, 2m).")
    var timeout = "30s"

    @Option(name: .customLong("src-mac"), help: "Source MAC (default: the port's MAC, or one learned on it; else derived from the source IP).")
    var sourceMAC: String?

    @Option(name: .customLong("dst-mac"), help: "Destination MAC (default: the gateway router port's MAC for an off-subnet destination, broadcast for ARP).")
    var destinationMAC: String?

    @Option(name: .customLong("src-ip"), help: "Source IPv4 address (default: the port's first fixed IP; else the first address of the bridge's DHCP pool, or of the port's subnet).")
    var sourceIP: String?

    @Option(name: .customLong("dst-ip"), help: "Destination IPv4 address (ARP: the address asked for). Required without --live.")
    var destinationIP: String?

    @Option(name: .customLong("protocol"), help: "icmp (default), tcp, udp or arp.")
    var transport: String?

    @Option(name: .customLong("src-port"), help: "TCP/UDP source port (default 40000).")
    var sourcePort: UInt16?

    @Option(name: .customLong("dst-port"), help: "TCP/UDP destination port (default 80).")
    var destinationPort: UInt16?

    @Option(name: .customLong("icmp-type"), help: "ICMP type (default 8, echo request).")
    var icmpType: UInt8?

    @Option(name: .customLong("icmp-code"), help: "ICMP code.")
    var icmpCode: UInt8?

    @Option(help: "IPv4 TTL (default 64).")
    var ttl: UInt8?

    @Option(name: .customLong("tcp-flags"), help: "TCP flags, comma-separated (syn, ack, fin, rst, psh, urg; default syn).")
    var tcpFlags: String?

    @Option(name: .customLong("ct-state"), help: "The connection-tracking state to assume wherever connections are tracked: new (default), established, related, reply or invalid. Agents keep their connection tables; --live shows them at work.")
    var connectionState: String?

    @Flag(help: "Only the decisive steps (ports, devices, matching rules, decision).")
    var summary = false

    @Flag(name: .customLong("no-assume-arp"), help: "Stop where a router waits on ARP instead of assuming the answer.")
    var noAssumeARP = false

    @Flag(help: "Print JSON for scripts (live: one document per line).")
    var json = false

    /// Through the API when a token is at hand and no store was named.
    var readsThroughAPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        if store.dataDirectory != nil || store.etcd != nil { return false }
        return api.token != nil || !(environment["HIVE_TOKEN"] ?? "").isEmpty
    }

    func validate() throws {
        if live {
            guard store.dataDirectory == nil, store.etcd == nil else {
                throw ValidationError("--live asks the agents through the API: give --token (or $HIVE_TOKEN), not --data-dir or --etcd")
            }
            guard (1...100).contains(count) else { throw ValidationError("--count \(count) is out of range (expected 1 to 100)") }
            _ = try Self.seconds(timeout)
        } else if destinationIP == nil {
            throw ValidationError("--dst-ip is required (or trace real packets with --live)")
        }
    }

    func run() async throws {
        if live {
            try await runLive()
            return
        }
        let spec = TraceSpec(
            inPort: inPort, dstIp: destinationIP ?? "", protocol: transport, srcIp: sourceIP, srcMac: sourceMAC, dstMac: destinationMAC,
            srcPort: sourcePort, dstPort: destinationPort, icmpType: icmpType, icmpCode: icmpCode, ttl: ttl, tcpFlags: tcpFlags,
            ctState: connectionState, assumeArp: !noAssumeARP)
        let report: TraceReport
        if readsThroughAPI {
            report = try await api.client().trace(spec)
        } else {
            do {
                report = try await withStore(store) { store in
                    try await PacketTracer(repository: TopologyRepository(store: store)).trace(spec)
                }
            } catch let error as TraceSpecError {
                throw ValidationError("\(Self.flag(error.field)) '\(error.value)' \(error.problem)")
            }
        }
        if json {
            print(try Self.jsonText(report, pretty: true))
        } else {
            for line in TraceReportText.lines(report, summary: summary) { print(line) }
        }
    }

    /// The filter `--match` gives, else the one the header flags describe.
    var liveMatch: String {
        if let match { return match }
        var terms: [String] = []
        if let transport { terms.append(transport.lowercased()) }
        if let sourceIP { terms.append("src host \(sourceIP)") }
        if let destinationIP { terms.append("dst host \(destinationIP)") }
        if let sourcePort { terms.append("src port \(sourcePort)") }
        if let destinationPort { terms.append("dst port \(destinationPort)") }
        return terms.joined(separator: " and ")
    }

    private func runLive() async throws {
        let client = try api.client()
        let port = try await Resolver(client).port(inPort)
        let name = port.object.name ?? port.object.id.description
        // Ctrl-C or SIGTERM ends the request at once rather than when its lease lapses.
        let interrupted = Self.interruptions()
        let armed = try await client.armTrace(port: port.object.id, match: liveMatch, count: count)
        let deadline = ContinuousClock.now + .seconds(try Self.seconds(timeout))
        if !json {
            let filter = armed.match.isEmpty ? "every packet" : "packets matching '\(armed.match)'"
            print("Tracing \(filter) entering by port \(name), up to \(armed.count) per host, for \(timeout) (Ctrl-C stops)")
            // Armed: a script waiting for this line may start its traffic.
            fflush(nil)
        }
        let (count, json, summary) = (count, json, summary)
        let outcome: Result<Int, any Error>? = await withTaskGroup(of: Result<Int, any Error>?.self) { group in
            group.addTask {
                do {
                    return .success(try await Self.follow(armed, client: client, until: deadline, count: count, json: json, summary: summary))
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                for await _ in interrupted { return nil }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        try? await client.disarmTrace(armed.id)
        switch outcome {
        case nil:
            throw ExitCode(130)
        case .failure(let error)?:
            throw error
        case .success(let printed)?:
            if !json, printed == 0 { print("No matching packet entered by \(name) in \(timeout).") }
        }
    }

    /// Prints each traced packet as it arrives; returns how many.
    static func follow(
        _ armed: LiveTraceInfo, client: HiveClient, until deadline: ContinuousClock.Instant, count: Int, json: Bool, summary: Bool
    ) async throws -> Int {
        var after = 0
        var printed = 0
        while printed < count, ContinuousClock.now < deadline, !Task.isCancelled {
            let remaining = deadline - ContinuousClock.now
            let wait = max(1, min(5, Int(remaining.components.seconds)))
            let page = try await client.traceResults(armed.id, after: after, wait: wait)
            after = page.next
            for result in page.results where printed < count {
                printed += 1
                if json {
                    print(try jsonText(result.report, pretty: false))
                } else {
                    print("")
                    for line in TraceReportText.lines(result.report, summary: summary) { print(line) }
                }
                fflush(nil)
            }
        }
        return printed
    }

    /// SIGINT and SIGTERM, as a stream, instead of ending the process.
    static func interruptions() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            sources.append(source)
        }
        let kept = SignalSources(sources)
        continuation.onTermination = { _ in kept.cancel() }
        return stream
    }

    static func jsonText(_ report: TraceReport, pretty: Bool) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }

    /// "30s", "2m", "500ms" or a number of seconds.
    static func seconds(_ text: String) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let (digits, scale): (Substring, Int) =
            trimmed.hasSuffix("m") ? (trimmed.dropLast(), 60) : trimmed.hasSuffix("s") ? (trimmed.dropLast(), 1) : (Substring(trimmed), 1)
        guard let value = Int(digits), value > 0, value <= 3600 else {
            throw ValidationError("--timeout '\(text)' is not a duration (expected like 30s or 2m, at most 1 hour)")
        }
        return value * scale
    }

    /// The flag that sets a spec field, for error messages.
    static func flag(_ field: String) -> String {
        [
            "inPort": "--in-port", "dstIp": "--dst-ip", "protocol": "--protocol", "srcIp": "--src-ip", "srcMac": "--src-mac",
            "dstMac": "--dst-mac", "tcpFlags": "--tcp-flags", "ctState": "--ct-state",
        ][field] ?? field
    }
}

/// Keeps the signal sources alive while their stream is.
private final class SignalSources: @unchecked Sendable {
    let sources: [any DispatchSourceSignal]
    init(_ sources: [any DispatchSourceSignal]) { self.sources = sources }
    func cancel() { for source in sources { source.cancel() } }
}

/// A trace report as text, the same for simulated and live traces.
enum TraceReportText {
    static func lines(_ report: TraceReport, summary: Bool) -> [String] {
        var lines: [String] = []
        var header = "Packet: \(report.packet) entering port \(report.inPort.name)\(placement(report.inPort))"
        if report.mode == "live" {
            header = "[\(report.time ?? "?")] host \(report.host ?? "?"): " + header
        }
        lines.append(header)
        if let flow = report.flow {
            lines.append("Flow: cached, \(flow.packets) packets, \(flow.bytes) bytes, \(flow.ageSeconds) s old\(flow.agrees ? "" : " (differs from a fresh simulation)")")
        }
        for note in report.notes { lines.append("Note: \(note)") }
        lines.append("")
        for step in report.steps where !summary || step.summary {
            let depth = summary ? (step.depth > 1 ? 1 : 0) : max(0, step.depth - 1)
            lines.append("  " + String(repeating: "  ", count: depth) + step.text)
        }
        lines.append("")
        lines.append("Result: \(report.reason)")
        if report.decision == "output" {
            for port in report.outputPorts { lines.append("Egress: port \(port.name)\(placement(port))") }
        }
        if report.decision == "flood" {
            lines.append("Flooded to: " + report.outputPorts.map { $0.name + placement($0) }.joined(separator: ", "))
        }
        for exclusion in report.floodExclusions {
            lines.append("Not flooded to: \(exclusion.portName): \(exclusion.reason)")
        }
        if !report.actions.isEmpty { lines.append("Actions: \(report.actions.joined(separator: ", "))") }
        for packet in report.generated {
            lines.append("Generated: \(packet.kind) out of port \(packet.portName) (\(packet.bytes) bytes)")
        }
        for entry in report.learnMACs { lines.append("Learn: \(entry)") }
        lines.append("Fields read: \(report.fieldsRead.joined(separator: ","))")
        lines.append("Depends on \(report.tags.count) objects and table entries\(report.cacheable ? "" : "; not cached as a flow")")
        return lines
    }

    /// " (host h1, alive)", " (host h2, NOT ALIVE)", " (not bound to a host)".
    static func placement(_ port: TraceReport.PortRef) -> String {
        guard let host = port.host else { return port.id.isEmpty ? "" : " (not bound to a host)" }
        return " (host \(host), \(port.hostAlive == false ? "NOT ALIVE: its agent's lease lapsed" : "alive"))"
    }
}
