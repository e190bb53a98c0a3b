import Foundation
import Testing

/// `hive trace` as a user runs it: the built binary on the demo topology.
@Suite("hive trace")
struct TraceCommandTests {
    struct Run {
        var status: Int32
        var output: String
        var error: String
    }

    func hive(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = try hiveExecutable()
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(
            status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
            error: String(decoding: errorData, as: UTF8.self))
    }

    func withDemo(_ body: (String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hive-trace-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let demo = try hive(["topology", "demo", "--data-dir", directory])
        #expect(demo.status == 0, "\(demo.error)")
        try body(directory)
    }

    @Test func aDroppedPacketShowsTheRuleThatDroppedIt() throws {
        try withDemo { directory in
            let run = try hive(["trace", "--data-dir", directory, "--in-port", "vm-blue", "--dst-ip", "10.0.2.150",
                                "--protocol", "tcp", "--dst-port", "22"])
            #expect(run.status == 0, "\(run.error)")
            let text = run.output
            // The path: blue, the router, green; the firewall on vm-green drops SSH.
            #expect(text.contains("port blue/vm-blue: in"), "\(text)")
            #expect(text.contains("bridge blue"))
            #expect(text.contains("router edge"))
            #expect(text.contains("route to 10.0.2.150: 10.0.2.0/24 dev edge/to-green"), "\(text)")
            #expect(text.contains("bridge green"))
            #expect(text.contains("chain web-in (port outbound of green/vm-green)"))
            #expect(text.contains("chain web-in: DROP by rule web-in#4"), "\(text)")
            #expect(text.contains("Result: DROP: flooded on bridge green, but no port is left"), "\(text)")
            #expect(text.contains("Not flooded to: green/vm-green: dropped by rule web-in#4 in chain web-in"), "\(text)")
            #expect(text.contains("Note: router edge has no ARP entry for 10.0.2.150"), "\(text)")
            #expect(text.contains("destination MAC"), "the default MAC is explained")
        }
    }

    @Test func anAllowedPacketReachesThePortAndJSONSaysSo() throws {
        try withDemo { directory in
            let run = try hive(["trace", "--data-dir", directory, "--in-port", "vm-blue", "--dst-ip", "10.0.2.150",
                                "--protocol", "tcp", "--dst-port", "80", "--json"])
            #expect(run.status == 0, "\(run.error)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any], "\(run.output)")
            #expect(json["decision"] as? String == "flood")
            let ports = (json["outputPorts"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
            #expect(ports == ["green/vm-green"])
            let steps = try #require(json["steps"] as? [[String: Any]])
            #expect(steps.contains { $0["kind"] as? String == "rule" && ($0["text"] as? String)?.contains("web-in#2") == true })
            #expect((json["actions"] as? [String])?.contains("dec_ttl") == true)
            #expect((json["fieldsRead"] as? [String])?.contains("tp_dst") == true)
        }
    }

    @Test func securityGroupsShowTheRuleThatAllowedAndTheDenial() throws {
        try withDemo { directory in
            // vm-db (in group db) takes PostgreSQL from members of app (vm-blue), nothing else.
            let allowed = try hive(["trace", "--data-dir", directory, "--in-port", "vm-blue", "--dst-ip", "10.0.2.100",
                                    "--protocol", "tcp", "--dst-port", "5432"])
            #expect(allowed.status == 0, "\(allowed.error)")
            #expect(allowed.output.contains("security groups of green/vm-db (ingress): allowed by rule db: ingress IPv4 proto 6 port 5432 from group app"), "\(allowed.output)")
            #expect(allowed.output.contains("Result: OUTPUT to port green/vm-db"), "\(allowed.output)")
            #expect(allowed.output.contains("Note: assuming connection state 'new'"), "\(allowed.output)")
            let denied = try hive(["trace", "--data-dir", directory, "--in-port", "vm-blue", "--dst-ip", "10.0.2.100",
                                   "--protocol", "tcp", "--dst-port", "22"])
            #expect(denied.output.contains("no security group rule of green/vm-db allows it (ingress)"), "\(denied.output)")
            // A reply passes without a rule.
            let reply = try hive(["trace", "--data-dir", directory, "--in-port", "vm-blue", "--dst-ip", "10.0.2.100",
                                  "--protocol", "tcp", "--dst-port", "22", "--tcp-flags", "ack", "--ct-state", "reply"])
            #expect(reply.output.contains("allowed by connection state"), "\(reply.output)")
            #expect(reply.output.contains("Result: OUTPUT to port green/vm-db"), "\(reply.output)")
        }
    }

    @Test func thePortsOwnAddressesAreTheDefaultAndAnotherIsDroppedByPortSecurity() throws {
        try withDemo { directory in
            let own = try hive(["trace", "--data-dir", directory, "--in-port", "vm-blue", "--dst-ip", "10.0.1.1", "--summary"])
            #expect(own.status == 0, "\(own.error)")
            #expect(own.output.contains("source IP 10.0.1.100 (the port's fixed IP"), "\(own.output)")
            #expect(own.output.contains("Result: CONSUMED"), "\(own.output)")
            let spoofed = try hive(["trace", "--data-dir", directory, "--in-port", "vm-blue", "--src-ip", "10.0.1.99",
                                    "--dst-ip", "10.0.1.1", "--summary"])
            #expect(spoofed.status == 0, "\(spoofed.error)")
            #expect(spoofed.output.contains("Result: DROP: port security of blue/vm-blue: spoofed ip"), "\(spoofed.output)")
        }
    }

    @Test func pingingTheGatewayIsAnswered() throws {
        try withDemo { directory in
            let run = try hive(["trace", "--data-dir", directory, "--in-port", "blue/vm-blue", "--dst-ip", "10.0.1.1", "--summary"])
            #expect(run.status == 0, "\(run.error)")
            #expect(run.output.contains("Result: CONSUMED"), "\(run.output)")
            #expect(run.output.contains("Generated: ICMP echo reply out of port edge/to-blue"), "\(run.output)")

            let arp = try hive(["trace", "--data-dir", directory, "--in-port", "vm-blue", "--dst-ip", "10.0.1.1", "--protocol", "arp"])
            #expect(arp.output.contains("ARP suppression: 10.0.1.1 is at"), "\(arp.output)")
        }
    }

    @Test func badPortsAreExplained() throws {
        try withDemo { directory in
            let missing = try hive(["trace", "--data-dir", directory, "--in-port", "vm-red", "--dst-ip", "10.0.2.1"])
            #expect(missing.status != 0)
            #expect(missing.error.contains("--in-port 'vm-red' names no port") && missing.error.contains("blue/vm-blue"), "\(missing.error)")

            let ambiguous = try hive(["trace", "--data-dir", directory, "--in-port", "uplink", "--dst-ip", "10.0.2.1"])
            #expect(ambiguous.status != 0)
            #expect(ambiguous.error.contains("names 2 ports") && ambiguous.error.contains("blue/uplink"), "\(ambiguous.error)")

            let badIP = try hive(["trace", "--data-dir", directory, "--in-port", "vm-blue", "--dst-ip", "10.0.2"])
            #expect(badIP.status != 0)
            #expect(badIP.error.contains("--dst-ip '10.0.2' is not an IPv4 address"), "\(badIP.error)")
        }
    }
}

func hiveExecutable() throws -> URL {
    let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [products, products.deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent("hive")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    throw HiveBinaryMissing(searched: products.path)
}

struct HiveBinaryMissing: Error, CustomStringConvertible {
    var searched: String
    var description: String { "the hive executable was not found in \(searched); run the tests with `swift test`, which builds it" }
}
