// Incremental checksum update (RFC 1624).
//
// NAT, port translation and TTL decrement change a few bytes of a packet
// whose checksum is already right. Recomputing would read the whole packet;
// RFC 1624 eqn. 3 adjusts the checksum from the old and new values alone:
//
//     HC' = ~(~HC + ~m + m')
//
// Eqn. 3 (not eqn. 2 of RFC 1141) is used because it never turns a correct
// checksum into the wrong zero: the result equals a full recomputation.

extension InternetChecksum {
    /// The checksum after a 16-bit word of the covered data changes from
    /// `old` to `new`.
    /// - Complexity: O(1)
    @inlinable
    public static func updated(_ checksum: UInt16, replacing old: UInt16, with new: UInt16) -> UInt16 {
        // Three terms of at most 0xFFFF: the sum stays below 2¹⁸.
        var sum = UInt32(~checksum) &+ UInt32(~old) &+ UInt32(new)
        sum = (sum & 0xFFFF) &+ (sum >> 16)  // below 0x1_0003
        sum = (sum & 0xFFFF) &+ (sum >> 16)  // now at most 0xFFFF
        return ~UInt16(truncatingIfNeeded: sum)
    }

    /// The checksum after a 32-bit field (an IPv4 address) of the covered
    /// data changes from `old` to `new`. The field must start on a 16-bit
    /// boundary of the checksummed data, as every IPv4 address field does.
    /// - Complexity: O(1)
    @inlinable
    public static func updated(_ checksum: UInt16, replacing old: UInt32, with new: UInt32) -> UInt16 {
        // Five terms of at most 0xFFFF: the sum stays below 2¹⁹.
        var sum = UInt32(~checksum)
            &+ UInt32(~UInt16(truncatingIfNeeded: old >> 16)) &+ UInt32(~UInt16(truncatingIfNeeded: old))
            &+ UInt32(UInt16(truncatingIfNeeded: new >> 16)) &+ UInt32(UInt16(truncatingIfNeeded: new))
        sum = (sum & 0xFFFF) &+ (sum >> 16)  // below 0x1_0007
        sum = (sum & 0xFFFF) &+ (sum >> 16)  // now at most 0xFFFF
        return ~UInt16(truncatingIfNeeded: sum)
    }
}

extension UDP {
    /// The UDP-over-IPv4 checksum after a covered 16-bit word changes
    /// (a port). A checksum of 0 means the sender sent none and stays 0; a
    /// result of 0 is sent as 0xFFFF, its ones' complement twin (RFC 768).
    @inlinable
    public static func updatedChecksum(_ checksum: UInt16, replacing old: UInt16, with new: UInt16) -> UInt16 {
        guard checksum != 0 else { return 0 }
        let result = InternetChecksum.updated(checksum, replacing: old, with: new)
        return result == 0 ? 0xFFFF : result
    }

    /// The UDP-over-IPv4 checksum after a covered 32-bit word changes (an
    /// address in the pseudo-header). 0 stays 0, as above.
    @inlinable
    public static func updatedChecksum(_ checksum: UInt16, replacing old: UInt32, with new: UInt32) -> UInt16 {
        guard checksum != 0 else { return 0 }
        let result = InternetChecksum.updated(checksum, replacing: old, with: new)
        return result == 0 ? 0xFFFF : result
    }
}
