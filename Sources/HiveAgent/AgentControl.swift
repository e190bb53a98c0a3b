import Foundation
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
    /// The host's lease; 0 until the NSDB granted one (an agent started from its view cache).
    var lease: LeaseID = 0
    var mirror = NSDBMirror()
    /// The scopes the mirror holds, and what is known of ports outside them.
    var scopes = ScopeLoader()
    private var topology = TopologyIslands()
    private var version: UInt64 = 0
    /// Whether the mirror holds a view (read from the NSDB or the cache):
    /// only a loaded view is worth caching.
    private var loaded = false
    /// The view version last written to the cache.
    private var cachedVersion: UInt64 = 0
    /// Per bridge or router, the other hosts whose bound ports can reach it:
    /// who gets the entries learned on it directly. Rebuilt after topology
    /// or placement changes.
    var learningPeers: [UUID: [IPv4.Address]]?
    /// Ports whose interface is open in the datapath: port -> (tunnel key, interface).
    var bound: [PortID: (portKey: UInt32, interface: String)] = [:]
    /// Bindings that could not be opened yet (interface missing), with the reason.
    var unopened: [PortID: String] = [:]
    private var waiting: [ARPWaitKey: [WaitingPacket]] = [:]
    /// DHCP requests of ports being given an address, and the ports asked for.
    private var waitingForAddress: [PortID: [WaitingPacket]] = [:]
    /// Packets crossing a link to a device not loaded yet, by the far port.
    private var waitingForTopology: [PendingObject: [WaitingPacket]] = [:]
    /// Wakes the NSDB task to read scopes a packet needs.
    let scopeKicker: ScopeKicker
    private var allocating: Set<PortID> = []
    /// Ports to give an address, for the agent's allocation task.
    let addressRequests: AsyncStream<PortID>.Continuation
    /// Packets waiting for SNAT ports, by address; addresses being leased.
    var waitingForNATPorts: [IPv4.Address: [WaitingPacket]] = [:]
    var natLeasing: Set<IPv4.Address> = []
    var natBlockIdleSince: [NATBlockKey: ContinuousClock.Instant] = [:]
    var natBlockLeasedAt: [NATBlockKey: ContinuousClock.Instant] = [:]
    /// SNAT ports to lease, for the agent's leaser task.
    let natRequests: AsyncStream<NATPortRequest>.Continuation
    var metrics = ControlMetrics()
    /// Entries this agent learned and shares, by NSDB key: to age them, to
    /// cap each port's MACs, and to share them again under a new lease.
    var learnedHere: [String: LearnedEntry] = [:]
    /// MACs learned here per port (the cap's count).
    var macCount: [PortID: Int] = [:]
    /// Writes for the agent's writer task, so a slow or unreachable store
    /// never holds up this actor.
    var pendingWrites: [String: LearnedWrite] = [:]
    private var tunnelPeers: Set<IPv4.Address>?
    /// The flood sets last given to the datapath (`localFloodSets()`).
    private var floodSets: [UInt32: [UInt32]] = [:]
    /// The last connection flushes asked of the datapath (floating IPs moved).
    private var connectionFlushes: [ConnectionFlush] = []
    private var flushSequence: UInt64 = 0
    let ageing: (mac: Duration, arp: Duration)
    /// Traced packets for the agent's trace writer.
    var pendingTraces: [PendingTrace] = []

    struct PendingTrace: Sendable {
        var id: LiveTraceID
        var lease: LeaseID
        var report: TraceReport
    }

    func tracePublishFailed() { metrics.tracePublishFailures += 1 }

    func takePendingTraces() -> [PendingTrace] {
        defer { pendingTraces.removeAll() }
        return pendingTraces
    }

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
        ageing: (mac: Duration, arp: Duration) = (.seconds(300), .seconds(300)),
        addressRequests: AsyncStream<PortID>.Continuation, natRequests: AsyncStream<NATPortRequest>.Continuation,
        scopeKicker: ScopeKicker = ScopeKicker()
    ) {
        self.scopeKicker = scopeKicker
        self.natRequests = natRequests
        self.ageing = ageing
        self.addressRequests = addressRequests
        self.store = store
        self.datapath = datapath
        self.shared = shared
        self.namespace = namespace
        self.logger = logger
    }

    var revision: Revision { mirror.revision }

    /// The lease comes with `leaseReplaced` once the NSDB granted one (an
    /// agent started from its view cache forwards before that).
    func start(host: HostID) {
        hostID = host
    }

    // MARK: NSDB changes

    /// Replaces the mirror with a full read (of the NSDB, or of the view
    /// cache); every flow goes.
    func load(_ read: RangeResult) {
        var fresh = NSDBMirror()
        var changes = NSDBMirror.Changes()
        for keyValue in read.keyValues {
            fresh.apply(WatchEvent(kind: .put, keyValue: keyValue), into: &changes)
        }
        fresh.revision = read.revision
        replace(fresh, scopes: ScopeLoader(), problems: changes.problems)
    }

    /// Replaces the mirror with one read whole, and what it loaded; every flow goes.
    func replace(_ fresh: NSDBMirror, scopes: ScopeLoader, problems: [String], watchedRanges: Int = 0) {
        mirror = fresh
        self.scopes = scopes
        metrics.scopesLoaded = scopes.loaded.count
        metrics.watchedRanges = watchedRanges
        loaded = true
        learningPeers = nil
        rebuildTopology()
        report(problems)
        publish()
        datapath.invalidateAll()
        metrics.invalidations += 1
        reconcileBindings()
    }

    /// Applies the batches the watch delivered since the last call, as one
    /// change: one rebuild of the compiled topology, one new view.
    func apply(_ batches: [WatchBatch], fromWatch: Bool = true) {
        var changes = NSDBMirror.Changes()
        if fromWatch {
            metrics.watchBatches += UInt64(batches.count)
            metrics.watchEvents += UInt64(batches.reduce(0) { $0 + $1.events.count })
        }
        for event in batches.lazy.flatMap(\.events) {
            mirror.apply(event, into: &changes)
            // Another agent learned the entry since, or it is gone (our lease
            // lapsed): it is no longer ours to share or to count.
            if let mine = learnedHere[event.keyValue.key], event.kind == .delete || event.keyValue.text != mine.value {
                forget(event.keyValue.key)
            }
        }
        mirror.revision = max(mirror.revision, batches.map(\.revision).max() ?? 0)
        guard changes.topologyChanged || changes.placementChanged || changes.stateChanged || changes.tracesChanged else { return }
        if changes.topologyChanged { rebuildTopology() }
        if changes.topologyChanged || changes.placementChanged { learningPeers = nil }
        for (router, address) in changes.movedFloatingIPs {
            flushSequence += 1
            connectionFlushes.append(ConnectionFlush(sequence: flushSequence, zone: topology.connectionZone(of: router), address: address))
        }
        if connectionFlushes.count > 256 { connectionFlushes.removeFirst(connectionFlushes.count - 256) }
        report(changes.problems)
        publish()
        if changes.flushAll {
            datapath.invalidateAll()
            metrics.invalidations += 1
        } else if !changes.tags.isEmpty {
            datapath.invalidate(changes.tags.map(flowTag))
            metrics.invalidations += 1
        }
        if changes.placementChanged || changes.topologyChanged { reconcileBindings() }
        for (router, address) in changes.learnedARP { release(router: router, address: address) }
        if changes.topologyChanged, !waitingForAddress.isEmpty { releaseAddressed() }
        if changes.topologyChanged, !waitingForTopology.isEmpty { releaseLoaded() }
    }

    /// Compiles the islands whose inputs changed; the others are kept.
    private func rebuildTopology() {
        let (rebuilt, compiled) = TopologyIslands.build(from: mirror, reusing: topology)
        topology = rebuilt
        metrics.topologyRebuilds += 1
        metrics.objectsCompiled += UInt64(compiled)
        metrics.lastObjectsCompiled = compiled
        metrics.islands = rebuilt.parts.count
    }

    // MARK: Scopes

    /// The scopes and ports to read next, now that the mirror changed; nil when none.
    func scopeWork() -> ScopeWork? {
        guard let hostID, loaded else { return nil }
        return scopes.work(for: mirror.wantedScopes(of: hostID, portDevices: scopes.portDevices, demanded: scopes.demanded))
    }

    /// Applies what a scope read found, as changes; its ranges are watched from now on.
    /// Flows simulated while a referenced scope was missing (a port's new
    /// chain not read yet) carry no tag of it: those of its referrers go.
    func scopesRead(_ reads: ScopeReads, for work: ScopeWork) {
        scopes.finished(reads)
        metrics.scopesLoaded = scopes.loaded.count
        metrics.watchedRanges += reads.ranges.count
        let events = reads.keyValues.map { WatchEvent(kind: .put, keyValue: $0) }
        apply([WatchBatch(events: events, revision: reads.revision)], fromWatch: false)
        let referrers = mirror.referrers(of: Set(work.scopes.keys))
        if !referrers.isEmpty {
            datapath.invalidate(referrers.map(flowTag))
            metrics.invalidations += 1
        }
    }

    func scopeReadFailed(_ work: ScopeWork) {
        scopes.failed(work)
        metrics.scopeReadFailures += 1
    }

    /// For each member of a stateful port group, the remote hosts of the other members.
    private func statefulPeers(_ locations: [PortID: PortLocation]) -> [PortID: [IPv4.Address]] {
        let stateful = Set(mirror.portGroups.values.filter(\.stateful).map(\.id))
        guard !stateful.isEmpty else { return [:] }
        var members: [PortGroupID: [PortID]] = [:]
        for port in mirror.ports.values {
            for group in port.portGroupIds where stateful.contains(group) { members[group, default: []].append(port.id) }
        }
        var peers: [PortID: [IPv4.Address]] = [:]
        for ports in members.values {
            for port in ports {
                for other in ports where other != port {
                    if case .remote(let address) = locations[other], !(peers[port]?.contains(address) ?? false) {
                        peers[port, default: []].append(address)
                    }
                }
            }
        }
        return peers
    }

    private func report(_ problems: [String]) {
        for problem in problems { logger.warning("\(problem)") }
    }

    func publish() {
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
        var state = mirror.state
        state.natBlocks = heldNATBlocks()
        var uplinkHosts: [RouterID: [IPv4.Address]] = [:]
        for binding in mirror.bindings.values {
            guard let port = mirror.ports[binding.portId] else { continue }
            // A port bound to a host whose lease lapsed cannot forward: ECMP passes it over.
            if binding.hostId != hostID, !mirror.aliveHosts.contains(binding.hostId) { state.unavailablePorts.insert(port.tunnelKey) }
            if let router = port.routerId, port.peerId == nil, case .remote(let address) = locations[port.id],
               mirror.aliveHosts.contains(binding.hostId), !(uplinkHosts[router]?.contains(address) ?? false) {
                uplinkHosts[router, default: []].append(address)
            }
        }
        var view = AgentView(topology: topology, state: state, locations: locations, version: version)
        view.statefulPeers = statefulPeers(locations)
        view.uplinkHosts = uplinkHosts
        view.connectionFlushes = connectionFlushes
        view.placements = placements()
        view.hostName = hostID.flatMap { mirror.hosts[$0]?.name } ?? ""
        for (request, lease) in mirror.traceRequests.values {
            guard let port = mirror.ports[request.portId], let local = bound[request.portId], local.portKey == port.tunnelKey else { continue }
            view.traces[port.tunnelKey, default: []].append(ArmedTrace(id: request.id, match: request.match, count: request.count, lease: lease))
        }
        metrics.tracesArmed = view.traces.values.reduce(0) { $0 + $1.count }
        if let hostID {
            let zones = mirror.tunnelZones.values.filter { $0.members.contains { $0.hostId == hostID } }
            if let smallest = zones.map(\.networkMTU).min() { view.networkMTU = smallest }
        }
        shared.publish(view)
        let floodSets = localFloodSets()
        if floodSets != self.floodSets {
            self.floodSets = floodSets
            datapath.setFloodSets(floodSets)
        }
        if let hostID {
            let peers = mirror.peerAddresses(of: hostID)
            if peers != tunnelPeers {
                tunnelPeers = peers
                datapath.setTunnelPeers(peers)
            }
        }
    }

    /// Where the other hosts' floods go here: by each bridge's flood key, the
    /// keys of its ports this host has open and up (the ports a flood's
    /// sender lets through, as far as this host knows; see `SimulationUpcalls.floodOutputs`).
    /// - Complexity: O(ports bound here).
    private func localFloodSets() -> [UInt32: [UInt32]] {
        var sets: [UInt32: [UInt32]] = [:]
        for (id, local) in bound {
            guard let port = mirror.ports[id], port.adminStateUp, !port.isInterior,
                  let bridge = port.bridgeId.flatMap({ mirror.bridges[$0] }), bridge.tunnelKey != 0
            else { continue }
            sets[bridge.tunnelKey, default: []].append(local.portKey)
        }
        for key in sets.keys { sets[key]?.sort() }
        return sets
    }

    /// The view to write to the cache, when it changed since the last one
    /// written (and holds something: an empty mirror never replaces a cache).
    func viewToCache() -> (mirror: NSDBMirror, host: HostID, version: UInt64)? {
        guard loaded, let hostID, version != cachedVersion else { return nil }
        return (mirror, hostID, version)
    }

    func viewCached(version: UInt64) {
        cachedVersion = version
        metrics.viewCacheWrites += 1
    }

    func viewCacheFailed() { metrics.viewCacheFailures += 1 }

    /// Every bound port's host and whether it is alive (this host is).
    private func placements() -> [PortID: TracePlacement] {
        var placements: [PortID: TracePlacement] = [:]
        for binding in mirror.bindings.values {
            let name = mirror.hosts[binding.hostId]?.name ?? binding.hostId.description
            placements[binding.portId] = TracePlacement(host: name, alive: binding.hostId == hostID || mirror.aliveHosts.contains(binding.hostId))
        }
        return placements
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
        // The flows that read these ports' whereabouts go; the others stay.
        var changed: [PortID] = []
        for (port, current) in bound where wanted[port].map({ $0 != current }) ?? true {
            datapath.removePort(portKey: current.portKey)
            bound[port] = nil
            changed.append(port)
            logger.info("unbound port", metadata: ["port": "\(port)", "interface": "\(current.interface)"])
        }
        unopened = unopened.filter { wanted[$0.key] != nil }
        for (port, want) in wanted where bound[port] == nil {
            do {
                let socket = try DatapathSockets.openPacketSocket(interface: want.interface, namespace: namespace)
                // An uplink (a router port on a NIC) takes frames to the router port's MAC, not the NIC's.
                if mirror.ports[port]?.routerId != nil {
                    do {
                        try DatapathSockets.setPromiscuous(fd: socket.fd, interfaceIndex: socket.interfaceIndex)
                    } catch {
                        DatapathSockets.close(socket.fd)
                        throw error
                    }
                }
                datapath.addPort(LocalPort(portKey: want.portKey, interfaceName: want.interface, fd: socket.fd))
                bound[port] = want
                unopened[port] = nil
                changed.append(port)
                logger.info("bound port", metadata: ["port": "\(port)", "interface": "\(want.interface)", "tunnelKey": "\(want.portKey)"])
            } catch {
                if unopened[port] != "\(error)" {
                    logger.warning("cannot bind port \(port) to interface \(want.interface) yet: \(error)")
                }
                unopened[port] = "\(error)"
            }
        }
        if !changed.isEmpty {
            metrics.portNames = Dictionary(bound.map { ($0.value.portKey, topology.name(of: $0.key)) }, uniquingKeysWith: { first, _ in first })
            publish()
            datapath.invalidate(changed.map { flowTag(.port($0)) })
        }
    }

    // MARK: Upcall events

    func handle(_ event: UpcallEvent) {
        switch event {
        case .portFailed(let portKey, let reason):
            guard let (port, entry) = bound.first(where: { $0.value.portKey == portKey }) else { return }
            bound[port] = nil
            unopened[port] = reason
            logger.warning("port \(port) lost its interface \(entry.interface): \(reason); binding it again when it is back")
            publish()
            datapath.invalidate([flowTag(.port(port))])
        case .learnMAC(let entry):
            let key = NSDBMirror.macKey(entry.bridge, entry.mac)
            guard mirror.state.port(of: entry.mac, in: entry.bridge) != entry.port else {
                learnedHere[key]?.lastSeen = .now
                return
            }
            // The cap is a VM's; a link between bridges carries a whole segment's MACs.
            let port = mirror.ports[entry.port]
            let limit = port?.isInterior == true ? Int.max : port?.effectiveMACLimit ?? Port.defaultMACLimit
            let counted: Bool = if case .mac(_, _, entry.port)? = learnedHere[key]?.kind { true } else { false }
            if !counted, macCount[entry.port, default: 0] >= limit {
                metrics.macLimitRefused += 1
                return
            }
            forget(key)
            mirror.state.learn(entry.mac, on: entry.port, in: entry.bridge)
            publish()
            datapath.invalidate([flowTag(.macEntry(entry.bridge, entry.mac))])
            metrics.macLearned += 1
            macCount[entry.port, default: 0] += 1
            share(key, LearnedEntry(kind: .mac(entry.bridge, entry.mac, port: entry.port), value: entry.port.description, lastSeen: .now))
            sendDirectly(.mac(entry), device: entry.bridge.uuid)
        case .learnARP(let entry):
            let key = NSDBMirror.arpKey(entry.router, entry.address)
            guard mirror.state.mac(of: entry.address, in: entry.router) != entry.mac else {
                learnedHere[key]?.lastSeen = .now
                return
            }
            forget(key)
            mirror.state.learn(entry.address, at: entry.mac, in: entry.router)
            publish()
            datapath.invalidate([flowTag(.arpEntry(entry.router, entry.address))])
            metrics.arpLearned += 1
            release(router: entry.router, address: entry.address)
            share(key, LearnedEntry(kind: .arp(entry.router, entry.address), value: entry.mac.description, lastSeen: .now))
            sendDirectly(.arp(entry), device: entry.router.uuid)
        case .learnedElsewhere(let entries, _):
            applyLearnedElsewhere(entries)
        case .refreshed(let macs, let arps):
            let now = ContinuousClock.now
            for entry in macs { learnedHere[NSDBMirror.macKey(entry.bridge, entry.mac)]?.lastSeen = now }
            for entry in arps { learnedHere[NSDBMirror.arpKey(entry.router, entry.address)]?.lastSeen = now }
        case .waitForTopology(let object, let frame, let inPort):
            if isLoaded(object) {
                datapath.simulate(frame: frame, inPort: inPort)
                return
            }
            Self.hold(frame, inPort: inPort, in: &waitingForTopology[object, default: []])
            metrics.heldForTopology += 1
            if scopes.demanded.insert(object).inserted { scopeKicker.kick() }
        case .waitForAddress(let port, let frame, let inPort):
            if let model = mirror.ports[port], !model.fixedIPs.isEmpty {
                datapath.simulate(frame: frame, inPort: inPort)
                return
            }
            Self.hold(frame, inPort: inPort, in: &waitingForAddress[port, default: []])
            if allocating.insert(port).inserted { addressRequests.yield(port) }
        case .traced(let id, let lease, var report):
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            report.time = formatter.string(from: Date())
            if pendingTraces.count < 1024 { pendingTraces.append(PendingTrace(id: id, lease: lease, report: report)) }
            metrics.tracedPackets += 1
        case .waitForNATPorts(let request, let frame, let inPort):
            waitForNATPorts(request, frame: frame, inPort: inPort)
        case .waitForARP(let router, let address, let frame, let inPort):
            if mirror.state.mac(of: address, in: router) != nil {
                datapath.simulate(frame: frame, inPort: inPort)
                return
            }
            Self.hold(frame, inPort: inPort, in: &waiting[ARPWaitKey(router: router, address: address), default: []])
        }
    }

    /// Sends the DHCP requests of ports that now have an address through the miss path again.
    private func releaseAddressed() {
        for (port, queue) in waitingForAddress where !(mirror.ports[port]?.fixedIPs.isEmpty ?? true) {
            waitingForAddress[port] = nil
            allocating.remove(port)
            simulateAgain(queue)
        }
    }

    /// The allocation task gave up on `port` (no free address, or the port is gone).
    func addressAllocationFailed(_ port: PortID, reason: String) {
        allocating.remove(port)
        waitingForAddress[port] = nil
        metrics.addressAllocationFailures += 1
        logger.warning("cannot give port \(port) an address for DHCP: \(reason)")
    }

    func addressAllocated() { metrics.addressesAllocated += 1 }

    /// Sends the packets that waited for `address` through the miss path again.
    func release(router: RouterID, address: IPv4.Address) {
        guard let queue = waiting.removeValue(forKey: ARPWaitKey(router: router, address: address)) else { return }
        simulateAgain(queue)
    }

    /// Keeps a packet until what it waits for arrives: the newest `waitingLimit`, for `waitingTime`.
    static func hold(_ frame: [UInt8], inPort: UInt32, in queue: inout [WaitingPacket]) {
        if queue.count >= waitingLimit { queue.removeFirst() }
        queue.append(WaitingPacket(frame: frame, inPort: inPort, deadline: .now + waitingTime))
    }

    /// The held packets still within their time, queues left empty removed.
    private static func unexpired<Key>(_ queues: [Key: [WaitingPacket]], now: ContinuousClock.Instant) -> [Key: [WaitingPacket]] {
        queues.compactMapValues { queue in
            let live = queue.filter { $0.deadline > now }
            return live.isEmpty ? nil : live
        }
    }

    /// Whether `port` and its device are in the view: a packet crossing to it can go on.
    private func isLoaded(_ object: PendingObject) -> Bool {
        switch object {
        case .chain(let chain):
            return mirror.chains[chain] != nil
        case .port(let port):
            guard let model = mirror.ports[port] else { return false }
            return model.deviceKind == .bridge ? mirror.bridges[BridgeID(model.deviceId)] != nil : mirror.routers[RouterID(model.deviceId)] != nil
        }
    }

    private func releaseLoaded() {
        for (object, queue) in waitingForTopology where isLoaded(object) {
            waitingForTopology[object] = nil
            simulateAgain(queue)
        }
    }

    /// Sends held packets through the miss path again.
    func simulateAgain(_ queue: [WaitingPacket]) {
        for packet in queue { datapath.simulate(frame: packet.frame, inPort: packet.inPort) }
    }

    func housekeeping() {
        let now = ContinuousClock.now
        ageLearnedEntries(now: now)
        waiting = Self.unexpired(waiting, now: now)
        waitingForNATPorts = Self.unexpired(waitingForNATPorts, now: now)
        waitingForTopology = Self.unexpired(waitingForTopology, now: now)
        // The client asks again; a new request restarts the allocation if it was lost.
        for (port, queue) in waitingForAddress where !queue.contains(where: { $0.deadline > now }) {
            waitingForAddress[port] = nil
            allocating.remove(port)
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
    var macLimitRefused: UInt64 = 0
    var macAged: UInt64 = 0
    var arpAged: UInt64 = 0
    var learnedWriteBatches: UInt64 = 0
    var addressesAllocated: UInt64 = 0
    var addressAllocationFailures: UInt64 = 0
    var natBlocksLeased: UInt64 = 0
    var natBlocksReleased: UInt64 = 0
    var natLeaseFailures: UInt64 = 0
    var natBlocksHeld = 0
    var tracedPackets: UInt64 = 0
    var tracesArmed = 0
    var tracePublishFailures: UInt64 = 0
    var viewCacheWrites: UInt64 = 0
    /// Watch batches applied, and the rebuilds of the compiled topology they cost.
    var watchBatches: UInt64 = 0
    var watchEvents: UInt64 = 0
    var topologyRebuilds: UInt64 = 0
    /// Scopes loaded, ranges watched, and scope reads that failed.
    var scopesLoaded = 0
    var watchedRanges = 0
    var scopeReadFailures: UInt64 = 0
    /// Packets held until the device they cross to was loaded.
    var heldForTopology: UInt64 = 0
    /// Topology objects compiled (an island is compiled again only when its inputs changed), and islands.
    var objectsCompiled: UInt64 = 0
    var lastObjectsCompiled = 0
    var islands = 0
    /// Whether the host holds a lease (it may run from its view cache before); filled in for metrics.
    var registered = false
    var viewCacheFailures: UInt64 = 0
    /// Learned entries sent straight to other hosts, and received from them.
    var learnedSentDirectly: UInt64 = 0
    var learnedReceivedDirectly: UInt64 = 0
    /// Port tunnel key -> "device/port", for metric labels.
    var portNames: [UInt32: String] = [:]
}
