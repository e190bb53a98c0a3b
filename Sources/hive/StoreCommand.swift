import ArgumentParser
import HiveStore

/// `hive store check|repair`: the embedded store's log, read offline.
struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Check or repair the embedded store's files (with no Hive process using them).",
        subcommands: [Check.self, Repair.self])

    struct Directory: ParsableArguments {
        @Option(name: .customLong("data-dir"), help: "Embedded store directory.")
        var dataDirectory: String
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read the log; say what it holds, where it is damaged and what `repair` would drop. Changes nothing.",
            discussion: "Exits with status 1 if the log is damaged.")
        @OptionGroup var directory: Directory

        func run() throws {
            let check = try EmbeddedStore.checkLog(directory: directory.dataDirectory)
            print(check)
            if check.damage != nil { throw ExitCode(1) }
        }
    }

    struct Repair: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cut the log at its first bad record, dropping it and everything after it.",
            discussion: """
                Prints what it drops (as `check` does); cuts only with --yes. Back the directory up first.

                Example:
                  hive store repair --data-dir /var/lib/hive/store          # what it would drop
                  hive store repair --data-dir /var/lib/hive/store --yes    # cut there
                """)
        @OptionGroup var directory: Directory
        @Flag(help: "Cut the log; without it, repair only says what it would drop and exits with status 1.")
        var yes = false

        func run() throws {
            let check = try EmbeddedStore.checkLog(directory: directory.dataDirectory)
            print(check)
            guard check.damage != nil else { return }
            guard yes else {
                print("nothing cut: run again with --yes to cut \(check.path) at offset \(check.damageOffset)")
                throw ExitCode(1)
            }
            try EmbeddedStore.repairLog(directory: directory.dataDirectory)
            print("cut \(check.path) at offset \(check.damageOffset)")
        }
    }
}
