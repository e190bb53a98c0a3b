import HiveModel
import HivePacket
import Testing

/// Stored documents are read by other Hive versions and by the etcd CLI, so
/// field names and shapes are a contract: these tests pin exact bytes.
@Suite("JSON contract")
struct JSONContractTests {
    let bridgeID: BridgeID = fixedID(1)
    let routerID: RouterID = fixedID(2)
    let portID: PortID = fixedID(3)
    let chainID: ChainID = fixedID(4)
    let otherChainID: ChainID = fixedID(5)
    let ruleID: RuleID = fixedID(6)
    let groupID: PortGroupID = fixedID(7)
    let hostID: HostID = fixedID(8)

    @Test func bridgeWithDefaults() throws {
        let bridge = Bridge(id: bridgeID, tenantId: "tenant-a", name: "web")
        #expect(try jsonString(bridge) == #"{"adminStateUp":true,"arpSuppression":true,"id":"00000000-0000-4000-8000-000000000001","name":"web","tenantId":"tenant-a","tunnelKey":0}"#)
    }

    @Test func bridgeDecodesWithDefaultedFieldsOmitted() throws {
        let bridge = try decode(Bridge.self, #"{"id":"00000000-0000-4000-8000-000000000001","name":"web"}"#)
        #expect(bridge == Bridge(id: bridgeID, name: "web"))
        #expect(bridge.adminStateUp)
        #expect(bridge.arpSuppression)
        #expect(bridge.tunnelKey == 0)
        #expect(bridge.tenantId == nil)
    }

    @Test func bridgeKeepsNonDefaultValues() throws {
        let bridge = try decode(Bridge.self, #"{"id":"00000000-0000-4000-8000-000000000001","name":"web","adminStateUp":false,"arpSuppression":false,"tunnelKey":77,"inboundChainId":"00000000-0000-4000-8000-000000000004"}"#)
        #expect(bridge == Bridge(id: bridgeID, name: "web", adminStateUp: false, inboundChainId: chainID, arpSuppression: false, tunnelKey: 77))
    }

    @Test func routerPort() throws {
        let port = Port(
            id: portID, tenantId: "tenant-a", router: routerID, name: "uplink",
            address: ip("10.0.0.1"), subnet: cidr("10.0.0.0/24"), mac: mac("02:00:00:00:00:01"))
        #expect(try jsonString(port) == #"{"address":"10.0.0.1","adminStateUp":true,"deviceId":"00000000-0000-4000-8000-000000000002","deviceKind":"router","id":"00000000-0000-4000-8000-000000000003","mac":"02:00:00:00:00:01","name":"uplink","portGroupIds":[],"subnet":"10.0.0.0/24","tenantId":"tenant-a","tunnelKey":0}"#)
    }

    @Test func bridgePortDecodesWithDefaultsAndUppercaseDevice() throws {
        let port = try decode(Port.self, #"{"id":"00000000-0000-4000-8000-000000000003","deviceId":"00000000-0000-4000-8000-00000000000A","deviceKind":"bridge"}"#)
        #expect(port.deviceId == (fixedID(10) as BridgeID).uuid)
        #expect(port.bridgeId == fixedID(10))
        #expect(port.routerId == nil)
        #expect(port.adminStateUp)
        #expect(port.portGroupIds.isEmpty)
        #expect(port.tunnelKey == 0)
        #expect(port.name == nil && port.address == nil && port.mac == nil && port.peerId == nil)
        #expect(try jsonString(port).contains(#""deviceId":"00000000-0000-4000-8000-00000000000a""#))
    }

    @Test func routeWithDefaults() throws {
        let route = Route(id: fixedID(9), routerId: routerID, destination: cidr("0.0.0.0/0"), nextHopGateway: ip("192.0.2.1"), egressPortId: portID)
        #expect(try jsonString(route) == #"{"destination":"0.0.0.0/0","egressPortId":"00000000-0000-4000-8000-000000000003","id":"00000000-0000-4000-8000-000000000009","kind":"normal","nextHopGateway":"192.0.2.1","routerId":"00000000-0000-4000-8000-000000000002","source":"0.0.0.0/0","weight":100}"#)
        let sparse = try decode(Route.self, #"{"id":"00000000-0000-4000-8000-000000000009","routerId":"00000000-0000-4000-8000-000000000002","destination":"0.0.0.0/0","nextHopGateway":"192.0.2.1","egressPortId":"00000000-0000-4000-8000-000000000003"}"#)
        #expect(sparse == route)
        #expect(sparse.source == Route.anySource && sparse.weight == 100 && sparse.kind == .normal)
    }

    @Test func ruleWithConditionsAndJump() throws {
        let rule = Rule(
            id: ruleID, chainId: chainID,
            conditions: RuleConditions(
                inPortGroup: Match(groupID), ipProtocol: Match(6), sourcePrefix: .not(cidr("10.0.0.0/8")),
                destinationPorts: Match(PortRange(start: 80, end: 443)), connectionState: Match(.new)),
            action: .jump(otherChainID))
        #expect(try jsonString(rule) == #"{"action":{"chainId":"00000000-0000-4000-8000-000000000005","type":"jump"},"chainId":"00000000-0000-4000-8000-000000000004","conditions":{"connectionState":{"value":"new"},"destinationPorts":{"value":{"end":443,"start":80}},"inPortGroup":{"value":"00000000-0000-4000-8000-000000000007"},"ipProtocol":{"value":6},"sourcePrefix":{"invert":true,"value":"10.0.0.0/8"}},"id":"00000000-0000-4000-8000-000000000006"}"#)
    }

    @Test func ruleDecodesWithConditionsOmitted() throws {
        let rule = try decode(Rule.self, #"{"id":"00000000-0000-4000-8000-000000000006","chainId":"00000000-0000-4000-8000-000000000004","action":{"type":"drop"}}"#)
        #expect(rule == Rule(id: ruleID, chainId: chainID, action: .drop))
        #expect(rule.conditions.isEmpty)
        #expect(try jsonString(rule) == #"{"action":{"type":"drop"},"chainId":"00000000-0000-4000-8000-000000000004","conditions":{},"id":"00000000-0000-4000-8000-000000000006"}"#)
    }

    @Test(arguments: [
        (RuleAction.accept, #"{"type":"accept"}"#), (.drop, #"{"type":"drop"}"#), (.reject, #"{"type":"reject"}"#),
        (.return, #"{"type":"return"}"#), (.continue, #"{"type":"continue"}"#),
        (.jump(fixedID(5)), #"{"chainId":"00000000-0000-4000-8000-000000000005","type":"jump"}"#),
    ])
    func ruleActions(_ action: RuleAction, _ json: String) throws {
        #expect(String(decoding: try ModelJSON.encode(action), as: UTF8.self) == json)
        #expect(try ModelJSON.decode(RuleAction.self, from: Array(json.utf8)) == action)
    }

    @Test func matchOmitsInvertWhenFalseAndDefaultsIt() throws {
        #expect(String(decoding: try ModelJSON.encode(Match<UInt8>(17)), as: UTF8.self) == #"{"value":17}"#)
        #expect(String(decoding: try ModelJSON.encode(Match<UInt8>.not(17)), as: UTF8.self) == #"{"invert":true,"value":17}"#)
        #expect(try ModelJSON.decode(Match<UInt8>.self, from: Array(#"{"value":17}"#.utf8)) == Match(17))
        #expect(try ModelJSON.decode(Match<UInt8>.self, from: Array(#"{"value":17,"invert":false}"#.utf8)) == Match(17))
        #expect(try ModelJSON.decode(Match<UInt8>.self, from: Array(#"{"value":17,"invert":true}"#.utf8)) == .not(17))
    }

    @Test func tunnelZoneAndBinding() throws {
        let zone = TunnelZone(id: fixedID(11), name: "underlay", members: [TunnelZoneMember(hostId: hostID, address: ip("192.0.2.10"))])
        #expect(try jsonString(zone) == #"{"id":"00000000-0000-4000-8000-00000000000b","kind":"geneve","members":[{"address":"192.0.2.10","hostId":"00000000-0000-4000-8000-000000000008"}],"name":"underlay"}"#)
        let sparse = try decode(TunnelZone.self, #"{"id":"00000000-0000-4000-8000-00000000000b","name":"underlay"}"#)
        #expect(sparse.kind == .geneve && sparse.members.isEmpty)

        let binding = Binding(id: fixedID(12), hostId: hostID, portId: portID, interfaceName: "tap0")
        #expect(try jsonString(binding) == #"{"hostId":"00000000-0000-4000-8000-000000000008","id":"00000000-0000-4000-8000-00000000000c","interfaceName":"tap0","portId":"00000000-0000-4000-8000-000000000003"}"#)
    }

    @Test func hostAndGroups() throws {
        let host = Host(id: hostID, name: "compute-1", underlayAddresses: [ip("192.0.2.10")])
        #expect(try jsonString(host) == #"{"id":"00000000-0000-4000-8000-000000000008","name":"compute-1","underlayAddresses":["192.0.2.10"]}"#)
        #expect(try decode(Host.self, #"{"id":"00000000-0000-4000-8000-000000000008","name":"compute-1"}"#).underlayAddresses == [])

        let group = PortGroup(id: groupID, tenantId: "t", name: "web")
        #expect(try jsonString(group) == #"{"id":"00000000-0000-4000-8000-000000000007","name":"web","stateful":false,"tenantId":"t"}"#)
        #expect(try decode(PortGroup.self, #"{"id":"00000000-0000-4000-8000-000000000007","name":"web"}"#).stateful == false)

        let addresses = IPAddressGroup(id: fixedID(13), name: "office", addresses: [cidr("198.51.100.0/24")])
        #expect(try jsonString(addresses) == #"{"addresses":["198.51.100.0/24"],"id":"00000000-0000-4000-8000-00000000000d","name":"office"}"#)
        #expect(try decode(IPAddressGroup.self, #"{"id":"00000000-0000-4000-8000-00000000000d","name":"office"}"#).addresses == [])

        let chain = Chain(id: chainID, name: "in", ruleIds: [ruleID])
        #expect(try jsonString(chain) == #"{"id":"00000000-0000-4000-8000-000000000004","name":"in","ruleIds":["00000000-0000-4000-8000-000000000006"]}"#)
        #expect(try decode(Chain.self, #"{"id":"00000000-0000-4000-8000-000000000004","name":"in"}"#).ruleIds == [])
    }

    @Test func dhcpSubnet() throws {
        let subnet = DHCPSubnet(
            id: fixedID(14), bridgeId: bridgeID, subnet: cidr("10.0.0.0/24"),
            rangeStart: ip("10.0.0.100"), rangeEnd: ip("10.0.0.200"), gateway: ip("10.0.0.1"),
            dnsServers: [ip("10.0.0.2")],
            hostEntries: [DHCPHostEntry(mac: mac("02:00:00:00:00:09"), address: ip("10.0.0.9"), hostname: "db")],
            mtu: 1450)
        #expect(try jsonString(subnet) == #"{"bridgeId":"00000000-0000-4000-8000-000000000001","dnsServers":["10.0.0.2"],"enabled":true,"gateway":"10.0.0.1","hostEntries":[{"address":"10.0.0.9","hostname":"db","mac":"02:00:00:00:00:09"}],"hostRoutes":[],"id":"00000000-0000-4000-8000-00000000000e","leaseSeconds":86400,"mtu":1450,"rangeEnd":"10.0.0.200","rangeStart":"10.0.0.100","subnet":"10.0.0.0/24"}"#)
        var routed = subnet
        routed.hostEntries = []
        routed.hostRoutes = [DHCPHostRoute(destination: cidr("10.9.0.0/16"), nextHop: ip("10.0.0.254"))]
        routed.domainName = "example.internal"
        #expect(try jsonString(routed).contains(#""domainName":"example.internal""#))
        #expect(try jsonString(routed).contains(#""hostRoutes":[{"destination":"10.9.0.0/16","nextHop":"10.0.0.254"}]"#))
        let sparse = try decode(DHCPSubnet.self, #"{"id":"00000000-0000-4000-8000-00000000000e","bridgeId":"00000000-0000-4000-8000-000000000001","subnet":"10.0.0.0/24","rangeStart":"10.0.0.100","rangeEnd":"10.0.0.200"}"#)
        #expect(sparse.leaseSeconds == 86400 && sparse.enabled && sparse.dnsServers.isEmpty && sparse.hostEntries.isEmpty)
        #expect(sparse.gateway == nil && sparse.mtu == nil && sparse.hostRoutes.isEmpty && sparse.domainName == nil)
    }

    @Test func bridgePortAddresses() throws {
        let port = Port(
            id: fixedID(15), bridge: bridgeID, name: "vm1", mac: mac("02:00:00:00:00:0a"), fixedIPs: [ip("10.0.0.10"), Port.automaticAddress],
            allowedAddressPairs: [AllowedAddressPair(address: ip("10.0.0.250")),
                                  AllowedAddressPair(prefix: cidr("10.9.0.0/16"), mac: mac("02:00:00:00:00:99"))])
        let text = try jsonString(port)
        #expect(text.contains(#""fixedIPs":["10.0.0.10","auto"]"#))
        #expect(text.contains(#""allowedAddressPairs":[{"address":"10.0.0.250"},{"address":"10.9.0.0/16","mac":"02:00:00:00:00:99"}]"#))
        #expect(text.contains(#""portSecurity":true"#))
        #expect(try decode(Port.self, text) == port)
        let sparse = try decode(Port.self, #"{"id":"00000000-0000-4000-8000-00000000000f","deviceId":"00000000-0000-4000-8000-000000000001","deviceKind":"bridge"}"#)
        #expect(sparse.portSecurity && sparse.fixedIPs.isEmpty && sparse.allowedAddressPairs.isEmpty && sparse.macLimit == nil)
        #expect(throws: (any Error).self) {
            try decode(Port.self, #"{"id":"00000000-0000-4000-8000-00000000000f","deviceId":"00000000-0000-4000-8000-000000000001","deviceKind":"bridge","fixedIPs":["0.0.0.0"]}"#)
        }
        var invalid = port
        invalid.allowedAddressPairs = [AllowedAddressPair(prefix: cidr("10.9.0.1/16"))]
        invalid.macLimit = 0
        #expect(throws: ModelError.self) { try invalid.validate() }
    }

    @Test func nullMeansDefault() throws {
        let bridge = try decode(Bridge.self, #"{"id":"00000000-0000-4000-8000-000000000001","name":"web","adminStateUp":null,"tenantId":null}"#)
        #expect(bridge.adminStateUp && bridge.tenantId == nil)
    }

    @Test func equalObjectsGiveEqualBytes() throws {
        let first = Bridge(id: bridgeID, tenantId: "t", name: "a", tunnelKey: 5)
        var second = Bridge(id: bridgeID, name: "b")
        second.tenantId = "t"
        second.name = "a"
        second.tunnelKey = 5
        #expect(try first.jsonBytes() == second.jsonBytes())
    }
}
