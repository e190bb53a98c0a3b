/// Namespace for DHCPv4 (RFC 2131) over BOOTP (RFC 951).
///
/// DHCP is answered by the agent itself, once per lease, so these types favour
/// clarity over allocation: a message owns its options as an array.
public enum DHCPv4 {}

extension DHCPv4 {
    /// The BOOTP op field.
    public struct Opcode: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt8
        @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let request = Opcode(rawValue: 1)
        public static let reply = Opcode(rawValue: 2)
    }

    /// The cookie that starts the options area: 99.130.83.99.
    public static let magicCookie: UInt32 = 0x6382_5363
    /// Fixed BOOTP fields before the cookie.
    public static let fixedLength = 236
    /// BOOTP messages are padded to at least this (RFC 951, RFC 1542 §3.3).
    public static let minimumLength = 300

    /// A DHCP message over Ethernet: the BOOTP fixed part and the options.
    public struct Message: Hashable, Sendable {
        public var opcode: Opcode
        public var hops: UInt8
        /// `xid`, chosen by the client; replies echo it.
        public var transactionID: UInt32
        public var seconds: UInt16
        /// Bit 15 is the broadcast flag; the rest must be zero.
        public var flags: UInt16
        /// `ciaddr`: the client's address when it already has one.
        public var clientAddress: IPv4.Address
        /// `yiaddr`: the address the server offers or assigns.
        public var yourAddress: IPv4.Address
        /// `siaddr`: the next server for booting.
        public var serverAddress: IPv4.Address
        /// `giaddr`: the relay agent, 0 when none.
        public var relayAddress: IPv4.Address
        /// `chaddr` (hardware type 1, length 6).
        public var clientMAC: EthernetAddress
        /// `sname`: the bytes before its first zero (at most 64). Bytes, not
        /// a String, because nothing says they are UTF-8 and a message must
        /// rebuild as it came.
        public var serverName: [UInt8]
        /// `file`: the bytes before its first zero (at most 128).
        public var bootFileName: [UInt8]
        public var options: [Option]

        public init(
            opcode: Opcode, hops: UInt8 = 0, transactionID: UInt32, seconds: UInt16 = 0, flags: UInt16 = 0,
            clientAddress: IPv4.Address = .any, yourAddress: IPv4.Address = .any, serverAddress: IPv4.Address = .any,
            relayAddress: IPv4.Address = .any, clientMAC: EthernetAddress, serverName: [UInt8] = [], bootFileName: [UInt8] = [],
            options: [Option] = []
        ) {
            self.opcode = opcode
            self.hops = hops
            self.transactionID = transactionID
            self.seconds = seconds
            self.flags = flags
            self.clientAddress = clientAddress
            self.yourAddress = yourAddress
            self.serverAddress = serverAddress
            self.relayAddress = relayAddress
            self.clientMAC = clientMAC
            self.serverName = serverName
            self.bootFileName = bootFileName
            self.options = options
        }

        /// The client asks for replies by broadcast (it cannot receive
        /// unicast before it has an address).
        public var isBroadcast: Bool {
            get { flags & 0x8000 != 0 }
            set { flags = newValue ? flags | 0x8000 : flags & ~0x8000 }
        }
    }
}

// MARK: - Option accessors

extension DHCPv4.Message {
    public var messageType: DHCPv4.MessageType? {
        for case .messageType(let type) in options { return type }
        return nil
    }

    public var requestedAddress: IPv4.Address? {
        for case .requestedAddress(let address) in options { return address }
        return nil
    }

    public var serverIdentifier: IPv4.Address? {
        for case .serverIdentifier(let address) in options { return address }
        return nil
    }

    public var hostName: String? {
        for case .hostName(let name) in options { return name }
        return nil
    }

    public var parameterRequestList: [UInt8]? {
        for case .parameterRequestList(let codes) in options { return codes }
        return nil
    }

    public var clientIdentifier: [UInt8]? {
        for case .clientIdentifier(let bytes) in options { return bytes }
        return nil
    }

    /// The first option with `code`, whatever its case.
    public func option(code: UInt8) -> DHCPv4.Option? {
        options.first { $0.code == code }
    }
}

// MARK: - Parsing and writing

extension DHCPv4.Message {
    /// Parses a DHCP message (a UDP payload).
    /// - Throws: `.truncated` under 240 bytes; `.unsupported(layer: .dhcpv4,
    ///   value:)` with the hardware type and length (`htype << 8 | hlen`)
    ///   when they are not Ethernet's 1 and 6, or with the cookie when it is
    ///   not DHCP's; `.badOption` for option lengths that run past the end.
    /// - Complexity: O(n); allocates the options.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(PacketError) {
        try PacketError.require(DHCPv4.fixedLength + 4, in: bytes, layer: .dhcpv4)
        let hardwareType = bytes[1]
        let hardwareLength = bytes[2]
        guard hardwareType == 1, hardwareLength == 6 else {
            throw .unsupported(layer: .dhcpv4, value: UInt32(hardwareType) << 8 | UInt32(hardwareLength))
        }
        let cookie = bytes.bigEndianUInt32(at: DHCPv4.fixedLength)
        guard cookie == DHCPv4.magicCookie else { throw .unsupported(layer: .dhcpv4, value: cookie) }
        opcode = DHCPv4.Opcode(rawValue: bytes[0])
        hops = bytes[3]
        transactionID = bytes.bigEndianUInt32(at: 4)
        seconds = bytes.bigEndianUInt16(at: 8)
        flags = bytes.bigEndianUInt16(at: 10)
        clientAddress = bytes.ipv4Address(at: 12)
        yourAddress = bytes.ipv4Address(at: 16)
        serverAddress = bytes.ipv4Address(at: 20)
        relayAddress = bytes.ipv4Address(at: 24)
        clientMAC = bytes.ethernetAddress(at: 28)
        serverName = Self.bytesBeforeZero(bytes.slice(44..<108))
        bootFileName = Self.bytesBeforeZero(bytes.slice(108..<236))
        options = try DHCPv4.parseOptions(bytes.dropping(240), baseOffset: 240)
    }

    public init(parsing bytes: [UInt8]) throws(PacketError) {
        self = try withBytes(of: bytes) { (raw) throws(PacketError) in try DHCPv4.Message(parsing: raw) }
    }

    private static func bytesBeforeZero(_ field: UnsafeRawBufferPointer) -> [UInt8] {
        Array(field.slice(0..<(field.firstIndex(of: 0) ?? field.count)))
    }

    /// The message as sent: fixed part, cookie, options, end, then zero
    /// padding to the 300-byte BOOTP minimum.
    /// - Precondition: `serverName` fits 64 bytes and `bootFileName` 128.
    public var bytes: [UInt8] {
        precondition(serverName.count <= 64 && bootFileName.count <= 128,
                     "DHCP sname of \(serverName.count) bytes (at most 64) or file of \(bootFileName.count) (at most 128)")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(DHCPv4.minimumLength)
        bytes.appendZeros(DHCPv4.fixedLength + 4) { buffer in
            buffer.store(opcode.rawValue, at: 0)
            buffer.store(UInt8(1), at: 1)
            buffer.store(UInt8(6), at: 2)
            buffer.store(hops, at: 3)
            buffer.storeBigEndian(transactionID, at: 4)
            buffer.storeBigEndian(seconds, at: 8)
            buffer.storeBigEndian(flags, at: 10)
            buffer.store(clientAddress, at: 12)
            buffer.store(yourAddress, at: 16)
            buffer.store(serverAddress, at: 20)
            buffer.store(relayAddress, at: 24)
            buffer.store(clientMAC, at: 28)
            serverName.withUnsafeBytes { buffer.copy($0, to: 44) }
            bootFileName.withUnsafeBytes { buffer.copy($0, to: 108) }
            buffer.storeBigEndian(DHCPv4.magicCookie, at: DHCPv4.fixedLength)
        }
        for option in options { DHCPv4.write(option, to: &bytes) }
        bytes.append(DHCPv4.endOption)
        if bytes.count < DHCPv4.minimumLength {
            bytes.append(contentsOf: repeatElement(0, count: DHCPv4.minimumLength - bytes.count))
        }
        return bytes
    }
}
