#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A source of bytes read in chunks: a pipe, a socket, a decompressor.
public protocol ByteStream {
    /// Reads up to `buffer.count` bytes; returns 0 at the end of the stream.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Whether a read now would return without waiting for the source (a live stream, such as a
    /// replication stream, says false when it has nothing buffered, so that a decoder reading ahead does
    /// not wait for bytes it does not need yet). Default: true (files and pipes read on).
    var hasReadyBytes: Bool { get }
}

extension ByteStream {
    public var hasReadyBytes: Bool { true }
}

/// Reads a file descriptor (stdin, a pipe, a file opened for streaming).
public struct FileDescriptorStream: ByteStream {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw RDBError(.io, offset: 0, "read failed: \(String(cString: strerror(errno)))")
        }
    }
}

/// Serves an in-memory array in small chunks; for tests of the streaming paths.
public struct ChunkedArrayStream: ByteStream {
    public let bytes: [UInt8]
    public let chunk: Int
    public private(set) var position = 0

    public init(_ bytes: [UInt8], chunk: Int = 4096) {
        self.bytes = bytes
        self.chunk = max(1, chunk)
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, chunk, bytes.count - position)
        if n <= 0 { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
        }
        position += n
        return n
    }
}

/// The window the decoders read from: either a fixed region (a memory-mapped file, an array), or a buffer
/// refilled from a `ByteStream`.
///
/// The window holds the bytes from the read position (`offset`) to what has been loaded. For a fixed
/// region the window is the whole remaining region and never moves, so views handed to sinks point
/// straight into the map. For a stream, `fill(atLeast:)` compacts and reads more; the buffer only grows
/// to fit the largest single record, up to `limit`.
public final class InputBuffer {
    @exclusivity(unchecked) @usableFromInline var storage: UnsafeMutableRawPointer?
    @exclusivity(unchecked) @usableFromInline var capacity: Int
    @exclusivity(unchecked) @usableFromInline var start = 0
    @exclusivity(unchecked) @usableFromInline var end: Int
    /// Absolute input offset of `storage[0]`.
    @exclusivity(unchecked) @usableFromInline var storageOffset = 0
    /// Bytes of address space mapped for `storage` (its pages come as they are first written), in which the
    /// buffer grows without moving (`pinForGrowth`); 0 when `storage` is from malloc.
    @usableFromInline var reserved = 0
    @usableFromInline var source: (any ByteStream)?
    public private(set) var isAtEOF: Bool
    @usableFromInline let owned: Bool
    /// Largest window a stream may grow to.
    public var limit: Int
    /// Name used in error messages (a path, or "-").
    public var name: String?
    /// Keeps the mapped data alive for fixed regions.
    @usableFromInline var keepAlive: AnyObject?
    /// The file mapping whose pages are given back as the decoder moves on (nil: not a mapped file).
    let mapping: MappedRegion?
    /// For a part of a mapped file read by a decoder of its own (`init(partOf:from:)`): the absolute offset
    /// below which its pages are not released (its start, rounded up to a page: the page holding the start is
    /// the other decoder's too), then how far they have been.
    var partReleased: Int?
    /// Absolute offset from which `release(before:)` has pages to give back; `Int.max` when the input is not
    /// a mapped file (arrays, streams), so the check never passes.
    @exclusivity(unchecked) @usableFromInline var releaseMark = Int.max
    /// Bytes of progress between two releases of a mapped file's pages: what a mapped decode keeps resident
    /// beyond the record being decoded.
    public static let releaseStep = 8 << 20
    /// This input's step (`releaseStep`; half of it for each of two decoders reading parts of one file, whose
    /// pages are resident together: `releaseEvery`).
    public private(set) var releaseStepBytes = InputBuffer.releaseStep

    /// Gives a mapped file's pages back every `bytes` of progress from now on (the next release too); the
    /// background checksum of the file (started after this) reports as often and reads at most two steps
    /// ahead of the decoder.
    public func releaseEvery(_ bytes: Int) {
        releaseStepBytes = bytes
        mapping?.step.store(bytes, ordering: .relaxed)
        if releaseMark != .max { releaseMark = min(releaseMark, offset &+ bytes) }
    }

    /// A fixed region that must outlive the buffer (or be kept alive by `keepAlive`).
    public init(region: UnsafeRawBufferPointer, keepAlive: AnyObject? = nil, name: String? = nil) {
        storage = UnsafeMutableRawPointer(mutating: region.baseAddress)
        capacity = region.count
        end = region.count
        isAtEOF = true
        owned = false
        limit = region.count
        self.keepAlive = keepAlive
        self.name = name
        mapping = nil
    }

    /// The bytes of a fixed region (a mapped file, an array) from the absolute `offset` on, for a second
    /// decoder: the same memory (kept alive with the region), offsets counted as in `parent`, and, for a
    /// mapped file, its pages released as this decoder moves on (from `offset` on only).
    public init(partOf parent: InputBuffer, from offset: Int) {
        precondition(!parent.isStreaming && offset >= parent.storageOffset && offset <= parent.storageOffset + parent.end)
        let skip = offset - parent.storageOffset
        storage = parent.storage.map { $0 + skip }
        capacity = parent.end - skip
        end = capacity
        storageOffset = offset
        isAtEOF = true
        owned = false
        limit = capacity
        keepAlive = parent.keepAlive
        name = parent.name
        mapping = parent.mapping
        if mapping != nil {
            partReleased = (offset + MappedRegion.pageSize - 1) & ~(MappedRegion.pageSize - 1)
            releaseStepBytes = parent.releaseStepBytes
            releaseMark = offset &+ releaseStepBytes
        }
    }

    /// A memory-mapped file whose pages are released as they are consumed (see `release(before:)`).
    init(mapping: MappedRegion, name: String?) {
        storage = mapping.base
        capacity = mapping.count
        end = mapping.count
        isAtEOF = true
        owned = false
        limit = mapping.count
        keepAlive = mapping
        self.name = name
        self.mapping = mapping
        releaseMark = InputBuffer.releaseStep
    }

    /// How the source was compressed (its bytes here are the decompressed ones).
    public private(set) var compression = InputCompression.none

    /// A stream, read in chunks of at least `chunkSize`.
    public convenience init(
        stream: some ByteStream, chunkSize: Int = 1 << 20, limit: Int = 1 << 33, name: String? = nil, compression: InputCompression
    ) {
        self.init(stream: stream, chunkSize: chunkSize, limit: limit, name: name)
        self.compression = compression
    }

    /// A stream, read in chunks of at least `chunkSize`.
    public init(stream: some ByteStream, chunkSize: Int = 1 << 20, limit: Int = 1 << 33, name: String? = nil) {
        // malloc/free (not allocate/deallocate) so that a failed allocation is an error, not a trap.
        let p = malloc(max(chunkSize, 64))
        storage = p
        capacity = p == nil ? 0 : max(chunkSize, 64)
        end = 0
        source = stream
        isAtEOF = false
        owned = true
        self.limit = limit
        self.name = name
        mapping = nil
    }

    deinit {
        if reserved > 0 {
            munmap(storage, reserved)
        } else if owned {
            free(storage)
        }
    }

    /// Makes a stream's window stay where it is from now on while it fills, up to `limit` bytes, until bytes
    /// are consumed: the bytes move to the front of an address range of `limit` bytes mapped for the buffer
    /// (once; its pages are backed as they are written), and views into the window stay valid across fills.
    /// False when the range cannot be mapped (the buffer then moves when it grows, as before).
    public func pinForGrowth() -> Bool {
        guard owned, let old = storage else { return false }
        if reserved < limit {
            let p = mmap(nil, limit, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let p, p != MAP_FAILED else { return false }
            if end > start { p.copyMemory(from: old + start, byteCount: end - start) }
            if reserved > 0 { munmap(old, reserved) } else { free(old) }
            storage = p
            reserved = limit
        } else if start > 0 {
            if end > start { old.copyMemory(from: old + start, byteCount: end - start) }
        } else {
            return true
        }
        storageOffset += start
        end -= start
        start = 0
        capacity = max(capacity, end)
        return true
    }


    /// Whether more bytes may come from the source.
    @inlinable public var isStreaming: Bool { !isAtEOF }

    /// Absolute input offset of the first window byte.
    @inlinable public var offset: Int { storageOffset + start }

    /// The loaded, unconsumed bytes.
    @inlinable
    public var window: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.map { UnsafeRawPointer($0) + start }, count: end - start)
    }

    /// A cursor over the window.
    @inlinable
    public var cursor: ByteCursor { ByteCursor(window, baseOffset: offset) }

    /// Marks `count` window bytes as consumed.
    @inlinable
    public func consume(_ count: Int) {
        precondition(count <= end - start)
        start += count
    }

    /// Tells the input that no byte before the absolute `offset` will be read again (no view into them is
    /// still in use). A memory-mapped file gives back the pages below it every `releaseStep` bytes, so its
    /// resident memory stays flat; for other inputs this does nothing. The decoders call it at record
    /// boundaries: one compare per record.
    @inlinable
    public func release(before offset: Int) {
        if _slowPath(offset >= releaseMark) { releasePages(before: offset) }
    }

    /// The last offset given to `release(before:)` that reached a release step: how far a decode of a
    /// memory-mapped file (whose window is consumed only at the end) has got, for progress reports.
    public private(set) var releasedOffset = 0

    /// Gives back the pages of a mapped file from the first whole page at or after `offset` to its end: those a
    /// search ahead of the decoders touched (where the pieces of an AOF start: `AOFReader.splitting`), which
    /// they would otherwise keep until a decoder passes them (a page cache of large folios maps up to 2 MiB for
    /// each byte read).
    @usableFromInline
    func releasePages(after offset: Int) {
        guard let mapping else { return }
        let page = MappedRegion.pageSize
        _ = mapping.release(from: (offset + page - 1) & ~(page - 1), to: storageOffset + end)
    }

    /// Tells a memory-mapped input that the caller has copied `bytes` (a view into its window) out and will not
    /// read them again: the whole pages inside them are given back now, not when the decoder passes the next
    /// release step. A value passed through whole (an import's RESTORE payload, held until the server answers
    /// it) would otherwise be resident twice, in the map and in its copy. Bytes outside the map, and inputs that
    /// are not mapped, are left alone: a stream's window is checksummed after its records are decoded, so its
    /// bytes must stay. A page touched again is read back from the file (costs time, never correctness).
    public func releaseCopied(_ bytes: UnsafeRawBufferPointer) {
        guard let mapping, let base = mapping.base, let p = bytes.baseAddress,
              p >= UnsafeRawPointer(base), p + bytes.count <= UnsafeRawPointer(base) + mapping.count else { return }
        let page = MappedRegion.pageSize
        let from = (p - UnsafeRawPointer(base) + page - 1) & ~(page - 1)
        _ = mapping.release(from: from, to: p + bytes.count - UnsafeRawPointer(base))
    }

    @usableFromInline
    func releasePages(before offset: Int) {
        releasedOffset = offset
        if let from = partReleased {
            partReleased = mapping?.release(from: from, to: offset)
        } else {
            mapping?.advance(.decoder, to: offset)
        }
        releaseMark = offset &+ releaseStepBytes
    }

    /// Loads more bytes until the window holds at least `count` bytes or the source ends.
    /// Returns whether the window now holds `count` bytes.
    @discardableResult
    public func fill(atLeast count: Int) throws -> Bool {
        while end - start < count {
            guard !isAtEOF, var src = source else { return false }
            if count > limit {
                throw RDBError(.limitExceeded, offset: offset, "a record needs more than \(limit) bytes of buffer (the streaming limit)")
            }
            // Compact: move the unconsumed bytes to the front.
            if start > 0 {
                let n = end - start
                if n > 0 { storage!.copyMemory(from: storage! + start, byteCount: n) }
                storageOffset += start
                end = n
                start = 0
            }
            if capacity < count { try grow(to: capacity(holding: count)) }
            let n = try src.read(into: UnsafeMutableRawBufferPointer(start: storage! + end, count: capacity - end))
            source = src
            if n == 0 {
                isAtEOF = true
                source = nil
            }
            end += n
        }
        return true
    }

    /// The capacity `fill(atLeast: count)` leaves: the buffer's, or, when it holds less than `count`, doubled
    /// (or `count` if that is more), at most the limit.
    func capacity(holding count: Int) -> Int {
        capacity < count ? min(max(count, capacity * 2), limit) : capacity
    }

    /// Loads until the window holds at least `count` bytes (false: the source ended first), then reads on
    /// towards `want` bytes only while the source has bytes ready (`ByteStream.hasReadyBytes`): a live
    /// stream is not waited on for bytes beyond what is needed. A `want` past the capacity grows the buffer.
    @discardableResult
    public func fill(atLeast count: Int, preferring want: Int) throws -> Bool {
        guard try fill(atLeast: count) else { return false }
        while end - start < want, !isAtEOF, let s = source, s.hasReadyBytes {
            guard try fill(atLeast: end - start + 1) else { break }
        }
        return true
    }

    /// Makes the storage hold `n` bytes (more than it does), keeping what it holds: in the mapped range as it is,
    /// in a larger mapped range (the limit was raised past it), or moved by realloc (a large block is moved by
    /// remapping its pages, not by copying them).
    func grow(to n: Int) throws {
        if n <= reserved {
            capacity = n  // in the mapped range: nothing moves
        } else if reserved > 0 {
            guard n <= limit, pinForGrowth() else {  // (the range mapped is `limit` bytes)
                throw RDBError(.limitExceeded, offset: offset, "cannot map \(limit) bytes of input buffer (lower the streaming record limit)", file: name)
            }
            capacity = n
        } else {
            guard let p = realloc(storage, n) else {
                throw RDBError(.limitExceeded, offset: offset, "cannot allocate \(n) bytes of input buffer (lower the streaming record limit)", file: name)
            }
            storage = p
            capacity = n
        }
    }

    /// Loads whatever the source has next (at least one more byte unless at EOF). Returns false at EOF.
    public func fillMore() throws -> Bool {
        let have = end - start
        return try fill(atLeast: have + 1)
    }
}

extension InputBuffer {
    /// Moves the next bytes of a stream into `buffer`, up to its size: the window's first, then read from the
    /// source straight into it (not through the window). Returns 0 at the end of the stream (or for an empty
    /// `buffer`). The window starts after the bytes moved (see `unread`).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if end > start {
            let n = min(buffer.count, end - start)
            buffer.baseAddress!.copyMemory(from: storage! + start, byteCount: n)
            start += n
            return n
        }
        guard !isAtEOF, var src = source, buffer.count > 0 else { return 0 }
        let n = try src.read(into: buffer)
        source = src
        if n == 0 {
            isAtEOF = true
            source = nil
        }
        storageOffset += n  // the window (empty) moves past them
        return n
    }

    /// Gives back the last bytes moved out of the window by `read(into:)`: they are the window's again, from the
    /// offset they were read at, before what it still holds and whatever the source has next. `segments` hold
    /// them in order.
    public func unread(_ segments: [UnsafeRawBufferPointer]) throws {
        let n = segments.reduce(0) { $0 + $1.count }
        guard n > 0 else { return }
        let held = end - start
        let total = n + held
        if capacity < total { try grow(to: total) }
        let from = offset - n
        if held > 0 { (storage! + n).copyMemory(from: storage! + start, byteCount: held) }
        var at = 0
        for s in segments where s.count > 0 {
            (storage! + at).copyMemory(from: s.baseAddress!, byteCount: s.count)
            at += s.count
        }
        storageOffset = from
        start = 0
        end = total
    }
}
