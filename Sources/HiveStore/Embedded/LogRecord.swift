/// One durable change of the embedded store: the key changes of one revision
/// and the lease grants and revokes that went with it.
struct LogRecord: Equatable {
    /// The largest encoded record the log holds; an append of a larger one
    /// is refused. A length field above it can only be damage (`EmbeddedLogCheck`).
    /// etcd refuses requests over 1.5 MiB; Hive's largest writes (batched
    /// deletions) stay far below this.
    static let maximumLength = 64 << 20
    /// The smallest encoded record: a revision and three empty counts.
    static let minimumLength = 8 + 3 * 4

    enum Change: Equatable {
        case put(key: String, value: [UInt8], lease: LeaseID)
        case delete(key: String)
    }

    /// The revision the changes created; 0 when no key changed.
    var revision: Revision = 0
    var changes: [Change] = []
    var grantedLeases: [Lease] = []
    var revokedLeases: [LeaseID] = []

    func encoded() -> [UInt8] {
        var writer = BinaryWriter()
        writer.write(revision)
        writer.write(UInt32(changes.count))
        for change in changes {
            switch change {
            case .put(let key, let value, let lease):
                writer.write(UInt8(1))
                writer.write(string: key)
                writer.write(bytes: value)
                writer.write(lease)
            case .delete(let key):
                writer.write(UInt8(2))
                writer.write(string: key)
            }
        }
        writer.write(UInt32(grantedLeases.count))
        for lease in grantedLeases {
            writer.write(lease.id)
            writer.write(lease.ttl)
        }
        writer.write(UInt32(revokedLeases.count))
        for lease in revokedLeases { writer.write(lease) }
        return writer.bytes
    }

    init(revision: Revision = 0, changes: [Change] = [], grantedLeases: [Lease] = [], revokedLeases: [LeaseID] = []) {
        self.revision = revision
        self.changes = changes
        self.grantedLeases = grantedLeases
        self.revokedLeases = revokedLeases
    }

    init(decoding bytes: ArraySlice<UInt8>) throws(BinaryReader.Truncated) {
        var reader = BinaryReader(bytes)
        revision = try reader.readInt64()
        let changeCount = try reader.readUInt32()
        for _ in 0..<changeCount {
            switch try reader.readUInt8() {
            case 1:
                let key = try reader.readString()
                let value = try reader.readBytes()
                let lease = try reader.readInt64()
                changes.append(.put(key: key, value: value, lease: lease))
            case 2:
                changes.append(.delete(key: try reader.readString()))
            default:
                throw BinaryReader.Truncated()
            }
        }
        for _ in 0..<(try reader.readUInt32()) {
            grantedLeases.append(Lease(id: try reader.readInt64(), ttl: try reader.readInt64()))
        }
        for _ in 0..<(try reader.readUInt32()) {
            revokedLeases.append(try reader.readInt64())
        }
    }
}

/// Little-endian, length-prefixed encoding for log records and snapshots.
struct BinaryWriter {
    var bytes: [UInt8] = []

    mutating func write(_ value: UInt8) { bytes.append(value) }

    mutating func write(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: Int64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(bytes value: [UInt8]) {
        write(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func write(string value: String) { write(bytes: Array(value.utf8)) }
}

struct BinaryReader {
    /// The input ended early or held an impossible value.
    struct Truncated: Error {}

    private let bytes: ArraySlice<UInt8>
    private var offset: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        offset = bytes.startIndex
    }

    var isAtEnd: Bool { offset == bytes.endIndex }

    mutating func readUInt8() throws(Truncated) -> UInt8 {
        guard offset < bytes.endIndex else { throw Truncated() }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readUInt32() throws(Truncated) -> UInt32 {
        guard bytes.endIndex - offset >= 4 else { throw Truncated() }
        var value: UInt32 = 0
        for index in 0..<4 { value |= UInt32(bytes[offset + index]) << (8 * index) }
        offset += 4
        return value
    }

    mutating func readInt64() throws(Truncated) -> Int64 {
        guard bytes.endIndex - offset >= 8 else { throw Truncated() }
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[offset + index]) << (8 * index) }
        offset += 8
        return Int64(bitPattern: value)
    }

    mutating func readBytes() throws(Truncated) -> [UInt8] {
        let count = Int(try readUInt32())
        guard bytes.endIndex - offset >= count else { throw Truncated() }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func readString() throws(Truncated) -> String {
        String(decoding: try readBytes(), as: UTF8.self)
    }
}
