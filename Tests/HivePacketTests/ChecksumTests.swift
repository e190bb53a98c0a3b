import HivePacket
import Testing

/// A reference checksum: RFC 1071 §4.1's loop, 16 bits at a time, nothing
/// clever. The fast accumulator must agree with it.
func referenceChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var index = 0
    while index + 1 < bytes.count {
        sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
        index += 2
    }
    if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
    while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

@Suite("Checksums")
struct ChecksumTests {
    /// The worked example of RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7
    /// sum to 0xddf2, so the checksum is its complement 0x220d.
    @Test func rfc1071Example() {
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        var sum = InternetChecksum()
        sum.add(bytes)
        #expect(sum.folded == 0xDDF2)
        #expect(sum.checksum == 0x220D)
    }

    /// The classic IPv4 header example (Wikipedia's, worked by hand there):
    /// 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
    @Test func knownIPv4Header() throws {
        let header = hex(["45000073000040004011", "0000", "c0a80001c0a800c7"])
        #expect(InternetChecksum.checksum(header) == 0xB861)
        var withChecksum = header
        withChecksum[10] = 0xB8
        withChecksum[11] = 0x61
        #expect(InternetChecksum.verifies(withChecksum))
        #expect(try IPv4.Header(parsing: withChecksum + Array(repeating: 0, count: 95)).computedChecksum == 0xB861)
    }

    @Test func accumulatorMatchesReferenceInAnyPieces() {
        var random = SplitMix64(seed: 0x1071)
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...300, using: &random)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Split into random pieces, odd lengths included.
            var sum = InternetChecksum()
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + Int.random(in: 0...17, using: &random))
                sum.add(Array(bytes[start..<end]))
                start = end
            }
            #expect(sum.checksum == referenceChecksum(bytes), "bytes \(bytes.hexString)")
            #expect(InternetChecksum.checksum(bytes) == referenceChecksum(bytes))
        }
    }

    /// Long buffers (the bulk loop of 16-byte steps), all-ones bytes for
    /// the largest sums, at every alignment and after an odd piece.
    @Test func longBuffersMatchReference() {
        var random = SplitMix64(seed: 0x4000)
        for round in 0..<200 {
            let length = Int.random(in: 0...70_000, using: &random)
            let bytes = round % 4 == 0
                ? [UInt8](repeating: 0xFF, count: length) : (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let start = Int.random(in: 0...min(7, length), using: &random)
            var sum = InternetChecksum()
            bytes.withUnsafeBytes { raw in
                sum.add(UnsafeRawBufferPointer(rebasing: raw[0..<start]))
                sum.add(UnsafeRawBufferPointer(rebasing: raw[start...]))
            }
            #expect(sum.checksum == referenceChecksum(bytes), "length \(length), split at \(start)")
        }
    }

    @Test func wordAndByteAddsMatchBytes() {
        var words = InternetChecksum()
        words.add(UInt8(0xAB))  // odd position for what follows
        words.add(UInt16(0x1234))
        words.add(UInt32(0xDEAD_BEEF))
        #expect(words.checksum == referenceChecksum([0xAB, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF]))
    }

    @Test func udpZeroChecksumMeansNoneAndComputedZeroIsSentAsOnes() throws {
        let datagram = Array(Golden.dhcpDiscover[34...])
        var none = datagram
        none[6] = 0
        none[7] = 0
        #expect(none.withUnsafeBytes { UDP.checksumVerifies(datagram: $0, source: .any, destination: .broadcast) })
        var wrong = datagram
        wrong[6] ^= 0x01
        #expect(!wrong.withUnsafeBytes { UDP.checksumVerifies(datagram: $0, source: .any, destination: .broadcast) })

        // Find a payload whose checksum computes to 0 (sum 0xffff) by fixing
        // the last word, then check it is sent as 0xffff and still verifies.
        var crafted: [UInt8] = [0x13, 0x88, 0x17, 0x70, 0x00, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
        let source = ip("10.0.0.1")
        let destination = ip("10.0.0.2")
        var partial = InternetChecksum()
        partial.addPseudoHeader(source: source, destination: destination, protocol: .udp, length: crafted.count)
        partial.add(crafted)
        let filler = ~partial.folded  // ones' complement sum then becomes 0xffff
        crafted[10] = UInt8(filler >> 8)
        crafted[11] = UInt8(filler & 0xFF)
        #expect(crafted.withUnsafeBytes { InternetChecksum.checksum(segment: $0, protocol: .udp, source: source, destination: destination) } == 0)
        let sent = crafted.withUnsafeBytes { UDP.checksum(datagram: $0, source: source, destination: destination) }
        #expect(sent == 0xFFFF)
        crafted[6] = 0xFF
        crafted[7] = 0xFF
        #expect(crafted.withUnsafeBytes { UDP.checksumVerifies(datagram: $0, source: source, destination: destination) })
    }

    @Test func incrementalUpdateOf16BitWordsMatchesRecompute() {
        var random = SplitMix64(seed: 1624)
        for _ in 0..<20_000 {
            let length = 2 * Int.random(in: 2...40, using: &random)
            var data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Word 0 holds the checksum; any other word changes.
            data[0] = 0
            data[1] = 0
            let checksum = referenceChecksum(data)
            let word = 2 * Int.random(in: 1..<(length / 2), using: &random)
            let old = UInt16(data[word]) << 8 | UInt16(data[word + 1])
            let new = UInt16.random(in: 0...UInt16.max, using: &random)
            data[word] = UInt8(new >> 8)
            data[word + 1] = UInt8(new & 0xFF)
            let incremental = InternetChecksum.updated(checksum, replacing: old, with: new)
            #expect(incremental == referenceChecksum(data), "data \(data.hexString) word \(word) \(old)->\(new)")
        }
    }

    @Test func incrementalUpdateOf32BitWordsMatchesRecompute() {
        var random = SplitMix64(seed: 0x1624_0032)
        for _ in 0..<20_000 {
            let length = 2 * Int.random(in: 4...40, using: &random)
            var data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            data[0] = 0
            data[1] = 0
            let checksum = referenceChecksum(data)
            let word = 2 * Int.random(in: 1..<(length / 2 - 1), using: &random)
            let old = (word..<(word + 4)).reduce(UInt32(0)) { $0 << 8 | UInt32(data[$1]) }
            let new = UInt32.random(in: 0...UInt32.max, using: &random)
            for index in 0..<4 { data[word + index] = UInt8(truncatingIfNeeded: new >> (24 - 8 * index)) }
            let incremental = InternetChecksum.updated(checksum, replacing: old, with: new)
            #expect(incremental == referenceChecksum(data))
        }
    }

    /// Random IPv4/TCP and IPv4/UDP packets: NAT of either address, port
    /// rewrites and TTL decrement, done in place by the incremental
    /// rewriters, must leave exactly the checksums a full recomputation
    /// gives.
    @Test func packetRewritesMatchRecompute() throws {
        var random = SplitMix64(seed: 0xA7)
        for round in 0..<5_000 {
            let isTCP = Bool.random(using: &random)
            let payload = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let source = IPv4.Address(UInt32.random(in: 0...UInt32.max, using: &random))
            let destination = IPv4.Address(UInt32.random(in: 0...UInt32.max, using: &random))
            var transport: [UInt8] = []
            if isTCP {
                TCP.Header(
                    sourcePort: .random(in: 0...UInt16.max, using: &random), destinationPort: .random(in: 0...UInt16.max, using: &random),
                    sequenceNumber: .random(in: 0...UInt32.max, using: &random), acknowledgmentNumber: .random(in: 0...UInt32.max, using: &random),
                    flags: TCP.Flags(rawValue: .random(in: 0...0x1FF, using: &random)), window: .random(in: 0...UInt16.max, using: &random)
                ).write(to: &transport)
            } else {
                UDP.Header(
                    sourcePort: .random(in: 0...UInt16.max, using: &random), destinationPort: .random(in: 0...UInt16.max, using: &random),
                    payloadLength: payload.count
                ).write(to: &transport)
            }
            transport += payload
            let checksumOffset = isTCP ? 16 : 6
            let full = transport.withUnsafeBytes {
                isTCP ? TCP.checksum(segment: $0, source: source, destination: destination)
                    : UDP.checksum(datagram: $0, source: source, destination: destination)
            }
            transport[checksumOffset] = UInt8(full >> 8)
            transport[checksumOffset + 1] = UInt8(full & 0xFF)
            var ipHeader = IPv4.Header(
                typeOfService: .random(in: 0...255, using: &random), payloadLength: transport.count,
                identification: .random(in: 0...UInt16.max, using: &random), timeToLive: .random(in: 1...255, using: &random),
                protocol: isTCP ? .tcp : .udp, source: source, destination: destination)
            ipHeader.updateChecksum()
            var packet: [UInt8] = []
            ipHeader.write(to: &packet)
            packet += transport

            let newAddress = IPv4.Address(UInt32.random(in: 0...UInt32.max, using: &random))
            let newPort = UInt16.random(in: 0...UInt16.max, using: &random)
            let rewriteSource = Bool.random(using: &random)
            try packet.withUnsafeMutableBytes { buffer in
                switch round % 3 {
                case 0: try IPv4.rewriteAddress(source: rewriteSource, to: newAddress, in: buffer, at: 0)
                case 1: try IPv4.rewritePort(source: rewriteSource, to: newPort, in: buffer, at: 0)
                default: try IPv4.decrementTimeToLive(in: buffer, at: 0)
                }
            }

            // Recompute both checksums from scratch over the rewritten bytes.
            let rewritten = try IPv4.Header(parsing: packet)
            #expect(rewritten.checksum == rewritten.computedChecksum, "round \(round) IPv4 header \(packet.hexString)")
            var zeroed = Array(packet[20...])
            let carried = UInt16(zeroed[checksumOffset]) << 8 | UInt16(zeroed[checksumOffset + 1])
            zeroed[checksumOffset] = 0
            zeroed[checksumOffset + 1] = 0
            let recomputed = zeroed.withUnsafeBytes {
                isTCP ? TCP.checksum(segment: $0, source: rewritten.source, destination: rewritten.destination)
                    : UDP.checksum(datagram: $0, source: rewritten.source, destination: rewritten.destination)
            }
            #expect(carried == recomputed, "round \(round) \(isTCP ? "TCP" : "UDP") \(packet.hexString)")
            if round % 3 == 0 {
                #expect((rewriteSource ? rewritten.source : rewritten.destination) == newAddress)
            }
        }
    }

    @Test func udpWithoutChecksumKeepsNone() throws {
        var packet = Array(Golden.vlanUDP[18...])
        packet[26] = 0
        packet[27] = 0
        try packet.withUnsafeMutableBytes { try IPv4.rewriteAddress(source: true, to: ip("203.0.113.9"), in: $0, at: 0) }
        #expect(packet[26] == 0 && packet[27] == 0)
        #expect(try IPv4.Header(parsing: packet).source == ip("203.0.113.9"))
    }

    @Test func ttlDecrementStopsAtZero() throws {
        var packet = Array(Golden.ipv4OptionsUDP[14...])  // TTL 1
        let first = try packet.withUnsafeMutableBytes { try IPv4.decrementTimeToLive(in: $0, at: 0) }
        let second = try packet.withUnsafeMutableBytes { try IPv4.decrementTimeToLive(in: $0, at: 0) }
        #expect(first == 0 && second == 0)
        let header = try IPv4.Header(parsing: packet)
        #expect(header.timeToLive == 0 && header.checksum == header.computedChecksum)
    }
}
