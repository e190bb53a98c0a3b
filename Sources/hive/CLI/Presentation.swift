import Foundation
import HiveClient
import HiveModel
import HivePacket
import struct HiveModel.Host
import struct HiveModel.Port

// How each resource reads in tables. Ids of other objects are shown as their
// names where the token can list them.

private func tenant(_ tenantId: String?) -> String { tenantId ?? "-" }
private func state(_ up: Bool) -> String { up ? "up" : "down" }
private func commaList<T: CustomStringConvertible>(_ values: [T]) -> String {
    values.isEmpty ? "-" : values.map(\.description).joined(separator: ", ")
}

extension Bridge: Presentable {
    static let columns = ["NAME", "ID", "STATE", "IN-CHAIN", "OUT-CHAIN", "TENANT"]

    static func row(_ item: Revisioned<Bridge>, _ names: NameBook) async -> [String] {
        let bridge = item.object
        return [bridge.name, bridge.id.description, state(bridge.adminStateUp),
                await names.name(bridge.inboundChainId), await names.name(bridge.outboundChainId), tenant(bridge.tenantId)]
    }

    static func fields(_ item: Revisioned<Bridge>, _ names: NameBook) async -> [(String, String)] {
        let bridge = item.object
        return [
            ("name", bridge.name), ("id", bridge.id.description), ("tenant", tenant(bridge.tenantId)),
            ("admin state", state(bridge.adminStateUp)),
            ("inbound chain", await names.name(bridge.inboundChainId)),
            ("outbound chain", await names.name(bridge.outboundChainId)),
            ("ARP suppression", bridge.arpSuppression ? "on" : "off"),
            ("tunnel key", "\(bridge.tunnelKey)"), ("revision", "\(item.revision)"),
        ]
    }
}

extension Router: Presentable {
    static let columns = ["NAME", "ID", "STATE", "IN-CHAIN", "OUT-CHAIN", "TENANT"]

    static func row(_ item: Revisioned<Router>, _ names: NameBook) async -> [String] {
        let router = item.object
        return [router.name, router.id.description, state(router.adminStateUp),
                await names.name(router.inboundChainId), await names.name(router.outboundChainId), tenant(router.tenantId)]
    }

    static func fields(_ item: Revisioned<Router>, _ names: NameBook) async -> [(String, String)] {
        let router = item.object
        return [
            ("name", router.name), ("id", router.id.description), ("tenant", tenant(router.tenantId)),
            ("admin state", state(router.adminStateUp)),
            ("inbound chain", await names.name(router.inboundChainId)),
            ("outbound chain", await names.name(router.outboundChainId)),
            ("gateway", await gatewayText(router.gateway, names)),
            ("revision", "\(item.revision)"),
        ]
    }

    /// "uplink, SNAT to 198.51.100.2", "uplink, SNAT to the port's address", "uplink, no SNAT".
    static func gatewayText(_ gateway: RouterGateway?, _ names: NameBook) async -> String {
        guard let gateway else { return "- (no external gateway)" }
        let port = await names.name(gateway.portId)
        guard gateway.enableSNAT else { return "\(port), no SNAT" }
        return "\(port), SNAT to " + (gateway.snatAddress?.description ?? "the port's address")
    }
}

extension FloatingIP: Presentable {
    static let columns = ["ADDRESS", "ID", "ROUTER", "PORT", "FIXED IP", "TENANT"]

    static func row(_ item: Revisioned<FloatingIP>, _ names: NameBook) async -> [String] {
        let floatingIP = item.object
        return [floatingIP.address.description, floatingIP.id.description, await names.name(floatingIP.routerId),
                await names.portLabel(floatingIP.portId), floatingIP.fixedAddress?.description ?? "-", tenant(floatingIP.tenantId)]
    }

    static func fields(_ item: Revisioned<FloatingIP>, _ names: NameBook) async -> [(String, String)] {
        let floatingIP = item.object
        return [
            ("address", floatingIP.address.description), ("id", floatingIP.id.description),
            ("tenant", tenant(floatingIP.tenantId)), ("router", await names.name(floatingIP.routerId)),
            ("port", floatingIP.portId == nil ? "- (not associated)" : await names.portLabel(floatingIP.portId)),
            ("fixed IP", floatingIP.fixedAddress?.description ?? (floatingIP.portId == nil ? "-" : "the port's first")),
            ("revision", "\(item.revision)"),
        ]
    }
}

extension Port: Presentable {
    static let columns = ["NAME", "ID", "DEVICE", "ADDRESS", "MAC", "PEER", "IN-CHAIN", "OUT-CHAIN"]

    /// A router port's "10.0.0.1/24" (address and subnet length), or a
    /// bridge port's fixed IPs "10.0.1.11, 10.0.1.12".
    var addressText: String {
        switch deviceKind {
        case .router:
            guard let address, let subnet else { return "-" }
            return "\(address)/\(subnet.length)"
        case .bridge:
            return commaList(fixedIPs)
        }
    }

    /// "10.0.1.250 (02:00:00:00:00:99), 10.0.2.0/24": as `--allowed-address` takes them, MAC in parentheses.
    var allowedAddressesText: String {
        commaList(allowedAddressPairs.map { pair in
            let address = pair.prefix.length == 32 ? pair.prefix.address.description : pair.prefix.description
            return pair.mac.map { "\(address) (\($0))" } ?? address
        })
    }

    /// The learned-MAC cap, and whether it is in force.
    var macLimitText: String {
        let limit = macLimit.map { "\($0)" } ?? "\(Port.defaultMACLimit) (default)"
        return portSecurity ? "\(limit); applies with port security off" : limit
    }

    static func row(_ item: Revisioned<Port>, _ names: NameBook) async -> [String] {
        let port = item.object
        return [port.name ?? "-", port.id.description, await names.device(of: port), port.addressText,
                port.mac?.description ?? "-", await names.portLabel(port.peerId),
                await names.name(port.inboundChainId), await names.name(port.outboundChainId)]
    }

    static func fields(_ item: Revisioned<Port>, _ names: NameBook) async -> [(String, String)] {
        let port = item.object
        var groups: [String] = []
        for group in port.portGroupIds { groups.append(await names.name(group)) }
        var fields = [
            ("name", port.name ?? "-"), ("id", port.id.description), ("tenant", tenant(port.tenantId)),
            ("device", "\(await names.device(of: port)) (\(port.deviceId.uuidString.lowercased()))"),
        ]
        switch port.deviceKind {
        case .router:
            fields += [("address", port.addressText), ("subnet", port.subnet?.description ?? "-"),
                       ("MAC", port.mac?.description ?? "-")]
        case .bridge:
            var securityGroups: [String] = []
            for group in port.securityGroupIds { securityGroups.append(await names.name(group)) }
            fields += [("MAC", port.mac?.description ?? "-"), ("fixed IPs", port.addressText),
                       ("allowed addresses", port.allowedAddressesText),
                       ("port security", port.portSecurity ? "on" : "off"), ("MAC limit", port.macLimitText),
                       ("security groups", securityGroups.isEmpty ? "- (not filtered by groups)" : commaList(securityGroups))]
        }
        fields += [
            ("linked to", port.peerId == nil ? "- (exterior port)" : await names.portLabel(port.peerId)),
            ("admin state", state(port.adminStateUp)),
            ("inbound chain", await names.name(port.inboundChainId)),
            ("outbound chain", await names.name(port.outboundChainId)),
            ("port groups", commaList(groups)),
            ("tunnel key", "\(port.tunnelKey)"), ("revision", "\(item.revision)"),
        ]
        return fields
    }
}

extension Route: Presentable {
    static let columns = ["DESTINATION", "SOURCE", "KIND", "GATEWAY", "PORT", "WEIGHT", "ROUTER", "ID"]

    static func row(_ item: Revisioned<Route>, _ names: NameBook) async -> [String] {
        let route = item.object
        return [route.destination.description, route.source.description, route.kind.rawValue,
                route.nextHopGateway?.description ?? "-", await portName(route.egressPortId, names),
                "\(route.weight)", await names.name(route.routerId), route.id.description]
    }

    static func fields(_ item: Revisioned<Route>, _ names: NameBook) async -> [(String, String)] {
        let route = item.object
        return [
            ("id", route.id.description), ("tenant", tenant(route.tenantId)),
            ("router", await names.name(route.routerId)),
            ("destination", route.destination.description), ("source", route.source.description),
            ("kind", route.kind.rawValue),
            ("gateway", route.nextHopGateway?.description ?? "- (directly connected)"),
            ("egress port", await portName(route.egressPortId, names)),
            ("weight", "\(route.weight)"), ("revision", "\(item.revision)"),
        ]
    }

    /// A router port's name alone: the router is in its own column.
    private static func portName(_ id: PortID?, _ names: NameBook) async -> String {
        await names.name(id)
    }
}

extension Chain: Presentable {
    static let columns = ["NAME", "ID", "RULES", "TENANT"]

    static func row(_ item: Revisioned<Chain>, _ names: NameBook) async -> [String] {
        [item.object.name, item.object.id.description, "\(item.object.ruleIds.count)", tenant(item.object.tenantId)]
    }

    static func fields(_ item: Revisioned<Chain>, _ names: NameBook) async -> [(String, String)] {
        [("name", item.object.name), ("id", item.object.id.description), ("tenant", tenant(item.object.tenantId)),
         ("rules", "\(item.object.ruleIds.count)"), ("revision", "\(item.revision)")]
    }
}

extension Rule: Presentable {
    static let columns = ["ID", "CHAIN", "ACTION", "CONDITIONS"]

    static func row(_ item: Revisioned<Rule>, _ names: NameBook) async -> [String] {
        let rule = item.object
        return [rule.id.description, await names.name(rule.chainId), await actionText(rule.action, names),
                await ConditionText.describe(rule.conditions, names)]
    }

    static func fields(_ item: Revisioned<Rule>, _ names: NameBook) async -> [(String, String)] {
        let rule = item.object
        return [
            ("id", rule.id.description), ("tenant", tenant(rule.tenantId)),
            ("chain", await names.name(rule.chainId)),
            ("action", await actionText(rule.action, names)),
            ("conditions", await ConditionText.describe(rule.conditions, names)),
            ("revision", "\(item.revision)"),
        ]
    }

    static func actionText(_ action: RuleAction, _ names: NameBook) async -> String {
        if let target = action.jumpTarget { return "jump to \(await names.name(target))" }
        if let target = action.natTarget { return "\(action.type.rawValue) to \(target)" }
        return action.type.rawValue
    }
}

extension PortGroup: Presentable {
    static let columns = ["NAME", "ID", "STATEFUL", "TENANT"]

    static func row(_ item: Revisioned<PortGroup>, _ names: NameBook) async -> [String] {
        [item.object.name, item.object.id.description, item.object.stateful ? "yes" : "no", tenant(item.object.tenantId)]
    }

    static func fields(_ item: Revisioned<PortGroup>, _ names: NameBook) async -> [(String, String)] {
        [("name", item.object.name), ("id", item.object.id.description), ("tenant", tenant(item.object.tenantId)),
         ("stateful", item.object.stateful ? "yes" : "no"), ("revision", "\(item.revision)")]
    }
}

extension IPAddressGroup: Presentable {
    static let columns = ["NAME", "ID", "ADDRESSES", "TENANT"]

    static func row(_ item: Revisioned<IPAddressGroup>, _ names: NameBook) async -> [String] {
        [item.object.name, item.object.id.description, commaList(item.object.addresses), tenant(item.object.tenantId)]
    }

    static func fields(_ item: Revisioned<IPAddressGroup>, _ names: NameBook) async -> [(String, String)] {
        [("name", item.object.name), ("id", item.object.id.description), ("tenant", tenant(item.object.tenantId)),
         ("addresses", commaList(item.object.addresses)), ("revision", "\(item.revision)")]
    }
}

extension SecurityGroup: Presentable {
    static let columns = ["NAME", "ID", "DESCRIPTION", "TENANT"]

    static func row(_ item: Revisioned<SecurityGroup>, _ names: NameBook) async -> [String] {
        [item.object.name, item.object.id.description, item.object.description ?? "-", tenant(item.object.tenantId)]
    }

    static func fields(_ item: Revisioned<SecurityGroup>, _ names: NameBook) async -> [(String, String)] {
        [("name", item.object.name), ("id", item.object.id.description), ("tenant", tenant(item.object.tenantId)),
         ("description", item.object.description ?? "-"), ("revision", "\(item.revision)")]
    }
}

extension SecurityGroupRule: Presentable {
    static let columns = ["ID", "GROUP", "RULE", "DESCRIPTION"]

    static func row(_ item: Revisioned<SecurityGroupRule>, _ names: NameBook) async -> [String] {
        let rule = item.object
        return [rule.id.description, await names.name(rule.securityGroupId),
                rule.summary(remoteGroupName: await names.name(rule.remoteGroupId)), rule.description ?? "-"]
    }

    static func fields(_ item: Revisioned<SecurityGroupRule>, _ names: NameBook) async -> [(String, String)] {
        let rule = item.object
        return [
            ("id", rule.id.description), ("tenant", tenant(rule.tenantId)),
            ("group", await names.name(rule.securityGroupId)),
            ("rule", rule.summary(remoteGroupName: await names.name(rule.remoteGroupId))),
            ("description", rule.description ?? "-"), ("revision", "\(item.revision)"),
        ]
    }

    /// "ingress IPv4 tcp 80 from 0.0.0.0/0", "egress IPv6 any to any",
    /// "ingress IPv4 any from group default": the rule in the words of its flags.
    func summary(remoteGroupName: String) -> String {
        var words = [direction.rawValue, etherType.rawValue, ipProtocol.map(ConditionText.protocolName) ?? "any"]
        if let ports { words.append(ports.description) }
        if let icmpType { words.append("type \(icmpType)") }
        if let icmpCode { words.append("code \(icmpCode)") }
        words.append(direction == .ingress ? "from" : "to")
        if let remotePrefix {
            words.append(remotePrefix.description)
        } else if remoteGroupId != nil {
            words.append("group \(remoteGroupName)")
        } else {
            words.append("any")
        }
        return words.joined(separator: " ")
    }
}

extension Host: Presentable {
    static let columns = ["NAME", "ID", "ALIVE", "UNDERLAY ADDRESSES"]

    static func row(_ item: Revisioned<Host>, _ names: NameBook) async -> [String] {
        [item.object.name, item.object.id.description, aliveText(item.alive), commaList(item.object.underlayAddresses)]
    }

    static func fields(_ item: Revisioned<Host>, _ names: NameBook) async -> [(String, String)] {
        [("name", item.object.name), ("id", item.object.id.description), ("alive", aliveText(item.alive)),
         ("underlay addresses", commaList(item.object.underlayAddresses)), ("agent endpoint", item.object.agentEndpoint ?? "-"),
         ("revision", "\(item.revision)")]
    }

    private static func aliveText(_ alive: Bool?) -> String {
        switch alive {
        case true?: return "yes"
        case false?: return "no"
        case nil: return "?"
        }
    }
}

extension TunnelZone: Presentable {
    static let columns = ["NAME", "ID", "KIND", "MEMBERS"]

    static func row(_ item: Revisioned<TunnelZone>, _ names: NameBook) async -> [String] {
        [item.object.name, item.object.id.description, item.object.kind.rawValue, await members(item.object, names)]
    }

    static func fields(_ item: Revisioned<TunnelZone>, _ names: NameBook) async -> [(String, String)] {
        [("name", item.object.name), ("id", item.object.id.description), ("kind", item.object.kind.rawValue),
         ("members", await members(item.object, names)), ("revision", "\(item.revision)")]
    }

    /// "host-1 at 192.168.0.1, host-2 at 192.168.0.2".
    private static func members(_ zone: TunnelZone, _ names: NameBook) async -> String {
        var parts: [String] = []
        for member in zone.members { parts.append("\(await names.name(member.hostId)) at \(member.address)") }
        return commaList(parts)
    }
}

extension Binding: Presentable {
    static let columns = ["ID", "HOST", "INTERFACE", "PORT"]

    static func row(_ item: Revisioned<Binding>, _ names: NameBook) async -> [String] {
        [item.object.id.description, await names.name(item.object.hostId), item.object.interfaceName,
         await names.portLabel(item.object.portId)]
    }

    static func fields(_ item: Revisioned<Binding>, _ names: NameBook) async -> [(String, String)] {
        [("id", item.object.id.description), ("host", await names.name(item.object.hostId)),
         ("interface", item.object.interfaceName), ("port", await names.portLabel(item.object.portId)),
         ("revision", "\(item.revision)")]
    }
}

extension DHCPSubnet: Presentable {
    static let columns = ["SUBNET", "ID", "BRIDGE", "RANGE", "GATEWAY", "DNS", "ENABLED"]

    static func row(_ item: Revisioned<DHCPSubnet>, _ names: NameBook) async -> [String] {
        let subnet = item.object
        return [subnet.subnet.description, subnet.id.description, await names.name(subnet.bridgeId),
                "\(subnet.rangeStart)-\(subnet.rangeEnd)", subnet.gateway?.description ?? "-",
                commaList(subnet.dnsServers), subnet.enabled ? "yes" : "no"]
    }

    static func fields(_ item: Revisioned<DHCPSubnet>, _ names: NameBook) async -> [(String, String)] {
        let subnet = item.object
        let entries = subnet.hostEntries.map { entry in
            "\(entry.mac)=\(entry.address)" + (entry.hostname.map { "=\($0)" } ?? "")
        }
        return [
            ("id", subnet.id.description), ("tenant", tenant(subnet.tenantId)),
            ("bridge", await names.name(subnet.bridgeId)), ("subnet", subnet.subnet.description),
            ("range", "\(subnet.rangeStart)-\(subnet.rangeEnd)"), ("gateway", subnet.gateway?.description ?? "-"),
            ("DNS servers", commaList(subnet.dnsServers)), ("MTU", subnet.mtu.map { "\($0)" } ?? "-"),
            ("lease", "\(subnet.leaseSeconds) s"), ("host entries", commaList(entries)),
            ("host routes", commaList(subnet.hostRoutes.map { "\($0.destination) via \($0.nextHop)" })),
            ("domain name", subnet.domainName ?? "-"),
            ("enabled", subnet.enabled ? "yes" : "no"), ("revision", "\(item.revision)"),
        ]
    }
}

/// Rule conditions in the words of the `hive rule create` flags:
/// "protocol tcp, dst-port 80, not src 10.0.0.0/8".
enum ConditionText {
    static func describe(_ conditions: RuleConditions, _ names: NameBook) async -> String {
        var parts: [String] = []
        func add<Value>(_ flag: String, _ match: Match<Value>?, _ text: (Value) -> String) {
            guard let match else { return }
            parts.append((match.invert ? "not " : "") + "\(flag) \(text(match.value))")
        }
        if let ports = conditions.inPorts {
            var labels: [String] = []
            for port in ports.value { labels.append(await names.name(port)) }
            add("in-port", Match(labels, invert: ports.invert)) { $0.joined(separator: ",") }
        }
        if let ports = conditions.outPorts {
            var labels: [String] = []
            for port in ports.value { labels.append(await names.name(port)) }
            add("out-port", Match(labels, invert: ports.invert)) { $0.joined(separator: ",") }
        }
        if let group = conditions.inPortGroup {
            add("in-port-group", Match(await names.name(group.value), invert: group.invert)) { $0 }
        }
        if let group = conditions.outPortGroup {
            add("out-port-group", Match(await names.name(group.value), invert: group.invert)) { $0 }
        }
        add("ethertype", conditions.etherType, etherTypeName)
        add("src-mac", conditions.sourceMAC) { $0.description }
        add("dst-mac", conditions.destinationMAC) { $0.description }
        add("protocol", conditions.ipProtocol, protocolName)
        add("src", conditions.sourcePrefix) { $0.description }
        add("dst", conditions.destinationPrefix) { $0.description }
        if let group = conditions.sourceAddressGroup {
            add("src-ip-group", Match(await names.name(group.value), invert: group.invert)) { $0 }
        }
        if let group = conditions.destinationAddressGroup {
            add("dst-ip-group", Match(await names.name(group.value), invert: group.invert)) { $0 }
        }
        add("src-port", conditions.sourcePorts) { $0.description }
        add("dst-port", conditions.destinationPorts) { $0.description }
        add("icmp-type", conditions.icmpType) { "\($0)" }
        add("icmp-code", conditions.icmpCode) { "\($0)" }
        add("ct-state", conditions.connectionState) { $0.rawValue }
        add("fragments", conditions.fragments) { $0.rawValue }
        return parts.isEmpty ? "any packet" : parts.joined(separator: ", ")
    }

    static func protocolName(_ number: UInt8) -> String {
        Parse.protocolNames.first { $0.1 == number }?.0 ?? "\(number)"
    }

    static func etherTypeName(_ value: UInt16) -> String {
        Parse.etherTypeNames.first { $0.1 == value }?.0 ?? "0x" + String(value, radix: 16, uppercase: false)
    }
}
