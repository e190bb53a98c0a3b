import Foundation
import HiveModel
import HivePacket
import HiveSimulation
import HiveStore
import Testing
@testable import HiveAgent

/// The agent's view on disk, and learned entries as hosts send them to each other.
@Suite struct ViewCacheTests {
    func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hive-view-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A mirror with a little of everything the cache keeps.
    func sampleMirror() throws -> (NSDBMirror, HostID) {
        var mirror = NSDBMirror()
        var changes = NSDBMirror.Changes()
        let host = Host(name: "h1", underlayAddresses: [IPv4.Address(100, 64, 0, 1)])
        let bridge = Bridge(name: "blue")
        let router = Router(name: "r")
        let port = Port(bridge: bridge.id, name: "vm1")
        let binding = Binding(hostId: host.id, portId: port.id, interfaceName: "veth1")
        var revision: Revision = 0
        func put(_ key: String, _ value: [UInt8]) {
            revision += 1
            mirror.apply(WatchEvent(kind: .put, keyValue: KeyValue(key: key, value: value, createRevision: revision, modRevision: revision, version: 1)), into: &changes)
        }
        put(TopologyKeys.object(Host.kind, host.id), try host.jsonBytes())
        put(TopologyKeys.object(Bridge.kind, bridge.id), try bridge.jsonBytes())
        put(TopologyKeys.object(Router.kind, router.id), try router.jsonBytes())
        put(TopologyKeys.object(Port.kind, port.id), try port.jsonBytes())
        put(TopologyKeys.object(Binding.kind, binding.id), try binding.jsonBytes())
        put(TopologyKeys.hostAlive(host.id), Array("alive".utf8))
        put(NSDBMirror.macKey(bridge.id, EthernetAddress(2, 0, 0, 0, 0, 1)), Array(port.id.description.utf8))
        put(NSDBMirror.arpKey(router.id, IPv4.Address(10, 0, 1, 11)), Array("02:00:00:00:00:01".utf8))
        put(NSDBMirror.natKey(NATBlockKey(address: IPv4.Address(192, 0, 2, 1), block: 7)), Array(host.id.description.utf8))
        mirror.revision = revision
        #expect(changes.problems.isEmpty)
        return (mirror, host.id)
    }

    func loaded(_ cache: ViewCache) -> NSDBMirror {
        var mirror = NSDBMirror()
        var changes = NSDBMirror.Changes()
        for keyValue in cache.rangeResult.keyValues { mirror.apply(WatchEvent(kind: .put, keyValue: keyValue), into: &changes) }
        mirror.revision = cache.rangeResult.revision
        return mirror
    }

    @Test func theViewReadsBackAsItWasWritten() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (mirror, host) = try sampleMirror()
        try ViewCache(mirror: mirror, host: host).write(directory: directory)
        let read = try #require(try ViewCache.read(directory: directory, host: host))
        let restored = loaded(read)
        #expect(restored.revision == mirror.revision)
        #expect(restored.bridges == mirror.bridges)
        #expect(restored.routers == mirror.routers)
        #expect(restored.ports == mirror.ports)
        #expect(restored.hosts == mirror.hosts)
        #expect(restored.bindings == mirror.bindings)
        #expect(restored.aliveHosts == mirror.aliveHosts)
        #expect(restored.state.macTables == mirror.state.macTables)
        #expect(restored.state.arpTables == mirror.state.arpTables)
        #expect(restored.natBlocks == mirror.natBlocks)
        #expect(!FileManager.default.fileExists(atPath: directory + "/view.tmp"), "the temporary file was renamed")
        let mode = try FileManager.default.attributesOfItem(atPath: directory + "/view")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func noCacheIsNilAndAnUnusableOneSaysWhy() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (mirror, host) = try sampleMirror()
        #expect(try ViewCache.read(directory: directory, host: host) == nil)

        try ViewCache(mirror: mirror, host: host).write(directory: directory)
        let other = HostID()
        #expect { try ViewCache.read(directory: directory, host: other) } throws: { "\($0)".contains("not this host's") }

        var future = try ViewCache(mirror: mirror, host: host)
        future.format = ViewCache.currentFormat + 1
        try DurableFile.replace(directory + "/view", with: Array(try JSONEncoder().encode(future)))
        #expect { try ViewCache.read(directory: directory, host: host) } throws: { "\($0)".contains("format \(ViewCache.currentFormat + 1)") }

        let whole = try Data(contentsOf: URL(fileURLWithPath: directory + "/view"))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: directory + "/view"))
        #expect { try ViewCache.read(directory: directory, host: host) } throws: { "\($0)".contains("not a view cache") }
    }

    @Test func learnedEntriesCrossBetweenHostsIntact() throws {
        let entries: [SharedLearning] = [
            .mac(MACLearning(bridge: BridgeID(), mac: EthernetAddress(2, 0, 0x0a, 0, 1, 0x0b), port: PortID())),
            .arp(ARPLearning(router: RouterID(), address: IPv4.Address(10, 0, 2, 13), mac: EthernetAddress(0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54))),
        ]
        let message = LearnedStateMessage.encode(entries[...])
        #expect(message.count == 4 + 2 * LearnedStateMessage.entryLength)
        #expect(message.withUnsafeBytes { LearnedStateMessage.decode($0) } == entries)

        let many = (0..<70).map { _ in SharedLearning.mac(MACLearning(bridge: BridgeID(), mac: EthernetAddress(UInt64.random(in: 0...0xFFFF_FFFF_FFFF)), port: PortID())) }
        let messages = LearnedStateMessage.messages(many)
        #expect(messages.count == 3)
        #expect(messages.flatMap { $0.withUnsafeBytes { LearnedStateMessage.decode($0) } ?? [] } == many)
        #expect(messages.allSatisfy { $0.count <= 1412 }, "each fits one datagram")
    }

    @Test func malformedLearnedMessagesAreRefusedWhole() throws {
        let entry = SharedLearning.arp(ARPLearning(router: RouterID(), address: IPv4.Address(10, 0, 0, 1), mac: EthernetAddress(2, 0, 0, 0, 0, 1)))
        let good = LearnedStateMessage.encode([entry, entry][...])
        var badKind = good
        badKind[4 + LearnedStateMessage.entryLength] = 9
        var tooMany = good
        tooMany[1] = UInt8(LearnedStateMessage.maximumEntries + 1)
        var flowState = good
        flowState[0] = FlowStateMessage.version
        for bytes in [Array(good.dropLast()), badKind, tooMany, flowState, [], [LearnedStateMessage.version]] {
            #expect(bytes.withUnsafeBytes { LearnedStateMessage.decode($0) } == nil)
        }
    }
}
