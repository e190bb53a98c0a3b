import HiveModel
import Testing

@Suite("Host, tunnel zone and binding validation")
struct AdminObjectValidationTests {
    @Test(arguments: ["compute-1", "compute-1.rack2.example.com", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", String(repeating: "h", count: 253)])
    func acceptedHostNames(_ name: String) {
        #expect(flaggedFields(Host(name: name)) == [])
    }

    @Test(arguments: ["", "compute 1", "compute/1", "tab\there", "nl\n", String(repeating: "h", count: 254)])
    func refusedHostNames(_ name: String) {
        #expect(flaggedFields(Host(name: name)) == ["name"])
    }

    @Test func underlayAddressesAreUnicastAndDistinct() {
        var host = Host(name: "compute-1", underlayAddresses: [ip("192.0.2.10"), ip("127.0.0.2")])
        #expect(flaggedFields(host) == [])
        host.underlayAddresses += [ip("0.0.0.0"), ip("224.0.0.1"), ip("255.255.255.255"), ip("192.0.2.10")]
        #expect(flaggedFields(host) == ["underlayAddresses[2]", "underlayAddresses[3]", "underlayAddresses[4]", "underlayAddresses[5]"])
    }

    @Test func tunnelZoneMembers() {
        let first = HostID()
        let second = HostID()
        var zone = TunnelZone(name: "underlay", kind: .vxlan, members: [
            TunnelZoneMember(hostId: first, address: ip("192.0.2.1")),
            TunnelZoneMember(hostId: second, address: ip("192.0.2.2")),
        ])
        #expect(flaggedFields(zone) == [])

        zone.members.append(TunnelZoneMember(hostId: first, address: ip("192.0.2.3")))
        #expect(flaggedFields(zone) == ["members[2].hostId"])

        zone.members[2] = TunnelZoneMember(hostId: HostID(), address: ip("192.0.2.2"))
        #expect(flaggedFields(zone) == ["members[2].address"])

        zone.members[2] = TunnelZoneMember(hostId: HostID(), address: ip("239.1.1.1"))
        #expect(flaggedFields(zone) == ["members[2].address"])
        zone.members[2].address = ip("0.0.0.0")
        #expect(flaggedFields(zone) == ["members[2].address"])
        zone.members[2].address = ip("255.255.255.255")
        #expect(flaggedFields(zone) == ["members[2].address"])
    }

    @Test(arguments: ["tap0", "eth0.100", "veth-a_b", "abcdefghijklmno", "..."])
    func acceptedInterfaceNames(_ name: String) {
        #expect(flaggedFields(Binding(hostId: HostID(), portId: PortID(), interfaceName: name)) == [])
    }

    @Test(arguments: ["", "abcdefghijklmnop", "a/b", "eth0:1", "tap 0", "tap\t0", ".", "..", "tap\u{1}"])
    func refusedInterfaceNames(_ name: String) {
        #expect(flaggedFields(Binding(hostId: HostID(), portId: PortID(), interfaceName: name)) == ["interfaceName"])
    }

    @Test func interfaceNameErrorSaysWhatIsAccepted() {
        let errors = Binding(hostId: HostID(), portId: PortID(), interfaceName: "abcdefghijklmnop").validationErrors
        #expect(errors.map(\.description) == ["interfaceName: 'abcdefghijklmnop' is 16 bytes long (expected a Linux interface name: 1 to 15 bytes, no '/', ':' or whitespace, not '.' or '..')"])
    }
}
