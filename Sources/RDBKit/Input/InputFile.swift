#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Keeps a read-only memory map alive, unmaps it at the end, and gives back the pages its readers are done with.
///
/// Every page of a file mapping that is touched stays in the process's resident set until it is unmapped, so
/// decoding a mapped file would cost its whole size in RSS. The readers of the mapping (the decoder, and the
/// background checksum of an RDB) report how far they will never look back (`advance(_:to:)`); the pages below
/// every reader's mark are dropped with `MADV_DONTNEED`. The mapping is private and read-only, so this only
/// unmaps them from this process (they stay in the page cache): a page touched again is read back from the
/// file. A release point that is too early therefore costs time, never correctness.
///
/// The checksum is usually faster than the decoder and does not wait for it: the pages it reads more than
/// `maxLead` bytes ahead of the decoder's mark are dropped again, and the decoder reads them back when it gets
/// there. When it falls behind (a busy machine, a debug build), the decoder's pages further back than
/// `maxLead` are released anyway, and the checksum gives back again the pages it reads back.
final class MappedRegion: @unchecked Sendable {
    /// Who reads the mapping.
    enum Reader { case decoder, checksum }

    let base: UnsafeMutableRawPointer?
    let count: Int
    /// Offset before which the decoder will not read again.
    let decoderMark = Atomic<Int>(0)
    /// Offset the background checksum has passed; `Int.max` while none runs.
    let checksumMark = Atomic<Int>(.max)
    /// Offset (page-aligned) below which pages have been released.
    let released = Mutex<Int>(0)
    static let pageSize = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
    /// The decoder's release step (`InputBuffer.releaseEvery`); the checksum reports its progress as often.
    let step = Atomic<Int>(InputBuffer.releaseStep)
    /// How far apart the decoder and the checksum may be before pages are released without waiting for the
    /// one behind: two steps.
    var maxLead: Int { 2 &* step.load(ordering: .relaxed) }

    init(base: UnsafeMutableRawPointer?, count: Int) {
        self.base = base
        self.count = count
    }
    deinit { if let base, count > 0 { munmap(base, count) } }

    /// Releases the whole pages from `from` (page-aligned) up to `to`, read by a decoder of a part of the file
    /// (`InputBuffer(partOf:from:)`) that will not read them again, or copied out (`InputBuffer.releaseCopied`);
    /// returns where the next release starts.
    func release(from: Int, to: Int) -> Int {
        let upTo = min(to, count) & ~(MappedRegion.pageSize - 1)
        guard let base, upTo > from else { return from }
        madvise(base + from, upTo - from, MADV_DONTNEED)
        return upTo
    }

    /// Records that `reader` will not read before `offset` again, and releases the whole pages that are not
    /// worth keeping any more. Called every few MiB of progress, from the decoder's thread or the checksum's.
    func advance(_ reader: Reader, to offset: Int) {
        let previous: Int
        switch reader {
        case .decoder: previous = decoderMark.exchange(offset, ordering: .acquiringAndReleasing)
        case .checksum: previous = checksumMark.exchange(offset, ordering: .acquiringAndReleasing)
        }
        let decoder = decoderMark.load(ordering: .acquiring)
        let lead = maxLead
        let upTo = min(decoder, max(checksumMark.load(ordering: .acquiring), decoder &- lead), count)
        let mask = ~(MappedRegion.pageSize - 1)
        released.withLock { done in
            guard let base else { return }
            let aligned = upTo & mask
            if aligned > done {
                madvise(base + done, aligned - done, MADV_DONTNEED)
                done = aligned
            }
            // What the checksum read since its last report, below the release point or far ahead of the decoder.
            guard reader == .checksum, previous != .max else { return }
            let from = previous & mask
            let behind = min(offset, done) & mask
            if from < behind { madvise(base + from, behind - from, MADV_DONTNEED) }
            guard offset != .max else { return }
            let ahead = (max(previous, decoder &+ lead, done) + MappedRegion.pageSize - 1) & mask
            let end = min(offset, count) & mask
            if ahead < end { madvise(base + ahead, end - ahead, MADV_DONTNEED) }
        }
    }
}

extension InputBuffer {
    /// Opens an input by path: a regular file is memory-mapped (zero-copy), `-` is standard input, and a
    /// zstd or gzip input (by content, not name) is decompressed on the fly through a streaming window.
    ///
    /// Standard input redirected from a regular file (`rdbcat - < dump.rdb`) and read from its start is mapped
    /// like the file itself; a pipe, a terminal or a socket is streamed.
    public static func open(path: String, limit: Int = 1 << 33) throws -> InputBuffer {
        if path == "-" {
            var st = stat()
            if fstat(0, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > 0, lseek(0, 0, SEEK_CUR) == 0 {
                return try map(fd: 0, size: Int(st.st_size), name: "-", limit: limit)
            }
            return try openStream(fd: 0, name: "-", limit: limit)
        }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw RDBError(.io, offset: 0, "cannot open: \(String(cString: strerror(errno)))", file: path) }
        var st = stat()
        if fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != S_IFREG {
            // Not a regular file (a pipe, a device): stream it.
            return try openStream(fd: fd, name: path, limit: limit)
        }
        defer { close(fd) }
        let size = Int(st.st_size)
        if size == 0 {
            return InputBuffer(region: UnsafeRawBufferPointer(start: nil, count: 0), name: path)
        }
        return try map(fd: fd, size: size, name: path, limit: limit)
    }

    /// Maps `size` bytes of a regular file from its start (the descriptor may be closed afterwards); a zstd or
    /// gzip file is decompressed from the map through a streaming window, on a thread of its own a few chunks
    /// ahead of the decoder (`ReadAheadStream`; inline when no thread can be started).
    static func map(fd: Int32, size: Int, name path: String, limit: Int) throws -> InputBuffer {
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw RDBError(.io, offset: 0, "cannot map: \(String(cString: strerror(errno)))", file: path)
        }
        madvise(p, size, MADV_SEQUENTIAL)
        let region = MappedRegion(base: p, count: size)
        let bytes = UnsafeRawBufferPointer(start: p, count: size)
        switch InputCompression(head: bytes) {
        case .zstd: return InputBuffer(stream: readAhead(ZstdStream(RegionStream(region: region))), limit: limit, name: path, compression: .zstd)
        case .gzip: return InputBuffer(stream: readAhead(GzipStream(RegionStream(region: region))), limit: limit, name: path, compression: .gzip)
        case .none: return InputBuffer(mapping: region, name: path)
        }
    }

    /// A decompressor of a mapped file, read ahead on its own thread (its source never blocks, so stopping
    /// the thread never waits on a pipe).
    static func readAhead(_ stream: some ByteStream) -> any ByteStream {
        ReadAheadStream(stream) ?? stream
    }

    static func openStream(fd: Int32, name: String, limit: Int) throws -> InputBuffer {
        #if os(Linux)
        // A pipe holds 64 KiB by default: its writer and this reader then take turns every 64 KiB (a context
        // switch each way). Grown to the system's limit (1 MiB unless raised), they do so 16 times less.
        // Best effort: an fd that is not a pipe, or a limit lower than asked, leaves it as it is.
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO {
            _ = fcntl(fd, 1031 /* F_SETPIPE_SZ */, Int32(1 << 20))
        }
        #endif
        return try open(stream: FileDescriptorStream(fd: fd), name: name, limit: limit)
    }

    /// Opens a stream (a pipe, an object in a bucket): its first bytes tell whether it is zstd or gzip, and a
    /// compressed stream is decompressed on the fly.
    public static func open(stream: some ByteStream, name: String, limit: Int = 1 << 33) throws -> InputBuffer {
        // Peek at the first bytes, then hand them back in front of the stream.
        var head = [UInt8](repeating: 0, count: 4)
        var got = 0
        var src = stream
        while got < 4 {
            let n = try head.withUnsafeMutableBytes { try src.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[got...])) }
            if n == 0 { break }
            got += n
        }
        head.removeLast(4 - got)
        let compression = head.withUnsafeBytes { InputCompression(head: $0) }
        let prefixed = PrefixedStream(prefix: head, rest: src)
        switch compression {
        case .zstd: return InputBuffer(stream: ZstdStream(prefixed), limit: limit, name: name, compression: .zstd)
        case .gzip: return InputBuffer(stream: GzipStream(prefixed), limit: limit, name: name, compression: .gzip)
        case .none: return InputBuffer(stream: prefixed, limit: limit, name: name)
        }
    }
}

/// How an input is compressed, told by its first bytes (never by its name).
public enum InputCompression: String, Sendable, Hashable, CustomStringConvertible {
    case none, zstd, gzip

    /// The compression of an input that starts with `head`.
    public init(head: UnsafeRawBufferPointer) {
        if ZstdStream<FileDescriptorStream>.isZstd(head) {
            self = .zstd
        } else if GzipStream<FileDescriptorStream>.isGzip(head) {
            self = .gzip
        } else {
            self = .none
        }
    }

    public var description: String { rawValue }
}

/// Serves a mapped region as a stream (used to decompress mapped zstd files), giving back the pages it has
/// copied out every `releaseBytes`: nothing else reads them, and a madvise per MiB costs little next to
/// decompressing it (every 8 MiB kept up to 8 MiB of a compressed file resident for nothing).
struct RegionStream: ByteStream {
    static let releaseBytes = 1 << 20
    let region: MappedRegion
    var position = 0
    var releaseMark = RegionStream.releaseBytes
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, region.count - position)
        if n <= 0 { return 0 }
        buffer.baseAddress!.copyMemory(from: region.base! + position, byteCount: n)
        position += n
        if position >= releaseMark {
            region.advance(.decoder, to: position)
            releaseMark = position + RegionStream.releaseBytes
        }
        return n
    }
}

/// A few bytes already read, then the rest of a stream.
public struct PrefixedStream<Rest: ByteStream>: ByteStream {
    var prefix: [UInt8]
    var rest: Rest
    public init(prefix: [UInt8], rest: Rest) {
        self.prefix = prefix
        self.rest = rest
    }
    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if !prefix.isEmpty {
            let n = min(prefix.count, buffer.count)
            prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
            prefix.removeFirst(n)
            return n
        }
        return try rest.read(into: buffer)
    }
}
