import Testing
import RDBKit

/// `ReadAheadStream` (a compressed file is decompressed on its own thread): the source's bytes in order,
/// then its end or its error, with any chunk, depth and read size; dropping it early stops the worker.
@Suite struct ReadAheadTests {
    /// Serves `bytes`, then throws at `failAt` (or ends, when nil).
    struct Failing: ByteStream {
        var inner: ChunkedArrayStream
        let failAt: Int?
        mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            if let failAt {
                if inner.position >= failAt { throw RDBError(.io, offset: failAt, "source failed") }
                return try inner.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.prefix(failAt - inner.position)))
            }
            return try inner.read(into: buffer)
        }
    }

    static func drain(_ s: ReadAheadStream, readSize: Int) -> ([UInt8], RDBError?) {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: readSize)
        do {
            while true {
                let n = try buf.withUnsafeMutableBytes { try s.read(into: $0) }
                if n == 0 { return (out, nil) }
                out += buf[0..<n]
            }
        } catch let e as RDBError {
            return (out, e)
        } catch {
            return (out, RDBError(.io, offset: -1, "\(error)"))
        }
    }

    @Test func bytesThenEndOrError() throws {
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        for (chunk, depth, readSize, sourceChunk) in [(4096, 2, 1000, 777), (4096, 3, 5000, 4096), (65536, 2, 1 << 20, 100_000), (10_000, 2, 1, 3)] {
            for failAt in [nil, 0, 1, 4096, 50_000, 100_000] as [Int?] {
                let s = try #require(ReadAheadStream(Failing(inner: ChunkedArrayStream(bytes, chunk: sourceChunk), failAt: failAt), chunk: chunk, depth: depth))
                let (out, error) = Self.drain(s, readSize: readSize)
                let what = "chunk \(chunk) depth \(depth) read \(readSize) fail \(String(describing: failAt))"
                #expect(out == Array(bytes[0..<(failAt ?? bytes.count)]), "\(what)")
                #expect(error?.offset == failAt, "\(what)")
                // After the end or the error, reads return 0.
                var one: UInt8 = 0
                #expect(try withUnsafeMutableBytes(of: &one) { try s.read(into: $0) } == 0, "\(what)")
            }
        }
    }

    @Test func droppedEarlyStopsTheWorker() throws {
        let bytes = [UInt8](repeating: 0x5A, count: 1 << 20)
        for _ in 0..<20 {
            let s = try #require(ReadAheadStream(ChunkedArrayStream(bytes, chunk: 4096), chunk: 4096, depth: 2))
            var buf = [UInt8](repeating: 0, count: 10)
            _ = try buf.withUnsafeMutableBytes { try s.read(into: $0) }
        }  // each deinit stops and joins a worker blocked on a full queue
    }

    @Test func compressedFileAsMapped() throws {
        let tmp = try TempDir()
        for fixture in ["servers/redis-7.0/mixed.rdb", "corpus/redis/encodings.rdb"] {
            let plain = try Fixtures.bytes(fixture)
            let path = try tmp.write("plain.rdb", plain)
            let zst = try InputKindTests().zstd(path, into: tmp, as: "dump.zst")
            let mapped = try plain.withUnsafeBytes { try StreamingTests().jsonl(InputBuffer(region: $0)) }
            let input = try InputBuffer.open(path: zst)
            #expect(input.compression == .zstd && input.isStreaming)
            #expect(try StreamingTests().jsonl(input) == mapped, "\(fixture)")
        }
    }
}
