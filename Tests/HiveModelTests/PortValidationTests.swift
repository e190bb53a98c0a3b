import HiveModel
import HivePacket
import Testing

@Suite("Port validation")
struct PortValidationTests {
    func routerPort(_ address: String?, _ subnet: String?) -> Port {
        var port = Port(router: RouterID(), address: ip("10.0.0.1"), subnet: cidr("10.0.0.0/24"))
        port.address = address.map(ip)
        port.subnet = subnet.map(cidr)
        return port
    }

    @Test(arguments: [
        ("10.0.0.1", "10.0.0.0/24"), ("10.0.0.254", "10.0.0.0/24"), ("192.168.7.9", "192.168.0.0/16"),
        ("10.0.0.0", "10.0.0.0/31"), ("10.0.0.1", "10.0.0.0/31"), ("10.0.0.7", "10.0.0.7/32"), ("10.0.0.1", "0.0.0.0/0"),
    ])
    func acceptedRouterAddressing(_ address: String, _ subnet: String) {
        #expect(flaggedFields(routerPort(address, subnet)) == [])
    }

    @Test(arguments: [
        ("10.0.1.5", "10.0.0.0/24", ["address"]),
        ("10.0.0.0", "10.0.0.0/24", ["address"]),
        ("10.0.0.255", "10.0.0.0/24", ["address"]),
        ("10.0.0.5", "10.0.0.1/24", ["subnet"]),
        ("10.0.0.2", "10.0.0.0/31", ["address"]),
    ])
    func refusedRouterAddressing(_ address: String, _ subnet: String, _ fields: [String]) {
        #expect(flaggedFields(routerPort(address, subnet)) == fields)
    }

    @Test func addressErrorsReadWell() {
        #expect(routerPort("10.0.1.5", "10.0.0.0/24").validationErrors.map(\.description)
            == ["address: '10.0.1.5' is outside the port's subnet 10.0.0.0/24"])
        #expect(routerPort("10.0.0.255", "10.0.0.0/24").validationErrors.map(\.description)
            == ["address: '10.0.0.255' is the broadcast address of the port's subnet 10.0.0.0/24 (expected 10.0.0.1 to 10.0.0.254)"])
        #expect(routerPort("10.0.0.5", "10.0.0.1/24").validationErrors.first?.problem.contains("network form 10.0.0.0/24") == true)
    }

    @Test func routerPortNeedsAddressAndSubnet() {
        #expect(flaggedFields(routerPort(nil, "10.0.0.0/24")) == ["address"])
        #expect(flaggedFields(routerPort("10.0.0.1", nil)) == ["subnet"])
        #expect(flaggedFields(routerPort(nil, nil)) == ["address", "subnet"])
        #expect(routerPort(nil, "10.0.0.0/24").validationErrors.first?.description.hasPrefix("address is required on a router port") == true)
    }

    @Test func bridgePortHasNoAddressing() {
        var port = Port(bridge: BridgeID())
        #expect(flaggedFields(port) == [])
        port.address = ip("10.0.0.1")
        #expect(flaggedFields(port) == ["address"])
        port.subnet = cidr("10.0.0.0/24")
        #expect(flaggedFields(port) == ["address", "subnet"])
        port.address = nil
        #expect(flaggedFields(port) == ["subnet"])
    }

    @Test(arguments: ["02:00:00:00:00:01", "00:1b:21:3c:4d:5e", "fe:ff:ff:ff:ff:fe"])
    func acceptedMACs(_ text: String) {
        var port = Port(bridge: BridgeID())
        port.mac = mac(text)
        #expect(flaggedFields(port) == [])
    }

    @Test(arguments: ["01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "03:00:00:00:00:00", "00:00:00:00:00:00"])
    func refusedMACs(_ text: String) {
        var port = Port(bridge: BridgeID())
        port.mac = mac(text)
        #expect(flaggedFields(port) == ["mac"])
    }

    @Test func peerMustBeAnotherPort() {
        var port = Port(bridge: BridgeID())
        port.peerId = PortID()
        #expect(flaggedFields(port) == [])
        port.peerId = port.id
        #expect(flaggedFields(port) == ["peerId"])
    }

    @Test(arguments: [(UInt32(0), true), (1, true), (0xFF_FFFF, true), (0x100_0000, false), (UInt32.max, false)])
    func tunnelKeyRange(_ key: UInt32, _ accepted: Bool) {
        var port = Port(bridge: BridgeID())
        port.tunnelKey = key
        #expect(flaggedFields(port) == (accepted ? [] : ["tunnelKey"]))
        let bridge = Bridge(name: "web", tunnelKey: key)
        #expect(flaggedFields(bridge) == (accepted ? [] : ["tunnelKey"]))
    }

    @Test func portGroupsListedOnce() {
        let group = PortGroupID()
        var port = Port(bridge: BridgeID())
        port.portGroupIds = [group, PortGroupID()]
        #expect(flaggedFields(port) == [])
        port.portGroupIds.append(group)
        #expect(flaggedFields(port) == ["portGroupIds[2]"])
    }

    @Test func generatedMACsAreLocalUnicastAndVary() {
        var generator = SeededGenerator(seed: 42)
        var seen = Set<EthernetAddress>()
        for _ in 0..<1000 {
            let address = Port.generatedMAC(using: &generator)
            #expect(address.isLocallyAdministered && !address.isMulticast)
            seen.insert(address)
        }
        #expect(seen.count == 1000)
        let random = Port.generatedMAC()
        #expect(random.isLocallyAdministered && !random.isMulticast)
    }

    @Test func deviceAccessors() {
        let bridge = BridgeID()
        let router = RouterID()
        #expect(Port(bridge: bridge).bridgeId == bridge)
        #expect(Port(bridge: bridge).routerId == nil)
        #expect(Port(router: router, address: ip("10.0.0.1"), subnet: cidr("10.0.0.0/24")).routerId == router)
        var port = Port(bridge: bridge)
        #expect(!port.isInterior)
        port.peerId = PortID()
        #expect(port.isInterior)
    }
}
