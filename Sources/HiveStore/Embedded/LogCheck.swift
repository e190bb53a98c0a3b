#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the embedded store's log holds and where, if anywhere, it is
/// damaged.
///
/// The log is appended one framed record at a time (length, checksum,
/// payload; `StoreFiles.append`), so a crash mid-append can leave only its
/// last record incomplete: a prefix of one frame, with nothing after it.
/// That is a torn tail, cut when the store opens:
/// - fewer than 8 bytes of a record header;
/// - a record whose length runs past the end of the file, provided the
///   length is one a record can have (at most `LogRecord.maximumLength`)
///   and no whole record (a frame whose checksum matches and whose payload
///   decodes) starts anywhere in the bytes after its header: a torn append
///   is the last thing written, so nothing whole can follow it;
/// - a record that fits in the file but fails its checksum or does not
///   decode, and ends exactly at the end of the file.
/// Everything else is corruption: a bad record with more data after it, a
/// length above `LogRecord.maximumLength` (no writer made it: a damaged
/// length field), or a length past the end with a whole record inside the
/// bytes it claims (a damaged length that would silently swallow the
/// records after it). The store refuses to open, and `hive store repair`
/// cuts the log there after saying what that drops.
public struct EmbeddedLogCheck: Sendable, Equatable, CustomStringConvertible {
    public enum Damage: String, Sendable, Equatable {
        /// The last record is incomplete or bad and nothing follows it.
        case tornTail = "torn tail"
        /// A bad record with more data after it.
        case corrupt = "corrupt record"
    }

    public var path: String
    /// Whole records before the damage (or in the whole log).
    public var records: Int
    /// The revisions those records carry, if any changed keys.
    public var revisions: ClosedRange<Revision>?
    public var damage: Damage?
    /// Where the first bad record starts, and what is wrong with it.
    public var damageOffset: Int = 0
    public var reason: String = ""
    /// Bytes from the damage to the end of the log: what a cut drops.
    public var bytesDropped: Int = 0
    /// Records after the damaged one that still read whole (a cut drops them too), and their revisions.
    public var recordsAfterDamage: Int = 0
    public var revisionsAfterDamage: ClosedRange<Revision>?

    public var description: String {
        let kept = "\(records) whole record\(records == 1 ? "" : "s")" + (revisions.map { " (revisions \($0.lowerBound)-\($0.upperBound))" } ?? "")
        guard let damage else { return "\(path): \(kept), no damage" }
        var text = "\(path): \(kept), then a \(damage.rawValue) at offset \(damageOffset): \(reason)"
        text += "; a repair keeps those \(records) records and drops \(bytesDropped) bytes from offset \(damageOffset)"
        if damage == .corrupt {
            text += ": the damaged record and \(recordsAfterDamage) whole record\(recordsAfterDamage == 1 ? "" : "s") after it"
            if let lost = revisionsAfterDamage { text += " (revisions \(lost.lowerBound)-\(lost.upperBound))" }
        }
        return text
    }

    /// A log whose first bytes are not Hive's header (a new log cut short
    /// while its header was written, a prefix of it, is not damaged): the
    /// whole file is in question. A repair empties it.
    static func damagedHeader(_ bytes: [UInt8], path: String) -> EmbeddedLogCheck? {
        let magic = StoreFiles.walMagic
        if bytes.starts(with: magic) || (bytes.count < magic.count && magic.starts(with: bytes)) { return nil }
        var check = EmbeddedLogCheck(path: path, records: 0)
        check.mark(.corrupt, at: 0, "the first \(magic.count) bytes are not Hive's log header", total: bytes.count)
        check.countRecords(in: bytes, from: magic.count)
        return check
    }

    /// Reads a log's bytes (starting with its magic).
    static func scan(_ bytes: [UInt8], path: String) -> (check: EmbeddedLogCheck, records: [LogRecord], validLength: Int) {
        var check = EmbeddedLogCheck(path: path, records: 0)
        var records: [LogRecord] = []
        var offset = StoreFiles.walMagic.count
        while offset < bytes.count {
            let remaining = bytes.count - offset
            guard remaining >= 8 else {
                check.mark(.tornTail, at: offset, "an incomplete record header (\(remaining) bytes)", total: bytes.count)
                break
            }
            let (length, checksum) = header(bytes, at: offset)
            guard length <= LogRecord.maximumLength else {
                check.mark(.corrupt, at: offset, "a record length of \(length) bytes, more than any record has (at most \(LogRecord.maximumLength))",
                           total: bytes.count)
                if let next = firstWholeRecord(in: bytes, from: offset + 8) { check.countRecords(in: bytes, from: next) }
                break
            }
            guard remaining - 8 >= length else {
                if let next = firstWholeRecord(in: bytes, from: offset + 8) {
                    check.mark(.corrupt, at: offset, """
                        a record of \(length) bytes with only \(remaining - 8) in the file, and a whole record at offset \(next) \
                        inside what its length claims: the length is damaged, not the last append torn
                        """, total: bytes.count)
                    check.countRecords(in: bytes, from: next)
                } else {
                    check.mark(.tornTail, at: offset, "a record of \(length) bytes with only \(remaining - 8) in the file", total: bytes.count)
                }
                break
            }
            guard let record = record(bytes, at: offset, length: length, checksum: checksum) else {
                let end = offset + 8 + length
                let reason = CRC32C.checksum(bytes[(offset + 8)..<end]) == checksum ? "an unreadable record" : "a checksum mismatch"
                check.mark(end == bytes.count ? .tornTail : .corrupt, at: offset, reason, total: bytes.count)
                if end < bytes.count { check.countRecords(in: bytes, from: end) }
                break
            }
            records.append(record)
            check.records += 1
            if record.revision > 0 { check.revisions = (check.revisions?.lowerBound ?? record.revision)...record.revision }
            offset += 8 + length
        }
        return (check, records, check.damage == nil ? bytes.count : check.damageOffset)
    }

    private mutating func mark(_ damage: Damage, at offset: Int, _ reason: String, total: Int) {
        self.damage = damage
        damageOffset = offset
        self.reason = reason
        bytesDropped = total - offset
    }

    /// Counts the whole records from `offset` on, as far as they read.
    private mutating func countRecords(in bytes: [UInt8], from start: Int) {
        var offset = start
        while bytes.count - offset >= 8 {
            let (length, checksum) = Self.header(bytes, at: offset)
            guard bytes.count - offset - 8 >= length,
                  let record = Self.record(bytes, at: offset, length: length, checksum: checksum) else { return }
            recordsAfterDamage += 1
            if record.revision > 0 {
                revisionsAfterDamage = (revisionsAfterDamage?.lowerBound ?? record.revision)...record.revision
            }
            offset += 8 + length
        }
    }

    /// The offset of the first whole record (a frame whose checksum matches
    /// and whose payload decodes) starting at or after `start`, trying every
    /// byte. Runs only on a damaged log, over what follows the damage.
    /// - Complexity: O(n) header reads; a checksum only where a length fits,
    ///   which after a torn append means within its few bytes.
    private static func firstWholeRecord(in bytes: [UInt8], from start: Int) -> Int? {
        var offset = start
        while bytes.count - offset >= 8 + LogRecord.minimumLength {
            let (length, checksum) = header(bytes, at: offset)
            if length >= LogRecord.minimumLength, length <= min(LogRecord.maximumLength, bytes.count - offset - 8),
               record(bytes, at: offset, length: length, checksum: checksum) != nil {
                return offset
            }
            offset += 1
        }
        return nil
    }

    private static func header(_ bytes: [UInt8], at offset: Int) -> (length: Int, checksum: UInt32) {
        var reader = BinaryReader(bytes[offset..<offset + 8])
        return (Int((try? reader.readUInt32()) ?? 0), (try? reader.readUInt32()) ?? 0)
    }

    private static func record(_ bytes: [UInt8], at offset: Int, length: Int, checksum: UInt32) -> LogRecord? {
        let payload = bytes[(offset + 8)..<(offset + 8 + length)]
        guard CRC32C.checksum(payload) == checksum else { return nil }
        return try? LogRecord(decoding: payload)
    }
}

/// The log has a bad record with more data after it: opening would drop
/// that data, so the store refuses.
public struct DamagedLogError: Error, CustomStringConvertible {
    public var check: EmbeddedLogCheck
    public var directory: String

    public var description: String {
        "embedded store: the log \(check.path) is damaged at offset \(check.damageOffset) (\(check.reason)),"
            + " with \(check.bytesDropped) bytes from there on (\(check.recordsAfterDamage) whole records after the damaged one);"
            + " refusing to open rather than drop them. `hive store check --data-dir \(directory)` says what"
            + " `hive store repair --data-dir \(directory)` would drop; restore the directory from a backup instead if that is too much."
    }
}

extension EmbeddedStore {
    /// Reads the log of the store in `directory` (which no process may have
    /// open) and says what it holds and where it is damaged. Changes nothing.
    public static func checkLog(directory: String) throws -> EmbeddedLogCheck {
        try StoreFiles.inspectLog(directory: directory, repair: false)
    }

    /// Cuts the log at its first bad record, if any, dropping what
    /// `checkLog` reports; returns that report.
    @discardableResult
    public static func repairLog(directory: String) throws -> EmbeddedLogCheck {
        try StoreFiles.inspectLog(directory: directory, repair: true)
    }
}
