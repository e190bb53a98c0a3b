import Foundation
import Testing
@testable import HiveStore

/// A bad record in the middle of the log is corruption, not a torn tail:
/// the store refuses to open, saying where; check says what a repair would
/// drop; repair cuts there and the store opens with the records before it.
@Suite("Embedded store: a damaged log")
struct DamagedLogTests {
    /// Writes ten keys (revisions 2-11), closes, and damages the fifth
    /// record's payload. Returns the damaged record's offset.
    func writeAndDamage(_ directory: String) async throws -> Int {
        let store = try EmbeddedStore(directory: directory)
        for index in 0..<10 { try await store.put("/k/\(index)", "\(index)") }
        await store.close()
        var (offsets, bytes) = try recordOffsets(directory)
        bytes[offsets[4] + 10] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/wal"))
        return offsets[4]
    }

    @Test func aCorruptRecordInTheMiddleRefusesToOpenNamingFileAndOffset() async throws {
        try await withTemporaryDirectory { directory in
            let offset = try await writeAndDamage(directory)
            #expect {
                _ = try EmbeddedStore(directory: directory)
            } throws: { error in
                let text = "\(error)"
                return error is DamagedLogError && text.contains(directory + "/wal") && text.contains("offset \(offset)")
                    && text.contains("hive store check")
            }
            // Nothing was cut: the log is as damaged as it was.
            let check = try EmbeddedStore.checkLog(directory: directory)
            #expect(check.damage == .corrupt)
            #expect(check.damageOffset == offset)
        }
    }

    @Test func checkSaysWhatRepairDropsAndRepairKeepsTheRecordsBeforeTheDamage() async throws {
        try await withTemporaryDirectory { directory in
            let offset = try await writeAndDamage(directory)
            let size = try FileManager.default.attributesOfItem(atPath: directory + "/wal")[.size] as! Int
            let check = try EmbeddedStore.checkLog(directory: directory)
            #expect(check.records == 4)
            #expect(check.revisions == 2...5)
            #expect(check.damage == .corrupt)
            #expect(check.reason == "a checksum mismatch")
            #expect(check.bytesDropped == size - offset)
            #expect(check.recordsAfterDamage == 5)
            #expect(check.revisionsAfterDamage == 7...11)
            #expect(check.description.contains("at offset \(offset)"))
            #expect(check.description.contains("revisions 7-11"))

            let repaired = try EmbeddedStore.repairLog(directory: directory)
            #expect(repaired == check)
            #expect(try EmbeddedStore.checkLog(directory: directory).damage == nil)
            let store = try EmbeddedStore(directory: directory)
            #expect(try await store.range(.prefix("/k/")).keyValues.map(\.text) == ["0", "1", "2", "3"])
            try await store.put("/k/after", "repair")
            await store.close()
            let reopened = try EmbeddedStore(directory: directory)
            #expect(try await reopened.get("/k/after")?.text == "repair")
            await reopened.close()
        }
    }

    @Test func aDamagedHeaderRefusesToOpenInsteadOfStartingAnEmptyLog() async throws {
        try await withTemporaryDirectory { clean in
            // Three whole records behind a damaged header.
            let store = try EmbeddedStore(directory: clean)
            for index in 0..<3 { try await store.put("/k/\(index)", "\(index)") }
            await store.close()
            let url = URL(fileURLWithPath: clean + "/wal")
            var bytes = try [UInt8](Data(contentsOf: url))
            bytes[2] ^= 0xFF
            try Data(bytes).write(to: url)
            #expect {
                _ = try EmbeddedStore(directory: clean)
            } throws: { error in
                error is DamagedLogError && "\(error)".contains("offset 0") && "\(error)".contains("not Hive's log header")
            }
            let check = try EmbeddedStore.checkLog(directory: clean)
            #expect(check.damage == .corrupt && check.damageOffset == 0 && check.recordsAfterDamage == 3, "\(check)")
            #expect(try [UInt8](Data(contentsOf: url)) == bytes, "checking changed nothing")
            // Repair empties it, saying so first; the store then starts afresh.
            #expect(try EmbeddedStore.repairLog(directory: clean) == check)
            let reopened = try EmbeddedStore(directory: clean)
            #expect(try await reopened.range(.prefix("/k/")).keyValues.isEmpty)
            await reopened.close()
        }
    }

    /// The offsets of the log's records, and the log's bytes.
    func recordOffsets(_ directory: String) throws -> (offsets: [Int], bytes: [UInt8]) {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/wal")))
        var offsets: [Int] = []
        var offset = StoreFiles.walMagic.count
        while offset < bytes.count {
            offsets.append(offset)
            offset += 8 + Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
        }
        return (offsets, bytes)
    }

    /// Writes `/k/0` ... in `count` records and closes.
    func write(_ count: Int, in directory: String) async throws {
        let store = try EmbeddedStore(directory: directory)
        for index in 0..<count { try await store.put("/k/\(index)", "value \(index)") }
        try await store.closeDurably()
    }

    /// Sets the length field of the record at `offset`.
    func setLength(_ length: UInt32, at offset: Int, in bytes: inout [UInt8]) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: length >> (8 * index)) }
    }

    @Test func aLengthPastTheEndIsATornTailOnlyWhenNothingWholeFollows() async throws {
        try await withTemporaryDirectory { directory in
            // Torn: the last append cut short, its length running past the end.
            try await write(5, in: directory)
            var (offsets, bytes) = try recordOffsets(directory)
            bytes.removeLast(6)
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/wal"))
            let torn = try EmbeddedStore.checkLog(directory: directory)
            #expect(torn.damage == .tornTail && torn.damageOffset == offsets[4] && torn.records == 4, "\(torn)")
            let store = try EmbeddedStore(directory: directory)
            #expect(try await store.range(.prefix("/k/")).keyValues.count == 4)
            try await store.closeDurably()
        }
        try await withTemporaryDirectory { directory in
            // Damage: the second record's length grown past the end (still a
            // plausible size) would swallow the records after it: not a torn tail.
            try await write(5, in: directory)
            var (offsets, bytes) = try recordOffsets(directory)
            setLength(UInt32(bytes.count), at: offsets[1], in: &bytes)
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/wal"))
            let check = try EmbeddedStore.checkLog(directory: directory)
            #expect(check.damage == .corrupt && check.damageOffset == offsets[1] && check.records == 1, "\(check)")
            #expect(check.reason.contains("whole record at offset \(offsets[2])"), "\(check)")
            #expect(check.recordsAfterDamage == 3 && check.revisionsAfterDamage == 4...6, "\(check)")
            #expect(throws: DamagedLogError.self) { try EmbeddedStore(directory: directory) }
        }
        try await withTemporaryDirectory { directory in
            // Damage: a length no record can have, even on the last record.
            try await write(3, in: directory)
            var (offsets, bytes) = try recordOffsets(directory)
            setLength(UInt32(LogRecord.maximumLength + 1), at: offsets[2], in: &bytes)
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/wal"))
            let check = try EmbeddedStore.checkLog(directory: directory)
            #expect(check.damage == .corrupt && check.damageOffset == offsets[2] && check.records == 2, "\(check)")
            #expect(check.reason.contains("more than any record has"), "\(check)")
            #expect(throws: DamagedLogError.self) { try EmbeddedStore(directory: directory) }
            #expect(try EmbeddedStore.repairLog(directory: directory).damage == .corrupt)
            let store = try EmbeddedStore(directory: directory)
            #expect(try await store.range(.prefix("/k/")).keyValues.count == 2)
            try await store.closeDurably()
        }
    }

    @Test func aRecordLargerThanTheLogTakesIsRefusedAndChangesNothing() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory)
            try await store.put("/k/small", "1")
            await #expect {
                try await store.put("/k/huge", String(repeating: "x", count: LogRecord.maximumLength))
            } throws: { error in
                "\(error)".contains("at most \(LogRecord.maximumLength) bytes")
            }
            #expect(try await store.get("/k/huge") == nil)
            try await store.put("/k/after", "2")
            try await store.closeDurably()
            let reopened = try EmbeddedStore(directory: directory)
            #expect(try await reopened.range(.prefix("/k/")).keyValues.map(\.text) == ["2", "1"])
            try await reopened.closeDurably()
        }
    }

    @Test func checkIsRefusedWhileTheStoreIsOpen() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory)
            #expect(throws: StoreFileError.self) { try EmbeddedStore.checkLog(directory: directory) }
            await store.close()
            #expect(try EmbeddedStore.checkLog(directory: directory).damage == nil)
        }
    }
}
