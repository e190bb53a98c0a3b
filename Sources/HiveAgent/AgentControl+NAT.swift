import HiveDatapath
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Synchronization

// SNAT port blocks: a host translates sources only to ports of blocks it
// holds in the NSDB (`/hive/v1/state/nat/<address>/<block>`, its host id,
// under its lease), so two hosts never hand out the same address and port,
// and a dead host's blocks return to the pool with its lease.
//
// A simulation that finds no free port in this host's blocks holds its
// packet (`waitForNATPorts`); the agent's leaser task claims a block (the
// one holding the packet's own port when it is free, so the port is kept)
// and the packet is simulated again. Blocks no translated connection has
// used for `natBlockIdleTime` go back.

/// SNAT ports asked for by a simulation.
struct NATPortRequest: Hashable, Sendable {
    var address: IPv4.Address
    var firstPort: UInt16
    var lastPort: UInt16
    var preferredPort: UInt16
}

/// One block of SNAT ports of an address.
struct NATBlockKey: Hashable, Sendable {
    var address: IPv4.Address
    var block: UInt16
}

extension AgentControl {
    /// This host's blocks, by address, in order: what simulations take ports from.
    func heldNATBlocks() -> [IPv4.Address: [UInt16]] {
        guard let hostID else { return [:] }
        var blocks: [IPv4.Address: [UInt16]] = [:]
        for (key, holder) in mirror.natBlocks where holder == hostID { blocks[key.address, default: []].append(key.block) }
        return blocks.mapValues { $0.sorted() }
    }

    /// Holds a packet until a block is leased; starts the lease once per address.
    func waitForNATPorts(_ request: NATPortRequest, frame: [UInt8], inPort: UInt32) {
        Self.hold(frame, inPort: inPort, in: &waitingForNATPorts[request.address, default: []])
        if natLeasing.insert(request.address).inserted { natRequests.yield(request) }
    }

    /// The leaser claimed `block`: simulations may use it now (before the watch says so).
    func natBlockLeased(_ block: NATBlockKey) {
        guard let hostID else { return }
        mirror.natBlocks[block] = hostID
        natBlockLeasedAt[block] = .now
        metrics.natBlocksLeased += 1
        metrics.natBlocksHeld = natBlocksHeld
        natLeasing.remove(block.address)
        publish()
        if let queue = waitingForNATPorts.removeValue(forKey: block.address) { simulateAgain(queue) }
    }

    /// No block could be leased (none free, or the store is unreachable): the held packets drop.
    func natLeaseFailed(_ address: IPv4.Address, reason: String) {
        natLeasing.remove(address)
        waitingForNATPorts[address] = nil
        metrics.natLeaseFailures += 1
        logger.warning("cannot lease SNAT ports of \(address): \(reason)")
    }

    /// Held blocks no translated connection used since the last scans, for
    /// `idle` or longer (and leased at least that long ago).
    func idleNATBlocks(inUse: Set<NATBlockKey>, idle: Duration) -> [NATBlockKey] {
        guard let hostID else { return [] }
        let now = ContinuousClock.now
        var idleBlocks: [NATBlockKey] = []
        for (block, holder) in mirror.natBlocks where holder == hostID {
            if inUse.contains(block) {
                natBlockIdleSince[block] = nil
                continue
            }
            let since = natBlockIdleSince[block] ?? now
            natBlockIdleSince[block] = since
            let leased = natBlockLeasedAt[block] ?? since
            if now - since >= idle, now - leased >= idle { idleBlocks.append(block) }
        }
        return idleBlocks
    }

    /// The leaser gave `block` back.
    func natBlockReleased(_ block: NATBlockKey) {
        if mirror.natBlocks[block] == hostID { mirror.natBlocks[block] = nil }
        natBlockIdleSince[block] = nil
        natBlockLeasedAt[block] = nil
        metrics.natBlocksReleased += 1
        metrics.natBlocksHeld = natBlocksHeld
        publish()
    }

    var natBlocksHeld: Int {
        guard let hostID else { return 0 }
        return mirror.natBlocks.values.filter { $0 == hostID }.count
    }
}

extension Agent {
    /// Claims SNAT port blocks as simulations ask, and gives idle ones back.
    func leaseNATBlocks(_ requests: AsyncStream<NATPortRequest>) async {
        for await request in requests {
            guard let host = await control.hostID else { continue }
            do {
                let heldBefore = await control.heldNATBlocks()[request.address]?.count ?? 0
                // Demand that used up blocks already held grows: claim as many
                // again ahead of need (up to 15), so a busy host waits for the
                // NSDB a logarithmic number of times, not once per 64 ports.
                // Idle blocks go back after `natBlockIdleTime`.
                // Each block is handed over as soon as it is ours: the first releases the waiting packets.
                let claimed = try await claimBlocks(for: request, host: host, count: 1 + min(heldBefore, 15)) { block in
                    await control.natBlockLeased(block)
                }
                if let block = claimed.first {
                    logger.info("leased SNAT ports", metadata: [
                        "address": "\(request.address)",
                        "ports": "\(Int(block.block) * NATBlock.size)-\(Int(block.block) * NATBlock.size + NATBlock.size - 1)",
                        "aheadOfNeed": "\(claimed.count - 1) blocks",
                    ])
                } else {
                    await control.natLeaseFailed(request.address, reason: "every block of ports \(request.firstPort)-\(request.lastPort) is held by a host")
                }
            } catch {
                await control.natLeaseFailed(request.address, reason: "\(error)")
            }
        }
    }

    /// Up to `wanted` free blocks of the request's range, each claimed in a
    /// transaction that fails if another host took it first; empty when
    /// none is free. The address's blocks are read once, and again only
    /// after a lost race (eight at most): one read per request, not one per
    /// block (the read grows with the blocks held, 300 and more on a busy
    /// gateway).
    private func claimBlocks(
        for request: NATPortRequest, host: HostID, count wanted: Int, claimed onClaim: (NATBlockKey) async -> Void
    ) async throws -> [NATBlockKey] {
        let lease = await control.lease
        guard lease != 0 else { throw AgentError("the host has no NSDB lease yet (the NSDB has not been reached since the agent started)") }
        let first = NATBlock.of(request.firstPort)
        let last = NATBlock.of(request.lastPort)
        let preferred = NATBlock.of(request.preferredPort)
        let count = Int(last) - Int(first) + 1
        var claimed: [NATBlockKey] = []
        var taken: Set<UInt16>?
        var races = 0
        while claimed.count < wanted, races < 8 {
            let known: Set<UInt16>
            if let taken {
                known = taken
            } else {
                let held = try await store.range(.prefix(NSDBMirror.natAddressPrefix(request.address)))
                known = Set(held.keyValues.compactMap { UInt16($0.key.split(separator: "/").last ?? "") })
            }
            // The preferred block keeps the packet's port; then from a random
            // point, so hosts starting together rarely race for one block.
            let offset = Int.random(in: 0..<count)
            let isFree = { (block: UInt16) in !known.contains(block) && block >= first && block <= last }
            let block = claimed.isEmpty && isFree(preferred)
                ? preferred : (0..<count).lazy.map { UInt16(Int(first) + ($0 + offset) % count) }.first(where: isFree)
            guard let block else { break }
            let key = NATBlockKey(address: request.address, block: block)
            let result = try await store.transaction(Transaction(
                compares: [.absent(NSDBMirror.natKey(key))],
                success: [.put(key: NSDBMirror.natKey(key), value: Array(host.description.utf8), lease: lease)],
                failure: []))
            if result.succeeded {
                claimed.append(key)
                await onClaim(key)
                taken = known.union([block])
            } else {
                races += 1
                taken = nil  // another host took it: read again
            }
        }
        return claimed
    }

    /// Every 5 s: deletes the blocks idle for a minute (if still ours).
    func releaseIdleNATBlocks(blocksInUse: PublishedNATBlocks) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(5))
            let inUse = blocksInUse.value.withLock { $0 }
            let idle = await control.idleNATBlocks(inUse: inUse, idle: configuration.natBlockIdleTime)
            guard let host = await control.hostID else { continue }
            for block in idle {
                let key = NSDBMirror.natKey(block)
                do {
                    _ = try await store.transaction(Transaction(
                        compares: [Compare(.key(key), .value(Array(host.description.utf8)), .equal)],
                        success: [.delete(KeyRange.key(key))], failure: []))
                    await control.natBlockReleased(block)
                } catch {
                    logger.debug("could not give back SNAT block \(key): \(error)")
                }
            }
        }
    }
}
