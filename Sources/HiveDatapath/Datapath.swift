// The datapath: one poll loop per host that moves frames between the
// host's bound interfaces and the tunnel to the other hosts.
//
// What it is. A dedicated thread (not the async runtime) owns every socket,
// the flow table and the send queues. Each turn it waits for input (poll),
// applies what the control plane asked between batches (ports bound or
// unbound, flows invalidated, frames to send or to simulate again), then
// reads each ready socket in batches of up to 64 frames:
//   - from a bound interface: key the frame, look the key up in the flow
//     table, and on a hit rewrite and queue it for its outputs; on a miss
//     ask the upcall handler (the agent's simulation) synchronously, install
//     the flow when cacheable, and execute it;
//   - from the tunnel: the Geneve VNI is the egress port's tunnel key; the
//     inner frame goes to that local port as it is. Or the VNI is a bridge's
//     flood key: the frame goes to each local port of that bridge (the
//     agent's `setFloodSets`) but the ingress, which Hive's Geneve option
//     names. Policy was applied at the ingress host: no second simulation.
// Queued frames leave in one sendmmsg per socket at the end of each batch.
//
// Invariants. Only the datapath thread touches sockets, the flow table and
// the queues. The control plane talks to it through `commands` (a mutex
// held for an append or a swap, never across I/O) and an eventfd that wakes
// the poll. The hot path (a flow hit) does not allocate, await, or take a
// lock. A malformed frame is counted and dropped, never trusted.

import CHiveSystem
import HivePacket
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A port bound on this host: its interface's packet socket.
public struct LocalPort: Sendable {
    /// The virtual port's tunnel key: its in-port number and the VNI that reaches it.
    public var portKey: UInt32
    public var interfaceName: String
    public var fd: Int32

    public init(portKey: UInt32, interfaceName: String, fd: Int32) {
        self.portKey = portKey
        self.interfaceName = interfaceName
        self.fd = fd
    }
}

public struct DatapathConfiguration: Sendable {
    /// The UDP port Geneve uses on every host.
    public var tunnelPort: UInt16 = 6081
    /// Flows unused this long are removed.
    public var flowIdleTimeout: Duration = .seconds(30)
    /// Flows older than this are simulated again even when busy, so that
    /// what they learned (MAC and ARP entries) is refreshed and ages right.
    public var flowHardTimeout: Duration = .seconds(120)
    public var flowCapacity = 65_536
    /// Upcalls each port may cause per second, and in one burst: a VM that
    /// floods new flows must not starve the simulation of the others.
    public var upcallsPerSecondPerPort = 20_000
    public var upcallBurstPerPort = 2_000
    /// The datapath thread's nice value; 0: the process's own. Below 0 the
    /// thread runs ahead of the VMs' processes (as the kernel's datapath
    /// runs in softirq): another VM's flood delays a VM's packets less, but
    /// where the VMs share the agent's cores they get less of them.
    public var threadNice: Int32 = 0

    public init(
        tunnelPort: UInt16 = 6081, flowIdleTimeout: Duration = .seconds(30), flowCapacity: Int = 65_536,
        upcallsPerSecondPerPort: Int = 20_000, upcallBurstPerPort: Int = 2_000, flowHardTimeout: Duration = .seconds(120)
    ) {
        self.flowHardTimeout = flowHardTimeout
        self.tunnelPort = tunnelPort
        self.flowIdleTimeout = flowIdleTimeout
        self.flowCapacity = flowCapacity
        self.upcallsPerSecondPerPort = upcallsPerSecondPerPort
        self.upcallBurstPerPort = upcallBurstPerPort
    }
}

/// What the control plane asks the datapath thread to do between batches.
enum DatapathCommand: Sendable {
    case addPort(LocalPort)
    case removePort(UInt32)
    case invalidate([FlowTag])
    case invalidateAll
    case send(frame: [UInt8], outputs: [FlowOutput], ingressKey: UInt32)
    case simulate(frame: [UInt8], inPort: UInt32)
    case setPeers(Set<IPv4.Address>?)
    case setFloodSets([UInt32: [UInt32]])
    case sendMessage(payload: [UInt8], hosts: [IPv4.Address])
    /// Copy the counters, and the flow table when asked, for an operator (`report()`).
    case report(CheckedContinuation<DatapathReport, Never>, flows: Bool)
}

public final class Datapath<Handler: UpcallHandler>: @unchecked Sendable {
    public let configuration: DatapathConfiguration
    /// The tunnel socket's address on the underlay.
    public let underlayAddress: IPv4.Address
    let handler: Handler
    let tunnelFD: Int32
    let wakeFD: Int32

    let commands = Mutex<[DatapathCommand]>([])
    /// 0 before start, 1 while the thread runs, 2 after: whether a report request will be answered.
    let lifecycle = Atomic<UInt8>(0)
    private let running = Atomic<Bool>(true)
    private let published = Mutex(DatapathStatistics())
    private var thread: pthread_t?
    /// Set by `stop()`: the loop closed its sockets and freed its buffers.
    private var stopped = false

    // Owned by the datapath thread from start() on.
    var loop: DatapathLoop<Handler>

    /// - Parameters:
    ///   - tunnelFD: a bound UDP socket (see `DatapathSockets.openUDPSocket`); the datapath closes it.
    public init(handler: Handler, tunnelFD: Int32, underlayAddress: IPv4.Address, configuration: DatapathConfiguration = DatapathConfiguration()) throws(SystemError) {
        self.handler = handler
        self.tunnelFD = tunnelFD
        self.underlayAddress = underlayAddress
        self.configuration = configuration
        wakeFD = try SystemError.check(hive_eventfd_open(), "eventfd", "for the datapath")
        loop = DatapathLoop(handler: handler, tunnelFD: tunnelFD, configuration: configuration)
    }

    deinit {
        DatapathSockets.close(wakeFD)
    }

    // MARK: Control plane (any thread)

    public func addPort(_ port: LocalPort) { post(.addPort(port)) }
    /// Unbinds the port: closes its socket and drops the flows through it.
    public func removePort(portKey: UInt32) { post(.removePort(portKey)) }
    public func invalidate(_ tags: [FlowTag]) { if !tags.isEmpty { post(.invalidate(tags)) } }
    public func invalidateAll() { post(.invalidateAll) }
    /// Sends a frame the agent made (an ARP request it resolved, a reply).
    public func send(frame: [UInt8], outputs: [FlowOutput], ingressKey: UInt32 = 0) {
        post(.send(frame: frame, outputs: outputs, ingressKey: ingressKey))
    }
    /// Runs a frame through the miss path again as if it came in by `inPort`
    /// (a packet that waited for an ARP answer).
    public func simulate(frame: [UInt8], inPort: UInt32) { post(.simulate(frame: frame, inPort: inPort)) }

    /// Sends `payload` to each of `hosts` on the flow-state channel (the
    /// reserved tunnel key), which their handlers read in `receiveFlowState`.
    public func sendMessage(_ payload: [UInt8], to hosts: [IPv4.Address]) {
        if !hosts.isEmpty { post(.sendMessage(payload: payload, hosts: hosts)) }
    }

    /// Where tunnel floods go: for each bridge with ports bound here, by its
    /// flood key (the VNI the other hosts send its floods on), the port keys
    /// of those ports. A flood key not listed is dropped (`unknown_tunnel_key`).
    /// Replaces the previous sets.
    public func setFloodSets(_ sets: [UInt32: [UInt32]]) { post(.setFloodSets(sets)) }

    /// Accept tunnel packets only from these underlay addresses (the other
    /// hosts); nil accepts any sender.
    public func setTunnelPeers(_ peers: Set<IPv4.Address>?) { post(.setPeers(peers)) }

    public var statistics: DatapathStatistics { published.withLock { $0 } }

    private func post(_ command: DatapathCommand) {
        commands.withLock { $0.append(command) }
        _ = hive_eventfd_signal(wakeFD)
    }

    /// Starts the datapath thread.
    public func start() throws(SystemError) {
        precondition(thread == nil, "the datapath is already running")
        precondition(!stopped, "a stopped datapath cannot start again: its sockets are closed; make a new one")
        lifecycle.store(1, ordering: .releasing)
        do {
            thread = try startThread { [self] in self.run() }
        } catch let error as SystemError {
            lifecycle.store(0, ordering: .releasing)
            throw error
        } catch {
            lifecycle.store(0, ordering: .releasing)
            throw SystemError("pthread_create", "for the datapath", code: EAGAIN)
        }
    }

    /// Runs `body` on the handler while the datapath thread is not running
    /// (before `start()` or after `stop()`), when nothing else touches it.
    public func whileStopped<T>(_ body: (Handler) throws -> T) rethrows -> T {
        precondition(thread == nil, "the handler belongs to the datapath thread while it runs")
        return try body(handler)
    }

    /// Stops the thread, then closes every socket it owned.
    public func stop() {
        guard let thread else { return }
        running.store(false, ordering: .releasing)
        _ = hive_eventfd_signal(wakeFD)
        joinThread(thread)
        self.thread = nil
        stopped = true
    }

    private func run() {
        // Not fatal: without the privilege the thread runs at the process's priority.
        if configuration.threadNice != 0 { _ = hive_set_thread_nice(configuration.threadNice) }
        var pending: [DatapathCommand] = []
        var lastPublish: UInt64 = 0
        while running.load(ordering: .acquiring) {
            let ready = loop.wait(wakeFD: wakeFD, timeoutMilliseconds: 100)
            if ready.wake { _ = hive_eventfd_drain(wakeFD) }
            commands.withLock { swap(&$0, &pending) }
            if !pending.isEmpty {
                loop.apply(pending)
                pending.removeAll(keepingCapacity: true)
            }
            loop.turn(ready: ready)
            let now = monotonicNanoseconds()
            if now &- lastPublish > 50_000_000 {
                loop.expireFlows(now: now)
                loop.housekeeping(now: now)
                loop.collectKernelDrops()
                let current = loop.statistics
                published.withLock { $0 = current }
                lastPublish = now
            }
        }
        loop.closeAll()
        published.withLock { $0 = loop.statistics }
        answerReportsAfterStop()
    }
}

/// The datapath's clock: monotonic nanoseconds (flow and connection times).
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}
