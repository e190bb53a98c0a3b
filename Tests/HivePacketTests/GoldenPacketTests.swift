import HivePacket
import Testing

/// Parses each golden frame, checks every field against the annotations in
/// `GoldenFixtures.swift`, and rebuilds the identical bytes.
@Suite("Golden packets")
struct GoldenPacketTests {
    @Test func arpRequest() throws {
        let frame = Golden.arpRequest
        let ethernet = try Ethernet.Header(parsing: frame)
        #expect(ethernet.destination == .broadcast)
        #expect(ethernet.source == mac("02:00:00:00:00:01"))
        #expect(ethernet.etherType == .arp)
        #expect(ethernet.tag == nil && ethernet.outerTag == nil)
        #expect(ethernet.length == 14)

        let arp = try ARP.Packet(parsing: Array(frame[14...]))
        #expect(arp.operation == .request)
        #expect(arp.senderMAC == mac("02:00:00:00:00:01"))
        #expect(arp.senderIP == ip("10.0.0.1"))
        #expect(arp.targetMAC == .zero)
        #expect(arp.targetIP == ip("10.0.0.2"))
        #expect(!arp.isGratuitous)

        let built = ARP.requestFrame(senderMAC: mac("02:00:00:00:00:01"), senderIP: ip("10.0.0.1"), targetIP: ip("10.0.0.2"))
        #expect(built.hexString == frame.hexString)
    }

    @Test func icmpEchoRequest() throws {
        let frame = Golden.icmpEchoRequest
        let ethernet = try Ethernet.Header(parsing: frame)
        #expect(ethernet.destination == mac("02:00:00:00:00:02"))
        #expect(ethernet.source == mac("02:00:00:00:00:01"))
        #expect(ethernet.etherType == .ipv4)

        let packet = Array(frame[14...])
        let ip = try IPv4.Header(parsing: packet)
        #expect(ip.headerLength == 20)
        #expect(ip.typeOfService == 0)
        #expect(ip.totalLength == 60)
        #expect(ip.identification == 0x1234)
        #expect(ip.dontFragment && !ip.moreFragments && !ip.reservedFlag)
        #expect(ip.fragmentOffset == 0 && ip.fragmentKind == .none)
        #expect(ip.timeToLive == 64)
        #expect(ip.protocol == .icmp)
        #expect(ip.checksum == 0x148B)
        #expect(ip.source == HivePacketTests.ip("10.0.0.1"))
        #expect(ip.destination == HivePacketTests.ip("10.0.0.2"))
        #expect(ip.options.isEmpty)
        #expect(ip.computedChecksum == 0x148B)
        #expect(packet.withUnsafeBytes { ip.checksumVerifies(in: $0) })

        let message = Array(packet[20...])
        let icmp = try ICMPv4.Header(parsing: message)
        #expect(icmp.type == .echoRequest && icmp.code == 0)
        #expect(icmp.checksum == 0x3130)
        #expect(icmp.identifier == 0x1C2B && icmp.sequenceNumber == 1)
        #expect(InternetChecksum.verifies(message))
        var zeroed = message
        zeroed[2] = 0
        zeroed[3] = 0
        #expect(InternetChecksum.checksum(zeroed) == 0x3130)

        var built: [UInt8] = []
        ethernet.write(to: &built)
        ip.write(to: &built)
        icmp.write(to: &built)
        built += Array("abcdefghijklmnopqrstuvwabcdefghi".utf8)
        #expect(built.hexString == frame.hexString)
    }

    @Test func tcpSynWithOptions() throws {
        let frame = Golden.tcpSyn
        let packet = Array(frame[14...])
        let ip = try IPv4.Header(parsing: packet)
        #expect(ip.protocol == .tcp && ip.totalLength == 60 && ip.checksum == 0x26BA && ip.computedChecksum == 0x26BA)

        let segment = Array(packet[20...])
        let tcp = try TCP.Header(parsing: segment)
        #expect(tcp.sourcePort == 40000)
        #expect(tcp.destinationPort == 80)
        #expect(tcp.sequenceNumber == 0x1234_5678)
        #expect(tcp.acknowledgmentNumber == 0)
        #expect(tcp.headerLength == 40)
        #expect(tcp.flags == .syn)
        #expect(tcp.window == 64240)
        #expect(tcp.checksum == 0x518E)
        #expect(tcp.urgentPointer == 0)
        #expect(tcp.options.count == 20)
        #expect(tcp.maximumSegmentSize == 1460)
        #expect(tcp.windowScale == 7)
        #expect(tcp.sackPermitted)
        #expect(tcp.option(kind: 8) == [0, 1, 0xE2, 0x40, 0, 0, 0, 0])
        #expect(segment.withUnsafeBytes { TCP.checksumVerifies(segment: $0, source: ip.source, destination: ip.destination) })
        var zeroed = segment
        zeroed[16] = 0
        zeroed[17] = 0
        #expect(zeroed.withUnsafeBytes { TCP.checksum(segment: $0, source: ip.source, destination: ip.destination) } == 0x518E)

        var built: [UInt8] = []
        try Ethernet.Header(parsing: frame).write(to: &built)
        ip.write(to: &built)
        tcp.write(to: &built)
        #expect(built.hexString == frame.hexString)
    }

    @Test func dhcpDiscover() throws {
        let frame = Golden.dhcpDiscover
        let packet = Array(frame[14...])
        let ip = try IPv4.Header(parsing: packet)
        #expect(ip.source == .any && ip.destination == .broadcast && ip.protocol == .udp)
        #expect(ip.typeOfService == 0x10 && ip.dscp == 4)
        #expect(ip.checksum == 0x7996 && ip.computedChecksum == 0x7996)

        let datagram = Array(packet[20...])
        let udp = try UDP.Header(parsing: datagram)
        #expect(udp.sourcePort == 68 && udp.destinationPort == 67)
        #expect(udp.length == 308 && udp.payloadLength == 300)
        #expect(udp.checksum == 0xE171)
        #expect(datagram.withUnsafeBytes { UDP.checksumVerifies(datagram: $0, source: ip.source, destination: ip.destination) })

        let payload = Array(datagram[8...])
        let message = try DHCPv4.Message(parsing: payload)
        #expect(message.opcode == .request)
        #expect(message.hops == 0)
        #expect(message.transactionID == 0x3903_F326)
        #expect(message.seconds == 0)
        #expect(message.flags == 0x8000 && message.isBroadcast)
        #expect(message.clientAddress == .any && message.yourAddress == .any)
        #expect(message.serverAddress == .any && message.relayAddress == .any)
        #expect(message.clientMAC == mac("02:00:00:00:00:01"))
        #expect(message.serverName.isEmpty && message.bootFileName.isEmpty)
        let clientID: [UInt8] = [1, 2, 0, 0, 0, 0, 1]
        #expect(message.options == [
            .messageType(.discover),
            .clientIdentifier(clientID),
            .requestedAddress(HivePacketTests.ip("10.0.0.5")),
            .hostName("vm-1"),
            .maximumMessageSize(1500),
            .parameterRequestList([1, 3, 6, 15, 26, 28]),
            .other(code: 250, data: Array("xyz".utf8)),
        ])
        #expect(message.messageType == .discover)
        #expect(message.requestedAddress == HivePacketTests.ip("10.0.0.5"))
        #expect(message.hostName == "vm-1")
        #expect(message.clientIdentifier == clientID)
        #expect(message.parameterRequestList == [1, 3, 6, 15, 26, 28])
        #expect(message.serverIdentifier == nil)

        #expect(message.bytes.hexString == payload.hexString)
    }

    @Test func vlanTaggedFrame() throws {
        let frame = Golden.vlanUDP
        let ethernet = try Ethernet.Header(parsing: frame)
        #expect(ethernet.length == 18)
        #expect(ethernet.outerTag == nil)
        #expect(ethernet.tag == Ethernet.VLANTag(tagProtocol: .vlan, priority: 5, dropEligible: false, id: 100))
        #expect(ethernet.vlanID == 100)
        #expect(ethernet.etherType == .ipv4)

        let packet = Array(frame[18...])
        let ip = try IPv4.Header(parsing: packet)
        #expect(ip.typeOfService == 0xB8 && ip.dscp == 46 && ip.ecn == 0)
        let udp = try UDP.Header(parsing: Array(packet[20...]))
        #expect(udp.sourcePort == 5000 && udp.destinationPort == 6000 && udp.checksum == 0x1E84)

        var built: [UInt8] = []
        ethernet.write(to: &built)
        #expect(built.hexString == Array(frame[..<18]).hexString)
    }

    @Test func qinqFrame() throws {
        let frame = Golden.qinqUDP
        let ethernet = try Ethernet.Header(parsing: frame)
        #expect(ethernet.length == 22)
        #expect(ethernet.outerTag == Ethernet.VLANTag(tagProtocol: .serviceVLAN, priority: 0, dropEligible: false, id: 200))
        #expect(ethernet.tag == Ethernet.VLANTag(tagProtocol: .vlan, priority: 0, dropEligible: true, id: 100))
        #expect(ethernet.etherType == .ipv4)
        var built: [UInt8] = []
        ethernet.write(to: &built)
        #expect(built.hexString == Array(frame[..<22]).hexString)

        // A lone service tag is the outer tag.
        var serviceOnly = Array(frame[..<16]) + Array(frame[20...])
        serviceOnly[12] = 0x88
        let single = try Ethernet.Header(parsing: serviceOnly)
        #expect(single.outerTag?.id == 200 && single.tag == nil && single.etherType == .ipv4 && single.length == 18)
    }

    @Test func ipv4WithOptions() throws {
        let packet = Array(Golden.ipv4OptionsUDP[14...])
        let ip = try IPv4.Header(parsing: packet)
        #expect(ip.headerLength == 28)
        #expect(Array(ip.options) == [0x94, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00])
        #expect(ip.timeToLive == 1 && ip.destination == HivePacketTests.ip("224.0.0.22"))
        #expect(ip.checksum == 0x37A9 && ip.computedChecksum == 0x37A9)
        let udp = try UDP.Header(parsing: Array(packet[28...]))
        #expect(udp.sourcePort == 1000 && udp.destinationPort == 2000 && udp.checksum == 0x2698)
        var built: [UInt8] = []
        ip.write(to: &built)
        #expect(built.hexString == Array(packet[..<28]).hexString)
    }

    @Test func ipv4Fragments() throws {
        let first = try IPv4.Header(parsing: Array(Golden.udpFirstFragment[14...]))
        #expect(first.moreFragments && first.fragmentOffset == 0 && first.fragmentKind == .first)
        #expect(first.identification == 0xABCD && first.totalLength == 44)
        // The UDP length covers the whole datagram, so a strict parse of the
        // first fragment's 24 bytes says truncated.
        #expect(throws: PacketError.truncated(layer: .udp, needed: 1508, available: 24)) {
            try UDP.Header(parsing: Array(Golden.udpFirstFragment[34...]))
        }

        let later = try IPv4.Header(parsing: Array(Golden.udpLaterFragment[14...]))
        #expect(later.moreFragments && later.fragmentOffset == 3 && later.fragmentKind == .later)
        #expect(later.checksum == 0x9AF6 && later.computedChecksum == 0x9AF6)
    }

    @Test func ipv6NeighborSolicitation() throws {
        let frame = Golden.ipv6NeighborSolicitation
        let ethernet = try Ethernet.Header(parsing: frame)
        #expect(ethernet.destination == mac("33:33:ff:00:00:02") && ethernet.etherType == .ipv6)
        let packet = Array(frame[14...])
        let ip = try IPv6.Header(parsing: packet)
        #expect(ip.trafficClass == 0 && ip.flowLabel == 0)
        #expect(ip.payloadLength == 32 && ip.nextHeader == .icmpv6 && ip.hopLimit == 255)
        #expect(ip.source == ip6("2001:db8::1") && ip.destination == ip6("ff02::1:ff00:2"))
        #expect(ip.destination == ip6("2001:db8::2").solicitedNodeMulticast)

        let message = Array(packet[40...])
        let icmp = try ICMPv6.Header(parsing: message)
        #expect(icmp.type == .neighborSolicitation && icmp.code == 0 && icmp.checksum == 0x1C27)
        #expect(message.withUnsafeBytes {
            InternetChecksum.verifies(segment: $0, nextHeader: .icmpv6, source: ip.source, destination: ip.destination)
        })
        let solicitation = try ICMPv6.NeighborSolicitation(parsing: message)
        #expect(solicitation.target == ip6("2001:db8::2"))
        #expect(solicitation.sourceLinkLayerAddress == mac("02:00:00:00:00:01"))

        let built = ICMPv6.neighborSolicitationFrame(
            target: ip6("2001:db8::2"), sourceMAC: mac("02:00:00:00:00:01"), source: ip6("2001:db8::1"))
        #expect(built.hexString == frame.hexString)
    }

    @Test func ipv6ExtensionHeaders() throws {
        let packet = Array(Golden.ipv6ExtensionsUDP[14...])
        let ip = try IPv6.Header(parsing: packet)
        #expect(ip.trafficClass == 0x2E && ip.flowLabel == 0x12345 && ip.nextHeader == .hopByHopOptions)
        let upper = try packet.withUnsafeBytes { bytes in try ip.upperLayer(in: bytes) }
        #expect(upper.protocol == .udp)
        #expect(upper.offset == 64)
        #expect(upper.fragmentKind == .first)
        #expect(upper.fragmentIdentification == 0xDEAD_BEEF)
        let udp = try UDP.Header(parsing: Array(packet[64...]))
        #expect(udp.sourcePort == 1111 && udp.destinationPort == 2222)
        var built: [UInt8] = []
        ip.write(to: &built)
        #expect(built.hexString == Array(packet[..<40]).hexString)
    }

    static let endpoints = TunnelEndpoints(
        sourceMAC: mac("02:00:00:00:aa:01"), destinationMAC: mac("02:00:00:00:aa:02"),
        sourceIP: ip("192.0.2.1"), destinationIP: ip("192.0.2.2"))

    @Test func vxlanRFC7348Layout() throws {
        let frame = Golden.vxlanEncapsulated
        let outer = Array(frame[14...])
        let ip = try IPv4.Header(parsing: outer)
        #expect(ip.protocol == .udp && ip.checksum == 0xF67B && ip.computedChecksum == 0xF67B)
        let udp = try UDP.Header(parsing: Array(outer[20...]))
        #expect(udp.sourcePort == 49200 && udp.destinationPort == UDP.vxlanPort && udp.checksum == 0)
        #expect(Array(outer[20...]).withUnsafeBytes { UDP.checksumVerifies(datagram: $0, source: ip.source, destination: ip.destination) })
        let vxlan = try VXLAN.Header(parsing: Array(frame[42...]))
        #expect(vxlan.vni == 0x123456)
        #expect(Array(frame[50...]) == Golden.icmpEchoRequest)

        let built = VXLAN.encapsulate(Golden.icmpEchoRequest, vni: 0x123456, endpoints: Self.endpoints, sourcePort: 49200)
        #expect(built.hexString == frame.hexString)
    }

    @Test func geneveRFC8926LayoutWithOption() throws {
        let frame = Golden.geneveEncapsulated
        let ip = try IPv4.Header(parsing: Array(frame[14...]))
        #expect(ip.checksum == 0xF673 && ip.computedChecksum == 0xF673)
        let udp = try UDP.Header(parsing: Array(frame[34...]))
        #expect(udp.sourcePort == 50000 && udp.destinationPort == UDP.genevePort && udp.checksum == 0)

        let packet = Array(frame[42...])
        let geneve = try Geneve.Header(parsing: packet)
        #expect(geneve.version == 0)
        #expect(geneve.optionsLength == 8 && geneve.length == 16)
        #expect(!geneve.isOAM && !geneve.hasCriticalOptions)
        #expect(geneve.protocolType == Geneve.Header.transparentEthernetBridging)
        #expect(geneve.vni == 0x001234)
        let options = geneve.options(in: packet)
        #expect(options == [Geneve.Option(optionClass: 0xFFF0, type: 0x01, data: [0x01, 0x00, 0x00, 0x2A])])
        #expect(options.first?.isCritical == false)
        let metadata = packet.withUnsafeBytes { Geneve.HiveMetadata(in: $0, header: geneve) }
        #expect(metadata == Geneve.HiveMetadata(ingressPortKey: 42, trace: true))
        #expect(Array(packet[16...]) == Golden.icmpEchoRequest)

        let built = Geneve.encapsulate(
            Golden.icmpEchoRequest, vni: 0x1234, options: [Geneve.HiveMetadata(ingressPortKey: 42, trace: true).option],
            endpoints: Self.endpoints, sourcePort: 50000)
        #expect(built.hexString == frame.hexString)
    }

    @Test func geneveFlagsAndBrokenOptions() throws {
        // O and C set, one critical option of 8 bytes of data.
        let packet = hex([
            "03",  // Ver 0, Opt Len 3 (12 bytes)
            "c0",  // O 1, C 1
            "6558",  // Transparent Ethernet Bridging
            "abcdef00",  // VNI 0xabcdef, reserved
            "0102",  // option class 0x0102
            "85",  // type 0x85: critical
            "02",  // length 2 (8 bytes)
            "0011223344556677",  // data
        ])
        let geneve = try Geneve.Header(parsing: packet)
        #expect(geneve.isOAM && geneve.hasCriticalOptions && geneve.vni == 0xABCDEF && geneve.length == 20)
        let options = geneve.options(in: packet)
        #expect(options.count == 1 && options[0].isCritical && options[0].data.count == 8)
        #expect(packet.withUnsafeBytes { geneve.optionDataRange(optionClass: 0x0102, type: 0x85, in: $0) } == 12..<20)
        var rebuilt: [UInt8] = []
        geneve.write(to: &rebuilt, options: options)
        #expect(rebuilt == packet)

        var overrun = packet
        overrun[11] = 0x03  // option claims 12 bytes of data; only 8 in the area
        #expect(throws: PacketError.badOption(layer: .geneve, offset: 8)) { try Geneve.Header(parsing: overrun) }
        var version = packet
        version[0] |= 0x40
        #expect(throws: PacketError.badVersion(layer: .geneve, version: 1)) { try Geneve.Header(parsing: version) }
        #expect(throws: PacketError.truncated(layer: .geneve, needed: 20, available: 19)) {
            try Geneve.Header(parsing: Array(packet.dropLast()))
        }
    }

    @Test func vxlanWithoutIFlagIsRejected() {
        let header = hex(["00000000", "00000100"])
        #expect(throws: PacketError.unsupported(layer: .vxlan, value: 0)) { try VXLAN.Header(parsing: header) }
    }
}
