import Foundation
import HiveModel
import HiveStore

/// The agent's last view of the NSDB on local disk (`<state-dir>/view`):
/// the topology, the learned MAC and ARP tables, SNAT blocks and host
/// liveness, as the NSDB keys they came from, with the revision they reflect.
///
/// An agent started while the NSDB is unreachable binds its ports and
/// forwards from it; the first read of the NSDB replaces it whole (and every
/// flow with it), so nothing from the stale view outlives a change it missed.
///
/// JSON, versioned by `format`: a file of another format, another host or
/// unreadable is ignored (the agent then waits for the NSDB, as without one).
/// Written whole to a temporary file, synced, then renamed over the old one.
struct ViewCache: Codable, Sendable {
    static let currentFormat = 1
    static let fileName = "view"

    struct Record: Codable, Sendable {
        var key: String
        var value: Data
    }

    var format: Int
    var host: HostID
    /// The NSDB revision the view reflects (learned entries may be newer).
    var revision: Revision
    var savedAt: Date
    var records: [Record]

    /// The mirror's content as NSDB keys (live trace requests left out:
    /// they belong to clients of the moment).
    init(mirror: NSDBMirror, host: HostID) throws {
        var records: [Record] = []
        func add<T: TopologyObject>(_ table: [ObjectID<T>: T]) throws {
            for (id, object) in table {
                records.append(Record(key: TopologyKeys.object(T.kind, id), value: Data(try object.jsonBytes())))
            }
        }
        try add(mirror.bridges)
        try add(mirror.routers)
        try add(mirror.ports)
        try add(mirror.routes)
        try add(mirror.chains)
        try add(mirror.rules)
        try add(mirror.portGroups)
        try add(mirror.ipAddressGroups)
        try add(mirror.dhcpSubnets)
        try add(mirror.securityGroups)
        try add(mirror.securityGroupRules)
        try add(mirror.floatingIPs)
        try add(mirror.hosts)
        try add(mirror.tunnelZones)
        try add(mirror.bindings)
        for host in mirror.aliveHosts {
            records.append(Record(key: TopologyKeys.hostAlive(host), value: Data("alive".utf8)))
        }
        for (bridge, table) in mirror.state.macTables {
            for (mac, port) in table {
                records.append(Record(key: NSDBMirror.macKey(bridge, mac), value: Data(port.description.utf8)))
            }
        }
        for (router, table) in mirror.state.arpTables {
            for (address, mac) in table {
                records.append(Record(key: NSDBMirror.arpKey(router, address), value: Data(mac.description.utf8)))
            }
        }
        for (block, holder) in mirror.natBlocks {
            records.append(Record(key: NSDBMirror.natKey(block), value: Data(holder.description.utf8)))
        }
        self.format = Self.currentFormat
        self.host = host
        self.revision = mirror.revision
        self.savedAt = Date()
        self.records = records
    }

    /// The records as the read a mirror loads.
    var rangeResult: RangeResult {
        RangeResult(
            keyValues: records.map { KeyValue(key: $0.key, value: Array($0.value), createRevision: 0, modRevision: 0, version: 1) },
            revision: revision)
    }

    /// The cache in `directory`; nil when there is none. Throws, saying why,
    /// when one is there but cannot be used.
    static func read(directory: String, host: HostID) throws -> ViewCache? {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        struct Header: Decodable { var format: Int }
        guard let header = try? JSONDecoder().decode(Header.self, from: data) else {
            throw AgentError("\(path) is not a view cache")
        }
        guard header.format == currentFormat else {
            throw AgentError("\(path) has format \(header.format); this agent reads format \(currentFormat)")
        }
        let cache: ViewCache
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            cache = try decoder.decode(ViewCache.self, from: data)
        } catch {
            throw AgentError("\(path) is damaged: \(error)")
        }
        guard cache.host == host else {
            throw AgentError("\(path) is host \(cache.host)'s view, not this host's (\(host))")
        }
        return cache
    }

    func write(directory: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try DurableFile.replace(directory + "/" + Self.fileName, with: Array(try encoder.encode(self)))
    }
}

/// Whole-file replacement that survives a crash at any point: the old file
/// or the new one, never a mix.
enum DurableFile {
    static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o600) throws {
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw AgentError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw AgentError("cannot write \(temporary): \(reason)")
            }
            written += result
        }
        guard fsync(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw AgentError("cannot sync \(temporary): \(reason)")
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw AgentError("cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))") }
        let directory = (path as NSString).deletingLastPathComponent
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}
