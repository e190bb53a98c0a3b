import HivePacket

/// A packet described by its fields, as `hive trace` takes them, turned into
/// a whole frame with every checksum right. For tools, tests and benchmarks:
/// it allocates the frame it returns.
public struct PacketDescription: Hashable, Sendable {
    public enum TransportKind: String, Hashable, Sendable, CaseIterable {
        case icmp, tcp, udp, arp
    }

    public var sourceMAC: EthernetAddress
    public var destinationMAC: EthernetAddress
    public var sourceIP: IPv4.Address
    public var destinationIP: IPv4.Address
    public var `protocol`: TransportKind
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var tcpFlags: TCP.Flags
    public var icmpType: UInt8
    public var icmpCode: UInt8
    /// Echo identifier (ICMP echo request and reply).
    public var icmpIdentifier: UInt16
    public var timeToLive: UInt8
    /// ARP only: request (default) or reply.
    public var arpOperation: ARP.Operation
    public var payload: [UInt8]

    public init(
        sourceMAC: EthernetAddress, destinationMAC: EthernetAddress, sourceIP: IPv4.Address, destinationIP: IPv4.Address,
        protocol: TransportKind = .icmp, sourcePort: UInt16 = 0, destinationPort: UInt16 = 0, tcpFlags: TCP.Flags = .syn,
        icmpType: UInt8 = ICMPv4.MessageType.echoRequest.rawValue, icmpCode: UInt8 = 0, icmpIdentifier: UInt16 = 1,
        timeToLive: UInt8 = 64, arpOperation: ARP.Operation = .request, payload: [UInt8] = []
    ) {
        self.sourceMAC = sourceMAC
        self.destinationMAC = destinationMAC
        self.sourceIP = sourceIP
        self.destinationIP = destinationIP
        self.protocol = `protocol`
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.tcpFlags = tcpFlags
        self.icmpType = icmpType
        self.icmpCode = icmpCode
        self.icmpIdentifier = icmpIdentifier
        self.timeToLive = timeToLive
        self.arpOperation = arpOperation
        self.payload = payload
    }

    /// The Ethernet frame (ARP padded to 60 bytes).
    public var frame: [UInt8] {
        if self.protocol == .arp {
            let packet = ARP.Packet(
                operation: arpOperation, senderMAC: sourceMAC, senderIP: sourceIP,
                targetMAC: arpOperation == .request ? .zero : destinationMAC, targetIP: destinationIP)
            return ARP.frame(packet, destination: destinationMAC)
        }
        var transport: [UInt8] = []
        let number: IPProtocol
        switch self.protocol {
        case .tcp:
            number = .tcp
            TCP.Header(sourcePort: sourcePort, destinationPort: destinationPort, sequenceNumber: 1000,
                       acknowledgmentNumber: tcpFlags.contains(.ack) ? 1 : 0, flags: tcpFlags, window: 65535)
                .write(to: &transport)
            transport += payload
            let checksum = transport.withUnsafeBytes { TCP.checksum(segment: $0, source: sourceIP, destination: destinationIP) }
            transport[16] = UInt8(checksum >> 8)
            transport[17] = UInt8(checksum & 0xFF)
        case .udp:
            number = .udp
            UDP.Header(sourcePort: sourcePort, destinationPort: destinationPort, payloadLength: payload.count).write(to: &transport)
            transport += payload
            let checksum = transport.withUnsafeBytes { UDP.checksum(datagram: $0, source: sourceIP, destination: destinationIP) }
            transport[6] = UInt8(checksum >> 8)
            transport[7] = UInt8(checksum & 0xFF)
        case .icmp, .arp:
            number = .icmp
            let type = ICMPv4.MessageType(icmpType)
            let rest: UInt32 = type == .echoRequest || type == .echoReply ? UInt32(icmpIdentifier) << 16 | 1 : 0
            ICMPv4.Header(type: type, code: icmpCode, restOfHeader: rest).write(to: &transport)
            transport += payload
            let checksum = InternetChecksum.checksum(transport)
            transport[2] = UInt8(checksum >> 8)
            transport[3] = UInt8(checksum & 0xFF)
        }
        var ip = IPv4.Header(
            payloadLength: transport.count, identification: 1, timeToLive: timeToLive, protocol: number,
            source: sourceIP, destination: destinationIP)
        ip.updateChecksum()
        var frame: [UInt8] = []
        frame.reserveCapacity(14 + ip.headerLength + transport.count)
        Ethernet.Header(destination: destinationMAC, source: sourceMAC, etherType: .ipv4).write(to: &frame)
        ip.write(to: &frame)
        frame += transport
        return frame
    }
}
