import struct Foundation.UUID
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Testing
@testable import HiveAgent

/// Which invalidation tags each kind of NSDB change touches (the contract
/// in `InvalidationTag`), on watch events as the store delivers them.
@Suite struct NSDBMirrorTests {
    var revision: Revision = 0

    mutating func put(_ key: String, _ value: [UInt8]) -> WatchEvent {
        revision += 1
        return WatchEvent(kind: .put, keyValue: KeyValue(key: key, value: value, createRevision: revision, modRevision: revision, version: 1, lease: 0))
    }

    mutating func delete(_ key: String) -> WatchEvent {
        revision += 1
        return WatchEvent(kind: .delete, keyValue: KeyValue(key: key, value: [], createRevision: 0, modRevision: revision, version: 0, lease: 0))
    }

    mutating func put<T: TopologyObject>(_ object: T) throws -> WatchEvent {
        put(TopologyKeys.object(T.kind, object.id), try object.jsonBytes())
    }

    @Test mutating func topologyChangesTouchTheirTags() throws {
        var mirror = NSDBMirror()
        var changes = NSDBMirror.Changes()
        let bridge = Bridge(name: "b")
        let router = Router(name: "r")
        let chain = Chain(name: "c")
        let rule = Rule(chainId: chain.id, action: .drop)
        let route = Route(routerId: router.id, destination: IPv4.Prefix(parsing: "10.0.0.0/8")!)
        let port = Port(bridge: bridge.id, name: "p")
        for event in [try put(bridge), try put(router), try put(chain), try put(rule), try put(route), try put(port)] {
            mirror.apply(event, into: &changes)
        }
        #expect(changes.topologyChanged)
        #expect(changes.tags.isSuperset(of: [.bridge(bridge.id), .router(router.id), .chain(chain.id), .rule(rule.id), .routeTable(router.id), .port(port.id)]))

        // A route removed touches its router's table; a rule removed, its chain.
        var removal = NSDBMirror.Changes()
        mirror.apply(delete(TopologyKeys.object(.route, route.id)), into: &removal)
        mirror.apply(delete(TopologyKeys.object(.rule, rule.id)), into: &removal)
        #expect(removal.tags == [.routeTable(router.id), .rule(rule.id), .chain(chain.id)])
        #expect(mirror.routes.isEmpty && mirror.rules.isEmpty)
    }

    /// Copies of one object come from several scopes, on watchers that keep
    /// no order between them: an older copy never replaces a newer, a copy
    /// seen twice changes nothing, and the object goes with its last copy.
    @Test func scopedCopiesKeepTheNewestVersionAndGoWithTheLast() throws {
        var mirror = NSDBMirror()
        let bridge = Bridge(name: "b")
        let group = SecurityGroup(name: "web")
        var port = Port(bridge: bridge.id, name: "old")
        func copy(_ kind: WatchEvent.Kind, in scope: UUID, _ object: Port, at revision: Revision) throws -> WatchEvent {
            let key = TopologyScopes.key(in: scope, .port, object.id)
            return WatchEvent(kind: kind, keyValue: KeyValue(
                key: key, value: kind == .put ? try object.jsonBytes() : [], createRevision: 1, modRevision: revision, version: 1, lease: 0))
        }
        var changes = NSDBMirror.Changes()
        mirror.apply(try copy(.put, in: bridge.id.uuid, port, at: 5), into: &changes)
        #expect(mirror.ports[port.id]?.name == "old" && changes.tags.contains(.port(port.id)))

        // The same version through the group's scope: nothing changes.
        var same = NSDBMirror.Changes()
        mirror.apply(try copy(.put, in: group.id.uuid, port, at: 5), into: &same)
        #expect(same.tags.isEmpty && !same.topologyChanged)

        // A newer version through one scope, then a late older one through the other.
        port.name = "new"
        mirror.apply(try copy(.put, in: bridge.id.uuid, port, at: 9), into: &changes)
        var older = port
        older.name = "older"
        mirror.apply(try copy(.put, in: group.id.uuid, older, at: 7), into: &changes)
        #expect(mirror.ports[port.id]?.name == "new")

        // Gone from one scope: still held through the other; gone from both: gone.
        var removal = NSDBMirror.Changes()
        mirror.apply(try copy(.delete, in: group.id.uuid, port, at: 10), into: &removal)
        #expect(mirror.ports[port.id] != nil && removal.tags.isEmpty)
        mirror.apply(try copy(.delete, in: bridge.id.uuid, port, at: 11), into: &removal)
        #expect(mirror.ports[port.id] == nil && removal.tags.contains(.port(port.id)))
    }

    @Test mutating func securityGroupChangesTouchOnlyTheirGroupsAndMembers() throws {
        var mirror = NSDBMirror()
        var setup = NSDBMirror.Changes()
        let bridge = Bridge(name: "b")
        let web = SecurityGroup(name: "web")
        let clients = SecurityGroup(name: "clients")
        var member = Port(bridge: bridge.id, name: "m", mac: EthernetAddress(0x0200_0000_0001), fixedIPs: [IPv4.Address(10, 0, 0, 5)],
                          securityGroupIds: [clients.id])
        for event in [try put(bridge), try put(web), try put(clients), try put(member)] { mirror.apply(event, into: &setup) }

        // A rule touches its group only.
        var ruleChange = NSDBMirror.Changes()
        let rule = SecurityGroupRule(securityGroupId: web.id, direction: .ingress, ipProtocol: 6, ports: PortRange(80), remoteGroupId: clients.id)
        mirror.apply(try put(rule), into: &ruleChange)
        #expect(ruleChange.tags == [.securityGroup(web.id)])
        #expect(mirror.securityGroupRules[rule.id] != nil)

        // A member's new address touches the flows that matched the group as a remote; a rename does not.
        var renamed = NSDBMirror.Changes()
        member.name = "m2"
        mirror.apply(try put(member), into: &renamed)
        #expect(!renamed.tags.contains(.securityGroupMembers(clients.id)))
        var readdressed = NSDBMirror.Changes()
        member.fixedIPs = [IPv4.Address(10, 0, 0, 6)]
        mirror.apply(try put(member), into: &readdressed)
        #expect(readdressed.tags.contains(.securityGroupMembers(clients.id)))
        // Leaving a group touches it too.
        var left = NSDBMirror.Changes()
        member.securityGroupIds = []
        mirror.apply(try put(member), into: &left)
        #expect(left.tags.contains(.securityGroupMembers(clients.id)))
        #expect(!left.tags.contains(.securityGroupMembers(web.id)))
    }

    @Test mutating func bindingsChangePlacementAndTouchThePort() throws {
        var mirror = NSDBMirror()
        var changes = NSDBMirror.Changes()
        let binding = Binding(hostId: HostID(), portId: PortID(), interfaceName: "tap0")
        mirror.apply(try put(binding), into: &changes)
        #expect(changes.placementChanged)
        #expect(changes.tags == [.port(binding.portId)])
        #expect(!changes.flushAll, "a binding touches its port's flows, not every flow")
    }

    /// Liveness and a host's addresses touch the ports bound to that host
    /// only; zones and port groups, which no tag narrows, flush everything.
    @Test mutating func hostChangesTouchOnlyTheirPortsAndZonesFlushAll() throws {
        var mirror = NSDBMirror()
        var setup = NSDBMirror.Changes()
        var host = Host(name: "h1", underlayAddresses: [IPv4.Address(100, 64, 0, 1)])
        let other = HostID()
        let here = [Binding(hostId: host.id, portId: PortID(), interfaceName: "tap0"), Binding(hostId: host.id, portId: PortID(), interfaceName: "tap1")]
        let elsewhere = Binding(hostId: other, portId: PortID(), interfaceName: "tap0")
        mirror.apply(try put(host), into: &setup)
        for binding in here + [elsewhere] { mirror.apply(try put(binding), into: &setup) }

        var alive = NSDBMirror.Changes()
        mirror.apply(put(TopologyKeys.hostAlive(host.id), Array("alive".utf8)), into: &alive)
        #expect(alive.tags == Set(here.map { .port($0.portId) }) && !alive.flushAll)
        var dead = NSDBMirror.Changes()
        mirror.apply(delete(TopologyKeys.hostAlive(host.id)), into: &dead)
        #expect(dead.tags == Set(here.map { .port($0.portId) }) && !dead.flushAll)

        var renamed = NSDBMirror.Changes()
        host.name = "h1-renamed"
        mirror.apply(try put(host), into: &renamed)
        #expect(renamed.tags.isEmpty && !renamed.flushAll, "a new name moves no traffic")
        var moved = NSDBMirror.Changes()
        host.underlayAddresses = [IPv4.Address(100, 64, 0, 9)]
        mirror.apply(try put(host), into: &moved)
        #expect(moved.tags == Set(here.map { .port($0.portId) }))

        var zone = NSDBMirror.Changes()
        mirror.apply(try put(TunnelZone(name: "z", members: [TunnelZoneMember(hostId: host.id, address: IPv4.Address(100, 64, 0, 1))])), into: &zone)
        #expect(zone.flushAll)
        var group = NSDBMirror.Changes()
        mirror.apply(try put(PortGroup(name: "g")), into: &group)
        #expect(group.flushAll)
    }

    @Test mutating func aMACMoveTouchesItsEntryButARepeatDoesNot() {
        var mirror = NSDBMirror()
        let bridge = BridgeID()
        let mac = EthernetAddress(0x02, 0, 0, 0, 0, 1)
        let first = PortID(), second = PortID()
        var learned = NSDBMirror.Changes()
        mirror.apply(put(NSDBMirror.macKey(bridge, mac), Array(first.description.utf8)), into: &learned)
        #expect(learned.tags == [.macEntry(bridge, mac)])
        #expect(mirror.state.port(of: mac, in: bridge) == first)

        var repeated = NSDBMirror.Changes()
        mirror.apply(put(NSDBMirror.macKey(bridge, mac), Array(first.description.utf8)), into: &repeated)
        #expect(repeated.tags.isEmpty && !repeated.stateChanged, "the same entry again changes nothing")

        var moved = NSDBMirror.Changes()
        mirror.apply(put(NSDBMirror.macKey(bridge, mac), Array(second.description.utf8)), into: &moved)
        #expect(moved.tags == [.macEntry(bridge, mac)])
        #expect(mirror.state.port(of: mac, in: bridge) == second)

        var gone = NSDBMirror.Changes()
        mirror.apply(delete(NSDBMirror.macKey(bridge, mac)), into: &gone)
        #expect(gone.tags == [.macEntry(bridge, mac)])
        #expect(mirror.state.port(of: mac, in: bridge) == nil)
    }

    @Test mutating func anARPEntryThatAppearsIsReportedForWaitingPackets() {
        var mirror = NSDBMirror()
        let router = RouterID()
        let address = IPv4.Address(10, 0, 0, 5)
        var changes = NSDBMirror.Changes()
        mirror.apply(put(NSDBMirror.arpKey(router, address), Array("02:00:00:00:00:05".utf8)), into: &changes)
        #expect(changes.tags == [.arpEntry(router, address)])
        #expect(changes.learnedARP.count == 1 && changes.learnedARP.first?.1 == address)
    }

    @Test mutating func undecodableDocumentsAreReportedAndIgnored() {
        var mirror = NSDBMirror()
        var changes = NSDBMirror.Changes()
        mirror.apply(put(TopologyKeys.object(.bridge, BridgeID()), Array("{not json".utf8)), into: &changes)
        #expect(mirror.bridges.isEmpty)
        #expect(changes.problems.count == 1)
    }
}
