import HiveModel
import HivePacket

// The snapshot's internal form, laid out for the simulation's hot path.
//
// Every object is replaced by a dense index (Int32) into a flat array, and
// every element type is trivial (no references inside), so walking a packet
// through the topology reads arrays without retain/release, and no lookup on
// the path hashes a UUID except where the state tables hand back a `PortID`.
// Lists inside objects (a bridge's ports, a rule's `inPorts`, a port's
// groups) are `IndexRange`s into shared flat arrays for the same reason.

/// A half-open range into one of the flat arrays.
struct IndexRange: Hashable, Sendable {
    var start: Int32
    var end: Int32

    static let empty = IndexRange(start: 0, end: 0)

    @inline(__always) var isEmpty: Bool { start == end }
    @inline(__always) var count: Int { Int(end - start) }
    @inline(__always) var range: Range<Int> { Int(start)..<Int(end) }
}

/// "No object": an index that names nothing.
let noIndex: Int32 = -1

struct CompiledPort: Sendable {
    var id: PortID
    var deviceIndex: Int32
    var isRouterPort: Bool
    var adminStateUp: Bool
    var inboundChain: Int32
    var outboundChain: Int32
    /// The linked peer's index; `noIndex` on exterior ports (and when the peer is missing).
    var peer: Int32
    var tunnelKey: UInt32
    /// Into `CompiledTopology.portGroupMemberships` (port group indices).
    var groups: IndexRange
    /// Router ports: address, subnet and MAC (generated from the id when unset).
    var address: IPv4.Address
    var subnet: IPv4.Prefix
    var mac: EthernetAddress
    var hasAddress: Bool
    /// Bridge ports with a MAC and port security on: anti-spoofing applies
    /// (while the port is exterior).
    var portSecurity: Bool
    /// Into `CompiledTopology.allowedSources`: what the VM may send from.
    var allowedSources: IndexRange
    /// The IPv6 link-local address the VM forms from the port's MAC.
    var linkLocal: IPv6.Address
    /// Into `SecurityPolicyTable`: the port's security groups; `noIndex`: none.
    var securityPolicy: Int32
    /// One of its chains matches connection states: packets crossing it
    /// either way are tracked in its zone (its tunnel key).
    var tracksConnections = false
    /// Linked to a port the snapshot does not hold (its device is not
    /// loaded): neither interior nor exterior; a packet leaving by it waits
    /// for the device (`CompiledTopology.notLoadedPeers` names the peer).
    var peerNotLoaded = false

    @inline(__always) var isInterior: Bool { peer != noIndex }
}

/// An address (or network) a port-secured VM may send from, with the MAC it must use.
struct AllowedSource: Sendable {
    var prefix: MaskedPrefix
    var mac: EthernetAddress
}

struct CompiledBridge: Sendable {
    var id: BridgeID
    var adminStateUp: Bool
    var inboundChain: Int32
    var outboundChain: Int32
    var arpSuppression: Bool
    /// An enabled DHCP subnet: the bridge answers DHCP clients.
    var servesDHCP: Bool
    /// Into `CompiledTopology.bridgeFloodPorts`: the exterior ports, the flood set.
    var floodPorts: IndexRange
    /// Into `CompiledTopology.bridgeRouterLinks`: the router ports linked to the bridge.
    var routerLinks: IndexRange
    /// Where its chains track connections: its tunnel key.
    var zone: UInt32
    /// One of its chains matches connection states: every packet entering it is tracked.
    var tracksConnections = false

    /// The key its floods travel on between hosts: its tunnel key, as its zone.
    @inline(__always) var floodKey: UInt32 { zone }
}

struct CompiledRouter: Sendable {
    var id: RouterID
    var adminStateUp: Bool
    var inboundChain: Int32
    var outboundChain: Int32
    /// Where its chains track connections: outside the 24-bit tunnel keys of ports and bridges.
    var zone: UInt32
    /// One of its chains matches connection states: every packet entering it is tracked.
    var tracksConnections = false
    /// It translates (floating IPs, gateway SNAT, NAT rules on its chains):
    /// every packet entering it is tracked, and translated by its connection.
    var translates = false
    /// The external gateway's port; `noIndex`: none.
    var gatewayPort: Int32 = noIndex
    /// Default SNAT's address; `.any` when the gateway does not translate.
    var gatewaySNAT: IPv4.Address = .any
    /// Into `CompiledTopology.routerSubnets`: the subnets of its ports other
    /// than the gateway's (the tenant networks default SNAT applies to).
    var tenantSubnets: IndexRange = .empty
}

/// A floating IP on a router: packets to `address` go to `fixed` on `port`.
struct CompiledFloatingIP: Sendable {
    var id: FloatingIPID
    var router: Int32
    var address: IPv4.Address
    var fixed: IPv4.Address
    /// The VM's port.
    var port: Int32
}

struct CompiledChain: Sendable {
    var id: ChainID
    /// Into `CompiledTopology.rules`, in evaluation order.
    var rules: IndexRange
    /// A rule matches a connection state: every packet the chain sees is
    /// tracked in its zone, whichever rule decides (as in Linux, where
    /// conntrack does not depend on the rule order).
    var tracksConnections: Bool
}

enum CompiledAction: Hashable, Sendable {
    case accept, drop, reject, `return`, `continue`
    /// To a chain index; `noIndex` when the target chain is missing from the snapshot.
    case jump(Int32)
    /// Into `CompiledTopology.natTargets`.
    case snat(Int32)
    case dnat(Int32)
}

struct CompiledRule: Sendable {
    var id: RuleID
    var chain: Int32
    var conditions: CompiledConditions
    var action: CompiledAction
}

/// A (bridge, MAC) key of the static MAC table: router port MACs behind the bridge's interior ports.
struct BridgeMAC: Hashable, Sendable {
    var bridge: Int32
    var mac: EthernetAddress
}

/// A (device, IPv4 address) key: the bridges' ARP answers and the routers' own addresses.
struct DeviceAddress: Hashable, Sendable {
    var device: Int32
    var address: IPv4.Address
}

/// What a bridge knows an IP address to be.
struct ARPAnswer: Sendable {
    var mac: EthernetAddress
    /// The bridge's interior port linked to the router port owning the address;
    /// `noIndex` for an address from a DHCP host entry.
    var bridgePort: Int32
}

/// A prefix stored as value and mask, for one AND and one compare.
struct MaskedPrefix: Hashable, Sendable {
    var value: UInt32
    var mask: UInt32

    init(_ prefix: IPv4.Prefix) {
        mask = prefix.mask
        value = prefix.address.value & mask
    }

    @inline(__always) func contains(_ address: IPv4.Address) -> Bool { address.value & mask == value }
}

/// The compiled topology. A class so the snapshot and each simulation run
/// hold it by one reference; immutable after `init`, hence `@unchecked
/// Sendable`: `ruleStorage` is written once, in `init`, and freed in `deinit`.
final class CompiledTopology: @unchecked Sendable {
    let ports: [CompiledPort]
    let bridges: [CompiledBridge]
    let routers: [CompiledRouter]
    let chains: [CompiledChain]
    let rules: [CompiledRule]
    let routeTables: [RouteTable]
    /// `rules` again, in storage that never moves: the chain walk reads
    /// conditions through a pointer instead of copying each rule out.
    let ruleStorage: UnsafeMutableBufferPointer<CompiledRule>

    let bridgeFloodPorts: [Int32]
    let bridgeRouterLinks: [Int32]
    let allowedSources: [AllowedSource]
    /// What the bridges' DHCP servers hand out (read only for DHCP packets).
    let dhcp: DHCPTable
    let portGroupMemberships: [Int32]
    /// Port lists of rule conditions (`inPorts`, `outPorts`).
    let rulePortLists: [Int32]
    /// Members of each IP address group, by group index.
    let addressGroupMembers: [IndexRange]
    let addressGroupPrefixes: [MaskedPrefix]

    let portByTunnelKey: [UInt32: Int32]
    let portIndex: [PortID: Int32]
    let routerIndex: [RouterID: Int32]
    let staticMACs: [BridgeMAC: Int32]
    let bridgeARPAnswers: [DeviceAddress: ARPAnswer]
    let routerAddresses: [DeviceAddress: Int32]

    // IDs for tags of groups.
    let addressGroupIDs: [IPAddressGroupID]
    let securityPolicies: SecurityPolicyTable
    /// NAT: the rules' targets, the floating IPs by (router, address) and by
    /// the VM's port, the routers' tenant subnets, and the addresses a
    /// router answers ARP for on its exterior ports (floating IPs, SNAT).
    let natTargets: [NATTarget]
    let floatingIPs: [CompiledFloatingIP]
    let floatingByAddress: [DeviceAddress: Int32]
    let floatingByPort: [Int32: Int32]
    let routerSubnets: [MaskedPrefix]
    let natAddresses: Set<DeviceAddress>
    /// Ports linked to a port not in the snapshot: port index -> the peer.
    let notLoadedPeers: [Int32: PortID]
    /// Chains named but not in the snapshot: index `chains.count + i` is the i-th.
    let notLoadedChains: [ChainID]

    init(
        ports: [CompiledPort], bridges: [CompiledBridge], routers: [CompiledRouter], chains: [CompiledChain],
        rules: [CompiledRule], routeTables: [RouteTable], bridgeFloodPorts: [Int32], bridgeRouterLinks: [Int32],
        allowedSources: [AllowedSource],
        dhcp: DHCPTable, portGroupMemberships: [Int32],
        rulePortLists: [Int32], addressGroupMembers: [IndexRange], addressGroupPrefixes: [MaskedPrefix],
        portByTunnelKey: [UInt32: Int32], portIndex: [PortID: Int32], routerIndex: [RouterID: Int32], staticMACs: [BridgeMAC: Int32],
        bridgeARPAnswers: [DeviceAddress: ARPAnswer], routerAddresses: [DeviceAddress: Int32],
        addressGroupIDs: [IPAddressGroupID], securityPolicies: SecurityPolicyTable, nat: CompiledNAT,
        notLoadedPeers: [Int32: PortID] = [:], notLoadedChains: [ChainID] = []
    ) {
        self.notLoadedPeers = notLoadedPeers
        self.notLoadedChains = notLoadedChains
        natTargets = nat.targets
        floatingIPs = nat.floatingIPs
        floatingByAddress = nat.floatingByAddress
        floatingByPort = nat.floatingByPort
        routerSubnets = nat.routerSubnets
        natAddresses = nat.addresses
        self.securityPolicies = securityPolicies
        self.ports = ports
        self.bridges = bridges
        self.routers = routers
        self.chains = chains
        self.rules = rules
        ruleStorage = .allocate(capacity: max(1, rules.count))
        _ = ruleStorage.initialize(from: rules)
        self.routeTables = routeTables
        self.bridgeFloodPorts = bridgeFloodPorts
        self.bridgeRouterLinks = bridgeRouterLinks
        self.allowedSources = allowedSources
        self.dhcp = dhcp
        self.portGroupMemberships = portGroupMemberships
        self.rulePortLists = rulePortLists
        self.addressGroupMembers = addressGroupMembers
        self.addressGroupPrefixes = addressGroupPrefixes
        self.portByTunnelKey = portByTunnelKey
        self.portIndex = portIndex
        self.routerIndex = routerIndex
        self.staticMACs = staticMACs
        self.bridgeARPAnswers = bridgeARPAnswers
        self.routerAddresses = routerAddresses
        self.addressGroupIDs = addressGroupIDs
    }

    deinit {
        ruleStorage.deallocate()
    }
}

/// The NAT parts of the compiled topology, gathered by the builder.
struct CompiledNAT {
    var targets: [NATTarget] = []
    var floatingIPs: [CompiledFloatingIP] = []
    var floatingByAddress: [DeviceAddress: Int32] = [:]
    var floatingByPort: [Int32: Int32] = [:]
    var routerSubnets: [MaskedPrefix] = []
    var addresses: Set<DeviceAddress> = []
}
