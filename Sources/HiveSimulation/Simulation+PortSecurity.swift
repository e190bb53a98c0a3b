import HiveModel
import HivePacket

// Port security: what a VM behind a port-secured bridge port may send.
//
// Checked when a frame enters the bridge from the port, before any chain,
// like Neutron's anti-spoofing rules:
// - the source MAC is the port's, or that of an allowed address pair;
// - IPv4: the source is a fixed IP or inside an allowed pair, for that MAC
//   (the port's MAC for fixed IPs and pairs without one); a DHCP client's
//   0.0.0.0:68 -> 255.255.255.255:67 passes;
// - ARP: the sender MAC is the frame's source MAC and the sender IP passes
//   the same check (a probe's 0.0.0.0 passes: RFC 5227);
// - IPv6: the source is the link-local address formed from the port's MAC
//   (or :: for duplicate address detection); router advertisements drop;
// - any other EtherType drops.
// The fields read make the drop (or pass) a flow like any other.

/// Why port security dropped a frame; the raw value is the metric's reason.
public enum SpoofKind: String, Hashable, Sendable, CaseIterable {
    case sourceMAC = "spoofed_mac"
    case sourceIP = "spoofed_ip"
    case arp = "spoofed_arp"
    case ipv6Source = "spoofed_ipv6"
    case routerAdvertisement = "router_advertisement"
    case etherType = "ethertype_not_allowed"
}

extension SimulationRun {
    /// Nil when the frame from `port` may enter, else why not.
    mutating func portSecurityViolation(_ port: CompiledPort) -> SpoofKind? {
        read([.ethernetSource, .etherType])
        let mac = key.ethernetSource
        guard mac == port.mac || isAllowedMAC(mac, of: port) else { return .sourceMAC }
        switch key.etherType {
        case .ipv4:
            read(.ipv4Source)
            if key.ipv4Source == .any {
                read([.ipv4Destination, .ipProtocol, .sourcePort, .destinationPort])
                let isDHCP = key.ipv4Destination == .broadcast && key.ipProtocol == .udp
                    && key.sourcePort == UDP.dhcpClientPort && key.destinationPort == UDP.dhcpServerPort
                return isDHCP ? nil : .sourceIP
            }
            return isAllowed(key.ipv4Source, from: mac, of: port) ? nil : .sourceIP
        case .arp:
            read([.arpSenderMAC, .ipv4Source])
            guard key.arpSenderMAC == mac else { return .arp }
            if key.ipv4Source == .any { return nil }
            return isAllowed(key.ipv4Source, from: mac, of: port) ? nil : .arp
        case .ipv6:
            read([.ipv6Source, .ipProtocol])
            var icmpType: UInt8?
            if key.ipProtocol == .icmpv6 {
                read(.icmpType)
                icmpType = key.icmpType
                if key.icmpType == ICMPv6.MessageType.routerAdvertisement.rawValue { return .routerAdvertisement }
            }
            if key.ipv6Source == .any {
                // Only duplicate address detection and MLD reports come from ::.
                return icmpType == ICMPv6.MessageType.neighborSolicitation.rawValue || icmpType == Self.mldv2Report ? nil : .ipv6Source
            }
            guard key.ipv6Source == port.linkLocal else { return .ipv6Source }
            if icmpType == ICMPv6.MessageType.neighborAdvertisement.rawValue {
                // Neighbour poisoning: the target is in the payload, not the key.
                result.dependsOnPayload = true
                guard advertisedTarget() == port.linkLocal else { return .ipv6Source }
            }
            return nil
        default:
            return .etherType
        }
    }

    /// MLDv2 listener report (RFC 3810), which a host sends from :: before it has an address.
    static let mldv2Report: UInt8 = 143

    /// The target of the neighbour advertisement in the frame, if it parses.
    @inline(never)
    private func advertisedTarget() -> IPv6.Address? {
        frame.withUnsafeBytes { bytes -> IPv6.Address? in
            guard let ethernet = try? Ethernet.Header(parsing: bytes) else { return nil }
            let packet = UnsafeRawBufferPointer(rebasing: bytes[ethernet.length...])
            guard let header = try? IPv6.Header(parsing: packet), let upper = try? header.upperLayer(in: packet),
                  upper.protocol == .icmpv6, upper.offset < packet.count
            else { return nil }
            return (try? ICMPv6.NeighborAdvertisement(parsing: UnsafeRawBufferPointer(rebasing: packet[upper.offset...])))?.target
        }
    }

    @inline(__always)
    private func isAllowedMAC(_ mac: EthernetAddress, of port: CompiledPort) -> Bool {
        for index in port.allowedSources.range where topology.allowedSources[index].mac == mac { return true }
        return false
    }

    @inline(__always)
    private func isAllowed(_ address: IPv4.Address, from mac: EthernetAddress, of port: CompiledPort) -> Bool {
        for index in port.allowedSources.range {
            let source = topology.allowedSources[index]
            if source.mac == mac, source.prefix.contains(address) { return true }
        }
        return false
    }
}
