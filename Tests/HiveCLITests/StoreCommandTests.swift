import Foundation
import Testing

/// `hive store check|repair` on a damaged log, as an operator runs them.
@Suite("hive store check and repair")
struct StoreCommandTests {
    @Test func checkNamesTheDamageAndRepairCutsThereOnlyWhenConfirmed() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hive-store-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let dataDir = directory.appendingPathComponent("store").path
        let seeded = try await runHive(["topology", "demo", "--data-dir", dataDir])
        try #require(seeded.succeeded, "\(seeded)")

        // Damage the payload of the log's third record: records follow it.
        let wal = URL(fileURLWithPath: dataDir + "/wal")
        var bytes = try [UInt8](Data(contentsOf: wal))
        var offsets: [Int] = []
        var offset = 8  // the log's header
        while offset < bytes.count {
            offsets.append(offset)
            offset += 8 + (Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24)
        }
        try #require(offsets.count > 4, "the demo topology writes several records")
        let damaged = offsets[2]
        bytes[damaged + 12] ^= 0xFF
        try Data(bytes).write(to: wal)

        // The store refuses to open and points at check.
        let refused = try await runHive(["topology", "show", "--data-dir", dataDir])
        #expect(!refused.succeeded && refused.stderr.contains("hive store check"), "\(refused)")

        let check = try await runHive(["store", "check", "--data-dir", dataDir])
        #expect(check.status == 1, "\(check)")
        #expect(check.stdout.contains("\(dataDir)/wal: 2 whole records"), "\(check)")
        #expect(check.stdout.contains("corrupt record at offset \(damaged): a checksum mismatch"), "\(check)")
        #expect(check.stdout.contains("drops \(bytes.count - damaged) bytes from offset \(damaged)"), "\(check)")
        #expect(check.stdout.contains("\(offsets.count - 3) whole records after it"), "\(check)")

        let unconfirmed = try await runHive(["store", "repair", "--data-dir", dataDir])
        #expect(unconfirmed.status == 1 && unconfirmed.stdout.contains("run again with --yes"), "\(unconfirmed)")
        #expect(try [UInt8](Data(contentsOf: wal)) == bytes, "nothing is cut without --yes")

        let repaired = try await runHive(["store", "repair", "--data-dir", dataDir, "--yes"])
        #expect(repaired.succeeded && repaired.stdout.contains("cut \(dataDir)/wal at offset \(damaged)"), "\(repaired)")
        #expect(try Data(contentsOf: wal).count == damaged)

        let clean = try await runHive(["store", "check", "--data-dir", dataDir])
        #expect(clean.succeeded && clean.stdout.contains("no damage"), "\(clean)")
        let opened = try await runHive(["topology", "show", "--data-dir", dataDir])
        #expect(opened.succeeded, "the store opens with the records before the damage: \(opened)")
    }
}
