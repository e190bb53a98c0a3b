import Foundation

/// Commands in the root network namespace, the one this process lives in.
public enum RootNamespace {
    /// Runs `arguments` (executable first, found on PATH or in sbin) and
    /// returns its standard output. Blocks until it exits.
    ///
    /// - Throws: `CommandFailure` with the command, how it ended and its
    ///   standard error, when it is not installed, exits non-zero, is killed
    ///   or runs longer than `timeout`.
    @discardableResult
    public static func run(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> String {
        try CommandRunner.run(CommandRunner.resolved(arguments), timeout: timeout)
    }

    /// Starts a long-running command here (an agent, a server) without
    /// waiting; the caller stops it. Signals are unblocked in the child, so
    /// SIGTERM reaches it.
    public static func start(_ arguments: [String], standardOutput: FileHandle? = nil, standardError: FileHandle? = nil) throws -> Process {
        try CommandRunner.start(CommandRunner.resolved(arguments), standardOutput: standardOutput, standardError: standardError)
    }
}

/// Named network namespaces, as `ip netns` manages them (in /run/netns).
public enum NetworkNamespace {
    /// The names of every named namespace, as `ip netns list` shows them;
    /// empty when there are none or `ip` is not installed.
    public static func list() -> [String] {
        guard let output = try? RootNamespace.run(["ip", "netns", "list"]) else { return [] }
        // Lines read "NAME" or "NAME (id: N)".
        return output.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first.map(String.init)
        }
    }

    /// Whether a named namespace `name` exists.
    public static func exists(_ name: String) -> Bool {
        list().contains(name)
    }

    /// Runs a command inside namespace `name` (`ip netns exec NAME ...`) and
    /// returns its standard output. Blocks until it exits.
    ///
    /// - Throws: `CommandFailure` with the command, how it ended and its
    ///   standard error: when the namespace does not exist, the command is
    ///   not installed, exits non-zero, is killed or outlives `timeout`.
    @discardableResult
    public static func run(_ name: String, _ arguments: [String], timeout: Duration = .seconds(60)) throws -> String {
        try CommandRunner.run(command(in: name, arguments), timeout: timeout)
    }

    /// Starts a long-running command inside namespace `name` (a ping, a TCP
    /// server) and returns its `Process` without waiting; the caller stops
    /// it. Output without a handle is discarded. Deleting the namespace
    /// (`SandboxNetwork.destroy()`) kills it too.
    ///
    /// - Throws: `CommandFailure` when `ip` or the command is not installed
    ///   or cannot be started. A missing namespace shows later, as the
    ///   process exiting with status 1.
    public static func start(
        _ name: String, _ arguments: [String], standardOutput: FileHandle? = nil, standardError: FileHandle? = nil
    ) throws -> Process {
        try CommandRunner.start(command(in: name, arguments), standardOutput: standardOutput, standardError: standardError)
    }

    /// `ip netns exec NAME` and the command with its executable resolved
    /// here: `ip` would search a PATH that may lack sbin.
    static func command(in name: String, _ arguments: [String]) throws -> [String] {
        try CommandRunner.resolved(["ip", "netns", "exec", name]) + CommandRunner.resolved(arguments)
    }

    /// Creates namespace `name`.
    ///
    /// - Throws: `CommandFailure`, e.g. when it already exists.
    static func add(_ name: String) throws {
        try RootNamespace.run(["ip", "netns", "add", name])
    }

    /// Kills every process inside namespace `name`, then deletes it, so its
    /// interfaces go away now rather than when the last process exits. Does
    /// nothing when it does not exist; never throws.
    static func delete(_ name: String) {
        guard exists(name) else { return }
        // A name attached to our own namespace (`ip netns attach NAME 1`)
        // would list every process on the machine: unmount it, kill nothing.
        let pids = isOwnNamespace(name) ? "" : (try? RootNamespace.run(["ip", "netns", "pids", name])) ?? ""
        for line in pids.split(separator: "\n") {
            // A pid of 0 or below would signal a process group: never.
            if let pid = pid_t(line.trimmingCharacters(in: .whitespaces)), pid > 0 {
                kill(pid, SIGKILL)
            }
        }
        _ = try? RootNamespace.run(["ip", "netns", "delete", name])
    }

    /// Whether `name` refers to the namespace this process runs in.
    private static func isOwnNamespace(_ name: String) -> Bool {
        var own = stat()
        var named = stat()
        guard stat("/proc/self/ns/net", &own) == 0, stat("/var/run/netns/" + name, &named) == 0 else { return false }
        return own.st_dev == named.st_dev && own.st_ino == named.st_ino
    }
}
