#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps a read-only memory map alive and unmaps it at the end.
final class MappedRegion {
    let base: UnsafeMutableRawPointer?
    let count: Int
    init(base: UnsafeMutableRawPointer?, count: Int) {
        self.base = base
        self.count = count
    }
    deinit { if let base, count > 0 { munmap(base, count) } }
}

extension InputBuffer {
    /// Opens an input by path: a regular file is memory-mapped (zero-copy), `-` is standard input, and a
    /// zstd-framed input (by content, not name) is decompressed on the fly through a streaming window.
    public static func open(path: String, limit: Int = 1 << 33) throws -> InputBuffer {
        if path == "-" { return try openStream(fd: 0, name: "-", limit: limit) }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw RDBError(.io, offset: 0, "cannot open: \(String(cString: strerror(errno)))", file: path) }
        var st = stat()
        if fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != S_IFREG {
            // Not a regular file (a pipe, a device): stream it.
            return try openStream(fd: fd, name: path, limit: limit)
        }
        let size = Int(st.st_size)
        if size == 0 {
            close(fd)
            return InputBuffer(region: UnsafeRawBufferPointer(start: nil, count: 0), name: path)
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            close(fd)
            throw RDBError(.io, offset: 0, "cannot map: \(String(cString: strerror(errno)))", file: path)
        }
        close(fd)
        madvise(p, size, MADV_SEQUENTIAL)
        let region = MappedRegion(base: p, count: size)
        let bytes = UnsafeRawBufferPointer(start: p, count: size)
        if ZstdStream<FileDescriptorStream>.isZstd(bytes) {
            return InputBuffer(stream: ZstdStream(RegionStream(region: region)), limit: limit, name: path)
        }
        return InputBuffer(region: bytes, keepAlive: region, name: path)
    }

    static func openStream(fd: Int32, name: String, limit: Int) throws -> InputBuffer {
        // Peek at the first bytes to recognise zstd, then hand them back in front of the stream.
        var head = [UInt8](repeating: 0, count: 4)
        var got = 0
        var src = FileDescriptorStream(fd: fd)
        while got < 4 {
            let n = try head.withUnsafeMutableBytes { try src.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[got...])) }
            if n == 0 { break }
            got += n
        }
        head.removeLast(4 - got)
        let prefixed = PrefixedStream(prefix: head, rest: src)
        let isZstd = head.withUnsafeBytes { ZstdStream<FileDescriptorStream>.isZstd($0) }
        if isZstd { return InputBuffer(stream: ZstdStream(prefixed), limit: limit, name: name) }
        return InputBuffer(stream: prefixed, limit: limit, name: name)
    }
}

/// Serves a mapped region as a stream (used to decompress mapped zstd files).
struct RegionStream: ByteStream {
    let region: MappedRegion
    var position = 0
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, region.count - position)
        if n <= 0 { return 0 }
        buffer.baseAddress!.copyMemory(from: region.base! + position, byteCount: n)
        position += n
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
