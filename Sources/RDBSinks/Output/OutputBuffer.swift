#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RDBKit

/// Where an `OutputBuffer` sends its bytes.
public protocol OutputTarget: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// Writes to a file descriptor (stdout, a file, a socket), retrying short writes.
public final class FileDescriptorTarget: OutputTarget, @unchecked Sendable {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }

    public static let standardOutput = FileDescriptorTarget(fd: 1)

    /// Opens (creates or truncates) a file for writing.
    public static func create(path: String) throws -> FileDescriptorTarget {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw RDBError(.io, offset: 0, "cannot create: \(String(cString: strerror(errno)))", file: path) }
        return FileDescriptorTarget(fd: fd)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var p = bytes.baseAddress
        var n = bytes.count
        while n > 0 {
            let w = Glibc.write(fd, p, n)
            if w < 0 {
                if errno == EINTR { continue }
                throw RDBError(.io, offset: 0, "write failed: \(String(cString: strerror(errno)))")
            }
            p = p! + w
            n -= w
        }
    }
}

/// Collects everything in memory (tests, and callers that want the bytes).
public final class MemoryTarget: OutputTarget {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public func write(_ b: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: b) }
    public var string: String { String(decoding: bytes, as: UTF8.self) }
}

/// One growable byte buffer that sinks append to, flushed to its target in large chunks.
///
/// No per-element system calls and no Foundation string building: sinks append raw bytes, digits and
/// escaped text, and the buffer is written out once it passes `flushThreshold`.
///
/// Keys and the rollback horizon: writers `commit()` at the end of each key and flush between keys with
/// `flushIfNeeded()`; within a key they call `flushWithinKeyIfNeeded()` at command or element boundaries,
/// which writes the key's output so far once it passes `keyChunkThreshold`, so that one huge key costs a
/// bounded buffer rather than its whole rendered size. After an error, `rollback()` drops a key whose output to
/// its last boundary is under `keyChunkThreshold` whole, and keeps a larger one's whole commands or elements,
/// whether or not they were written out yet (`keepsPartOfKey`: the same on one thread and on several, with or
/// without a target). Set `keepsWholeKeys` when a key must be droppable whole (`rdbcat --salvage`).
public final class OutputBuffer {
    @exclusivity(unchecked) @usableFromInline var storage: UnsafeMutableRawPointer
    @exclusivity(unchecked) @usableFromInline var capacity: Int
    @exclusivity(unchecked) @usableFromInline var count = 0
    public let target: OutputTarget?
    @exclusivity(unchecked) public var flushThreshold: Int
    /// Bytes handed to the target so far.
    @exclusivity(unchecked) public private(set) var flushedBytes = 0

    /// Bytes of the unfinished key's output (from its start, or since it was last written out) past which
    /// `flushWithinKeyIfNeeded()` writes out what is pending.
    public var keyChunkThreshold: Int {
        didSet { updateKeyFlushLimit() }
    }

    /// Keep each key's output in memory until the key is committed, so that `rollback()` drops a failed key
    /// whole (no flushes within a key). For `rdbcat --salvage`, where a key found corrupt half-way is left
    /// out entirely, and for callers that take each whole key out of the buffer. The cost: a key takes its
    /// whole rendered size in memory (a list of 4M short elements is about 130 MB of RESP).
    public var keepsWholeKeys = false {
        didSet { updateKeyFlushLimit() }
    }

    /// `keyChunkThreshold`, or `Int.max` when keys stay whole: one compare per `flushWithinKeyIfNeeded()`.
    @exclusivity(unchecked) @usableFromInline var keyFlushLimit = Int.max

    /// Whether a `rollback()` now leaves part of the key in progress in the output: part of it was written already
    /// (`flushWithinKeyIfNeeded()`), or, unless keys are kept whole, its output up to its last whole command or
    /// element is `keyChunkThreshold` bytes or more. The two come to the same: a buffer with a target writes a key's
    /// output out from the first boundary where it reaches `keyChunkThreshold` (counted from the key's start, not
    /// from what the buffer held before it), so whether part of a key that fails stays in the output depends on
    /// the key alone, not on where the flushes fell, nor on the thread that decoded it (a chunk's buffer, which
    /// has no target, keeps that part too, as one thread would have written it).
    public var keepsPartOfKey: Bool { partOfKeyWrittenElsewhere || keepsOwnPartOfKey }
    var keepsOwnPartOfKey: Bool {
        partialKeyFlushed || (!keepsWholeKeys && wholeEnd &- committed >= keyChunkThreshold)
    }
    @exclusivity(unchecked) @usableFromInline var partialKeyFlushed = false
    /// Output written to this buffer's target by another buffer (a chunk decoded on another thread) ended with
    /// part of a key (that buffer's `keepsPartOfKey`): `keepsPartOfKey` says so (`rollback()` is not affected).
    public func notePartOfKeyWrittenElsewhere() { partOfKeyWrittenElsewhere = true }
    var partOfKeyWrittenElsewhere = false

    /// A buffer flushing to `target`; without a target it only accumulates (see `bytes`). A key larger than
    /// `keyChunkThreshold` is written out in parts unless `keepsWholeKeys` is set.
    /// (The default `keyChunkThreshold` keeps the buffer of a large key within 2 MiB: each fresh MiB of memory
    /// a run touches costs ~0.5 ms in a VM, and up to 3 ms where the host took back the guest's free pages.)
    public init(target: OutputTarget?, flushThreshold: Int = 1 << 18, keyChunkThreshold: Int = 1 << 20) {
        self.target = target
        self.flushThreshold = flushThreshold
        self.keyChunkThreshold = keyChunkThreshold
        capacity = max(flushThreshold * 2, 4096)
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        updateKeyFlushLimit()
    }

    func updateKeyFlushLimit() {
        keyFlushLimit = target == nil || keepsWholeKeys ? Int.max : max(1, keyChunkThreshold)
    }

    deinit { storage.deallocate() }

    /// Bytes appended and not yet flushed.
    @inlinable public var pendingCount: Int { count }

    /// The unflushed bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: count) }

    /// Total bytes written through this buffer (flushed and pending).
    @inlinable public var totalBytes: Int { flushedBytes + count }

    @inlinable
    public func reserve(_ n: Int) {
        if _slowPath(capacity - count < n) { grow(n) }
    }

    @usableFromInline @inline(never)
    func grow(_ n: Int) {
        var newCap = capacity * 2
        while newCap - count < n { newCap *= 2 }
        let p = UnsafeMutableRawPointer.allocate(byteCount: newCap, alignment: 16)
        p.copyMemory(from: storage, byteCount: count)
        storage.deallocate()
        storage = p
        capacity = newCap
    }

    @inlinable
    public func append(_ b: UInt8) {
        reserve(1)
        storage.storeBytes(of: b, toByteOffset: count, as: UInt8.self)
        count &+= 1
    }

    @inlinable
    public func append(_ b: UnsafeRawBufferPointer) {
        guard let base = b.baseAddress, b.count > 0 else { return }
        reserve(b.count)
        OutputBuffer.copy(storage + count, base, b.count)
        count &+= b.count
    }

    /// Copies `n` bytes: up to 64 inline with two overlapping loads and stores, up to 256 in blocks of 32 (no
    /// call: most keys, members, fields and small values are short), longer ones with `memcpy`. Reads and
    /// writes only `[0, n)`. (Values of 33–64 bytes through `memmove` were an eighth of `restore` of small
    /// strings; of 65–256 bytes, another tenth.)
    @inlinable @inline(__always)
    static func copy(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ n: Int) {
        if n >= 16 {
            if n > 32 {
                if n > 64 {
                    if n > 256 {
                        dst.copyMemory(from: src, byteCount: n)
                        return
                    }
                    // Blocks of 32 from the start and from the end (overlapping in the middle). Not a loop: the
                    // optimizer turns a copy loop back into a call to memcpy.
                    @inline(__always) func block(_ at: Int) {
                        dst.storeBytes(of: src.loadUnaligned(fromByteOffset: at, as: SIMD32<UInt8>.self), toByteOffset: at, as: SIMD32<UInt8>.self)
                    }
                    block(0)
                    block(32)
                    if n > 128 {
                        block(64)
                        block(96)
                        block(n &- 128)
                        block(n &- 96)
                    }
                    block(n &- 64)
                    block(n &- 32)
                    return
                }
                let a = src.loadUnaligned(as: SIMD32<UInt8>.self)
                let b = src.loadUnaligned(fromByteOffset: n &- 32, as: SIMD32<UInt8>.self)
                dst.storeBytes(of: a, as: SIMD32<UInt8>.self)
                dst.storeBytes(of: b, toByteOffset: n &- 32, as: SIMD32<UInt8>.self)
                return
            }
            let a = src.loadUnaligned(as: SIMD16<UInt8>.self)
            let b = src.loadUnaligned(fromByteOffset: n &- 16, as: SIMD16<UInt8>.self)
            dst.storeBytes(of: a, as: SIMD16<UInt8>.self)
            dst.storeBytes(of: b, toByteOffset: n &- 16, as: SIMD16<UInt8>.self)
        } else if n >= 8 {
            let a = src.loadUnaligned(as: UInt64.self)
            let b = src.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
            dst.storeBytes(of: a, as: UInt64.self)
            dst.storeBytes(of: b, toByteOffset: n &- 8, as: UInt64.self)
        } else if n >= 4 {
            let a = src.loadUnaligned(as: UInt32.self)
            let b = src.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)
            dst.storeBytes(of: a, as: UInt32.self)
            dst.storeBytes(of: b, toByteOffset: n &- 4, as: UInt32.self)
        } else if n > 0 {
            // 1-3 bytes: first, middle and last (they overlap for n < 3).
            let a = src.load(as: UInt8.self)
            let m = src.load(fromByteOffset: n &>> 1, as: UInt8.self)
            let z = src.load(fromByteOffset: n &- 1, as: UInt8.self)
            dst.storeBytes(of: a, as: UInt8.self)
            dst.storeBytes(of: m, toByteOffset: n &>> 1, as: UInt8.self)
            dst.storeBytes(of: z, toByteOffset: n &- 1, as: UInt8.self)
        }
    }

    @inlinable
    public func append(_ s: StaticString) {
        append(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    @_disfavoredOverload
    public func append(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    public func append(_ a: [UInt8]) {
        a.withUnsafeBytes { append($0) }
    }

    /// Appends the bytes of a string (integers as decimal text).
    @inlinable
    public func append(_ s: RDBString) {
        if s.isInteger { append(decimal: s.integer) } else { append(s.bytes) }
    }

    @inlinable
    public func append(decimal v: Int) { append(decimal: Int64(v)) }

    @inlinable
    public func append(unsigned v: UInt64) {
        reserve(20)
        count &+= DecimalFormatter.write(unsigned: v, into: storage + count)
    }

    /// Flushes when past the threshold. Call between records.
    @inlinable
    public func flushIfNeeded() throws {
        if count >= flushThreshold { try flush() }
    }

    /// Hands everything pending to the target (no-op without one).
    public func flush() throws {
        guard let target, count > 0 else { return }
        try handOff(to: target)
    }

    /// Hands the pending bytes after the first `skip` to `other`, as `flush` does to `target` (a chunk decoded
    /// on another thread has a buffer without a target: its output goes to the real one on its turn).
    public func handOff(to other: OutputTarget, skipping skip: Int = 0) throws {
        let from = min(skip, count)
        if count > from { try other.write(UnsafeRawBufferPointer(start: storage + from, count: count - from)) }
        flushedBytes += count
        count = 0
        committed = 0
        wholeEnd = 0
    }

    /// Appends two machine words as they are in memory (an index kept beside other output, read back with
    /// `words`).
    @inlinable @inline(__always)
    public func append(word a: Int, _ b: Int) {
        reserve(16)
        (storage + count).storeBytes(of: a, as: Int.self)
        (storage + count + 8).storeBytes(of: b, as: Int.self)
        count &+= 16
    }

    /// What `append(word:_:)` wrote, as words.
    public var words: UnsafeBufferPointer<Int> {
        UnsafeBufferPointer(start: storage.assumingMemoryBound(to: Int.self), count: count / 8)
    }

    /// Empties the buffer and starts its counts over (`totalBytes` 0), for a new run of output.
    public func reset() {
        count = 0
        committed = 0
        wholeEnd = 0
        flushedBytes = 0
        partialKeyFlushed = false
        partOfKeyWrittenElsewhere = false
    }

    /// Within a key, at a command or element boundary: writes out what is pending once the key's output (from
    /// its start, or since it was last written out) passes `keyChunkThreshold` (never when `keepsWholeKeys` is set
    /// or without a target). The bytes are the same as when the whole key is flushed at once; only `rollback()`
    /// can no longer take back the part written. The boundary is noted (`wholeEnd`) whether or not the buffer is
    /// flushed.
    @inlinable
    public func flushWithinKeyIfNeeded() throws {
        wholeEnd = count
        if _slowPath(count &- committed >= keyFlushLimit) { try flushPartialKey() }
    }

    /// The last boundary within the key in progress (`flushWithinKeyIfNeeded`), where `rollback()` cuts a key
    /// part of which is already written: the output then ends with the key's whole commands (or elements)
    /// written before the error, wherever the flushes fell (they fall elsewhere on several threads).
    @exclusivity(unchecked) @usableFromInline var wholeEnd = 0

    /// A boundary within the key in progress at `offset` of the pending bytes (output copied from another
    /// buffer, with the boundary it noted).
    public func noteBoundaryWithinKey(at offset: Int) { wholeEnd = min(offset, count) }

    /// The pending bytes up to the last boundary noted within the key in progress.
    public var bytesToLastBoundary: Int { wholeEnd }

    @usableFromInline @inline(never)
    func flushPartialKey() throws {
        if count > committed { partialKeyFlushed = true }
        try flush()
    }

    /// Whether `appendWithinKey` hands `n` bytes to the target directly: when the pending bytes with them
    /// pass `keyChunkThreshold` (never when `keepsWholeKeys` is set or without a target).
    @inlinable
    public func writesThrough(_ n: Int) -> Bool { n >= keyFlushLimit - count }

    /// Appends a large piece of a key's output (a RESTORE payload), or, when `writesThrough(b.count)`,
    /// flushes the pending bytes and hands `b` to the target as it is, without a copy in the buffer.
    public func appendWithinKey(_ b: UnsafeRawBufferPointer) throws {
        guard writesThrough(b.count), let target else { return append(b) }
        try flushPartialKey()
        try target.write(b)
        flushedBytes += b.count
        partialKeyFlushed = true
    }

    /// Appends output made elsewhere (whole keys): with a target, what is pending and then `b` are handed to
    /// it as they are, without a copy in the buffer.
    public func appendPassingThrough(_ b: UnsafeRawBufferPointer) throws {
        guard let target else {
            append(b)
            commit()
            return
        }
        try flush()
        if b.count > 0 { try target.write(b) }
        flushedBytes += b.count
    }

    @exclusivity(unchecked) @usableFromInline var committed = 0

    /// Marks everything appended so far as complete (a whole key): `rollback` returns here.
    @inlinable
    public func commit() {
        committed = count
        partialKeyFlushed = false
    }

    /// Drops what was appended since the last `commit` (a partly written key after an error), as far as it
    /// is still pending (see `keepsWholeKeys`); when part of the key stays (`keepsPartOfKey`), drops what
    /// follows its last whole command or element (`flushWithinKeyIfNeeded`).
    public func rollback() { count = min(keepsOwnPartOfKey ? wholeEnd : committed, count) }

    /// Drops pending bytes after `length` (used to take back a partly written key).
    public func truncate(to length: Int) {
        precondition(length <= count)
        count = length
    }

    /// Removes and returns the pending bytes (for buffers without a target).
    public func take() -> [UInt8] {
        let a = Array(bytes)
        count = 0
        committed = 0
        wholeEnd = 0
        return a
    }
}
