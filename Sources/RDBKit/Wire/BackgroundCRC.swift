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
///
/// When the region is a memory-mapped file's window, the worker reports its progress to the mapping every
/// `InputBuffer.releaseStep` bytes, so that the pages both it and the decoder are done with are released
/// (see `MappedRegion` for when one of them is far ahead).
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
    /// The mapping `region` lies in (nil: not a mapped file), and the absolute offset of `region`'s first byte.
    let mapping: MappedRegion?
    let regionOffset: Int

    /// Starts checksumming `region`, which is the window of `input` when it is given (its pages are then
    /// released as the worker and the decoder move on).
    public init?(_ region: UnsafeRawBufferPointer, initial: UInt64, input: InputBuffer? = nil) {
        guard let b = region.baseAddress else { return nil }
        base = b
        count = region.count
        self.initial = initial
        mapping = input?.mapping
        regionOffset = input?.offset ?? 0
        checkpoints = .allocate(capacity: max(1, region.count / BackgroundCRC.chunk))
        mapping?.advance(.checksum, to: regionOffset)
        guard let t = startThread({ [self] in work() }) else {
            // deinit runs on this path too (every property is set) and frees the checkpoints.
            mapping?.advance(.checksum, to: .max)
            return nil
        }
        thread = t
        started = true
    }

    deinit { checkpoints.deallocate() }

    func work() {
        var crc = CRC64(initial)
        var i = 0
        let n = count / BackgroundCRC.chunk
        let releaseEvery = max(1, (mapping?.step.load(ordering: .relaxed) ?? InputBuffer.releaseStep) / BackgroundCRC.chunk)
        while i < n && !stop.load(ordering: .relaxed) {
            crc.update(UnsafeRawBufferPointer(start: base + i * BackgroundCRC.chunk, count: BackgroundCRC.chunk))
            checkpoints[i] = crc.value
            i += 1
            done.store(i, ordering: .releasing)
            if i % releaseEvery == 0 { mapping?.advance(.checksum, to: regionOffset + i * BackgroundCRC.chunk) }
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
        mapping?.advance(.checksum, to: .max)
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
        // Done reading: from now on only the decoder holds back the mapping's release.
        mapping?.advance(.checksum, to: .max)
        return crc.value
    }
}
