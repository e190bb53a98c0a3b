import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore

// Live traces on the datapath thread. A request armed on a local port makes
// the handler record the trace of the packets that match it: on a miss, the
// simulation that decides the packet records it (the decision applied is
// the one reported); on a flow hit, the datapath asks, and the packet is
// simulated once more on the current view and connection table, only to
// trace it (nothing it learns or changes is kept), beside the cached flow's
// counters. With no request armed this costs one branch per batch.

extension SimulationUpcalls {
    /// The first armed request of the packet's port that matches it and has packets left.
    func armedTrace(for key: FlowKey) -> ArmedTrace? {
        guard let armed = view.traces[key.inPort] else { return nil }
        for trace in armed where trace.match.matches(key) && tracedCounts[trace.id, default: 0] < trace.count {
            return trace
        }
        return nil
    }

    /// A cached flow carried a packet while a trace is armed on its port.
    func traceHit(frame: UnsafeRawBufferPointer, key: FlowKey, flow: FlowTable.Entry, now: UInt64) {
        guard let trace = armedTrace(for: key) else { return }
        var options = options
        options.recordsTrace = true
        traceContext.simulate(
            frame: Array(frame), key: key, in: view.topology.snapshot(inPort: key.inPort), state: view.state, connections: connections, now: now, options: options)
        let result = traceContext.result
        let agrees = Set(outputs(for: result)) == Set(flow.actions.outputs)
        let age = Double(now &- flow.installed) / 1e9
        var notes = [
            "carried by a cached flow (\(flow.packets) packets, \(flow.bytes) bytes, installed \(Self.seconds(age)) ago): simulated again on this host's current view and connection table, only to trace it; nothing it would learn or change is kept",
        ]
        if !agrees {
            notes.append("the cached flow's outputs differ from this fresh simulation's: a change reached the view and the flow has not been invalidated yet")
        }
        var report = report(of: result, key: key, notes: notes)
        report.flow = TraceReport.Flow(packets: flow.packets, bytes: flow.bytes, ageSeconds: (age * 1000).rounded() / 1000, agrees: agrees)
        emit(report, for: trace)
    }

    /// A missed packet's own simulation, with the decision the datapath applied.
    func publishTrace(_ trace: ArmedTrace, of result: SimulationResult, key: FlowKey, decision: UpcallDecision) {
        var notes = ["a new flow: this simulation decided the packet"]
        if decision.actions.dropCode == DropCode.conntrackFull, decision.actions.outputs.isEmpty, case .output = result.decision {
            notes.append("then dropped: the connection table is full (no room even after early drop)")
        } else if decision.held {
            notes.append("the packet is held until what it waits for arrives, then simulated again")
        } else {
            notes.append(decision.cache ? "cached as a flow (\(decision.tags.count) invalidation tags)" : "not cached as a flow: the next such packet is simulated again")
        }
        emit(report(of: result, key: key, notes: notes), for: trace)
    }

    /// A miss the port's upcall limit dropped before any simulation.
    func traceLimited(frame: UnsafeRawBufferPointer, key: FlowKey) {
        guard let trace = armedTrace(for: key) else { return }
        let view = view
        let port = view.topology.port(tunnelKey: key.inPort)
        let reference = TraceReport.PortRef(
            id: port?.id.description ?? "", name: port.map { view.topology.name(of: $0.id) } ?? "in-port \(key.inPort)",
            host: view.hostName, hostAlive: true)
        let reason = "DROP: the port is over its upcall limit (new flows it may start per second); dropped before any simulation"
        var report = TraceReport(
            mode: "live", packet: TraceReport.packetText(key), inPort: reference,
            notes: ["the port started more new flows than its upcall limit allows (hive_datapath_drops_total{reason=\"upcall_limited\"}); an honest VM's next packet is simulated once the bucket refills"],
            steps: [TraceReport.Step(depth: 1, kind: "decision", text: "=> " + reason, summary: true)],
            decision: "drop", reason: reason)
        report.host = view.hostName
        emit(report, for: trace)
    }

    private func report(of result: SimulationResult, key: FlowKey, notes: [String]) -> TraceReport {
        let view = view
        var report = TraceReport(
            mode: "live", result: result, key: key, snapshot: view.topology.snapshot(inPort: key.inPort), notes: notes,
            placement: { view.placements[$0] })
        report.host = view.hostName
        return report
    }

    private func emit(_ report: TraceReport, for trace: ArmedTrace) {
        tracedCounts[trace.id, default: 0] += 1
        if tracedCounts.count > 64 {
            // Forget requests no longer armed.
            let armed = Set(view.traces.values.joined().map(\.id))
            tracedCounts = tracedCounts.filter { armed.contains($0.key) }
        }
        events.yield(.traced(trace.id, lease: trace.lease, report))
    }

    static func seconds(_ value: Double) -> String {
        value < 1 ? "\(Int((value * 1000).rounded())) ms" : "\((value * 10).rounded() / 10) s"
    }
}
