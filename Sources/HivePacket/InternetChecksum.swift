/// The Internet checksum (RFC 1071): the ones' complement of the ones'
/// complement sum of the data taken as big-endian 16-bit words.
///
/// An accumulator, so a pseudo-header, a header and a payload that live in
/// different places can be summed without copying them together. Bytes may be
/// added in pieces of any length, odd ones included: the accumulator tracks
/// whether the next byte is the high or the low half of a word.
///
/// The sum is kept in 64 bits with end-around carry. That is the same ones'
/// complement sum as 16-bit words (2⁶⁴ − 1 is a multiple of 2¹⁶ − 1), and lets
/// the bulk loop take eight bytes per step.
public struct InternetChecksum: Sendable {
    @usableFromInline var sum: UInt64 = 0
    /// True after an odd number of bytes: the next byte is a word's low half.
    @usableFromInline var odd = false

    @inlinable
    public init() {}

    /// Adds `value` with end-around carry.
    @inlinable @inline(__always)
    mutating func accumulate(_ value: UInt64) {
        let (partial, overflow) = sum.addingReportingOverflow(value)
        // After an overflow `partial` is at most 2⁶⁴ − 2, so adding the
        // carry back cannot overflow again.
        sum = partial &+ (overflow ? 1 : 0)
    }

    /// Adds one byte at the current position.
    @inlinable
    public mutating func add(_ byte: UInt8) {
        accumulate(odd ? UInt64(byte) : UInt64(byte) << 8)
        odd.toggle()
    }

    /// Adds a 16-bit word as two big-endian bytes at the current position.
    @inlinable
    public mutating func add(_ word: UInt16) {
        if odd {
            add(UInt8(truncatingIfNeeded: word >> 8))
            add(UInt8(truncatingIfNeeded: word))
        } else {
            accumulate(UInt64(word))
        }
    }

    /// Adds a 32-bit word as four big-endian bytes at the current position.
    @inlinable
    public mutating func add(_ word: UInt32) {
        add(UInt16(truncatingIfNeeded: word >> 16))
        add(UInt16(truncatingIfNeeded: word))
    }

    /// Adds `bytes` at the current position.
    /// - Complexity: O(n), eight bytes per step.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        let count = bytes.count
        if odd, count > 0 {
            add(bytes[0])
            offset = 1
        }
        // Every `offset &+ k` below is bounded by `count`, an Int buffer size.
        if count - offset >= 32 {
            offset = addWords(bytes, from: offset)
        }
        while count - offset >= 8 {
            accumulate(bytes.bigEndianUInt64(at: offset))
            offset &+= 8
        }
        while count - offset >= 2 {
            accumulate(UInt64(bytes.bigEndianUInt16(at: offset)))
            offset &+= 2
        }
        if offset < count {
            add(bytes[offset])
        }
    }

    /// The bulk of a long buffer from `offset` (at a word boundary of the
    /// sum), 16 bytes a step; returns where it stopped. The bytes are read
    /// in the machine's order as 32-bit halves into two local sums: no carry
    /// to chain from step to step and nothing stored until the end (with
    /// `sum` as the accumulator, each step waited for the last one's store).
    /// The one's complement sum does not depend on the byte order but for a
    /// final swap (RFC 1071, 2.B).
    @inline(__always)
    private mutating func addWords(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var offset = start
        let count = bytes.count
        var first: UInt64 = 0
        var second: UInt64 = 0
        // Each step adds less than 2^34: no overflow before 2^30 steps (16 GB).
        while count - offset >= 16 {
            let a = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let b = bytes.loadUnaligned(fromByteOffset: offset &+ 8, as: UInt64.self)
            first &+= (a & 0xFFFF_FFFF) &+ (a >> 32)
            second &+= (b & 0xFFFF_FFFF) &+ (b >> 32)
            offset &+= 16
        }
        var folded = first &+ second
        folded = (folded >> 32) &+ (folded & 0xFFFF_FFFF)
        folded = (folded >> 32) &+ (folded & 0xFFFF_FFFF)
        folded = (folded >> 16) &+ (folded & 0xFFFF)
        folded = (folded >> 16) &+ (folded & 0xFFFF)
        // Read as the machine stores it: to big-endian words' sum (a swap on x86).
        accumulate(UInt64(UInt16(bigEndian: UInt16(truncatingIfNeeded: folded))))
        return offset
    }

    /// Adds `bytes` at the current position.
    public mutating func add(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { add($0) }
    }

    /// The ones' complement sum folded to 16 bits (not yet complemented).
    @inlinable
    public var folded: UInt16 {
        var value = sum
        // Each fold halves the width; four folds take 64 bits to 16 with
        // every carry added back.
        value = (value >> 32) &+ (value & 0xFFFF_FFFF)
        value = (value >> 32) &+ (value & 0xFFFF_FFFF)
        value = (value >> 16) &+ (value & 0xFFFF)
        value = (value >> 16) &+ (value & 0xFFFF)
        return UInt16(truncatingIfNeeded: value)
    }

    /// The value to put in a checksum field: the complement of the sum. Sum
    /// the data with the checksum field set to zero.
    @inlinable
    public var checksum: UInt16 { ~folded }

    /// True when the data summed, checksum field included, verifies: its sum
    /// is all ones.
    @inlinable
    public var verifies: Bool { folded == 0xFFFF }
}

extension InternetChecksum {
    /// The checksum of `bytes` alone (an IPv4 header, an ICMPv4 message).
    /// - Complexity: O(n)
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var sum = InternetChecksum()
        sum.add(bytes)
        return sum.checksum
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt16 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// True when `bytes`, which contain their own checksum field, verify.
    public static func verifies(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var sum = InternetChecksum()
        sum.add(bytes)
        return sum.verifies
    }

    public static func verifies(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { verifies($0) }
    }

    /// Adds the IPv4 pseudo-header (RFC 768, RFC 793): source, destination,
    /// zero, protocol, and the transport length.
    @inlinable
    public mutating func addPseudoHeader(source: IPv4.Address, destination: IPv4.Address, protocol number: IPProtocol, length: Int) {
        add(source.value)
        add(destination.value)
        add(UInt16(number.rawValue))
        add(UInt16(truncatingIfNeeded: length))
    }

    /// Adds the IPv6 pseudo-header (RFC 8200 §8.1): source, destination,
    /// 32-bit upper-layer length, three zero bytes and the next header.
    @inlinable
    public mutating func addPseudoHeader(source: IPv6.Address, destination: IPv6.Address, nextHeader: IPProtocol, length: Int) {
        add(UInt32(truncatingIfNeeded: source.high >> 32))
        add(UInt32(truncatingIfNeeded: source.high))
        add(UInt32(truncatingIfNeeded: source.low >> 32))
        add(UInt32(truncatingIfNeeded: source.low))
        add(UInt32(truncatingIfNeeded: destination.high >> 32))
        add(UInt32(truncatingIfNeeded: destination.high))
        add(UInt32(truncatingIfNeeded: destination.low >> 32))
        add(UInt32(truncatingIfNeeded: destination.low))
        add(UInt32(truncatingIfNeeded: length))
        add(UInt32(nextHeader.rawValue))
    }

    /// The checksum of a transport segment (UDP, TCP) over IPv4, including
    /// the pseudo-header. The segment's checksum field must be zero.
    ///
    /// A UDP checksum that comes out as 0 must be sent as 0xFFFF, since 0
    /// means "no checksum" in UDP over IPv4; `UDP.checksum` does that.
    public static func checksum(
        segment: UnsafeRawBufferPointer, protocol number: IPProtocol,
        source: IPv4.Address, destination: IPv4.Address
    ) -> UInt16 {
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: source, destination: destination, protocol: number, length: segment.count)
        sum.add(segment)
        return sum.checksum
    }

    /// True when a transport segment over IPv4, checksum field included,
    /// verifies with its pseudo-header.
    public static func verifies(
        segment: UnsafeRawBufferPointer, protocol number: IPProtocol,
        source: IPv4.Address, destination: IPv4.Address
    ) -> Bool {
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: source, destination: destination, protocol: number, length: segment.count)
        sum.add(segment)
        return sum.verifies
    }

    /// The checksum of an upper-layer packet (UDP, TCP, ICMPv6) over IPv6,
    /// including the pseudo-header. The packet's checksum field must be zero.
    public static func checksum(
        segment: UnsafeRawBufferPointer, nextHeader: IPProtocol,
        source: IPv6.Address, destination: IPv6.Address
    ) -> UInt16 {
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: source, destination: destination, nextHeader: nextHeader, length: segment.count)
        sum.add(segment)
        return sum.checksum
    }

    /// True when an upper-layer packet over IPv6, checksum field included,
    /// verifies with its pseudo-header.
    public static func verifies(
        segment: UnsafeRawBufferPointer, nextHeader: IPProtocol,
        source: IPv6.Address, destination: IPv6.Address
    ) -> Bool {
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: source, destination: destination, nextHeader: nextHeader, length: segment.count)
        sum.add(segment)
        return sum.verifies
    }
}
