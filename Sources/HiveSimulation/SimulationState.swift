import HiveModel
import HivePacket

/// The learned state tables a simulation reads: per-bridge MAC tables and
/// per-router ARP tables. A plain value the agent keeps up to date from the
/// NSDB's state tables (and from the learning its simulations ask for); the
/// simulation never changes it, it only says in its result what to learn.
public struct SimulationState: Sendable {
    /// Bridge id -> MAC -> the port the MAC was last seen on.
    public var macTables: [BridgeID: [EthernetAddress: PortID]]
    /// Router id -> IPv4 address -> its MAC.
    public var arpTables: [RouterID: [IPv4.Address: EthernetAddress]]
    /// SNAT address -> the blocks of `NATBlock.size` ports this host leased
    /// for it (block n holds ports n*64 ... n*64+63), in order.
    public var natBlocks: [IPv4.Address: [UInt16]] = [:]
    /// Tunnel keys of exterior ports that cannot forward now (their host's
    /// lease lapsed): equal-cost routes through them are not chosen while
    /// another is left.
    public var unavailablePorts: Set<UInt32> = []

    public init(
        macTables: [BridgeID: [EthernetAddress: PortID]] = [:],
        arpTables: [RouterID: [IPv4.Address: EthernetAddress]] = [:]
    ) {
        self.macTables = macTables
        self.arpTables = arpTables
    }

    /// Empty tables: every destination unknown.
    public static let empty = SimulationState()

    /// The port `mac` was learned on in `bridge`, if any.
    /// - Complexity: O(1), two hash lookups.
    @inlinable
    public func port(of mac: EthernetAddress, in bridge: BridgeID) -> PortID? {
        macTables[bridge]?[mac]
    }

    /// The MAC `address` resolves to behind `router`, if known.
    @inlinable
    public func mac(of address: IPv4.Address, in router: RouterID) -> EthernetAddress? {
        arpTables[router]?[address]
    }

    public mutating func learn(_ mac: EthernetAddress, on port: PortID, in bridge: BridgeID) {
        macTables[bridge, default: [:]][mac] = port
    }

    public mutating func learn(_ address: IPv4.Address, at mac: EthernetAddress, in router: RouterID) {
        arpTables[router, default: [:]][address] = mac
    }

    /// Applies what a simulation said to learn (MAC and ARP entries).
    public mutating func apply(learningFrom result: SimulationResult) {
        for entry in result.macLearning { learn(entry.mac, on: entry.port, in: entry.bridge) }
        for entry in result.arpLearning { learn(entry.address, at: entry.mac, in: entry.router) }
    }
}
