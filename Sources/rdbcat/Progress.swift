#if canImport(Glibc)
import Glibc
#endif
import RDBKit

/// Writes a progress line to stderr (bytes read of total, keys/s) at most a few times a second.
final class ProgressReporter {
    let input: InputBuffer
    let total: Int?
    let start = ProgressReporter.now()
    var last = 0.0
    var keys = 0
    let enabled: Bool

    init(input: InputBuffer, total: Int?, enabled: Bool) {
        self.input = input
        self.total = total
        self.enabled = enabled
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    @inline(__always)
    func tick() {
        keys &+= 1
        if enabled && keys & 4095 == 0 { report(final: false) }
    }

    func report(final: Bool) {
        guard enabled else { return }
        let t = ProgressReporter.now()
        if !final && t - last < 0.25 { return }
        last = t
        let dt = max(t - start, 1e-6)
        let done = input.offset
        var line = "\r\(mb(done)) MB"
        if let total, total > 0 { line += " of \(mb(total)) MB (\(done * 100 / total)%)" }
        line += ", \(keys) keys, \(Int(Double(keys) / dt)) keys/s, \(Int(Double(done) / dt / 1e6)) MB/s"
        if final { line += "\n" }
        writeStderr(line)
    }

    func mb(_ n: Int) -> String { String(Double(n / 100_000) / 10) }
}

/// Forwards every event and ticks the progress reporter once per key.
struct ProgressVisitor<Inner: RDBVisitor>: RDBForwardingVisitor {
    var inner: Inner
    let progress: ProgressReporter

    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        progress.tick()
        return try inner.beginKey(key, info)
    }

    mutating func endFile(checksum: RDBChecksumStatus) throws {
        progress.report(final: true)
        try inner.endFile(checksum: checksum)
    }
}

/// Writes text to standard error, unbuffered.
func writeStderr(_ s: String) {
    var s = s
    s.withUTF8 { b in _ = Glibc.write(2, b.baseAddress, b.count) }
}
