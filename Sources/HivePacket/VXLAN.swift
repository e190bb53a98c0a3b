/// Namespace for VXLAN (RFC 7348), for peers that speak only VXLAN: hardware
/// VTEPs and Linux `vxlan` devices, over UDP port 4789.
public enum VXLAN {}

extension VXLAN {
    /// The 8-byte VXLAN header: flags with the I bit, 24-bit VNI, reserved
    /// fields (sent as zero, ignored on receipt).
    public struct Header: Hashable, Sendable {
        /// 24-bit VXLAN network identifier; Hive puts the egress port's
        /// tunnel key here.
        public var vni: UInt32

        public static let length = 8
        /// The I flag: the VNI is valid. The only flag RFC 7348 defines.
        public static let validVNIFlag: UInt8 = 0x08

        /// - Precondition: `vni` fits 24 bits.
        @inlinable
        public init(vni: UInt32) {
            precondition(vni <= 0xFF_FFFF, "VXLAN VNI \(vni) exceeds 24 bits")
            self.vni = vni
        }
    }
}

extension VXLAN.Header {
    /// Parses the header at the start of `packet` (a UDP payload); the inner
    /// frame follows at offset 8. Reserved bits are ignored, as RFC 7348
    /// says receivers must.
    /// - Throws: `.truncated` under 8 bytes; `.unsupported(layer: .vxlan,
    ///   value: flags)` when the I flag is clear, since the VNI then means
    ///   nothing.
    /// - Complexity: O(1)
    public init(parsing packet: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(8, in: packet, layer: .vxlan)
        let flags = packet[0]
        guard flags & VXLAN.Header.validVNIFlag != 0 else { throw .unsupported(layer: .vxlan, value: UInt32(flags)) }
        vni = packet.bigEndianUInt32(at: 4) >> 8
    }

    public init(parsing packet: [UInt8]) throws(PacketError) {
        self = try withBytes(of: packet) { (bytes) throws(PacketError) in try VXLAN.Header(parsing: bytes) }
    }

    /// Writes the 8 bytes at `offset`; returns 8.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) -> Int {
        buffer.requireRoom(8, at: offset, for: "VXLAN header")
        buffer.storeBigEndian(UInt32(VXLAN.Header.validVNIFlag) << 24, at: offset)
        buffer.storeBigEndian(vni << 8, at: offset + 4)
        return 8
    }

    public func write(to bytes: inout [UInt8]) {
        bytes.appendZeros(8) { write(to: $0) }
    }
}
