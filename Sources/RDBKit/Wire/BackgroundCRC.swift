#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Computes the CRC64 of a mapped region on another thread while the decoder reads it.
///
/// The decoder only learns where the RDB ends (the EOF opcode) when it gets there, and an AOF tail may
/// follow, so the worker records the running CRC at every `chunk` boundary; `finish(at:)` stops the worker,
/// takes the last checkpoint at or below the end and checksums the remaining bytes (less than one chunk).
/// This takes the checksum off the decoder's critical path on a machine with a second core.
public final class BackgroundCRC: @unchecked Sendable {
    /// Regions smaller than this are checksummed inline (thread start-up is not worth it).
    public static let minimumSize = 8 << 20
    static let chunk = 1 << 20

    let base: UnsafeRawPointer
    let count: Int
    let initial: UInt64
    /// checkpoints[i] = CRC of bytes [0, (i + 1) * chunk).
    let checkpoints: UnsafeMutablePointer<UInt64>
    let done = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
    var thread = pthread_t()
    var started = false

    public init?(_ region: UnsafeRawBufferPointer, initial: UInt64) {
        guard let b = region.baseAddress else { return nil }
        base = b
        count = region.count
        self.initial = initial
        checkpoints = .allocate(capacity: max(1, region.count / BackgroundCRC.chunk))
        let unmanaged = Unmanaged.passRetained(self)
        let rc = pthread_create(&thread, nil, { arg in
            let me = Unmanaged<BackgroundCRC>.fromOpaque(arg!).takeRetainedValue()
            me.work()
            return nil
        }, unmanaged.toOpaque())
        if rc != 0 {
            unmanaged.release()
            checkpoints.deallocate()
            return nil
        }
        started = true
    }

    deinit { checkpoints.deallocate() }

    func work() {
        var crc = CRC64(initial)
        var i = 0
        let n = count / BackgroundCRC.chunk
        while i < n && !stop.load(ordering: .relaxed) {
            crc.update(UnsafeRawBufferPointer(start: base + i * BackgroundCRC.chunk, count: BackgroundCRC.chunk))
            checkpoints[i] = crc.value
            i += 1
            done.store(i, ordering: .releasing)
        }
    }

    func join() {
        if started {
            pthread_join(thread, nil)
            started = false
        }
    }

    /// Stops the worker without using its result.
    public func cancel() {
        stop.store(true, ordering: .relaxed)
        join()
    }

    /// The CRC of the region's bytes [0, end), continuing from `initial`.
    public func finish(at end: Int) -> UInt64 {
        let wanted = end / BackgroundCRC.chunk
        // Let the worker run up to the chunk we need, then stop it.
        while done.load(ordering: .acquiring) < wanted { sched_yield() }
        stop.store(true, ordering: .relaxed)
        join()
        let k = min(wanted, done.load(ordering: .acquiring))
        var crc = CRC64(k > 0 ? checkpoints[k - 1] : initial)
        let from = k * BackgroundCRC.chunk
        crc.update(UnsafeRawBufferPointer(start: base + from, count: end - from))
        return crc.value
    }
}
