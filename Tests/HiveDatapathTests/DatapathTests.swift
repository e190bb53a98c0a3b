#if os(Linux)
import Foundation
import HiveDatapath
import HivePacket
import HiveSandbox
import Testing

// The datapath against real kernels: namespaces for hosts and VMs, veth
// pairs whose host ends the datapath binds, a UDP tunnel over a bridged
// underlay, and real `ping`. Each test has its own prefix, stops its
// datapaths and removes its namespaces however it ends. The suite is
// serialized all the same: a dozen tests making and deleting namespaces at
// once queue on the kernel's rtnl lock until `ip` commands time out. Nothing waits a fixed time: conditions are polled with a
// generous deadline, and pings use `-W 2`.
@Suite(
    "Datapath on namespaces and veths", .serialized,
    .enabled(if: SandboxPrivileges.isRoot, "needs root: it creates network namespaces, veth pairs and AF_PACKET sockets"))
struct DatapathTests {
    init() throws {
        // Fail with the package to install rather than with a confusing command error.
        try SandboxTools.check(["ip", "ethtool", "ping"])
    }

    /// vm1 <-> vm2, both on h1: frames from port 1 go to port 2 and back.
    static let crossConnect: [UInt32: [FlowOutput]] = [
        Topology.vm1Key: [.local(portKey: Topology.vm2Key)],
        Topology.vm2Key: [.local(portKey: Topology.vm1Key)],
    ]

    static func localPorts(_ network: SandboxNetwork) -> [(key: UInt32, interface: String)] {
        [(Topology.vm1Key, network.vms[0].hostInterface), (Topology.vm2Key, network.vms[1].hostInterface)]
    }

    // MARK: 1. Local forwarding and the flow cache

    @Test func twoLocalVMsPingAndLaterPacketsHitCachedFlows() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: false)
            try withNetwork(network) { network in
                let handler = PolicyHandler(routes: Self.crossConnect)
                try withDatapath(host: network.hosts[0].name, underlay: Topology.underlay1, handler: handler, ports: Self.localPorts(network)) { datapath in
                    let vm1 = network.vms[0].name
                    // Every packet arrives, also the first of each flow, which the upcall forwards.
                    try expectPing(from: vm1, to: Topology.vm2Address, count: 3, replies: 3)
                    // One ping is one flow each way: the request and the reply missed once each.
                    #expect(handler.misses(where: \.isICMPEchoRequest) == 1)
                    #expect(handler.misses(where: \.isICMPEchoReply) == 1)
                    #expect(handler.misses(where: \.isARP) <= 6, "ARP: a request, a reply and perhaps a few probes")

                    // A second ping (a new echo identifier, so new flows): 10 ICMP packets, 2 misses.
                    try expectPing(from: vm1, to: Topology.vm2Address, count: 5, interval: "0.2", replies: 5)
                    #expect(handler.misses(where: \.isICMPEchoRequest) == 2)
                    #expect(handler.misses(where: \.isICMPEchoReply) == 2)
                    // 16 ICMP packets minus 4 misses at least hit the cache.
                    #expect(eventually { datapath.statistics.flowHits >= 12 }, "flow hits: \(datapath.statistics.flowHits)")
                    #expect(eventually { datapath.statistics.upcalls == UInt64(handler.misses.count) }, "one upcall per handler call")
                    let statistics = datapath.statistics
                    #expect(statistics.flowsInstalled == statistics.upcalls, "every decision was cacheable")
                    #expect(statistics.flows > 0)
                    #expect(statistics.ports[Topology.vm1Key].map { $0.receivedPackets >= 8 && $0.sentPackets >= 8 } == true)
                    #expect(statistics.ports[Topology.vm2Key].map { $0.receivedPackets >= 8 && $0.sentPackets >= 8 } == true)
                }
            }
        }
    }

    @Test func flowHitsAreHandedToTheTracerOnlyOnTracedPorts() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: false)
            try withNetwork(network) { network in
                let handler = PolicyHandler(routes: Self.crossConnect)
                try withDatapath(host: network.hosts[0].name, underlay: Topology.underlay1, handler: handler, ports: Self.localPorts(network)) { _ in
                    let vm1 = network.vms[0].name
                    try expectPing(from: vm1, to: Topology.vm2Address, count: 2, interval: "0.2", replies: 2)
                    #expect(handler.traceHits.isEmpty, "nothing armed: no hit is reported")

                    handler.trace(ports: [Topology.vm1Key])
                    try expectPing(from: vm1, to: Topology.vm2Address, count: 4, interval: "0.2", replies: 4)
                    let hits = handler.traceHits
                    #expect(hits.count >= 3, "vm1's echo requests that hit their flow: \(hits.count)")
                    #expect(hits.allSatisfy { $0.portKey == Topology.vm1Key }, "vm2's replies, on an untraced port, are not reported")
                    // Hits of several flows (the echo requests', an ARP's) interleave: the busiest counted ≥ 3.
                    #expect((hits.map(\.packets).max() ?? 0) >= 3, "with the flows' counters: \(hits.map(\.packets))")

                    handler.trace(ports: [])
                    let before = handler.traceHits.count
                    try expectPing(from: vm1, to: Topology.vm2Address, count: 2, interval: "0.2", replies: 2)
                    #expect(handler.traceHits.count == before, "disarmed: no more reports")
                }
            }
        }
    }

    // MARK: 2. The tunnel between two hosts

    @Test func vmsOnTwoHostsPingAcrossTheTunnel() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: true)
            try withNetwork(network) { network in
                let (vm1, vm2) = (network.vms[0], network.vms[1])
                let handler1 = PolicyHandler(routes: [Topology.vm1Key: [.tunnel(host: Topology.underlay2, portKey: Topology.vm2Key)]])
                let handler2 = PolicyHandler(routes: [Topology.vm2Key: [.tunnel(host: Topology.underlay1, portKey: Topology.vm1Key)]])
                try withDatapath(host: vm1.host, underlay: Topology.underlay1, handler: handler1, ports: [(Topology.vm1Key, vm1.hostInterface)]) { datapath1 in
                    try withDatapath(host: vm2.host, underlay: Topology.underlay2, handler: handler2, ports: [(Topology.vm2Key, vm2.hostInterface)]) { datapath2 in
                        try expectPing(from: vm1.name, to: Topology.vm2Address, count: 3, replies: 3)
                        try expectPing(from: vm2.name, to: Topology.vm1Address, count: 3, replies: 3)

                        // Policy runs at the ingress host only: h1 decided vm1's requests, h2 vm2's
                        // replies; packets from the tunnel never reach a handler.
                        #expect(handler1.misses(where: \.isICMPEchoRequest) == 1)
                        #expect(handler1.misses(where: \.isICMPEchoReply) == 1)
                        #expect(handler2.misses(where: \.isICMPEchoRequest) == 1)
                        #expect(handler2.misses(where: \.isICMPEchoReply) == 1)
                        #expect(handler1.misses.allSatisfy { $0.inPort == Topology.vm1Key })
                        #expect(handler2.misses.allSatisfy { $0.inPort == Topology.vm2Key })

                        // Six ICMP packets each way went out of each host and in at the other.
                        for datapath in [datapath1, datapath2] {
                            #expect(eventually {
                                let statistics = datapath.statistics
                                return statistics.tunnelSentPackets >= 6 && statistics.tunnelReceivedPackets >= 6
                            }, "tunnel sent \(datapath.statistics.tunnelSentPackets), received \(datapath.statistics.tunnelReceivedPackets)")
                            // (Unknown tunnel keys may be counted: a VM's first frames can reach the
                            // other host before its port is bound there.)
                            let drops = datapath.statistics.drops
                            #expect([.malformed, .badTunnelPacket, .flowDrop, .portGone, .truncated].allSatisfy { drops[$0] == nil }, "drops: \(drops)")
                        }
                    }
                }
            }
        }
    }

    /// On the wire: VNI = the egress port key, Hive's option = the ingress
    /// key, the inner frame untouched; and a Geneve packet for a bound port
    /// comes out of it exactly as it was inside.
    @Test func tunnelPacketsCarryTheEgressKeyAsVNIAndTheIngressKeyAsOption() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: true)
            try withNetwork(network) { network in
                let vm1 = network.vms[0]
                let remoteKey: UInt32 = 0x00BE_EF
                let handler = PolicyHandler(routes: [Topology.vm1Key: [.tunnel(host: Topology.underlay2, portKey: remoteKey)]])
                // h2 runs no datapath: a plain UDP socket on its tunnel port plays the peer.
                let peer = try UDPPeer(address: Topology.underlay2, port: 6081, namespace: network.hosts[1].name)
                let nic = try RawPort(interface: "eth0", namespace: vm1.name)
                try withDatapath(host: vm1.host, underlay: Topology.underlay1, handler: handler, ports: [(Topology.vm1Key, vm1.hostInterface)]) { datapath in
                    let outbound = TestFrames.marked("hive-encap")
                    #expect(nic.send(outbound))
                    let datagram = try #require(peer.receive { $0.count >= 16 && Array($0.dropFirst(16)) == outbound },
                        "the frame vm1 sent did not arrive at h2's tunnel port")
                    let header = try Geneve.Header(parsing: datagram)
                    #expect(header.version == 0)
                    #expect(header.vni == remoteKey)
                    #expect(header.protocolType == Geneve.Header.transparentEthernetBridging)
                    #expect(!header.isOAM && !header.hasCriticalOptions)
                    #expect(header.length == 16)
                    let metadata = datagram.withUnsafeBytes { Geneve.HiveMetadata(in: $0, header: header) }
                    #expect(metadata?.ingressPortKey == Topology.vm1Key)

                    // Inbound: VNI 1 is vm1's port; the inner frame arrives at vm1 as it is.
                    let inbound = TestFrames.marked("hive-decap", from: Topology.vm2MAC, to: Topology.vm1MAC)
                    var packet: [UInt8] = []
                    Geneve.Header(optionsLength: 8, vni: Topology.vm1Key).write(to: &packet, options: [Geneve.HiveMetadata(ingressPortKey: 0x77).option])
                    #expect(peer.send(packet + inbound, to: Topology.underlay1, port: 6081))
                    #expect(nic.receive { $0 == inbound } != nil, "the inner frame did not arrive at vm1")
                    #expect(eventually { datapath.statistics.tunnelReceivedPackets >= 1 && datapath.statistics.tunnelSentPackets >= 1 })
                    #expect(!handler.misses.contains { $0.inPort != Topology.vm1Key }, "tunnel packets never reach the handler")
                }
            }
        }
    }

    @Test func tunnelPacketsFromUnknownSendersAreDroppedOnceThePeersAreSet() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: true)
            try withNetwork(network) { network in
                let vm1 = network.vms[0]
                let handler = PolicyHandler(routes: [:])
                let peer = try UDPPeer(address: Topology.underlay2, port: 6081, namespace: network.hosts[1].name)
                let nic = try RawPort(interface: "eth0", namespace: vm1.name)
                try withDatapath(host: vm1.host, underlay: Topology.underlay1, handler: handler, ports: [(Topology.vm1Key, vm1.hostInterface)]) { datapath in
                    func deliver(_ marker: String) -> Bool {
                        let inbound = TestFrames.marked(marker, from: Topology.vm2MAC, to: Topology.vm1MAC)
                        var packet: [UInt8] = []
                        Geneve.Header(vni: Topology.vm1Key).write(to: &packet)
                        _ = peer.send(packet + inbound, to: Topology.underlay1, port: 6081)
                        return nic.receive(within: .seconds(2)) { $0 == inbound } != nil
                    }
                    #expect(deliver("from-h2-any"), "with no peer set, any sender is accepted")
                    datapath.setTunnelPeers([IPv4.Address(100, 64, 0, 77)])
                    #expect(eventually { !deliver("from-h2-stranger") }, "h2 is not a known peer: its packets are dropped")
                    #expect(eventually { (datapath.statistics.drops[.unknownPeer] ?? 0) >= 1 })
                    datapath.setTunnelPeers([Topology.underlay2])
                    #expect(eventually { deliver("from-h2-peer") }, "h2 is a peer again")
                }
            }
        }
    }

    @Test func aPortFloodingNewFlowsIsRateLimitedAndTheOthersStillGetThrough() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: false)
            try withNetwork(network) { network in
                let handler = PolicyHandler(routes: Self.crossConnect)
                let limits = DatapathConfiguration(upcallsPerSecondPerPort: 50, upcallBurstPerPort: 20)
                let nic = try RawPort(interface: "eth0", namespace: network.vms[0].name)
                try withDatapath(host: network.hosts[0].name, underlay: Topology.underlay1, handler: handler, ports: Self.localPorts(network), configuration: limits) { datapath in
                    // 2,000 frames from vm1, each to another MAC: 2,000 new flows; vm1's port is traced.
                    handler.trace(ports: [Topology.vm1Key])
                    let flood = 2_000
                    for n in 0..<flood {
                        _ = nic.send(TestFrames.marked("flood", to: EthernetAddress(0x02_00_00_10_00_00 | UInt64(n))))
                    }
                    #expect(eventually { (datapath.statistics.drops[.upcallLimited] ?? 0) > 0 }, "misses beyond the rate are refused")
                    #expect(eventually { handler.traceLimited > 0 }, "and, the port being traced, reported to the tracer")
                    let fromVM1 = handler.misses(where: { $0.inPort == Topology.vm1Key && $0.etherType == Ethernet.EtherType(0x88B5) })
                    #expect(fromVM1 < flood / 2, "vm1 got \(fromVM1) simulations for \(flood) new flows")
                    // Once the flood is read (the refusals stop growing) and vm1's bucket has
                    // refilled (20 tokens at 50/s), ordinary traffic through both ports flows again.
                    var refused = datapath.statistics.drops[.upcallLimited] ?? 0
                    #expect(eventually {
                        Thread.sleep(forTimeInterval: 0.5)
                        let now = datapath.statistics.drops[.upcallLimited] ?? 0
                        defer { refused = now }
                        return now == refused
                    })
                    try expectPing(from: network.vms[1].name, to: Topology.vm1Address, count: 3, interval: "0.3", replies: 3)
                }
            }
        }
    }

    // MARK: 3. Invalidation

    @Test func invalidatingATagMakesOnlyItsFlowsMissAgain() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: false)
            try withNetwork(network) { network in
                let handler = PolicyHandler(routes: Self.crossConnect)
                try withDatapath(host: network.hosts[0].name, underlay: Topology.underlay1, handler: handler, ports: Self.localPorts(network)) { datapath in
                    // One long ping: one echo identifier, so one request flow and one reply flow throughout.
                    let background = try BackgroundPing(from: network.vms[0].name, Topology.vm2Address)
                    defer { background.stop() }
                    let requests = { handler.misses(where: \.isICMPEchoRequest) }
                    let replies = { handler.misses(where: \.isICMPEchoReply) }
                    /// Waits until `count` more packets hit the flow table.
                    func hitsAdvance(by count: UInt64) -> Bool {
                        let start = datapath.statistics.flowHits
                        return eventually { datapath.statistics.flowHits >= start + count }
                    }

                    #expect(eventually { requests() == 1 && replies() == 1 })
                    #expect(hitsAdvance(by: 6))
                    #expect(requests() == 1 && replies() == 1, "cached: no further misses")

                    // Port 1's tag: the request flow (in by port 1) goes, the reply flow stays.
                    datapath.invalidate([PolicyHandler.portTag(Topology.vm1Key)])
                    #expect(eventually { requests() == 2 })
                    #expect(hitsAdvance(by: 6))
                    #expect(requests() == 2, "the request flow was cached again")
                    #expect(replies() == 1, "the reply flow carries port 2's tag, not port 1's")
                    let invalidated = datapath.statistics.flowsInvalidated
                    #expect(invalidated >= 1)

                    // A tag no flow carries removes nothing.
                    datapath.invalidate([0xDEAD_BEEF])
                    #expect(hitsAdvance(by: 6))
                    #expect(requests() == 2 && replies() == 1)
                    #expect(datapath.statistics.flowsInvalidated == invalidated)

                    // Everything goes: both directions miss once more.
                    datapath.invalidateAll()
                    #expect(eventually { requests() == 3 && replies() == 2 })
                    #expect(hitsAdvance(by: 6))
                    #expect(requests() == 3 && replies() == 2)
                }
            }
        }
    }

    @Test func droppingPolicyStopsPingUntilItsFlowsAreInvalidated() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: false)
            try withNetwork(network) { network in
                let vm1 = network.vms[0].name
                let handler = PolicyHandler(routes: Self.crossConnect)
                try withDatapath(host: network.hosts[0].name, underlay: Topology.underlay1, handler: handler, ports: Self.localPorts(network)) { datapath in
                    try expectPing(from: vm1, to: Topology.vm2Address, count: 2, replies: 2)

                    // A dropping policy takes effect for cached flows once they are invalidated.
                    handler.setRoutes([:])
                    datapath.invalidate([PolicyHandler.policyTag])
                    try expectPing(from: vm1, to: Topology.vm2Address, count: 2, replies: nil, "the policy drops everything")
                    #expect(eventually { (datapath.statistics.drops[.flowDrop] ?? 0) >= 2 })

                    // A long ping under the dropping policy: its request flow is a cached drop.
                    let before = handler.misses.count
                    let background = try BackgroundPing(from: vm1, Topology.vm2Address)
                    defer { background.stop() }
                    #expect(eventually { handler.misses.dropFirst(before).contains(where: \.isICMPEchoRequest) })
                    let firstRequest = handler.misses.dropFirst(before).first { $0.isICMPEchoRequest }
                    let identifier = try #require(firstRequest).icmpIdentifier
                    let requests = { handler.misses(where: { $0.isICMPEchoRequest && $0.icmpIdentifier == identifier }) }
                    let replies = { handler.misses(where: { $0.isICMPEchoReply && $0.icmpIdentifier == identifier }) }
                    /// Waits until `count` more packets were dropped by a flow.
                    func flowDropsAdvance(by count: UInt64) -> Bool {
                        let start = datapath.statistics.drops[.flowDrop] ?? 0
                        return eventually { (datapath.statistics.drops[.flowDrop] ?? 0) >= start + count }
                    }
                    #expect(flowDropsAdvance(by: 3))

                    // Forwarding again, but not invalidated: the cached drop still applies.
                    handler.setRoutes(Self.crossConnect)
                    #expect(flowDropsAdvance(by: 5))
                    #expect(requests() == 1, "the ping's requests hit the cached drop flow")
                    #expect(replies() == 0, "vm2 never got a request to answer")

                    // Invalidated: the next request misses, is forwarded, and vm2 answers.
                    datapath.invalidate([PolicyHandler.policyTag])
                    #expect(eventually { requests() == 2 && replies() == 1 })
                    background.stop()
                    try expectPing(from: vm1, to: Topology.vm2Address, count: 3, replies: 3)
                }
            }
        }
    }

    // MARK: 4. Malformed input

    @Test func malformedFramesAndTunnelPacketsAreCountedAndForwardingGoesOn() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: true)
            try withNetwork(network) { network in
                let (vm1, vm2) = (network.vms[0], network.vms[1])
                let handler1 = PolicyHandler(routes: [Topology.vm1Key: [.tunnel(host: Topology.underlay2, portKey: Topology.vm2Key)]])
                let handler2 = PolicyHandler(routes: [Topology.vm2Key: [.tunnel(host: Topology.underlay1, portKey: Topology.vm1Key)]])
                try withDatapath(host: vm1.host, underlay: Topology.underlay1, handler: handler1, ports: [(Topology.vm1Key, vm1.hostInterface)]) { datapath1 in
                    try withDatapath(host: vm2.host, underlay: Topology.underlay2, handler: handler2, ports: [(Topology.vm2Key, vm2.hostInterface)]) { _ in
                        // Working before; this also resolves the underlay neighbours, so no datagram waits on ARP.
                        try expectPing(from: vm1.name, to: Topology.vm2Address, count: 1, replies: 1)

                        // Frames into h1's port from vm1's side, each one a parser rejects.
                        let ipv4 = UInt16(0x0800)
                        let malformed: [(String, [UInt8])] = [
                            ("IPv4 EtherType, no IPv4 header", TestFrames.ethernet(ipv4)),
                            ("IPv4 header of 10 bytes", TestFrames.ethernet(ipv4, Array(TestFrames.ipv4Header(totalLength: 20).prefix(10)))),
                            ("IPv4 header length 12 (IHL 3)", TestFrames.ethernet(ipv4, TestFrames.ipv4Header(firstByte: 0x43, totalLength: 20))),
                            ("IPv4 header length 60 (IHL 15) in 20 bytes", TestFrames.ethernet(ipv4, TestFrames.ipv4Header(firstByte: 0x4F, totalLength: 60))),
                            ("IPv4 version 6", TestFrames.ethernet(ipv4, TestFrames.ipv4Header(firstByte: 0x65, totalLength: 20))),
                            ("IPv4 total length 1000 in 28 bytes", TestFrames.ethernet(ipv4, TestFrames.ipv4Header(totalLength: 1000) + [8, 0, 0, 0, 0, 0, 0, 0])),
                            ("IPv4 total length below the header", TestFrames.ethernet(ipv4, TestFrames.ipv4Header(totalLength: 8))),
                            ("TCP header of 4 bytes", TestFrames.ethernet(ipv4, TestFrames.ipv4Header(totalLength: 24, protocol: 6) + [0, 80, 0, 80])),
                            ("ICMP header of 2 bytes", TestFrames.ethernet(ipv4, TestFrames.ipv4Header(totalLength: 22, protocol: 1) + [8, 0])),
                            ("ARP of 10 bytes", TestFrames.ethernet(0x0806, [0, 1, 8, 0, 6, 4, 0, 1, 2, 0])),
                            ("VLAN tag cut short", TestFrames.ethernet(0x8100, [0, 5])),
                            ("IPv6 header of 12 bytes", TestFrames.ethernet(0x86DD, [0x60] + [UInt8](repeating: 0, count: 11))),
                        ]
                        for (name, frame) in malformed {
                            #expect(throws: PacketError.self, "\(name) must be malformed to the parser") {
                                try FlowKey(parsing: frame, inPort: Topology.vm1Key)
                            }
                        }
                        let nic = try RawPort(interface: "eth0", namespace: vm1.name)
                        var malformedSent = 0
                        for (name, frame) in malformed {
                            let sent = nic.send(frame)
                            #expect(sent, "the kernel refused to send \(name)")
                            if sent { malformedSent += 1 }
                        }
                        // Shorter than an Ethernet header: the kernel refuses it; if it ever
                        // let one through, the datapath must drop it like the rest.
                        _ = nic.send([0xFF, 0xFF, 0xFF])
                        // Random bytes after a header of a type the datapath parses further.
                        var random = SeededGenerator(state: 6081)
                        for _ in 0..<300 {
                            let type = [UInt16(0x0800), 0x0806, 0x86DD, 0x8100, 0x88A8].randomElement(using: &random)!
                            let length = Int.random(in: 0...200, using: &random)
                            nic.send(TestFrames.ethernet(type, (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }))
                        }

                        // Datagrams to h1's tunnel port from a stranger on h2.
                        let stranger = try UDPPeer(address: Topology.underlay2, port: 0, namespace: vm2.host)
                        let inner = TestFrames.marked("hive-garbage", from: Topology.vm2MAC, to: Topology.vm1MAC)
                        let badTunnelPackets: [(String, [UInt8])] = [
                            ("empty datagram", []),
                            ("4 bytes", [0, 0, 0x65, 0x58]),
                            ("version 1", TestFrames.geneve(firstByte: 0x40, vni: Topology.vm1Key, inner)),
                            ("version 3", TestFrames.geneve(firstByte: 0xC0, vni: Topology.vm1Key, inner)),
                            ("IPv4 protocol type", TestFrames.geneve(protocolType: 0x0800, vni: Topology.vm1Key, inner)),
                            ("OAM packet", TestFrames.geneve(flags: 0x80, vni: Topology.vm1Key, inner)),
                            ("options length past the end", TestFrames.geneve(firstByte: 0x3F, vni: Topology.vm1Key, [0, 0, 0, 0])),
                            ("option running past the options", TestFrames.geneve(firstByte: 0x01, vni: Topology.vm1Key, [0xFF, 0xF0, 0x01, 0x1F] + inner)),
                            ("no inner frame", TestFrames.geneve(vni: Topology.vm1Key)),
                            ("inner frame of 13 bytes", TestFrames.geneve(vni: Topology.vm1Key, Array(inner.prefix(13)))),
                        ]
                        let unknownKeys: [(String, [UInt8])] = [
                            ("VNI 0", TestFrames.geneve(vni: 0, inner)),
                            ("VNI 0x7777", TestFrames.geneve(vni: 0x7777, inner)),
                            ("VNI 0xFFFFFF", TestFrames.geneve(vni: 0xFF_FFFF, inner)),
                        ]
                        var badSent = 0
                        var unknownSent = 0
                        for (name, datagram) in badTunnelPackets {
                            let sent = stranger.send(datagram, to: Topology.underlay1, port: 6081)
                            #expect(sent, "the kernel refused to send \(name)")
                            if sent { badSent += 1 }
                        }
                        for (name, datagram) in unknownKeys {
                            let sent = stranger.send(datagram, to: Topology.underlay1, port: 6081)
                            #expect(sent, "the kernel refused to send \(name)")
                            if sent { unknownSent += 1 }
                        }
                        for _ in 0..<300 {
                            let length = Int.random(in: 0...100, using: &random)
                            stranger.send((0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }, to: Topology.underlay1, port: 6081)
                        }

                        // Every rejected frame and datagram was counted, and the datapath still forwards.
                        #expect(eventually {
                            let drops = datapath1.statistics.drops
                            return (drops[.malformed] ?? 0) >= UInt64(malformedSent) && (drops[.badTunnelPacket] ?? 0) >= UInt64(badSent)
                                && (drops[.unknownTunnelKey] ?? 0) >= UInt64(unknownSent)
                        }, "drops: \(datapath1.statistics.drops)")
                        try expectPing(from: vm1.name, to: Topology.vm2Address, count: 3, replies: 3)
                        try expectPing(from: vm2.name, to: Topology.vm1Address, count: 3, replies: 3)
                        #expect(handler1.misses.allSatisfy { $0.inPort == Topology.vm1Key })
                    }
                }
            }
        }
    }

    // MARK: 5. Ports

    @Test func removingAPortStopsForwardingAndClosesItsSocket() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: false)
            try withNetwork(network) { network in
                let host = network.hosts[0].name
                let (vm1, vm2) = (network.vms[0], network.vms[1])
                let handler = PolicyHandler(routes: Self.crossConnect)
                try withDatapath(host: host, underlay: Topology.underlay1, handler: handler, ports: [(Topology.vm1Key, vm1.hostInterface)]) { datapath in
                    let socket = try bindPort(Topology.vm2Key, interface: vm2.hostInterface, in: host, to: datapath)
                    let inode = try #require(socketInode(socket))
                    try expectPing(from: vm1.name, to: Topology.vm2Address, count: 2, replies: 2)
                    let invalidatedBefore = datapath.statistics.flowsInvalidated

                    datapath.removePort(portKey: Topology.vm2Key)
                    #expect(eventually { datapath.statistics.ports[Topology.vm2Key] == nil })
                    #expect(socketInode(socket) != inode, "the port's socket was closed")
                    // At least the ping's request flow (out by port 2) and reply flow (in by it).
                    #expect(datapath.statistics.flowsInvalidated >= invalidatedBefore + 2, "the flows through port 2 went with it")
                    try expectPing(from: vm1.name, to: Topology.vm2Address, count: 2, replies: nil)
                    try expectPing(from: vm2.name, to: Topology.vm1Address, count: 2, replies: nil)
                    // vm1's requests still go by policy to port 2, which is gone.
                    #expect(eventually { (datapath.statistics.drops[.portGone] ?? 0) >= 2 })

                    // Bound again on a new socket, the port forwards again.
                    try bindPort(Topology.vm2Key, interface: vm2.hostInterface, in: host, to: datapath)
                    try expectPing(from: vm1.name, to: Topology.vm2Address, count: 3, replies: 3)
                }
            }
        }
    }

    @Test func aPortWhoseInterfaceDisappearsIsClosedAndReported() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: false)
            try withNetwork(network) { network in
                let handler = PolicyHandler(routes: Self.crossConnect)
                try withDatapath(host: network.hosts[0].name, underlay: Topology.underlay1, handler: handler, ports: Self.localPorts(network)) { datapath in
                    try expectPing(from: network.vms[0].name, to: Topology.vm2Address, count: 1, replies: 1)
                    // The VM goes away, and its veth pair with it.
                    try RootNamespace.run(["ip", "netns", "delete", network.vms[1].name])
                    #expect(eventually(within: .seconds(20)) { handler.failedPorts == [Topology.vm2Key] }, "failed: \(handler.failedPorts)")
                    #expect(eventually { datapath.statistics.ports[Topology.vm2Key] == nil })
                    // The other port is still served.
                    let received = datapath.statistics.ports[Topology.vm1Key]?.receivedPackets ?? 0
                    try expectPing(from: network.vms[0].name, to: Topology.vm2Address, count: 2, replies: nil)
                    #expect(eventually { (datapath.statistics.ports[Topology.vm1Key]?.receivedPackets ?? 0) >= received + 2 })
                }
            }
        }
    }

    // MARK: VLANs and Geneve options

    /// AF_PACKET hands frames over with the 802.1Q tag moved out of the data
    /// (into PACKET_AUXDATA); the datapath must put it back, or a VM's
    /// tagged frames are keyed, and forwarded, untagged.
    @Test func aVLANTaggedFrameFromAVMIsKeyedWithItsTag() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: false)
            try withNetwork(network) { network in
                let handler = PolicyHandler(routes: Self.crossConnect)
                let nic1 = try RawPort(interface: "eth0", namespace: network.vms[0].name)
                try withDatapath(host: network.hosts[0].name, underlay: Topology.underlay1, handler: handler, ports: Self.localPorts(network)) { _ in
                    #expect(nic1.send(TestFrames.marked("hive-vlan", vlan: 10)))
                    let isMarked: (FlowKey) -> Bool = { $0.etherType == Ethernet.EtherType(0x88B5) }
                    #expect(eventually { handler.misses(where: isMarked) == 1 })
                    let key = try #require(handler.misses.first(where: isMarked))
                    #expect(key.vlanID == 10, "the frame was sent with VLAN 10; the datapath keyed \(key)")
                }
            }
        }
    }

    /// RFC 8926 §3.5: a packet with a critical option the receiver does not
    /// understand must be dropped. Hive knows no critical option.
    @Test func genevePacketsWithCriticalOptionsAreDropped() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: true)
            try withNetwork(network) { network in
                let vm1 = network.vms[0]
                let handler = PolicyHandler(routes: [:])
                let peer = try UDPPeer(address: Topology.underlay2, port: 6081, namespace: network.hosts[1].name)
                let nic = try RawPort(interface: "eth0", namespace: vm1.name)
                try withDatapath(host: vm1.host, underlay: Topology.underlay1, handler: handler, ports: [(Topology.vm1Key, vm1.hostInterface)]) { datapath in
                    let critical = TestFrames.marked("hive-critical", from: Topology.vm2MAC, to: Topology.vm1MAC)
                    let plain = TestFrames.marked("hive-after", from: Topology.vm2MAC, to: Topology.vm1MAC)
                    // C flag set and one option of an unknown class whose type has the critical bit.
                    let unknownCritical: [UInt8] = [0x01, 0x01, 0x80, 0x00]
                    #expect(peer.send(TestFrames.geneve(firstByte: 0x01, flags: 0x40, vni: Topology.vm1Key, unknownCritical + critical), to: Topology.underlay1, port: 6081))
                    #expect(peer.send(TestFrames.geneve(vni: Topology.vm1Key, plain), to: Topology.underlay1, port: 6081))
                    // Both go through one socket and one thread in order: by the time the plain
                    // frame arrives, the critical one would have.
                    var delivered: [[UInt8]] = []
                    #expect(nic.receive { delivered.append($0); return $0 == plain } != nil, "the plain frame did not arrive")
                    let criticalDelivered = delivered.contains(critical)
                    #expect(!criticalDelivered, "the frame behind an unknown critical option was delivered to vm1")
                    #expect(eventually { (datapath.statistics.drops[.badTunnelPacket] ?? 0) >= 1 }, "drops: \(datapath.statistics.drops)")
                }
            }
        }
    }

    /// What Hive sends decodes as Geneve in a standard dissector.
    @Test(.enabled(if: isInstalled("tshark"), "needs tshark (apt-get install tshark)"))
    func tunnelPacketsDecodeAsGeneveInTshark() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: true)
            try withNetwork(network) { network in
                let vm1 = network.vms[0]
                let handler = PolicyHandler(routes: [Topology.vm1Key: [.tunnel(host: Topology.underlay2, portKey: 0x00BE_EF)]])
                // Something listens on h2's tunnel port, so h2 answers no "port unreachable".
                let peer = try UDPPeer(address: Topology.underlay2, port: 6081, namespace: network.hosts[1].name)
                let nic = try RawPort(interface: "eth0", namespace: vm1.name)
                try withDatapath(host: vm1.host, underlay: Topology.underlay1, handler: handler, ports: [(Topology.vm1Key, vm1.hostInterface)]) { _ in
                    defer { withExtendedLifetime(peer) {} }
                    let output = FileManager.default.temporaryDirectory.appendingPathComponent("hive-tshark-\(UUID().uuidString).txt")
                    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
                    defer { try? FileManager.default.removeItem(at: output) }
                    let handle = try FileHandle(forWritingTo: output)
                    defer { try? handle.close() }
                    let fields = ["geneve.version", "geneve.vni", "geneve.proto_type", "geneve.option.class", "geneve.option.type", "geneve.option.unknown.data", "eth.type"]
                    let tshark = try NetworkNamespace.start(
                        network.hosts[1].name,
                        ["tshark", "-n", "-l", "-i", "ul0", "-c", "1", "-f", "udp dst port 6081 and udp[36:2] = 0x88b5", "-T", "fields", "-E", "separator=;", "-E", "aggregator=/"]
                            + fields.flatMap { ["-e", $0] },
                        standardOutput: handle)
                    defer { if tshark.isRunning { tshark.terminate(); tshark.waitUntilExit() } }
                    // The filter takes only the test's frames (inner EtherType 0x88b5 after the UDP
                    // header, 16 bytes of Geneve and the inner MACs), not the VM's own IPv6 chatter.
                    // Frames until tshark has captured one: it starts capturing at a time of its own.
                    let frame = TestFrames.marked("hive-tshark")
                    #expect(eventually(within: .seconds(30)) {
                        nic.send(frame)
                        return !tshark.isRunning
                    })
                    tshark.waitUntilExit()
                    let line = try String(contentsOf: output, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                    let values = line.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
                    try #require(values.count == fields.count, "tshark printed '\(line)'")
                    #expect(values[0] == "0")
                    #expect(values[1] == "48879" || values[1].lowercased() == "0x0000beef" || values[1].lowercased() == "0x00beef", "VNI: \(values[1])")
                    #expect(values[2].lowercased().contains("6558"), "protocol type: \(values[2])")
                    #expect(values[3].lowercased().contains("fff0"), "option class: \(values[3])")
                    #expect(values[4] == "1" || values[4].lowercased() == "0x01", "option type: \(values[4])")
                    #expect(values[5].replacingOccurrences(of: ":", with: "").hasSuffix("000001"), "option data (ingress key 1): \(values[5])")
                    #expect(values[6].lowercased().contains("88b5"), "inner EtherType: \(values[6])")
                }
            }
        }
    }

    // MARK: Frames from the control plane

    @Test func sentFramesLeaveAsTheyAreAndSimulatedFramesGoThroughTheHandler() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: false)
            try withNetwork(network) { network in
                let handler = PolicyHandler(routes: Self.crossConnect)
                let nic2 = try RawPort(interface: "eth0", namespace: network.vms[1].name)
                try withDatapath(host: network.hosts[0].name, underlay: Topology.underlay1, handler: handler, ports: Self.localPorts(network)) { datapath in
                    let isMarked: (FlowKey) -> Bool = { $0.etherType == Ethernet.EtherType(0x88B5) }

                    // send: straight out of port 2, without asking the handler.
                    let sent = TestFrames.marked("hive-send")
                    datapath.send(frame: sent, outputs: [.local(portKey: Topology.vm2Key)])
                    #expect(nic2.receive { $0 == sent } != nil, "the sent frame did not arrive at vm2")
                    #expect(handler.misses(where: isMarked) == 0)

                    // simulate: the handler decides as if the frame came in by port 1 (to port 2), and caches.
                    let simulated = TestFrames.marked("hive-simulate")
                    let installed = datapath.statistics.flowsInstalled
                    datapath.simulate(frame: simulated, inPort: Topology.vm1Key)
                    #expect(nic2.receive { $0 == simulated } != nil, "the simulated frame did not arrive at vm2")
                    #expect(handler.misses(where: { isMarked($0) && $0.inPort == Topology.vm1Key }) == 1)
                    #expect(eventually { datapath.statistics.flowsInstalled > installed })

                    // To a port not bound here: dropped and counted.
                    datapath.send(frame: sent, outputs: [.local(portKey: 99)])
                    #expect(eventually { (datapath.statistics.drops[.portGone] ?? 0) >= 1 })
                }
            }
        }
    }
}
#endif
