// Encapsulating a frame for another host: outer Ethernet, IPv4 and UDP, then
// a Geneve or VXLAN header, then the inner frame.
//
// The `write…` functions fill headroom in a buffer the datapath already owns
// and never allocate; they are the fast path for every tunnelled packet. The
// `encapsulate` functions build a new array, for tests and generated packets.
//
// The outer UDP checksum is 0 (none): both RFC 7348 and RFC 8926 allow that
// over IPv4, the inner frame carries its own checksums, and it saves reading
// the whole packet.

/// Outer addressing of tunnel packets between two hosts.
public struct TunnelEndpoints: Hashable, Sendable {
    public var sourceMAC: EthernetAddress
    /// The next hop toward the peer on the underlay.
    public var destinationMAC: EthernetAddress
    public var sourceIP: IPv4.Address
    public var destinationIP: IPv4.Address
    public var timeToLive: UInt8
    public var typeOfService: UInt8
    public var dontFragment: Bool

    public init(
        sourceMAC: EthernetAddress, destinationMAC: EthernetAddress, sourceIP: IPv4.Address, destinationIP: IPv4.Address,
        timeToLive: UInt8 = 64, typeOfService: UInt8 = 0, dontFragment: Bool = false
    ) {
        self.sourceMAC = sourceMAC
        self.destinationMAC = destinationMAC
        self.sourceIP = sourceIP
        self.destinationIP = destinationIP
        self.timeToLive = timeToLive
        self.typeOfService = typeOfService
        self.dontFragment = dontFragment
    }
}

/// Namespace for what Geneve and VXLAN encapsulation share.
public enum Tunnel {
    /// Outer Ethernet (untagged) + IPv4 (no options) + UDP.
    public static let outerHeadersLength = 14 + 20 + 8

    /// A UDP source port for a flow, from a hash of its inner headers, in
    /// the dynamic range 49152...65535 (RFC 7348 §5, RFC 8926 §3.3), so
    /// underlay ECMP spreads flows but keeps each on one path.
    @inlinable
    public static func sourcePort(flowHash: UInt64) -> UInt16 {
        0xC000 | UInt16(truncatingIfNeeded: flowHash ^ flowHash >> 16 ^ flowHash >> 32 ^ flowHash >> 48) & 0x3FFF
    }

    /// Writes outer Ethernet, IPv4 (with its checksum) and UDP headers at
    /// `offset` for a UDP payload of `udpPayloadLength` bytes; returns 42.
    /// - Precondition: 42 bytes fit; the payload fits an IPv4 packet.
    /// - Complexity: O(1), without allocating.
    @discardableResult
    public static func writeOuterHeaders(
        into buffer: UnsafeMutableRawBufferPointer, at offset: Int, endpoints: TunnelEndpoints, identification: UInt16,
        sourcePort: UInt16, destinationPort: UInt16, udpPayloadLength: Int
    ) -> Int {
        buffer.requireRoom(outerHeadersLength, at: offset, for: "tunnel outer headers")
        let ethernet = Ethernet.Header(destination: endpoints.destinationMAC, source: endpoints.sourceMAC, etherType: .ipv4)
        var ip = IPv4.Header(
            typeOfService: endpoints.typeOfService, payloadLength: 8 + udpPayloadLength, identification: identification,
            dontFragment: endpoints.dontFragment, timeToLive: endpoints.timeToLive, protocol: .udp,
            source: endpoints.sourceIP, destination: endpoints.destinationIP)
        ip.updateChecksum()
        let udp = UDP.Header(sourcePort: sourcePort, destinationPort: destinationPort, payloadLength: udpPayloadLength)
        ethernet.write(to: buffer, at: offset)
        ip.write(to: buffer, at: offset + 14)
        udp.write(to: buffer, at: offset + 34)
        return outerHeadersLength
    }
}

extension Geneve {
    /// Bytes in front of the inner frame: outer headers, Geneve header,
    /// options.
    @inlinable
    public static func encapsulationLength(optionsLength: Int) -> Int { Tunnel.outerHeadersLength + 8 + optionsLength }

    /// Writes everything in front of an inner frame of `innerLength` bytes at
    /// `offset`: outer headers, the Geneve header, then `options` (already
    /// serialized, a multiple of 4 bytes up to 252). Returns the bytes
    /// written, `encapsulationLength(optionsLength: options.count)`.
    /// - Complexity: O(options.count), without allocating.
    @discardableResult
    public static func writeEncapsulation(
        into buffer: UnsafeMutableRawBufferPointer, at offset: Int, innerLength: Int, vni: UInt32,
        options: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        endpoints: TunnelEndpoints, identification: UInt16 = 0, sourcePort: UInt16
    ) -> Int {
        let total = encapsulationLength(optionsLength: options.count)
        buffer.requireRoom(total, at: offset, for: "Geneve encapsulation")
        let header = Header(optionsLength: options.count, vni: vni)
        Tunnel.writeOuterHeaders(
            into: buffer, at: offset, endpoints: endpoints, identification: identification,
            sourcePort: sourcePort, destinationPort: UDP.genevePort, udpPayloadLength: header.length + innerLength)
        header.write(to: buffer, at: offset + Tunnel.outerHeadersLength)
        buffer.copy(options, to: offset + Tunnel.outerHeadersLength + 8)
        return total
    }

    /// `inner` encapsulated in a new array.
    public static func encapsulate(
        _ inner: [UInt8], vni: UInt32, options: [Option] = [], endpoints: TunnelEndpoints, identification: UInt16 = 0,
        sourcePort: UInt16
    ) -> [UInt8] {
        var optionBytes: [UInt8] = []
        for option in options { option.write(to: &optionBytes) }
        let headroom = encapsulationLength(optionsLength: optionBytes.count)
        var frame = [UInt8](repeating: 0, count: headroom + inner.count)
        frame.withUnsafeMutableBytes { buffer in
            optionBytes.withUnsafeBytes { optionBuffer in
                _ = writeEncapsulation(
                    into: buffer, at: 0, innerLength: inner.count, vni: vni, options: optionBuffer, endpoints: endpoints,
                    identification: identification, sourcePort: sourcePort)
            }
            inner.withUnsafeBytes { buffer.copy($0, to: headroom) }
        }
        return frame
    }
}

extension VXLAN {
    /// Bytes in front of the inner frame: outer headers and VXLAN header.
    public static let encapsulationLength = Tunnel.outerHeadersLength + 8

    /// Writes everything in front of an inner frame of `innerLength` bytes at
    /// `offset`; returns `encapsulationLength`.
    /// - Complexity: O(1), without allocating.
    @discardableResult
    public static func writeEncapsulation(
        into buffer: UnsafeMutableRawBufferPointer, at offset: Int, innerLength: Int, vni: UInt32,
        endpoints: TunnelEndpoints, identification: UInt16 = 0, sourcePort: UInt16
    ) -> Int {
        buffer.requireRoom(encapsulationLength, at: offset, for: "VXLAN encapsulation")
        Tunnel.writeOuterHeaders(
            into: buffer, at: offset, endpoints: endpoints, identification: identification,
            sourcePort: sourcePort, destinationPort: UDP.vxlanPort, udpPayloadLength: 8 + innerLength)
        Header(vni: vni).write(to: buffer, at: offset + Tunnel.outerHeadersLength)
        return encapsulationLength
    }

    /// `inner` encapsulated in a new array.
    public static func encapsulate(
        _ inner: [UInt8], vni: UInt32, endpoints: TunnelEndpoints, identification: UInt16 = 0, sourcePort: UInt16
    ) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: encapsulationLength + inner.count)
        frame.withUnsafeMutableBytes { buffer in
            writeEncapsulation(
                into: buffer, at: 0, innerLength: inner.count, vni: vni, endpoints: endpoints,
                identification: identification, sourcePort: sourcePort)
            inner.withUnsafeBytes { buffer.copy($0, to: encapsulationLength) }
        }
        return frame
    }
}
