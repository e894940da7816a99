import Foundation
import Testing
import RDBKit
import RDBSinks

/// Inputs that once crashed, hung or exhausted memory, kept under `testdata/fuzz/<target>/` (the folder is
/// named after the FuzzTesting target that exercises the same path; `scripts/fuzz.sh` also seeds from it).
/// Each must end in a typed `RDBError` (or decode correctly), quickly and without buffering beyond limits.
@Suite struct FuzzRegressionTests {
    static let files = Fixtures.files(endingWith: "").filter { path in
        path.hasPrefix("fuzz/") && (path.hasSuffix(".rdb") || path.hasSuffix(".zst"))
    }

    /// Decodes a file the way rdbcat does (mapped, or streamed when compressed) into the JSONL writer.
    static func decodeFile(_ relative: String, options: RDBDecoderOptions = .init()) -> Result<Int, RDBError> {
        let out = OutputBuffer(target: nil, flushThreshold: 1 << 12)
        var w = JSONLWriter(out: out)
        do {
            let input = try InputBuffer.open(path: Fixtures.url(relative).path, limit: options.maxRecordBytes)
            _ = try RDBReader.decode(input, into: &w, options: options)
            return .success(out.take().count)
        } catch let e as RDBError {
            return .failure(e)
        } catch {
            return .failure(RDBError(.io, offset: -1, "non-RDBError \(error)"))
        }
    }

    @Test func regressionFilesArePresent() {
        #expect(FuzzRegressionTests.files.count >= 3)
    }

    /// Every committed input ends in a typed error with a message and a sane offset, in well under a second.
    @Test(arguments: files)
    func endsInTypedError(_ file: String) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let result = FuzzRegressionTests.decodeFile(file)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        #expect(seconds < 2, "\(file) took \(seconds) s")
        switch result {
        case .success:
            Issue.record("\(file) decoded")
        case .failure(let e):
            #expect(e.code != .io, "\(file): \(e)")
            #expect(!e.message.isEmpty && e.offset >= 0)
        }
    }

    /// A streamed (zstd) record claiming more than the streaming record limit is refused before anything
    /// is buffered. It used to read and buffer the stream up to the limit (8 GiB by default) first, and to
    /// trap on the failed allocation under an address-space limit (found with a 100 KB zstd file holding a
    /// 2^40-byte string claim followed by 3 GB of zeros).
    @Test(arguments: ["fuzz/streaming/string-claims-2e40.rdb.zst", "fuzz/streaming/list-claims-2e62.rdb.zst",
                      "fuzz/streaming/stream-claims-2e40-nodes.rdb.zst"])
    func streamedClaimBeyondLimitIsRefusedAtOnce(_ file: String) {
        guard case .failure(let e) = FuzzRegressionTests.decodeFile(file) else {
            Issue.record("\(file) decoded")
            return
        }
        #expect(e.code == .limitExceeded, "\(e)")
        #expect(e.message.contains("streaming record limit"))
        #expect(e.key == Array("k".utf8))
    }

    /// An endless stream behind a hostile claim: the reader must stop at once, not read until the limit.
    @Test func endlessStreamBehindAHugeClaim() {
        final class Zeros: ByteStream {
            var served = 0
            func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                served += buffer.count
                return buffer.count
            }
        }
        struct Prefixed: ByteStream {
            var head: [UInt8]
            let tail: Zeros
            mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
                if head.isEmpty { return try tail.read(into: buffer) }
                let n = min(head.count, buffer.count)
                head.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                head.removeFirst(n)
                return n
            }
        }
        for claim: [UInt8] in [
            [0x00, 1, 0x6B, 0x81, 0, 0, 1, 0, 0, 0, 0, 0],  // string of 2^40 bytes
            [0x02, 1, 0x6B, 0x81, 0x40, 0, 0, 0, 0, 0, 0, 0],  // set of 2^62 members
            [0x04, 1, 0x6B, 0x80, 0xFF, 0xFF, 0xFF, 0xFF],  // hash of 2^32-1 pairs, limit 1 GiB
        ] {
            let zeros = Zeros()
            let input = InputBuffer(stream: Prefixed(head: Array("REDIS0009".utf8) + claim, tail: zeros), chunkSize: 1 << 16)
            var o = RDBDecoderOptions()
            o.maxRecordBytes = 1 << 30
            var r = Recorder()
            do {
                _ = try RDBReader.decode(input, into: &r, options: o)
                Issue.record("decoded")
            } catch let e as RDBError {
                #expect(e.code == .limitExceeded, "\(e)")
            } catch {
                Issue.record("non-RDBError \(error)")
            }
            #expect(zeros.served <= 1 << 20, "read \(zeros.served) bytes before refusing")
        }
    }

    /// A buffer that cannot be allocated is an error, not a trap.
    @Test func unallocatableBufferIsAnError() {
        let input = InputBuffer(stream: ChunkedArrayStream([UInt8](repeating: 0, count: 100)), chunkSize: 64, limit: 1 << 62)
        do {
            try input.fill(atLeast: 1 << 61)
            Issue.record("allocated 2^61 bytes")
        } catch let e as RDBError {
            #expect(e.code == .limitExceeded)
            #expect(e.message.contains("cannot allocate"))
        } catch {
            Issue.record("non-RDBError \(error)")
        }
    }

    /// Valkey SLOT_IMPORT with an absurd range count: refused, and the range array is not sized from it.
    @Test func slotImportRangeCount() {
        var b = RDBBuilder(version: 80, family: .valkey)
        b.bytes += [0xF3] + RDBBuilder.string("job") + RDBBuilder.length(1 << 40)
        #expect(decodeError(b.finished())?.code == .truncated)
        var ok = RDBBuilder(version: 80, family: .valkey)
        ok.bytes += [0xF3] + RDBBuilder.string("job") + RDBBuilder.length(2) + [0, 5, 10, 20]
        #expect(decodeError(ok.finished()) == nil)
    }
}
