import CHiveSystem
@testable import HiveDatapath
import HivePacket
import Testing

/// Offloaded frames without sockets: the segmenter against the packets a
/// kernel would make (every checksum verified from scratch, the payload
/// reassembled), partial checksums completed and kept right through NAT, and
/// seeded garbage that must be refused, never crash.
@Suite struct OffloadTests {
    static let source = IPv4.Address(10, 0, 0, 1)
    static let destination = IPv4.Address(10, 0, 0, 2)

    /// A TCP/IPv4 frame as a VM's stack hands it with offloads on: the IP
    /// length of the whole, TCP with a 12-byte option, the checksum field
    /// holding the pseudo-header sum (CHECKSUM_PARTIAL).
    static func tcp4(payload: [UInt8], flags: UInt8 = 0x18, sequence: UInt32 = 0xFFFF_F000) -> [UInt8] {
        var frame: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
        let total = 20 + 32 + payload.count
        frame += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        frame.withUnsafeMutableBytes { bytes in
            Offload.store(InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: bytes[14..<34])), in: bytes, at: 24)
        }
        frame += [0x9C, 0x40, 0x13, 0x89]
        frame += withUnsafeBytes(of: sequence.bigEndian) { Array($0) }
        frame += [0, 0, 0, 1, 0x80, flags, 0x01, 0xF5, 0, 0, 0, 0]
        frame += [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]
        frame += payload
        var pseudo = InternetChecksum()
        pseudo.addPseudoHeader(source: source, destination: destination, protocol: .tcp, length: 32 + payload.count)
        frame.withUnsafeMutableBytes { Offload.store(pseudo.folded, in: $0, at: 34 + 16) }
        return frame
    }

    static func partialTCPHeader(gsoSize: UInt16 = 0) -> hive_vnet_header {
        hive_vnet_header(
            flags: UInt8(HIVE_VNET_NEEDS_CSUM), gso_type: gsoSize == 0 ? 0 : UInt8(HIVE_VNET_GSO_TCPV4),
            hdr_len: 66, gso_size: gsoSize, csum_start: 34, csum_offset: 16)
    }

    /// Whether an IPv4 TCP or UDP packet in `frame` has both checksums right.
    static func verifies(_ frame: [UInt8]) -> Bool {
        frame.withUnsafeBytes { bytes in
            guard let ip = try? IPv4.Header(parsing: UnsafeRawBufferPointer(rebasing: bytes[14...])),
                  InternetChecksum.verifies(UnsafeRawBufferPointer(rebasing: bytes[14..<(14 + ip.headerLength)]))
            else { return false }
            var sum = InternetChecksum()
            sum.addPseudoHeader(source: ip.source, destination: ip.destination, protocol: ip.protocol, length: ip.payloadLength)
            sum.add(UnsafeRawBufferPointer(rebasing: bytes[(14 + ip.headerLength)..<(14 + Int(ip.totalLength))]))
            return sum.verifies
        }
    }

    static func segments(of frame: [UInt8], header: hive_vnet_header) throws -> [[UInt8]] {
        try frame.withUnsafeBytes { bytes in
            let segmenter = try Segmenter(frame: bytes, header: header)
            var room = [UInt8](repeating: 0, count: segmenter.largestFrame)
            return (0..<segmenter.count).map { index in
                let length = room.withUnsafeMutableBytes { segmenter.write(segment: index, of: bytes, to: $0) }
                return Array(room[0..<length])
            }
        }
    }

    @Test func aTCPSuperFrameIsCutIntoSegmentsAKernelWouldAccept() throws {
        var random = SeededGenerator(state: 1)
        let payload = (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &random) }
        let frame = Self.tcp4(payload: payload, flags: 0x18 | 0x01 | 0x80)  // PSH, FIN, CWR
        let segments = try Self.segments(of: frame, header: Self.partialTCPHeader(gsoSize: 1_348))
        #expect(segments.count == 8)
        var reassembled: [UInt8] = []
        for (index, segment) in segments.enumerated() {
            #expect(Self.verifies(segment), "segment \(index): IPv4 and TCP checksums")
            #expect(segment.count == (index < 7 ? 14 + 52 + 1_348 : 14 + 52 + 10_000 - 7 * 1_348))
            #expect(Int(segment[16]) << 8 | Int(segment[17]) == segment.count - 14, "IP total length")
            #expect(Int(segment[18]) << 8 | Int(segment[19]) == 0x1234 + index, "IP id")
            let sequence = segment[38..<42].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            #expect(sequence == 0xFFFF_F000 &+ UInt32(index * 1_348), "sequence, wrapping past 2^32")
            let flags = segment[47]
            #expect((flags & 0x80 != 0) == (index == 0), "CWR on the first only")
            #expect((flags & 0x09 != 0) == (index == 7), "PSH and FIN on the last only")
            #expect(flags & 0x10 != 0, "ACK on all")
            #expect(segment[54..<66] == frame[54..<66], "options repeated")
            reassembled += segment[66...]
        }
        #expect(reassembled == payload)
    }

    @Test func ipv6AndUDPSuperFramesAreCutToo() throws {
        // TCP over IPv6, payload 3,000 in 1,000-byte segments.
        var frame: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xDD]
        let payload = (0..<3_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let transportLength = 20 + payload.count
        frame += [0x60, 0, 0, 0, UInt8(transportLength >> 8), UInt8(transportLength & 0xFF), 6, 64]
        frame += [0xFD] + [UInt8](repeating: 0, count: 14) + [1] + [0xFD] + [UInt8](repeating: 0, count: 14) + [2]
        frame += [0x9C, 0x40, 0x13, 0x89, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0x01, 0xF5, 0, 0, 0, 0] + payload
        let header = hive_vnet_header(
            flags: UInt8(HIVE_VNET_NEEDS_CSUM), gso_type: UInt8(HIVE_VNET_GSO_TCPV6), hdr_len: 74, gso_size: 1_000,
            csum_start: 54, csum_offset: 16)
        let segments = try Self.segments(of: frame, header: header)
        #expect(segments.count == 3)
        for segment in segments {
            let length = Int(segment[18]) << 8 | Int(segment[19])
            #expect(length == 1_020 && segment.count == 54 + 1_020)
            var sum = InternetChecksum()
            segment.withUnsafeBytes { bytes in
                sum.add(UnsafeRawBufferPointer(rebasing: bytes[22..<54]))
                sum.add(UInt32(length))
                sum.add(UInt32(6))
                sum.add(UnsafeRawBufferPointer(rebasing: bytes[54...]))
            }
            #expect(sum.verifies, "TCP over IPv6 checksum")
        }

        // UDP over IPv4 (UDP_L4): each segment its own datagram.
        var udp: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
        let datagram = 8 + 2_500
        udp += [0x45, 0, UInt8((20 + datagram) >> 8), UInt8((20 + datagram) & 0xFF), 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        udp += [0x30, 0x39, 0x00, 0x35, UInt8(datagram >> 8), UInt8(datagram & 0xFF), 0, 0] + [UInt8](repeating: 0xAB, count: 2_500)
        let udpHeader = hive_vnet_header(
            flags: UInt8(HIVE_VNET_NEEDS_CSUM), gso_type: UInt8(HIVE_VNET_GSO_UDP_L4), hdr_len: 42, gso_size: 1_200,
            csum_start: 34, csum_offset: 6)
        let datagrams = try Self.segments(of: udp, header: udpHeader)
        #expect(datagrams.map(\.count) == [42 + 1_200, 42 + 1_200, 42 + 100])
        for segment in datagrams {
            #expect(Self.verifies(segment))
            #expect(Int(segment[38]) << 8 | Int(segment[39]) == segment.count - 34, "UDP length")
        }
    }

    @Test func aPartialChecksumIsCompleted() {
        var frame = Self.tcp4(payload: Array("a partial checksum, completed".utf8))
        #expect(!Self.verifies(frame))
        frame.withUnsafeMutableBytes { Offload.completeChecksum($0, Self.partialTCPHeader()) }
        #expect(Self.verifies(frame))
    }

    /// NAT on a partial checksum: refreshing the pseudo-header sum after the
    /// rewrite gives, once completed, what completing first and rewriting
    /// with the incremental update gives.
    @Test func natOnAPartialChecksumMatchesNATOnTheCompletedFrame() {
        let translations: [IPv4.Translation] = [.source(IPv4.Address(198, 51, 100, 2)), .sourcePort(61_000), .destination(IPv4.Address(10, 0, 2, 9))]
        var random = SeededGenerator(state: 2)
        for size in [1, 2, 513, 1_400] {
            let original = Self.tcp4(payload: (0..<size).map { _ in UInt8.random(in: 0...255, using: &random) })
            var completedFirst = original
            completedFirst.withUnsafeMutableBytes { bytes in
                Offload.completeChecksum(bytes, Self.partialTCPHeader())
                for translation in translations { translation.apply(toFrame: bytes) }
            }
            var partial = original
            let refreshed = partial.withUnsafeMutableBytes { bytes in
                for translation in translations { translation.apply(toFrame: bytes) }
                let refreshed = Offload.refreshPseudoHeaderSum(bytes, Self.partialTCPHeader())
                Offload.completeChecksum(bytes, Self.partialTCPHeader())
                return refreshed
            }
            #expect(refreshed)
            #expect(Self.verifies(completedFirst), "payload \(size)")
            #expect(partial == completedFirst, "payload \(size)")
        }
    }

    /// Headers and frames that disagree are refused by `isPlausible` or the
    /// segmenter; nothing traps (a trap would end the test run).
    @Test func inconsistentHeadersAndFramesAreRefusedNeverTrusted() {
        let frame = Self.tcp4(payload: [UInt8](repeating: 7, count: 3_000))
        var bad = Self.partialTCPHeader(gsoSize: 0)
        bad.gso_type = UInt8(HIVE_VNET_GSO_TCPV4)
        #expect(!Offload.isPlausible(bad, frameLength: frame.count), "gso_size 0")
        var unknown = Self.partialTCPHeader(gsoSize: 1_000)
        unknown.gso_type = 2
        #expect(!Offload.isPlausible(unknown, frameLength: frame.count), "unknown GSO type")
        var past = Self.partialTCPHeader()
        past.csum_start = UInt16(frame.count - 10)
        #expect(!Offload.isPlausible(past, frameLength: frame.count), "checksum field past the end")
        #expect(Offload.isPlausible(Self.partialTCPHeader(gsoSize: 1_000), frameLength: frame.count))
        var ecn = Self.partialTCPHeader(gsoSize: 1_000)
        ecn.gso_type |= UInt8(HIVE_VNET_GSO_ECN)
        #expect(Offload.isPlausible(ecn, frameLength: frame.count), "the ECN bit is a flag, not a type")

        // Cut short, or claiming UDP or IPv6: the segmenter refuses.
        let header = Self.partialTCPHeader(gsoSize: 1_000)
        for length in [0, 13, 14, 33, 40, 65, 66, 67, 1_000, frame.count - 1] {
            #expect(throws: OffloadError.self, "frame cut to \(length)") { _ = try Self.segments(of: Array(frame.prefix(length)), header: header) }
        }
        var asUDP = header
        asUDP.gso_type = UInt8(HIVE_VNET_GSO_UDP_L4)
        #expect(throws: OffloadError.self) { _ = try Self.segments(of: frame, header: asUDP) }
        var asIPv6 = header
        asIPv6.gso_type = UInt8(HIVE_VNET_GSO_TCPV6)
        #expect(throws: OffloadError.self) { _ = try Self.segments(of: frame, header: asIPv6) }

        // Seeded garbage after a valid start: refused or cut, never a trap; whatever is cut stays inside its frame.
        var random = SeededGenerator(state: 3)
        for _ in 0..<2_000 {
            var garbage = Array(frame.prefix(Int.random(in: 0...200, using: &random)))
            for _ in 0..<Int.random(in: 0...6, using: &random) where !garbage.isEmpty {
                garbage[Int.random(in: 0..<garbage.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            garbage += (0..<Int.random(in: 0...3_000, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            var header = hive_vnet_header(
                flags: UInt8.random(in: 0...3, using: &random), gso_type: [0, 1, 3, 4, 5, 0x81, 9].randomElement(using: &random)!,
                hdr_len: UInt16.random(in: 0...100, using: &random), gso_size: UInt16.random(in: 0...2_000, using: &random),
                csum_start: UInt16.random(in: 0...100, using: &random), csum_offset: [6, 16, 200].randomElement(using: &random)!)
            guard Offload.isPlausible(header, frameLength: garbage.count) else { continue }
            if header.needsChecksum { garbage.withUnsafeMutableBytes { Offload.completeChecksum($0, header) } }
            if header.isSuperFrame, let cut = try? Self.segments(of: garbage, header: header) {
                #expect(cut.allSatisfy { $0.count <= garbage.count })
            }
            header.flags = 0
        }
    }
}

/// Which tunnel segments may be joined into one super-frame for a VM: a
/// flow's next full-size segments in sequence, nothing else.
@Suite struct SegmentJoiningTests {
    /// A whole TCP/IPv4 segment (complete checksums, as the tunnel brings it).
    static func segment(sequence: UInt32, payload: Int, flags: UInt8 = 0x10, acknowledgment: UInt32 = 1, sourcePort: UInt16 = 40_000) -> [UInt8] {
        var frame = OffloadTests.tcp4(payload: [UInt8](repeating: 0x5A, count: payload), flags: flags, sequence: sequence)
        frame.withUnsafeMutableBytes { bytes in
            Offload.store(sourcePort, in: bytes, at: 34)
            bytes.storeBytes(of: acknowledgment.bigEndian, toByteOffset: 42, as: UInt32.self)
            Offload.completeChecksum(bytes, OffloadTests.partialTCPHeader())
        }
        return frame
    }

    /// A run opened by a copy of `first` (the caller deallocates it), as `deliverFromTunnel` opens one.
    static func run(_ first: [UInt8]) -> (CoalescingRun, UnsafeMutableRawBufferPointer) {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: first.count, alignment: 8)
        bytes.copyBytes(from: first)
        let segment = JoinableSegment(UnsafeRawBufferPointer(bytes))!
        let run = CoalescingRun(
            port: 0, first: bytes, joined: nil, length: bytes.count, headerLength: segment.headerLength, segmentSize: segment.payload,
            lastPayload: segment.payload, lastFlags: segment.flags, nextSequence: segment.sequence &+ UInt32(segment.payload), segments: 1)
        return (run, bytes)
    }

    @Test func onlyTheFlowsNextSegmentInSequenceJoins() {
        let (run, storage) = Self.run(Self.segment(sequence: 0xFFFF_FF00, payload: 1_000))
        defer { storage.deallocate() }
        func accepts(_ frame: [UInt8]) -> Bool {
            frame.withUnsafeBytes { bytes in JoinableSegment(bytes).map { run.accepts($0, bytes) } ?? false }
        }
        let next = 0xFFFF_FF00 &+ UInt32(1_000)  // wraps past 2^32
        #expect(accepts(Self.segment(sequence: next, payload: 1_000)), "the next full segment")
        #expect(accepts(Self.segment(sequence: next, payload: 10, flags: 0x18)), "a shorter last one, with PSH")
        #expect(!accepts(Self.segment(sequence: next + 1, payload: 1_000)), "a gap")
        #expect(!accepts(Self.segment(sequence: next &- 1_000, payload: 1_000)), "a retransmission")
        #expect(!accepts(Self.segment(sequence: next, payload: 1_001)), "longer than the first")
        #expect(!accepts(Self.segment(sequence: next, payload: 1_000, acknowledgment: 2)), "another acknowledgment")
        #expect(!accepts(Self.segment(sequence: next, payload: 1_000, sourcePort: 40_001)), "another connection")
        for flags: UInt8 in [0x11, 0x12, 0x14, 0x90, 0x50] {
            #expect(!accepts(Self.segment(sequence: next, payload: 1_000, flags: flags)), "flags \(flags) are not joined")
        }
        var shortRun = run
        shortRun.lastPayload = 500
        #expect(Self.segment(sequence: next, payload: 1_000).withUnsafeBytes { shortRun.accepts(JoinableSegment($0)!, $0) } == false,
                "nothing after a short segment")
        var pushed = run
        pushed.lastFlags = 0x18
        #expect(Self.segment(sequence: next, payload: 1_000).withUnsafeBytes { pushed.accepts(JoinableSegment($0)!, $0) } == false,
                "PSH ends a run")
        var full = run
        full.length = 14 + 65_535 - 500
        #expect(Self.segment(sequence: next, payload: 1_000).withUnsafeBytes { full.accepts(JoinableSegment($0)!, $0) } == false,
                "no more than an IP packet holds")
    }

    @Test func framesThatAreNotPlainTCPOverIPv4AreNeverJoined() {
        let plain = Self.segment(sequence: 1, payload: 100)
        #expect(plain.withUnsafeBytes { JoinableSegment($0) } != nil)
        var tagged = plain
        tagged.insert(contentsOf: [0x81, 0x00, 0x00, 0x05], at: 12)
        var options = plain
        options[14] = 0x46
        var fragment = plain
        fragment[20] |= 0x20
        var padded = plain
        padded.append(0)
        var udp = plain
        udp[23] = 17
        let noPayload = Array(plain.prefix(66))
        for (name, frame) in [("VLAN-tagged", tagged), ("IP options", options), ("a fragment", fragment), ("padding", padded), ("UDP", udp),
                              ("no payload", noPayload), ("cut short", Array(plain.prefix(40)))] {
            #expect(frame.withUnsafeBytes { JoinableSegment($0) } == nil, "\(name)")
        }
        // Seeded garbage: refused or parsed, never a trap.
        var random = SeededGenerator(state: 4)
        for _ in 0..<5_000 {
            var garbage = Array(plain.prefix(Int.random(in: 0...plain.count, using: &random)))
            for _ in 0..<Int.random(in: 0...4, using: &random) where !garbage.isEmpty {
                garbage[Int.random(in: 0..<garbage.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            if let segment = garbage.withUnsafeBytes({ JoinableSegment($0) }) {
                #expect(segment.headerLength + segment.payload == garbage.count)
            }
        }
    }
}
