import HiveModel
import HivePacket

// The bridge's DHCP server: a DHCPv4 packet from an exterior port is
// answered by the bridge itself, from the snapshot, on the ingress host, as
// a generated packet. Nothing is read from the NSDB per request and nothing
// floods.
//
// Whom it serves. A port with a fixed IP inside an enabled subnet of the
// bridge gets that address; otherwise a client whose MAC has a host entry in
// an enabled subnet gets the entry's address; otherwise, when a subnet has a
// pool, a port with no address at all is given one (`.pendingAddress`: the
// agent allocates it through the repository, where it stays the port's
// fixed IP, and simulates the request again). Anyone else is not served
// here: the packet goes on as before (it floods, so a DHCP server a tenant
// runs in a VM still works).
//
// What it answers (RFC 2131 §4.3): DISCOVER -> OFFER; REQUEST -> ACK when
// the requested address (option 50, else ciaddr) is the client's, NAK when
// it is another (the address is fixed, so the server is sure), silence when
// the client chose another server (option 54); INFORM -> ACK without an
// address or lease times; RELEASE and DECLINE are taken silently (a fixed
// address stays the port's). Options: mask, broadcast, router, DNS,
// domain, host name (the port's name when it is a DNS label), lease and
// renewal times, interface MTU (the subnet's, else the network's from
// `SimulationOptions.networkMTU`), classless routes (121, with the default
// route, when the subnet has host routes).

/// What the bridge's DHCP server does with a packet.
enum DHCPAnswer {
    /// Not served here: the packet goes on through the bridge.
    case notServed
    /// Taken without a reply (a RELEASE, a REQUEST for another server).
    case silent
    /// The port has no address yet and a subnet has a pool: allocate, then answer.
    case needsAddress
    case reply([UInt8])
}

extension SimulationRun {
    /// Whether the packet is a DHCP client's (UDP 68 -> 67), marking the fields read.
    mutating func isDHCPRequest() -> Bool {
        read(.etherType)
        guard key.etherType == .ipv4 else { return false }
        read([.ipProtocol, .fragmentKind])
        guard key.ipProtocol == .udp, key.fragmentKind == .none else { return false }
        read([.sourcePort, .destinationPort])
        return key.sourcePort == UDP.dhcpClientPort && key.destinationPort == UDP.dhcpServerPort
    }

    /// The answer of `bridge`'s DHCP server to the packet from exterior port `ingress`.
    @inline(never)
    func dhcpAnswer(bridge bridgeIndex: Int32, ingress: Int32) -> DHCPAnswer {
        guard let servers = topology.dhcp.servers[bridgeIndex],
              let request = try? DHCPv4.Message(parsingFrame: frame), request.opcode == .request,
              let type = request.messageType
        else { return .notServed }
        let entry = topology.dhcp.ports[ingress]
        var chosen: (server: DHCPTable.Server, address: IPv4.Address, hostName: String?)?
        for server in servers {
            if let address = entry?.fixedIPs.first(where: { server.subnet.subnet.contains($0) }) {
                chosen = (server, address, entry?.name)
                break
            }
        }
        if chosen == nil {
            for server in servers {
                if let host = server.subnet.hostEntries.first(where: { $0.mac == request.clientMAC }) {
                    chosen = (server, host.address, host.hostname ?? entry?.name)
                    break
                }
            }
        }
        guard let (server, address, hostName) = chosen else {
            // A port without an address on a bridge with a pool gets one, once, kept on the port.
            let hasPool = servers.contains { $0.subnet.range != nil }
            let asks = type == .discover || type == .request
            return entry == nil && hasPool && asks ? .needsAddress : .notServed
        }

        let subnet = server.subnet
        var routes: [DHCPv4.ClasslessRoute] = []
        if !subnet.hostRoutes.isEmpty {
            routes = subnet.hostRoutes.map { DHCPv4.ClasslessRoute(destination: $0.destination, router: $0.nextHop) }
            if let gateway = subnet.gateway {
                routes.append(DHCPv4.ClasslessRoute(destination: IPv4.Prefix(address: .any, length: 0), router: gateway))
            }
        }
        let mtu = subnet.mtu ?? (options.networkMTU >= 68 ? options.networkMTU : nil)
        let lease = DHCPv4.LeaseParameters(
            serverIdentifier: server.address, subnetMask: IPv4.Address(subnet.subnet.mask),
            routers: subnet.gateway.map { [$0] } ?? [], domainNameServers: subnet.dnsServers,
            leaseTime: subnet.leaseSeconds, interfaceMTU: mtu, domainName: subnet.domainName,
            hostName: hostName.flatMap { isDNSLabel($0) ? $0 : nil },
            broadcastAddress: subnet.subnet.broadcast, classlessRoutes: routes)

        let reply: DHCPv4.Message
        switch type {
        case .discover:
            reply = .reply(to: request, type: .offer, yourAddress: address, lease: lease)
        case .request:
            if let chosenServer = request.serverIdentifier, chosenServer != server.address { return .silent }
            let requested = request.requestedAddress ?? (request.clientAddress.isUnspecified ? nil : request.clientAddress)
            if let requested, requested != address {
                reply = .nak(to: request, serverIdentifier: server.address)
            } else {
                reply = .reply(to: request, type: .ack, yourAddress: address, lease: lease)
            }
        case .inform:
            reply = .informAck(to: request, lease: lease)
        default:
            return .silent
        }
        return .reply(DHCPv4.replyFrame(reply, serverMAC: server.mac, serverIP: server.address))
    }
}

