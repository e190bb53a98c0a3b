import HiveModel
import HivePacket
import HiveSandbox

/// What `hive sandbox` builds: two hypervisor hosts and two gateway hosts on
/// an underlay, four VMs, the outside world, and the virtual network joining
/// them. Tenant "blue" has bridge blue (vm1 on h1, vm2 on h2), tenant "green"
/// has bridge green (vm3 on h1, vm4 on h2), and the router "edge" (admin's)
/// routes between them. Edge's gateway leads to the provider router
/// "provider", whose uplinks are bound to `ext0` on gw1 and gw2, veths to the
/// upstream router in namespace "internet" (192.0.2.0/24 links, a server on
/// 203.0.113.10). Provider owns 198.51.100.0/24: edge's SNAT address and vm1's
/// floating IP.
struct SandboxPlan {
    /// A host running an agent; `name` without the prefix, e.g. "h1".
    struct Host {
        var name: String
        var underlayAddress: IPv4.Address
    }

    struct VM {
        var name: String
        /// The `Host.name` it runs on.
        var host: String
        var bridge: String
        var address: IPv4.Address
        var mac: EthernetAddress
        var gateway: IPv4.Address
    }

    struct Network {
        var bridge: String
        var tenant: String
        var subnet: IPv4.Prefix
        var gateway: IPv4.Address
        var routerMAC: EthernetAddress
    }

    /// A port of the provider router bound to a gateway host's NIC, and the
    /// upstream router's end of that link.
    struct Uplink {
        /// The provider router's port, e.g. "uplink1".
        var port: String
        /// The gateway `Host.name`, e.g. "gw1".
        var host: String
        /// The NIC in the gateway host the port is bound to.
        var interface: String
        /// The port's address: the upstream router's next hop.
        var address: IPv4.Address
        var subnet: IPv4.Prefix
        var mac: EthernetAddress
        /// The upstream router's interface and address: the port's next hop.
        var upstreamInterface: String
        var upstreamAddress: IPv4.Address
    }

    let prefix: String
    let hosts = [
        Host(name: "h1", underlayAddress: IPv4.Address(100, 64, 0, 1)),
        Host(name: "h2", underlayAddress: IPv4.Address(100, 64, 0, 2)),
        Host(name: "gw1", underlayAddress: IPv4.Address(100, 64, 0, 11)),
        Host(name: "gw2", underlayAddress: IPv4.Address(100, 64, 0, 12)),
    ]
    let networks = [
        Network(bridge: "blue", tenant: "blue", subnet: IPv4.Prefix(parsing: "10.0.1.0/24")!, gateway: IPv4.Address(10, 0, 1, 1), routerMAC: EthernetAddress(0x02, 0x48, 0x49, 0x56, 0x01, 0x01)),
        Network(bridge: "green", tenant: "green", subnet: IPv4.Prefix(parsing: "10.0.2.0/24")!, gateway: IPv4.Address(10, 0, 2, 1), routerMAC: EthernetAddress(0x02, 0x48, 0x49, 0x56, 0x02, 0x01)),
    ]
    let vms = [
        VM(name: "vm1", host: "h1", bridge: "blue", address: IPv4.Address(10, 0, 1, 11), mac: EthernetAddress(0x02, 0x00, 0x0a, 0x00, 0x01, 0x0b), gateway: IPv4.Address(10, 0, 1, 1)),
        VM(name: "vm2", host: "h2", bridge: "blue", address: IPv4.Address(10, 0, 1, 12), mac: EthernetAddress(0x02, 0x00, 0x0a, 0x00, 0x01, 0x0c), gateway: IPv4.Address(10, 0, 1, 1)),
        VM(name: "vm3", host: "h1", bridge: "green", address: IPv4.Address(10, 0, 2, 13), mac: EthernetAddress(0x02, 0x00, 0x0a, 0x00, 0x02, 0x0d), gateway: IPv4.Address(10, 0, 2, 1)),
        VM(name: "vm4", host: "h2", bridge: "green", address: IPv4.Address(10, 0, 2, 14), mac: EthernetAddress(0x02, 0x00, 0x0a, 0x00, 0x02, 0x0e), gateway: IPv4.Address(10, 0, 2, 1)),
    ]

    // The outside world.
    let uplinks = [
        Uplink(
            port: "uplink1", host: "gw1", interface: "ext0", address: IPv4.Address(192, 0, 2, 2), subnet: IPv4.Prefix(parsing: "192.0.2.0/28")!,
            mac: EthernetAddress(0x02, 0x48, 0x49, 0x56, 0xff, 0x01), upstreamInterface: "gw1", upstreamAddress: IPv4.Address(192, 0, 2, 1)),
        Uplink(
            port: "uplink2", host: "gw2", interface: "ext0", address: IPv4.Address(192, 0, 2, 18), subnet: IPv4.Prefix(parsing: "192.0.2.16/28")!,
            mac: EthernetAddress(0x02, 0x48, 0x49, 0x56, 0xff, 0x02), upstreamInterface: "gw2", upstreamAddress: IPv4.Address(192, 0, 2, 17)),
    ]
    /// The provider's public addresses, routed to it by the upstream router.
    let publicPrefix = IPv4.Prefix(parsing: "198.51.100.0/24")!
    /// The link between the provider router (`to-edge`) and edge (`gateway`).
    let providerLink = IPv4.Prefix(parsing: "198.51.100.0/30")!
    let providerLinkAddress = IPv4.Address(198, 51, 100, 1)
    let providerLinkMAC = EthernetAddress(0x02, 0x48, 0x49, 0x56, 0xfe, 0x01)
    /// Edge's gateway port address, also its SNAT address.
    let edgeGatewayAddress = IPv4.Address(198, 51, 100, 2)
    let edgeGatewayMAC = EthernetAddress(0x02, 0x48, 0x49, 0x56, 0xfe, 0x02)
    /// vm1's floating IP, on the provider router.
    let floatingIP = IPv4.Address(198, 51, 100, 10)
    let floatingVM = "vm1"
    /// The server in the upstream namespace, on its loopback.
    let serverAddress = IPv4.Address(203, 0, 113, 10)
    let serverPrefixLength = 24

    init(prefix: String = "hive-") {
        self.prefix = prefix
    }

    /// The host's namespace, which is also its name in the store, e.g. "hive-gw1".
    func namespace(of host: Host) -> String { prefix + host.name }
    func namespace(ofHost name: String) -> String { prefix + name }
    func namespace(of vm: VM) -> String { prefix + vm.name }
    func interface(of vm: VM) -> String { prefix + vm.name }
    /// The upstream router's namespace: the outside world.
    var upstreamNamespace: String { prefix + "internet" }

    var network: SandboxNetwork {
        SandboxNetwork(
            prefix: prefix,
            hosts: hosts.map { SandboxNetwork.Host(name: namespace(of: $0), underlayAddress: "\($0.underlayAddress)/24") },
            // No address and the default MTU: each VM's DHCP client sets both.
            vms: vms.map { vm in
                SandboxNetwork.VM(
                    name: namespace(of: vm), host: namespace(ofHost: vm.host), hostInterface: interface(of: vm),
                    mac: vm.mac.description, address: nil, gateway: nil, mtu: 1500)
            },
            upstream: SandboxNetwork.Upstream(
                name: upstreamNamespace,
                uplinks: uplinks.map { uplink in
                    SandboxNetwork.Uplink(
                        host: namespace(ofHost: uplink.host), hostInterface: uplink.interface, interface: uplink.upstreamInterface,
                        address: "\(uplink.upstreamAddress)/\(uplink.subnet.length)", nextHop: "\(uplink.address)")
                },
                serverAddress: "\(serverAddress)/\(serverPrefixLength)",
                routedPrefixes: ["\(publicPrefix)"]))
    }
}
