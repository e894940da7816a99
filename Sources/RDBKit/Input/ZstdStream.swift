import CZstd

/// Decompresses a zstd-framed stream on the fly (all frames, concatenated), through libzstd.
public struct ZstdStream<Source: ByteStream>: ByteStream {
    final class State {
        let dctx: OpaquePointer
        var input: UnsafeMutableRawPointer
        let inputCapacity: Int
        var inputPos = 0
        var inputSize = 0
        var sourceDone = false
        var frameOpen = false

        init() {
            dctx = ZSTD_createDStream()
            ZSTD_initDStream(dctx)
            inputCapacity = ZSTD_DStreamInSize()
            input = UnsafeMutableRawPointer.allocate(byteCount: inputCapacity, alignment: 16)
        }
        deinit {
            ZSTD_freeDStream(dctx)
            input.deallocate()
        }
    }

    var source: Source
    let state = State()
    /// Compressed bytes consumed so far (for error offsets).
    public private(set) var compressedOffset = 0

    public init(_ source: Source) { self.source = source }

    /// Whether `bytes` start with the zstd frame magic (28 B5 2F FD).
    public static func isZstd(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x28 && bytes[1] == 0xB5 && bytes[2] == 0x2F && bytes[3] == 0xFD
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let s = state
        while true {
            if s.inputPos == s.inputSize && !s.sourceDone {
                let n = try source.read(into: UnsafeMutableRawBufferPointer(start: s.input, count: s.inputCapacity))
                s.inputPos = 0
                s.inputSize = n
                if n == 0 { s.sourceDone = true }
            }
            if s.inputPos == s.inputSize && s.sourceDone {
                if s.frameOpen {
                    throw RDBError(.truncated, offset: compressedOffset, "zstd stream ends in the middle of a frame")
                }
                return 0
            }
            var inBuf = ZSTD_inBuffer(src: s.input, size: s.inputSize, pos: s.inputPos)
            var outBuf = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
            let r = ZSTD_decompressStream(s.dctx, &outBuf, &inBuf)
            if ZSTD_isError(r) != 0 {
                throw RDBError(.io, offset: compressedOffset + inBuf.pos - s.inputPos,
                               "zstd: \(String(cString: ZSTD_getErrorName(r)))")
            }
            compressedOffset += inBuf.pos - s.inputPos
            s.inputPos = inBuf.pos
            s.frameOpen = r != 0
            if outBuf.pos > 0 { return outBuf.pos }
        }
    }
}
