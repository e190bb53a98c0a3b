// The Hive agent: one per hypervisor or gateway host.
//
// What it does. Registers its host in the NSDB (a stable id kept on disk,
// its name and underlay address; liveness under a lease), mirrors the NSDB
// through one resumable watch, binds the interfaces of the ports bound to
// this host, and runs the datapath: a poll thread that forwards cached flows
// and asks the simulation (on that same thread, on an immutable view) about
// new ones. Learned MAC and ARP entries go to the NSDB, under the agent's
// lease, so every agent learns them and they vanish with the host.
//
// Who calls what. `run()` is a `Service`: it returns on graceful shutdown
// after stopping the datapath and revoking the lease. The control state
// lives in the `AgentControl` actor; the datapath thread reads only the
// published `AgentView` and never waits on the control plane.
//
// Store outage. The agent keeps its last view and keeps forwarding and
// simulating; the watch reconnects and resumes from the last revision it
// applied, so no change is missed. Learned entries travel straight between
// hosts too, so ARP resolution needs no NSDB. The view is also kept on disk
// (`ViewCache`): an agent restarted during an outage forwards from it at
// once and registers when the NSDB is back.

import Foundation
import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Logging
import ServiceLifecycle
import Synchronization

public struct AgentConfiguration: Sendable {
    /// The host's name in the NSDB (unique among hosts).
    public var hostName: String
    /// The host's id; when nil it is read from (or first written to) `stateDirectory/host-id`.
    public var hostID: HostID?
    public var stateDirectory: String?
    /// The address the tunnel socket binds to and peers send to.
    public var underlayAddress: IPv4.Address
    /// The network namespace (as `ip netns` names it) whose interfaces and
    /// underlay the agent uses; nil for the agent's own.
    public var networkNamespace: String?
    /// A tunnel zone to join (created if missing).
    public var tunnelZone: String?
    public var leaseTTL: Int64 = 10
    public var datapath = DatapathConfiguration()
    /// Learned MAC and ARP entries unconfirmed by traffic this long are
    /// removed (Linux's bridge ages MACs after 300 s; its neighbour table
    /// expires stale entries after minutes).
    public var macAgeingTime: Duration = .seconds(300)
    public var arpAgeingTime: Duration = .seconds(300)
    /// The most connections tracked at once, and per port (the port whose
    /// packet opened them); beyond, the oldest unreplied one makes room.
    public var connectionLimit = 262_144
    public var connectionLimitPerPort = 65_536
    /// How long connections live without a packet, by protocol and state (Linux's defaults).
    public var connectionTimeouts = ConnectionTimeouts.linux
    /// A leased block of SNAT ports that no connection used this long goes back to the pool.
    public var natBlockIdleTime: Duration = .seconds(60)
    /// The URL of the listener serving this agent's state (`HiveAgentHTTP`),
    /// recorded in its host at registration for the API; nil leaves the host's as it is.
    public var agentEndpoint: String?

    public init(
        hostName: String, hostID: HostID? = nil, stateDirectory: String? = nil, underlayAddress: IPv4.Address,
        networkNamespace: String? = nil, tunnelZone: String? = nil
    ) {
        self.hostName = hostName
        self.hostID = hostID
        self.stateDirectory = stateDirectory
        self.underlayAddress = underlayAddress
        self.networkNamespace = networkNamespace
        self.tunnelZone = tunnelZone
    }
}

public struct AgentError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

public final class Agent: Service, Sendable {
    public let configuration: AgentConfiguration
    let store: any Store
    let logger: Logger
    let control: AgentControl
    let scopeKicker = ScopeKicker()
    private let events: AsyncStream<UpcallEvent>
    private let controlEvents: AsyncStream<UpcallEvent>
    let simulationCounts: PublishedSimulationCounts
    private let addressRequests: AsyncStream<PortID>
    private let natRequests: AsyncStream<NATPortRequest>
    let blocksInUse: PublishedNATBlocks
    let datapath: Datapath<SimulationUpcalls>
    let connectionStatistics: PublishedConnectionStatistics
    /// The upcall counter, sampled every second for the flow summary's rate.
    let upcallRates = UpcallRates()

    /// Opens the tunnel socket (in the host's namespace) and prepares the
    /// datapath; nothing runs until `run()`.
    public init(store: any Store, configuration: AgentConfiguration, logger: Logger) throws {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        let (events, continuation) = AsyncStream<UpcallEvent>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        self.events = events
        let (controlEvents, controlContinuation) = AsyncStream<UpcallEvent>.makeStream(bufferingPolicy: .unbounded)
        self.controlEvents = controlEvents
        let shared = SharedView()
        let upcalls = SimulationUpcalls(
            shared: shared, events: continuation, control: controlContinuation,
            connections: ConnectionTable(
                capacity: configuration.connectionLimit, capacityPerPort: configuration.connectionLimitPerPort,
                timeouts: configuration.connectionTimeouts))
        connectionStatistics = upcalls.connectionStatistics
        simulationCounts = upcalls.publishedSimulationCounts
        let tunnelFD = try DatapathSockets.openUDPSocket(
            address: configuration.underlayAddress, port: configuration.datapath.tunnelPort,
            namespace: configuration.networkNamespace)
        datapath = try Datapath(
            handler: upcalls, tunnelFD: tunnelFD, underlayAddress: configuration.underlayAddress,
            configuration: configuration.datapath)
        let (addressRequests, requester) = AsyncStream<PortID>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        self.addressRequests = addressRequests
        let (natRequests, natRequester) = AsyncStream<NATPortRequest>.makeStream(bufferingPolicy: .unbounded)
        self.natRequests = natRequests
        blocksInUse = upcalls.blocksInUse
        control = AgentControl(
            store: store, datapath: datapath, shared: shared, namespace: configuration.networkNamespace, logger: logger,
            ageing: (mac: configuration.macAgeingTime, arp: configuration.arpAgeingTime), addressRequests: requester,
            natRequests: natRequester, scopeKicker: scopeKicker)
    }

    /// The host id, once registered.
    public var hostID: HostID? { get async { await control.hostID } }

    public var statistics: DatapathStatistics { datapath.statistics }

    /// What the agent loaded of the NSDB: scopes, and changes its watch delivered.
    public var nsdbStatistics: (scopesLoaded: Int, watchEvents: UInt64) {
        get async { await (control.metrics.scopesLoaded, control.metrics.watchEvents) }
    }

    public func run() async throws {
        let host: HostID
        if let (cachedHost, cache) = cachedView() {
            // Forward at once from the last view; the NSDB is joined in the background.
            host = cachedHost
            await control.start(host: host)
            await control.load(cache.rangeResult)
            logger.notice("started from the view cache; joining the NSDB in the background", metadata: [
                "revision": "\(cache.revision)", "savedAt": "\(cache.savedAt)", "records": "\(cache.records.count)",
            ])
        } else {
            host = try await registerAtStart()
        }
        restoreConnections()
        try datapath.start()
        logger.info("agent up", metadata: [
            "host": "\(configuration.hostName)", "id": "\(host)", "underlay": "\(configuration.underlayAddress)",
            "namespace": "\(configuration.networkNamespace ?? "-")",
        ])
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.followNSDB(host: host) }
                group.addTask { await self.handleEvents(self.events) }
                group.addTask { await self.handleEvents(self.controlEvents) }
                group.addTask { await self.shareLearnedEntries() }
                group.addTask { await self.allocateAddresses() }
                group.addTask { await self.leaseNATBlocks(self.natRequests) }
                group.addTask { await self.releaseIdleNATBlocks(blocksInUse: self.blocksInUse) }
                group.addTask { await self.housekeeping() }
                group.addTask { await self.publishTraces(host: host) }
                group.addTask { await self.cacheView() }
                group.addTask { await self.keepRegistered(host: host) }
                await group.waitForAll()
            }
        }
        datapath.stop()
        saveConnections()
        await writeViewCache()
        await control.stopped()
        let lease = await control.lease
        if lease != 0 { try? await store.revokeLease(lease) }
        logger.info("agent down", metadata: ["host": "\(configuration.hostName)"])
    }

    /// Registers the host at a start without a view cache. A busy or briefly
    /// unreachable NSDB is waited for (a write whose answer was lost is
    /// found by the next attempt's read); a refusal (a name taken) ends the start.
    private func registerAtStart() async throws -> HostID {
        var backoff = Duration.milliseconds(200)
        var registered: HostID?
        while true {
            do {
                if registered == nil {
                    registered = try await HostRegistration(store: store, configuration: configuration, logger: logger).register()
                    await control.start(host: registered!)
                }
                try await renewLease(host: registered!)
                return registered!
            } catch let error as StoreError {
                switch error {
                case .unavailable, .outcomeUnknown:
                    logger.warning("NSDB busy or unreachable while registering; trying again", metadata: [
                        "error": "\(error)", "retryIn": "\(backoff)",
                    ])
                    try await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(5))
                default:
                    throw error
                }
            }
        }
    }

    /// Registers the host when it started from its cache (retrying until the
    /// NSDB answers), then keeps its lease; a lapsed one (a long outage) is replaced.
    private func keepRegistered(host: HostID) async {
        let interval = Duration.seconds(max(1, Double(configuration.leaseTTL) / 3))
        var backoff = Duration.milliseconds(200)
        while await control.lease == 0, !Task.isCancelled {
            do {
                _ = try await HostRegistration(store: store, configuration: configuration, logger: logger).register()
                try await renewLease(host: host)
                logger.notice("joined the NSDB: host registered alive")
            } catch {
                logger.debug("NSDB not reachable yet, forwarding from the cached view: \(error)")
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, interval)
            }
        }
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { break }
            do {
                try await store.keepAlive(await control.lease)
            } catch StoreError.leaseNotFound {
                if (try? await renewLease(host: host)) != nil { logger.warning("host lease had lapsed; registered alive again") }
            } catch {
                logger.debug("lease keep-alive failed: \(error)")
            }
        }
    }

    /// A new lease, the host marked alive under it, and what was learned here shared again under it.
    private func renewLease(host: HostID) async throws {
        let lease = try await store.grantLease(ttl: configuration.leaseTTL)
        try await TopologyRepository(store: store).markAlive(host, lease: lease.id)
        await control.leaseReplaced(lease.id)
    }

    /// The host id and view cache to start from, when the state directory
    /// holds both; a cache that cannot be used is said and ignored.
    private func cachedView() -> (HostID, ViewCache)? {
        guard let directory = configuration.stateDirectory,
              let host = configuration.hostID ?? HostRegistration.storedID(in: directory) else { return nil }
        do {
            guard let cache = try ViewCache.read(directory: directory, host: host) else { return nil }
            return (host, cache)
        } catch {
            logger.warning("ignoring the view cache: \(error)")
            return nil
        }
    }

    /// Writes the view to the cache, at most once a second and only when it changed.
    private func cacheView() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            await writeViewCache()
        }
    }

    private func writeViewCache() async {
        guard let directory = configuration.stateDirectory, let (mirror, host, version) = await control.viewToCache() else { return }
        do {
            try ViewCache(mirror: mirror, host: host).write(directory: directory)
            await control.viewCached(version: version)
        } catch {
            await control.viewCacheFailed()
            logger.warning("could not write the view cache: \(error)")
        }
    }

    /// Where the connection table is kept across restarts.
    private var connectionsFile: String? {
        configuration.stateDirectory.map { $0 + "/connections" }
    }

    /// Reads the connections a previous run saved, before any port is
    /// bound, so the VMs' connections survive an agent restart.
    private func restoreConnections() {
        guard let path = connectionsFile, let data = FileManager.default.contents(atPath: path) else { return }
        let restored = datapath.whileStopped { $0.restoreConnections(Array(data)) }
        if let restored {
            logger.info("connections restored", metadata: ["count": "\(restored)", "file": "\(path)"])
        } else {
            logger.warning("ignoring a malformed connection state file", metadata: ["file": "\(path)"])
        }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes the connection table (after the datapath stopped), as the view cache is written.
    private func saveConnections() {
        guard let path = connectionsFile else { return }
        let bytes = datapath.whileStopped { $0.savedConnections() }
        do {
            try DurableFile.replace(path, with: bytes, mode: 0o644)
        } catch {
            logger.warning("could not save connections: \(error)", metadata: ["file": "\(path)"])
        }
    }

    /// Reads what this host needs of the NSDB (the global ranges, then its
    /// scopes until nothing more is wanted), then follows it with one watch
    /// that grows as changes make more scopes wanted. A watch the store
    /// could not keep up means a fresh read: ranges watched from different
    /// revisions resume from no single one.
    private func followNSDB(host: HostID) async {
        var backoff = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                let (mirror, scopes, problems, ranges) = try await readView(host: host)
                await control.replace(mirror, scopes: scopes, problems: problems, watchedRanges: ranges.count)
                let watch = await store.watch(ranges)
                // The watch is read by one task and applied by another, so a
                // burst received while a batch is applied is applied at once.
                let batches = Coalescer<WatchBatch>()
                scopeKicker.attach(batches)
                defer { scopeKicker.attach(nil) }
                backoff = .milliseconds(100)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        defer { batches.finish() }
                        for try await batch in watch.events { batches.push(batch) }
                    }
                    group.addTask {
                        await batches.drain { batches in
                            // Empty batches with no revision are the kicker's: a packet waits on a scope.
                            let changes = batches.filter { !$0.events.isEmpty || $0.revision != 0 }
                            if !changes.isEmpty {
                                await self.control.apply(changes)
                                self.logApplied(changes)
                            }
                            await self.loadWantedScopes(into: watch)
                        }
                    }
                    try await group.waitForAll()
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("NSDB watch interrupted; forwarding with the last view until it is read again: \(error)")
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
            }
        }
    }

    /// The view read whole: the global ranges, then scope after scope.
    private func readView(host: HostID) async throws -> (NSDBMirror, ScopeLoader, [String], [WatchedRange]) {
        var mirror = NSDBMirror()
        var changes = NSDBMirror.Changes()
        var scopes = ScopeLoader()
        var reads = try await ScopeReads.read(NSDBMirror.globalPrefixes.map { .prefix($0) }, from: store)
        var ranges: [WatchedRange] = []
        while true {
            for keyValue in reads.keyValues { mirror.apply(WatchEvent(kind: .put, keyValue: keyValue), into: &changes) }
            mirror.revision = max(mirror.revision, reads.revision)
            ranges += reads.ranges
            scopes.finished(reads)
            guard let work = scopes.work(for: mirror.wantedScopes(of: host, portDevices: scopes.portDevices)) else { break }
            reads = try await ScopeReads.read(work, from: store)
        }
        return (mirror, scopes, changes.problems, ranges)
    }

    /// Reads the scopes the last changes made wanted (a new port's device, a
    /// chain a rule jumps to) and adds them to the watch.
    private func loadWantedScopes(into watch: MultiWatch) async {
        var failures = 0
        while let work = await control.scopeWork() {
            do {
                let reads = try await ScopeReads.read(work, from: store)
                await control.scopesRead(reads, for: work)
                watch.add(reads.ranges)
            } catch {
                await control.scopeReadFailed(work)
                failures += 1
                guard failures < 5, !Task.isCancelled else {
                    logger.warning("could not read newly wanted scopes; trying again after the next change: \(error)")
                    return
                }
                try? await Task.sleep(for: .milliseconds(200 * failures))
            }
        }
    }

    private func handleEvents(_ events: AsyncStream<UpcallEvent>) async {
        for await event in events {
            await control.handle(event)
        }
    }

    /// Writes learned MAC and ARP entries under the host's lease (and
    /// deletes aged ones), in batches: every 50 ms, what accumulated goes in
    /// transactions of up to 100 operations, a key written many times once.
    /// A failure (store outage) requeues the batch for the next round.
    private func shareLearnedEntries() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
            // Nothing is written without the host's lease: it takes the entries with it.
            let lease = await control.lease
            guard lease != 0 else { continue }
            let batch = await control.takePendingWrites()
            guard !batch.isEmpty else { continue }
            var failed: [(key: String, write: AgentControl.LearnedWrite)] = []
            let puts = batch.filter { if case .put = $0.write { true } else { false } }
            var start = puts.startIndex
            while start < puts.endIndex {
                let chunk = puts[start..<min(start + 100, puts.endIndex)]
                start = chunk.endIndex
                let operations: [HiveStore.Operation] = chunk.compactMap { item in
                    guard case .put(let value) = item.write else { return nil }
                    return .put(key: item.key, value: Array(value.utf8), lease: lease)
                }
                do {
                    _ = try await store.transaction(Transaction(compares: [], success: operations, failure: []))
                    await control.sharedBatch()
                } catch {
                    logger.debug("could not share \(chunk.count) learned entries: \(error)")
                    failed += chunk
                }
            }
            // Aged entries: each deleted only if it still holds our value, so an
            // entry another host learned meanwhile stays.
            for item in batch {
                guard case .delete(let value) = item.write else { continue }
                do {
                    _ = try await store.transaction(Transaction(
                        compares: [Compare(.key(item.key), .value(Array(value.utf8)), .equal)],
                        success: [.delete(KeyRange.key(item.key))], failure: []))
                } catch {
                    failed.append(item)
                }
            }
            if !failed.isEmpty { await control.requeue(failed) }
        }
    }

    /// Gives ports without an address, whose VM asked DHCP for one, an
    /// address from their bridge's pool: the repository's "auto", in one
    /// transaction that keeps addresses unique, guarded by the port's
    /// revision so a concurrent change by a user is never overwritten. The
    /// address stays the port's fixed IP (the NSDB keeps it, whichever host
    /// answers the VM next); the watch brings it back and the held request
    /// is answered.
    private func allocateAddresses() async {
        let repository = TopologyRepository(store: store)
        for await port in addressRequests {
            var failure: String?
            attempts: for _ in 0..<5 {
                do {
                    guard let stored = try await repository.find(port) else {
                        failure = "the port is gone"
                        break attempts
                    }
                    guard stored.object.fixedIPs.isEmpty else { break attempts }
                    var updated = stored.object
                    updated.fixedIPs = [Port.automaticAddress]
                    let saved = try await repository.update(updated, expectedRevision: stored.revision)
                    logger.info("gave a DHCP client's port an address", metadata: [
                        "port": "\(port)", "address": "\(saved.object.fixedIPs.map(\.description).joined(separator: ","))",
                    ])
                    await control.addressAllocated()
                    break attempts
                } catch RepositoryError.staleRevision {
                    continue
                } catch {
                    failure = "\(error)"
                    break attempts
                }
            }
            if let failure { await control.addressAllocationFailed(port, reason: failure) }
        }
    }

    /// Writes traced packets under their request's lease, so they go with
    /// it; a request already gone (its lease lapsed) loses them.
    private func publishTraces(host: HostID) async {
        var sequence: UInt64 = 0
        let encoder = JSONEncoder()
        while !Task.isCancelled {
            // Often while a trace is armed here; rarely otherwise, so an idle agent sleeps.
            let armed = await control.metrics.tracesArmed > 0
            try? await Task.sleep(for: .milliseconds(armed ? 20 : 250))
            for trace in await control.takePendingTraces() {
                sequence += 1
                let digits = String(sequence)
                let key = TopologyKeys.traceResults(of: trace.id) + host.description + "/" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
                do {
                    _ = try await store.put(key, value: Array(try encoder.encode(trace.report)), lease: trace.lease)
                } catch {
                    await control.tracePublishFailed()
                    logger.debug("could not publish a traced packet: \(error)")
                }
            }
        }
    }

    private func housekeeping() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            upcallRates.record(datapath.statistics.upcalls)
            await control.housekeeping()
        }
    }

    /// Prometheus text exposition of the counters of `agents`.
    public static func metricsText(_ agents: [Agent]) async -> String {
        var sources: [AgentMetrics.Source] = []
        for agent in agents {
            var control = await agent.control.metrics
            control.simulations = agent.simulationCounts.value.withLock { $0 }
            control.registered = await agent.control.lease != 0
            sources.append(AgentMetrics.Source(
                statistics: agent.datapath.statistics, control: control,
                connections: agent.connectionStatistics.value.withLock { $0 }, host: agent.configuration.hostName))
        }
        return AgentMetrics.render(sources)
    }
}

