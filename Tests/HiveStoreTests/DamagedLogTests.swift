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
        let url = URL(fileURLWithPath: directory + "/wal")
        var bytes = try [UInt8](Data(contentsOf: url))
        var offset = StoreFiles.walMagic.count
        for _ in 0..<4 {
            let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
            offset += 8 + length
        }
        bytes[offset + 10] ^= 0xFF
        try Data(bytes).write(to: url)
        return offset
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

    @Test func checkIsRefusedWhileTheStoreIsOpen() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(directory: directory)
            #expect(throws: StoreFileError.self) { try EmbeddedStore.checkLog(directory: directory) }
            await store.close()
            #expect(try EmbeddedStore.checkLog(directory: directory).damage == nil)
        }
    }
}
