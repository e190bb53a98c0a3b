// Re-coalescing: consecutive TCP segments that arrive from the tunnel for
// one local port, of one flow and in sequence, are joined back into one
// super-frame and written to the port with a GSO virtio-net header, so the
// VM's stack (or the kernel, for a receiver that needs segments) takes 64 KB
// in one write instead of 45. The receive-side half of what the sending
// host's segmentation undid (see Offload.swift), as the kernel's GRO does.
//
// Only what is safe to join: untagged IPv4 without options or fragments,
// TCP with only ACK (and PSH on the last), payload, every segment but the
// last of the same size, the same addresses, ports, acknowledgment, window
// and options, sequence numbers that follow. Anything else first ends the
// open run, so frames to a port keep their order. The joined frame carries
// a partial checksum (the pseudo-header sum), which the receiver completes;
// the segments' own checksums are not verified here: the tunnel's UDP
// checksum, which the kernel verified, covered them.

import CHiveSystem
import HivePacket

/// The segments joined so far for one port.
struct CoalescingRun {
    /// The port's index; -1 when no run is open.
    var port = -1
    /// The first segment, where the tunnel batch received it.
    var first = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// The joined frame, once a second segment came (in `coalescingSlab`).
    var joined: UnsafeMutableRawPointer?
    var length = 0
    var headerLength = 0
    var segmentSize = 0
    var lastPayload = 0
    var lastFlags: UInt8 = 0
    var nextSequence: UInt32 = 0
    var segments = 0
}

extension DatapathLoop {
    /// Joined frames one tunnel batch may hold before its queues are flushed.
    static var coalescingRegions: Int { 8 }

    /// A whole frame from the tunnel for local port `index`: joined to the
    /// open run, or the start of one, or (not a joinable segment) queued as it is.
    mutating func deliverFromTunnel(_ frame: UnsafeMutableRawBufferPointer, toPort index: Int) {
        let bytes = UnsafeRawBufferPointer(frame)
        guard let segment = JoinableSegment(bytes) else {
            finishRun()
            enqueue(frame, toPort: index)
            return
        }
        if run.port == index, run.accepts(segment, bytes) {
            append(segment, of: bytes)
        } else {
            finishRun()
            run = CoalescingRun(
                port: index, first: frame, joined: nil, length: frame.count, headerLength: segment.headerLength,
                segmentSize: segment.payload, lastPayload: segment.payload, lastFlags: segment.flags,
                nextSequence: segment.sequence &+ UInt32(segment.payload), segments: 1)  // sequence numbers wrap
        }
    }

    mutating func append(_ segment: JoinableSegment, of bytes: UnsafeRawBufferPointer) {
        if run.joined == nil {
            if coalescingRegionsUsed == Self.coalescingRegions {
                // Every region is queued: send them (the open run's first segment is not among them).
                flushQueues()
            }
            let region = coalescingSlab + coalescingRegionsUsed * Self.frameCapacity
            coalescingRegionsUsed += 1
            region.copyMemory(from: run.first.baseAddress!, byteCount: run.first.count)
            run.joined = region
        }
        (run.joined! + run.length).copyMemory(from: bytes.baseAddress! + segment.headerLength, byteCount: segment.payload)
        run.length &+= segment.payload  // bounded by `accepts`: at most 64 KB
        run.lastPayload = segment.payload
        run.lastFlags = segment.flags
        run.nextSequence = segment.sequence &+ UInt32(segment.payload)
        run.segments &+= 1
    }

    /// Queues the open run: its first segment as it came, or the joined super-frame.
    mutating func finishRun() {
        guard run.port >= 0 else { return }
        defer { run = CoalescingRun() }
        guard let joined = run.joined else {
            enqueue(run.first, toPort: run.port)
            return
        }
        let frame = UnsafeMutableRawBufferPointer(start: joined, count: run.length)
        Offload.store(UInt16(run.length - 14), in: frame, at: 16)
        Offload.store(0, in: frame, at: 24)
        Offload.store(InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: frame[14..<34])), in: frame, at: 24)
        frame[47] = run.lastFlags
        var pseudo = InternetChecksum()
        let source = IPv4.Address(Offload.load32(UnsafeRawBufferPointer(frame), 26))
        let destination = IPv4.Address(Offload.load32(UnsafeRawBufferPointer(frame), 30))
        pseudo.addPseudoHeader(source: source, destination: destination, protocol: .tcp, length: run.length - 34)
        // CHECKSUM_PARTIAL: the pseudo-header sum, not complemented; the receiver adds the rest.
        Offload.store(pseudo.folded, in: frame, at: 50)
        let header = hive_vnet_header(
            flags: UInt8(HIVE_VNET_NEEDS_CSUM), gso_type: UInt8(HIVE_VNET_GSO_TCPV4), hdr_len: UInt16(run.headerLength),
            gso_size: UInt16(run.segmentSize), csum_start: 34, csum_offset: 16)
        statistics.coalescedSuperFrames &+= 1
        statistics.coalescedSegments &+= UInt64(run.segments)
        enqueue(frame, toPort: run.port, offload: header)
    }
}

/// A TCP segment that may be joined: untagged IPv4 without options or
/// fragmentation, TCP with only ACK or ACK and PSH, and a payload.
struct JoinableSegment {
    var headerLength: Int
    var payload: Int
    var sequence: UInt32
    var flags: UInt8

    init?(_ frame: UnsafeRawBufferPointer) {
        guard frame.count >= 54 + 1, frame[12] == 0x08, frame[13] == 0x00, frame[14] == 0x45, frame[23] == 6,
              // Neither more fragments nor an offset: DF alone may be set.
              frame[20] & 0x3F == 0, frame[21] == 0,
              Int(Offload.load16(frame, 16)) == frame.count - 14
        else { return nil }
        let transportHeader = Int(frame[46] >> 4) * 4
        flags = frame[47]
        guard transportHeader >= 20, flags == 0x10 || flags == 0x18 else { return nil }
        headerLength = 34 + transportHeader
        payload = frame.count - headerLength
        guard payload > 0 else { return nil }
        sequence = Offload.load32(frame, 38)
    }
}

extension CoalescingRun {
    /// Whether `segment` (in `frame`) continues this run.
    func accepts(_ segment: JoinableSegment, _ frame: UnsafeRawBufferPointer) -> Bool {
        guard segment.headerLength == headerLength, lastPayload == segmentSize, segment.payload <= segmentSize,
              lastFlags & 0x08 == 0,  // PSH ends a run
              segment.sequence == nextSequence,
              length - 14 + segment.payload <= 65_535
        else { return false }
        let first = UnsafeRawBufferPointer(self.first)
        // Ethernet header; IPv4 TOS, flags, TTL, protocol, addresses; TCP ports, acknowledgment, window, options.
        return first.loadUnaligned(fromByteOffset: 0, as: UInt64.self) == frame.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
            && first.loadUnaligned(fromByteOffset: 8, as: UInt32.self) == frame.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            && first[12] == frame[12] && first[13] == frame[13] && first[15] == frame[15] && first[20] == frame[20]
            && first[22] == frame[22]
            && first.loadUnaligned(fromByteOffset: 26, as: UInt64.self) == frame.loadUnaligned(fromByteOffset: 26, as: UInt64.self)
            && first.loadUnaligned(fromByteOffset: 34, as: UInt32.self) == frame.loadUnaligned(fromByteOffset: 34, as: UInt32.self)
            && first.loadUnaligned(fromByteOffset: 42, as: UInt32.self) == frame.loadUnaligned(fromByteOffset: 42, as: UInt32.self)
            && first.loadUnaligned(fromByteOffset: 48, as: UInt16.self) == frame.loadUnaligned(fromByteOffset: 48, as: UInt16.self)
            && Self.sameOptions(first, frame, through: headerLength)
    }

    static func sameOptions(_ first: UnsafeRawBufferPointer, _ other: UnsafeRawBufferPointer, through end: Int) -> Bool {
        var offset = 54
        while offset < end {
            if first[offset] != other[offset] { return false }
            offset &+= 1  // at most 40 option bytes
        }
        return true
    }
}
