import HivePacket
import Testing

/// The frames the simulation generates, checked by parsing them back and by
/// the reference checksum, not by the code that built them.
@Suite("Frame builders")
struct FrameBuilderTests {
    let routerMAC = mac("02:00:00:00:00:fe")
    let routerIP = ip("10.0.0.254")

    /// Parses Ethernet + IPv4 and checks the IPv4 header checksum with the
    /// reference implementation.
    func ipv4Layers(_ frame: [UInt8]) throws -> (Ethernet.Header, IPv4.Header, [UInt8]) {
        let ethernet = try Ethernet.Header(parsing: frame)
        let packet = Array(frame[ethernet.length...])
        let header = try IPv4.Header(parsing: packet)
        #expect(referenceChecksum(Array(packet[..<header.headerLength])) == 0, "IPv4 header checksum")
        return (ethernet, header, Array(packet[header.headerLength..<Int(header.totalLength)]))
    }

    @Test func arpReply() throws {
        let request = try ARP.Packet(parsing: Array(Golden.arpRequest[14...]))
        let frame = ARP.replyFrame(to: request, answeringWith: routerMAC)
        #expect(frame.count == 60)
        let ethernet = try Ethernet.Header(parsing: frame)
        #expect(ethernet.destination == mac("02:00:00:00:00:01") && ethernet.source == routerMAC && ethernet.etherType == .arp)
        let reply = try ARP.Packet(parsing: Array(frame[14...]))
        #expect(reply == ARP.Packet(
            operation: .reply, senderMAC: routerMAC, senderIP: ip("10.0.0.2"),
            targetMAC: mac("02:00:00:00:00:01"), targetIP: ip("10.0.0.1")))
    }

    @Test func icmpEchoReply() throws {
        let frame = try ICMPv4.echoReplyFrame(to: Golden.icmpEchoRequest)
        let (ethernet, header, message) = try ipv4Layers(frame)
        #expect(ethernet.source == mac("02:00:00:00:00:02") && ethernet.destination == mac("02:00:00:00:00:01"))
        #expect(header.source == ip("10.0.0.2") && header.destination == ip("10.0.0.1") && header.protocol == .icmp)
        let icmp = try ICMPv4.Header(parsing: message)
        #expect(icmp.type == .echoReply && icmp.code == 0 && icmp.identifier == 0x1C2B && icmp.sequenceNumber == 1)
        // Type 8 → 0 lowers the first word by 0x0800, so the checksum rises
        // by 0x0800: 0x3130 → 0x3930.
        #expect(icmp.checksum == 0x3930)
        #expect(referenceChecksum(message) == 0)
        #expect(Array(message[8...]) == Array("abcdefghijklmnopqrstuvwabcdefghi".utf8))
        #expect(throws: PacketError.unsupported(layer: .icmpv4, value: 0)) { try ICMPv4.echoReplyFrame(to: frame) }
        #expect(throws: PacketError.unsupported(layer: .ipv4, value: 6)) { try ICMPv4.echoReplyFrame(to: Golden.tcpSyn) }
    }

    @Test func timeExceededQuotesHeaderAndEightBytes() throws {
        let frame = try ICMPv4.timeExceededFrame(about: Golden.tcpSyn, sourceMAC: routerMAC, sourceIP: routerIP)
        let (ethernet, header, message) = try ipv4Layers(frame)
        #expect(ethernet.source == routerMAC && ethernet.destination == mac("02:00:00:00:00:01"))
        #expect(header.source == routerIP && header.destination == ip("10.0.0.1") && header.totalLength == 20 + 8 + 28)
        let icmp = try ICMPv4.Header(parsing: message)
        #expect(icmp.type == .timeExceeded && icmp.code == 0 && icmp.restOfHeader == 0)
        #expect(referenceChecksum(message) == 0)
        #expect(Array(message[8...]) == Array(Golden.tcpSyn[14..<(14 + 28)]), "original IP header + 8 bytes")

        let quote = try ICMPv4.Quote(parsing: message)
        #expect(quote.header == (try IPv4.Header(parsing: Array(Golden.tcpSyn[14...]))))
        #expect(quote.transportOffset == 28 && quote.transportLength == 8)
        #expect(message.withUnsafeBytes { quote.ports(in: $0)?.source } == 40000)
        #expect(message.withUnsafeBytes { quote.ports(in: $0)?.destination } == 80)
    }

    @Test func unreachableCarriesNextHopMTU() throws {
        let frame = try ICMPv4.unreachableFrame(
            code: .fragmentationNeeded, nextHopMTU: 1400, about: Golden.icmpEchoRequest, sourceMAC: routerMAC, sourceIP: routerIP)
        let (_, _, message) = try ipv4Layers(frame)
        let icmp = try ICMPv4.Header(parsing: message)
        #expect(icmp.type == .destinationUnreachable && icmp.code == 4 && icmp.nextHopMTU == 1400)
        #expect(referenceChecksum(message) == 0)
        #expect(message.count == 8 + 20 + 8)
    }

    @Test func errorsAreNotSentAboutErrorsOrLaterFragments() throws {
        func may(_ frame: [UInt8]) throws -> Bool {
            let packet = Array(frame[14...])
            let header = try IPv4.Header(parsing: packet)
            return packet.withUnsafeBytes { ICMPv4.mayReportError(about: header, payload: header.payload(in: $0)) }
        }
        #expect(try may(Golden.tcpSyn))
        #expect(try may(Golden.icmpEchoRequest))
        #expect(try !may(Golden.udpLaterFragment))
        #expect(try !may(Golden.ipv4OptionsUDP), "multicast destination")
        #expect(try !may(Golden.dhcpDiscover), "broadcast destination")
        let error = try ICMPv4.timeExceededFrame(about: Golden.tcpSyn, sourceMAC: routerMAC, sourceIP: routerIP)
        #expect(try !may(error))
    }

    @Test func tcpResetForSyn() throws {
        let frame = try #require(try TCP.resetFrame(for: Golden.tcpSyn))
        let (ethernet, header, segment) = try ipv4Layers(frame)
        #expect(ethernet.destination == mac("02:00:00:00:00:01"))
        #expect(header.source == ip("10.0.0.2") && header.destination == ip("10.0.0.1") && header.protocol == .tcp)
        let reset = try TCP.Header(parsing: segment)
        #expect(reset.sourcePort == 80 && reset.destinationPort == 40000)
        // No ACK in the SYN: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, SYN counting 1.
        #expect(reset.flags == [.rst, .ack] && reset.sequenceNumber == 0 && reset.acknowledgmentNumber == 0x1234_5679)
        var pseudo = [UInt8]()
        for address in [header.source.value, header.destination.value] {
            pseudo += [UInt8(address >> 24), UInt8(address >> 16 & 0xFF), UInt8(address >> 8 & 0xFF), UInt8(address & 0xFF)]
        }
        pseudo += [0, 6, 0, UInt8(segment.count)]
        #expect(referenceChecksum(pseudo + segment) == 0, "TCP checksum")
    }

    @Test func tcpResetForAckAndNoneForReset() throws {
        var segment = Array(Golden.tcpSyn)
        segment[14 + 20 + 13] = 0x10  // ACK only
        segment[14 + 20 + 8] = 0xAA  // acknowledgment 0xaa000000
        let frame = try #require(try TCP.resetFrame(for: segment))
        let reset = try TCP.Header(parsing: Array(frame[34...]))
        #expect(reset.flags == .rst && reset.sequenceNumber == 0xAA00_0000 && reset.acknowledgmentNumber == 0)

        segment[14 + 20 + 13] = 0x04  // RST
        #expect(try TCP.resetFrame(for: segment) == nil)
    }

    @Test func dhcpOfferAndAck() throws {
        let discover = try DHCPv4.Message(parsing: Array(Golden.dhcpDiscover[42...]))
        let lease = DHCPv4.LeaseParameters(
            serverIdentifier: routerIP, subnetMask: ip("255.255.255.0"), routers: [routerIP],
            domainNameServers: [ip("10.0.0.53"), ip("10.0.0.54")], leaseTime: 3600, interfaceMTU: 1450, domainName: "hive.internal")
        let offer = DHCPv4.Message.reply(to: discover, type: .offer, yourAddress: ip("10.0.0.5"), lease: lease)
        #expect(offer.opcode == .reply && offer.transactionID == 0x3903_F326 && offer.clientMAC == discover.clientMAC)
        #expect(offer.options == [
            .messageType(.offer), .serverIdentifier(routerIP), .leaseTime(3600), .renewalTime(1800), .rebindingTime(3150),
            .subnetMask(ip("255.255.255.0")), .routers([routerIP]), .domainNameServers([ip("10.0.0.53"), ip("10.0.0.54")]),
            .interfaceMTU(1450), .domainName("hive.internal"),
        ])

        // The discover set the broadcast flag, so the offer is broadcast.
        let frame = DHCPv4.replyFrame(offer, serverMAC: routerMAC, serverIP: routerIP)
        let (ethernet, header, datagram) = try ipv4Layers(frame)
        #expect(ethernet.destination == .broadcast && header.destination == .broadcast && header.source == routerIP)
        let udp = try UDP.Header(parsing: datagram)
        #expect(udp.sourcePort == 67 && udp.destinationPort == 68)
        #expect(datagram.withUnsafeBytes { UDP.checksumVerifies(datagram: $0, source: header.source, destination: header.destination) })
        let parsed = try DHCPv4.Message(parsing: Array(datagram[8...]))
        #expect(parsed == offer)
        #expect(parsed.yourAddress == ip("10.0.0.5") && parsed.messageType == .offer)

        // A request without the broadcast flag gets a unicast ack.
        var request = discover
        request.isBroadcast = false
        request.options = [.messageType(.request), .requestedAddress(ip("10.0.0.5")), .serverIdentifier(routerIP)]
        let ack = DHCPv4.Message.reply(to: request, type: .ack, yourAddress: ip("10.0.0.5"), lease: lease)
        let ackFrame = DHCPv4.replyFrame(ack, serverMAC: routerMAC, serverIP: routerIP)
        let (ackEthernet, ackHeader, _) = try ipv4Layers(ackFrame)
        #expect(ackEthernet.destination == mac("02:00:00:00:00:01") && ackHeader.destination == ip("10.0.0.5"))

        let nak = DHCPv4.Message.nak(to: request, serverIdentifier: routerIP)
        let (nakEthernet, _, _) = try ipv4Layers(DHCPv4.replyFrame(nak, serverMAC: routerMAC, serverIP: routerIP))
        #expect(nakEthernet.destination == .broadcast)
    }

    @Test func dhcpLongOptionsSplitAndJoin() throws {
        let servers = (1...70).map { IPv4.Address(10, 0, 1, UInt8($0)) }  // 280 bytes: two options
        let message = DHCPv4.Message(opcode: .reply, transactionID: 1, clientMAC: mac("02:00:00:00:00:01"), options: [.domainNameServers(servers)])
        let bytes = message.bytes
        #expect(bytes[240] == 6 && bytes[241] == 255)
        #expect(bytes[240 + 257] == 6 && bytes[240 + 258] == 25)
        #expect(try DHCPv4.Message(parsing: bytes) == message)
    }

    @Test func dhcpRejectsWhatItCannotRead() {
        var noCookie = Array(Golden.dhcpDiscover[42...])
        noCookie[236] = 0
        #expect(throws: PacketError.unsupported(layer: .dhcpv4, value: 0x0082_5363)) { try DHCPv4.Message(parsing: noCookie) }
        var overrun = Array(Golden.dhcpDiscover[42...])
        overrun[241] = 200  // message type option claims 200 bytes
        #expect(throws: PacketError.badOption(layer: .dhcpv4, offset: 240)) { try DHCPv4.Message(parsing: overrun) }
    }

    @Test func dhcpKnownOptionOfWrongShapeIsKeptRaw() throws {
        // A message type of two bytes is not a message type, but nothing is
        // lost: it comes back as `.other` and rebuilds the same bytes.
        let message = DHCPv4.Message(
            opcode: .request, transactionID: 9, clientMAC: mac("02:00:00:00:00:01"),
            options: [.other(code: 53, data: [1, 2]), .other(code: 51, data: [0, 0, 1])])
        let parsed = try DHCPv4.Message(parsing: message.bytes)
        #expect(parsed.messageType == nil)
        #expect(parsed.options == message.options)
        #expect(parsed.bytes == message.bytes)
    }

    @Test func neighborAdvertisementAnswersSolicitation() throws {
        let solicitation = try ICMPv6.NeighborSolicitation(parsing: Array(Golden.ipv6NeighborSolicitation[54...]))
        let frame = ICMPv6.neighborAdvertisementFrame(
            answering: solicitation, requesterMAC: mac("02:00:00:00:00:01"), requester: ip6("2001:db8::1"),
            mac: routerMAC, isRouter: true)
        let ethernet = try Ethernet.Header(parsing: frame)
        #expect(ethernet.destination == mac("02:00:00:00:00:01") && ethernet.source == routerMAC)
        let packet = Array(frame[14...])
        let header = try IPv6.Header(parsing: packet)
        #expect(header.source == ip6("2001:db8::2") && header.destination == ip6("2001:db8::1") && header.hopLimit == 255)
        let message = Array(packet[40...])
        #expect(message.withUnsafeBytes {
            InternetChecksum.verifies(segment: $0, nextHeader: .icmpv6, source: header.source, destination: header.destination)
        })
        let advertisement = try ICMPv6.NeighborAdvertisement(parsing: message)
        #expect(advertisement == ICMPv6.NeighborAdvertisement(
            isRouter: true, isSolicited: true, isOverride: true, target: ip6("2001:db8::2"), targetLinkLayerAddress: routerMAC))
    }

    @Test func neighborDiscoveryOptionErrors() {
        var zeroLength = Array(Golden.ipv6NeighborSolicitation[54...])
        zeroLength[25] = 0
        #expect(throws: PacketError.badOption(layer: .neighborDiscovery, offset: 24)) {
            try ICMPv6.NeighborSolicitation(parsing: zeroLength)
        }
        var overrun = Array(Golden.ipv6NeighborSolicitation[54...])
        overrun[25] = 2
        #expect(throws: PacketError.badOption(layer: .neighborDiscovery, offset: 24)) {
            try ICMPv6.NeighborSolicitation(parsing: overrun)
        }
    }

    /// The fast-path writer fills headroom in place, and what it writes is
    /// what `encapsulate` builds.
    @Test func encapsulationIntoHeadroom() throws {
        let endpoints = GoldenPacketTests.endpoints
        let inner = Golden.tcpSyn
        let headroom = VXLAN.encapsulationLength
        var buffer = [UInt8](repeating: 0xEE, count: headroom + inner.count)
        buffer.replaceSubrange(headroom..., with: inner)
        let written = buffer.withUnsafeMutableBytes {
            VXLAN.writeEncapsulation(into: $0, at: 0, innerLength: inner.count, vni: 77, endpoints: endpoints, sourcePort: 50001)
        }
        #expect(written == 50)
        #expect(buffer == VXLAN.encapsulate(inner, vni: 77, endpoints: endpoints, sourcePort: 50001))
        let key = try FlowKey(parsing: buffer, inPort: 0)
        #expect(key.destinationPort == 4789 && key.sourcePort == 50001)
        #expect(try VXLAN.Header(parsing: Array(buffer[42...])).vni == 77)

        let metadata = Geneve.HiveMetadata(ingressPortKey: 0xABCDEF)
        var optionBytes: [UInt8] = []
        metadata.option.write(to: &optionBytes)
        let geneveHeadroom = Geneve.encapsulationLength(optionsLength: optionBytes.count)
        var geneveBuffer = [UInt8](repeating: 0, count: geneveHeadroom) + inner
        geneveBuffer.withUnsafeMutableBytes { buffer in
            optionBytes.withUnsafeBytes {
                _ = Geneve.writeEncapsulation(
                    into: buffer, at: 0, innerLength: inner.count, vni: 99, options: $0, endpoints: endpoints, sourcePort: 50002)
            }
        }
        #expect(geneveBuffer == Geneve.encapsulate(inner, vni: 99, options: [metadata.option], endpoints: endpoints, sourcePort: 50002))
        let geneve = try Geneve.Header(parsing: Array(geneveBuffer[42...]))
        #expect(geneve.vni == 99)
        #expect(Array(geneveBuffer[42...]).withUnsafeBytes { Geneve.HiveMetadata(in: $0, header: geneve) } == metadata)
        #expect(Array(geneveBuffer[(42 + geneve.length)...]) == inner)
    }

    @Test func tunnelSourcePortsStayInTheDynamicRange() {
        var random = SplitMix64(seed: 6081)
        for _ in 0..<1_000 {
            let port = Tunnel.sourcePort(flowHash: random.next())
            #expect(port >= 49152)
        }
    }
}
