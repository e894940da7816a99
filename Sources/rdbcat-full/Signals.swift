import RDBCatCommand
import RDBKit
#if canImport(Glibc)
import Glibc
#endif

/// Takes SIGINT and SIGTERM on a thread of their own and calls `stop` at the first one; a second one ends the
/// process at once (exit status 128 + the signal), for a stop that waits on a target that does not answer.
/// Call it before any other thread starts (they inherit the blocked mask, so no other thread is interrupted).
func stopOnSignals(_ stop: @escaping @Sendable () -> Void) {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    pthread_sigmask(SIG_BLOCK, &set, nil)
    let waiter = startThread {
        var sig: Int32 = 0
        sigwait(&set, &sig)
        writeStderr("rdbcat: stopping (signal \(sig)): applying what was received (a second signal ends it at once)\n")
        stop()
        sigwait(&set, &sig)
        writeStderr("rdbcat: signal \(sig) again: ending at once; what was in flight may or may not have been applied\n")
        _exit(128 + sig)
    }
    _ = waiter
}
