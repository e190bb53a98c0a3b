import Foundation

/// Runs a test body that blocks (pings, sockets with timeouts, sleeps) off
/// the few threads Swift concurrency shares with every other test running
/// meanwhile: on a serial queue of its own, as the same task (so the test's
/// expectations are still its own).
func onOwnThread(_ body: @Sendable () throws -> Void) async throws {
    try await withTaskExecutorPreference(BlockingExecutor()) {
        try body()
    }
}

/// A task executor on a private dispatch queue, whose threads are not the
/// cooperative pool's.
final class BlockingExecutor: TaskExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "hive.tests.blocking")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Runs blocking work (a process to completion) off the cooperative pool and returns its result.
func blocking<T: Sendable>(_ body: @Sendable () throws -> T) async throws -> T {
    try await withTaskExecutorPreference(BlockingExecutor()) {
        try body()
    }
}
