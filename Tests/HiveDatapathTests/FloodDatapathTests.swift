#if os(Linux)
import Foundation
import HiveDatapath
import HivePacket
import HiveSandbox
import Testing

// Floods on the tunnel: a flood-key output leaves as one Geneve packet per
// host (VNI = the bridge's flood key, Hive's option = the ingress), from
// the flow cache like any output; a packet on a flood key is delivered to
// each local port of that bridge's set but the ingress, and an unknown
// flood key is counted like an unknown port key. h1 runs the datapath with
// three VMs; a plain UDP socket in h2 plays the other host.
@Suite(
    "Datapath floods on the tunnel", .serialized,
    .enabled(if: SandboxPrivileges.isRoot, "needs root: it creates network namespaces, veth pairs and AF_PACKET sockets"))
struct FloodDatapathTests {
    static let floodKey: UInt32 = 0x00_0500
    static let vm3Key: UInt32 = 3

    /// h1 with vm1, vm2 and vm3; h2 with no VM.
    static func network(prefix: String) -> SandboxNetwork {
        let h1 = SandboxNetwork.Host(name: prefix + "h1", underlayAddress: "100.64.0.1/24")
        let h2 = SandboxNetwork.Host(name: prefix + "h2", underlayAddress: "100.64.0.2/24")
        return SandboxNetwork(
            prefix: prefix, hosts: [h1, h2],
            vms: [("vm1", Topology.vm1MAC, "10.0.0.1"), ("vm2", Topology.vm2MAC, "10.0.0.2"), ("vm3", EthernetAddress(0x02, 0, 0, 0, 0, 3), "10.0.0.3")]
                .map { name, mac, address in
                    SandboxNetwork.VM(name: prefix + name, host: h1.name, hostInterface: prefix + name, mac: "\(mac)", address: address + "/24")
                })
    }

    static func geneve(vni: UInt32, ingress: UInt32?, _ frame: [UInt8]) -> [UInt8] {
        var packet: [UInt8] = []
        if let ingress {
            Geneve.Header(optionsLength: 8, vni: vni).write(to: &packet, options: [Geneve.HiveMetadata(ingressPortKey: ingress).option])
        } else {
            Geneve.Header(vni: vni).write(to: &packet)
        }
        return packet + frame
    }

    @Test func aFloodKeyIsDeliveredToEveryLocalPortOfItsSetButTheIngress() async throws {
        try await onOwnThread {
            try withNetwork(Self.network(prefix: uniqueDatapathPrefix())) { network in
                let handler = PolicyHandler(routes: [:])
                let peer = try UDPPeer(address: Topology.underlay2, port: 6081, namespace: network.hosts[1].name)
                let nics = try network.vms.map { try RawPort(interface: "eth0", namespace: $0.name) }
                let ports = zip([Topology.vm1Key, Topology.vm2Key, Self.vm3Key], network.vms).map { ($0, $1.hostInterface) }
                try withDatapath(host: network.hosts[0].name, underlay: Topology.underlay1, handler: handler, ports: ports) { datapath in
                    datapath.setFloodSets([Self.floodKey: [Topology.vm1Key, Topology.vm2Key, Self.vm3Key]])
                    // Another host's VM (port key 0x77) floods: all three get it.
                    let fromElsewhere = TestFrames.marked("hive-flood-all", to: .broadcast)
                    #expect(eventually {
                        _ = peer.send(Self.geneve(vni: Self.floodKey, ingress: 0x77, fromElsewhere), to: Topology.underlay1, port: 6081)
                        return nics[0].receive(within: .seconds(1)) { $0 == fromElsewhere } != nil
                    }, "the flood sets reached the datapath and vm1 got the flood")
                    #expect(nics[1].receive { $0 == fromElsewhere } != nil, "vm2 got the flood")
                    #expect(nics[2].receive { $0 == fromElsewhere } != nil, "vm3 got the flood")

                    // vm1 (key 1) is the ingress, bound here too (a port moving): vm2 and vm3 only.
                    let fromVM1 = TestFrames.marked("hive-flood-but-vm1", to: .broadcast)
                    #expect(peer.send(Self.geneve(vni: Self.floodKey, ingress: Topology.vm1Key, fromVM1), to: Topology.underlay1, port: 6081))
                    #expect(nics[1].receive { $0 == fromVM1 } != nil, "vm2 got the flood")
                    #expect(nics[2].receive { $0 == fromVM1 } != nil, "vm3 got the flood")
                    #expect(nics[0].receive(within: .milliseconds(500)) { $0 == fromVM1 } == nil, "the ingress did not get its own flood back")

                    // Without Hive's option (another implementation): every port of the set.
                    let bare = TestFrames.marked("hive-flood-bare", to: .broadcast)
                    #expect(peer.send(Self.geneve(vni: Self.floodKey, ingress: nil, bare), to: Topology.underlay1, port: 6081))
                    for nic in nics { #expect(nic.receive { $0 == bare } != nil) }

                    // An unknown flood key drops like an unknown port key; so does a set whose only port is the ingress.
                    // Counters are published every 50 ms: let them catch up first.
                    Thread.sleep(forTimeInterval: 0.2)
                    let before = datapath.statistics.drops[.unknownTunnelKey] ?? 0
                    let stray = TestFrames.marked("hive-flood-stray", to: .broadcast)
                    #expect(peer.send(Self.geneve(vni: Self.floodKey + 1, ingress: 0x77, stray), to: Topology.underlay1, port: 6081))
                    datapath.setFloodSets([Self.floodKey: [Topology.vm1Key]])
                    #expect(eventually {
                        _ = peer.send(Self.geneve(vni: Self.floodKey, ingress: Topology.vm1Key, stray), to: Topology.underlay1, port: 6081)
                        return (datapath.statistics.drops[.unknownTunnelKey] ?? 0) >= before + 2
                    }, "drops: \(datapath.statistics.drops)")
                    for nic in nics { #expect(nic.receive(within: .milliseconds(300)) { $0 == stray } == nil, "the stray flood reached no VM") }
                    #expect(handler.misses(where: \.isMarked) == 0, "tunnel floods are never simulated")
                    let sent = datapath.statistics.ports.values.reduce(0) { $0 + $1.sentPackets }
                    #expect(sent >= 3 + 2 + 3, "per-port counters count each delivery (\(sent))")
                }
            }
        }
    }

    @Test func aFloodKeyOutputLeavesOncePerHostFromTheFlowCache() async throws {
        try await onOwnThread {
            try withNetwork(Self.network(prefix: uniqueDatapathPrefix())) { network in
                // vm1's floods: vm2 here, and one packet for all of h2's ports of the bridge.
                let handler = PolicyHandler(routes: [
                    Topology.vm1Key: [.local(portKey: Topology.vm2Key), .tunnelFlood(host: Topology.underlay2, floodKey: Self.floodKey)],
                ])
                let peer = try UDPPeer(address: Topology.underlay2, port: 6081, namespace: network.hosts[1].name)
                let vm1 = try RawPort(interface: "eth0", namespace: network.vms[0].name)
                let vm2 = try RawPort(interface: "eth0", namespace: network.vms[1].name)
                let ports = [(Topology.vm1Key, network.vms[0].hostInterface), (Topology.vm2Key, network.vms[1].hostInterface)]
                try withDatapath(host: network.hosts[0].name, underlay: Topology.underlay1, handler: handler, ports: ports) { datapath in
                    var datagrams: [[UInt8]] = []
                    for number in 0..<3 {
                        let frame = TestFrames.marked("hive-flood-out-\(number)", to: .broadcast)
                        #expect(vm1.send(frame))
                        let datagram = try #require(peer.receive { $0.count >= 16 && Array($0.dropFirst(16)) == frame }, "flood \(number) did not reach h2")
                        datagrams.append(datagram)
                        #expect(vm2.receive { $0 == frame } != nil, "vm2, local, got flood \(number)")
                        // Exactly one datagram for h2 per frame.
                        #expect(peer.receive(within: .milliseconds(300)) { Array($0.dropFirst(16)) == frame } == nil, "a second copy of flood \(number) reached h2")
                    }
                    for datagram in datagrams {
                        let header = try Geneve.Header(parsing: datagram)
                        #expect(header.vni == Self.floodKey)
                        #expect(datagram.withUnsafeBytes { Geneve.HiveMetadata(in: $0, header: header) }?.ingressPortKey == Topology.vm1Key)
                    }
                    #expect(handler.misses(where: \.isMarked) == 1, "one miss; the later floods hit the flow")
                    #expect(eventually { datapath.statistics.flowHits >= 2 }, "flow hits: \(datapath.statistics.flowHits)")
                }
            }
        }
    }
}

extension FlowKey {
    /// A frame of `TestFrames.marked` (the VMs' own chatter is not).
    var isMarked: Bool { etherType == Ethernet.EtherType(0x88B5) }
}
#endif
