/// Namespace for IPv6 value types (RFC 8200).
public enum IPv6 {}

extension IPv6 {
    /// A 128-bit IPv6 address as two host-order halves, so it is a fixed-size
    /// value that hashes and compares as two words.
    public struct Address: Hashable, Comparable, Sendable {
        /// The first 64 bits (network prefix for a /64).
        public var high: UInt64
        /// The last 64 bits (interface identifier for a /64).
        public var low: UInt64

        @inlinable
        public init(high: UInt64, low: UInt64) {
            self.high = high
            self.low = low
        }

        public static let any = Address(high: 0, low: 0)

        /// The link-local address an interface with `mac` forms by modified
        /// EUI-64 (RFC 4291 appendix A): fe80::, the MAC with ff:fe in the
        /// middle and the universal/local bit flipped.
        @inlinable
        public static func linkLocal(eui64 mac: EthernetAddress) -> Address {
            let value = mac.value
            let upper = (value >> 24) ^ 0x02_0000
            let lower = value & 0xFF_FFFF
            return Address(high: 0xFE80_0000_0000_0000, low: upper << 40 | 0xFF_FE00_0000 | lower)
        }
        public static let loopback = Address(high: 0, low: 1)
        /// ff02::1, every node on the link.
        public static let allNodes = Address(high: 0xFF02_0000_0000_0000, low: 1)

        @inlinable
        public static func < (lhs: Address, rhs: Address) -> Bool {
            (lhs.high, lhs.low) < (rhs.high, rhs.low)
        }

        @inlinable public var isMulticast: Bool { high >> 56 == 0xFF }
        @inlinable public var isUnspecified: Bool { high == 0 && low == 0 }
        /// fe80::/10.
        @inlinable public var isLinkLocal: Bool { high >> 54 == 0xFE80 >> 6 }

        /// The solicited-node multicast group for this address (RFC 4291
        /// §2.7.1): ff02::1:ff00:0/104 and the low 24 bits.
        @inlinable
        public var solicitedNodeMulticast: Address {
            Address(high: 0xFF02_0000_0000_0000, low: 0x0000_0001_FF00_0000 | low & 0xFF_FFFF)
        }

        /// Parses RFC 4291 text ("2001:db8::1", "fe80::a:b:c:d"); nil for
        /// anything else. The embedded-IPv4 form is not accepted.
        public init?(parsing text: some StringProtocol) {
            let utf8 = Array(text.utf8)
            let colon = UInt8(ascii: ":")
            var doubleColon: Int?
            var index = 0
            while index + 1 < utf8.count {
                if utf8[index] == colon, utf8[index + 1] == colon {
                    guard doubleColon == nil else { return nil }  // "::" twice, or ":::"
                    doubleColon = index
                }
                index += 1
            }
            let groups: [UInt16]
            if let doubleColon {
                guard let head = Self.groups(utf8[..<doubleColon]), let tail = Self.groups(utf8[(doubleColon + 2)...]),
                      head.count + tail.count <= 7
                else { return nil }
                groups = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
            } else {
                guard let all = Self.groups(utf8[...]), all.count == 8 else { return nil }
                groups = all
            }
            var high: UInt64 = 0
            var low: UInt64 = 0
            for group in groups[0..<4] { high = high << 16 | UInt64(group) }
            for group in groups[4..<8] { low = low << 16 | UInt64(group) }
            self.init(high: high, low: low)
        }

        /// Colon-separated groups of one to four hex digits; empty text is no
        /// groups.
        private static func groups(_ text: ArraySlice<UInt8>) -> [UInt16]? {
            guard !text.isEmpty else { return [] }
            var result: [UInt16] = []
            for part in text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false) {
                guard (1...4).contains(part.count) else { return nil }
                var value: UInt16 = 0
                for byte in part {
                    let nibble: UInt16
                    switch byte {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = UInt16(byte - UInt8(ascii: "0"))
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = UInt16(byte - UInt8(ascii: "a") + 10)
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = UInt16(byte - UInt8(ascii: "A") + 10)
                    default: return nil
                    }
                    value = value << 4 | nibble
                }
                result.append(value)
            }
            return result.count <= 8 ? result : nil
        }

        /// The eight 16-bit groups.
        public var groups: [UInt16] {
            (0..<8).map { index in
                let word = index < 4 ? high : low
                return UInt16(truncatingIfNeeded: word >> UInt64(48 - 16 * (index % 4)))
            }
        }
    }
}

extension IPv6.Address: CustomStringConvertible {
    /// RFC 5952 text: lowercase, no leading zeros, the longest run of two or
    /// more zero groups (the first, on a tie) shortened to "::".
    public var description: String {
        let groups = self.groups
        var bestStart = -1
        var bestLength = 1
        var runStart = -1
        for index in 0...8 {
            if index < 8, groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength {
                    bestStart = runStart
                    bestLength = index - runStart
                }
                runStart = -1
            }
        }
        var text = ""
        var index = 0
        while index < 8 {
            if index == bestStart {
                text += "::"
                index += bestLength
                continue
            }
            if !text.isEmpty, !text.hasSuffix(":") { text += ":" }
            text += String(groups[index], radix: 16)
            index += 1
        }
        return text
    }
}

extension IPv6 {
    /// The fixed 40-byte IPv6 header.
    public struct Header: Hashable, Sendable {
        public var trafficClass: UInt8
        /// 20 bits.
        public var flowLabel: UInt32
        /// Bytes after this header, extension headers included.
        public var payloadLength: UInt16
        public var nextHeader: IPProtocol
        public var hopLimit: UInt8
        public var source: Address
        public var destination: Address

        public static let length = 40

        /// - Precondition: `flowLabel` fits 20 bits, `payloadLength <= 65535`.
        @inlinable
        public init(
            trafficClass: UInt8 = 0, flowLabel: UInt32 = 0, payloadLength: Int, nextHeader: IPProtocol, hopLimit: UInt8 = 64,
            source: Address, destination: Address
        ) {
            precondition(flowLabel <= 0xF_FFFF && payloadLength >= 0 && payloadLength <= 0xFFFF,
                         "IPv6 flow label \(flowLabel) or payload length \(payloadLength) out of range")
            self.trafficClass = trafficClass
            self.flowLabel = flowLabel
            self.payloadLength = UInt16(payloadLength)
            self.nextHeader = nextHeader
            self.hopLimit = hopLimit
            self.source = source
            self.destination = destination
        }
    }

    /// Where the upper-layer (transport) header of an IPv6 packet starts,
    /// after skipping extension headers.
    public struct UpperLayer: Hashable, Sendable {
        /// The first header that is not an extension header; `.noNextHeader`
        /// when the chain says so.
        public var `protocol`: IPProtocol
        /// Offset of that header from the start of the IPv6 header. For a
        /// later fragment it is where the fragment's data starts, which is
        /// not a header.
        public var offset: Int
        public var fragmentKind: FragmentKind
        /// The fragment header's identification, 0 when not a fragment.
        public var fragmentIdentification: UInt32
    }
}

extension IPv6.Header {
    /// Parses the fixed header at the start of `packet` and checks the payload
    /// length against the bytes present (bytes beyond it are ignored).
    /// - Throws: `.truncated`, `.badVersion`.
    /// - Complexity: O(1)
    public init(parsing packet: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(40, in: packet, layer: .ipv6)
        let first = packet.bigEndianUInt32(at: 0)
        guard first >> 28 == 6 else { throw .badVersion(layer: .ipv6, version: UInt8(truncatingIfNeeded: first >> 28)) }
        trafficClass = UInt8(truncatingIfNeeded: first >> 20)
        flowLabel = first & 0xF_FFFF
        payloadLength = packet.bigEndianUInt16(at: 4)
        try PacketError.require(40 + Int(payloadLength), in: packet, layer: .ipv6)
        nextHeader = IPProtocol(packet[6])
        hopLimit = packet[7]
        source = packet.ipv6Address(at: 8)
        destination = packet.ipv6Address(at: 24)
    }

    public init(parsing packet: [UInt8]) throws(PacketError) {
        self = try withBytes(of: packet) { (bytes) throws(PacketError) in try IPv6.Header(parsing: bytes) }
    }

    /// Walks the extension headers (hop-by-hop, routing, fragment,
    /// destination options, authentication) to the upper-layer header.
    ///
    /// A later fragment stops the walk: its data is not a header.
    /// - Precondition: `packet` is the packet this header was parsed from.
    /// - Throws: `.truncated(layer: .ipv6Extension, ...)` when an extension
    ///   header runs past the payload length.
    /// - Complexity: O(number of extension headers); each is at least 8
    ///   bytes, so the walk is bounded by the packet size.
    public func upperLayer(in packet: UnsafeRawBufferPointer) throws(PacketError) -> IPv6.UpperLayer {
        let end = min(40 + Int(payloadLength), packet.count)
        var next = nextHeader
        var offset = 40
        var result = IPv6.UpperLayer(protocol: next, offset: offset, fragmentKind: .none, fragmentIdentification: 0)
        while true {
            let length: Int
            switch next {
            case .hopByHopOptions, .routing, .destinationOptions:
                guard end - offset >= 2 else { throw PacketError.truncated(.ipv6Extension, offset + 2, end) }
                length = (Int(packet[offset + 1]) + 1) * 8
            case .authenticationHeader:
                guard end - offset >= 2 else { throw PacketError.truncated(.ipv6Extension, offset + 2, end) }
                length = (Int(packet[offset + 1]) + 2) * 4
            case .fragment:
                length = 8
                guard end - offset >= 8 else { throw PacketError.truncated(.ipv6Extension, offset + 8, end) }
                let offsetAndFlags = packet.bigEndianUInt16(at: offset + 2)
                result.fragmentIdentification = packet.bigEndianUInt32(at: offset + 4)
                if offsetAndFlags >> 3 != 0 {
                    result.fragmentKind = .later
                } else if offsetAndFlags & 1 != 0 {
                    result.fragmentKind = .first
                }
            default:
                result.protocol = next
                result.offset = offset
                return result
            }
            guard end - offset >= length else { throw PacketError.truncated(.ipv6Extension, offset + length, end) }
            next = IPProtocol(packet[offset])
            offset += length
            if result.fragmentKind == .later {
                result.protocol = next
                result.offset = offset
                return result
            }
        }
    }

    /// Writes the 40-byte header at `offset`; returns 40.
    /// - Precondition: it fits.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) -> Int {
        buffer.requireRoom(40, at: offset, for: "IPv6 header")
        buffer.storeBigEndian(6 << 28 | UInt32(trafficClass) << 20 | flowLabel & 0xF_FFFF, at: offset)
        buffer.storeBigEndian(payloadLength, at: offset + 4)
        buffer.store(nextHeader.rawValue, at: offset + 6)
        buffer.store(hopLimit, at: offset + 7)
        buffer.store(source, at: offset + 8)
        buffer.store(destination, at: offset + 24)
        return 40
    }

    public func write(to bytes: inout [UInt8]) {
        bytes.appendZeros(40) { write(to: $0) }
    }
}
