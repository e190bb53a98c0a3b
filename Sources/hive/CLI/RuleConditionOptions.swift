import ArgumentParser
import HiveModel
import HivePacket
import struct HiveModel.Port

/// The match conditions of `hive rule create`, one flag per condition and a
/// `--not-<flag>` twin that matches the opposite. A rule matches a packet
/// when every condition given matches.
struct RuleConditionOptions: ParsableArguments {
    @Option(name: .customLong("protocol"), help: ArgumentHelp("IP protocol: tcp, udp, icmp, sctp or a number.", valueName: "protocol"),
            transform: Parse.ipProtocol)
    var ipProtocol: UInt8?
    @Option(name: .customLong("not-protocol"), help: hidden, transform: Parse.ipProtocol)
    var notProtocol: UInt8?

    @Option(help: ArgumentHelp("Source network, like 10.0.0.0/8 or 10.0.0.5.", valueName: "network"), transform: Parse.prefix)
    var src: IPv4.Prefix?
    @Option(help: hidden, transform: Parse.prefix)
    var notSrc: IPv4.Prefix?
    @Option(help: ArgumentHelp("Destination network.", valueName: "network"), transform: Parse.prefix)
    var dst: IPv4.Prefix?
    @Option(help: hidden, transform: Parse.prefix)
    var notDst: IPv4.Prefix?

    @Option(help: ArgumentHelp("Source address in this IP address group (name or id).", valueName: "group"))
    var srcIpGroup: String?
    @Option(help: hidden)
    var notSrcIpGroup: String?
    @Option(help: ArgumentHelp("Destination address in this IP address group (name or id).", valueName: "group"))
    var dstIpGroup: String?
    @Option(help: hidden)
    var notDstIpGroup: String?

    @Option(help: ArgumentHelp("Source L4 port or range, like 1000-2000 (needs --protocol tcp, udp or sctp).", valueName: "port[-port]"),
            transform: Parse.portRange)
    var srcPort: PortRange?
    @Option(help: hidden, transform: Parse.portRange)
    var notSrcPort: PortRange?
    @Option(help: ArgumentHelp("Destination L4 port or range, like 80 or 8000-8080.", valueName: "port[-port]"),
            transform: Parse.portRange)
    var dstPort: PortRange?
    @Option(help: hidden, transform: Parse.portRange)
    var notDstPort: PortRange?

    @Option(help: ArgumentHelp("ICMP type, like 8 for echo request (needs --protocol icmp).", valueName: "n"), transform: Parse.byte)
    var icmpType: UInt8?
    @Option(help: hidden, transform: Parse.byte)
    var notIcmpType: UInt8?
    @Option(help: ArgumentHelp("ICMP code (needs --icmp-type).", valueName: "n"), transform: Parse.byte)
    var icmpCode: UInt8?
    @Option(help: hidden, transform: Parse.byte)
    var notIcmpCode: UInt8?

    @Option(help: ArgumentHelp("Entered the device by this port (name or id); repeatable.", valueName: "port"))
    var inPort: [String] = []
    @Option(help: hidden)
    var notInPort: [String] = []
    @Option(help: ArgumentHelp("Leaves the device by this port (outbound chains); repeatable.", valueName: "port"))
    var outPort: [String] = []
    @Option(help: hidden)
    var notOutPort: [String] = []
    @Option(help: ArgumentHelp("Entered by a port of this port group (name or id).", valueName: "group"))
    var inPortGroup: String?
    @Option(help: hidden)
    var notInPortGroup: String?
    @Option(help: ArgumentHelp("Leaves by a port of this port group (name or id).", valueName: "group"))
    var outPortGroup: String?
    @Option(help: hidden)
    var notOutPortGroup: String?

    @Option(help: "Connection-tracking state.")
    var ctState: ConnectionState?
    @Option(help: hidden)
    var notCtState: ConnectionState?
    @Option(help: ArgumentHelp("Ethertype: ipv4, arp, ipv6, vlan or a number like 0x0800.", valueName: "type"),
            transform: Parse.etherType)
    var ethertype: UInt16?
    @Option(help: hidden, transform: Parse.etherType)
    var notEthertype: UInt16?
    @Option(help: ArgumentHelp("Source MAC address.", valueName: "mac"), transform: Parse.mac)
    var srcMac: EthernetAddress?
    @Option(help: hidden, transform: Parse.mac)
    var notSrcMac: EthernetAddress?
    @Option(help: ArgumentHelp("Destination MAC address.", valueName: "mac"), transform: Parse.mac)
    var dstMac: EthernetAddress?
    @Option(help: hidden, transform: Parse.mac)
    var notDstMac: EthernetAddress?
    @Option(help: "Which IP fragments (later fragments carry no L4 header).")
    var fragments: FragmentPolicy?
    @Option(help: hidden)
    var notFragments: FragmentPolicy?

    /// The `--not-` twins are documented once in the command's discussion, not forty times in the list.
    private static var hidden: ArgumentHelp { ArgumentHelp(visibility: .hidden) }

    /// API field paths to the flags setting them, for error messages.
    static let fieldFlags: [String: String] = [
        "conditions.ipProtocol": "--protocol", "conditions.sourcePrefix": "--src", "conditions.destinationPrefix": "--dst",
        "conditions.sourceAddressGroup": "--src-ip-group", "conditions.destinationAddressGroup": "--dst-ip-group",
        "conditions.sourcePorts": "--src-port", "conditions.destinationPorts": "--dst-port",
        "conditions.icmpType": "--icmp-type", "conditions.icmpCode": "--icmp-code",
        "conditions.inPorts": "--in-port", "conditions.outPorts": "--out-port",
        "conditions.inPortGroup": "--in-port-group", "conditions.outPortGroup": "--out-port-group",
        "conditions.connectionState": "--ct-state", "conditions.etherType": "--ethertype",
        "conditions.sourceMAC": "--src-mac", "conditions.destinationMAC": "--dst-mac", "conditions.fragments": "--fragments",
    ]

    /// The conditions, names resolved to ids.
    func conditions(_ resolver: Resolver) async throws -> RuleConditions {
        var conditions = RuleConditions()
        conditions.ipProtocol = try match(ipProtocol, notProtocol, "protocol")
        conditions.sourcePrefix = try match(src, notSrc, "src")
        conditions.destinationPrefix = try match(dst, notDst, "dst")
        conditions.sourcePorts = try match(srcPort, notSrcPort, "src-port")
        conditions.destinationPorts = try match(dstPort, notDstPort, "dst-port")
        conditions.icmpType = try match(icmpType, notIcmpType, "icmp-type")
        conditions.icmpCode = try match(icmpCode, notIcmpCode, "icmp-code")
        conditions.connectionState = try match(ctState, notCtState, "ct-state")
        conditions.etherType = try match(ethertype, notEthertype, "ethertype")
        conditions.sourceMAC = try match(srcMac, notSrcMac, "src-mac")
        conditions.destinationMAC = try match(dstMac, notDstMac, "dst-mac")
        conditions.fragments = try match(fragments, notFragments, "fragments")

        if let group = try match(srcIpGroup, notSrcIpGroup, "src-ip-group") {
            conditions.sourceAddressGroup = Match(try await resolver.id(group.value, IPAddressGroup.self), invert: group.invert)
        }
        if let group = try match(dstIpGroup, notDstIpGroup, "dst-ip-group") {
            conditions.destinationAddressGroup = Match(try await resolver.id(group.value, IPAddressGroup.self), invert: group.invert)
        }
        if let group = try match(inPortGroup, notInPortGroup, "in-port-group") {
            conditions.inPortGroup = Match(try await resolver.id(group.value, PortGroup.self), invert: group.invert)
        }
        if let group = try match(outPortGroup, notOutPortGroup, "out-port-group") {
            conditions.outPortGroup = Match(try await resolver.id(group.value, PortGroup.self), invert: group.invert)
        }
        if let ports = try match(inPort.isEmpty ? nil : inPort, notInPort.isEmpty ? nil : notInPort, "in-port") {
            conditions.inPorts = Match(try await portIDs(ports.value, resolver), invert: ports.invert)
        }
        if let ports = try match(outPort.isEmpty ? nil : outPort, notOutPort.isEmpty ? nil : notOutPort, "out-port") {
            conditions.outPorts = Match(try await portIDs(ports.value, resolver), invert: ports.invert)
        }
        return conditions
    }

    private func portIDs(_ references: [String], _ resolver: Resolver) async throws -> [PortID] {
        var ids: [PortID] = []
        for reference in references { ids.append(try await resolver.portID(reference)) }
        return ids
    }

    /// `--flag` gives a plain match, `--not-flag` an inverted one; both is a mistake.
    private func match<Value: Codable & Hashable & Sendable>(_ plain: Value?, _ inverted: Value?, _ flag: String) throws -> Match<Value>? {
        switch (plain, inverted) {
        case (let value?, nil): return Match(value)
        case (nil, let value?): return Match(value, invert: true)
        case (nil, nil): return nil
        case (.some, .some): throw CLIError("give --\(flag) or --not-\(flag), not both: one condition matches a value or its opposite")
        }
    }
}
