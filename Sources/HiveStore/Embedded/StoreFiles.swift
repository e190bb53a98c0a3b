#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The embedded store's files in its directory:
///
/// - `LOCK`: held with flock while a process has the store open.
/// - `snapshot`: every key and lease as of one revision, replaced atomically
///   (write `snapshot.tmp`, fsync, rename, fsync the directory).
/// - `wal`: the records after the snapshot. Each record is
///   `[length u32][crc32c u32][payload]`; a torn tail (a crash mid-append:
///   the last record incomplete or failing its checksum) is cut off at the
///   last whole record when the store opens; a bad record with more after
///   it is refused (`EmbeddedLogCheck`).
///
/// Not thread-safe: the store calls it under its mutex, except `sync()`.
final class StoreFiles: @unchecked Sendable {
    static let walMagic: [UInt8] = Array("HIVEWAL1".utf8)
    static let snapshotMagic: [UInt8] = Array("HIVESNP1".utf8)

    struct Snapshot {
        var revision: Revision
        var keyValues: [KeyValue]
        var leases: [Lease]
    }

    let directory: String
    private var lockDescriptor: Int32
    /// The open log; -1 once closed. Read by the sync thread, which tolerates
    /// EBADF after close.
    private(set) var walDescriptor: Int32
    private(set) var walSize: Int

    /// Opens (creating if needed) the store directory and takes its lock.
    init(directory: String) throws(StoreFileError) {
        self.directory = directory
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw StoreFileError(path: directory, operation: "create directory", code: errno)
        }
        let lockPath = directory + "/LOCK"
        lockDescriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockDescriptor >= 0 else { throw StoreFileError(path: lockPath, operation: "open", code: errno) }
        // A child being spawned by this process holds a copy of the lock's
        // descriptor until it execs (close-on-exec acts only then), so a
        // store closed and reopened while a process starts can find the lock
        // held for a moment: try for up to a second before giving up.
        var locked = flock(lockDescriptor, LOCK_EX | LOCK_NB) == 0
        for _ in 0..<100 where !locked && errno == EWOULDBLOCK {
            usleep(10_000)
            locked = flock(lockDescriptor, LOCK_EX | LOCK_NB) == 0
        }
        guard locked else {
            let code = errno
            close(lockDescriptor)
            throw StoreFileError(path: directory, operation: "lock (is another Hive process using this store?)", code: code)
        }
        walDescriptor = -1
        walSize = 0
    }

    deinit {
        closeFiles()
    }

    /// Closes the log and releases the directory lock; idempotent.
    func closeFiles() {
        if walDescriptor >= 0 {
            close(walDescriptor)
            walDescriptor = -1
        }
        if lockDescriptor >= 0 {
            close(lockDescriptor)
            lockDescriptor = -1
        }
    }

    // MARK: Reading at open

    func readSnapshot() throws(StoreFileError) -> Snapshot? {
        let path = directory + "/snapshot"
        guard let bytes = try readFile(path) else { return nil }
        guard bytes.count >= Self.snapshotMagic.count + 4, bytes.starts(with: Self.snapshotMagic) else {
            throw StoreFileError(path: path, operation: "read snapshot (bad header)", code: EINVAL)
        }
        let body = bytes[Self.snapshotMagic.count..<(bytes.count - 4)]
        var trailer = BinaryReader(bytes[(bytes.count - 4)...])
        guard let expected = try? trailer.readUInt32(), CRC32C.checksum(body) == expected else {
            throw StoreFileError(path: path, operation: "read snapshot (checksum mismatch)", code: EINVAL)
        }
        do {
            var reader = BinaryReader(body)
            let revision = try reader.readInt64()
            var keyValues: [KeyValue] = []
            for _ in 0..<(try reader.readUInt32()) {
                keyValues.append(KeyValue(
                    key: try reader.readString(), value: try reader.readBytes(),
                    createRevision: try reader.readInt64(), modRevision: try reader.readInt64(),
                    version: try reader.readInt64(), lease: try reader.readInt64()))
            }
            var leases: [Lease] = []
            for _ in 0..<(try reader.readUInt32()) {
                leases.append(Lease(id: try reader.readInt64(), ttl: try reader.readInt64()))
            }
            return Snapshot(revision: revision, keyValues: keyValues, leases: leases)
        } catch {
            throw StoreFileError(path: path, operation: "read snapshot (truncated)", code: EINVAL)
        }
    }

    /// Reads the log's whole records, cuts off a torn tail, and opens the log
    /// for appending. A bad record with more data after it is not cut:
    /// opening fails with `DamagedLogError` (see `EmbeddedLogCheck`).
    func openLog() throws -> [LogRecord] {
        let path = directory + "/wal"
        var records: [LogRecord] = []
        var validLength = Self.walMagic.count
        if let bytes = try readFile(path), let check = EmbeddedLogCheck.damagedHeader(bytes, path: path) {
            throw DamagedLogError(check: check, directory: directory)
        }
        if let bytes = try readFile(path), bytes.count >= Self.walMagic.count, bytes.starts(with: Self.walMagic) {
            let scan = EmbeddedLogCheck.scan(bytes, path: path)
            if scan.check.damage == .corrupt { throw DamagedLogError(check: scan.check, directory: directory) }
            records = scan.records
            validLength = scan.validLength
        }
        walDescriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard walDescriptor >= 0 else { throw StoreFileError(path: path, operation: "open", code: errno) }
        if validLength == Self.walMagic.count {
            // New, empty or headerless log: start it afresh.
            try truncateLog()
        } else {
            guard ftruncate(walDescriptor, off_t(validLength)) == 0 else {
                throw StoreFileError(path: path, operation: "truncate torn tail", code: errno)
            }
            lseek(walDescriptor, off_t(validLength), SEEK_SET)
            walSize = validLength
        }
        return records
    }

    /// `hive store check|repair`: reads the log under the directory's lock;
    /// with `repair`, cuts it at the first bad record and syncs the cut.
    static func inspectLog(directory: String, repair: Bool) throws -> EmbeddedLogCheck {
        var isDirectory: stat = stat()
        guard stat(directory, &isDirectory) == 0 else {
            throw StoreFileError(path: directory, operation: "open store directory", code: errno)
        }
        let files = try StoreFiles(directory: directory)
        defer { files.closeFiles() }
        let path = directory + "/wal"
        if let bytes = try files.readFile(path), let check = EmbeddedLogCheck.damagedHeader(bytes, path: path) {
            if repair {
                // Emptied: the store starts the log afresh when it opens.
                let descriptor = open(path, O_RDWR | O_CLOEXEC)
                guard descriptor >= 0 else { throw StoreFileError(path: path, operation: "open", code: errno) }
                defer { close(descriptor) }
                guard ftruncate(descriptor, 0) == 0 else { throw StoreFileError(path: path, operation: "cut at offset 0", code: errno) }
                guard fsync(descriptor) == 0 else { throw StoreFileError(path: path, operation: "fsync", code: errno) }
            }
            return check
        }
        guard let bytes = try files.readFile(path), bytes.count >= walMagic.count, bytes.starts(with: walMagic) else {
            return EmbeddedLogCheck(path: path, records: 0)
        }
        let scan = EmbeddedLogCheck.scan(bytes, path: path)
        if repair, scan.check.damage != nil {
            let descriptor = open(path, O_RDWR | O_CLOEXEC)
            guard descriptor >= 0 else { throw StoreFileError(path: path, operation: "open", code: errno) }
            defer { close(descriptor) }
            guard ftruncate(descriptor, off_t(scan.validLength)) == 0 else {
                throw StoreFileError(path: path, operation: "cut at offset \(scan.validLength)", code: errno)
            }
            guard fsync(descriptor) == 0 else { throw StoreFileError(path: path, operation: "fsync", code: errno) }
        }
        return scan.check
    }

    // MARK: Writing

    /// Appends one record (visible to a restarted process once this returns;
    /// durable across power loss after `sync()`).
    func append(_ record: LogRecord) throws(StoreFileError) {
        let payload = record.encoded()
        guard payload.count <= LogRecord.maximumLength else {
            throw StoreFileError(
                path: directory + "/wal",
                operation: "append of a \(payload.count)-byte record (the log takes records of at most \(LogRecord.maximumLength) bytes)",
                code: EFBIG)
        }
        var framed = BinaryWriter()
        framed.write(UInt32(payload.count))
        framed.write(CRC32C.checksum(payload))
        framed.bytes.append(contentsOf: payload)
        do {
            try writeAll(walDescriptor, framed.bytes)
        } catch {
            // Cut a partial record so the next append starts on a boundary.
            _ = ftruncate(walDescriptor, off_t(walSize))
            lseek(walDescriptor, off_t(walSize), SEEK_SET)
            throw StoreFileError(path: directory + "/wal", operation: "append", code: error.code)
        }
        walSize += framed.bytes.count
    }

    /// Cuts the log back to `offset` (the start of a record whose sync
    /// failed) and syncs the cut, so a restart does not replay what no one
    /// was told was written. Best effort: the store refuses every call after.
    func cutLog(at offset: Int) {
        guard walDescriptor >= 0, offset >= Self.walMagic.count, offset <= walSize else { return }
        if ftruncate(walDescriptor, off_t(offset)) == 0 {
            lseek(walDescriptor, off_t(offset), SEEK_SET)
            walSize = offset
            _ = fsync(walDescriptor)
        }
    }

    /// fdatasync of the log; called from the sync thread only.
    func sync() -> Int32 {
        let descriptor = walDescriptor
        guard descriptor >= 0 else { return EBADF }
        return fdatasync(descriptor) == 0 ? 0 : errno
    }

    /// Writes a snapshot atomically, then empties the log it replaces.
    func writeSnapshot(_ snapshot: Snapshot) throws(StoreFileError) {
        var writer = BinaryWriter()
        writer.write(snapshot.revision)
        writer.write(UInt32(snapshot.keyValues.count))
        for keyValue in snapshot.keyValues {
            writer.write(string: keyValue.key)
            writer.write(bytes: keyValue.value)
            writer.write(keyValue.createRevision)
            writer.write(keyValue.modRevision)
            writer.write(keyValue.version)
            writer.write(keyValue.lease)
        }
        writer.write(UInt32(snapshot.leases.count))
        for lease in snapshot.leases {
            writer.write(lease.id)
            writer.write(lease.ttl)
        }
        var file = BinaryWriter(bytes: Self.snapshotMagic)
        file.bytes.append(contentsOf: writer.bytes)
        file.write(CRC32C.checksum(writer.bytes))

        let temporary = directory + "/snapshot.tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StoreFileError(path: temporary, operation: "open", code: errno) }
        defer { close(descriptor) }
        do {
            try writeAll(descriptor, file.bytes)
        } catch {
            throw StoreFileError(path: temporary, operation: "write", code: error.code)
        }
        guard fsync(descriptor) == 0 else { throw StoreFileError(path: temporary, operation: "fsync", code: errno) }
        guard rename(temporary, directory + "/snapshot") == 0 else {
            throw StoreFileError(path: temporary, operation: "rename", code: errno)
        }
        syncDirectory()
        // A crash before this truncate replays records the snapshot already
        // holds; replay skips revisions at or below the snapshot's.
        try truncateLog()
    }

    private func truncateLog() throws(StoreFileError) {
        let path = directory + "/wal"
        guard ftruncate(walDescriptor, 0) == 0 else { throw StoreFileError(path: path, operation: "truncate", code: errno) }
        lseek(walDescriptor, 0, SEEK_SET)
        do {
            try writeAll(walDescriptor, Self.walMagic)
        } catch {
            throw StoreFileError(path: path, operation: "write header", code: error.code)
        }
        guard fsync(walDescriptor) == 0 else { throw StoreFileError(path: path, operation: "fsync", code: errno) }
        walSize = Self.walMagic.count
        syncDirectory()
    }

    private func syncDirectory() {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if descriptor >= 0 {
            _ = fsync(descriptor)
            close(descriptor)
        }
    }

    private struct WriteFailure: Error { var code: Int32 }

    private func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) throws(WriteFailure) {
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw WriteFailure(code: errno)
            }
            written += result
        }
    }

    func readFile(_ path: String) throws(StoreFileError) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return nil }
            throw StoreFileError(path: path, operation: "open", code: errno)
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw StoreFileError(path: path, operation: "read", code: errno)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }
}

/// A file operation of the embedded store failed.
public struct StoreFileError: Error, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var code: Int32

    public var description: String {
        "embedded store: \(operation) failed for \(path): \(String(cString: strerror(code)))"
    }
}
