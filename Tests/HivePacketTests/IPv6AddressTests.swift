import HivePacket
import Testing

@Suite("IPv6 addresses")
struct IPv6AddressTests {
    /// RFC 5952 canonical text round-trips.
    @Test(arguments: [
        "::", "::1", "2001:db8::1", "fe80::a:b:c:d", "2001:db8:0:1:1:1:1:1", "2001:0:0:1::1", "ff02::1:ff00:2",
        "1:2:3:4:5:6:7:8", "2001:db8::1:0:0:1",
    ])
    func canonicalTextRoundTrips(_ text: String) throws {
        let address = try #require(IPv6.Address(parsing: text))
        #expect(address.description == text)
    }

    @Test func nonCanonicalTextIsCanonicalized() throws {
        // RFC 5952 §4: lowercase, no leading zeros, longest zero run (first on
        // a tie) compressed, a single zero group not compressed.
        #expect(IPv6.Address(parsing: "2001:0DB8:0000:0000:0000:0000:0000:0001")?.description == "2001:db8::1")
        #expect(IPv6.Address(parsing: "2001:db8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1")
        #expect(IPv6.Address(parsing: "2001:db8:0:1:1:1:1:1")?.description == "2001:db8:0:1:1:1:1:1")
        let address = try #require(IPv6.Address(parsing: "2001:db8::ff00:42:8329"))
        #expect(address.high == 0x2001_0DB8_0000_0000 && address.low == 0x0000_FF00_0042_8329)
    }

    @Test(arguments: ["", ":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::", ":1::", "1::2:", "1:2:3:4:5:6:7::8", "::1.2.3.4"])
    func malformedTextIsRejected(_ text: String) {
        #expect(IPv6.Address(parsing: text) == nil)
    }

    @Test func multicastHelpers() throws {
        let target = try #require(IPv6.Address(parsing: "2001:db8::12:3456"))
        #expect(target.solicitedNodeMulticast.description == "ff02::1:ff12:3456")
        #expect(EthernetAddress(multicastFor: target.solicitedNodeMulticast).description == "33:33:ff:12:34:56")
        #expect(EthernetAddress(multicastFor: IPv4.Address(224, 129, 2, 3)).description == "01:00:5e:01:02:03")
        #expect(IPv6.Address(parsing: "fe80::1")!.isLinkLocal && !IPv6.Address(parsing: "fec0::1")!.isLinkLocal)
        #expect(IPv6.Address.allNodes.isMulticast && IPv6.Address.any.isUnspecified)
    }

    /// UDP over IPv6 with the pseudo-header of RFC 8200 §8.1, against the
    /// reference checksum over hand-assembled pseudo-header bytes.
    @Test func udpOverIPv6Checksum() throws {
        let source = try #require(IPv6.Address(parsing: "2001:db8::1"))
        let destination = try #require(IPv6.Address(parsing: "2001:db8::2"))
        var datagram: [UInt8] = []
        UDP.Header(sourcePort: 1111, destinationPort: 2222, payloadLength: 3).write(to: &datagram)
        datagram += [0x61, 0x62, 0x63]
        var pseudo: [UInt8] = []
        for address in [source, destination] {
            for word in [address.high, address.low] {
                pseudo += (0..<8).map { UInt8(truncatingIfNeeded: word >> (56 - 8 * UInt64($0))) }
            }
        }
        pseudo += [0, 0, 0, UInt8(datagram.count), 0, 0, 0, 17]
        let expected = referenceChecksum(pseudo + datagram)
        #expect(datagram.withUnsafeBytes { UDP.checksum(datagram: $0, source: source, destination: destination) } == expected)
        #expect(datagram.withUnsafeBytes { TCP.checksum(segment: $0, source: source, destination: destination) }
            == referenceChecksum(Array(pseudo.dropLast()) + [6] + datagram))
    }
}
