#if canImport(Glibc)
import Glibc
#endif

/// The closure a new thread runs.
final class ThreadBody: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Starts a POSIX thread running `body`: the datapath's loop must not run
/// on the async runtime's few threads, and setns needs a thread of its own.
func startThread(_ body: @escaping () -> Void) throws -> pthread_t {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { raw in
        let body = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
        body.run()
        return nil
    }, context)
    guard result == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        throw SystemError("pthread_create", "for a datapath thread", code: result)
    }
    return thread
}

func joinThread(_ thread: pthread_t) {
    pthread_join(thread, nil)
}
