import ArgumentParser
import Foundation
import HiveClient
import HiveModel

/// `hive port status PORT`: where the port lives now and how it is doing,
/// the live part `hive port show` prints below the topology.
struct PortStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Where a port lives now: its host, interface, up or down, MACs, addresses and counters.",
        discussion: """
            The API reads the binding, the host's liveness and the MACs learned on the port from \
            the NSDB, and asks the host's agent whether the interface is open and for its counters.

            Examples:
              hive port status vm1
              hive port status web/vm1 --json
            """)

    @Argument(help: "The port's name or id.")
    var port: String
    @OptionGroup var scope: PortScope
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ClientOptions

    func run() async throws {
        let client = try connection.client()
        let id = try await Resolver(client).portID(port, bridge: scope.bridge, router: scope.router)
        let reported = try await client.portStatus(id)
        print(output.json ? JSONText.pretty(reported.json) : Table.details(PortStatusText.fields(reported.value)))
    }
}

/// How a port's status reads in a terminal.
enum PortStatusText {
    /// The "Status:" section of `hive port show`; a failure to get it is
    /// shown, not thrown, so the topology still prints.
    static func section(_ client: HiveClient, _ port: PortID) async -> (String, String) {
        do {
            return ("Status:", Table.details(fields(try await client.portStatus(port).value)))
        } catch {
            return ("Status:", "unavailable: \(error)")
        }
    }

    static func fields(_ status: PortStatus) -> [(String, String)] {
        var state = status.state.rawValue
        if let reason = status.reason { state += " (\(reason))" }
        var fields = [("state", state)]
        if let binding = status.binding {
            let name = binding.hostName ?? binding.hostId.description
            fields.append(("host", "\(name) (\(binding.hostAlive ? "alive" : "not alive"))"))
            fields.append(("interface", binding.interface))
        }
        var macs = status.mac.map { ["\($0) (fixed)"] } ?? []
        macs += status.learnedMACs.map { "\($0) (learned)" }
        fields.append(("MACs", macs.isEmpty ? "-" : macs.joined(separator: ", ")))
        fields.append(("addresses", status.addresses.isEmpty ? "-" : status.addresses.joined(separator: ", ")))
        if let counters = status.counters {
            fields.append(("received", "\(counters.receivedPackets) packets, \(counters.receivedBytes) bytes"))
            fields.append(("sent", "\(counters.sentPackets) packets, \(counters.sentBytes) bytes"))
            fields.append(("drops", FlowText.drops(counters.drops)))
            if counters.kernelDrops > 0 { fields.append(("kernel drops", "\(counters.kernelDrops)")) }
        }
        return fields
    }
}
