import CZlib

/// Decompresses a gzip stream on the fly (every member, concatenated, as `gzip -d` does), through zlib.
public struct GzipStream<Source: ByteStream>: ByteStream {
    final class State {
        /// zlib keeps a pointer back to its `z_stream`, so it lives at a fixed address.
        let z: UnsafeMutablePointer<z_stream>
        let input: UnsafeMutableRawPointer
        static var inputCapacity: Int { 1 << 16 }
        var sourceDone = false
        var memberOpen = false
        var initialized = false

        init() {
            z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            z.initialize(to: z_stream())
            input = UnsafeMutableRawPointer.allocate(byteCount: State.inputCapacity, alignment: 16)
            // 15 + 16: a 32 KiB window, gzip framing only (a zlib or raw deflate stream is an error).
            initialized = inflateInit2_(z, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK
        }
        deinit {
            if initialized { inflateEnd(z) }
            z.deinitialize(count: 1)
            z.deallocate()
            input.deallocate()
        }
    }

    var source: Source
    let state = State()
    /// Compressed bytes consumed so far (for error offsets).
    public private(set) var compressedOffset = 0

    public init(_ source: Source) { self.source = source }

    /// Whether `bytes` start with the gzip magic (1F 8B).
    public static func isGzip(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let s = state
        guard s.initialized else { throw RDBError(.io, offset: 0, "gzip: zlib could not be initialised (out of memory)") }
        let z = s.z
        guard buffer.count > 0 else { return 0 }
        while true {
            if z.pointee.avail_in == 0 && !s.sourceDone {
                let n = try source.read(into: UnsafeMutableRawBufferPointer(start: s.input, count: State.inputCapacity))
                z.pointee.next_in = s.input.assumingMemoryBound(to: Bytef.self)
                z.pointee.avail_in = uInt(n)
                if n == 0 { s.sourceDone = true }
            }
            if z.pointee.avail_in == 0 && s.sourceDone {
                if s.memberOpen {
                    throw RDBError(.truncated, offset: compressedOffset, "gzip stream ends in the middle of a member")
                }
                return 0
            }
            let before = Int(z.pointee.avail_in)
            z.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            z.pointee.avail_out = uInt(min(buffer.count, Int(UInt32.max)))
            let r = inflate(z, Z_NO_FLUSH)
            compressedOffset += before - Int(z.pointee.avail_in)
            let produced = min(buffer.count, Int(UInt32.max)) - Int(z.pointee.avail_out)
            switch r {
            case Z_OK, Z_BUF_ERROR:
                s.memberOpen = true
            case Z_STREAM_END:
                // A member ended; another may follow (concatenated gzip files).
                s.memberOpen = false
                inflateReset(z)
            default:
                let detail = z.pointee.msg.map { String(cString: $0) } ?? "error \(r)"
                throw RDBError(.io, offset: compressedOffset, "gzip: \(detail)")
            }
            if produced > 0 { return produced }
        }
    }
}
