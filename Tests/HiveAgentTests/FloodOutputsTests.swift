import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import Testing
@testable import HiveAgent

/// How a flood's per-port outputs become tunnel packets: one per remote
/// host on the bridge's flood key where the flood reached every port the
/// ingress knows there, one per port where it left one out.
@Suite struct FloodOutputsTests {
    static let h2 = IPv4.Address(100, 64, 0, 2)
    static let h3 = IPv4.Address(100, 64, 0, 3)
    static let floodKey: UInt32 = 0x500

    /// vm1 on this host (key 1), vm2, vm3 and vm4 on h2 (keys 2-4), vm5 on h3 (key 5).
    struct Ports {
        let ids = (1...5).map { _ in PortID() }
        var locations: [PortID: PortLocation] {
            let (h2, h3) = (FloodOutputsTests.h2, FloodOutputsTests.h3)
            return [ids[0]: .local, ids[1]: .remote(h2), ids[2]: .remote(h2), ids[3]: .remote(h2), ids[4]: .remote(h3)]
        }
        /// The datapath outputs of a flood from a port elsewhere, one per port.
        var perPort: [FlowOutput] {
            let (h2, h3) = (FloodOutputsTests.h2, FloodOutputsTests.h3)
            return [.local(portKey: 1), .tunnel(host: h2, portKey: 2), .tunnel(host: h2, portKey: 3), .tunnel(host: h2, portKey: 4), .tunnel(host: h3, portKey: 5)]
        }
    }

    static func tunnelPackets(_ outputs: [FlowOutput]) -> Int { outputs.filter(\.isTunnel).count }

    @Test func threePortsOnOneHostAndOneOnAnotherAreTwoTunnelPackets() {
        let ports = Ports()
        let outputs = SimulationUpcalls.floodOutputs(ports.perPort, floodKey: Self.floodKey, exclusions: [], locations: ports.locations)
        #expect(outputs == [
            .local(portKey: 1), .tunnelFlood(host: Self.h2, floodKey: Self.floodKey), .tunnel(host: Self.h3, portKey: 5),
        ])
        #expect(Self.tunnelPackets(ports.perPort) == 4 && Self.tunnelPackets(outputs) == 2)
    }

    @Test func aHostWithAPortLeftOutKeepsOnePacketPerPortItGets() {
        let ports = Ports()
        // vm4's outbound chain dropped the frame: h2 must not deliver it to vm4.
        var perPort = ports.perPort
        perPort.removeAll { $0 == .tunnel(host: Self.h2, portKey: 4) }
        let exclusions = [FloodExclusion(port: ports.ids[3], reason: .ruleDropped(chain: ChainID(), rule: RuleID()))]
        let outputs = SimulationUpcalls.floodOutputs(perPort, floodKey: Self.floodKey, exclusions: exclusions, locations: ports.locations)
        #expect(outputs == perPort, "vm2 and vm3 by their own keys, vm5 by its own")

        // An excluded port elsewhere (unbound, or on h3) does not stop h2's flood packet.
        let elsewhere = [FloodExclusion(port: ports.ids[4], reason: .hostDown(ports.ids[4])), FloodExclusion(port: PortID(), reason: .hostDown(PortID()))]
        var withoutVM5 = ports.perPort
        withoutVM5.removeLast()
        let grouped = SimulationUpcalls.floodOutputs(withoutVM5, floodKey: Self.floodKey, exclusions: elsewhere, locations: ports.locations)
        #expect(grouped == [.local(portKey: 1), .tunnelFlood(host: Self.h2, floodKey: Self.floodKey)])
    }

    @Test func withoutAFloodKeyOrASecondPortOnAHostNothingIsGrouped() {
        let ports = Ports()
        #expect(SimulationUpcalls.floodOutputs(ports.perPort, floodKey: 0, exclusions: [], locations: ports.locations) == ports.perPort)
        let onePerHost: [FlowOutput] = [.local(portKey: 1), .tunnel(host: Self.h2, portKey: 2), .tunnel(host: Self.h3, portKey: 5)]
        #expect(SimulationUpcalls.floodOutputs(onePerHost, floodKey: Self.floodKey, exclusions: [], locations: ports.locations) == onePerHost)
    }
}
