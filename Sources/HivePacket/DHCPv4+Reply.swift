// Building the server side of a DHCP exchange: offers, acks and naks to a
// client's discover or request, and the frames that carry them.

extension DHCPv4 {
    /// What a server hands out with an address: the options of an offer or
    /// an ack.
    public struct LeaseParameters: Hashable, Sendable {
        /// The server identifier (option 54): the server's own address.
        public var serverIdentifier: IPv4.Address
        public var subnetMask: IPv4.Address
        public var routers: [IPv4.Address]
        public var domainNameServers: [IPv4.Address]
        /// Seconds.
        public var leaseTime: UInt32
        public var interfaceMTU: UInt16?
        public var domainName: String?
        /// Option 12: the name the client should take.
        public var hostName: String?
        /// Option 28.
        public var broadcastAddress: IPv4.Address?
        /// Option 121 (RFC 3442). A client that gets it ignores option 3, so
        /// the caller includes the default route here too.
        public var classlessRoutes: [ClasslessRoute]

        public init(
            serverIdentifier: IPv4.Address, subnetMask: IPv4.Address, routers: [IPv4.Address] = [],
            domainNameServers: [IPv4.Address] = [], leaseTime: UInt32 = 86_400, interfaceMTU: UInt16? = nil,
            domainName: String? = nil, hostName: String? = nil, broadcastAddress: IPv4.Address? = nil,
            classlessRoutes: [ClasslessRoute] = []
        ) {
            self.hostName = hostName
            self.broadcastAddress = broadcastAddress
            self.classlessRoutes = classlessRoutes
            self.serverIdentifier = serverIdentifier
            self.subnetMask = subnetMask
            self.routers = routers
            self.domainNameServers = domainNameServers
            self.leaseTime = leaseTime
            self.interfaceMTU = interfaceMTU
            self.domainName = domainName
        }
    }
}

extension DHCPv4 {
    /// One route of option 121.
    public struct ClasslessRoute: Hashable, Sendable {
        public var destination: IPv4.Prefix
        public var router: IPv4.Address

        public init(destination: IPv4.Prefix, router: IPv4.Address) {
            self.destination = destination
            self.router = router
        }
    }

    /// Option 121's data (RFC 3442 §3): per route, the prefix length, the
    /// destination's significant octets, then the router.
    public static func classlessRoutesData(_ routes: [ClasslessRoute]) -> [UInt8] {
        var data: [UInt8] = []
        for route in routes {
            let length = route.destination.length
            data.append(length)
            let value = route.destination.network.address.value
            for index in 0..<((Int(length) + 7) / 8) { data.append(UInt8(truncatingIfNeeded: value >> (24 - 8 * index))) }
            for index in 0..<4 { data.append(UInt8(truncatingIfNeeded: route.router.value >> (24 - 8 * index))) }
        }
        return data
    }
}

extension DHCPv4.Message {
    /// The offer or ack of `address` answering `request` (a discover or a
    /// request): transaction id, flags, relay and client MAC echoed, options
    /// in the order a client most needs them.
    ///
    /// Renewal (T1) and rebinding (T2) times are sent at RFC 2131's
    /// defaults, half and seven eighths of the lease.
    public static func reply(
        to request: DHCPv4.Message, type: DHCPv4.MessageType, yourAddress address: IPv4.Address, lease: DHCPv4.LeaseParameters
    ) -> DHCPv4.Message {
        var options: [DHCPv4.Option] = [
            .messageType(type),
            .serverIdentifier(lease.serverIdentifier),
            .leaseTime(lease.leaseTime),
            .renewalTime(lease.leaseTime / 2),
            .rebindingTime(lease.leaseTime / 8 * 7),
            .subnetMask(lease.subnetMask),
        ]
        if !lease.routers.isEmpty { options.append(.routers(lease.routers)) }
        if !lease.domainNameServers.isEmpty { options.append(.domainNameServers(lease.domainNameServers)) }
        if let mtu = lease.interfaceMTU { options.append(.interfaceMTU(mtu)) }
        if let domainName = lease.domainName, !domainName.isEmpty { options.append(.domainName(domainName)) }
        if let hostName = lease.hostName, !hostName.isEmpty { options.append(.hostName(hostName)) }
        if let broadcast = lease.broadcastAddress { options.append(.other(code: 28, data: DHCPv4.bytes(of: broadcast))) }
        if !lease.classlessRoutes.isEmpty {
            options.append(.other(code: 121, data: DHCPv4.classlessRoutesData(lease.classlessRoutes)))
        }
        return DHCPv4.Message(
            opcode: .reply, transactionID: request.transactionID, flags: request.flags, clientAddress: request.clientAddress,
            yourAddress: address, relayAddress: request.relayAddress, clientMAC: request.clientMAC, options: options)
    }

    /// The ack of an INFORM (RFC 2131 §3.4): the configuration without an
    /// address or lease times, to the client's own address.
    public static func informAck(to request: DHCPv4.Message, lease: DHCPv4.LeaseParameters) -> DHCPv4.Message {
        var reply = DHCPv4.Message.reply(to: request, type: .ack, yourAddress: .any, lease: lease)
        reply.options.removeAll {
            switch $0 {
            case .leaseTime, .renewalTime, .rebindingTime: true
            default: false
            }
        }
        return reply
    }

    /// A nak refusing `request`, from `serverIdentifier`.
    public static func nak(to request: DHCPv4.Message, serverIdentifier: IPv4.Address) -> DHCPv4.Message {
        DHCPv4.Message(
            opcode: .reply, transactionID: request.transactionID, flags: request.flags, relayAddress: request.relayAddress,
            clientMAC: request.clientMAC, options: [.messageType(.nak), .serverIdentifier(serverIdentifier)])
    }
}

extension DHCPv4 {
    static func bytes(of address: IPv4.Address) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: address.value >> (24 - 8 * $0)) }
    }

    /// The Ethernet + IPv4 + UDP frame carrying server `reply` from port 67
    /// to 68, addressed as RFC 2131 §4.1 says for a server on the client's
    /// link: a nak, or a reply to a client that set the broadcast flag, goes
    /// to 255.255.255.255 and ff:ff:ff:ff:ff:ff; a reply to a client that
    /// has an address (`ciaddr`) goes to it; otherwise to `yiaddr` at the
    /// client's MAC. Relay agents (`giaddr`) are not handled: a virtual
    /// network's DHCP server sits on the client's link.
    public static func replyFrame(
        _ reply: Message, serverMAC: EthernetAddress, serverIP: IPv4.Address, vlan: Ethernet.VLANTag? = nil
    ) -> [UInt8] {
        let destinationIP: IPv4.Address
        let destinationMAC: EthernetAddress
        if reply.messageType == .nak || reply.isBroadcast {
            destinationIP = .broadcast
            destinationMAC = .broadcast
        } else if !reply.clientAddress.isUnspecified {
            destinationIP = reply.clientAddress
            destinationMAC = reply.clientMAC
        } else {
            destinationIP = reply.yourAddress
            destinationMAC = reply.clientMAC
        }
        let payload = reply.bytes
        var datagram: [UInt8] = []
        datagram.reserveCapacity(8 + payload.count)
        UDP.Header(sourcePort: UDP.dhcpServerPort, destinationPort: UDP.dhcpClientPort, payloadLength: payload.count)
            .write(to: &datagram)
        datagram.append(contentsOf: payload)
        return IPv4.assembleFrame(
            ethernet: Ethernet.Header(destination: destinationMAC, source: serverMAC, tag: vlan, etherType: .ipv4),
            ip: IPv4.Header(payloadLength: datagram.count, protocol: .udp, source: serverIP, destination: destinationIP),
            transport: datagram, checksum: .udp)
    }
}

extension DHCPv4.Message {
    /// The DHCP message inside a whole frame (Ethernet, IPv4, UDP), as a
    /// server on the client's link receives it.
    /// - Throws: the layers' parse errors; `.unsupported` for a fragment or
    ///   a packet that is not UDP.
    public init(parsingFrame frame: [UInt8]) throws(PacketError) {
        self = try withBytes(of: frame) { (bytes) throws(PacketError) in
            let parsed = try IPv4.ParsedFrame(parsing: bytes)
            guard parsed.ip.protocol == .udp, parsed.ip.fragmentOffset == 0, !parsed.ip.moreFragments else {
                throw .unsupported(layer: .ipv4, value: UInt32(parsed.ip.protocol.rawValue))
            }
            guard parsed.payload.count >= 8 else {
                throw .truncated(layer: .udp, needed: 8, available: parsed.payload.count)
            }
            return try DHCPv4.Message(parsing: parsed.payload.dropping(8))
        }
    }
}
