import struct Foundation.UUID
import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore

// Learned MAC and ARP entries: what this agent learned and shares through
// the NSDB and, at once, straight with the hosts that simulate through the
// same devices (so learning needs no NSDB round trip and works through an
// NSDB outage); the per-port cap on MACs, ageing, and the queue the agent's
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

    // MARK: Straight to other hosts

    /// Sends an entry this host accepted to the other hosts whose ports can
    /// reach `device` (the NSDB gets it too, from the writer task).
    func sendDirectly(_ entry: SharedLearning, device: UUID) {
        guard let hosts = peers(reaching: device), !hosts.isEmpty else { return }
        datapath.sendMessage(LearnedStateMessage.encode([entry][...]), to: hosts)
        metrics.learnedSentDirectly += 1
    }

    /// Entries another host learned: into the view at once (released held
    /// packets included), as if the NSDB had brought them. They stay that
    /// host's to share and age; the NSDB brings its word on them later.
    func applyLearnedElsewhere(_ entries: [SharedLearning]) {
        var tags: [FlowTag] = []
        var resolved: [(RouterID, IPv4.Address)] = []
        for entry in entries {
            let key: String
            switch entry {
            case .mac(let learned):
                guard mirror.state.port(of: learned.mac, in: learned.bridge) != learned.port else { continue }
                key = NSDBMirror.macKey(learned.bridge, learned.mac)
                mirror.state.learn(learned.mac, on: learned.port, in: learned.bridge)
                tags.append(flowTag(.macEntry(learned.bridge, learned.mac)))
            case .arp(let learned):
                guard mirror.state.mac(of: learned.address, in: learned.router) != learned.mac else { continue }
                key = NSDBMirror.arpKey(learned.router, learned.address)
                mirror.state.learn(learned.address, at: learned.mac, in: learned.router)
                tags.append(flowTag(.arpEntry(learned.router, learned.address)))
                resolved.append((learned.router, learned.address))
            }
            // Another host saw it last: this host's older word on it is not to be shared.
            forget(key)
            if case .put? = pendingWrites[key] { pendingWrites[key] = nil }
            metrics.learnedReceivedDirectly += 1
        }
        guard !tags.isEmpty else { return }
        publish()
        datapath.invalidate(tags)
        for (router, address) in resolved { release(router: router, address: address) }
    }

    /// The other hosts with a port bound in the part of the topology that
    /// `device` belongs to (devices joined by interior links): any of them
    /// may simulate a packet through it.
    private func peers(reaching device: UUID) -> [IPv4.Address]? {
        if learningPeers == nil { learningPeers = computeLearningPeers() }
        return learningPeers?[device]
    }

    private func computeLearningPeers() -> [UUID: [IPv4.Address]] {
        guard let hostID else { return [:] }
        // Union-find over devices, joined by their interior links.
        var parent: [UUID: UUID] = [:]
        func root(_ device: UUID) -> UUID {
            var current = device
            while let next = parent[current], next != current { current = next }
            var walk = device
            while let next = parent[walk], next != current { parent[walk] = current; walk = next }
            return current
        }
        for port in mirror.ports.values {
            parent[port.deviceId] = parent[port.deviceId] ?? port.deviceId
            guard let peer = port.peerId.flatMap({ mirror.ports[$0] }) else { continue }
            parent[peer.deviceId] = parent[peer.deviceId] ?? peer.deviceId
            let (a, b) = (root(port.deviceId), root(peer.deviceId))
            if a != b { parent[a] = b }
        }
        var hostsByPart: [UUID: Set<IPv4.Address>] = [:]
        for binding in mirror.bindings.values where binding.hostId != hostID {
            guard let port = mirror.ports[binding.portId], let address = mirror.underlayAddress(of: binding.hostId, from: hostID) else { continue }
            hostsByPart[root(port.deviceId), default: []].insert(address)
        }
        var peers: [UUID: [IPv4.Address]] = [:]
        for device in parent.keys {
            if let hosts = hostsByPart[root(device)] { peers[device] = hosts.sorted { $0.value < $1.value } }
        }
        return peers
    }
}
