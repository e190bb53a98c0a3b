import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation

/// Readable names for the datapath's flow tags, which are hashes of
/// invalidation tags (`flowTag(_:)`). Rather than keep a name per tag on the
/// miss path, a report hashes again every tag the current view can produce
/// and maps the hashes back; what is left (a tag of something since
/// deleted) prints as its hash in hex.
///
/// - Complexity: O(objects + MAC and ARP entries) to build; a few hashes per
///   flow for `addLookups(of:)`.
struct FlowTagNames {
    private(set) var names: [FlowTag: String] = [:]
    private var bridges: [FlowTag: BridgeID] = [:]
    private var routers: [FlowTag: RouterID] = [:]
    /// Each router's next hops: what it may be waiting to resolve by ARP.
    private var nextHops: [RouterID: [IPv4.Address]] = [:]
    private let topology: TopologyIslands

    init(view: AgentView) {
        topology = view.topology
        for snapshot in topology.parts { addNames(of: snapshot) }
        for (bridge, table) in view.state.macTables {
            for mac in table.keys { addMAC(mac, on: bridge) }
        }
        for (router, table) in view.state.arpTables {
            for address in table.keys { addARP(address, on: router) }
        }
    }

    private mutating func addNames(of snapshot: TopologySnapshot) {
        for id in snapshot.bridges.keys {
            bridges[flowTag(.bridge(id))] = id
            add(.bridge(id), "bridge:" + snapshot.name(of: id))
        }
        for id in snapshot.routers.keys {
            routers[flowTag(.router(id))] = id
            add(.router(id), "router:" + snapshot.name(of: id))
            add(.routeTable(id), "route-table:" + snapshot.name(of: id))
        }
        for id in snapshot.ports.keys { add(.port(id), "port:" + snapshot.name(of: id)) }
        for id in snapshot.chains.keys { add(.chain(id), "chain:" + snapshot.name(of: id)) }
        for id in snapshot.rules.keys { add(.rule(id), "rule:" + snapshot.name(of: id)) }
        for route in snapshot.routes.values {
            add(.route(route.id), "route:\(snapshot.name(of: route.routerId)) \(route.destination)")
            if let gateway = route.nextHopGateway { nextHops[route.routerId, default: []].append(gateway) }
        }
        for group in snapshot.ipAddressGroups.values { add(.ipAddressGroup(group.id), "ip-address-group:" + group.name) }
        for group in snapshot.securityGroups.values {
            add(.securityGroup(group.id), "security-group:" + group.name)
            add(.securityGroupMembers(group.id), "security-group-members:" + group.name)
        }
        // A port's own MAC is a static entry of its bridge.
        for port in snapshot.ports.values {
            if let bridge = port.bridgeId, let mac = port.mac { addMAC(mac, on: bridge) }
        }
    }

    /// Adds names another part knows (the connection table's, from the datapath thread).
    mutating func add(_ more: [FlowTag: String]) {
        names.merge(more) { known, _ in known }
    }

    /// Names the lookups a flow's simulation may have made that found
    /// nothing, so no table holds them: an unknown destination MAC flooded
    /// on a bridge, an address a router is resolving. Tried with the flow's
    /// own addresses (and those it rewrites to) on the bridges and routers it crossed.
    mutating func addLookups(of flow: DatapathReport.Flow) {
        var macs = [flow.key.ethernetSource, flow.key.ethernetDestination, flow.key.arpSenderMAC, .broadcast]
        for rewrite in flow.actions.rewrites {
            switch rewrite {
            case .setEthernetSource(let mac), .setEthernetDestination(let mac): macs.append(mac)
            default: break
            }
        }
        for tag in flow.tags {
            if let bridge = bridges[tag] {
                for mac in macs where mac != .zero { addMAC(mac, on: bridge) }
            } else if let router = routers[tag] {
                for address in [flow.key.ipv4Destination, flow.key.ipv4Source] + (nextHops[router] ?? []) {
                    addARP(address, on: router)
                }
            }
        }
    }

    /// The tag's name, or its hash in hex.
    func name(_ tag: FlowTag) -> String {
        names[tag] ?? "0x" + String(tag, radix: 16)
    }

    private mutating func add(_ tag: InvalidationTag, _ name: String) {
        names[flowTag(tag)] = name
    }

    private mutating func addMAC(_ mac: EthernetAddress, on bridge: BridgeID) {
        let tag = flowTag(.macEntry(bridge, mac))
        if names[tag] == nil { names[tag] = "mac:\(topology.name(of: bridge))/\(mac)" }
    }

    private mutating func addARP(_ address: IPv4.Address, on router: RouterID) {
        let tag = flowTag(.arpEntry(router, address))
        if names[tag] == nil { names[tag] = "arp:\(topology.name(of: router))/\(address)" }
    }
}

extension SimulationUpcalls: FlowTagNaming {
    /// The tags of the tracked connections, in both directions (a flow of a
    /// reply is tagged with the reply's key until its connection is known).
    func flowTagNames() -> [FlowTag: String] {
        var names: [FlowTag: String] = [:]
        for entry in connections.liveEntries(now: monotonicNanoseconds()) {
            names[flowTag(.connection(entry.key.tag))] = "connection:" + Self.describe(entry.key)
            let reply = flowTag(.connection(entry.replyKey.tag))
            if names[reply] == nil { names[reply] = "connection:" + Self.describe(entry.replyKey) + " (reply)" }
        }
        return names
    }

    /// "icmp 10.0.1.11 > 10.0.1.12 id 7, zone 0x3", "tcp 10.0.1.11:40000 > 10.0.1.12:80, zone 0x3".
    static func describe(_ key: ConnectionKey) -> String {
        let zone = ", zone 0x" + String(key.zone, radix: 16)
        switch IPProtocol(key.ipProtocol) {
        case .tcp, .udp:
            let name = key.ipProtocol == IPProtocol.tcp.rawValue ? "tcp" : "udp"
            return "\(name) \(key.source):\(key.sourcePort) > \(key.destination):\(key.destinationPort)" + zone
        case .icmp:
            return "icmp \(key.source) > \(key.destination) id \(key.sourcePort)" + zone
        default:
            return "protocol \(key.ipProtocol) \(key.source) > \(key.destination)" + zone
        }
    }
}
