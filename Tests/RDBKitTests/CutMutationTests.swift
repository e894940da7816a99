import Foundation
import Testing
import RDBKit
import RDBSinks

/// Files of small records with random bytes changed (one to three bytes flipped, a length stomped, a stretch
/// removed or repeated), decoded cut by sync on three threads, mapped and streamed, against one thread: the same
/// bytes, reports and error. A mutation makes chunks guess their first record wrong, records run past their
/// chunk, or the file end early; whatever the cutting does, the output must be the one-thread output.
///
/// `RDB_CUT_MUTATIONS` sets how many mutations (default 40, seeded: the same ones each run; `RDB_CUT_SEED` others).
@Suite struct CutMutationTests {
    typealias Format = ParallelDecodeTests.Format

    static var count: Int { ProcessInfo.processInfo.environment["RDB_CUT_MUTATIONS"].flatMap(Int.init) ?? 40 }
    /// Mixed into the seeds (`RDB_CUT_SEED`, default 0): other mutations.
    static var seed: UInt64 { ProcessInfo.processInfo.environment["RDB_CUT_SEED"].flatMap(UInt64.init) ?? 0 }

    struct Random {
        var state: UInt64
        mutating func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: state >> 33)
        }
    }

    /// `file` changed at random places (after its 9-byte header): what was done, and the bytes.
    static func mutated(_ file: [UInt8], _ r: inout Random) -> (String, [UInt8]) {
        var b = file
        let at = 9 + r.next() % (b.count - 9)
        switch r.next() % 5 {
        case 0:
            for k in 0..<(1 + r.next() % 3) { b[min(b.count - 1, at + k * (1 + r.next() % 40))] ^= UInt8(1 + r.next() % 255) }
            return ("flipped at \(at)", b)
        case 1:
            // A length prefix stomped: a 14-bit length, a 32-bit one, or an encoded integer.
            let stomp: [[UInt8]] = [[0x7F, 0xFF], [0x80, 0x00, 0x10, 0x00, 0x00], [0xC0], [0xC3, 0x40, 0x00]]
            let s = stomp[r.next() % stomp.count]
            for (k, x) in s.enumerated() where at + k < b.count { b[at + k] = x }
            return ("stomped at \(at)", b)
        case 2:
            let n = min(b.count - at, 1 + r.next() % 300)
            b.removeSubrange(at..<(at + n))
            return ("\(n) bytes removed at \(at)", b)
        case 3:
            let n = min(b.count - at, 1 + r.next() % 300)
            b.insert(contentsOf: b[at..<(at + n)], at: at)
            return ("\(n) bytes repeated at \(at)", b)
        default:
            return ("cut off at \(at)", Array(b[0..<at]))
        }
    }

    @Test(arguments: Format.allCases)
    func mutatedFilesCutByThreadsAsOnOne(_ format: Format) throws {
        var r = Random(state: 0xC0FF_EE00 ^ UInt64(Format.allCases.firstIndex(of: format)!) ^ Self.seed << 8)
        // (The third: values of every size, some larger than a chunk, decoded in place in pieces.)
        let files = [ParallelDecodeTests.smallRecords(), ParallelDecodeTests.smallRecords(dbEvery: 3, fakeRecords: true, seed: 7),
                     StreamedParallelDecodeTests.mixedFile()]
            + (try ["servers/redis-6.2/mixed.rdb", "servers/redis-7.0/mixed.rdb", "servers/valkey-8.1/mixed.rdb"].map {
                try [UInt8](Data(contentsOf: Fixtures.url($0)))  // (every encoding, written by the servers)
            })
        let streamed = [StreamedParallelDecodeTests.Streamed(read: 1000, window: 1024, chunkBytes: 100),
                        StreamedParallelDecodeTests.Streamed(read: 4096, window: 4096, chunkBytes: 256)]
        for i in 0..<Self.count {
            let (what, bytes) = Self.mutated(files[i % files.count], &r)
            let s = streamed[i / files.count % streamed.count]
            StreamedParallelDecodeTests.expectSame(bytes, format, s, "mutation \(i): \(what)")
            let path = try ParallelDecodeTests.write(bytes)
            defer { unlink(path) }
            let chunk = [64, 100, 256][i % 3]
            let one = ParallelDecodeTests.decode(path, format, threads: 1)
            let many = ParallelDecodeTests.decode(path, format, threads: 3, chunkBytes: chunk)
            #expect(one == many, "mapped, mutation \(i): \(what), chunks of \(chunk): \(one.error ?? "-") / \(many.error ?? "-"), \(one.reports) / \(many.reports), \(one.bytes.count) / \(many.bytes.count) bytes")
        }
    }
}

extension CutMutationTests {
    /// AOFs of random commands (values holding fake commands, MULTI blocks, SELECTs, inline commands) with random
    /// bytes changed, read in two parts on two threads and in one pass (strict and not): the same events, summary,
    /// torn tail or error. The part's guessed start meets damage the one pass meets too, or not.
    @Test func mutatedAOFsReadInTwoPartsAsInOne() throws {
        let split = AOFSplitTests()
        var r = Random(state: 0xA0F ^ Self.seed << 16)
        var merged = 0
        for i in 0..<(Self.count * 4) {
            let file = split.commands(seed: UInt64(i % 7), count: 300)
            var (what, bytes) = Self.mutated(file, &r)
            if bytes.count < 10 { continue }
            if i % 3 == 0 {  // a byte that matters to the framing: `*`, `$`, `\r` or `\n`, or a digit after one
                let at = 9 + r.next() % (bytes.count - 9)
                if let k = bytes[at...].firstIndex(where: { [0x2A, 0x24, 0x0D, 0x0A].contains($0) }) {
                    bytes[k] = [0x2A, 0x24, 0x0D, 0x0A, 0x39, 0x30][r.next() % 6]
                    what += ", framing byte at \(k)"
                }
            }
            if split.agree(bytes, strict: i % 2 == 0, "mutation \(i): \(what)") { merged += 1 }
        }
        #expect(merged >= Self.count / 2, "read in two parts: \(merged) of \(Self.count * 4)")
    }
}
