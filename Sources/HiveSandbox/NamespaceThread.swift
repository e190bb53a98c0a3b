import CHiveSystem
import Foundation

/// Work done inside a network namespace by a thread of this process, for
/// sockets: a socket keeps the namespace it was made in, whichever thread
/// uses it later. `setns` changes only the calling thread, so the work runs
/// on a fresh thread that enters the namespace and ends when it is done;
/// the caller's thread never moves.
public enum NamespaceThread {
    /// Runs `body` on a new thread inside namespace `name` (`/run/netns/NAME`,
    /// as `ip netns` makes them; nil: this process's namespace) and returns
    /// its result. Blocks until the thread ends.
    ///
    /// - Throws: `SocketFailure` when the namespace cannot be entered, or
    ///   what `body` throws.
    public static func run<T>(in name: String?, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let outcome = Outcome<T>()
        let thread = Thread {
            do {
                try enter(name)
                outcome.result = .success(try body())
            } catch {
                outcome.result = .failure(error)
            }
            outcome.done.signal()
        }
        thread.name = "hive-netns-\(name ?? "self")"
        thread.start()
        outcome.done.wait()
        return try outcome.result!.get()
    }

    /// Moves the calling thread into namespace `name`; nil stays. Only for
    /// threads that are the caller's own and end in that namespace.
    static func enter(_ name: String?) throws {
        guard let name else { return }
        let entered = hive_enter_network_namespace("/run/netns/" + name)
        if entered < 0 {
            throw SocketFailure(operation: "enter network namespace", subject: name, code: -entered)
        }
    }

    /// Written by the thread before it signals `done`, read after.
    private final class Outcome<T>: @unchecked Sendable {
        var result: Result<T, any Error>?
        let done = DispatchSemaphore(value: 0)
    }
}

/// A socket call that failed: what was being done, to what, and the errno.
public struct SocketFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// "bind", "connect to", "enter network namespace".
    public var operation: String
    /// "203.0.113.10:80 in namespace hive-internet".
    public var subject: String
    /// The errno value.
    public var code: Int32

    public init(operation: String, subject: String, code: Int32) {
        self.operation = operation
        self.subject = subject
        self.code = code
    }

    /// The failure with the current `errno`.
    static func current(_ operation: String, _ subject: String) -> SocketFailure {
        SocketFailure(operation: operation, subject: subject, code: errno)
    }

    /// "cannot bind 203.0.113.10:80 in namespace hive-internet: Address already in use (errno 98)".
    public var description: String {
        "cannot \(operation) \(subject): \(String(cString: strerror(code))) (errno \(code))"
    }
}
