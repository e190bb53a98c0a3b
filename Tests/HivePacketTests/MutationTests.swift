import HivePacket
import Testing

/// Feeds mutated golden frames through every parser, the flow key, the
/// frame builders and the in-place rewriters. Nothing may trap (tests run in
/// debug builds, where the standard library checks every raw-buffer access),
/// and whatever parses must describe bytes inside the buffer.
///
/// The inner loop records violations in a tally instead of calling
/// `#expect` a million times; one expectation per frame reports them.
@Suite("Mutation")
struct MutationTests {
    /// Total random mutations across all golden frames (plus every
    /// truncation of each frame, done exhaustively).
    /// 50,000: many thousands per frame kind, and about ten seconds of both
    /// cores in a debug build.
    static let totalMutations = 50_000

    struct Tally {
        var inputs = 0
        var parsed = 0
        var rejected = 0
        /// Parses that succeeded but described something outside the buffer
        /// or did not round-trip.
        var violations: [String] = []
    }

    @Test(arguments: Golden.all.indices)
    func mutatedFramesNeverCrash(frameIndex: Int) async throws {
        // CPU-bound for seconds: off the cooperative pool, so other tests keep running.
        try await onOwnThread {
            let (name, golden) = Golden.all[frameIndex]
            let offsets = Self.headerOffsets(golden)
            var random = SplitMix64(seed: 0xF00D + UInt64(frameIndex))
            var tally = Tally()

            for length in 0...golden.count {
                Self.exercise(Array(golden[..<length]), offsets: offsets, &tally)
            }
            let count = Self.totalMutations / Golden.all.count
            for _ in 0..<count {
                var frame = golden
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    Self.mutate(&frame, offsets: offsets, using: &random)
                }
                Self.exercise(frame, offsets: offsets, &tally)
            }
            #expect(tally.violations.isEmpty, "\(name): \(tally.violations.prefix(5))")
            #expect(tally.inputs == golden.count + 1 + count)
            #expect(tally.parsed > tally.inputs, "\(name): mutated frames must still reach the success paths")
            #expect(tally.rejected > tally.inputs, "\(name): mutations must be rejected too")
        }
    }

    /// Where each header of the golden frame starts: Ethernet, the L3
    /// header, the L4 header, a tunnel header and the inner frame's layers.
    static func headerOffsets(_ frame: [UInt8]) -> [Int] {
        var offsets = [0]
        var start = 0
        while let ethernet = try? Ethernet.Header(parsing: Array(frame[start...])) {
            let l3 = start + ethernet.length
            offsets.append(l3)
            let packet = Array(frame[l3...])
            var l4: Int?
            if let ip = try? IPv4.Header(parsing: packet) {
                l4 = l3 + ip.headerLength
            } else if let ip = try? IPv6.Header(parsing: packet), let upper = try? packet.withUnsafeBytes({ try ip.upperLayer(in: $0) }) {
                l4 = l3 + upper.offset
            }
            guard let l4 else { break }
            offsets.append(l4)
            offsets.append(l4 + 8)  // DHCP, VXLAN, Geneve after UDP
            guard let udp = try? UDP.Header(parsing: Array(frame[l4...])), udp.destinationPort == UDP.vxlanPort || udp.destinationPort == UDP.genevePort,
                  let inner = udp.destinationPort == UDP.vxlanPort ? 8 : (try? Geneve.Header(parsing: Array(frame[(l4 + 8)...])))?.length
            else { break }
            start = l4 + 8 + inner
            offsets.append(start)
        }
        return offsets
    }

    static func mutate(_ frame: inout [UInt8], offsets: [Int], using random: inout SplitMix64) {
        switch Int.random(in: 0..<8, using: &random) {
        case 0:  // flip bits of one byte
            guard !frame.isEmpty else { return }
            frame[Int.random(in: 0..<frame.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
        case 1:  // one byte to an extreme
            guard !frame.isEmpty else { return }
            frame[Int.random(in: 0..<frame.count, using: &random)] = [0x00, 0xFF, 0x01, 0x80, 0x7F, 0x0F, 0xF0].randomElement(using: &random)!
        case 2:  // a 16-bit word anywhere to an extreme
            guard frame.count >= 2 else { return }
            let at = Int.random(in: 0..<(frame.count - 1), using: &random)
            let value = [0, 1, 7, 8, 0x7FFF, 0x8000, 0xFFFF, UInt16(frame.count), UInt16(frame.count) &+ 1].randomElement(using: &random)!
            frame[at] = UInt8(value >> 8)
            frame[at + 1] = UInt8(value & 0xFF)
        case 3:  // a length, header-length or option-length byte near a header start to an extreme
            let at = offsets.randomElement(using: &random)! + [0, 1, 2, 3, 4, 5, 12, 24, 25, 41, 241].randomElement(using: &random)!
            guard at < frame.count else { return }
            frame[at] = [0x00, 0xFF, 0x40, 0x4F, 0x45, 0x60, 0x0F, 0xF0, 0x01, 0x3F].randomElement(using: &random)!
        case 4:  // truncate
            frame.removeLast(Int.random(in: 0...frame.count, using: &random))
        case 5:  // extend with garbage
            frame += (0..<Int.random(in: 1...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case 6:  // delete a range inside
            guard frame.count >= 2 else { return }
            let start = Int.random(in: 0..<frame.count, using: &random)
            frame.removeSubrange(start..<min(frame.count, start + Int.random(in: 1...8, using: &random)))
        default:  // insert bytes inside
            let at = Int.random(in: 0...frame.count, using: &random)
            frame.insert(contentsOf: (0..<Int.random(in: 1...8, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }, at: at)
        }
    }

    /// Runs the flow key, the builders and the rewriters on `frame`, and
    /// every layer parser at each header offset.
    static func exercise(_ frame: [UInt8], offsets: [Int], _ tally: inout Tally) {
        tally.inputs += 1
        frame.withUnsafeBytes { raw in
            record(&tally, "FlowKey") { () throws(PacketError) in try FlowKey(parsing: raw, inPort: 1).inPort == 1 }
            for offset in offsets where offset <= raw.count {
                exerciseLayers(UnsafeRawBufferPointer(rebasing: raw[offset...]), offset: offset, &tally)
            }
            record(&tally, "echo reply") { () throws(PacketError) in !(try ICMPv4.echoReplyFrame(to: raw)).isEmpty }
            record(&tally, "reset") { () throws(PacketError) in try TCP.resetFrame(for: raw).map { !$0.isEmpty } ?? true }
            record(&tally, "error") { () throws(PacketError) in
                !(try ICMPv4.errorFrame(type: .timeExceeded, code: 0, about: raw, sourceMAC: .zero, sourceIP: .any)).isEmpty
            }
        }
        var copy = frame
        copy.withUnsafeMutableBytes { buffer in
            for offset in offsets.dropFirst().prefix(1) where offset <= buffer.count {
                record(&tally, "rewrite address") { () throws(PacketError) in
                    try IPv4.rewriteAddress(source: true, to: .broadcast, in: buffer, at: offset)
                    return true
                }
                record(&tally, "rewrite port") { () throws(PacketError) in
                    try IPv4.rewritePort(source: false, to: 9, in: buffer, at: offset)
                    return true
                }
                record(&tally, "TTL") { () throws(PacketError) in
                    _ = try IPv4.decrementTimeToLive(in: buffer, at: offset)
                    return true
                }
            }
        }
    }

    static func exerciseLayers(_ bytes: UnsafeRawBufferPointer, offset: Int, _ tally: inout Tally) {
        let count = bytes.count
        record(&tally, "Ethernet@\(offset)") { () throws(PacketError) in try Ethernet.Header(parsing: bytes).length <= count }
        record(&tally, "ARP@\(offset)") { () throws(PacketError) in try ARP.Packet(parsing: bytes).operation.rawValue >= 0 }
        record(&tally, "IPv4@\(offset)") { () throws(PacketError) in
            let header = try IPv4.Header(parsing: bytes)
            _ = header.checksumVerifies(in: bytes)
            _ = ICMPv4.mayReportError(about: header, payload: header.payload(in: bytes))
            return header.headerLength >= 20 && header.headerLength <= Int(header.totalLength)
                && Int(header.totalLength) <= count && header.payload(in: bytes).count == header.payloadLength
        }
        record(&tally, "IPv6@\(offset)") { () throws(PacketError) in
            let header = try IPv6.Header(parsing: bytes)
            let upper = try header.upperLayer(in: bytes)
            return 40 + Int(header.payloadLength) <= count && upper.offset >= 40 && upper.offset <= 40 + Int(header.payloadLength)
        }
        record(&tally, "ICMPv4@\(offset)") { () throws(PacketError) in
            let header = try ICMPv4.Header(parsing: bytes)
            _ = header.type.isError
            return true
        }
        record(&tally, "ICMP quote@\(offset)") { () throws(PacketError) in
            let quote = try ICMPv4.Quote(parsing: bytes)
            _ = quote.ports(in: bytes)
            return quote.transportLength >= 0 && quote.transportOffset + quote.transportLength <= count
        }
        record(&tally, "UDP@\(offset)") { () throws(PacketError) in
            let header = try UDP.Header(parsing: bytes)
            return Int(header.length) <= count && header.payload(in: bytes).count == header.payloadLength
        }
        record(&tally, "TCP@\(offset)") { () throws(PacketError) in
            let header = try TCP.Header(parsing: bytes)
            _ = header.maximumSegmentSize
            _ = header.windowScale
            return header.headerLength <= count
        }
        record(&tally, "ICMPv6@\(offset)") { () throws(PacketError) in try ICMPv6.Header(parsing: bytes).code >= 0 }
        record(&tally, "NS@\(offset)") { () throws(PacketError) in try ICMPv6.NeighborSolicitation(parsing: bytes).target.high >= 0 }
        record(&tally, "NA@\(offset)") { () throws(PacketError) in try ICMPv6.NeighborAdvertisement(parsing: bytes).target.high >= 0 }
        record(&tally, "DHCP@\(offset)") { () throws(PacketError) in
            let message = try DHCPv4.Message(parsing: bytes)
            // What parses rebuilds into bytes that parse to the same message.
            return try DHCPv4.Message(parsing: message.bytes) == message
        }
        record(&tally, "Geneve@\(offset)") { () throws(PacketError) in
            let header = try Geneve.Header(parsing: bytes)
            let options = header.options(in: bytes)
            _ = Geneve.HiveMetadata(in: bytes, header: header)
            let range = header.optionDataRange(optionClass: 0xFFF0, type: 1, in: bytes) ?? 8..<8
            return header.length <= count && options.reduce(0) { $0 + $1.length } == header.optionsLength
                && range.lowerBound >= 8 && range.upperBound <= header.length
        }
        record(&tally, "VXLAN@\(offset)") { () throws(PacketError) in try VXLAN.Header(parsing: bytes).vni <= 0xFF_FFFF }
    }

    /// Runs one check: a typed rejection counts as rejected, a success whose
    /// result is inconsistent as a violation.
    @inline(__always)
    static func record(_ tally: inout Tally, _ what: @autoclosure () -> String, _ body: () throws(PacketError) -> Bool) {
        do {
            if try body() {
                tally.parsed += 1
            } else {
                tally.violations.append(what())
            }
        } catch {
            tally.rejected += 1
        }
    }
}
