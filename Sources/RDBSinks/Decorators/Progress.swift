import RDBKit

/// Reports decoding progress (bytes read of total, keys/s) at most a few times a second, as one line
/// handed to `write` (a terminal line: it starts with `\r`; the final one ends with a newline).
public final class ProgressReporter {
    public let input: InputBuffer
    public let total: Int?
    public let enabled: Bool
    let write: (String) -> Void
    let start = ContinuousClock.now
    var last: ContinuousClock.Instant?
    @exclusivity(unchecked) @usableFromInline var keyCount = 0
    /// Keys counted so far.
    public var keys: Int { keyCount }

    public init(input: InputBuffer, total: Int?, enabled: Bool, write: @escaping (String) -> Void) {
        self.input = input
        self.total = total
        self.enabled = enabled
        self.write = write
    }

    /// Bytes done when they are not the input's position (a parallel decode: the end of the last chunk
    /// cut).
    var position = 0

    /// A parallel decode cut a chunk: `keys` more keys, done up to the absolute `offset`.
    public func advance(to offset: Int, keys: Int) {
        position = max(position, offset)
        keyCount &+= keys
        report(final: false)
    }

    @inlinable
    public func tick() {
        keyCount &+= 1
        if enabled && keyCount & 4095 == 0 { report(final: false) }
    }

    public func report(final: Bool) {
        guard enabled else { return }
        let t = ContinuousClock.now
        if !final, let last, t - last < .milliseconds(250) { return }
        last = t
        let elapsed = (t - start).components
        let dt = max(Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18, 1e-6)
        let done = max(input.offset, input.releasedOffset, position)
        var line = "\r\(mb(done)) MB"
        if let total, total > 0 { line += " of \(mb(total)) MB (\(done * 100 / total)%)" }
        line += ", \(keys) keys, \(Int(Double(keys) / dt)) keys/s, \(Int(Double(done) / dt / 1e6)) MB/s"
        if final { line += "\n" }
        write(line)
    }

    func mb(_ n: Int) -> String { String(Double(n / 100_000) / 10) }
}

/// Forwards every event and ticks the progress reporter once per key.
public struct ProgressVisitor<Inner: RDBVisitor>: RDBForwardingVisitor {
    public var inner: Inner
    public let progress: ProgressReporter

    public init(inner: Inner, progress: ProgressReporter) {
        self.inner = inner
        self.progress = progress
    }

    @inlinable
    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        progress.tick()
        return try inner.beginKey(key, info)
    }

    @inlinable public var stringDelivery: RDBStringDelivery { inner.stringDelivery }
    @inlinable
    public mutating func stringKey(_ key: RDBString, _ info: RDBKeyInfo, value: RDBString, raw: UnsafeRawBufferPointer) throws {
        progress.tick()
        try inner.stringKey(key, info, value: value, raw: raw)
    }

    public mutating func endFile(checksum: RDBChecksumStatus) throws {
        progress.report(final: true)
        try inner.endFile(checksum: checksum)
    }
}
