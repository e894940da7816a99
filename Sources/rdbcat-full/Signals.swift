import RDBCatCommand
import RDBKit
#if canImport(Glibc)
import Glibc
#endif

/// Takes SIGINT and SIGTERM on a thread of their own and calls `stop` at the first one. Call it before
/// any other thread starts (they inherit the blocked mask, so no other thread is interrupted).
func stopOnSignals(_ stop: @escaping @Sendable () -> Void) {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    pthread_sigmask(SIG_BLOCK, &set, nil)
    let waiter = startThread {
        var sig: Int32 = 0
        sigwait(&set, &sig)
        writeStderr("rdbcat: stopping (signal \(sig)): applying what was received\n")
        stop()
    }
    _ = waiter
}
