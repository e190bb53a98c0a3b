import Testing
import HivePacket

@Suite("Addresses")
struct AddressTests {
    @Test(arguments: ["0.0.0.0", "10.0.0.1", "192.168.255.254", "255.255.255.255"])
    func ipv4RoundTrips(_ text: String) throws {
        let address = try #require(IPv4.Address(parsing: text))
        #expect(address.description == text)
    }

    @Test(arguments: ["", "1", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1..2.3", "a.b.c.d", "1.2.3.4 ", "-1.2.3.4", "1.2.3.4/24"])
    func ipv4RejectsMalformed(_ text: String) {
        #expect(IPv4.Address(parsing: text) == nil)
    }

    @Test func prefixesMaskAndContain() throws {
        let prefix = try #require(IPv4.Prefix(parsing: "10.1.2.3/16"))
        #expect(prefix.description == "10.1.2.3/16")
        #expect(prefix.network.description == "10.1.0.0/16")
        #expect(!prefix.isNetwork)
        #expect(prefix.network.isNetwork)
        #expect(prefix.broadcast == IPv4.Address(10, 1, 255, 255))
        #expect(prefix.contains(IPv4.Address(10, 1, 200, 1)))
        #expect(!prefix.contains(IPv4.Address(10, 2, 0, 1)))
        #expect(prefix.contains(try #require(IPv4.Prefix(parsing: "10.1.4.0/24"))))
        #expect(!prefix.contains(try #require(IPv4.Prefix(parsing: "10.0.0.0/8"))))
        #expect(IPv4.Prefix(parsing: "0.0.0.0/0")?.contains(IPv4.Address(1, 2, 3, 4)) == true)
        #expect(IPv4.Prefix(parsing: "10.0.0.1")?.length == 32)
    }

    @Test(arguments: ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0/8", "10.0.0.0/8/8", "10.0.0.0/ 8", "/8"])
    func prefixRejectsMalformed(_ text: String) {
        #expect(IPv4.Prefix(parsing: text) == nil)
    }

    @Test func macParsesAndClassifies() throws {
        let mac = try #require(EthernetAddress(parsing: "02:00:5E:10:00:0a"))
        #expect(mac.description == "02:00:5e:10:00:0a")
        #expect(mac.isLocallyAdministered)
        #expect(!mac.isMulticast)
        #expect(EthernetAddress(parsing: "02-00-5e-10-00-0a") == mac)
        #expect(EthernetAddress.broadcast.isMulticast && EthernetAddress.broadcast.isBroadcast)
        #expect(EthernetAddress(parsing: "01:00:5e:00:00:01")?.isMulticast == true)
    }

    @Test(arguments: ["", "02:00:5e:10:00", "02:00:5e:10:00:0a:01", "02:00-5e:10:00:0a", "2:0:5e:10:0:a", "02:00:5e:10:00:0g", "0200.5e10.000a"])
    func macRejectsMalformed(_ text: String) {
        #expect(EthernetAddress(parsing: text) == nil)
    }
}
