import Foundation

/// A command that did not succeed: what was run, how it ended, and what it
/// printed on standard error.
public struct CommandFailure: Error, Sendable, CustomStringConvertible {
    /// How the command ended.
    public enum Outcome: Sendable, Hashable {
        /// It ran and exited with this non-zero status.
        case exited(Int32)
        /// It was killed by this signal.
        case killedBySignal(Int32)
        /// It ran longer than allowed and was killed.
        case timedOut(after: Duration)
        /// It could not be started; the text says why (e.g. not installed).
        case couldNotStart(String)
    }

    /// The full command line as run, executable first (an absolute path).
    public var command: [String]
    public var outcome: Outcome
    /// What the command printed on standard error, trimmed.
    public var standardError: String

    public init(command: [String], outcome: Outcome, standardError: String) {
        self.command = command
        self.outcome = outcome
        self.standardError = standardError
    }

    /// The exit status when the command ran and exited, otherwise nil.
    public var exitStatus: Int32? {
        if case .exited(let status) = outcome { return status }
        return nil
    }

    /// "`/usr/sbin/ip netns add hive-vm1` exited with status 1: Cannot create
    /// namespace file ...: File exists".
    public var description: String {
        let shown = "`\(CommandRunner.display(command))`"
        let how: String
        switch outcome {
        case .exited(let status): how = "\(shown) exited with status \(status)"
        case .killedBySignal(let signal): how = "\(shown) was killed by signal \(signal)"
        case .timedOut(let limit): how = "\(shown) did not finish within \(limit) and was killed"
        case .couldNotStart(let reason): how = "\(shown) could not be started: \(reason)"
        }
        return standardError.isEmpty ? how : "\(how): \(standardError)"
    }
}

/// Runs executables directly (no shell), so arguments never need quoting.
enum CommandRunner {
    /// Directories searched after `$PATH`: root's tools live in sbin, which a
    /// non-login shell's PATH often lacks.
    static let fallbackDirectories = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

    /// The absolute path of an executable named without a slash, or nil when
    /// no searched directory has it. A name with a slash is returned as is.
    static func locate(_ name: String) -> String? {
        if name.contains("/") { return name }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + fallbackDirectories
        for directory in directories where !directory.isEmpty {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Where `locate` looked, for error messages.
    static var searchedDescription: String {
        "PATH (\(ProcessInfo.processInfo.environment["PATH"] ?? "unset")) or \(fallbackDirectories.joined(separator: ", "))"
    }

    /// `arguments` with its first element replaced by the executable's
    /// absolute path; throws `couldNotStart` naming the package to install.
    static func resolved(_ arguments: [String]) throws -> [String] {
        guard let name = arguments.first else {
            throw CommandFailure(command: arguments, outcome: .couldNotStart("no command given"), standardError: "")
        }
        guard let path = locate(name) else {
            var reason = "`\(name)` was not found in \(searchedDescription)"
            if let package = SandboxTools.debianPackages[name] {
                reason += "; install it with `apt-get install \(package)`"
            }
            throw CommandFailure(command: arguments, outcome: .couldNotStart(reason), standardError: "")
        }
        return [path] + arguments.dropFirst()
    }

    /// Runs `command` (executable first, as an absolute path) to completion
    /// and returns its standard output. Throws `CommandFailure` when it cannot
    /// start, exits non-zero, is killed, or outlives `timeout`.
    ///
    /// Output goes to temporary files rather than pipes: nothing has to drain
    /// two pipes at once, and a daemon that inherits them cannot keep us waiting.
    static func run(_ command: [String], timeout: Duration) throws -> String {
        let files = FileManager.default
        let stem = files.temporaryDirectory.appendingPathComponent("hive-sandbox-\(UUID().uuidString)")
        let outputURL = stem.appendingPathExtension("out")
        let errorURL = stem.appendingPathExtension("err")
        guard files.createFile(atPath: outputURL.path, contents: nil),
            files.createFile(atPath: errorURL.path, contents: nil)
        else {
            throw CommandFailure(
                command: command, outcome: .couldNotStart("cannot create output files in \(files.temporaryDirectory.path)"),
                standardError: "")
        }
        defer {
            try? files.removeItem(at: outputURL)
            try? files.removeItem(at: errorURL)
        }
        let output = try FileHandle(forWritingTo: outputURL)
        let errors = try FileHandle(forWritingTo: errorURL)
        defer {
            try? output.close()
            try? errors.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = errors
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try launch(process)
        } catch {
            throw CommandFailure(command: command, outcome: .couldNotStart("\(error)"), standardError: "")
        }
        if exited.wait(timeout: .now() + dispatchInterval(timeout)) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            exited.wait()
            throw CommandFailure(command: command, outcome: .timedOut(after: timeout), standardError: text(errorURL))
        }
        process.waitUntilExit()
        let status = process.terminationStatus
        if process.terminationReason == .uncaughtSignal {
            throw CommandFailure(command: command, outcome: .killedBySignal(status), standardError: text(errorURL))
        }
        guard status == 0 else {
            throw CommandFailure(command: command, outcome: .exited(status), standardError: text(errorURL))
        }
        return (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
    }

    /// Starts `command` (executable first, as an absolute path) and returns
    /// without waiting. Output that no handle is given for is discarded.
    static func start(_ command: [String], standardOutput: FileHandle?, standardError: FileHandle?) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = standardOutput ?? FileHandle.nullDevice
        process.standardError = standardError ?? FileHandle.nullDevice
        do {
            try launch(process)
        } catch {
            throw CommandFailure(command: command, outcome: .couldNotStart("\(error)"), standardError: "")
        }
        return process
    }

    /// Starts `process` with no signals blocked. Foundation passes the
    /// calling thread's signal mask on to the child (swift-corelibs-foundation
    /// issue 4772), and Dispatch and Swift concurrency threads block nearly
    /// all signals: the child would ignore SIGTERM and `Process.terminate()`.
    private static func launch(_ process: Process) throws {
        var unblocked = sigset_t()
        var previous = sigset_t()
        sigemptyset(&unblocked)
        pthread_sigmask(SIG_SETMASK, &unblocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
    }

    /// The command as a person would type it, single-quoting odd arguments.
    static func display(_ command: [String]) -> String {
        command.map { argument in
            let plain = !argument.isEmpty && argument.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=@,+".contains($0) }
            return plain ? argument : "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }

    private static func text(_ url: URL) -> String {
        let contents = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return contents.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func dispatchInterval(_ duration: Duration) -> DispatchTimeInterval {
        let (seconds, attoseconds) = duration.components
        // Capped at a day, so the multiplication cannot overflow Int.
        let cappedSeconds = min(max(seconds, 0), 86_400)
        return .nanoseconds(Int(cappedSeconds) * 1_000_000_000 + Int(max(attoseconds, 0) / 1_000_000_000))
    }
}
