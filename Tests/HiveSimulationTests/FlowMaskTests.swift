import HivePacket
import HiveSimulation
import Testing

/// The datapath's `FlowMask` takes the simulation's `FlowFields` bit for bit.
@Suite struct FlowMaskTests {
    @Test func everyKeyFieldHasTheSameBitAndName() {
        for (field, name) in FlowFields.all where field != .connectionState {
            let mask = FlowMask(rawValue: field.rawValue)
            #expect(mask.names == [name], "\(name)")
            // The flag class is a part of `tcpFlags`, not a field of its own.
            #expect(FlowMask.exact.contains(mask) == (field != .tcpFlagClass), "\(name) is part of an exact match")
        }
        let keyFields = FlowFields.all.map(\.0).filter { $0 != .connectionState && $0 != .tcpFlagClass }.reduce(FlowFields()) { $0.union($1) }
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

    /// A tracked connection's flow: PSH, URG and ECN bits do not make it miss; SYN, FIN, RST and ACK do.
    @Test func theTCPFlagClassKeepsWhatConnectionTrackingReads() {
        var key = FlowKey(inPort: 4)
        key.etherType = .ipv4
        key.ipProtocol = .tcp
        key.sourcePort = 40_000
        key.destinationPort = 80
        key.tcpFlags = [.ack, .psh, .ece]
        let tracked = FlowMask.exact.subtracting(.tcpFlags).union(.tcpFlagClass)
        var ack = key
        ack.tcpFlags = [.ack]
        #expect(key.masked(by: tracked) == ack.masked(by: tracked), "PSH and ECE ride the ACK's flow")
        #expect(key.masked(by: tracked).tcpFlags == [.ack])
        for other: TCP.Flags in [[.ack, .fin], [.ack, .rst], [.syn], [.syn, .ack], []] {
            var packet = key
            packet.tcpFlags = other
            #expect(packet.masked(by: tracked) != ack.masked(by: tracked), "\(other) is not the ACK's")
        }
        #expect(key.masked(by: FlowMask.exact.union(.tcpFlagClass)) == key, "all the flags when tcp_flags is matched")
    }
}
