// Big-endian reads and writes at byte offsets.
//
// These helpers do not check bounds themselves (beyond the standard library's
// debug-build preconditions): every parser checks the length it needs once,
// with `PacketError.require`, before reading fields inside it. Keeping the
// check in one place per header is what makes "never an out-of-bounds read"
// reviewable; the mutation tests run in debug builds, where any read past the
// end would trap.

// The `offset &+ 2` and `offset &+ 8` below cannot overflow: `offset` lies
// inside a buffer whose length the caller checked, and a buffer's end fits
// in an Int.
extension UnsafeRawBufferPointer {
    @inlinable @inline(__always)
    func bigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable @inline(__always)
    func bigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable @inline(__always)
    func bigEndianUInt64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inlinable @inline(__always)
    func ethernetAddress(at offset: Int) -> EthernetAddress {
        EthernetAddress(UInt64(bigEndianUInt16(at: offset)) << 32 | UInt64(bigEndianUInt32(at: offset &+ 2)))
    }

    @inlinable @inline(__always)
    func ipv4Address(at offset: Int) -> IPv4.Address { IPv4.Address(bigEndianUInt32(at: offset)) }

    @inlinable @inline(__always)
    func ipv6Address(at offset: Int) -> IPv6.Address {
        IPv6.Address(high: bigEndianUInt64(at: offset), low: bigEndianUInt64(at: offset &+ 8))
    }

    /// The bytes in `range`, rebased to start at index 0.
    /// - Precondition: `range` lies within the buffer.
    @inlinable @inline(__always)
    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[range])
    }

    /// The bytes from `offset` to the end, rebased to start at index 0.
    @inlinable @inline(__always)
    func dropping(_ offset: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[offset...])
    }
}

extension UnsafeMutableRawBufferPointer {
    @inlinable @inline(__always)
    func store(_ value: UInt8, at offset: Int) { self[offset] = value }

    @inlinable @inline(__always)
    func storeBigEndian(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inlinable @inline(__always)
    func storeBigEndian(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    @inlinable @inline(__always)
    func storeBigEndian(_ value: UInt64, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
    }

    @inlinable @inline(__always)
    func store(_ address: EthernetAddress, at offset: Int) {
        storeBigEndian(UInt16(truncatingIfNeeded: address.value >> 32), at: offset)
        storeBigEndian(UInt32(truncatingIfNeeded: address.value), at: offset &+ 2)
    }

    @inlinable @inline(__always)
    func store(_ address: IPv4.Address, at offset: Int) { storeBigEndian(address.value, at: offset) }

    @inlinable @inline(__always)
    func store(_ address: IPv6.Address, at offset: Int) {
        storeBigEndian(address.high, at: offset)
        storeBigEndian(address.low, at: offset &+ 8)
    }

    /// Copies `bytes` to `offset`.
    /// - Precondition: they fit.
    @inlinable
    func copy(_ bytes: UnsafeRawBufferPointer, to offset: Int) {
        precondition(offset >= 0 && bytes.count <= count - offset, "copy of \(bytes.count) bytes at \(offset) overruns \(count)")
        guard !bytes.isEmpty else { return }
        UnsafeMutableRawBufferPointer(rebasing: self[offset..<(offset + bytes.count)]).copyMemory(from: bytes)
    }
}

extension Array where Element == UInt8 {
    /// Appends `count` zero bytes and lets `body` fill them in place.
    ///
    /// Every `write(to: inout [UInt8])` convenience is this around the
    /// header's `write(to: UnsafeMutableRawBufferPointer, at:)`, so there is
    /// one serializer per header.
    @inlinable
    mutating func appendZeros(_ count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        let start = self.count
        append(contentsOf: repeatElement(0, count: count))
        withUnsafeMutableBytes { body(UnsafeMutableRawBufferPointer(rebasing: $0[start..<(start + count)])) }
    }
}

/// Fails the caller's precondition that a serializer has room.
@usableFromInline @inline(never)
func preconditionRoom(_ needed: Int, _ offset: Int, _ count: Int, _ what: StaticString) -> Never {
    preconditionFailure("writing \(what): needs \(needed) bytes at offset \(offset), buffer holds \(count)")
}

extension UnsafeMutableRawBufferPointer {
    /// Traps unless `needed` bytes fit at `offset`. Builders only ever write
    /// into buffers they sized themselves, so running out of room is a
    /// programming error, not bad input.
    @inlinable @inline(__always)
    func requireRoom(_ needed: Int, at offset: Int, for what: StaticString) {
        if _slowPath(offset < 0 || needed > count - offset) { preconditionRoom(needed, offset, count, what) }
    }
}

/// Runs a typed-throwing parser over an array's bytes. `Array.withUnsafeBytes`
/// only rethrows untyped errors, so the `[UInt8]` convenience initializers
/// go through `Result` to keep `throws(PacketError)`.
@inlinable
func withBytes<R>(of array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(PacketError) -> R) throws(PacketError) -> R {
    try array.withUnsafeBytes { bytes in Result { () throws(PacketError) in try body(bytes) } }.get()
}
