import Foundation
import HiveModel
import struct HiveModel.Host
import struct HiveModel.Port
import HivePacket
import Testing

/// Builds arbitrary objects (valid or not) with every optional field
/// sometimes present and every defaulted field sometimes non-default, so a
/// field dropped or renamed on one side of the coding shows up.
struct ObjectGenerator {
    var random: SeededGenerator

    mutating func bool() -> Bool { Bool.random(using: &random) }
    mutating func maybe<Value>(_ make: (inout ObjectGenerator) -> Value) -> Value? { bool() ? make(&self) : nil }
    mutating func int<Value: FixedWidthInteger>(_ type: Value.Type = Value.self) -> Value { Value.random(in: .min ... .max, using: &random) }
    mutating func list<Value>(_ make: (inout ObjectGenerator) -> Value) -> [Value] {
        (0..<Int.random(in: 0...3, using: &random)).map { _ in make(&self) }
    }
    mutating func pick<Value>(_ choices: [Value]) -> Value { choices.randomElement(using: &random)! }
    mutating func id<Object>() -> ObjectID<Object> { random.nextID() }

    /// Text with the characters JSON must escape and multi-byte ones.
    mutating func text() -> String {
        let pieces = ["a", "Z", "0", "/", " ", "-", ".", "\"", "\\", "é", "😀", "\u{0}", "\n", "\t", "\u{7F}", "web"]
        return (0..<Int.random(in: 0...12, using: &random)).map { _ in pick(pieces) }.joined()
    }

    mutating func address() -> IPv4.Address { IPv4.Address(int()) }
    mutating func prefix() -> IPv4.Prefix { IPv4.Prefix(address: address(), length: UInt8.random(in: 0...32, using: &random)) }
    mutating func mac() -> EthernetAddress { EthernetAddress(int(UInt64.self)) }
    mutating func match<Value>(_ make: (inout ObjectGenerator) -> Value) -> Match<Value>? {
        maybe { generator in Match(make(&generator), invert: generator.bool()) }
    }

    mutating func bridge() -> Bridge {
        Bridge(
            id: id(), tenantId: maybe { $0.text() }, name: text(), adminStateUp: bool(),
            inboundChainId: maybe { $0.id() }, outboundChainId: maybe { $0.id() }, arpSuppression: bool(), tunnelKey: int())
    }

    mutating func router() -> Router {
        Router(id: id(), tenantId: maybe { $0.text() }, name: text(), adminStateUp: bool(),
               inboundChainId: maybe { $0.id() }, outboundChainId: maybe { $0.id() },
               gateway: maybe { RouterGateway(portId: $0.id(), snatAddress: $0.maybe { $0.address() }, enableSNAT: $0.bool()) })
    }

    mutating func port() -> Port {
        Port(
            id: id(), tenantId: maybe { $0.text() }, deviceId: random.nextUUID(), deviceKind: pick(DeviceKind.allCases),
            name: maybe { $0.text() }, adminStateUp: bool(), inboundChainId: maybe { $0.id() },
            outboundChainId: maybe { $0.id() }, tunnelKey: int(), peerId: maybe { $0.id() }, portGroupIds: list { $0.id() },
            address: maybe { $0.address() }, subnet: maybe { $0.prefix() }, mac: maybe { $0.mac() })
    }

    mutating func route() -> Route {
        Route(
            id: id(), tenantId: maybe { $0.text() }, routerId: id(), destination: prefix(), source: prefix(),
            nextHopGateway: maybe { $0.address() }, egressPortId: maybe { $0.id() }, weight: int(), kind: pick(RouteKind.allCases))
    }

    mutating func chain() -> Chain {
        Chain(id: id(), tenantId: maybe { $0.text() }, name: text(), ruleIds: list { $0.id() })
    }

    mutating func portRange() -> PortRange { PortRange(start: int(), end: int()) }

    mutating func conditions() -> RuleConditions {
        RuleConditions(
            inPorts: match { $0.list { $0.id() } }, outPorts: match { $0.list { $0.id() } },
            inPortGroup: match { $0.id() }, outPortGroup: match { $0.id() }, etherType: match { $0.int() },
            sourceMAC: match { $0.mac() }, destinationMAC: match { $0.mac() }, ipProtocol: match { $0.int() },
            sourcePrefix: match { $0.prefix() }, destinationPrefix: match { $0.prefix() },
            sourceAddressGroup: match { $0.id() }, destinationAddressGroup: match { $0.id() },
            sourcePorts: match { $0.portRange() }, destinationPorts: match { $0.portRange() },
            icmpType: match { $0.int() }, icmpCode: match { $0.int() },
            connectionState: match { $0.pick(ConnectionState.allCases) }, fragments: match { $0.pick(FragmentPolicy.allCases) })
    }

    /// Ports, when given, start at 1: 0 means "no ports" and is not written.
    mutating func natTarget() -> NATTarget {
        let ports = maybe { generator in (UInt16.random(in: 1...UInt16.max, using: &generator.random), generator.int() as UInt16) }
        return NATTarget(firstAddress: address(), lastAddress: address(), firstPort: ports?.0 ?? 0, lastPort: ports?.1 ?? 0)
    }

    mutating func action() -> RuleAction {
        pick([.accept, .drop, .reject, .jump(id()), .return, .continue, .snat(natTarget()), .dnat(natTarget())])
    }

    mutating func rule() -> Rule {
        Rule(id: id(), tenantId: maybe { $0.text() }, chainId: id(), conditions: conditions(), action: action())
    }

    mutating func portGroup() -> PortGroup {
        PortGroup(id: id(), tenantId: maybe { $0.text() }, name: text(), stateful: bool())
    }

    mutating func addressGroup() -> IPAddressGroup {
        IPAddressGroup(id: id(), tenantId: maybe { $0.text() }, name: text(), addresses: list { $0.prefix() })
    }

    mutating func host() -> Host {
        var host = Host(id: id(), name: text(), underlayAddresses: list { $0.address() })
        host.tenantId = maybe { $0.text() }  // invalid, but must still round-trip
        return host
    }

    mutating func tunnelZone() -> TunnelZone {
        TunnelZone(id: id(), name: text(), kind: pick(TunnelKind.allCases),
                   members: list { TunnelZoneMember(hostId: $0.id(), address: $0.address()) })
    }

    mutating func binding() -> Binding {
        Binding(id: id(), hostId: id(), portId: id(), interfaceName: text())
    }

    mutating func dhcpSubnet() -> DHCPSubnet {
        DHCPSubnet(
            id: id(), tenantId: maybe { $0.text() }, bridgeId: id(), subnet: prefix(), rangeStart: address(), rangeEnd: address(),
            gateway: maybe { $0.address() }, dnsServers: list { $0.address() },
            hostEntries: list { DHCPHostEntry(mac: $0.mac(), address: $0.address(), hostname: $0.maybe { $0.text() }) },
            mtu: maybe { $0.int() }, leaseSeconds: int(), enabled: bool())
    }
}

@Suite("Seeded random round trips")
struct RandomRoundTripTests {
    /// decode(encode(x)) == x, and re-encoding gives the same bytes.
    func roundTrips<Object: TopologyObject>(_ object: Object) throws -> Bool {
        let bytes = try object.jsonBytes()
        let decoded = try Object.decode(jsonBytes: bytes)
        _ = decoded.validationErrors  // never traps, whatever the content
        return try decoded == object && decoded.jsonBytes() == bytes
    }

    @Test(arguments: [UInt64(1), 2, 3, 0xDEAD_BEEF])
    func everyKindRoundTrips(seed: UInt64) throws {
        var generator = ObjectGenerator(random: SeededGenerator(seed: seed))
        for _ in 0..<150 {
            #expect(try roundTrips(generator.bridge()))
            #expect(try roundTrips(generator.router()))
            #expect(try roundTrips(generator.port()))
            #expect(try roundTrips(generator.route()))
            #expect(try roundTrips(generator.chain()))
            #expect(try roundTrips(generator.rule()))
            #expect(try roundTrips(generator.portGroup()))
            #expect(try roundTrips(generator.addressGroup()))
            #expect(try roundTrips(generator.host()))
            #expect(try roundTrips(generator.tunnelZone()))
            #expect(try roundTrips(generator.binding()))
            #expect(try roundTrips(generator.dhcpSubnet()))
        }
    }

    /// The generator reaches both sides of the optional and defaulted fields,
    /// so the round trip above is not vacuous.
    @Test func generatorCoversOptionalAndDefaultedFields() {
        var generator = ObjectGenerator(random: SeededGenerator(seed: 1))
        let ports = (0..<100).map { _ in generator.port() }
        #expect(ports.contains { $0.mac == nil } && ports.contains { $0.mac != nil })
        #expect(ports.contains { !$0.adminStateUp } && ports.contains { $0.adminStateUp })
        #expect(Set(ports.map(\.id)).count == 100)
        let rules = (0..<100).map { _ in generator.rule() }
        #expect(rules.contains { $0.conditions.sourcePorts?.invert == true })
        #expect(Set(rules.map { $0.action.type }).count == RuleAction.ActionType.allCases.count)
    }

    /// Router-port addressing against a reference model that enumerates the subnet.
    @Test func routerAddressingMatchesEnumeration() {
        var random = SeededGenerator(seed: 99)
        for _ in 0..<2000 {
            let length = UInt8.random(in: 22...32, using: &random)
            let network = IPv4.Prefix(address: IPv4.Address(UInt32.random(in: 0...UInt32.max, using: &random)), length: length).network
            // Addresses near the subnet: inside, at its edges, or just outside.
            let size = UInt64(1) << (32 - UInt64(length))
            let offset = Int64.random(in: -2...Int64(size) + 1, using: &random)
            let candidate = Int64(network.address.value) + offset
            guard (0...Int64(UInt32.max)).contains(candidate) else { continue }
            let address = IPv4.Address(UInt32(candidate))

            let members = (network.address.value...network.broadcast.value).map(IPv4.Address.init)
            let hosts = length >= 31 ? members[...] : members.dropFirst().dropLast()
            let expected = hosts.contains(address)

            let port = Port(router: RouterID(), address: address, subnet: network)
            #expect(port.validationErrors.isEmpty == expected, "\(address) in \(network)")
        }
    }
}
