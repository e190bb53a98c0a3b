import HivePacket
import HiveSimulation
import Testing

/// The datapath's `FlowMask` takes the simulation's `FlowFields` bit for bit.
@Suite struct FlowMaskTests {
    @Test func everyKeyFieldHasTheSameBitAndName() {
        for (field, name) in FlowFields.all where field != .connectionState {
            let mask = FlowMask(rawValue: field.rawValue)
            #expect(mask.names == [name], "\(name)")
            #expect(FlowMask.exact.contains(mask), "\(name) is part of an exact match")
        }
        let keyFields = FlowFields.all.map(\.0).filter { $0 != .connectionState }.reduce(FlowFields()) { $0.union($1) }
        #expect(FlowMask.exact.rawValue == keyFields.rawValue, "no other bit")
    }

    @Test func maskingKeepsOnlyTheFieldsAsked() throws {
        var key = FlowKey(inPort: 4)
        key.ethernetSource = EthernetAddress(0x0200_0000_0001)
        key.ethernetDestination = EthernetAddress(0x0200_0000_0002)
        key.etherType = .ipv4
        key.ipv4Source = IPv4.Address(10, 0, 1, 11)
        key.ipv4Destination = IPv4.Address(10, 0, 2, 12)
        key.ipProtocol = .tcp
        key.sourcePort = 40_000
        key.destinationPort = 80
        key.tcpFlags = [.syn]
        key.timeToLive = 64
        key.outerVLANID = 7
        #expect(key.masked(by: .exact) == key)
        let routed = key.masked(by: [.inPort, .ethernetDestination, .etherType, .ipv4Destination, .timeToLive])
        var expected = FlowKey(inPort: 4)
        expected.ethernetDestination = key.ethernetDestination
        expected.etherType = .ipv4
        expected.ipv4Destination = key.ipv4Destination
        expected.timeToLive = 64
        expected.outerVLANID = 7  // always matched
        #expect(routed == expected)
    }
}
