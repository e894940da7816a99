#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a stream on a thread of its own, up to `depth` chunks ahead of its reader: a zstd or gzip input is
/// then decompressed on another core while the decoder works through the window (for a compressed file the
/// decompression costs more than the decode itself). Memory: `depth` chunks. Bytes, their order and the errors
/// are the source's own: an error is thrown by the read that reaches it, after the bytes before it.
///
/// The source is read only by the worker thread once the stream is made; dropping the stream stops the worker
/// (it finishes the chunk it is reading) and waits for it.
public final class ReadAheadStream: ByteStream {
    /// What the worker and the reader share, under one lock.
    final class Shared: @unchecked Sendable {
        let chunk: Int
        let depth: Int
        let buffers: [UnsafeMutableRawPointer]
        var counts: [Int]
        /// Next slot to read from, how many slots are filled, next slot to fill.
        var head = 0
        var filled = 0
        var tail = 0
        /// The worker has stopped: the source ended (a filled slot of 0 bytes marks it) or threw `error`.
        var finished = false
        var error: (any Error)?
        var cancelled = false
        let lock: UnsafeMutablePointer<pthread_mutex_t>
        let changed: UnsafeMutablePointer<pthread_cond_t>

        init(chunk: Int, depth: Int) {
            self.chunk = chunk
            self.depth = depth
            buffers = (0..<depth).map { _ in UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64) }
            counts = Array(repeating: 0, count: depth)
            lock = .allocate(capacity: 1)
            changed = .allocate(capacity: 1)
            pthread_mutex_init(lock, nil)
            pthread_cond_init(changed, nil)
        }

        deinit {
            for b in buffers { b.deallocate() }
            pthread_cond_destroy(changed)
            pthread_mutex_destroy(lock)
            lock.deallocate()
            changed.deallocate()
        }

        /// The worker: fills free slots until the source ends, throws, or the reader goes away.
        func work<S: ByteStream>(_ source: S) {
            var source = source
            var sawEnd = false  // the source ended; its end marker is still to be queued
            while true {
                pthread_mutex_lock(lock)
                while filled == depth && !cancelled { pthread_cond_wait(changed, lock) }
                let slot = tail
                let stop = cancelled
                pthread_mutex_unlock(lock)
                if stop { return }
                // Fill the whole chunk (fewer hand-overs), or up to the end of the source.
                var n = 0
                var failure: (any Error)?
                while n < chunk && !sawEnd {
                    do {
                        let got = try source.read(into: UnsafeMutableRawBufferPointer(start: buffers[slot] + n, count: chunk - n))
                        if got == 0 { break }
                        n += got
                    } catch {
                        failure = error
                        break
                    }
                }
                let ended = n < chunk
                if ended { sawEnd = true }
                pthread_mutex_lock(lock)
                if n > 0 || failure == nil {
                    counts[slot] = n
                    tail = (tail + 1) % depth
                    filled += 1
                }
                if ended && n > 0 && failure == nil && filled < depth {
                    // The end of the source, marked by an empty slot after the last bytes (when there is room;
                    // otherwise the next turn of the loop adds it).
                    counts[tail] = 0
                    tail = (tail + 1) % depth
                    filled += 1
                    finished = true
                }
                if failure != nil || (ended && n == 0) {
                    error = failure
                    finished = true
                }
                pthread_cond_signal(changed)
                let done = finished
                pthread_mutex_unlock(lock)
                if done { return }
            }
        }
    }

    let shared: Shared
    var thread: pthread_t?
    /// Bytes of the head slot already handed out (the reader's own: only it reads the head slot).
    var offsetInHead = 0
    var atEnd = false

    /// Starts reading `source` ahead; nil when no thread can be started (read the source directly then).
    public init?<S: ByteStream>(_ source: S, chunk: Int = 1 << 20, depth: Int = 3) {
        let shared = Shared(chunk: max(chunk, 4096), depth: max(depth, 2))
        self.shared = shared
        // The worker takes the source; this stream only hands out what it has read.
        let box = UnsafeSendableBox(source)
        guard let t = startThread({ shared.work(box.value) }) else { return nil }
        thread = t
    }

    deinit {
        pthread_mutex_lock(shared.lock)
        shared.cancelled = true
        pthread_cond_broadcast(shared.changed)
        pthread_mutex_unlock(shared.lock)
        if let thread { pthread_join(thread, nil) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if atEnd || buffer.count == 0 { return 0 }
        let s = shared
        pthread_mutex_lock(s.lock)
        while s.filled == 0 && !s.finished { pthread_cond_wait(s.changed, s.lock) }
        if s.filled == 0 {
            // Finished with nothing left: the source threw (after every byte before the error was handed out),
            // or it ended.
            let e = s.error
            pthread_mutex_unlock(s.lock)
            atEnd = true
            if let e { throw e }
            return 0
        }
        let slot = s.head
        let count = s.counts[slot]
        pthread_mutex_unlock(s.lock)
        if count == 0 {
            atEnd = true
            return 0
        }
        let n = min(buffer.count, count - offsetInHead)
        buffer.baseAddress!.copyMemory(from: s.buffers[slot] + offsetInHead, byteCount: n)
        offsetInHead += n
        if offsetInHead == count {
            offsetInHead = 0
            pthread_mutex_lock(s.lock)
            s.head = (s.head + 1) % s.depth
            s.filled -= 1
            pthread_cond_signal(s.changed)
            pthread_mutex_unlock(s.lock)
        }
        return n
    }

    /// Ready when a chunk is waiting (or the worker has stopped).
    public var hasReadyBytes: Bool {
        pthread_mutex_lock(shared.lock)
        defer { pthread_mutex_unlock(shared.lock) }
        return shared.filled > 0 || shared.finished
    }
}

/// Moves a value that is not `Sendable` to the one thread that uses it from then on.
struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
