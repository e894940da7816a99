#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RDBKit

/// Output made of runs that can be formatted each on its own (a report of keys: a run per few thousand keys),
/// formatted on two cores and written in order: this thread formats the even runs straight into the output, a
/// helper thread the odd ones into buffers of its own (two, so that it formats the next one while one waits its
/// turn), handed to the output's target as they are when their turn comes.
enum OutputRuns {
    /// The helper's side: its two buffers, which run each holds (-1: free), the run it could not format (thrown
    /// when that run's turn comes; the helper stops there), and whether to stop.
    final class Shared: @unchecked Sendable {
        let monitor = Monitor()
        let buffers = [OutputBuffer(target: nil), OutputBuffer(target: nil)]
        var holds = [-1, -1]
        var failed: (run: Int, error: any Error)?
        var stopping = false
    }

    /// Writes runs `0..<count` to `out` in order, `format` writing run `r` into the buffer it is given (it may
    /// flush it). On one core (or not `onTwoCores`), or for a single run, all on this thread.
    static func write(runs count: Int, to out: OutputBuffer, onTwoCores: Bool = true,
                      _ format: @escaping (Int, OutputBuffer) throws -> Void) throws {
        func inOrder(from r: Int) throws {
            for r in r..<count { try format(r, out) }
        }
        guard count > 1, onTwoCores, availableCores() > 1 else { return try inOrder(from: 0) }
        let shared = Shared()
        let helper = startThread {
            var r = 1
            while r < count {
                let slot = (r >> 1) & 1
                let go = shared.monitor.withLock {
                    shared.monitor.wait { shared.holds[slot] == -1 || shared.stopping }
                    return !shared.stopping
                }
                guard go else { return }
                do {
                    try format(r, shared.buffers[slot])
                } catch {
                    shared.monitor.withLock { shared.failed = (r, error) }
                    shared.monitor.broadcast()
                    return
                }
                shared.monitor.withLock { shared.holds[slot] = r }
                shared.monitor.broadcast()
                r += 2
            }
        }
        guard let helper else { return try inOrder(from: 0) }
        defer {
            shared.monitor.withLock { shared.stopping = true }
            shared.monitor.broadcast()
            pthread_join(helper, nil)
        }
        for r in 0..<count {
            if r & 1 == 0 {
                try format(r, out)
                continue
            }
            let slot = (r >> 1) & 1
            let failed = shared.monitor.withLock {
                shared.monitor.wait { shared.holds[slot] == r || shared.failed?.run == r }
                return shared.failed?.run == r ? shared.failed?.error : nil
            }
            if let failed { throw failed }
            let b = shared.buffers[slot]
            try out.appendPassingThrough(b.bytes)
            b.reset()
            shared.monitor.withLock { shared.holds[slot] = -1 }
            shared.monitor.broadcast()
        }
    }
}
