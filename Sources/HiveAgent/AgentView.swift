import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Synchronization

/// Where an exterior port's traffic goes from this host.
enum PortLocation: Hashable, Sendable {
    case local
    case remote(IPv4.Address)
}

/// One immutable version of what the datapath thread needs to simulate:
/// the topology, the learned tables, and where each bound port is. The
/// control plane publishes a new one after every change; the datapath takes
/// the current one at the start of each batch (one lock, one copy of a few
/// references) and never waits on the control plane otherwise.
struct AgentView: Sendable {
    var topology: TopologyIslands
    var state: SimulationState
    var locations: [PortID: PortLocation]
    var version: UInt64
    /// The largest IP packet the tunnels carry from this host (the smallest
    /// of its zones' `networkMTU`): offered by DHCP, enforced on tunnel outputs.
    var networkMTU: UInt16 = TunnelZone.defaultUnderlayMTU - TunnelZone.overhead(of: .geneve)
    /// Ports in a stateful port group: the other hosts where members of
    /// their groups are bound, which get their connections' flow state too
    /// (a reply may come back through any member).
    var statefulPeers: [PortID: [IPv4.Address]] = [:]
    /// Each router's uplinks (bound exterior ports) on other hosts: they get
    /// the router's connections' flow state (a reply may come in through any).
    var uplinkHosts: [RouterID: [IPv4.Address]] = [:]
    /// Floating IPs that moved or went, newest last, numbered: the datapath
    /// thread removes their connections once (`ConnectionFlush.sequence`).
    var connectionFlushes: [ConnectionFlush] = []
    /// Live traces armed on ports bound here, by the port's tunnel key.
    var traces: [UInt32: [ArmedTrace]] = [:]
    /// Where every bound port lives (host name, host alive), for trace reports.
    var placements: [PortID: TracePlacement] = [:]
    /// This host's name, for trace reports.
    var hostName = ""

    static let empty = AgentView(topology: TopologyIslands(), state: SimulationState(), locations: [:], version: 0)
}

/// A live trace request as the datapath thread matches it.
struct ArmedTrace: Sendable {
    var id: LiveTraceID
    var match: TraceMatch
    var count: Int
    var lease: LeaseID
}

/// Connections to end: those of a router's zone translated to or from `address`.
struct ConnectionFlush: Sendable {
    var sequence: UInt64
    var zone: UInt32
    var address: IPv4.Address
}

/// The published view, shared between the control plane and the datapath thread.
final class SharedView: Sendable {
    private let current = Mutex(AgentView.empty)

    var view: AgentView { current.withLock { $0 } }

    func publish(_ view: AgentView) { current.withLock { $0 = view } }
}

/// The datapath's flow tag for a simulation tag: a stable hash within this process.
@inline(__always)
func flowTag(_ tag: InvalidationTag) -> FlowTag {
    var hasher = Hasher()
    hasher.combine(tag)
    return FlowTag(UInt(bitPattern: hasher.finalize()))
}
