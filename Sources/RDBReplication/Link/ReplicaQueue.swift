#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RDBKit

/// How a segment of the replication (one snapshot and the stream after it, or a stream continued from a
/// checkpoint) starts.
public struct SegmentStart: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// `+FULLRESYNC`: an RDB snapshot, then the stream from `offset`.
        case full
        /// `+CONTINUE` on the first connection (a checkpoint): the stream from `offset`.
        case continued
    }
    public var kind: Kind
    public var replid: String
    public var offset: Int64
}

/// Why a segment ended.
public enum SegmentEnd: Sendable, Equatable {
    /// Stopped on request (or after the snapshot, for a full copy only).
    case stopped
    /// The source started over with a new snapshot (`+FULLRESYNC` after a reconnect).
    case resync
    /// The connection was lost inside the snapshot; a new one comes.
    case broken(String)
    /// The link gave up (the source is unreachable, refused, or the protocol broke).
    case failed(String)
    /// The source refuses `PSYNC` (disabled or renamed): no replication is possible.
    case psyncRefused(String)
}

/// The bytes between the source's connection (the event loop appends) and the decoder (the decoding
/// thread reads through `ReplicaStream`), kept in order. The source is never held up: what the decoder has
/// not taken yet stays in memory up to `memoryLimit`, and beyond it goes to a spool file (unlinked at
/// creation, so it never outlives the process), bounded only by the disk.
public final class ReplicaQueue: @unchecked Sendable {
    enum Item {
        case begin(SegmentStart)
        /// Bytes in memory and the unix ms at which they arrived.
        case data([UInt8], arrival: Int64)
        /// `count` bytes in the spool file (read in order), and when they arrived.
        case spooled(Int, arrival: Int64)
        /// The command stream starts at this input position with the source's offset `offset`.
        case streamStart(Int64)
        case end(SegmentEnd)
    }

    let memoryLimit: Int
    let spoolDirectory: String
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    // Under the mutex.
    private var items: [Item] = []
    private var head = 0
    /// Offset into the first item (`data` / `spooled`) already read.
    private var headUsed = 0
    private var memoryBytes = 0
    private var spoolFD: Int32 = -1
    private var spoolWrite = 0
    private var spoolRead = 0
    /// Bytes written to the spool in all (for the report), and the most held there at once.
    public private(set) var spooledTotal = 0
    public private(set) var spoolPeak = 0
    private var spoolError: String?

    public init(memoryLimit: Int = 64 << 20, spoolDirectory: String = "/tmp") {
        self.memoryLimit = memoryLimit
        self.spoolDirectory = spoolDirectory
        pthread_mutex_init(&mutex, nil)
        // Timed waits on the monotonic clock (Linux): a step of the wall clock neither stretches nor cuts one.
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if os(Linux)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(&cond, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        if spoolFD >= 0 { close(spoolFD) }
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    private func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }

    private func push(_ item: Item) {
        items.append(item)
        pthread_cond_broadcast(&cond)
    }

    // MARK: the source's side (event loop)

    func begin(_ s: SegmentStart) { withLock { push(.begin(s)) } }
    func streamStart(_ offset: Int64) { withLock { push(.streamStart(offset)) } }
    func end(_ e: SegmentEnd) { withLock { push(.end(e)) } }

    /// Appends bytes (the event loop); an error (a full disk) is returned once, then everything is refused.
    @discardableResult
    func append(_ bytes: UnsafeRawBufferPointer, arrival: Int64) -> String? {
        guard !bytes.isEmpty else { return nil }
        return withLock {
            if let e = spoolError { return e }
            if memoryBytes + bytes.count <= memoryLimit {
                if case .data(var a, let t)? = items.last, items.count > head + 1, a.count < 64 << 10, arrival - t < 5 {
                    // Small reads close together: one item (what is partly read stays untouched: not the head).
                    items.removeLast()
                    a.append(contentsOf: bytes)
                    items.append(.data(a, arrival: t))
                    pthread_cond_broadcast(&cond)
                } else {
                    push(.data(Array(bytes), arrival: arrival))
                }
                memoryBytes += bytes.count
                return nil
            }
            if let e = spool(bytes) {
                spoolError = e
                push(.end(.failed(e)))
                return e
            }
            if case .spooled(let n, let t)? = items.last, items.count > head + 1, arrival - t < 5 {
                items.removeLast()
                items.append(.spooled(n + bytes.count, arrival: t))
                pthread_cond_broadcast(&cond)
            } else {
                push(.spooled(bytes.count, arrival: arrival))
            }
            return nil
        }
    }

    private func spool(_ bytes: UnsafeRawBufferPointer) -> String? {
        if spoolFD < 0 {
            var template = Array((spoolDirectory + "/rdbcat-sync-spool-XXXXXX").utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            if fd < 0 { return "cannot create a spool file in \(spoolDirectory): \(String(cString: strerror(errno)))" }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
            spoolFD = fd
        }
        var done = 0
        while done < bytes.count {
            let n = pwrite(spoolFD, bytes.baseAddress! + done, bytes.count - done, off_t(spoolWrite + done))
            if n < 0 {
                if errno == EINTR { continue }
                return "cannot write the spool file in \(spoolDirectory) (the snapshot arrives faster than the target takes it): \(String(cString: strerror(errno)))"
            }
            done += n
        }
        spoolWrite += bytes.count
        spooledTotal += bytes.count
        spoolPeak = max(spoolPeak, spoolWrite - spoolRead)
        return nil
    }

    // MARK: the decoder's side

    /// What the reader found at the head of the queue.
    enum Taken {
        case bytes(Int, arrival: Int64)
        case begin(SegmentStart)
        case streamStart(Int64)
        case end(SegmentEnd)
        case empty
    }

    /// Takes the next item, copying up to `buffer.count` bytes of a data item into `buffer`; waits up to
    /// `timeout` seconds for one.
    func take(into buffer: UnsafeMutableRawBufferPointer, timeout: Double) throws -> Taken {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if head >= items.count {
            var ts = timespec()
            #if os(Linux)
            clock_gettime(CLOCK_MONOTONIC, &ts)
            #else
            clock_gettime(CLOCK_REALTIME, &ts)
            #endif
            let ns = Int(ts.tv_nsec) + Int(timeout * 1e9)
            ts.tv_sec += ns / 1_000_000_000
            ts.tv_nsec = ns % 1_000_000_000
            while head >= items.count {
                if pthread_cond_timedwait(&cond, &mutex, &ts) == ETIMEDOUT { break }
            }
            if head >= items.count { return .empty }
        }
        switch items[head] {
        case .begin(let s):
            pop()
            return .begin(s)
        case .streamStart(let o):
            pop()
            return .streamStart(o)
        case .end(let e):
            pop()
            return .end(e)
        case .data(let a, let t):
            let n = min(buffer.count, a.count - headUsed)
            a.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + headUsed, byteCount: n) }
            headUsed += n
            if headUsed == a.count {
                memoryBytes -= a.count
                pop()
            }
            return .bytes(n, arrival: t)
        case .spooled(let count, let t):
            let want = min(buffer.count, count - headUsed)
            var got = 0
            while got < want {
                let n = pread(spoolFD, buffer.baseAddress! + got, want - got, off_t(spoolRead + got))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    throw RDBError(.io, offset: 0, "cannot read the spool file back: \(n < 0 ? String(cString: strerror(errno)) : "it is shorter than written")")
                }
                got += n
            }
            spoolRead += got
            headUsed += got
            if headUsed == count { pop() }
            if spoolRead == spoolWrite {
                // Everything spooled has been read: start the file over (gives the disk space back).
                spoolRead = 0
                spoolWrite = 0
                _ = ftruncate(spoolFD, 0)
            }
            return .bytes(got, arrival: t)
        }
    }

    private func pop() {
        head += 1
        headUsed = 0
        if head > 1024 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }

    /// Whether something waits to be taken.
    var hasItems: Bool { withLock { head < items.count } }

    /// Bytes waiting in memory and in the spool file.
    public var pending: (memory: Int, spooled: Int) {
        withLock { (memoryBytes, spoolWrite - spoolRead) }
    }
}
