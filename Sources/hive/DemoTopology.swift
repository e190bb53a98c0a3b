import HiveModel
import HivePacket
import HiveStore

/// The topology `hive topology demo` stores: tenant "demo" with two bridges
/// joined by a router, a firewall chain on a web server's port, and two
/// hosts in a Geneve tunnel zone with one VM port bound on each.
enum DemoTopology {
    static let tenant = "demo"

    static func create(in repository: TopologyRepository) async throws {
        let blue = try await repository.create(Bridge(tenantId: tenant, name: "blue")).object
        let green = try await repository.create(Bridge(tenantId: tenant, name: "green")).object
        let router = try await repository.create(Router(tenantId: tenant, name: "edge")).object

        for (bridge, network, gateway) in [(blue, "10.0.1.0/24", "10.0.1.1"), (green, "10.0.2.0/24", "10.0.2.1")] {
            let subnet = IPv4.Prefix(parsing: network)!
            let routerPort = try await repository.create(Port(
                tenantId: tenant, router: router.id, name: "to-\(bridge.name)",
                address: IPv4.Address(parsing: gateway)!, subnet: subnet, mac: Port.generatedMAC())).object
            let uplink = try await repository.create(Port(tenantId: tenant, bridge: bridge.id, name: "uplink")).object
            _ = try await repository.link(routerPort.id, uplink.id)
            _ = try await repository.create(Route(
                tenantId: tenant, routerId: router.id, destination: subnet, egressPortId: routerPort.id))
            _ = try await repository.create(DHCPSubnet(
                tenantId: tenant, bridgeId: bridge.id, subnet: subnet,
                rangeStart: IPv4.Address(subnet.address.value + 100), rangeEnd: IPv4.Address(subnet.address.value + 199),
                gateway: IPv4.Address(parsing: gateway)!, dnsServers: [IPv4.Address(parsing: gateway)!]))
        }

        let web = try await repository.create(Chain(tenantId: tenant, name: "web-in")).object
        _ = try await repository.create(Rule(tenantId: tenant, chainId: web.id, conditions: RuleConditions(
            connectionState: Match(.established)), action: .accept))
        _ = try await repository.create(Rule(tenantId: tenant, chainId: web.id, conditions: RuleConditions(
            ipProtocol: Match(IPProtocolNumber.tcp), destinationPorts: Match(PortRange(80))), action: .accept))
        _ = try await repository.create(Rule(tenantId: tenant, chainId: web.id, conditions: RuleConditions(
            ipProtocol: Match(IPProtocolNumber.icmp)), action: .accept))
        _ = try await repository.create(Rule(tenantId: tenant, chainId: web.id, action: .drop))

        // Security groups: vm-blue is an "app" server, vm-db takes PostgreSQL from the app servers only.
        let app = try await repository.create(SecurityGroup(tenantId: tenant, name: "app")).object
        let db = try await repository.create(SecurityGroup(tenantId: tenant, name: "db")).object
        _ = try await repository.create(SecurityGroupRule(
            tenantId: tenant, securityGroupId: db.id, direction: .ingress, ipProtocol: IPProtocolNumber.tcp, ports: PortRange(5432),
            remoteGroupId: app.id))

        // VM ports as a cloud makes them: a MAC for the VM's NIC, an address from the pool.
        let vmBlue = try await repository.create(Port(
            tenantId: tenant, bridge: blue.id, name: "vm-blue", mac: Port.generatedMAC(), fixedIPs: [Port.automaticAddress],
            securityGroupIds: [app.id])).object
        _ = try await repository.create(Port(
            tenantId: tenant, bridge: green.id, name: "vm-db", mac: Port.generatedMAC(), fixedIPs: [Port.automaticAddress],
            securityGroupIds: [db.id]))
        var vmGreen = Port(
            tenantId: tenant, bridge: green.id, name: "vm-green", mac: Port.generatedMAC(), fixedIPs: [Port.automaticAddress])
        vmGreen.outboundChainId = web.id
        vmGreen = try await repository.create(vmGreen).object

        let hostA = try await repository.create(Host(name: "host-a", underlayAddresses: [IPv4.Address(100, 64, 0, 1)])).object
        let hostB = try await repository.create(Host(name: "host-b", underlayAddresses: [IPv4.Address(100, 64, 0, 2)])).object
        _ = try await repository.create(TunnelZone(name: "default", kind: .geneve, members: [
            TunnelZoneMember(hostId: hostA.id, address: IPv4.Address(100, 64, 0, 1)),
            TunnelZoneMember(hostId: hostB.id, address: IPv4.Address(100, 64, 0, 2)),
        ]))
        _ = try await repository.create(Binding(hostId: hostA.id, portId: vmBlue.id, interfaceName: "hive-vm1"))
        _ = try await repository.create(Binding(hostId: hostB.id, portId: vmGreen.id, interfaceName: "hive-vm2"))
    }
}
