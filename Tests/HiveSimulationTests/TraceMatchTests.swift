import HiveModel
import HivePacket
import HiveSimulation
import Testing

/// The live-trace filter: parsing, its canonical text, and which flow keys pass.
@Suite struct TraceMatchTests {
    func key(_ frame: [UInt8]) throws -> FlowKey { try FlowKey(parsing: frame, inPort: 1) }

    var tcp: [UInt8] {
        PacketDescription(
            sourceMAC: EthernetAddress(parsing: "02:00:00:00:00:05")!, destinationMAC: EthernetAddress(parsing: "02:00:00:00:00:01")!,
            sourceIP: IPv4.Address(parsing: "10.0.1.5")!, destinationIP: IPv4.Address(parsing: "10.0.2.7")!,
            protocol: .tcp, sourcePort: 40000, destinationPort: 80).frame
    }

    @Test func filtersReadBackInTheirCanonicalForm() throws {
        #expect(try TraceMatch(parsing: "").text == "")
        #expect(try TraceMatch(parsing: "TCP and dst port 80").text == "tcp and dst port 80")
        #expect(try TraceMatch(parsing: "ip && icmp and host 10.0.2.7").text == "icmp and host 10.0.2.7")
        #expect(try TraceMatch(parsing: "src net 10.0.1.0/24 and port 53 and udp").text == "udp and src net 10.0.1.0/24 and port 53")
    }

    @Test func badFiltersSayWhichWordAndWhatWasExpected() {
        func problem(_ text: String) -> String {
            do {
                _ = try TraceMatch(parsing: text)
                return ""
            } catch {
                return error.description
            }
        }
        #expect(problem("tcp or udp").contains("'or' follows a complete term"))
        #expect(problem("tcp and").contains("ends with 'and'"))
        #expect(problem("dst port http").contains("'http' is not a port number"))
        #expect(problem("host 10.0.2").contains("'10.0.2' is not an IPv4 address"))
        #expect(problem("tcp and udp").contains("names two protocols"))
        #expect(problem("icmp and port 7").contains("only TCP and UDP"))
        #expect(problem("vlan 10").contains("'vlan' is not understood"))
    }

    @Test func keysPassWhenEveryTermHolds() throws {
        let packet = try key(tcp)
        for (filter, expected) in [
            ("", true), ("tcp", true), ("ip", true), ("udp", false), ("icmp", false), ("arp", false),
            ("dst port 80", true), ("src port 80", false), ("port 40000", true), ("port 22", false),
            ("src host 10.0.1.5 and dst host 10.0.2.7", true), ("dst host 10.0.1.5", false), ("host 10.0.1.5", true),
            ("net 10.0.2.0/24 and tcp and dst port 80", true), ("src net 10.0.2.0/24", false),
        ] {
            #expect(try TraceMatch(parsing: filter).matches(packet) == expected, "\(filter)")
        }
    }
}
