import HiveModel
import HivePacket

/// Something a simulation read, whose change may change the result. A cached
/// flow carries the tags of its simulation; the agent turns each change it
/// sees in the NSDB into tags and removes the flows that carry one of them.
///
/// Which change touches which tag (the agent's side of the contract):
///
/// | change | tags touched |
/// |---|---|
/// | bridge, router, port (incl. link, port groups), chain (rule order) | its own id |
/// | rule created, updated or deleted | `.rule(id)` and `.chain(rule.chainId)` |
/// | route created, updated or deleted | `.routeTable(route.routerId)` |
/// | DHCP subnet (host entries answer ARP) | `.bridge(subnet.bridgeId)` |
/// | IP address group | `.ipAddressGroup(id)` |
/// | security group, or one of its rules | `.securityGroup(id)` |
/// | a port's fixed IPs, address pairs or groups (its memberships) | `.securityGroupMembers(g)` for every group g it is or was in |
/// | MAC table entry (bridge, mac) added, moved or removed | `.macEntry(bridge, mac)` |
/// | ARP table entry (router, ip) added, changed or removed | `.arpEntry(router, ip)` |
/// | a binding (where a port is) created, moved or deleted | `.port(binding.portId)` |
/// | a host's liveness or underlay addresses | `.port(p)` for every port p bound to it |
/// | a tunnel zone, a port group | every flow (rare; MTU, addresses, memberships) |
///
/// Placement is read through ports: a flow that outputs to a port carries
/// its tag, and so does one whose path read whether a port's host is alive
/// (a drop at a dead host, a flood that left the port out, every candidate
/// of an equal-cost pick).
/// A lookup that found nothing is tagged too (`.macEntry` for an unknown
/// destination that was flooded, `.arpEntry` for a pending resolution), so
/// learning the entry later invalidates the flow that flooded or waited.
public enum InvalidationTag: Hashable, Sendable {
    case bridge(BridgeID)
    case router(RouterID)
    case port(PortID)
    case chain(ChainID)
    case rule(RuleID)
    /// The router's whole forwarding table: any route change may change a lookup.
    case routeTable(RouterID)
    /// The route a lookup chose (informational; route changes touch `.routeTable`).
    case route(RouteID)
    case ipAddressGroup(IPAddressGroupID)
    /// The group's rules (flows of its member ports).
    case securityGroup(SecurityGroupID)
    /// The group's members' addresses (flows a remote-group rule matched or not).
    case securityGroupMembers(SecurityGroupID)
    /// A tracked connection: its flows are simulated again when its state
    /// changes (the first reply, FIN, RST) or it goes.
    case connection(UInt64)
    case macEntry(BridgeID, EthernetAddress)
    case arpEntry(RouterID, IPv4.Address)
}

extension InvalidationTag: CustomStringConvertible {
    public var description: String {
        switch self {
        case .bridge(let id): "bridge:\(id)"
        case .router(let id): "router:\(id)"
        case .port(let id): "port:\(id)"
        case .chain(let id): "chain:\(id)"
        case .rule(let id): "rule:\(id)"
        case .routeTable(let id): "route-table:\(id)"
        case .route(let id): "route:\(id)"
        case .ipAddressGroup(let id): "ip-address-group:\(id)"
        case .securityGroup(let id): "security-group:\(id)"
        case .securityGroupMembers(let id): "security-group-members:\(id)"
        case .connection(let hash): "connection:\(String(hash, radix: 16))"
        case .macEntry(let bridge, let mac): "mac:\(bridge)/\(mac)"
        case .arpEntry(let router, let ip): "arp:\(router)/\(ip)"
        }
    }
}
