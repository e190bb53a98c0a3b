import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Logging

/// The agent's control state: the NSDB mirror, the interfaces it bound,
/// packets waiting for ARP answers. Every change ends in `publish()`: a new
/// view for the datapath, then the invalidations it implies, in that order,
/// so a flow simulated on the old view is always invalidated after.
actor AgentControl {
    let store: any Store
    let datapath: Datapath<SimulationUpcalls>
    let shared: SharedView
    let namespace: String?
    let logger: Logger

    private(set) var hostID: HostID?
    private(set) var lease: LeaseID = 0
    private var mirror = NSDBMirror()
    private var snapshot = TopologySnapshot()
    private var version: UInt64 = 0
    /// Ports whose interface is open in the datapath: port -> (tunnel key, interface).
    private var bound: [PortID: (portKey: UInt32, interface: String)] = [:]
    /// Bindings that could not be opened yet (interface missing), with the reason.
    private var unopened: [PortID: String] = [:]
    private var waiting: [ARPWaitKey: [WaitingPacket]] = [:]
    private(set) var metrics = ControlMetrics()
    /// Entries this agent learned (key -> value), to share again under a new lease.
    private var learnedHere: [String: String] = [:]
    private var retry: [String: String] = [:]
    private var tunnelPeers: Set<IPv4.Address>?
    /// Learned entries to share, written by the agent's writer task so a
    /// slow or unreachable store never holds up this actor.
    let writes: AsyncStream<(key: String, value: String)>.Continuation

    struct ARPWaitKey: Hashable {
        var router: RouterID
        var address: IPv4.Address
    }

    struct WaitingPacket {
        var frame: [UInt8]
        var inPort: UInt32
        var deadline: ContinuousClock.Instant
    }

    /// Packets held per unresolved address, and for how long.
    static let waitingLimit = 16
    static let waitingTime = Duration.seconds(3)

    init(
        store: any Store, datapath: Datapath<SimulationUpcalls>, shared: SharedView, namespace: String?, logger: Logger,
        writes: AsyncStream<(key: String, value: String)>.Continuation
    ) {
        self.writes = writes
        self.store = store
        self.datapath = datapath
        self.shared = shared
        self.namespace = namespace
        self.logger = logger
    }

    var revision: Revision { mirror.revision }

    func start(host: HostID, lease: LeaseID) {
        hostID = host
        self.lease = lease
    }

    /// A new lease (the old one lapsed in an outage, and with it the entries
    /// written under it): share everything learned here again.
    func leaseReplaced(_ lease: LeaseID) {
        self.lease = lease
        for (key, value) in learnedHere { writes.yield((key, value)) }
    }

    /// A write that failed; retried by `housekeeping`.
    func unshared(key: String, value: String) {
        retry[key] = value
    }

    // MARK: NSDB changes

    /// Replaces the mirror with a full read.
    func load(_ read: RangeResult) {
        var fresh = NSDBMirror()
        var changes = NSDBMirror.Changes()
        for keyValue in read.keyValues {
            fresh.apply(WatchEvent(kind: .put, keyValue: keyValue), into: &changes)
        }
        fresh.revision = read.revision
        mirror = fresh
        snapshot = mirror.snapshot()
        report(changes.problems)
        publish()
        datapath.invalidateAll()
        metrics.invalidations += 1
        reconcileBindings()
    }

    func apply(_ batch: WatchBatch) {
        var changes = NSDBMirror.Changes()
        for event in batch.events {
            mirror.apply(event, into: &changes)
            // Another agent learned the entry since: it is no longer ours to share.
            if let mine = learnedHere[event.keyValue.key], event.kind == .put, event.keyValue.text != mine {
                learnedHere[event.keyValue.key] = nil
            }
        }
        mirror.revision = max(mirror.revision, batch.revision)
        guard changes.topologyChanged || changes.placementChanged || changes.stateChanged else { return }
        if changes.topologyChanged { snapshot = mirror.snapshot() }
        report(changes.problems)
        publish()
        if changes.placementChanged {
            datapath.invalidateAll()
            metrics.invalidations += 1
        } else if !changes.tags.isEmpty {
            datapath.invalidate(changes.tags.map(flowTag))
            metrics.invalidations += 1
        }
        if changes.placementChanged || changes.topologyChanged { reconcileBindings() }
        for (router, address) in changes.learnedARP { release(router: router, address: address) }
    }

    private func report(_ problems: [String]) {
        for problem in problems { logger.warning("\(problem)") }
    }

    private func publish() {
        version += 1
        var locations: [PortID: PortLocation] = [:]
        if let hostID {
            for binding in mirror.bindings.values {
                if binding.hostId == hostID {
                    if bound[binding.portId] != nil { locations[binding.portId] = .local }
                } else if let address = mirror.underlayAddress(of: binding.hostId, from: hostID) {
                    locations[binding.portId] = .remote(address)
                }
            }
        }
        shared.publish(AgentView(snapshot: snapshot, state: mirror.state, locations: locations, version: version))
        if let hostID {
            let peers = mirror.peerAddresses(of: hostID)
            if peers != tunnelPeers {
                tunnelPeers = peers
                datapath.setTunnelPeers(peers)
            }
        }
    }

    // MARK: Bindings

    /// Opens the interfaces of ports newly bound here, closes those unbound.
    private func reconcileBindings() {
        guard let hostID else { return }
        var wanted: [PortID: (portKey: UInt32, interface: String)] = [:]
        for binding in mirror.bindings.values where binding.hostId == hostID {
            guard let port = mirror.ports[binding.portId] else { continue }
            wanted[binding.portId] = (port.tunnelKey, binding.interfaceName)
        }
        var changed = false
        for (port, current) in bound where wanted[port].map({ $0 != current }) ?? true {
            datapath.removePort(portKey: current.portKey)
            bound[port] = nil
            changed = true
            logger.info("unbound port", metadata: ["port": "\(port)", "interface": "\(current.interface)"])
        }
        unopened = unopened.filter { wanted[$0.key] != nil }
        for (port, want) in wanted where bound[port] == nil {
            do {
                let socket = try DatapathSockets.openPacketSocket(interface: want.interface, namespace: namespace)
                datapath.addPort(LocalPort(portKey: want.portKey, interfaceName: want.interface, fd: socket.fd))
                bound[port] = want
                unopened[port] = nil
                changed = true
                logger.info("bound port", metadata: ["port": "\(port)", "interface": "\(want.interface)", "tunnelKey": "\(want.portKey)"])
            } catch {
                if unopened[port] != "\(error)" {
                    logger.warning("cannot bind port \(port) to interface \(want.interface) yet: \(error)")
                }
                unopened[port] = "\(error)"
            }
        }
        if changed {
            publish()
            datapath.invalidateAll()
        }
    }

    // MARK: Upcall events

    func handle(_ event: UpcallEvent) {
        switch event {
        case .simulated(let decision):
            metrics.simulations[decision, default: 0] += 1
        case .portFailed(let portKey, let reason):
            guard let (port, entry) = bound.first(where: { $0.value.portKey == portKey }) else { return }
            bound[port] = nil
            unopened[port] = reason
            logger.warning("port \(port) lost its interface \(entry.interface): \(reason); binding it again when it is back")
            publish()
            datapath.invalidateAll()
        case .learnMAC(let entry):
            guard mirror.state.port(of: entry.mac, in: entry.bridge) != entry.port else { return }
            mirror.state.learn(entry.mac, on: entry.port, in: entry.bridge)
            publish()
            datapath.invalidate([flowTag(.macEntry(entry.bridge, entry.mac))])
            metrics.macLearned += 1
            share(NSDBMirror.macKey(entry.bridge, entry.mac), entry.port.description)
        case .learnARP(let entry):
            guard mirror.state.mac(of: entry.address, in: entry.router) != entry.mac else { return }
            mirror.state.learn(entry.address, at: entry.mac, in: entry.router)
            publish()
            datapath.invalidate([flowTag(.arpEntry(entry.router, entry.address))])
            metrics.arpLearned += 1
            release(router: entry.router, address: entry.address)
            share(NSDBMirror.arpKey(entry.router, entry.address), entry.mac.description)
        case .waitForARP(let router, let address, let frame, let inPort):
            if mirror.state.mac(of: address, in: router) != nil {
                datapath.simulate(frame: frame, inPort: inPort)
                return
            }
            let key = ARPWaitKey(router: router, address: address)
            var queue = waiting[key, default: []]
            if queue.count >= Self.waitingLimit { queue.removeFirst() }
            queue.append(WaitingPacket(frame: frame, inPort: inPort, deadline: .now + Self.waitingTime))
            waiting[key] = queue
        }
    }

    /// Sends the packets that waited for `address` through the miss path again.
    private func release(router: RouterID, address: IPv4.Address) {
        guard let queue = waiting.removeValue(forKey: ARPWaitKey(router: router, address: address)) else { return }
        for packet in queue { datapath.simulate(frame: packet.frame, inPort: packet.inPort) }
    }

    private func share(_ key: String, _ value: String) {
        learnedHere[key] = value
        writes.yield((key, value))
    }

    func housekeeping() {
        for (key, value) in retry where learnedHere[key] == value { writes.yield((key, value)) }
        retry.removeAll()
        let now = ContinuousClock.now
        waiting = waiting.compactMapValues { queue in
            let live = queue.filter { $0.deadline > now }
            return live.isEmpty ? nil : live
        }
        if !unopened.isEmpty { reconcileBindings() }
    }

    func stopped() {
        bound.removeAll()
        waiting.removeAll()
    }
}

/// Counters of the control plane, for metrics.
struct ControlMetrics: Sendable {
    var simulations: [String: UInt64] = [:]
    var invalidations: UInt64 = 0
    var macLearned: UInt64 = 0
    var arpLearned: UInt64 = 0
}
