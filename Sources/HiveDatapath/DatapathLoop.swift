import CHiveSystem
import HivePacket

/// Which sockets had input after a poll.
struct ReadySockets {
    var wake = false
    var tunnel = false
}

/// A bound port as the loop keeps it, with its send queue.
struct PortState {
    var port: LocalPort
    var queue: UnsafeMutablePointer<hive_frame>
    /// The virtio-net header of each queued frame.
    var headers: UnsafeMutablePointer<hive_vnet_header>
    var queued: Int32 = 0
    /// Upcall token bucket: tokens left, and when it was last refilled.
    var upcallTokens: Int
    var refilled: UInt64 = 0
    /// When the datapath last answered a packet from this port with an ICMP error.
    var lastErrorSent: UInt64 = 0
}

/// The datapath thread's state and work: everything here is touched by that
/// thread only.
struct DatapathLoop<Handler: UpcallHandler> {
    static var batchSize: Int32 { 64 }
    /// Receive buffers hold a segmentation-offloaded super-frame (64 KB of IP
    /// plus Ethernet and tags) or a UDP_GRO run; longer ones are counted as truncated.
    static var frameCapacity: Int { 65_600 }
    /// Geneve fixed header plus Hive's 8-byte metadata option.
    static var tunnelHeaderLength: Int { 16 }
    /// Where super-frames are cut for the tunnel: room for several 64 KB
    /// UDP_SEGMENT runs; emptied at each tunnel flush.
    static var segmentSlabCapacity: Int { 256 << 10 }
    /// The most bytes one UDP_SEGMENT send carries (a UDP datagram's limit,
    /// 65,507, less a margin) and the most datagrams (the kernel's UDP_MAX_SEGMENTS).
    static var segmentRunBytes: Int { 65_000 }
    static var segmentRunCount: Int { 64 }

    let handler: Handler
    let tunnelFD: Int32
    let configuration: DatapathConfiguration
    var flows: FlowTable
    var ports: [PortState] = []
    var portIndexByKey: [UInt32: Int] = [:]
    /// The local ports of each bridge with ports bound here, by the bridge's
    /// flood key (`Datapath.setFloodSets`): where a tunnel flood goes.
    var floodSets: [UInt32: [UInt32]] = [:]
    var statistics = DatapathStatistics()
    var decision = UpcallDecision()
    /// Flow state a hit's connection tracking sends (`connectionsHold`).
    var trackMessages: [(host: IPv4.Address, payload: [UInt8])] = []

    // Receive slab: one batch of frames, reused for every socket.
    let receiveSlab: UnsafeMutableRawPointer
    let receiveFrames: UnsafeMutablePointer<hive_frame>
    /// The virtio-net header of each frame read from a port.
    let receiveHeaders: UnsafeMutablePointer<hive_vnet_header>
    /// Super-frames cut into segments, each run laid out as the datagrams it sends.
    let segmentSlab: UnsafeMutableRawPointer
    var segmentSlabUsed = 0
    /// Tunnel segments joined back into super-frames for local ports
    /// (DatapathLoop+Coalescing.swift): regions of `frameCapacity` bytes,
    /// emptied at each flush, and the run being joined.
    let coalescingSlab: UnsafeMutableRawPointer
    var coalescingRegionsUsed = 0
    var run = CoalescingRun()
    // Tunnel send queue and the headers its datagrams point at.
    let tunnelQueue: UnsafeMutablePointer<hive_datagram>
    let tunnelHeaders: UnsafeMutableRawPointer
    var tunnelQueued: Int32 = 0
    // poll() arguments, rebuilt when ports change.
    var pollFDs: [Int32] = []
    var pollReady: [UInt8] = []
    /// Indices into `ports` that had input; reused from turn to turn.
    var readyPorts: [Int] = []
    var failedPorts: [(UInt32, SystemError)] = []
    /// Tunnel senders accepted (addresses in network byte order); nil: any.
    var peers: Set<UInt32>?
    var clock: UInt64 = 0
    /// The handler has a live trace armed: flow hits are reported to it.
    var tracing = false

    init(handler: Handler, tunnelFD: Int32, configuration: DatapathConfiguration) {
        self.handler = handler
        self.tunnelFD = tunnelFD
        self.configuration = configuration
        flows = FlowTable(capacity: configuration.flowCapacity)
        let batch = Int(Self.batchSize)
        receiveSlab = .allocate(byteCount: batch * Self.frameCapacity, alignment: 64)
        receiveFrames = .allocate(capacity: batch)
        for index in 0..<batch {
            receiveFrames[index] = hive_frame(
                base: receiveSlab + index * Self.frameCapacity, capacity: UInt32(Self.frameCapacity),
                length: 0, address: 0, port: 0, truncated: 0, reserved: 0, segment_size: 0)
        }
        receiveHeaders = .allocate(capacity: batch)
        segmentSlab = .allocate(byteCount: Self.segmentSlabCapacity, alignment: 64)
        coalescingSlab = .allocate(byteCount: Self.coalescingRegions * Self.frameCapacity, alignment: 64)
        tunnelQueue = .allocate(capacity: batch)
        tunnelHeaders = .allocate(byteCount: batch * Self.tunnelHeaderLength, alignment: 8)
        decision.tags.reserveCapacity(32)
        rebuildPollSet()
    }

    // MARK: Waiting

    mutating func wait(wakeFD: Int32, timeoutMilliseconds: Int32) -> ReadySockets {
        pollFDs[0] = wakeFD
        let count = Int32(pollFDs.count)
        let result = pollFDs.withUnsafeBufferPointer { fds in
            pollReady.withUnsafeMutableBufferPointer { ready in
                hive_poll_input(fds.baseAddress, ready.baseAddress, count, timeoutMilliseconds)
            }
        }
        var ready = ReadySockets()
        readyPorts.removeAll(keepingCapacity: true)
        guard result > 0 else { return ready }
        ready.wake = pollReady[0] != 0
        ready.tunnel = pollReady[1] != 0
        for index in ports.indices where pollReady[2 + index] != 0 { readyPorts.append(index) }
        return ready
    }

    mutating func rebuildPollSet() {
        pollFDs = [-1, tunnelFD] + ports.map(\.port.fd)
        pollReady = Array(repeating: 0, count: pollFDs.count)
    }

    // MARK: One turn

    mutating func turn(ready: ReadySockets) {
        clock = monotonicNanoseconds()
        handler.beginBatch()
        tracing = handler.isTracing
        if ready.tunnel {
            // A few batches per turn, so a busy tunnel cannot starve the ports.
            for _ in 0..<4 { if receiveTunnelBatch() < Self.batchSize { break } }
        }
        for position in readyPorts.indices {
            let index = readyPorts[position]
            guard index < ports.count else { continue }
            for _ in 0..<4 { if receivePortBatch(index) < Self.batchSize { break } }
        }
        if !failedPorts.isEmpty { dropFailedPorts() }
    }

    /// Closes ports whose socket failed (the interface went away), after the
    /// turn so indices stay valid during it, and tells the handler.
    @inline(never)
    mutating func dropFailedPorts() {
        let failed = failedPorts
        failedPorts.removeAll()
        for (portKey, error) in failed {
            guard let index = portIndexByKey[portKey] else { continue }
            removePort(at: index)
            handler.portFailed(portKey: portKey, error: error)
        }
        rebuildPollSet()
    }

    /// Reads and forwards one batch from a bound port; returns the frames read.
    mutating func receivePortBatch(_ index: Int) -> Int32 {
        let portKey = ports[index].port.portKey
        let received = hive_receive_batch(ports[index].port.fd, receiveFrames, receiveHeaders, Self.batchSize)
        guard received > 0 else {
            if received < 0, !failedPorts.contains(where: { $0.0 == portKey }) {
                failedPorts.append((portKey, SystemError("receive on", "interface \(ports[index].port.interfaceName)", code: -received)))
            }
            return 0
        }
        var bytesIn: UInt64 = 0
        let traced = tracing && handler.isTraced(portKey: portKey)
        for slot in 0..<Int(received) {
            let frame = receiveFrames[slot]
            bytesIn &+= UInt64(frame.length)
            if frame.truncated != 0 {
                count(.truncated)
                continue
            }
            let bytes = UnsafeMutableRawBufferPointer(start: frame.base, count: Int(frame.length))
            let offload = receiveHeaders[slot]
            if offload.isOffloaded {
                guard Offload.isPlausible(offload, frameLength: bytes.count) else {
                    count(.badOffload)
                    continue
                }
                if offload.isSuperFrame { statistics.superFramesReceived &+= 1 }
            }
            guard let key = try? FlowKey(parsing: UnsafeRawBufferPointer(bytes), inPort: portKey) else {
                count(.malformed)
                continue
            }
            if let flow = flows.lookup(key), !flows.isTracked(flow) || connectionsHold(flow, key: key) {
                flows.touch(flow, bytes: bytes.count, now: clock)
                statistics.flowHits &+= 1
                if traced { traceHit(bytes, key: key, flow: flow) }
                execute(flows.actions(flow), on: bytes, ingressKey: portKey, offload: offload)
            } else if takeUpcallToken(index) {
                upcall(bytes, key: key, offload: offload)
            } else {
                count(.upcallLimited)
                if traced { handler.traceLimited(frame: UnsafeRawBufferPointer(bytes), key: key) }
            }
        }
        statistics.ports[portKey, default: .init(name: ports[index].port.interfaceName)].receivedPackets &+= UInt64(received)
        statistics.ports[portKey, default: .init(name: ports[index].port.interfaceName)].receivedBytes &+= bytesIn
        flushQueues()
        return received
    }

    /// A hit on a flow with connection tracking: the handler checks the
    /// packet's connections and moves them on; their flow state leaves
    /// ahead of the packet. False: the packet is simulated (a miss).
    @inline(never)
    mutating func connectionsHold(_ flow: Int32, key: FlowKey) -> Bool {
        guard let tracking = flows.tracking(flow) else { return true }
        trackMessages.removeAll(keepingCapacity: true)
        guard handler.track(tracking, flags: key.tcpFlags, now: clock, messages: &trackMessages) else {
            statistics.trackingMisses &+= 1
            return false
        }
        for message in trackMessages { sendFlowState(message.payload, to: message.host) }
        return true
    }

    /// Whether port `index` may cause one more upcall now (a token bucket
    /// refilled at the configured rate; its burst is the bucket's size).
    @inline(__always)
    mutating func takeUpcallToken(_ index: Int) -> Bool {
        if ports[index].upcallTokens == 0 {
            // Whole tokens earned since the last refill; the remainder of the interval carries over.
            let interval = 1_000_000_000 / UInt64(max(1, configuration.upcallsPerSecondPerPort))
            let earned = (clock &- ports[index].refilled) / interval
            guard earned > 0 else { return false }
            ports[index].upcallTokens = Int(min(earned, UInt64(configuration.upcallBurstPerPort)))
            ports[index].refilled = earned >= UInt64(configuration.upcallBurstPerPort) ? clock : ports[index].refilled &+ earned &* interval
        }
        ports[index].upcallTokens -= 1
        return true
    }

    /// The miss path: the handler decides, the flow is cached if it may be,
    /// and the packet goes where the decision says.
    @inline(never)
    mutating func upcall(_ bytes: UnsafeMutableRawBufferPointer, key: FlowKey, offload: hive_vnet_header = .none) {
        statistics.upcalls &+= 1
        var offload = offload
        if offload.needsChecksum, !offload.isSuperFrame {
            // The handler may keep a copy (a packet waiting for ARP) and send it
            // later without its header: it must be whole.
            Offload.completeChecksum(bytes, offload)
            statistics.checksumsCompleted &+= 1
            offload = .none
        }
        decision.reset()
        handler.handleMiss(frame: UnsafeRawBufferPointer(bytes), key: key, decision: &decision)
        if !decision.invalidations.isEmpty {
            statistics.flowsInvalidated &+= UInt64(flows.invalidate(Set(decision.invalidations)))
        }
        if decision.cache {
            flows.install(
                key, mask: decision.mask, actions: decision.actions, tags: decision.tags, now: clock, maximumAge: decision.hardTimeout,
                tracking: decision.tracking)
            statistics.flowsInstalled &+= 1
        }
        for message in decision.flowState {
            sendFlowState(message.payload, to: message.host)
        }
        for generated in decision.generated {
            sendNow(generated.frame, to: generated.outputs, ingressKey: key.inPort)
        }
        if decision.held {
            statistics.held &+= 1
            return
        }
        execute(decision.actions, on: bytes, ingressKey: key.inPort, offload: offload)
    }

    /// Out of line: only while a live trace is armed, before the flow's actions rewrite the frame.
    @inline(never)
    func traceHit(_ bytes: UnsafeMutableRawBufferPointer, key: FlowKey, flow: Int32) {
        handler.traceHit(frame: UnsafeRawBufferPointer(bytes), key: key, flow: flows.entries[Int(flow)], now: clock)
    }

    // MARK: Executing

    /// Rewrites the frame in place and queues it for every output. `offload`
    /// is the frame's virtio-net header as read (see Offload.swift).
    mutating func execute(
        _ actions: FlowActions, on bytes: UnsafeMutableRawBufferPointer, ingressKey: UInt32, offload: hive_vnet_header = .none
    ) {
        if actions.outputs.isEmpty {
            // Answered by the agent (ARP, DHCP, echo): not a drop.
            guard actions.dropCode != FlowActions.answered else { return }
            count(.flowDrop)
            statistics.ports[ingressKey]?.drops[Int(actions.dropCode) % FlowActions.dropCodeCount] &+= 1
            return
        }
        var offload = offload
        var segmenter: Segmenter?
        if offload.isOffloaded {
            guard prepareOffloaded(actions, on: bytes, offload: &offload, segmenter: &segmenter) else {
                count(.badOffload)
                return
            }
        }
        // What the tunnel carries: a super-frame's longest segment, not the whole.
        let wireLength = segmenter?.largestFrame ?? bytes.count
        // 14: an untagged Ethernet header; tagged frames are measured exactly out of line.
        let tunnelAllowed = actions.tunnelMTU == 0 || wireLength <= Int(actions.tunnelMTU) &+ 14
            || !tooBigForTunnel(actions, bytes: UnsafeRawBufferPointer(bytes), frameLength: wireLength, ingressKey: ingressKey)
        for rewrite in actions.rewrites { rewrite.apply(to: bytes) }
        if offload.needsChecksum, actions.translates, !Offload.refreshPseudoHeaderSum(bytes, offload) {
            count(.badOffload)
            return
        }
        for output in actions.outputs {
            switch output {
            case .local(let portKey):
                guard let index = portIndexByKey[portKey] else {
                    count(.portGone)
                    continue
                }
                enqueue(bytes, toPort: index, offload: offload)
            case .tunnel(let host, let key), .tunnelFlood(let host, let key):
                // Too big for the tunnel: the copies for this host's VMs still go.
                guard tunnelAllowed else { continue }
                if let segmenter {
                    enqueueSegments(of: UnsafeRawBufferPointer(bytes), segmenter, host: host, portKey: key, ingressKey: ingressKey)
                } else {
                    enqueueTunnel(bytes, host: host, portKey: key, ingressKey: ingressKey)
                }
            }
        }
    }

    /// Before the rewrites of an offloaded frame: a super-frame leaving by
    /// the tunnel gets its `Segmenter`; a partial checksum is completed when
    /// the frame leaves by the tunnel or NAT rewrites it (its header then
    /// says whole). A super-frame with NAT keeps its partial checksum, which
    /// `execute` refreshes after the rewrites. False: the frame is not what
    /// its header says.
    mutating func prepareOffloaded(
        _ actions: FlowActions, on bytes: UnsafeMutableRawBufferPointer, offload: inout hive_vnet_header, segmenter: inout Segmenter?
    ) -> Bool {
        let tunnel = actions.outputs.contains(where: \.isTunnel)
        if offload.isSuperFrame {
            guard tunnel else { return true }
            do throws(OffloadError) {
                segmenter = try Segmenter(frame: UnsafeRawBufferPointer(bytes), header: offload)
            } catch {
                return false
            }
        } else if offload.needsChecksum, tunnel || actions.translates {
            Offload.completeChecksum(bytes, offload)
            statistics.checksumsCompleted &+= 1
            offload = .none
        }
        return true
    }

    /// Whether the frame's packet exceeds the flow's tunnel MTU; if so it is
    /// counted, and a routed IPv4 packet with DF set gets an ICMP
    /// "fragmentation needed" (RFC 1191) from the router, to its sender.
    @inline(never)
    mutating func tooBigForTunnel(_ actions: FlowActions, bytes: UnsafeRawBufferPointer, frameLength: Int, ingressKey: UInt32) -> Bool {
        guard let ethernet = try? Ethernet.Header(parsing: bytes) else { return false }
        let packetLength = frameLength - ethernet.length
        guard packetLength > Int(actions.tunnelMTU) else { return false }
        count(.tooBig)
        statistics.ports[ingressKey]?.tooBig &+= 1
        // At most one ICMP error per port every 10 ms (RFC 1812 §4.3.2.8: rate-limit them).
        guard let index = portIndexByKey[ingressKey], clock &- ports[index].lastErrorSent >= 10_000_000 else { return true }
        guard ethernet.etherType == .ipv4, let source = actions.tooBigSource,
              case let packet = UnsafeRawBufferPointer(rebasing: bytes[ethernet.length...]),
              let header = try? IPv4.Header(parsing: packet), header.dontFragment,
              ICMPv4.mayReportError(about: header, payload: header.payload(in: packet)),
              let reply = try? ICMPv4.errorFrame(
                type: .destinationUnreachable, code: ICMPv4.UnreachableCode.fragmentationNeeded.rawValue,
                restOfHeader: UInt32(actions.tunnelMTU), about: bytes, sourceMAC: source.mac, sourceIP: source.address)
        else { return true }
        ports[index].lastErrorSent = clock
        sendNow(reply, to: [.local(portKey: ingressKey)], ingressKey: 0)
        return true
    }

    mutating func enqueue(_ bytes: UnsafeMutableRawBufferPointer, toPort index: Int, offload: hive_vnet_header = .none) {
        if ports[index].queued == Self.batchSize { flushPort(index) }
        ports[index].queue[Int(ports[index].queued)] = hive_frame(
            base: bytes.baseAddress, capacity: UInt32(bytes.count), length: UInt32(bytes.count),
            address: 0, port: 0, truncated: 0, reserved: 0, segment_size: 0)
        ports[index].headers[Int(ports[index].queued)] = offload
        ports[index].queued += 1
    }

    mutating func flushQueues() {
        for index in ports.indices where ports[index].queued > 0 { flushPort(index) }
        if tunnelQueued > 0 { flushTunnel() }
        // What the joined frames were queued for is sent. (No run is open here:
        // runs live within one tunnel batch, and `append` flushes before its region is taken.)
        coalescingRegionsUsed = 0
    }

    mutating func flushPort(_ index: Int) {
        let queued = ports[index].queued
        var bytes: UInt64 = 0
        for slot in 0..<Int(queued) { bytes &+= UInt64(ports[index].queue[slot].length) }
        let sent = hive_send_frames(ports[index].port.fd, ports[index].queue, ports[index].headers, queued)
        let portKey = ports[index].port.portKey
        if sent > 0 {
            statistics.ports[portKey, default: .init(name: ports[index].port.interfaceName)].sentPackets &+= UInt64(sent)
            statistics.ports[portKey, default: .init(name: ports[index].port.interfaceName)].sentBytes &+= bytes
        }
        ports[index].queued = 0
    }

    /// Sends a frame the handler or the control plane made, at once (rare:
    /// ARP and ICMP answers), after the frames already queued.
    mutating func sendNow(_ frame: [UInt8], to outputs: [FlowOutput], ingressKey: UInt32) {
        flushQueues()
        var copy = frame
        copy.withUnsafeMutableBytes { bytes in
            execute(FlowActions(outputs: outputs), on: bytes, ingressKey: ingressKey)
            flushQueues()
        }
    }

    /// The handler's periodic work (connection expiry), and the flows it removes.
    mutating func housekeeping(now: UInt64) {
        var invalidations: [FlowTag] = []
        handler.housekeeping(now: now, invalidations: &invalidations)
        if !invalidations.isEmpty { statistics.flowsInvalidated &+= UInt64(flows.invalidate(Set(invalidations))) }
    }

    mutating func count(_ reason: DatapathStatistics.DropReason) {
        statistics.drops[reason, default: 0] &+= 1
    }

    // MARK: Commands and housekeeping

    mutating func apply(_ commands: [DatapathCommand]) {
        var portsChanged = false
        var tags: Set<FlowTag> = []
        var reports: [(reply: CheckedContinuation<DatapathReport, Never>, flows: Bool)] = []
        for command in commands {
            switch command {
            case .addPort(let port):
                if let existing = portIndexByKey[port.portKey] { removePort(at: existing) }
                let queue = UnsafeMutablePointer<hive_frame>.allocate(capacity: Int(Self.batchSize))
                let headers = UnsafeMutablePointer<hive_vnet_header>.allocate(capacity: Int(Self.batchSize))
                ports.append(PortState(
                    port: port, queue: queue, headers: headers, upcallTokens: configuration.upcallBurstPerPort, refilled: monotonicNanoseconds()))
                portIndexByKey[port.portKey] = ports.count - 1
                statistics.ports[port.portKey] = .init(name: port.interfaceName)
                portsChanged = true
            case .removePort(let portKey):
                if let index = portIndexByKey[portKey] {
                    removePort(at: index)
                    portsChanged = true
                }
            case .invalidate(let some):
                tags.formUnion(some)
            case .invalidateAll:
                statistics.flowsInvalidated &+= UInt64(flows.count)
                flows.removeAll()
            case .send(let frame, let outputs, let ingressKey):
                sendNow(frame, to: outputs, ingressKey: ingressKey)
            case .setFloodSets(let sets):
                floodSets = sets
            case .setPeers(let addresses):
                peers = addresses.map { Set($0.map(\.value.bigEndian)) }
            case .sendMessage(let payload, let hosts):
                for host in hosts { sendFlowState(payload, to: host) }
            case .report(let reply, let withFlows):
                reports.append((reply, withFlows))
            case .simulate(let frame, let inPort):
                // The control plane published what this packet waited for just before posting it.
                handler.beginBatch()
                var copy = frame
                copy.withUnsafeMutableBytes { bytes in
                    guard let key = try? FlowKey(parsing: UnsafeRawBufferPointer(bytes), inPort: inPort) else { return }
                    upcall(bytes, key: key)
                    // The queues point into `copy`: send before its bytes go.
                    flushQueues()
                }
            }
        }
        // Messages the control plane asked for leave now, not with the next packet.
        if tunnelQueued > 0 { flushTunnel() }
        if !tags.isEmpty { statistics.flowsInvalidated &+= UInt64(flows.invalidate(tags)) }
        if portsChanged { rebuildPollSet() }
        statistics.flows = flows.count
        // After the invalidations posted with them, so a report shows what the table now holds.
        for (reply, withFlows) in reports { reply.resume(returning: report(now: monotonicNanoseconds(), flows: withFlows)) }
    }

    mutating func removePort(at index: Int) {
        let state = ports.remove(at: index)
        DatapathSockets.close(state.port.fd)
        state.queue.deallocate()
        state.headers.deallocate()
        statistics.ports[state.port.portKey] = nil
        statistics.flowsInvalidated &+= UInt64(flows.removeFlows(touchingPort: state.port.portKey))
        portIndexByKey = Dictionary(uniqueKeysWithValues: ports.enumerated().map { ($1.port.portKey, $0) })
    }

    /// Adds what the kernel dropped on each port's socket since the last
    /// look, and reads the tunnel socket's drops.
    mutating func collectKernelDrops() {
        if let drops = try? DatapathSockets.kernelDrops(of: tunnelFD) { statistics.tunnelKernelDrops = drops }
        for index in ports.indices {
            let dropped = hive_packet_socket_drops(ports[index].port.fd)
            if dropped > 0 {
                statistics.ports[ports[index].port.portKey, default: .init(name: ports[index].port.interfaceName)].kernelDrops &+= UInt64(dropped)
            }
        }
    }

    mutating func expireFlows(now: UInt64) {
        let idle = Self.nanoseconds(configuration.flowIdleTimeout)
        let maximumAge = Self.nanoseconds(configuration.flowHardTimeout)
        statistics.flowsExpired &+= UInt64(flows.expire(idleLongerThan: idle, olderThan: maximumAge, now: now))
        statistics.flows = flows.count
    }

    /// A configured duration on the datapath's clock (nanoseconds), its
    /// fraction of a second included.
    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        // Timeouts are seconds to minutes: far below 2^64 ns (584 years).
        return UInt64(max(0, seconds)) &* 1_000_000_000 &+ UInt64(max(0, attoseconds / 1_000_000_000))
    }

    mutating func closeAll() {
        while !ports.isEmpty { removePort(at: ports.count - 1) }
        DatapathSockets.close(tunnelFD)
        receiveSlab.deallocate()
        receiveFrames.deallocate()
        receiveHeaders.deallocate()
        segmentSlab.deallocate()
        coalescingSlab.deallocate()
        tunnelQueue.deallocate()
        tunnelHeaders.deallocate()
    }
}
