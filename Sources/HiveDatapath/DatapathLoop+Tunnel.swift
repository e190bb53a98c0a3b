// The datapath's tunnel: Geneve datagrams in (a UDP_GRO run split into its
// datagrams, flow state handed to the handler, frames delivered to local
// ports, by port key or to a bridge's local ports by flood key, TCP
// segments joined back into super-frames) and out (one datagram
// per frame behind a 16-byte header gathered without copying, or a
// super-frame's segments laid out back to back for one UDP_SEGMENT send),
// and flow-state messages. Called on the datapath thread only, like the rest
// of `DatapathLoop`.

import CHiveSystem
import HivePacket

extension DatapathLoop {
    /// Reads one batch of tunnel packets and delivers each to its local port.
    mutating func receiveTunnelBatch() -> Int32 {
        let received = hive_receive_batch(tunnelFD, receiveFrames, nil, Self.batchSize)
        guard received > 0 else { return 0 }
        for slot in 0..<Int(received) {
            let frame = receiveFrames[slot]
            if frame.truncated != 0 {
                statistics.tunnelReceivedPackets &+= 1
                count(.truncated)
                continue
            }
            if let peers, !peers.contains(frame.address) {
                statistics.tunnelReceivedPackets &+= 1
                count(.unknownPeer)
                continue
            }
            // UDP_GRO: a run of datagrams from one sender, each `segment_size` long but the last.
            let length = Int(frame.length)
            let size = frame.segment_size == 0 ? length : Int(frame.segment_size)
            if frame.segment_size != 0 { statistics.tunnelCoalescedBuffers &+= 1 }
            var offset = 0
            while offset < length {
                let datagram = UnsafeMutableRawBufferPointer(start: frame.base! + offset, count: min(size, length - offset))
                receiveTunnelDatagram(datagram, from: frame.address)
                offset &+= size  // at most the buffer's length plus 64 KB: no overflow
            }
        }
        finishRun()
        flushQueues()
        return received
    }

    /// One Geneve datagram: flow state for the handler, or a frame for a local port.
    mutating func receiveTunnelDatagram(_ datagram: UnsafeMutableRawBufferPointer, from address: UInt32) {
        statistics.tunnelReceivedPackets &+= 1
        let packet = UnsafeRawBufferPointer(datagram)
        if let header = try? Geneve.Header(parsing: packet), header.vni == FlowStateTunnel.key,
           header.protocolType == FlowStateTunnel.protocolType {
            receiveFlowState(UnsafeRawBufferPointer(rebasing: packet[header.length...]), from: address)
            return
        }
        guard let header = try? Geneve.Header(parsing: packet),
              header.protocolType == Geneve.Header.transparentEthernetBridging, !header.isOAM,
              // RFC 8926 §3.5: options marked critical that we do not know mean drop; Hive sets none.
              !header.hasCriticalOptions,
              packet.count - header.length >= 14
        else {
            count(.badTunnelPacket)
            return
        }
        // Whole packets: the sending host completed checksums and cut super-frames.
        let frame = UnsafeMutableRawBufferPointer(rebasing: datagram[header.length...])
        if let index = portIndexByKey[header.vni] {
            deliverFromTunnel(frame, toPort: index)
        } else if let members = floodSets[header.vni] {
            let ingressKey = Geneve.HiveMetadata(in: packet, header: header)?.ingressPortKey ?? 0
            deliverFlood(frame, to: members, ingressKey: ingressKey)
        } else {
            count(.unknownTunnelKey)
        }
    }

    /// A flood from another host: the frame goes to each local port of the
    /// bridge but the ingress (the other host simulated it for all of them),
    /// every copy queued from the receive buffer, none joined to a run.
    /// Only the ingress listed: dropped as a key with nothing bound here; a
    /// listed port the loop no longer has is counted as gone.
    mutating func deliverFlood(_ frame: UnsafeMutableRawBufferPointer, to members: [UInt32], ingressKey: UInt32) {
        // Frames to a port keep their order: the open run goes first.
        finishRun()
        var outputs = 0
        for portKey in members where portKey != ingressKey {
            outputs &+= 1  // at most the ports bound here
            guard let index = portIndexByKey[portKey] else {
                count(.portGone)
                continue
            }
            enqueue(frame, toPort: index)
        }
        if outputs == 0 { count(.unknownTunnelKey) }
    }

    mutating func enqueueTunnel(_ bytes: UnsafeMutableRawBufferPointer, host: IPv4.Address, portKey: UInt32, ingressKey: UInt32) {
        if tunnelQueued == Self.batchSize { flushTunnel() }
        let header = tunnelHeaders + Int(tunnelQueued) * Self.tunnelHeaderLength
        Self.writeTunnelHeader(at: header, portKey: portKey, ingressKey: ingressKey)
        tunnelQueue[Int(tunnelQueued)] = hive_datagram(
            header: UnsafeRawPointer(header), header_length: UInt32(Self.tunnelHeaderLength),
            payload_length: UInt32(bytes.count), payload: UnsafeRawPointer(bytes.baseAddress),
            address: host.value.bigEndian, port: configuration.tunnelPort.bigEndian, segment_size: 0)
        tunnelQueued += 1
    }

    /// Cuts a super-frame into segments for the tunnel, each behind its own
    /// tunnel header, laid out back to back as the datagrams they become, so
    /// that a run of them leaves in one UDP_SEGMENT send.
    mutating func enqueueSegments(
        of frame: UnsafeRawBufferPointer, _ segmenter: Segmenter, host: IPv4.Address, portKey: UInt32, ingressKey: UInt32
    ) {
        let datagramSize = Self.tunnelHeaderLength + segmenter.headerLength + segmenter.segmentSize
        let perRun = min(Self.segmentRunCount, Self.segmentRunBytes / datagramSize)
        guard perRun > 0 else {
            count(.badOffload)
            return
        }
        statistics.superFramesSegmented &+= 1
        var segment = 0
        while segment < segmenter.count {
            let inRun = min(perRun, segmenter.count - segment)
            if tunnelQueued == Self.batchSize || segmentSlabUsed + inRun * datagramSize > Self.segmentSlabCapacity { flushTunnel() }
            let run = segmentSlab + segmentSlabUsed
            var length = 0
            for _ in 0..<inRun {
                Self.writeTunnelHeader(at: run + length, portKey: portKey, ingressKey: ingressKey)
                length &+= Self.tunnelHeaderLength
                let room = UnsafeMutableRawBufferPointer(start: run + length, count: datagramSize - Self.tunnelHeaderLength)
                length &+= segmenter.write(segment: segment, of: frame, to: room)
                segment &+= 1
            }
            // Runs start 8-byte aligned; a run is at most segmentRunBytes.
            segmentSlabUsed &+= (length &+ 7) & ~7
            tunnelQueue[Int(tunnelQueued)] = hive_datagram(
                header: nil, header_length: 0, payload_length: UInt32(length), payload: UnsafeRawPointer(run),
                address: host.value.bigEndian, port: configuration.tunnelPort.bigEndian,
                segment_size: inRun > 1 ? UInt16(datagramSize) : 0)
            tunnelQueued += 1
            statistics.segmentsSent &+= UInt64(inRun)
        }
    }

    /// Geneve (RFC 8926) with VNI = the egress port's key (or a bridge's
    /// flood key) and Hive's option carrying the ingress port's key.
    static func writeTunnelHeader(at pointer: UnsafeMutableRawPointer, portKey: UInt32, ingressKey: UInt32) {
        let buffer = UnsafeMutableRawBufferPointer(start: pointer, count: tunnelHeaderLength)
        Geneve.Header(optionsLength: 8, vni: portKey & 0xFF_FFFF).write(to: buffer, at: 0)
        buffer.storeBytes(of: Geneve.HiveMetadata.optionClass.bigEndian, toByteOffset: 8, as: UInt16.self)
        buffer[10] = Geneve.HiveMetadata.optionType
        buffer[11] = 1  // one 4-byte word of data
        buffer.storeBytes(of: (ingressKey & 0xFF_FFFF).bigEndian, toByteOffset: 12, as: UInt32.self)
    }

    mutating func flushTunnel() {
        let sent = hive_send_datagrams(tunnelFD, tunnelQueue, tunnelQueued)
        if sent > 0 { statistics.tunnelSentPackets &+= UInt64(sent) }
        tunnelQueued = 0
        segmentSlabUsed = 0
    }

    /// Queues a flow-state message to `host` behind the frames already
    /// queued for the tunnel and before the packet it concerns: one socket,
    /// one batch, so it arrives first. Copied into the segment slab; sent
    /// with the batch, not by a call of its own (a call per message, and the
    /// flush of every queue before it, cost a new connection most of its time).
    mutating func sendFlowState(_ payload: [UInt8], to host: IPv4.Address) {
        let length = Geneve.Header.fixedLength + payload.count
        let room = (length + 7) & ~7  // runs and messages start 8-byte aligned
        guard room <= Self.segmentSlabCapacity else {
            count(.flowStateSendFailed)
            return
        }
        if tunnelQueued == Self.batchSize || segmentSlabUsed + room > Self.segmentSlabCapacity { flushTunnel() }
        let start = segmentSlab + segmentSlabUsed
        let datagram = UnsafeMutableRawBufferPointer(start: start, count: length)
        _ = Geneve.Header(protocolType: FlowStateTunnel.protocolType, vni: FlowStateTunnel.key).write(to: datagram, at: 0)
        payload.withUnsafeBytes { bytes in
            UnsafeMutableRawBufferPointer(rebasing: datagram[Geneve.Header.fixedLength...]).copyMemory(from: bytes)
        }
        segmentSlabUsed &+= room
        tunnelQueue[Int(tunnelQueued)] = hive_datagram(
            header: nil, header_length: 0, payload_length: UInt32(length), payload: UnsafeRawPointer(start),
            address: host.value.bigEndian, port: configuration.tunnelPort.bigEndian, segment_size: 0)
        tunnelQueued += 1
        statistics.flowStateSent &+= 1
    }

    /// A flow-state message from another host: the handler installs it.
    @inline(never)
    mutating func receiveFlowState(_ payload: UnsafeRawBufferPointer, from address: UInt32) {
        statistics.flowStateReceived &+= 1
        var invalidations: [FlowTag] = []
        handler.receiveFlowState(payload, from: IPv4.Address(UInt32(bigEndian: address)), invalidations: &invalidations)
        if !invalidations.isEmpty { statistics.flowsInvalidated &+= UInt64(flows.invalidate(Set(invalidations))) }
    }
}
