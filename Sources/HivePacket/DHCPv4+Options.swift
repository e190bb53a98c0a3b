// DHCPv4 options (RFC 2132): the few a virtual network's DHCP server reads or
// sends get their own case; every other option is kept as code and bytes, so
// a message round-trips and a relay or a trace can show what a client asked.

extension DHCPv4 {
    /// The DHCP message type (option 53).
    public struct MessageType: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt8
        @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
        @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }

        public static let discover = MessageType(1)
        public static let offer = MessageType(2)
        public static let request = MessageType(3)
        public static let decline = MessageType(4)
        public static let ack = MessageType(5)
        public static let nak = MessageType(6)
        public static let release = MessageType(7)
        public static let inform = MessageType(8)
    }

    /// One DHCP option. Pad (0) and end (255) are framing, not options: the
    /// parser skips pad and stops at end; the writer adds end and padding.
    public enum Option: Hashable, Sendable {
        /// 1
        case subnetMask(IPv4.Address)
        /// 3, in order of preference.
        case routers([IPv4.Address])
        /// 6
        case domainNameServers([IPv4.Address])
        /// 12
        case hostName(String)
        /// 15
        case domainName(String)
        /// 26
        case interfaceMTU(UInt16)
        /// 50
        case requestedAddress(IPv4.Address)
        /// 51, seconds.
        case leaseTime(UInt32)
        /// 53
        case messageType(MessageType)
        /// 54
        case serverIdentifier(IPv4.Address)
        /// 55, option codes.
        case parameterRequestList([UInt8])
        /// 57
        case maximumMessageSize(UInt16)
        /// 58, seconds.
        case renewalTime(UInt32)
        /// 59, seconds.
        case rebindingTime(UInt32)
        /// 61, usually a hardware type byte and the MAC.
        case clientIdentifier([UInt8])
        /// Any other option, or a known one whose data has the wrong shape,
        /// kept as it came.
        case other(code: UInt8, data: [UInt8])

        /// The option code on the wire.
        public var code: UInt8 {
            switch self {
            case .subnetMask: 1
            case .routers: 3
            case .domainNameServers: 6
            case .hostName: 12
            case .domainName: 15
            case .interfaceMTU: 26
            case .requestedAddress: 50
            case .leaseTime: 51
            case .messageType: 53
            case .serverIdentifier: 54
            case .parameterRequestList: 55
            case .maximumMessageSize: 57
            case .renewalTime: 58
            case .rebindingTime: 59
            case .clientIdentifier: 61
            case .other(let code, _): code
            }
        }

        /// The option's data bytes (without code and length).
        public var data: [UInt8] {
            switch self {
            case .subnetMask(let address), .requestedAddress(let address), .serverIdentifier(let address):
                return Self.bytes(address.value)
            case .routers(let addresses), .domainNameServers(let addresses):
                return addresses.flatMap { Self.bytes($0.value) }
            case .hostName(let text), .domainName(let text):
                return Array(text.utf8)
            case .interfaceMTU(let value), .maximumMessageSize(let value):
                return [UInt8(value >> 8), UInt8(value & 0xFF)]
            case .leaseTime(let value), .renewalTime(let value), .rebindingTime(let value):
                return Self.bytes(value)
            case .messageType(let type):
                return [type.rawValue]
            case .parameterRequestList(let bytes), .clientIdentifier(let bytes), .other(_, let bytes):
                return bytes
            }
        }

        /// Interprets `data` of option `code`. A known code with data of the
        /// wrong length or shape becomes `.other`, so nothing is lost and
        /// nobody reads a half-valid value.
        public init(code: UInt8, data: [UInt8]) {
            func address() -> IPv4.Address? {
                data.count == 4 ? IPv4.Address(Self.uint32(data, 0)) : nil
            }
            func addresses() -> [IPv4.Address]? {
                guard !data.isEmpty, data.count % 4 == 0 else { return nil }
                return stride(from: 0, to: data.count, by: 4).map { IPv4.Address(Self.uint32(data, $0)) }
            }
            func uint16() -> UInt16? { data.count == 2 ? UInt16(data[0]) << 8 | UInt16(data[1]) : nil }
            func uint32() -> UInt32? { data.count == 4 ? Self.uint32(data, 0) : nil }
            func text() -> String? { data.isEmpty ? nil : String(validating: data, as: UTF8.self) }

            let parsed: Option? =
                switch code {
                case 1: address().map { .subnetMask($0) }
                case 3: addresses().map { .routers($0) }
                case 6: addresses().map { .domainNameServers($0) }
                case 12: text().map { .hostName($0) }
                case 15: text().map { .domainName($0) }
                case 26: uint16().flatMap { $0 >= 68 ? .interfaceMTU($0) : nil }
                case 50: address().map { .requestedAddress($0) }
                case 51: uint32().map { .leaseTime($0) }
                case 53: data.count == 1 ? .messageType(MessageType(data[0])) : nil
                case 54: address().map { .serverIdentifier($0) }
                case 55: data.isEmpty ? nil : .parameterRequestList(data)
                case 57: uint16().flatMap { $0 >= 576 ? .maximumMessageSize($0) : nil }
                case 58: uint32().map { .renewalTime($0) }
                case 59: uint32().map { .rebindingTime($0) }
                case 61: data.count >= 2 ? .clientIdentifier(data) : nil
                default: nil
                }
            self = parsed ?? .other(code: code, data: data)
        }

        private static func bytes(_ value: UInt32) -> [UInt8] {
            [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        }

        private static func uint32(_ data: [UInt8], _ offset: Int) -> UInt32 {
            UInt32(data[offset]) << 24 | UInt32(data[offset + 1]) << 16 | UInt32(data[offset + 2]) << 8 | UInt32(data[offset + 3])
        }
    }
}

extension DHCPv4 {
    static let padOption: UInt8 = 0
    static let endOption: UInt8 = 255

    /// Reads the options area `bytes` (after the magic cookie). Pad is
    /// skipped, end stops the scan (what follows is padding), a missing end
    /// is tolerated. Repeated codes are concatenated before interpretation
    /// (RFC 3396) and keep the position of their first appearance.
    /// - Throws: `.badOption(layer: .dhcpv4, offset:)`, offset from the start
    ///   of the DHCP message, when a length runs past the area.
    static func parseOptions(_ bytes: UnsafeRawBufferPointer, baseOffset: Int) throws(PacketError) -> [Option] {
        var order: [UInt8] = []
        var data: [UInt8: [UInt8]] = [:]
        var offset = 0
        while offset < bytes.count {
            let code = bytes[offset]
            if code == padOption {
                offset += 1
                continue
            }
            if code == endOption { break }
            guard bytes.count - offset >= 2 else { throw .badOption(layer: .dhcpv4, offset: baseOffset + offset) }
            let length = Int(bytes[offset + 1])
            guard bytes.count - offset - 2 >= length else { throw .badOption(layer: .dhcpv4, offset: baseOffset + offset) }
            let value = bytes.slice((offset + 2)..<(offset + 2 + length))
            if data[code] == nil {
                order.append(code)
                data[code] = Array(value)
            } else {
                data[code]!.append(contentsOf: value)
            }
            offset += 2 + length
        }
        return order.map { Option(code: $0, data: data[$0] ?? []) }
    }

    /// Appends `option`, split into several of the same code when its data
    /// exceeds 255 bytes (RFC 3396).
    static func write(_ option: Option, to bytes: inout [UInt8]) {
        let data = option.data
        var start = 0
        repeat {
            let end = min(start + 255, data.count)
            bytes.append(option.code)
            bytes.append(UInt8(end - start))
            bytes.append(contentsOf: data[start..<end])
            start = end
        } while start < data.count
    }
}
