import HiveModel
import HivePacket

/// What the bridges' DHCP servers know, compiled once per snapshot: for each
/// bridge its enabled subnets, for each port its fixed IPs and name. Read
/// only when a DHCP packet is simulated (rare), so it keeps plain Swift
/// collections rather than the hot path's flat arrays.
final class DHCPTable: Sendable {
    struct Server: Sendable {
        var subnet: DHCPSubnet
        /// The server's address (the gateway, else the subnet's last host address) and MAC.
        var address: IPv4.Address
        var mac: EthernetAddress
    }

    struct PortEntry: Sendable {
        var name: String?
        var fixedIPs: [IPv4.Address]
    }

    /// Bridge index -> its enabled subnets, in address order.
    let servers: [Int32: [Server]]
    /// Port index -> its name and fixed IPs (bridge ports with fixed IPs only).
    let ports: [Int32: PortEntry]

    init(ports kept: [Port], bridgeIndex: [BridgeID: Int32], subnets: [DHCPSubnet], arpAnswers: [DeviceAddress: ARPAnswer]) {
        var servers: [Int32: [Server]] = [:]
        for subnet in subnets.sorted(by: { $0.subnet.address < $1.subnet.address }) where subnet.enabled {
            guard let bridge = bridgeIndex[subnet.bridgeId] else { continue }
            let address = subnet.serverAddress
            // The gateway's router port when there is one, so a renewal sent
            // to the server's MAC reaches the bridge it came from.
            let mac = arpAnswers[DeviceAddress(device: bridge, address: address)]?.mac ?? Self.derivedMAC(for: subnet.id)
            servers[bridge, default: []].append(Server(subnet: subnet, address: address, mac: mac))
        }
        var entries: [Int32: PortEntry] = [:]
        for (index, port) in kept.enumerated() where port.deviceKind == .bridge && !port.fixedIPs.isEmpty {
            entries[Int32(index)] = PortEntry(name: port.name, fixedIPs: port.fixedIPs)
        }
        self.servers = servers
        self.ports = entries
    }

    /// A stable, locally administered MAC for a subnet's server.
    static func derivedMAC(for id: DHCPSubnetID) -> EthernetAddress {
        let bytes = id.uuid.uuid
        return EthernetAddress(0x02, bytes.11, bytes.12, bytes.13, bytes.14, bytes.15)
    }
}
