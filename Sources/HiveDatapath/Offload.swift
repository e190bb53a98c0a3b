// Offloads: the frames a VM's interface hands the datapath when it keeps
// its default offloads, and what must be finished before a frame leaves.
//
// Port sockets are opened with PACKET_VNET_HDR, so each frame comes with a
// virtio-net header (`hive_vnet_header`). A veth or tap with offloads on
// gives the host:
//   - frames with a partial L4 checksum (NEEDS_CSUM): the field at
//     csum_start + csum_offset holds the pseudo-header sum only (not
//     complemented); the sum of the bytes from csum_start on is still to add;
//   - TCP (or UDP) super-frames of up to 64 KB (gso_type, gso_size the
//     payload per segment), with a partial checksum and the IP length of the
//     whole.
// The simulation reads headers only, so a flow is decided on a super-frame
// as on any frame, and one flow lookup carries up to 64 KB. Where it goes:
//   - to a local port: as it is, with its header; the kernel (or the VM)
//     segments and checksums for a receiver that needs it;
//   - by the tunnel: whole packets, since the other host must get correct
//     ones: a partial checksum is completed, a super-frame is cut into
//     gso_size segments, each with its own IP length and id, TCP sequence
//     and flags, and complete checksums (`Segmenter`);
//   - NAT on a partial checksum: the addresses are in the pseudo-header
//     sum, not in the summed bytes, so the incremental update is wrong for
//     it; a frame is completed before the rewrite, a super-frame gets its
//     pseudo-header sum recomputed after it (`refreshPseudoHeaderSum`);
//   - from the tunnel, consecutive segments of one TCP flow are joined back
//     into a super-frame for the VM (DatapathLoop+Coalescing.swift).
// Everything here reads only what it checked is there: a header that does
// not fit its frame is an error the datapath counts (`bad_offload`), never a
// crash. No allocation.

import CHiveSystem
import HivePacket

extension hive_vnet_header {
    /// A whole frame with complete checksums.
    static var none: hive_vnet_header { hive_vnet_header() }

    var needsChecksum: Bool { flags & UInt8(HIVE_VNET_NEEDS_CSUM) != 0 }
    /// The segmentation asked for, the ECN bit aside.
    var segmentation: UInt8 { gso_type & ~UInt8(HIVE_VNET_GSO_ECN) }
    var isSuperFrame: Bool { segmentation != UInt8(HIVE_VNET_GSO_NONE) }
    var isOffloaded: Bool { flags != 0 || gso_type != 0 }
}

enum Offload {
    /// Whether `header` could describe a frame of `length` bytes: a known
    /// segmentation with a non-zero size, checksum offsets inside the frame.
    /// Only what the datapath will rely on; `Segmenter` checks the rest.
    static func isPlausible(_ header: hive_vnet_header, frameLength length: Int) -> Bool {
        switch Int32(header.segmentation) {
        case HIVE_VNET_GSO_NONE: break
        case HIVE_VNET_GSO_TCPV4, HIVE_VNET_GSO_TCPV6, HIVE_VNET_GSO_UDP_L4:
            guard header.gso_size > 0 else { return false }
        default:
            return false
        }
        if header.needsChecksum {
            // Both are UInt16: their sum cannot overflow Int.
            guard Int(header.csum_start) + Int(header.csum_offset) + 2 <= length else { return false }
        }
        return true
    }

    /// Finishes a partial checksum in place: the field (the pseudo-header
    /// sum) is summed with the bytes after csum_start and complemented.
    /// - Precondition: `isPlausible(header, frameLength: frame.count)`.
    /// - Complexity: O(bytes after csum_start).
    static func completeChecksum(_ frame: UnsafeMutableRawBufferPointer, _ header: hive_vnet_header) {
        let start = Int(header.csum_start)
        let field = start + Int(header.csum_offset)
        var sum = InternetChecksum()
        sum.add(UnsafeRawBufferPointer(rebasing: frame[start...]))
        var checksum = sum.checksum
        // UDP (field 6 bytes in): 0 means "no checksum", so all ones is sent for it.
        if checksum == 0, header.csum_offset == 6 { checksum = 0xFFFF }
        store(checksum, in: frame, at: field)
    }

    /// After NAT rewrote a partial-checksum IPv4 TCP or UDP frame: puts the
    /// pseudo-header sum of its current addresses back in the checksum field
    /// (the rewrite's incremental update suits complete checksums only; the
    /// ports it changed are in the bytes still to be summed). Other than
    /// IPv4, NAT changed nothing; an IPv4 packet that is not such a packet
    /// gives false.
    /// - Complexity: O(1).
    static func refreshPseudoHeaderSum(_ frame: UnsafeMutableRawBufferPointer, _ header: hive_vnet_header) -> Bool {
        let bytes = UnsafeRawBufferPointer(frame)
        guard let ethernet = try? Ethernet.Header(parsing: bytes) else { return false }
        guard ethernet.etherType == .ipv4 else { return true }
        guard let ip = try? IPv4.Header(parsing: UnsafeRawBufferPointer(rebasing: bytes[ethernet.length...])),
              ip.protocol == .tcp || ip.protocol == .udp,
              Int(header.csum_start) == ethernet.length + ip.headerLength,
              Int(ip.totalLength) >= ip.headerLength
        else { return false }
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: ip.source, destination: ip.destination, protocol: ip.protocol, length: Int(ip.totalLength) - ip.headerLength)
        store(sum.folded, in: frame, at: Int(header.csum_start) + Int(header.csum_offset))
        return true
    }

    @inline(__always)
    static func store(_ value: UInt16, in frame: UnsafeMutableRawBufferPointer, at offset: Int) {
        frame.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inline(__always)
    static func load16(_ frame: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    static func load32(_ frame: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(bigEndian: frame.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

/// Why a super-frame could not be cut.
enum OffloadError: Error {
    /// Not IPv4 or IPv6 carrying TCP or UDP as the header says, or IPv6 with extension headers.
    case unsupported
    /// Lengths in the packet disagree with the frame or the header.
    case inconsistent
}

/// Cuts a GSO super-frame into the packets it stands for, as the kernel's
/// segmentation would: `count` segments of `segmentSize` payload bytes (the
/// last may be shorter), each a copy of the headers with its lengths, IPv4
/// id, TCP sequence number and flags, and every checksum complete.
struct Segmenter {
    let networkOffset: Int
    let transportOffset: Int
    /// Headers through TCP or UDP: what every segment repeats.
    let headerLength: Int
    let segmentSize: Int
    let payloadLength: Int
    let isIPv4: Bool
    let isTCP: Bool

    /// How many segments.
    var count: Int { (payloadLength + segmentSize - 1) / segmentSize }
    /// The longest segment's frame length.
    var largestFrame: Int { headerLength + min(segmentSize, payloadLength) }

    /// Checks that `frame` is the super-frame `header` says.
    /// - Complexity: O(1).
    init(frame: UnsafeRawBufferPointer, header: hive_vnet_header) throws(OffloadError) {
        guard let ethernet = try? Ethernet.Header(parsing: frame) else { throw .inconsistent }
        networkOffset = ethernet.length
        let transportProtocol: IPProtocol
        switch Int32(header.segmentation) {
        case HIVE_VNET_GSO_TCPV4:
            isIPv4 = true
            transportProtocol = .tcp
        case HIVE_VNET_GSO_TCPV6:
            isIPv4 = false
            transportProtocol = .tcp
        case HIVE_VNET_GSO_UDP_L4:
            isIPv4 = ethernet.etherType == .ipv4
            transportProtocol = .udp
        default:
            throw .unsupported
        }
        isTCP = transportProtocol == .tcp
        guard header.gso_size > 0 else { throw .inconsistent }
        segmentSize = Int(header.gso_size)
        let packetLength = frame.count - networkOffset
        if isIPv4 {
            guard ethernet.etherType == .ipv4, let ip = try? IPv4.Header(parsing: UnsafeRawBufferPointer(rebasing: frame[networkOffset...]))
            else { throw .unsupported }
            guard ip.protocol == transportProtocol, ip.fragmentKind == .none else { throw .unsupported }
            guard Int(ip.totalLength) == packetLength else { throw .inconsistent }
            transportOffset = networkOffset + ip.headerLength
        } else {
            guard ethernet.etherType == .ipv6, packetLength >= 40 else { throw .unsupported }
            // Extension headers would have to be walked; the kernel puts none on TCP or UDP it sends.
            guard frame[networkOffset + 6] == transportProtocol.rawValue else { throw .unsupported }
            guard Int(Offload.load16(frame, networkOffset + 4)) == packetLength - 40 else { throw .inconsistent }
            transportOffset = networkOffset + 40
        }
        let transportHeaderLength: Int
        if isTCP {
            guard frame.count >= transportOffset + 20 else { throw .inconsistent }
            transportHeaderLength = Int(frame[transportOffset + 12] >> 4) * 4
            guard transportHeaderLength >= 20 else { throw .inconsistent }
        } else {
            transportHeaderLength = 8
        }
        headerLength = transportOffset + transportHeaderLength
        guard headerLength <= frame.count else { throw .inconsistent }
        payloadLength = frame.count - headerLength
        guard payloadLength > 0 else { throw .inconsistent }
    }

    /// Writes segment `index` of `frame` to `destination` (room for
    /// `largestFrame` bytes); returns its length.
    /// - Complexity: O(its length): one copy, one checksum pass.
    func write(segment index: Int, of frame: UnsafeRawBufferPointer, to destination: UnsafeMutableRawBufferPointer) -> Int {
        let offset = index * segmentSize
        let payload = min(segmentSize, payloadLength - offset)
        let length = headerLength + payload
        let out = UnsafeMutableRawBufferPointer(rebasing: destination[0..<length])
        out.copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[0..<headerLength]))
        UnsafeMutableRawBufferPointer(rebasing: out[headerLength...])
            .copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[(headerLength + offset)..<(headerLength + offset + payload)]))
        let transportLength = length - transportOffset
        let first = index == 0
        let last = offset + payload == payloadLength
        var sum = InternetChecksum()
        if isIPv4 {
            let ip = networkOffset
            Offload.store(UInt16(length - ip), in: out, at: ip + 2)
            // Consecutive ids, as the kernel gives its segments (wrapping).
            Offload.store(Offload.load16(frame, ip + 4) &+ UInt16(truncatingIfNeeded: index), in: out, at: ip + 4)
            Offload.store(0, in: out, at: ip + 10)
            Offload.store(InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: out[ip..<transportOffset])), in: out, at: ip + 10)
            sum.add(Offload.load32(frame, ip + 12))
            sum.add(Offload.load32(frame, ip + 16))
            sum.add(UInt16(isTCP ? 6 : 17))
            sum.add(UInt16(transportLength))
        } else {
            let ip = networkOffset
            Offload.store(UInt16(transportLength), in: out, at: ip + 4)
            sum.add(UnsafeRawBufferPointer(rebasing: frame[(ip + 8)..<(ip + 40)]))
            sum.add(UInt32(transportLength))
            sum.add(UInt32(isTCP ? 6 : 17))
        }
        let transport = transportOffset
        let checksumField: Int
        if isTCP {
            // Sequence numbers wrap modulo 2^32 by definition.
            let sequence = Offload.load32(frame, transport + 4) &+ UInt32(truncatingIfNeeded: offset)
            out.storeBytes(of: sequence.bigEndian, toByteOffset: transport + 4, as: UInt32.self)
            var flags = frame[transport + 13]
            if !first { flags &= ~0x80 }        // CWR: on the first segment only
            if !last { flags &= ~(0x01 | 0x08) } // FIN, PSH: on the last only
            out[transport + 13] = flags
            checksumField = transport + 16
        } else {
            Offload.store(UInt16(transportLength), in: out, at: transport + 4)
            checksumField = transport + 6
        }
        Offload.store(0, in: out, at: checksumField)
        sum.add(UnsafeRawBufferPointer(rebasing: out[transport...]))
        var checksum = sum.checksum
        if checksum == 0, !isTCP { checksum = 0xFFFF }
        Offload.store(checksum, in: out, at: checksumField)
        return length
    }
}
