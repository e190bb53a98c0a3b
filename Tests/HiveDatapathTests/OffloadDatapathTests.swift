#if os(Linux)
import Foundation
import HiveDatapath
import HivePacket
import HiveSandbox
import HiveTestSupport
import Testing

/// The datapath with VMs that keep their default offloads: their TCP
/// stacks hand it 64 KB super-frames with partial checksums. Between two
/// local ports they go as they are (with their virtio-net header); across
/// the tunnel they are cut into segments with complete checksums, and the
/// other host joins consecutive segments back into super-frames. The
/// receiving VM's kernel verifies what it gets, and the transfer's digest
/// says every byte arrived.
@Suite(
    "Datapath with offloads", .serialized,
    .enabled(if: SandboxPrivileges.isRoot, "needs root: it creates network namespaces, veth pairs and AF_PACKET sockets"))
struct OffloadDatapathTests {
    static let server = HashingTransfer.server(port: 5001)

    static let client = HashingTransfer.client(port: 5001)

    /// Sends `bytes` from `client` to a server in `server` at `address`; the two digests.
    static func transfer(from client: String, to server: String, address: String, bytes: Int) throws -> (sent: String, received: String) {
        let pipe = Pipe()
        let listener = try NetworkNamespace.start(server, ["python3", "-c", Self.server], standardOutput: pipe.fileHandleForWriting)
        defer { if listener.isRunning { listener.terminate() } }
        let sent = try NetworkNamespace.run(client, ["python3", "-c", Self.client, address, "\(bytes)"], timeout: .seconds(60))
        listener.waitUntilExit()
        try pipe.fileHandleForWriting.close()
        let received = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (sent.trimmingCharacters(in: .whitespacesAndNewlines), received.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func superFramesCrossTheTunnelCutIntoValidSegments() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: true)
            try withNetwork(network) { network in
                let (vm1, vm2) = (network.vms[0], network.vms[1])
                let handler1 = PolicyHandler(routes: [Topology.vm1Key: [.tunnel(host: Topology.underlay2, portKey: Topology.vm2Key)]])
                let handler2 = PolicyHandler(routes: [Topology.vm2Key: [.tunnel(host: Topology.underlay1, portKey: Topology.vm1Key)]])
                try withDatapath(host: vm1.host, underlay: Topology.underlay1, handler: handler1, ports: [(Topology.vm1Key, vm1.hostInterface)]) { datapath1 in
                    try withDatapath(host: vm2.host, underlay: Topology.underlay2, handler: handler2, ports: [(Topology.vm2Key, vm2.hostInterface)]) { datapath2 in
                        try expectPing(from: vm1.name, to: Topology.vm2Address, count: 1, replies: 1)
                        // Drops before both ports were bound (a VM's IPv6 chatter) are not the transfer's.
                        let before = (datapath1.statistics.drops, datapath2.statistics.drops)
                        let digests = try Self.transfer(from: vm1.name, to: vm2.name, address: Topology.vm2Address, bytes: 4_000_000)
                        #expect(digests.sent.count == 64 && digests.sent == digests.received, "vm2 received what vm1 sent")
                        #expect(eventually { datapath1.statistics.superFramesSegmented > 0 })
                        let (one, two) = (datapath1.statistics, datapath2.statistics)
                        print("h1: \(one.superFramesReceived) super-frames read, \(one.superFramesSegmented) cut into \(one.segmentsSent) segments; h2: \(two.tunnelCoalescedBuffers) coalesced buffers, \(two.coalescedSegments) segments joined into \(two.coalescedSuperFrames) super-frames")
                        #expect(one.superFramesReceived > 0, "vm1's stack handed super-frames")
                        #expect(one.segmentsSent > one.superFramesSegmented, "each cut into several segments")
                        #expect(two.coalescedSuperFrames > 0 && two.coalescedSegments > two.coalescedSuperFrames, "h2 joined segments back into super-frames for vm2")
                        #expect(one.drops == before.0 && two.drops == before.1, "no drop: \(before) -> \(one.drops) \(two.drops)")
                    }
                }
            }
        }
    }

    @Test func superFramesBetweenLocalPortsKeepTheirHeader() async throws {
        try await onOwnThread {
            let network = Topology.network(prefix: uniqueDatapathPrefix(), twoHosts: false)
            try withNetwork(network) { network in
                let (vm1, vm2) = (network.vms[0], network.vms[1])
                let handler = PolicyHandler(routes: [
                    Topology.vm1Key: [.local(portKey: Topology.vm2Key)], Topology.vm2Key: [.local(portKey: Topology.vm1Key)],
                ])
                try withDatapath(host: vm1.host, underlay: Topology.underlay1, handler: handler, ports: Self.localPorts(network)) { datapath in
                    try expectPing(from: vm1.name, to: Topology.vm2Address, count: 1, replies: 1)
                    // Drops before both ports were bound (vm1's IPv6 chatter to a vm2 not bound yet) are not the transfer's.
                    let before = datapath.statistics.drops
                    let digests = try Self.transfer(from: vm1.name, to: vm2.name, address: Topology.vm2Address, bytes: 4_000_000)
                    #expect(digests.sent.count == 64 && digests.sent == digests.received, "vm2 received what vm1 sent")
                    #expect(eventually { datapath.statistics.superFramesReceived > 0 }, "vm1's stack handed super-frames")
                    let statistics = datapath.statistics
                    #expect(statistics.superFramesSegmented == 0, "nothing cut between local ports")
                    #expect(statistics.drops == before, "no drop: \(before) -> \(statistics.drops)")
                }
            }
        }
    }

    static func localPorts(_ network: SandboxNetwork) -> [(key: UInt32, interface: String)] {
        [(Topology.vm1Key, network.vms[0].hostInterface), (Topology.vm2Key, network.vms[1].hostInterface)]
    }
}
#endif
