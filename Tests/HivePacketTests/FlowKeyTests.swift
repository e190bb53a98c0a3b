import HivePacket
import Testing

@Suite("Flow key")
struct FlowKeyTests {
    func key(_ frame: [UInt8], inPort: UInt32 = 7) throws -> FlowKey {
        try FlowKey(parsing: frame, inPort: inPort)
    }

    @Test func layoutIsFixedAndSmall() {
        #expect(MemoryLayout<FlowKey>.size == 90)
        #expect(MemoryLayout<FlowKey>.stride == 96)
        #expect(_isPOD(FlowKey.self), "a flow key must hold no references")
        // The hash reads the key's bytes: no padding may hide between the fields.
        let fields = 16 * 2 + 8 * 3 + 4 * 3 + 2 * 8 + 1 * 6
        #expect(MemoryLayout<FlowKey>.size == fields, "the fields fill the layout without holes")
    }

    @Test func equalKeysHashEquallyAndEveryFieldCounts() throws {
        let parsed = try key(Golden.arpRequest)
        let built = arpRequestKey()
        #expect(parsed == built && parsed.hashValue == built.hashValue)
        var changes: [(inout FlowKey) -> Void] = [
            { $0.inPort = 8 }, { $0.vlanID = 1 }, { $0.outerVLANID = 1 }, { $0.sourcePort = 1 }, { $0.destinationPort = 1 },
            { $0.tcpFlags = [.syn] }, { $0.icmpIdentifier = 1 }, { $0.typeOfService = 1 }, { $0.timeToLive = 1 },
            { $0.fragmentKind = .later }, { $0.icmpType = 1 }, { $0.icmpCode = 1 }, { $0.ipProtocol = .tcp },
        ]
        changes.append { $0.ipv6Destination = IPv6.Address(high: 0, low: 1) }
        for change in changes {
            var other = built
            change(&other)
            #expect(other != built && other.hashValue != built.hashValue)
        }
    }

    /// The key of `Golden.arpRequest` on port 7, field by field.
    func arpRequestKey() -> FlowKey {
        var expected = FlowKey(inPort: 7)
        expected.ethernetSource = mac("02:00:00:00:00:01")
        expected.ethernetDestination = .broadcast
        expected.etherType = .arp
        expected.arpOperation = .request
        expected.arpSenderMAC = mac("02:00:00:00:00:01")
        expected.ipv4Source = ip("10.0.0.1")
        expected.ipv4Destination = ip("10.0.0.2")
        return expected
    }

    @Test func arp() throws {
        let key = try key(Golden.arpRequest)
        let expected = arpRequestKey()
        #expect(key == expected)
        #expect(key.description == "in_port=7 02:00:00:00:00:01>ff:ff:ff:ff:ff:ff ARP request 10.0.0.1(02:00:00:00:00:01)>10.0.0.2")
    }

    @Test func icmpEcho() throws {
        let key = try key(Golden.icmpEchoRequest)
        var expected = FlowKey(inPort: 7)
        expected.ethernetSource = mac("02:00:00:00:00:01")
        expected.ethernetDestination = mac("02:00:00:00:00:02")
        expected.etherType = .ipv4
        expected.ipv4Source = ip("10.0.0.1")
        expected.ipv4Destination = ip("10.0.0.2")
        expected.ipProtocol = .icmp
        expected.timeToLive = 64
        expected.icmpType = 8
        expected.icmpIdentifier = 0x1C2B
        #expect(key == expected)
        #expect(key.hasTransportFields)
    }

    @Test func tcpSyn() throws {
        let key = try key(Golden.tcpSyn)
        #expect(key.ipProtocol == .tcp)
        #expect(key.sourcePort == 40000 && key.destinationPort == 80)
        #expect(key.tcpFlags == .syn)
        #expect(key.fragmentKind == .none)
        #expect(key.description == "in_port=7 02:00:00:00:00:01>02:00:00:00:00:02 IPv4 10.0.0.1>10.0.0.2 TCP ttl=64 tos=0 40000>80 flags=SYN")
    }

    @Test func vlanAndQinQ() throws {
        let tagged = try key(Golden.vlanUDP)
        #expect(tagged.vlanID == 100 && tagged.outerVLANID == 0)
        #expect(tagged.etherType == .ipv4 && tagged.ipProtocol == .udp)
        #expect(tagged.sourcePort == 5000 && tagged.destinationPort == 6000)
        #expect(tagged.typeOfService == 0xB8 && tagged.dscp == 46)

        let qinq = try key(Golden.qinqUDP)
        #expect(qinq.vlanID == 100 && qinq.outerVLANID == 200)
        #expect(qinq.sourcePort == 5000)
    }

    @Test func dhcpAndOptions() throws {
        let dhcp = try key(Golden.dhcpDiscover)
        #expect(dhcp.ipv4Source == .any && dhcp.ipv4Destination == .broadcast)
        #expect(dhcp.sourcePort == 68 && dhcp.destinationPort == 67)
        let options = try key(Golden.ipv4OptionsUDP)
        #expect(options.sourcePort == 1000 && options.destinationPort == 2000 && options.timeToLive == 1)
    }

    @Test func fragments() throws {
        let first = try key(Golden.udpFirstFragment)
        #expect(first.fragmentKind == .first)
        #expect(first.sourcePort == 7000 && first.destinationPort == 8000, "a first fragment carries the ports")

        let later = try key(Golden.udpLaterFragment)
        #expect(later.fragmentKind == .later)
        #expect(later.ipProtocol == .udp && later.ipv4Source == ip("10.0.0.1"))
        #expect(later.sourcePort == 0 && later.destinationPort == 0 && !later.hasTransportFields)
    }

    /// A first fragment cut inside its TCP header is an error, not a key with
    /// zero ports (RFC 1858's tiny-fragment attack).
    @Test func tinyFirstFragmentIsAnError() throws {
        // The TCP SYN cut to 8 bytes of TCP, marked as a first fragment.
        var frame = Array(Golden.tcpSyn[..<(14 + 20 + 8)])
        frame[14 + 2] = 0
        frame[14 + 3] = 28  // total length 28
        frame[14 + 6] = 0x20  // MF, offset 0
        #expect(throws: PacketError.truncated(layer: .tcp, needed: 20, available: 8)) { try key(frame) }
    }

    @Test func ipv6NeighborSolicitation() throws {
        let key = try key(Golden.ipv6NeighborSolicitation)
        #expect(key.etherType == .ipv6)
        #expect(key.ipv6Source == ip6("2001:db8::1") && key.ipv6Destination == ip6("ff02::1:ff00:2"))
        #expect(key.ipProtocol == .icmpv6 && key.icmpType == 135 && key.icmpCode == 0)
        #expect(key.timeToLive == 255)
        #expect(key.ipv4Source == .any)
    }

    @Test func ipv6ExtensionHeadersAreSkipped() throws {
        let key = try key(Golden.ipv6ExtensionsUDP)
        #expect(key.ipProtocol == .udp)
        #expect(key.fragmentKind == .first)
        #expect(key.sourcePort == 1111 && key.destinationPort == 2222)
        #expect(key.typeOfService == 0x2E)
    }

    @Test func tunnelFramesKeyOnTheOuterHeaders() throws {
        let key = try key(Golden.geneveEncapsulated)
        #expect(key.ipv4Source == ip("192.0.2.1") && key.destinationPort == UDP.genevePort)
    }

    @Test func unknownEtherTypeKeysOnL2Only() throws {
        var frame = Golden.arpRequest
        frame[12] = 0x88
        frame[13] = 0xCC  // LLDP
        let key = try key(frame)
        #expect(key.etherType == Ethernet.EtherType(0x88CC))
        #expect(key.arpOperation.rawValue == 0 && key.ipv4Source == .any)
    }

    @Test func errorsNameTheLayer() {
        #expect(throws: PacketError.truncated(layer: .ethernet, needed: 14, available: 10)) {
            try key(Array(Golden.arpRequest[..<10]))
        }
        #expect(throws: PacketError.truncated(layer: .arp, needed: 28, available: 20)) {
            try key(Array(Golden.arpRequest[..<34]))
        }
        var badVersion = Golden.icmpEchoRequest
        badVersion[14] = 0x55
        #expect(throws: PacketError.badVersion(layer: .ipv4, version: 5)) { try key(badVersion) }
        var shortIHL = Golden.icmpEchoRequest
        shortIHL[14] = 0x44
        #expect(throws: PacketError.badHeaderLength(layer: .ipv4, length: 16)) { try key(shortIHL) }
        var longTotal = Golden.icmpEchoRequest
        longTotal[17] = 0xFF  // total length 255 > 60 present
        #expect(throws: PacketError.truncated(layer: .ipv4, needed: 255, available: 60)) { try key(longTotal) }
        var shortTotal = Golden.icmpEchoRequest
        shortTotal[16] = 0
        shortTotal[17] = 10
        #expect(throws: PacketError.badLength(layer: .ipv4, length: 10, available: 60)) { try key(shortTotal) }
        #expect(PacketError.truncated(layer: .tcp, needed: 20, available: 8).description == "TCP truncated: needs 20 bytes, 8 available")
    }

    @Test func ethernetPaddingIsNotPayload() throws {
        // 60-byte minimum frames carry padding after a short IP packet: the
        // key and the payload bounds come from the IP total length.
        let padded = Golden.vlanUDP + Array(repeating: 0xEE, count: 30)
        #expect(try key(padded) == key(Golden.vlanUDP))
    }

    @Test func equalFramesGiveEqualKeysAndPortsDiffer() throws {
        #expect(try key(Golden.tcpSyn) == key(Golden.tcpSyn))
        #expect(try key(Golden.tcpSyn, inPort: 1) != key(Golden.tcpSyn, inPort: 2))
        var set = Set<FlowKey>()
        for (_, frame) in Golden.all { set.insert(try key(frame)) }
        #expect(set.count == Golden.all.count)
    }
}
