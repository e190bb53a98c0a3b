import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Testing

@Suite("Router")
struct RouterTests {
    @Test func routesBridgeToRouterToBridgeWithRewrites() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            let result = try snapshot.run(Lab.tcp(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: lab.fullState)

            #expect(result.decision == .output(lab.vm3))
            #expect(result.hops == 3)
            #expect(result.actions == [.decrementTimeToLive, .setEthernetSource(Lab.routerRightMAC), .setEthernetDestination(Lab.vm3MAC)])
            #expect(result.egressKey.timeToLive == 63)
            #expect(result.egressKey.ethernetSource == Lab.routerRightMAC && result.egressKey.ethernetDestination == Lab.vm3MAC)
            let route = try #require(snapshot.routes.values.first { $0.destination == prefix("10.0.2.0/24") })
            for tag: InvalidationTag in [
                .bridge(lab.left), .router(lab.router), .bridge(lab.right), .port(lab.vm1), .port(lab.leftUplink), .port(lab.routerLeft),
                .port(lab.routerRight), .port(lab.rightUplink), .port(lab.vm3), .routeTable(lab.router), .route(route.id), .arpEntry(lab.router, Lab.vm3IP),
                .macEntry(lab.right, Lab.vm3MAC),
            ] {
                #expect(result.tags.contains(tag), "missing tag \(tag)")
            }
            #expect(Set(result.tags).count == result.tags.count, "tags are unique")
            // The path, in order.
            let path = result.events.filter {
                switch $0 {
                case .enterPort, .leavePort, .link, .bridge, .router, .decision: true
                default: false
                }
            }
            #expect(path == [
                .enterPort(lab.vm1), .bridge(lab.left), .leavePort(lab.leftUplink), .link(from: lab.leftUplink, to: lab.routerLeft),
                .enterPort(lab.routerLeft), .router(lab.router), .leavePort(lab.routerRight), .link(from: lab.routerRight, to: lab.rightUplink),
                .enterPort(lab.rightUplink), .bridge(lab.right), .leavePort(lab.vm3), .decision(.output(lab.vm3)),
            ])
            // One route, no rules, no source routes: the transport fields are wildcarded.
            #expect(result.fieldsRead.isSuperset(of: [.inPort, .ethernetDestination, .etherType, .ipv4Destination, .timeToLive]))
            #expect(result.fieldsRead.isDisjoint(with: [.sourcePort, .destinationPort, .ipv4Source, .tcpFlags]))

            // Applying the actions to the frame gives what the key says, with a valid checksum.
            var frame = Lab.tcp(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC).frame
            for action in result.actions { action.apply(to: &frame) }
            let parsed = try ParsedIPv4(frame)
            #expect(parsed.ip.timeToLive == 63 && parsed.ethernet.source == Lab.routerRightMAC && parsed.ethernet.destination == Lab.vm3MAC)
        }
    }

    @Test func unknownNextHopSendsAnARPRequestAndWaits() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            let result = try snapshot.run(Lab.tcp(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC), from: lab.vm1)
            #expect(result.decision == .pendingARP(router: lab.router, address: Lab.vm3IP, port: lab.routerRight))
            #expect(result.tags.contains(.arpEntry(lab.router, Lab.vm3IP)))
            #expect(result.events.contains(.nextHop(Lab.vm3IP, mac: nil)))
            let request = try #require(result.generatedPackets.first)
            #expect(request.kind == .arpRequest && request.port == lab.routerRight)
            let ethernet = try Ethernet.Header(parsing: request.frame)
            #expect(ethernet.destination == .broadcast && ethernet.source == Lab.routerRightMAC)
            let arp = try ARP.Packet(parsing: Array(request.frame[14...]))
            #expect(arp.operation == .request && arp.senderIP == ip("10.0.2.1") && arp.senderMAC == Lab.routerRightMAC && arp.targetIP == Lab.vm3IP)
            #expect(!result.isCacheable)
        }
    }

    @Test func routerLearnsFromAnARPReplyToItsPort() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            var reply = PacketDescription(
                sourceMAC: Lab.vm3MAC, destinationMAC: Lab.routerRightMAC, sourceIP: Lab.vm3IP, destinationIP: ip("10.0.2.1"), protocol: .arp)
            reply.arpOperation = .reply
            let result = try snapshot.run(reply, from: lab.vm3)
            #expect(result.decision == .consumed)
            #expect(result.arpLearning == [ARPLearning(router: lab.router, address: Lab.vm3IP, mac: Lab.vm3MAC)])
            var state = SimulationState()
            state.apply(learningFrom: result)
            #expect(state.mac(of: Lab.vm3IP, in: lab.router) == Lab.vm3MAC)
        }
    }

    @Test func echoRequestsToRouterAddressesAreAnswered() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            for target in [ip("10.0.1.1"), ip("10.0.2.1")] {
                let result = try snapshot.run(Lab.ping(to: target, destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: lab.fullState)
                #expect(result.decision == .consumed)
                let reply = try #require(result.generatedPackets.first)
                #expect(reply.kind == .echoReply && reply.port == lab.routerLeft)
                let parsed = try ParsedIPv4(reply.frame)
                #expect(parsed.ethernet.source == Lab.routerLeftMAC && parsed.ethernet.destination == Lab.vm1MAC)
                #expect(parsed.ip.source == target && parsed.ip.destination == Lab.vm1IP)
                let icmp = try ICMPv4.Header(parsing: parsed.transport)
                #expect(icmp.type == .echoReply && icmp.identifier == 7)
                #expect(Array(parsed.transport[8...]) == Array(0..<16), "echo data kept")
            }
            // Anything else for the router drops.
            let tcp = try snapshot.run(Lab.tcp(to: ip("10.0.1.1"), destinationMAC: Lab.routerLeftMAC), from: lab.vm1)
            #expect(tcp.decision == .drop(.addressedToRouter(lab.router, ip("10.0.1.1"))))
        }
    }

    @Test func ttlOfOneExpiresWithTimeExceeded() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            let packet = Lab.tcp(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC, ttl: 1)
            let result = try snapshot.run(packet, from: lab.vm1, state: lab.fullState)
            #expect(result.decision == .drop(.timeToLiveExpired(lab.router)))
            let error = try #require(result.generatedPackets.first)
            #expect(error.kind == .timeExceeded && error.port == lab.routerLeft)
            let parsed = try ParsedIPv4(error.frame)
            #expect(parsed.ip.source == ip("10.0.1.1") && parsed.ip.destination == Lab.vm1IP)
            #expect(parsed.ethernet.source == Lab.routerLeftMAC && parsed.ethernet.destination == Lab.vm1MAC)
            let icmp = try ICMPv4.Header(parsing: parsed.transport)
            #expect(icmp.type == .timeExceeded && icmp.code == 0)
            let quote = try ICMPv4.Quote(parsing: parsed.transport)
            #expect(quote.header.destination == Lab.vm3IP && quote.header.timeToLive == 1)
            #expect(result.fieldsRead.contains(.timeToLive))

            // TTL 2 goes through, leaving with 1.
            let two = try snapshot.run(Lab.tcp(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC, ttl: 2), from: lab.vm1, state: lab.fullState)
            #expect(two.decision == .output(lab.vm3) && two.egressKey.timeToLive == 1)
        }
    }

    @Test func noRouteRejectRouteAndBlackhole() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let reject = try await repository.create(Route(routerId: lab.router, destination: prefix("198.51.100.0/24"), kind: .reject)).object
            let blackhole = try await repository.create(Route(routerId: lab.router, destination: prefix("203.0.113.0/24"), kind: .blackhole)).object
            let snapshot = try await lab.snapshot()

            let none = try snapshot.run(Lab.udp(to: ip("192.168.7.7"), destinationMAC: Lab.routerLeftMAC), from: lab.vm1)
            #expect(none.decision == .drop(.noRoute(lab.router, ip("192.168.7.7"))))
            #expect(none.events.contains(.routeLookup(ip("192.168.7.7"), route: nil, equalCost: 0)))
            let unreachable = try ParsedIPv4(try #require(none.generatedPackets.first).frame)
            let icmp = try ICMPv4.Header(parsing: unreachable.transport)
            #expect(icmp.type == .destinationUnreachable && icmp.code == ICMPv4.UnreachableCode.network.rawValue)
            #expect(unreachable.ip.source == ip("10.0.1.1") && unreachable.ip.destination == Lab.vm1IP)

            let rejected = try snapshot.run(Lab.udp(to: ip("198.51.100.9"), destinationMAC: Lab.routerLeftMAC), from: lab.vm1)
            #expect(rejected.decision == .drop(.rejectRoute(reject.id)))
            #expect(rejected.tags.contains(.route(reject.id)))
            let rejectICMP = try ICMPv4.Header(parsing: try ParsedIPv4(try #require(rejected.generatedPackets.first).frame).transport)
            #expect(rejectICMP.type == .destinationUnreachable && rejectICMP.code == 0)

            let dropped = try snapshot.run(Lab.udp(to: ip("203.0.113.9"), destinationMAC: Lab.routerLeftMAC), from: lab.vm1)
            #expect(dropped.decision == .drop(.blackholeRoute(blackhole.id)))
            #expect(dropped.generatedPackets.isEmpty)
            #expect(dropped.isCacheable)
        }
    }

    @Test func noICMPErrorAboutICMPErrorsBroadcastsOrLaterFragments() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            let error = Lab.ping(to: ip("192.168.7.7"), destinationMAC: Lab.routerLeftMAC, type: 3, code: 1)
            let result = try snapshot.run(error, from: lab.vm1)
            #expect(result.decision == .drop(.noRoute(lab.router, ip("192.168.7.7"))))
            #expect(result.generatedPackets.isEmpty)

            let later = fragmented(Lab.udp(to: ip("192.168.7.7"), destinationMAC: Lab.routerLeftMAC).frame, later: true)
            let fragmentResult = try snapshot.run(frame: later, from: lab.vm1)
            #expect(fragmentResult.generatedPackets.isEmpty)

            let expired = try snapshot.run(Lab.udp(to: ip("10.0.2.255"), destinationMAC: Lab.routerLeftMAC), from: lab.vm1)
            // Routed (the router does not know 10.0.2.255 is a broadcast on the far side), so no error either way;
            // a TTL-1 packet to the ingress subnet's broadcast gets none.
            _ = expired
            var ttl1 = Lab.udp(to: ip("10.0.1.255"), destinationMAC: Lab.routerLeftMAC)
            ttl1.timeToLive = 1
            let broadcast = try snapshot.run(ttl1, from: lab.vm1)
            #expect(broadcast.decision == .drop(.timeToLiveExpired(lab.router)))
            #expect(broadcast.generatedPackets.isEmpty)
        }
    }

    @Test func longestPrefixAndSourcePrefixWin() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            _ = try await repository.create(Route(routerId: lab.router, destination: prefix("10.0.0.0/16"), kind: .blackhole))
            let sourceRoute = try await repository.create(Route(
                routerId: lab.router, destination: prefix("10.0.2.0/24"), source: prefix("10.0.1.11/32"), kind: .reject)).object
            let snapshot = try await lab.snapshot()
            // vm1: the /24 beats the /16.
            let fromVM1 = try snapshot.run(Lab.tcp(to: Lab.vm3IP, destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: lab.fullState)
            #expect(fromVM1.decision == .output(lab.vm3))
            #expect(fromVM1.fieldsRead.contains(.ipv4Source), "source routes make the source matter")
            // vm2: the source-specific route beats the plain /24.
            let fromVM2 = try snapshot.run(
                Lab.tcp(from: Lab.vm2IP, to: Lab.vm3IP, sourceMAC: Lab.vm2MAC, destinationMAC: Lab.routerLeftMAC), from: lab.vm2,
                state: lab.fullState)
            #expect(fromVM2.decision == .drop(.rejectRoute(sourceRoute.id)))
            // Elsewhere in 10.0/16: the blackhole.
            let other = try snapshot.run(Lab.tcp(to: ip("10.0.9.9"), destinationMAC: Lab.routerLeftMAC), from: lab.vm1)
            guard case .drop(.blackholeRoute) = other.decision else {
                Issue.record("expected the /16 blackhole, got \(other.decision)")
                return
            }
        }
    }

    @Test func ecmpIsStickyPerFlowAndSpreadsOverFlows() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let gateways = [ip("10.0.2.100"), ip("10.0.2.101")]
            let macs = [mac("02:00:00:00:02:64"), mac("02:00:00:00:02:65")]
            for gateway in gateways {
                _ = try await repository.create(Route(
                    routerId: lab.router, destination: prefix("172.16.0.0/16"), nextHopGateway: gateway, egressPortId: lab.routerRight))
            }
            // A worse (higher weight) path never taken while the equal-cost ones exist.
            _ = try await repository.create(Route(
                routerId: lab.router, destination: prefix("172.16.0.0/16"), nextHopGateway: ip("10.0.2.102"),
                egressPortId: lab.routerRight, weight: 200))
            let snapshot = try await lab.snapshot()
            var state = lab.fullState
            for (gateway, gatewayMAC) in zip(gateways, macs) { state.learn(gateway, at: gatewayMAC, in: lab.router) }

            var chosen: [EthernetAddress: Int] = [:]
            for sourcePort in UInt16(1000)..<1064 {
                let packet = Lab.tcp(to: ip("172.16.3.4"), sourcePort: sourcePort, destinationMAC: Lab.routerLeftMAC)
                let first = try snapshot.run(packet, from: lab.vm1, state: state)
                let again = try snapshot.run(packet, from: lab.vm1, state: state)
                #expect(first.actions == again.actions, "one flow, one path")
                guard case .setEthernetDestination(let nextHop) = try #require(first.actions.last) else {
                    Issue.record("no next hop MAC in \(first.actions)")
                    continue
                }
                chosen[nextHop, default: 0] += 1
                #expect(first.fieldsRead.isSuperset(of: [.ipv4Source, .sourcePort, .destinationPort, .ipProtocol]), "ECMP hashes the 5-tuple")
                #expect(first.events.contains { if case .ecmp(_, 2, _) = $0 { true } else { false } })
            }
            #expect(Set(chosen.keys) == Set(macs), "both equal-cost paths used: \(chosen)")
            #expect(chosen.values.allSatisfy { $0 >= 16 }, "roughly even: \(chosen)")

            // A lower weight wins outright.
            _ = try await repository.create(Route(
                routerId: lab.router, destination: prefix("172.16.0.0/16"), nextHopGateway: ip("10.0.2.103"),
                egressPortId: lab.routerRight, weight: 10))
            let preferred = try await lab.snapshot()
            state.learn(ip("10.0.2.103"), at: mac("02:00:00:00:02:67"), in: lab.router)
            let result = try preferred.run(Lab.tcp(to: ip("172.16.3.4"), destinationMAC: Lab.routerLeftMAC), from: lab.vm1, state: state)
            #expect(result.actions.last == .setEthernetDestination(mac("02:00:00:00:02:67")))
            #expect(!result.fieldsRead.contains(.sourcePort), "a single best route reads no ports")
        }
    }

    @Test func routerDropsFramesNotForItsMACAndNonIPv4() async throws {
        try await withRepository { repository in
            let lab = try await Lab.build(repository)
            let snapshot = try await lab.snapshot()
            let other = mac("02:00:00:00:09:99")
            let result = try snapshot.run(
                Lab.tcp(from: ip("192.0.2.7"), to: Lab.vm3IP, sourceMAC: mac("02:00:00:00:09:07"), destinationMAC: other), from: lab.outside)
            #expect(result.decision == .drop(.notForRouterMAC(lab.router, other)))
            let arpForOther = try snapshot.run(
                Lab.arpRequest(from: ip("192.0.2.7"), sourceMAC: mac("02:00:00:00:09:07"), for: ip("192.0.2.8")), from: lab.outside)
            #expect(arpForOther.decision == .drop(.arpNotForRouter(lab.router, ip("192.0.2.8"))))
            let arpForRouter = try snapshot.run(
                Lab.arpRequest(from: ip("192.0.2.7"), sourceMAC: mac("02:00:00:00:09:07"), for: ip("192.0.2.1")), from: lab.outside)
            #expect(arpForRouter.decision == .consumed)
            #expect(arpForRouter.generatedPackets.first?.port == lab.outside)
        }
    }

    @Test func hopLimitStopsALinkLoop() async throws {
        try await withRepository { repository in
            // Two routers that each route 10.9.0.0/16 to the other.
            let first = try await repository.create(Router(name: "r1")).object.id
            let second = try await repository.create(Router(name: "r2")).object.id
            let a = try await repository.create(Port(router: first, name: "a", address: ip("10.8.0.1"), subnet: prefix("10.8.0.0/30"))).object.id
            let b = try await repository.create(Port(router: second, name: "b", address: ip("10.8.0.2"), subnet: prefix("10.8.0.0/30"))).object.id
            let edge = try await repository.create(Port(
                router: first, name: "edge", address: ip("192.0.2.1"), subnet: prefix("192.0.2.0/24"), mac: Lab.outsideMAC)).object.id
            _ = try await repository.link(a, b)
            _ = try await repository.create(Route(routerId: first, destination: prefix("10.9.0.0/16"), egressPortId: a))
            _ = try await repository.create(Route(routerId: second, destination: prefix("10.9.0.0/16"), egressPortId: b))
            let snapshot = try await loadSnapshot(repository)
            let packet = Lab.udp(from: ip("192.0.2.7"), to: ip("10.9.1.1"), sourceMAC: mac("02:00:00:00:09:07"), destinationMAC: Lab.outsideMAC)
            let result = try snapshot.run(packet, from: edge, hopLimit: 8)
            #expect(result.decision == .drop(.hopLimitExceeded(8)))
            #expect(result.hops == 8)
            #expect(result.events.filter { if case .router = $0 { true } else { false } }.count == 8)
        }
    }
}
