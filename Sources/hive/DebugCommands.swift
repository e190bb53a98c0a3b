import ArgumentParser
import HiveStore

#if canImport(Glibc)
import Glibc
#endif

/// Tools for Hive's own tests and for operators chasing a store problem.
struct Debug: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Low-level tools for testing and debugging Hive.",
        shouldDisplay: false,
        subcommands: [StoreWriter.self])

    /// Writes numbered keys to an embedded store and prints each write once
    /// it is acknowledged, so a test can kill the process at any moment and
    /// check that every acknowledged write survived.
    struct StoreWriter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "store-writer",
            abstract: "Write numbered keys to an embedded store, printing 'ack N' per acknowledged write.")

        @Option(help: "The embedded store's directory.")
        var directory: String

        @Option(help: "Stop after this many writes (0: until killed).")
        var count = 0

        @Option(help: "Snapshot threshold in bytes, to exercise snapshots while killed.")
        var snapshotThreshold = 64 << 10

        func run() async throws {
            let store = try EmbeddedStore(directory: directory, options: .init(snapshotThreshold: snapshotThreshold))
            var index = 0
            while count == 0 || index < count {
                let value = Array("value-\(index)".utf8)
                if index % 10 == 9 {
                    // Every tenth write is a two-key transaction: both or neither survive.
                    _ = try await store.transaction(Transaction(success: [
                        .put(key: "/w/\(index)", value: value, lease: 0),
                        .put(key: "/pair/\(index)", value: value, lease: 0),
                    ]))
                } else {
                    try await store.put("/w/\(index)", value: value)
                }
                print("ack \(index)")
                fflush(nil)  // flushes stdout; the test reads acknowledgements as they happen
                index += 1
            }
            await store.close()
        }
    }
}
