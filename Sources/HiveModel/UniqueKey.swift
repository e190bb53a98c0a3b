import Foundation
import HivePacket

/// Builders for `uniqueKeys`, public so a lookup by name (the CLI resolving
/// "web" to a bridge) builds exactly the key the object registered.
public enum UniqueKey {
    /// The scope written for objects without a tenant; tenant ids may not be this.
    public static let adminScope = "-"

    /// "<tenant or ->/<name>": bridge, router, chain, port group and address
    /// group names are unique per tenant. Tenant ids contain no '/', so the
    /// first '/' always ends the scope.
    public static func tenantScoped(tenantId: String?, name: String) -> String {
        "\(tenantId ?? adminScope)/\(name)"
    }

    /// "<deviceId>/<name>": port names are unique per bridge or router.
    public static func portName(deviceId: UUID, name: String) -> String {
        "\(deviceId.uuidString.lowercased())/\(name)"
    }

    /// "address/<deviceId>/<address>": a fixed IP belongs to one port of its
    /// bridge. Cannot collide with a port name's key, which starts with a UUID.
    public static func portAddress(deviceId: UUID, address: IPv4.Address) -> String {
        "address/\(deviceId.uuidString.lowercased())/\(address)"
    }

    /// "mac/<deviceId>/<mac>": a VM's MAC belongs to one port of its bridge
    /// (port security and the bridge's static entries rely on it).
    public static func portMAC(deviceId: UUID, mac: EthernetAddress) -> String {
        "mac/\(deviceId.uuidString.lowercased())/\(mac)"
    }

    /// "host/<hostId>/interface/<name>": one binding per host interface.
    public static func hostInterface(hostId: HostID, interfaceName: String) -> String {
        "host/\(hostId)/interface/\(interfaceName)"
    }

    /// "port/<portId>": a port is bound at most once.
    public static func boundPort(_ portId: PortID) -> String {
        "port/\(portId)"
    }

    /// "bridge/<bridgeId>/subnet/<network>": one DHCP subnet per network per bridge.
    public static func dhcpSubnet(bridgeId: BridgeID, subnet: IPv4.Prefix) -> String {
        "bridge/\(bridgeId)/subnet/\(subnet.network)"
    }

    /// "rule/<group>/<direction>/<ethertype>/<protocol>/<ports>/<icmp>/<remote>":
    /// a group holds one rule per allowed traffic.
    public static func securityGroupRule(_ rule: SecurityGroupRule) -> String {
        let remote = rule.remotePrefix.map { "net-\($0)" } ?? rule.remoteGroupId.map { "group-\($0)" } ?? "any"
        let icmp = "\(rule.icmpType.map(String.init) ?? "*"):\(rule.icmpCode.map(String.init) ?? "*")"
        return "rule/\(rule.securityGroupId)/\(rule.direction.rawValue)/\(rule.etherType.rawValue)/"
            + "\(rule.ipProtocol.map(String.init) ?? "*")/\(rule.ports?.description ?? "*")/\(icmp)/\(remote)"
    }

    /// "floating-ip/<address>": a floating IP address is given out once.
    public static func floatingAddress(_ address: IPv4.Address) -> String {
        "floating-ip/\(address)"
    }
}
