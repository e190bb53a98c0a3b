import HiveModel
import HivePacket
@testable import HiveSimulation
import Testing

/// A bridge "web" (10.0.1.0/24, DHCP on, gateway 10.0.1.1 on router edge)
/// with two port-secured VMs and one without port security, built through
/// the repository.
struct PortServicesLab {
    var snapshot: TopologySnapshot
    var bridge: BridgeID
    var vm1: PortID
    var vm2: PortID
    var open: PortID
    /// No MAC, no fixed IP: not secured, not served by DHCP.
    var bare: PortID
    var routerPort: PortID

    static let vm1MAC = mac("02:00:00:00:01:0a")
    static let vm2MAC = mac("02:00:00:00:01:0b")
    static let openMAC = mac("02:00:00:00:01:0c")
    static let vipMAC = mac("02:00:00:00:01:99")
    static let routerMAC = mac("02:00:00:00:01:01")
    static let vm1IP = ip("10.0.1.10")
    static let vm2IP = ip("10.0.1.11")

    static func build() async throws -> PortServicesLab {
        try await withRepository { repository in
            let bridge = try await repository.create(Bridge(name: "web")).object.id
            _ = try await repository.create(DHCPSubnet(
                bridgeId: bridge, subnet: prefix("10.0.1.0/24"), rangeStart: ip("10.0.1.100"), rangeEnd: ip("10.0.1.200"),
                gateway: ip("10.0.1.1"), dnsServers: [ip("10.0.0.53")], leaseSeconds: 3600,
                hostRoutes: [DHCPHostRoute(destination: prefix("10.9.0.0/16"), nextHop: ip("10.0.1.254"))],
                domainName: "blue.internal"))
            let vm1 = try await repository.create(Port(
                bridge: bridge, name: "vm1", mac: vm1MAC, fixedIPs: [vm1IP],
                allowedAddressPairs: [AllowedAddressPair(address: ip("10.0.1.250")),
                                      AllowedAddressPair(address: ip("10.0.1.251"), mac: vipMAC),
                                      // A pair naming another VM's fixed IP must never shadow it.
                                      AllowedAddressPair(address: vm2IP, mac: vipMAC)])).object.id
            let vm2 = try await repository.create(Port(bridge: bridge, name: "vm2", mac: vm2MAC, fixedIPs: [vm2IP])).object.id
            let open = try await repository.create(Port(
                bridge: bridge, name: "open", mac: openMAC, fixedIPs: [Port.automaticAddress], portSecurity: false)).object.id
            let bare = try await repository.create(Port(bridge: bridge, name: "bare")).object.id
            let uplink = try await repository.create(Port(bridge: bridge, name: "uplink")).object.id
            let router = try await repository.create(Router(name: "edge")).object.id
            let routerPort = try await repository.create(Port(
                router: router, name: "to-web", address: ip("10.0.1.1"), subnet: prefix("10.0.1.0/24"), mac: routerMAC)).object.id
            _ = try await repository.link(routerPort, uplink)
            let snapshot = try await loadSnapshot(repository)
            #expect(snapshot.problems.isEmpty, "\(snapshot.problems)")
            return PortServicesLab(snapshot: snapshot, bridge: bridge, vm1: vm1, vm2: vm2, open: open, bare: bare, routerPort: routerPort)
        }
    }

    func run(_ frame: [UInt8], from port: PortID, networkMTU: UInt16 = 1442, state: SimulationState = .empty) throws -> SimulationResult {
        let key = try #require(snapshot.ports[port]?.tunnelKey)
        return try snapshot.simulate(
            frame: frame, inPort: key, state: state, options: SimulationOptions(recordsTrace: true, networkMTU: networkMTU))
    }

    var router: RouterID { snapshot.ports[routerPort]!.routerId! }

    static func ping(from source: IPv4.Address, mac: EthernetAddress, to destination: IPv4.Address = vm2IP,
                     destinationMAC: EthernetAddress = vm2MAC) -> [UInt8] {
        PacketDescription(sourceMAC: mac, destinationMAC: destinationMAC, sourceIP: source, destinationIP: destination).frame
    }

    static func arp(senderMAC: EthernetAddress, senderIP: IPv4.Address, frameSource: EthernetAddress? = nil,
                    target: IPv4.Address) -> [UInt8] {
        var frame = ARP.frame(
            ARP.Packet(operation: .request, senderMAC: senderMAC, senderIP: senderIP, targetMAC: .zero, targetIP: target),
            destination: .broadcast)
        if let frameSource { for index in 0..<6 { frame[6 + index] = UInt8(truncatingIfNeeded: frameSource.value >> UInt64(40 - 8 * index)) } }
        return frame
    }

    static func dhcp(_ type: DHCPv4.MessageType, mac: EthernetAddress, requested: IPv4.Address? = nil,
                     server: IPv4.Address? = nil, clientAddress: IPv4.Address = .any) -> [UInt8] {
        var options: [DHCPv4.Option] = [.messageType(type), .parameterRequestList([1, 3, 6, 12, 15, 26, 28, 121])]
        if let requested { options.append(.requestedAddress(requested)) }
        if let server { options.append(.serverIdentifier(server)) }
        let message = DHCPv4.Message(
            opcode: .request, transactionID: 0x1234_5678, flags: 0x8000, clientAddress: clientAddress, clientMAC: mac, options: options)
        return PacketDescription(
            sourceMAC: mac, destinationMAC: .broadcast, sourceIP: clientAddress, destinationIP: clientAddress == .any ? .broadcast : ip("10.0.1.1"),
            protocol: .udp, sourcePort: 68, destinationPort: 67, payload: message.bytes).frame
    }

    /// A neighbour advertisement from `source` for `target`.
    static func neighborAdvertisement(from source: IPv6.Address, mac: EthernetAddress, target: IPv6.Address) -> [UInt8] {
        var frame = ipv6(from: source, mac: mac, icmpType: 136)
        // The message's bytes 8..<24 (after type, code, checksum, flags) are the target.
        let start = frame.count - 16
        for (index, half) in [target.high, target.low].enumerated() {
            for byte in 0..<8 { frame[start + index * 8 + byte] = UInt8(truncatingIfNeeded: half >> UInt64(56 - 8 * byte)) }
        }
        return frame
    }

    /// An IPv6 frame from `source` carrying an ICMPv6 message of `type`.
    static func ipv6(from source: IPv6.Address, mac: EthernetAddress, icmpType: UInt8) -> [UInt8] {
        var frame: [UInt8] = []
        Ethernet.Header(destination: EthernetAddress(0x33, 0x33, 0, 0, 0, 1), source: mac, etherType: .ipv6).write(to: &frame)
        // Header (8) and room for a neighbour message's target (16).
        let message: [UInt8] = [icmpType, 0, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 16)
        frame += [0x60, 0, 0, 0, 0, UInt8(message.count), 58, 255]
        for half in [source.high, source.low] { for index in 0..<8 { frame.append(UInt8(truncatingIfNeeded: half >> UInt64(56 - 8 * index))) } }
        frame += [0xFF, 0x02] + [UInt8](repeating: 0, count: 13) + [1]
        return frame + message
    }
}

extension SimulationResult {
    var spoofKind: SpoofKind? {
        if case .drop(.spoofed(_, let kind)) = decision { kind } else { nil }
    }
}

@Suite("Port security")
struct PortSecurityTests {
    @Test func ownAddressesPassAndOthersDrop() async throws {
        let lab = try await PortServicesLab.build()
        typealias L = PortServicesLab
        #expect(try lab.run(L.ping(from: L.vm1IP, mac: L.vm1MAC), from: lab.vm1).decision == .output(lab.vm2))
        // Another VM's IP, a made-up MAC, another VM's MAC.
        #expect(try lab.run(L.ping(from: L.vm2IP, mac: L.vm1MAC), from: lab.vm1).spoofKind == .sourceIP)
        #expect(try lab.run(L.ping(from: L.vm1IP, mac: mac("02:aa:00:00:00:01")), from: lab.vm1).spoofKind == .sourceMAC)
        #expect(try lab.run(L.ping(from: L.vm2IP, mac: L.vm2MAC), from: lab.vm1).spoofKind == .sourceMAC)
        // Allowed pairs: without a MAC, from the port's MAC; with one, from that MAC only.
        #expect(try lab.run(L.ping(from: ip("10.0.1.250"), mac: L.vm1MAC), from: lab.vm1).spoofKind == nil)
        #expect(try lab.run(L.ping(from: ip("10.0.1.251"), mac: L.vipMAC), from: lab.vm1).spoofKind == nil)
        #expect(try lab.run(L.ping(from: ip("10.0.1.251"), mac: L.vm1MAC), from: lab.vm1).spoofKind == .sourceIP)
        #expect(try lab.run(L.ping(from: L.vm1IP, mac: L.vipMAC), from: lab.vm1).spoofKind == .sourceIP)
        // 0.0.0.0 only for a DHCP client's broadcast.
        let zeroSource = PacketDescription(sourceMAC: L.vm1MAC, destinationMAC: .broadcast, sourceIP: .any, destinationIP: .broadcast,
                                           protocol: .udp, sourcePort: 68, destinationPort: 53).frame
        #expect(try lab.run(zeroSource, from: lab.vm1).spoofKind == .sourceIP)
        #expect(try lab.run(L.dhcp(.discover, mac: L.vm1MAC), from: lab.vm1).spoofKind == nil)
    }

    @Test func arpSendersAreChecked() async throws {
        let lab = try await PortServicesLab.build()
        typealias L = PortServicesLab
        // Gratuitous ARP for its own address passes (and is flooded); for another's it drops.
        #expect(try lab.run(L.arp(senderMAC: L.vm1MAC, senderIP: L.vm1IP, target: L.vm1IP), from: lab.vm1).spoofKind == nil)
        #expect(try lab.run(L.arp(senderMAC: L.vm1MAC, senderIP: L.vm2IP, target: L.vm2IP), from: lab.vm1).spoofKind == .arp)
        // The ARP sender MAC must be the frame's.
        #expect(try lab.run(L.arp(senderMAC: L.vm2MAC, senderIP: L.vm1IP, frameSource: L.vm1MAC, target: ip("10.0.1.1")), from: lab.vm1)
            .spoofKind == .arp)
        // A probe (RFC 5227) has sender IP 0.0.0.0.
        #expect(try lab.run(L.arp(senderMAC: L.vm1MAC, senderIP: .any, target: L.vm1IP), from: lab.vm1).spoofKind == nil)
    }

    @Test func ipv6LinkLocalOnlyAndNoRouterAdvertisements() async throws {
        let lab = try await PortServicesLab.build()
        typealias L = PortServicesLab
        let linkLocal = IPv6.Address.linkLocal(eui64: L.vm1MAC)
        #expect(linkLocal.high == 0xFE80_0000_0000_0000 && linkLocal.low == 0x0000_00FF_FE00_010A)
        #expect(try lab.run(L.ipv6(from: linkLocal, mac: L.vm1MAC, icmpType: 133), from: lab.vm1).spoofKind == nil)
        #expect(try lab.run(L.ipv6(from: .any, mac: L.vm1MAC, icmpType: 135), from: lab.vm1).spoofKind == nil)
        #expect(try lab.run(L.ipv6(from: IPv6.Address.linkLocal(eui64: L.vm2MAC), mac: L.vm1MAC, icmpType: 133), from: lab.vm1)
            .spoofKind == .ipv6Source)
        #expect(try lab.run(L.ipv6(from: linkLocal, mac: L.vm1MAC, icmpType: 134), from: lab.vm1).spoofKind == .routerAdvertisement)
        // From ::, only duplicate address detection (135) and MLDv2 reports (143).
        #expect(try lab.run(L.ipv6(from: .any, mac: L.vm1MAC, icmpType: 128), from: lab.vm1).spoofKind == .ipv6Source)
        // A neighbour advertisement for its own address passes (and is simulated each time); for another's it drops.
        let own = try lab.run(L.neighborAdvertisement(from: linkLocal, mac: L.vm1MAC, target: linkLocal), from: lab.vm1)
        #expect(own.spoofKind == nil && !own.isCacheable)
        let poison = try lab.run(
            L.neighborAdvertisement(from: linkLocal, mac: L.vm1MAC, target: IPv6.Address.linkLocal(eui64: L.vm2MAC)), from: lab.vm1)
        #expect(poison.spoofKind == .ipv6Source)
        var lldp: [UInt8] = []
        Ethernet.Header(destination: EthernetAddress(0x01, 0x80, 0xC2, 0, 0, 0x0E), source: L.vm1MAC, etherType: Ethernet.EtherType(0x88CC))
            .write(to: &lldp)
        lldp += [UInt8](repeating: 0, count: 46)
        #expect(try lab.run(lldp, from: lab.vm1).spoofKind == .etherType)
    }

    @Test func portSecurityOffLetsAnythingThroughAndLearns() async throws {
        let lab = try await PortServicesLab.build()
        typealias L = PortServicesLab
        let random = mac("02:12:34:56:78:9a")
        let result = try lab.run(L.ping(from: ip("192.0.2.7"), mac: random), from: lab.open)
        #expect(result.spoofKind == nil)
        #expect(result.decision == .output(lab.vm2))
        #expect(result.macLearning == [MACLearning(bridge: lab.bridge, mac: random, port: lab.open)])
    }

    @Test func knownPortMACsAreStaticAndNeverLearned() async throws {
        let lab = try await PortServicesLab.build()
        typealias L = PortServicesLab
        let result = try lab.run(L.ping(from: L.vm1IP, mac: L.vm1MAC), from: lab.vm1)
        #expect(result.macLearning.isEmpty)
        #expect(result.events.contains(.macLookup(L.vm2MAC, port: lab.vm2, isStatic: true)))
    }
}

@Suite("ARP answered at the edge")
struct EdgeARPTests {
    @Test func knownAddressesAreAnsweredByTheBridge() async throws {
        let lab = try await PortServicesLab.build()
        typealias L = PortServicesLab
        for (target, expected) in [(L.vm2IP, L.vm2MAC), (ip("10.0.1.251"), L.vipMAC)] {
            let result = try lab.run(L.arp(senderMAC: L.vm1MAC, senderIP: L.vm1IP, target: target), from: lab.vm1)
            #expect(result.decision == .consumed)
            let reply = try #require(result.generatedPackets.first)
            #expect(reply.kind == .arpReply && reply.port == lab.vm1)
            let packet = try ARP.Packet(parsing: Array(reply.frame[14...]))
            #expect(packet.operation == .reply && packet.senderIP == target && packet.senderMAC == expected)
            #expect(packet.targetMAC == L.vm1MAC && packet.targetIP == L.vm1IP)
        }
        // vm1's pair naming vm2's address does not take vm2's ARP answer.
        let shadowed = try lab.run(L.arp(senderMAC: L.vm1MAC, senderIP: L.vm1IP, target: L.vm2IP), from: lab.vm1)
        let answer = try ARP.Packet(parsing: Array(try #require(shadowed.generatedPackets.first).frame[14...]))
        #expect(answer.senderMAC == L.vm2MAC, "vm2's fixed IP answers with vm2's MAC")
        // A pair without a MAC is not answered: it may move between VMs.
        let unknown = try lab.run(L.arp(senderMAC: L.vm1MAC, senderIP: L.vm1IP, target: ip("10.0.1.250")), from: lab.vm1)
        #expect(unknown.decision == .flood(lab.bridge))
    }
}

@Suite("DHCP in the bridge")
struct DHCPServerTests {
    typealias L = PortServicesLab

    func reply(_ result: SimulationResult) throws -> (frame: [UInt8], message: DHCPv4.Message) {
        #expect(result.decision == .consumed)
        let packet = try #require(result.generatedPackets.first)
        #expect(packet.kind == .dhcpReply)
        return (packet.frame, try DHCPv4.Message(parsingFrame: packet.frame))
    }

    @Test func discoverGetsAnOfferWithEverythingAClientNeeds() async throws {
        let lab = try await PortServicesLab.build()
        let (frame, offer) = try reply(lab.run(L.dhcp(.discover, mac: L.vm1MAC), from: lab.vm1, networkMTU: 1442))
        #expect(offer.messageType == .offer)
        #expect(offer.yourAddress == L.vm1IP)
        #expect(offer.transactionID == 0x1234_5678 && offer.clientMAC == L.vm1MAC)
        #expect(offer.serverIdentifier == ip("10.0.1.1"))
        #expect(offer.option(code: 1) == .subnetMask(ip("255.255.255.0")))
        #expect(offer.option(code: 3) == .routers([ip("10.0.1.1")]))
        #expect(offer.option(code: 6) == .domainNameServers([ip("10.0.0.53")]))
        #expect(offer.option(code: 12) == .hostName("vm1"))
        #expect(offer.option(code: 15) == .domainName("blue.internal"))
        #expect(offer.option(code: 26) == .interfaceMTU(1442))
        #expect(offer.option(code: 51) == .leaseTime(3600))
        // RFC 3442: 10.9.0.0/16 via 10.0.1.254, then the default route via the gateway.
        #expect(offer.option(code: 121) == .other(code: 121, data: [16, 10, 9, 10, 0, 1, 254, 0, 10, 0, 1, 1]))
        // Broadcast flag set: to everyone, from the gateway's MAC and address.
        let ethernet = try Ethernet.Header(parsing: frame)
        #expect(ethernet.destination == .broadcast && ethernet.source == L.routerMAC)
    }

    @Test func requestIsAckedForItsAddressAndNakedForAnother() async throws {
        let lab = try await PortServicesLab.build()
        let ack = try reply(lab.run(L.dhcp(.request, mac: L.vm1MAC, requested: L.vm1IP, server: ip("10.0.1.1")), from: lab.vm1)).message
        #expect(ack.messageType == .ack && ack.yourAddress == L.vm1IP)
        let nak = try reply(lab.run(L.dhcp(.request, mac: L.vm1MAC, requested: ip("10.0.1.77")), from: lab.vm1)).message
        #expect(nak.messageType == .nak && nak.yourAddress == .any)
        // Another server chosen: silence.
        let other = try lab.run(L.dhcp(.request, mac: L.vm1MAC, requested: L.vm1IP, server: ip("10.0.1.9")), from: lab.vm1)
        #expect(other.decision == .consumed && other.generatedPackets.isEmpty)
        // A renewal from the leased address, unicast to the server.
        let renewal = try reply(lab.run(L.dhcp(.request, mac: L.vm1MAC, clientAddress: L.vm1IP), from: lab.vm1)).message
        #expect(renewal.messageType == .ack && renewal.yourAddress == L.vm1IP)
    }

    @Test func informGetsConfigurationWithoutALease() async throws {
        let lab = try await PortServicesLab.build()
        let ack = try reply(lab.run(L.dhcp(.inform, mac: L.vm1MAC, clientAddress: L.vm1IP), from: lab.vm1)).message
        #expect(ack.messageType == .ack && ack.yourAddress == .any)
        #expect(ack.option(code: 51) == nil && ack.option(code: 3) == .routers([ip("10.0.1.1")]))
    }

    @Test func releaseIsTakenSilentlyAndPortsWithoutAnAddressGetOne() async throws {
        let lab = try await PortServicesLab.build()
        let release = try lab.run(L.dhcp(.release, mac: L.vm1MAC, clientAddress: L.vm1IP), from: lab.vm1)
        #expect(release.decision == .consumed && release.generatedPackets.isEmpty)
        // A port without a fixed IP (and a MAC without a host entry), on a bridge with a pool, is given one first.
        // A DHCP message the bridge does not serve goes on, but is never cached: the next one may be served.
        let malformed = try lab.run(PacketDescription(
            sourceMAC: L.vm1MAC, destinationMAC: .broadcast, sourceIP: .any, destinationIP: .broadcast,
            protocol: .udp, sourcePort: 68, destinationPort: 67, payload: [1, 2, 3]).frame, from: lab.vm1)
        #expect(malformed.decision == .flood(lab.bridge) && !malformed.isCacheable)
        let unaddressed = try lab.run(L.dhcp(.discover, mac: mac("02:77:00:00:00:02")), from: lab.bare)
        #expect(unaddressed.decision == .pendingAddress(lab.bare))
        #expect(unaddressed.generatedPackets.isEmpty && !unaddressed.isCacheable)
        // Its RELEASE asks for nothing.
        let released = try lab.run(L.dhcp(.release, mac: mac("02:77:00:00:00:02")), from: lab.bare)
        #expect(released.decision == .flood(lab.bridge))
        let openAddress = try #require(lab.snapshot.ports[lab.open]?.fixedIPs.first)
        #expect(openAddress == ip("10.0.1.100"), "auto takes the pool's first free address")
        let stranger = try lab.run(L.dhcp(.discover, mac: mac("02:77:00:00:00:01")), from: lab.open)
        #expect(try reply(stranger).message.yourAddress == openAddress, "served by port, not by chaddr")
    }

    @Test func theSubnetsMTUWinsOverTheNetworks() async throws {
        let lab = try await PortServicesLab.build()
        let offer = try reply(lab.run(L.dhcp(.discover, mac: L.vm1MAC), from: lab.vm1, networkMTU: 0)).message
        #expect(offer.option(code: 26) == nil, "no MTU known, none offered")
    }
}

@Suite("Routed flows name their router hop")
struct RouterHopTests {
    @Test func theFirstRoutersIngressPortIsTheErrorSource() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            let result = try snapshot.run(
                Lab.ping(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: lab.fullState)
            #expect(result.decision == .output(lab.vm3))
            #expect(result.routerHop == RouterHop(mac: Lab.routerLeftMAC, address: ip("10.0.1.1")))
            let bridged = try snapshot.run(Lab.ping(to: Lab.vm2IP, destinationMAC: Lab.vm2MAC), from: lab.vm1, state: lab.fullState)
            #expect(bridged.routerHop == nil)
        }
    }
}

@Suite("What a router learns from ARP")
struct RouterARPLearningTests {
    typealias L = PortServicesLab

    static func reply(from mac: EthernetAddress, claiming address: IPv4.Address) -> [UInt8] {
        ARP.frame(
            ARP.Packet(operation: .reply, senderMAC: mac, senderIP: address, targetMAC: L.routerMAC, targetIP: ip("10.0.1.1")),
            destination: L.routerMAC)
    }

    @Test func onlyNeighboursOfItsSubnetWithTheMACTheBridgeKnows() async throws {
        let lab = try await PortServicesLab.build()
        let genuine = try lab.run(Self.reply(from: L.vm1MAC, claiming: L.vm1IP), from: lab.vm1)
        #expect(genuine.arpLearning.map(\.address) == [L.vm1IP])
        // From a port without port security: another VM's known address, an address off the subnet.
        let forged = try lab.run(Self.reply(from: L.openMAC, claiming: L.vm2IP), from: lab.open)
        #expect(forged.arpLearning.isEmpty && forged.decision != .consumed)
        let offSubnet = try lab.run(Self.reply(from: L.openMAC, claiming: ip("192.0.2.9")), from: lab.open)
        #expect(offSubnet.arpLearning.isEmpty)
        // An address nobody holds, on the subnet, is the VM's to claim.
        let unknown = try lab.run(Self.reply(from: L.openMAC, claiming: ip("10.0.1.77")), from: lab.open)
        #expect(unknown.arpLearning.map(\.address) == [ip("10.0.1.77")])
    }

    @Test func gratuitousARPMovesAnEntryItHasButNeverCreatesOneOrStealsAFixedIP() async throws {
        let lab = try await PortServicesLab.build()
        let vip = ip("10.0.1.250")
        var state = SimulationState()
        state.learn(vip, at: L.vm2MAC, in: lab.router)
        state.learn(L.vm2IP, at: L.vm2MAC, in: lab.router)
        // vm1 takes over the virtual address (its pair, without a MAC): the router's entry follows.
        let takeover = try lab.run(L.arp(senderMAC: L.vm1MAC, senderIP: vip, target: vip), from: lab.vm1, state: state)
        #expect(takeover.arpLearning == [ARPLearning(router: lab.router, address: vip, mac: L.vm1MAC)])
        #expect(!takeover.isCacheable)
        // No entry yet: nothing is created (arp_accept off).
        let unknown = try lab.run(L.arp(senderMAC: L.vm1MAC, senderIP: vip, target: vip), from: lab.vm1)
        #expect(unknown.arpLearning.isEmpty)
        // A port without port security announcing vm2's fixed IP does not move vm2's entry.
        let stolen = try lab.run(L.arp(senderMAC: L.openMAC, senderIP: L.vm2IP, target: L.vm2IP), from: lab.open, state: state)
        #expect(stolen.arpLearning.isEmpty)
    }
}
