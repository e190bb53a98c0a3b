import Foundation
import HiveModel
import Testing

/// What the repository checks and enforces for each kind: named targets,
/// delete behaviour, and scoped unique names.
@Suite("References and unique keys")
struct ReferencesAndKeysTests {
    typealias Reference = ObjectReference

    @Test func bridge() {
        let inbound = ChainID()
        let outbound = ChainID()
        let bridge = Bridge(tenantId: "tenant-a", name: "web", inboundChainId: inbound, outboundChainId: outbound)
        #expect(bridge.references == [
            Reference(kind: .chain, id: inbound.uuid, field: "inboundChainId", onTargetDeletion: .refuse),
            Reference(kind: .chain, id: outbound.uuid, field: "outboundChainId", onTargetDeletion: .refuse),
        ])
        #expect(bridge.uniqueKeys == ["tenant-a/web"])
        #expect(Bridge(name: "web").references == [])
        #expect(Bridge(name: "web").uniqueKeys == ["-/web"])
        #expect(Bridge(name: "a/b").uniqueKeys == [UniqueKey.tenantScoped(tenantId: nil, name: "a/b")])
    }

    @Test func router() {
        let inbound = ChainID()
        let router = Router(tenantId: "tenant-a", name: "edge", inboundChainId: inbound)
        #expect(router.references == [Reference(kind: .chain, id: inbound.uuid, field: "inboundChainId", onTargetDeletion: .refuse)])
        #expect(router.uniqueKeys == ["tenant-a/edge"])
    }

    @Test func port() {
        let router = RouterID()
        let peer = PortID()
        let chain = ChainID()
        let groups = [PortGroupID(), PortGroupID()]
        var port = Port(router: router, name: "uplink", address: ip("10.0.0.1"), subnet: cidr("10.0.0.0/24"))
        port.peerId = peer
        port.outboundChainId = chain
        port.portGroupIds = groups
        #expect(port.references == [
            Reference(kind: .router, id: router.uuid, field: "deviceId", onTargetDeletion: .refuse),
            Reference(kind: .chain, id: chain.uuid, field: "outboundChainId", onTargetDeletion: .refuse),
            Reference(kind: .port, id: peer.uuid, field: "peerId", onTargetDeletion: .refuse),
            Reference(kind: .portGroup, id: groups[0].uuid, field: "portGroupIds[0]", onTargetDeletion: .refuse),
            Reference(kind: .portGroup, id: groups[1].uuid, field: "portGroupIds[1]", onTargetDeletion: .refuse),
        ])
        #expect(port.uniqueKeys == ["\(router)/uplink"])

        let bridge = BridgeID()
        let bridgePort = Port(bridge: bridge)
        #expect(bridgePort.references == [Reference(kind: .bridge, id: bridge.uuid, field: "deviceId", onTargetDeletion: .refuse)])
        #expect(bridgePort.uniqueKeys == [])
    }

    @Test func route() {
        let router = RouterID()
        let egress = PortID()
        let route = Route(routerId: router, destination: cidr("10.0.0.0/8"), egressPortId: egress)
        #expect(route.references == [
            Reference(kind: .router, id: router.uuid, field: "routerId", onTargetDeletion: .cascade),
            Reference(kind: .port, id: egress.uuid, field: "egressPortId", onTargetDeletion: .cascade),
        ])
        #expect(route.uniqueKeys == [])
        let blackhole = Route(routerId: router, destination: cidr("10.0.0.0/8"), kind: .blackhole)
        #expect(blackhole.references.count == 1)
    }

    @Test func chain() {
        let chain = Chain(tenantId: "t", name: "in", ruleIds: [RuleID()])
        #expect(chain.references == [])
        #expect(chain.uniqueKeys == ["t/in"])
    }

    @Test func rule() {
        let chain = ChainID()
        let target = ChainID()
        let inPort = PortID()
        let outPorts = [PortID(), PortID()]
        let inGroup = PortGroupID()
        let outGroup = PortGroupID()
        let sourceGroup = IPAddressGroupID()
        let destinationGroup = IPAddressGroupID()
        let rule = Rule(
            chainId: chain,
            conditions: RuleConditions(
                inPorts: Match([inPort]), outPorts: .not(outPorts), inPortGroup: Match(inGroup), outPortGroup: .not(outGroup),
                sourceAddressGroup: Match(sourceGroup), destinationAddressGroup: Match(destinationGroup)),
            action: .jump(target))
        #expect(rule.references == [
            Reference(kind: .chain, id: chain.uuid, field: "chainId", onTargetDeletion: .cascade),
            Reference(kind: .chain, id: target.uuid, field: "action.chainId", onTargetDeletion: .refuse),
            Reference(kind: .port, id: inPort.uuid, field: "conditions.inPorts[0]", onTargetDeletion: .refuse),
            Reference(kind: .port, id: outPorts[0].uuid, field: "conditions.outPorts[0]", onTargetDeletion: .refuse),
            Reference(kind: .port, id: outPorts[1].uuid, field: "conditions.outPorts[1]", onTargetDeletion: .refuse),
            Reference(kind: .portGroup, id: inGroup.uuid, field: "conditions.inPortGroup", onTargetDeletion: .refuse),
            Reference(kind: .portGroup, id: outGroup.uuid, field: "conditions.outPortGroup", onTargetDeletion: .refuse),
            Reference(kind: .ipAddressGroup, id: sourceGroup.uuid, field: "conditions.sourceAddressGroup", onTargetDeletion: .refuse),
            Reference(kind: .ipAddressGroup, id: destinationGroup.uuid, field: "conditions.destinationAddressGroup", onTargetDeletion: .refuse),
        ])
        #expect(rule.uniqueKeys == [])
        #expect(Rule(chainId: chain, action: .accept).references == [
            Reference(kind: .chain, id: chain.uuid, field: "chainId", onTargetDeletion: .cascade)
        ])
    }

    @Test func groups() {
        #expect(PortGroup(tenantId: "t", name: "web").references == [])
        #expect(PortGroup(tenantId: "t", name: "web").uniqueKeys == ["t/web"])
        #expect(IPAddressGroup(name: "office").references == [])
        #expect(IPAddressGroup(name: "office").uniqueKeys == ["-/office"])
    }

    @Test func host() {
        let host = Host(name: "compute-1")
        #expect(host.references == [])
        #expect(host.uniqueKeys == ["compute-1"])
    }

    @Test func tunnelZone() {
        let hosts = [HostID(), HostID()]
        let zone = TunnelZone(name: "underlay", members: [
            TunnelZoneMember(hostId: hosts[0], address: ip("192.0.2.1")),
            TunnelZoneMember(hostId: hosts[1], address: ip("192.0.2.2")),
        ])
        #expect(zone.references == [
            Reference(kind: .host, id: hosts[0].uuid, field: "members[0].hostId", onTargetDeletion: .refuse),
            Reference(kind: .host, id: hosts[1].uuid, field: "members[1].hostId", onTargetDeletion: .refuse),
        ])
        #expect(zone.uniqueKeys == ["underlay"])
    }

    @Test func binding() {
        let host: HostID = fixedID(8)
        let port: PortID = fixedID(3)
        let binding = Binding(hostId: host, portId: port, interfaceName: "tap0")
        #expect(binding.references == [
            Reference(kind: .host, id: host.uuid, field: "hostId", onTargetDeletion: .refuse),
            Reference(kind: .port, id: port.uuid, field: "portId", onTargetDeletion: .cascade),
        ])
        #expect(binding.uniqueKeys == [
            "host/00000000-0000-4000-8000-000000000008/interface/tap0",
            "port/00000000-0000-4000-8000-000000000003",
        ])
    }

    @Test func dhcpSubnet() {
        let bridge: BridgeID = fixedID(1)
        let subnet = DHCPSubnet(bridgeId: bridge, subnet: cidr("10.0.0.0/24"), rangeStart: ip("10.0.0.10"), rangeEnd: ip("10.0.0.20"))
        #expect(subnet.references == [Reference(kind: .bridge, id: bridge.uuid, field: "bridgeId", onTargetDeletion: .cascade)])
        #expect(subnet.uniqueKeys == ["bridge/00000000-0000-4000-8000-000000000001/subnet/10.0.0.0/24"])
        // An invalid non-network subnet still claims its network's key.
        var sloppy = subnet
        sloppy.subnet = cidr("10.0.0.7/24")
        #expect(sloppy.uniqueKeys == subnet.uniqueKeys)
    }

    @Test func portNameKeyUsesLowercaseDevice() throws {
        let device = try #require(UUID(uuidString: "3F2504E0-4F89-11D3-9A0C-0305E82C3301"))
        let port = Port(deviceId: device, deviceKind: .bridge, name: "p1")
        #expect(port.uniqueKeys == ["3f2504e0-4f89-11d3-9a0c-0305e82c3301/p1"])
    }
}
