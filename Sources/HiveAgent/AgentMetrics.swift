import Foundation
import HiveDatapath

/// The agent's Prometheus text exposition (format 0.0.4).
enum AgentMetrics {
    struct Source {
        var statistics: DatapathStatistics
        var control: ControlMetrics
        var connections: ConnectionStatistics
        var host: String
    }

    /// One exposition for several agents (the sandbox runs two in one
    /// process): each family once, each sample labelled with its host.
    static func render(_ sources: [Source]) -> String {
        var families: [String: (type: String, help: String, samples: [String])] = [:]
        var order: [String] = []
        for source in sources {
            render(source) { name, type, help, sample in
                if families[name] == nil {
                    families[name] = (type, help, [])
                    order.append(name)
                }
                if let sample { families[name]!.samples.append(sample) }
            }
        }
        var out = ""
        for name in order {
            let family = families[name]!
            out += "# HELP \(name) \(family.help)\n# TYPE \(name) \(family.type)\n"
            for sample in family.samples { out += sample + "\n" }
        }
        return out
    }

    private static func render(_ source: Source, emit: (String, String, String, String?) -> Void) {
        let statistics = source.statistics
        let control = source.control
        let ports = statistics.ports.sorted { $0.key < $1.key }
        var current = (name: "", type: "", help: "")
        func family(_ name: String, _ type: String, _ help: String) {
            current = (name, type, help)
            emit(name, type, help, nil)
        }
        func sample(_ name: String, _ labels: [(String, String)], _ value: some BinaryInteger) {
            let all = [("host", source.host)] + labels
            let text = all.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
            emit(current.name, current.type, current.help, "\(name){\(text)} \(value)")
        }
        /// A family with one sample per bound port.
        func portFamily(_ name: String, _ help: String, _ counter: KeyPath<DatapathStatistics.PortCounters, UInt64>) {
            family(name, "counter", help)
            for (key, port) in ports { sample(name, [("port_key", "\(key)"), ("interface", port.name)], port[keyPath: counter]) }
        }
        /// A family with the host's one sample.
        func scalar(_ name: String, _ type: String, _ help: String, _ value: some BinaryInteger) {
            family(name, type, help)
            sample(name, [], value)
        }
        portFamily("hive_port_received_packets_total", "Frames read from a bound port's interface.", \.receivedPackets)
        portFamily("hive_port_received_bytes_total", "Bytes read from a bound port's interface.", \.receivedBytes)
        portFamily("hive_port_sent_packets_total", "Frames written to a bound port's interface.", \.sentPackets)
        portFamily("hive_port_sent_bytes_total", "Bytes written to a bound port's interface.", \.sentBytes)
        family("hive_port_drops_total", "counter", "Frames from a bound port that were dropped, by reason (port security, too big for the tunnel, policy).")
        for (key, port) in ports {
            let labels = [("port_key", "\(key)"), ("interface", port.name), ("port", control.portNames[key] ?? "")]
            for (code, reason) in DropCode.labels.enumerated() {
                sample("hive_port_drops_total", labels + [("reason", reason)], port.drops[code])
            }
            sample("hive_port_drops_total", labels + [("reason", "too_big")], port.tooBig)
        }
        portFamily("hive_port_kernel_drops_total", "Frames the kernel dropped on a port's socket before the agent read them (queue full).", \.kernelDrops)
        scalar("hive_tunnel_received_packets_total", "counter", "Geneve packets received from other hosts.", statistics.tunnelReceivedPackets)
        scalar("hive_tunnel_kernel_drops_total", "counter", "Tunnel datagrams the kernel dropped on the UDP socket before the agent read them (queue full).", statistics.tunnelKernelDrops)
        scalar("hive_tunnel_sent_packets_total", "counter", "Geneve packets sent to other hosts.", statistics.tunnelSentPackets)
        scalar("hive_flows", "gauge", "Flows in the flow table.", statistics.flows)
        scalar("hive_flow_hits_total", "counter", "Packets forwarded by a cached flow.", statistics.flowHits)
        scalar("hive_upcalls_total", "counter", "Packets that missed the flow table and were simulated.", statistics.upcalls)
        scalar(
            "hive_flow_tracking_misses_total", "counter",
            "Flow hits simulated again: their connection had moved where the flow does not hold, or a SYN, RST or invalid segment.",
            statistics.trackingMisses)
        scalar("hive_upcalls_held_total", "counter", "Missed packets held until an ARP answer, then simulated again.", statistics.held)
        scalar("hive_flows_installed_total", "counter", "Flows installed.", statistics.flowsInstalled)
        scalar("hive_flows_invalidated_total", "counter", "Flows removed because something they depended on changed.", statistics.flowsInvalidated)
        scalar("hive_flows_expired_total", "counter", "Flows removed after being idle.", statistics.flowsExpired)
        scalar("hive_invalidations_total", "counter", "Topology or state changes that invalidated flows.", control.invalidations)
        family("hive_simulations_total", "counter", "Simulations, by outcome (drop_<reason> for drops).")
        for (decision, count) in control.simulations.sorted(by: { $0.key < $1.key }) { sample("hive_simulations_total", [("outcome", decision)], count) }
        let connections = source.connections
        scalar("hive_conntrack_entries", "gauge", "Connections tracked.", connections.entries)
        scalar("hive_conntrack_created_total", "counter", "Connection entries created.", connections.counters.created)
        scalar("hive_conntrack_deleted_total", "counter", "Connection entries removed (expired, closed and reopened, evicted).", connections.counters.deleted)
        family("hive_conntrack_drops_total", "counter", "Connection entries evicted or refused, by reason.")
        sample("hive_conntrack_drops_total", [("reason", "early_drop")], connections.counters.earlyDropped)
        sample("hive_conntrack_drops_total", [("reason", "table_full")], connections.counters.refusedTableFull)
        sample("hive_conntrack_drops_total", [("reason", "port_full")], connections.counters.refusedPortFull)
        scalar("hive_conntrack_expired_total", "counter", "Connection entries removed at their timeout.", connections.counters.expired)
        scalar("hive_conntrack_invalid_total", "counter", "Forwarded packets that no connection could take (not tracked).", connections.counters.invalid)
        scalar("hive_flow_state_sent_total", "counter", "Flow-state messages sent to other hosts.", statistics.flowStateSent)
        scalar("hive_flow_state_received_total", "counter", "Flow-state messages received from other hosts.", statistics.flowStateReceived)
        scalar("hive_flow_state_imported_total", "counter", "Connection entries installed from other hosts' flow state.", connections.counters.imported)
        scalar("hive_flow_state_malformed_total", "counter", "Flow-state messages ignored as malformed.", connections.malformedMessages)
        family("hive_datapath_drops_total", "counter", "Packets the datapath dropped, by reason.")
        for reason in DatapathStatistics.DropReason.allCases { sample("hive_datapath_drops_total", [("reason", reason.rawValue)], statistics.drops[reason] ?? 0) }
        scalar("hive_datapath_super_frames_total", "counter", "Segmentation-offloaded super-frames read from ports.", statistics.superFramesReceived)
        scalar("hive_datapath_super_frames_segmented_total", "counter", "Super-frames cut into segments for the tunnel.", statistics.superFramesSegmented)
        scalar("hive_datapath_segments_sent_total", "counter", "Segments of super-frames sent through the tunnel.", statistics.segmentsSent)
        scalar("hive_datapath_checksums_completed_total", "counter", "Partial checksums the datapath completed.", statistics.checksumsCompleted)
        scalar("hive_tunnel_coalesced_buffers_total", "counter", "Tunnel receives that held a run of datagrams (UDP_GRO).", statistics.tunnelCoalescedBuffers)
        scalar("hive_datapath_joined_super_frames_total", "counter", "Super-frames joined from TCP segments of the tunnel for local ports.", statistics.coalescedSuperFrames)
        scalar("hive_datapath_joined_segments_total", "counter", "TCP segments of the tunnel joined into super-frames.", statistics.coalescedSegments)
        scalar("hive_mac_learned_total", "counter", "MAC table entries this agent learned.", control.macLearned)
        scalar("hive_arp_learned_total", "counter", "ARP table entries this agent learned.", control.arpLearned)
        scalar("hive_mac_limit_refused_total", "counter", "MACs not learned because their port had reached its MAC limit.", control.macLimitRefused)
        scalar("hive_mac_aged_total", "counter", "Learned MAC entries removed after 300 s without traffic.", control.macAged)
        scalar("hive_arp_aged_total", "counter", "Learned ARP entries removed after 300 s without traffic.", control.arpAged)
        scalar("hive_dhcp_addresses_allocated_total", "counter", "Ports without an address given one from their subnet's pool when their VM asked DHCP.", control.addressesAllocated)
        scalar("hive_dhcp_address_failures_total", "counter", "DHCP clients' ports that could not be given an address (pool exhausted, port gone).", control.addressAllocationFailures)
        scalar("hive_learned_writes_total", "counter", "Batched NSDB transactions that shared learned entries.", control.learnedWriteBatches)
        scalar("hive_learned_sent_direct_total", "counter", "Learned entries sent straight to the other hosts that can reach their device.", control.learnedSentDirectly)
        scalar("hive_learned_received_direct_total", "counter", "Learned entries other hosts sent straight here that changed the view.", control.learnedReceivedDirectly)
        scalar("hive_nsdb_watch_batches_total", "counter", "Batches of NSDB changes the agent's watch delivered and it applied.", control.watchBatches)
        scalar("hive_nsdb_watch_events_total", "counter", "NSDB changes the agent's watch delivered (only those of the scopes it loaded).", control.watchEvents)
        scalar("hive_nsdb_scopes_loaded", "gauge", "Scopes of the topology this agent loaded (its host, the devices its ports reach, their chains and groups).", UInt64(control.scopesLoaded))
        scalar("hive_nsdb_watched_ranges", "gauge", "Key ranges the agent's NSDB watch follows.", UInt64(control.watchedRanges))
        scalar("hive_nsdb_scope_read_failures_total", "counter", "Reads of newly wanted scopes that failed (retried after the next change).", control.scopeReadFailures)
        scalar("hive_nsdb_held_for_topology_total", "counter", "Packets held until the device they cross to was loaded (then simulated again).", control.heldForTopology)
        scalar("hive_topology_objects_compiled_total", "counter", "Topology objects compiled; a change compiles again only the islands (devices joined by links, with what they use) whose objects changed.", control.objectsCompiled)
        scalar("hive_topology_islands", "gauge", "Islands of the loaded topology (devices joined by links), each compiled on its own.", UInt64(control.islands))
        scalar("hive_topology_rebuilds_total", "counter", "Rebuilds of the compiled topology (a burst of batches applied together costs one).", control.topologyRebuilds)
        scalar("hive_view_cache_writes_total", "counter", "Writes of the agent's view to its local cache.", control.viewCacheWrites)
        scalar("hive_view_cache_failures_total", "counter", "Writes of the view cache that failed.", control.viewCacheFailures)
        scalar("hive_nsdb_registered", "gauge", "1 once the agent holds a lease in the NSDB (0 while it runs from its view cache, unregistered).", control.registered ? 1 : 0)
        scalar("hive_nat_blocks", "gauge", "Blocks of 64 SNAT ports this host holds.", control.natBlocksHeld)
        scalar("hive_nat_block_leases_total", "counter", "Blocks of SNAT ports leased from the NSDB.", control.natBlocksLeased)
        scalar("hive_nat_block_releases_total", "counter", "Idle blocks of SNAT ports given back.", control.natBlocksReleased)
        scalar("hive_nat_lease_failures_total", "counter", "SNAT port requests that found no free block (or no NSDB); their packets dropped.", control.natLeaseFailures)
        scalar("hive_live_traces_armed", "gauge", "Live trace requests armed on this host's bound ports.", control.tracesArmed)
        scalar("hive_traced_packets_total", "counter", "Packets traced for live trace requests.", control.tracedPackets)
        scalar("hive_trace_publish_failures_total", "counter", "Traced packets that could not be written to the NSDB (request gone, or no NSDB).", control.tracePublishFailures)
        scalar("hive_nat_collisions_total", "counter", "New translated connections refused because their reply tuple was in use.", connections.counters.translationCollisions)
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
