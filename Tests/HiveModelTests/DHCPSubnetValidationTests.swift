import HiveModel
import Testing

@Suite("DHCP subnet validation")
struct DHCPSubnetValidationTests {
    /// 10.0.0.0/24, pool .100-.200, gateway .1: valid as given.
    var subnet = DHCPSubnet(
        bridgeId: BridgeID(), subnet: cidr("10.0.0.0/24"), rangeStart: ip("10.0.0.100"), rangeEnd: ip("10.0.0.200"),
        gateway: ip("10.0.0.1"), dnsServers: [ip("10.0.0.2"), ip("192.0.2.53")],
        hostEntries: [DHCPHostEntry(mac: mac("02:00:00:00:00:09"), address: ip("10.0.0.9"), hostname: "db-1")])

    @Test func baseIsValid() {
        #expect(flaggedFields(subnet) == [])
    }

    @Test func subnetNeedsNetworkForm() {
        var subnet = subnet
        subnet.subnet = cidr("10.0.0.1/24")
        #expect(flaggedFields(subnet) == ["subnet"])
    }

    @Test func poolInsideSubnetAndOrdered() {
        var subnet = subnet
        subnet.rangeStart = ip("10.0.1.100")
        #expect(flaggedFields(subnet) == ["rangeStart", "rangeEnd"])  // outside, and now above the end
        subnet.rangeStart = ip("10.0.0.100")
        subnet.rangeEnd = ip("10.0.1.200")
        #expect(flaggedFields(subnet) == ["rangeEnd"])
        subnet.rangeStart = ip("10.0.0.150")
        subnet.rangeEnd = ip("10.0.0.120")
        #expect(flaggedFields(subnet) == ["rangeEnd"])
        #expect(subnet.validationErrors.first?.description == "rangeEnd: '10.0.0.120' is below rangeStart 10.0.0.150 (expected rangeStart <= rangeEnd)")
        subnet.rangeEnd = ip("10.0.0.150")
        #expect(flaggedFields(subnet) == [])
    }

    @Test func poolExcludesNetworkAndBroadcast() {
        var subnet = subnet
        subnet.gateway = nil
        subnet.rangeStart = ip("10.0.0.0")
        #expect(flaggedFields(subnet) == ["rangeStart"])
        subnet.rangeStart = ip("10.0.0.1")
        subnet.rangeEnd = ip("10.0.0.255")
        #expect(flaggedFields(subnet) == ["rangeEnd"])
        subnet.rangeEnd = ip("10.0.0.254")
        subnet.hostEntries = []
        #expect(flaggedFields(subnet) == [])
    }

    @Test func gatewayInsideSubnetOutsidePool() {
        var subnet = subnet
        subnet.gateway = ip("10.0.0.254")
        #expect(flaggedFields(subnet) == [])
        subnet.gateway = ip("10.0.1.1")
        #expect(flaggedFields(subnet) == ["gateway"])
        subnet.gateway = ip("10.0.0.150")
        #expect(flaggedFields(subnet) == ["gateway"])
        subnet.gateway = ip("10.0.0.100")
        #expect(flaggedFields(subnet) == ["gateway"])
        subnet.gateway = ip("10.0.0.255")
        #expect(flaggedFields(subnet) == ["gateway"])
    }

    @Test func dnsServersUnicastAndDistinct() {
        var subnet = subnet
        subnet.dnsServers.append(ip("224.0.0.251"))
        #expect(flaggedFields(subnet) == ["dnsServers[2]"])
        subnet.dnsServers[2] = ip("10.0.0.2")
        #expect(flaggedFields(subnet) == ["dnsServers[2]"])
    }

    @Test(arguments: [(UInt16?.none, true), (68, true), (1500, true), (9000, true), (67, false), (9001, false), (0, false)])
    func mtuRange(_ mtu: UInt16?, _ accepted: Bool) {
        var subnet = subnet
        subnet.mtu = mtu
        #expect(flaggedFields(subnet) == (accepted ? [] : ["mtu"]))
    }

    @Test(arguments: [(UInt32(60), true), (86_400, true), (59, false), (0, false)])
    func leaseAtLeastAMinute(_ seconds: UInt32, _ accepted: Bool) {
        var subnet = subnet
        subnet.leaseSeconds = seconds
        #expect(flaggedFields(subnet) == (accepted ? [] : ["leaseSeconds"]))
    }

    @Test func hostEntryAddresses() {
        var subnet = subnet
        subnet.hostEntries.append(DHCPHostEntry(mac: mac("02:00:00:00:00:0a"), address: ip("10.0.0.150")))
        #expect(flaggedFields(subnet) == [])  // a reservation may sit inside the pool
        subnet.hostEntries[1].address = ip("10.0.5.5")
        #expect(flaggedFields(subnet) == ["hostEntries[1].address"])
        subnet.hostEntries[1].address = ip("10.0.0.1")
        #expect(flaggedFields(subnet) == ["hostEntries[1].address"])
        subnet.hostEntries[1].address = ip("10.0.0.9")
        #expect(flaggedFields(subnet) == ["hostEntries[1].address"])
        subnet.hostEntries[1].address = ip("10.0.0.0")
        #expect(flaggedFields(subnet) == ["hostEntries[1].address"])
    }

    @Test func hostEntryMACs() {
        var subnet = subnet
        subnet.hostEntries.append(DHCPHostEntry(mac: mac("02:00:00:00:00:09"), address: ip("10.0.0.10")))
        #expect(flaggedFields(subnet) == ["hostEntries[1].mac"])
        subnet.hostEntries[1].mac = mac("01:00:5e:00:00:01")
        #expect(flaggedFields(subnet) == ["hostEntries[1].mac"])
    }

    @Test(arguments: ["db", "db-1", "A1", "x", String(repeating: "a", count: 63)])
    func acceptedHostnames(_ hostname: String) {
        var subnet = subnet
        subnet.hostEntries[0].hostname = hostname
        #expect(flaggedFields(subnet) == [])
    }

    @Test(arguments: ["", "-db", "db-", "db_1", "db.example", "dé", "db 1", String(repeating: "a", count: 64)])
    func refusedHostnames(_ hostname: String) {
        var subnet = subnet
        subnet.hostEntries[0].hostname = hostname
        #expect(flaggedFields(subnet) == ["hostEntries[0].hostname"])
    }

    @Test func smallSubnetsUseEveryAddress() {
        let pointToPoint = DHCPSubnet(bridgeId: BridgeID(), subnet: cidr("10.0.0.0/31"), rangeStart: ip("10.0.0.0"), rangeEnd: ip("10.0.0.1"))
        #expect(flaggedFields(pointToPoint) == [])
    }
}
