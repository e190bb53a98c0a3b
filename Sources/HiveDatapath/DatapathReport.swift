import CHiveSystem
import HivePacket
import Synchronization

/// A copy of the datapath's flow table and counters, taken by its thread
/// between two batches when an operator asks (`Datapath.report()`). Never
/// made on the packet path: a report costs O(flows) on the datapath thread
/// once per request.
public struct DatapathReport: Sendable {
    public struct Flow: Sendable {
        public var key: FlowKey
        /// The fields it matches (`.exact`, or a megaflow's).
        public var mask: FlowMask
        public var actions: FlowActions
        public var tags: [FlowTag]
        public var packets: UInt64
        public var bytes: UInt64
        /// Nanoseconds since the flow was installed.
        public var age: UInt64
        /// Nanoseconds since a packet last used it.
        public var idle: UInt64
        /// The age (ns) at which it is simulated again however busy: the
        /// configured hard timeout, or its own when shorter (a connection's).
        public var hardTimeout: UInt64

        public init(
            key: FlowKey, mask: FlowMask = .exact, actions: FlowActions, tags: [FlowTag], packets: UInt64, bytes: UInt64, age: UInt64, idle: UInt64,
            hardTimeout: UInt64
        ) {
            self.key = key
            self.mask = mask
            self.actions = actions
            self.tags = tags
            self.packets = packets
            self.bytes = bytes
            self.age = age
            self.idle = idle
            self.hardTimeout = hardTimeout
        }
    }

    /// False when the datapath thread is not running (not started yet, or
    /// stopped); nothing else is filled in then.
    public var running: Bool
    /// Empty unless asked for (`report(flows: true)`).
    public var flows: [Flow] = []
    /// The most flows the table holds.
    public var capacity = 0
    /// The configured idle and hard timeouts, in nanoseconds.
    public var idleTimeout: UInt64 = 0
    public var hardTimeout: UInt64 = 0
    /// The counters as of the report (fresher than `Datapath.statistics`).
    public var statistics = DatapathStatistics()
    /// Names the upcall handler gave tags only it can name (see `FlowTagNaming`).
    public var tagNames: [FlowTag: String] = [:]

    public init(running: Bool) {
        self.running = running
    }
}

/// An upcall handler that names some of its flows' tags for a report:
/// those only it can derive (a tracked connection's). Called on the
/// datapath thread while a report is made, never on the packet path.
public protocol FlowTagNaming {
    func flowTagNames() -> [FlowTag: String]
}

extension Datapath {
    /// The counters, and with `flows` the flow table, copied by the datapath
    /// thread between batches: fresher than `statistics`. Answers at once
    /// with `running == false` when the thread is not running.
    public func report(flows: Bool = true) async -> DatapathReport {
        await withCheckedContinuation { (reply: CheckedContinuation<DatapathReport, Never>) in
            // Under the commands lock: the thread marks itself finished under it too, so a
            // request is either taken by the thread or answered here, never left waiting.
            let posted = commands.withLock { queue -> Bool in
                guard lifecycle.load(ordering: .acquiring) == 1 else { return false }
                queue.append(.report(reply, flows: flows))
                return true
            }
            if posted {
                _ = hive_eventfd_signal(wakeFD)
            } else {
                reply.resume(returning: DatapathReport(running: false))
            }
        }
    }

    /// On the datapath thread as it ends: report requests it will never
    /// apply are answered "not running".
    func answerReportsAfterStop() {
        let left = commands.withLock { queue -> [DatapathCommand] in
            lifecycle.store(2, ordering: .releasing)
            defer { queue.removeAll() }
            return queue
        }
        for case .report(let reply, _) in left { reply.resume(returning: DatapathReport(running: false)) }
    }
}

extension DatapathLoop {
    /// The report `Datapath.report()` returns, made on the datapath thread.
    /// - Complexity: O(flows) with `flows`, allocating: only when asked.
    @inline(never)
    func report(now: UInt64, flows withFlows: Bool) -> DatapathReport {
        var report = DatapathReport(running: true)
        let hardTimeout = Self.nanoseconds(configuration.flowHardTimeout)
        report.capacity = flows.capacity
        report.idleTimeout = Self.nanoseconds(configuration.flowIdleTimeout)
        report.hardTimeout = hardTimeout
        report.statistics = statistics
        report.statistics.flows = flows.count
        guard withFlows else { return report }
        report.flows.reserveCapacity(flows.count)
        for entry in flows.entries where entry.live {
            report.flows.append(DatapathReport.Flow(
                key: entry.key, mask: entry.mask, actions: entry.actions, tags: entry.tags, packets: entry.packets, bytes: entry.bytes,
                age: now > entry.installed ? now - entry.installed : 0, idle: now > entry.lastUsed ? now - entry.lastUsed : 0,
                hardTimeout: entry.maximumAge == 0 ? hardTimeout : min(hardTimeout, entry.maximumAge)))
        }
        report.tagNames = (handler as? any FlowTagNaming)?.flowTagNames() ?? [:]
        return report
    }
}
