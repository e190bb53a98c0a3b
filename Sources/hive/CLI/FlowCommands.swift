import ArgumentParser
import Foundation
import HiveClient
import HiveModel
import struct HiveModel.Host

/// `hive flows --host H [--port P] [--summary]`: what a host's agent has
/// installed in its datapath, asked of the agent through the API.
struct FlowsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flows",
        abstract: "A host's installed flows, or their summary (admin; asked of the host's agent).",
        discussion: """
            Each flow shows its match (in the words of `hive trace`'s flags, so it can be \
            traced again), its actions, packets and bytes, its age and idle time, and its \
            tags: what its simulation read, whose change removes it. --port keeps the flows \
            that enter by the port or leave by it. --summary shows the flow count, hits, \
            upcalls, the hit rate, upcalls per second and drops by reason.

            The API asks the host's agent at the URL it recorded (hive agent \
            --metrics-listen ... --control-token-file ...); the API needs the same token \
            (hive api --agent-token-file).

            Examples:
              hive flows --host compute-1
              hive flows --host compute-1 --port web/vm1
              hive flows --host compute-1 --summary
              hive flows --host compute-1 --limit 20 --json
            """)

    @Option(help: ArgumentHelp("The host (name or id).", valueName: "host"))
    var host: String
    @Option(help: ArgumentHelp("Only the flows entering or leaving by this port (name, DEVICE/NAME or id).", valueName: "port"))
    var port: String?
    @Flag(help: "Counts, hit rate, upcall rate and drops instead of the flows.")
    var summary = false
    @Option(help: ArgumentHelp("Show at most this many flows, the busiest (default 1000).", valueName: "count"))
    var limit: Int?
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ClientOptions

    func validate() throws {
        if summary && (port != nil || limit != nil) { throw ValidationError("--summary is for the whole host; leave out --port and --limit") }
        if let limit, !(1...AgentFlows.maximumLimit).contains(limit) {
            throw ValidationError("--limit \(limit): expected a number from 1 to \(AgentFlows.maximumLimit)")
        }
    }

    func run() async throws {
        let client = try connection.client()
        let resolver = Resolver(client)
        let host = try await resolver.id(self.host, Host.self)
        if summary {
            let reported = try await client.flowSummary(host: host)
            print(output.json ? JSONText.pretty(reported.json) : FlowText.summary(reported.value))
            return
        }
        let port = try await self.port.asyncMap { try await resolver.portID($0) }
        let reported = try await client.flows(host: host, port: port, limit: limit)
        print(output.json ? JSONText.pretty(reported.json) : FlowText.flows(reported.value))
    }
}

/// How flows and their summary read in a terminal.
enum FlowText {
    /// A heading, then one block per flow: match, actions, counters, tags.
    static func flows(_ flows: AgentFlows) -> String {
        let scope = flows.port.map { " through port \($0)" } ?? ""
        var count = flows.total == 1 ? "1 flow" : "\(flows.total) flows"
        if flows.flows.count < flows.total { count = "The busiest \(flows.flows.count) of \(count)" }
        var lines = ["\(count) on host \(flows.hostName)\(scope)" + (flows.flows.count < flows.total ? " (--limit to see more)" : "")]
        for flow in flows.flows {
            lines.append("")
            lines.append(flow.match.description)
            lines.append("  actions  \(flow.actions)")
            lines.append("  packets  \(flow.packets), \(flow.bytes) bytes; age \(seconds(flow.ageSeconds)), idle \(seconds(flow.idleSeconds)), "
                + "hard timeout \(seconds(flow.hardTimeoutSeconds))")
            lines.append("  tags     " + (flow.tags.isEmpty ? "-" : flow.tags.joined(separator: ", ")))
        }
        return lines.joined(separator: "\n")
    }

    static func summary(_ summary: AgentFlowSummary) -> String {
        var text = Table.details([
            ("host", "\(summary.hostName) (\(summary.hostId))"),
            ("flows", "\(summary.flows) of \(summary.flowCapacity)"),
            ("hits", "\(summary.hits)"),
            ("upcalls", "\(summary.upcalls)"),
            ("hit rate", String(format: "%.1f%%", summary.hitRate * 100)),
            ("upcalls/s", String(format: "%.1f", summary.upcallsPerSecond)
                + (summary.rateIntervalSeconds > 0 ? String(format: " (over the last %.0f s)", summary.rateIntervalSeconds) : "")),
            ("held", "\(summary.held)"),
            ("installed", "\(summary.installed)"),
            ("invalidated", "\(summary.invalidated)"),
            ("expired", "\(summary.expired)"),
            ("timeouts", "idle \(seconds(summary.idleTimeoutSeconds)), hard \(seconds(summary.hardTimeoutSeconds))"),
            ("datapath drops", drops(summary.drops)),
        ])
        text += "\n\nPort drops:\n"
        let rows = summary.ports.map { [$0.port, "\($0.portKey)", drops($0.drops)] }
        text += rows.isEmpty ? "  no ports bound" : Table(headers: ["PORT", "KEY", "DROPS"], rows: rows).rendered
            .split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
        return text
    }

    /// "spoofed_ip 3, policy 1" (largest first), or "none".
    static func drops(_ drops: [String: UInt64]) -> String {
        let nonzero = drops.filter { $0.value > 0 }.sorted { ($1.value, $0.key) < ($0.value, $1.key) }
        return nonzero.isEmpty ? "none" : nonzero.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// "2.5 s", "120 s".
    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(format: "%.0f s", value) : String(format: "%.1f s", value)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
