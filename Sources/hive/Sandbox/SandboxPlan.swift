import HiveModel
import HivePacket
import HiveSandbox

/// What `hive sandbox` builds: two hosts on an underlay, four VMs, and the
/// virtual network joining them. Tenant "blue" has bridge blue (vm1 on h1,
/// vm2 on h2), tenant "green" has bridge green (vm3 on h1, vm4 on h2), and
/// the provider router "edge" (admin's) routes between them.
struct SandboxPlan {
    struct VM {
        var name: String
        var host: Int
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

    let prefix: String
    let hostCount = 2
    let networks = [
        Network(bridge: "blue", tenant: "blue", subnet: IPv4.Prefix(parsing: "10.0.1.0/24")!, gateway: IPv4.Address(10, 0, 1, 1), routerMAC: EthernetAddress(0x02, 0x48, 0x49, 0x56, 0x01, 0x01)),
        Network(bridge: "green", tenant: "green", subnet: IPv4.Prefix(parsing: "10.0.2.0/24")!, gateway: IPv4.Address(10, 0, 2, 1), routerMAC: EthernetAddress(0x02, 0x48, 0x49, 0x56, 0x02, 0x01)),
    ]
    let vms = [
        VM(name: "vm1", host: 1, bridge: "blue", address: IPv4.Address(10, 0, 1, 11), mac: EthernetAddress(0x02, 0x00, 0x0a, 0x00, 0x01, 0x0b), gateway: IPv4.Address(10, 0, 1, 1)),
        VM(name: "vm2", host: 2, bridge: "blue", address: IPv4.Address(10, 0, 1, 12), mac: EthernetAddress(0x02, 0x00, 0x0a, 0x00, 0x01, 0x0c), gateway: IPv4.Address(10, 0, 1, 1)),
        VM(name: "vm3", host: 1, bridge: "green", address: IPv4.Address(10, 0, 2, 13), mac: EthernetAddress(0x02, 0x00, 0x0a, 0x00, 0x02, 0x0d), gateway: IPv4.Address(10, 0, 2, 1)),
        VM(name: "vm4", host: 2, bridge: "green", address: IPv4.Address(10, 0, 2, 14), mac: EthernetAddress(0x02, 0x00, 0x0a, 0x00, 0x02, 0x0e), gateway: IPv4.Address(10, 0, 2, 1)),
    ]

    init(prefix: String = "hive-") {
        self.prefix = prefix
    }

    func hostName(_ number: Int) -> String { prefix + "h\(number)" }
    func underlayAddress(_ number: Int) -> IPv4.Address { IPv4.Address(100, 64, 0, UInt8(number)) }
    func namespace(of vm: VM) -> String { prefix + vm.name }
    func interface(of vm: VM) -> String { prefix + vm.name }

    var network: SandboxNetwork {
        SandboxNetwork(
            prefix: prefix,
            hosts: (1...hostCount).map { SandboxNetwork.Host(name: hostName($0), underlayAddress: "\(underlayAddress($0))/24") },
            // No address and the default MTU: each VM's DHCP client sets both.
            vms: vms.map { vm in
                SandboxNetwork.VM(
                    name: namespace(of: vm), host: hostName(vm.host), hostInterface: interface(of: vm),
                    mac: vm.mac.description, address: nil, gateway: nil, mtu: 1500)
            })
    }
}
