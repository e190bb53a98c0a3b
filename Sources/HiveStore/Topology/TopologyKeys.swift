import HiveModel

/// Where the topology lives in the store. Documents are JSON; index keys
/// make integrity checkable inside one transaction.
///
/// ```
/// /hive/v1/topology/<kind>/<uuid>                            the object (JSON)
/// /hive/v1/index/refs/<target>/<kind>/<source>/<field>       "cascade" | "refuse"
/// /hive/v1/index/unique/<kind>/<scoped name>                 uuid of the owner
/// /hive/v1/index/tunnel-keys/<key as 6 hex digits>           "<kind>/<uuid>"
/// /hive/v1/hosts/<uuid>/alive                                under the host's lease
/// /hive/v1/trace/requests/<uuid>                             a live trace, under its client's lease
/// /hive/trace-results/v1/<request>/<host>/<sequence>         what agents traced, under the same lease
/// ```
public enum TopologyKeys {
    public static let root = "/hive/v1/"
    public static let topology = root + "topology/"

    public static func kindPrefix(_ kind: ObjectKind) -> String { topology + kind.rawValue + "/" }

    public static func object(_ kind: ObjectKind, _ id: some CustomStringConvertible) -> String {
        kindPrefix(kind) + id.description.lowercased()
    }

    /// Every reference to `target`, whatever its source.
    static func referrers(of target: some CustomStringConvertible) -> String {
        root + "index/refs/" + target.description.lowercased() + "/"
    }

    static func reference(_ reference: ObjectReference, from kind: ObjectKind, _ source: some CustomStringConvertible) -> String {
        referrers(of: reference.id.uuidString) + kind.rawValue + "/" + source.description.lowercased() + "/" + reference.field
    }

    static func unique(_ kind: ObjectKind, _ scopedName: String) -> String {
        root + "index/unique/" + kind.rawValue + "/" + scopedName
    }

    static func tunnelKey(_ key: UInt32) -> String {
        let hex = String(key, radix: 16)
        return root + "index/tunnel-keys/" + String(repeating: "0", count: max(0, 6 - hex.count)) + hex
    }

    /// The 256 keys `block << 8 ... block << 8 | 0xFF`: one prefix, as keys are fixed-width hex.
    static func tunnelKeyBlock(_ block: UInt32) -> String {
        String(tunnelKey(block << 8).dropLast(2))
    }


    /// Present while a deletion too large for one transaction is under way:
    /// no new reference to `target` may be written (docs/architecture.md).
    static func deletionMarker(of target: some CustomStringConvertible) -> String {
        deletionMarkers + target.description.lowercased()
    }

    static let deletionMarkers = root + "index/deleting/"

    public static let hosts = root + "hosts/"

    public static func hostAlive(_ host: HostID) -> String { hosts + host.description + "/alive" }

    /// Learned MAC entries (`<bridge>/<mac>` = port id) and ARP entries
    /// (`<router>/<ip>` = MAC), each under the lease of the host that learned it.
    public static let learnedMACs = root + "state/mac/"
    public static let learnedARP = root + "state/arp/"

    /// Armed live traces: agents watch them with the rest of `root`.
    public static let traceRequests = root + "trace/requests/"

    public static func traceRequest(_ id: LiveTraceID) -> String { traceRequests + id.description }

    /// Traced packets, outside `root` so that agents do not receive each
    /// other's results through their watch.
    public static let traceResults = "/hive/trace-results/v1/"

    public static func traceResults(of id: LiveTraceID) -> String { traceResults + id.description + "/" }
}

/// One referrer found in the reference index.
struct IndexedReferrer: Hashable {
    var kind: ObjectKind
    var id: String
    var field: String
    var cascade: Bool

    init?(key: String, value: [UInt8], target: String) {
        let prefix = TopologyKeys.referrers(of: target)
        guard key.hasPrefix(prefix) else { return nil }
        let parts = key.dropFirst(prefix.count).split(separator: "/", maxSplits: 2)
        guard parts.count == 3, let kind = ObjectKind(rawValue: String(parts[0])) else { return nil }
        self.kind = kind
        id = String(parts[1])
        field = String(parts[2])
        cascade = value == Array("cascade".utf8)
    }
}
