import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore

// Learned MAC and ARP entries: what this agent learned and shares through
// the NSDB, the per-port cap on MACs, ageing, and the queue the agent's
// writer task drains in batches.

extension AgentControl {
    /// What the writer does with a learned entry's key.
    enum LearnedWrite: Equatable, Sendable {
        case put(String)
        /// Delete the key if it still holds this value (another host may have learned it since).
        case delete(ifValue: String)
    }

    struct LearnedEntry {
        enum Kind {
            case mac(BridgeID, EthernetAddress, port: PortID)
            case arp(RouterID, IPv4.Address)
        }
        var kind: Kind
        var value: String
        /// When traffic last confirmed the entry.
        var lastSeen: ContinuousClock.Instant
    }

    /// A new lease (the old one lapsed in an outage, and with it the entries
    /// written under it): share everything learned here again.
    func leaseReplaced(_ lease: LeaseID) {
        self.lease = lease
        for (key, entry) in learnedHere { pendingWrites[key] = .put(entry.value) }
    }

    /// What to write now, in key order; the writer task commits it.
    func takePendingWrites() -> [(key: String, write: LearnedWrite)] {
        guard !pendingWrites.isEmpty else { return [] }
        let batch = pendingWrites.sorted { $0.key < $1.key }.map { (key: $0.key, write: $0.value) }
        pendingWrites.removeAll(keepingCapacity: true)
        return batch
    }

    /// Writes that failed: tried again next round, unless superseded meanwhile.
    func requeue(_ writes: [(key: String, write: LearnedWrite)]) {
        for (key, write) in writes where pendingWrites[key] == nil {
            // Only what is still true: an entry forgotten since is not put back.
            switch write {
            case .put(let value): if learnedHere[key]?.value == value { pendingWrites[key] = write }
            case .delete: if learnedHere[key] == nil { pendingWrites[key] = write }
            }
        }
    }

    func sharedBatch() { metrics.learnedWriteBatches += 1 }

    func share(_ key: String, _ entry: LearnedEntry) {
        learnedHere[key] = entry
        pendingWrites[key] = .put(entry.value)
    }

    /// Stops tracking an entry learned here (moved, taken over, or aged).
    func forget(_ key: String) {
        guard let entry = learnedHere.removeValue(forKey: key) else { return }
        if case .mac(_, _, let port) = entry.kind {
            macCount[port, default: 1] -= 1
            if macCount[port] == 0 { macCount[port] = nil }
        }
    }

    /// Removes entries learned here that traffic has not confirmed within
    /// their ageing time: from the view, the flows that used them, and the NSDB.
    func ageLearnedEntries(now: ContinuousClock.Instant) {
        var tags: [FlowTag] = []
        for (key, entry) in learnedHere {
            switch entry.kind {
            case .mac(let bridge, let mac, let port):
                guard now - entry.lastSeen > ageing.mac else { continue }
                if mirror.state.port(of: mac, in: bridge) == port { mirror.state.macTables[bridge]?[mac] = nil }
                tags.append(flowTag(.macEntry(bridge, mac)))
                metrics.macAged += 1
            case .arp(let router, let address):
                guard now - entry.lastSeen > ageing.arp else { continue }
                mirror.state.arpTables[router]?[address] = nil
                tags.append(flowTag(.arpEntry(router, address)))
                metrics.arpAged += 1
            }
            pendingWrites[key] = .delete(ifValue: entry.value)
            forget(key)
        }
        guard !tags.isEmpty else { return }
        publish()
        datapath.invalidate(tags)
    }
}
