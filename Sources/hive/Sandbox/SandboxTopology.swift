import HiveModel
import HivePacket
import HiveStore

/// Stores the sandbox's hosts, tunnel zone and virtual network through the
/// repository, as an operator and two tenants would through the API.
enum SandboxTopology {
    /// Creates everything; returns the host ids by `SandboxPlan.Host.name`.
    static func create(_ plan: SandboxPlan, in repository: TopologyRepository) async throws -> [String: HostID] {
        var hosts: [String: HostID] = [:]
        var members: [TunnelZoneMember] = []
        for planned in plan.hosts {
            let host = try await repository.create(Host(name: plan.namespace(of: planned), underlayAddresses: [planned.underlayAddress])).object
            hosts[planned.name] = host.id
            members.append(TunnelZoneMember(hostId: host.id, address: planned.underlayAddress))
        }
        _ = try await repository.create(TunnelZone(name: "sandbox", kind: .geneve, members: members))

        let router = try await repository.create(Router(name: "edge")).object
        var bridges: [String: Bridge] = [:]
        for network in plan.networks {
            let bridge = try await repository.create(Bridge(tenantId: network.tenant, name: network.bridge)).object
            bridges[network.bridge] = bridge
            let routerPort = try await repository.create(Port(
                router: router.id, name: "to-\(network.bridge)", address: network.gateway, subnet: network.subnet,
                mac: network.routerMAC)).object
            let uplink = try await repository.create(Port(tenantId: network.tenant, bridge: bridge.id, name: "uplink")).object
            _ = try await repository.link(routerPort.id, uplink.id)
            _ = try await repository.create(Route(routerId: router.id, destination: network.subnet, egressPortId: routerPort.id))
            // The subnet the VMs' addresses come from, served by DHCP on the bridge.
            _ = try await repository.create(DHCPSubnet(
                tenantId: network.tenant, bridgeId: bridge.id, subnet: network.subnet,
                rangeStart: IPv4.Address(network.subnet.address.value + 100), rangeEnd: IPv4.Address(network.subnet.address.value + 200),
                gateway: network.gateway, domainName: "\(network.bridge).sandbox"))
        }
        var vmPorts: [String: PortID] = [:]
        for vm in plan.vms {
            let network = plan.networks.first { $0.bridge == vm.bridge }!
            // As a hypervisor does: the VM's NIC takes the port's MAC; its address comes by DHCP.
            let port = try await repository.create(Port(
                tenantId: network.tenant, bridge: bridges[vm.bridge]!.id, name: vm.name, mac: vm.mac, fixedIPs: [vm.address])).object
            vmPorts[vm.name] = port.id
            _ = try await repository.create(Binding(hostId: hosts[vm.host]!, portId: port.id, interfaceName: plan.interface(of: vm)))
        }
        try await createProvider(plan, behind: router, hosts: hosts, vmPorts: vmPorts, in: repository)
        return hosts
    }

    /// The provider router: uplinks bound to the gateway hosts' NICs with
    /// equal default routes (ECMP), a link to edge, which makes it edge's
    /// gateway (default SNAT), and vm1's floating IP.
    private static func createProvider(
        _ plan: SandboxPlan, behind edge: Router, hosts: [String: HostID], vmPorts: [String: PortID], in repository: TopologyRepository
    ) async throws {
        let provider = try await repository.create(Router(name: "provider")).object
        let anywhere = IPv4.Prefix(address: .any, length: 0)
        for uplink in plan.uplinks {
            let port = try await repository.create(Port(
                router: provider.id, name: uplink.port, address: uplink.address, subnet: uplink.subnet, mac: uplink.mac)).object
            // A router port is bound to a NIC as a VM's port is to its veth.
            _ = try await repository.create(Binding(hostId: hosts[uplink.host]!, portId: port.id, interfaceName: uplink.interface))
            _ = try await repository.create(Route(routerId: provider.id, destination: uplink.subnet, egressPortId: port.id))
            _ = try await repository.create(Route(
                routerId: provider.id, destination: anywhere, nextHopGateway: uplink.upstreamAddress, egressPortId: port.id))
        }

        let toEdge = try await repository.create(Port(
            router: provider.id, name: "to-edge", address: plan.providerLinkAddress, subnet: plan.providerLink, mac: plan.providerLinkMAC)).object
        let gateway = try await repository.create(Port(
            router: edge.id, name: "gateway", address: plan.edgeGatewayAddress, subnet: plan.providerLink, mac: plan.edgeGatewayMAC)).object
        _ = try await repository.link(toEdge.id, gateway.id)
        _ = try await repository.create(Route(routerId: provider.id, destination: plan.providerLink, egressPortId: toEdge.id))
        for network in plan.networks {
            _ = try await repository.create(Route(
                routerId: provider.id, destination: network.subnet, nextHopGateway: plan.edgeGatewayAddress, egressPortId: toEdge.id))
        }
        _ = try await repository.create(Route(routerId: edge.id, destination: plan.providerLink, egressPortId: gateway.id))
        _ = try await repository.create(Route(
            routerId: edge.id, destination: anywhere, nextHopGateway: plan.providerLinkAddress, egressPortId: gateway.id))
        var withGateway = try await repository.get(edge.id).object
        withGateway.gateway = RouterGateway(portId: gateway.id, snatAddress: plan.edgeGatewayAddress)
        _ = try await repository.update(withGateway)

        _ = try await repository.create(FloatingIP(routerId: provider.id, address: plan.floatingIP, portId: vmPorts[plan.floatingVM]!))
    }
}
