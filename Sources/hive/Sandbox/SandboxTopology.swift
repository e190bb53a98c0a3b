import HiveModel
import HivePacket
import HiveStore

/// Stores the sandbox's hosts, tunnel zone and virtual network through the
/// repository, as an operator and two tenants would through the API.
enum SandboxTopology {
    /// Creates everything; returns the host ids (host number -> id).
    static func create(_ plan: SandboxPlan, in repository: TopologyRepository) async throws -> [Int: HostID] {
        var hosts: [Int: HostID] = [:]
        var members: [TunnelZoneMember] = []
        for number in 1...plan.hostCount {
            let host = try await repository.create(Host(name: plan.hostName(number), underlayAddresses: [plan.underlayAddress(number)])).object
            hosts[number] = host.id
            members.append(TunnelZoneMember(hostId: host.id, address: plan.underlayAddress(number)))
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
        for vm in plan.vms {
            let network = plan.networks.first { $0.bridge == vm.bridge }!
            // As a hypervisor does: the VM's NIC takes the port's MAC; its address comes by DHCP.
            let port = try await repository.create(Port(
                tenantId: network.tenant, bridge: bridges[vm.bridge]!.id, name: vm.name, mac: vm.mac, fixedIPs: [vm.address])).object
            _ = try await repository.create(Binding(hostId: hosts[vm.host]!, portId: port.id, interfaceName: plan.interface(of: vm)))
        }
        return hosts
    }
}
