import Foundation
import Testing
import RDBKit
import RDBSinks

/// A streamed RDB (a pipe, a decompressor) decoded on several threads (`RDBReader.decodeStreamedChunked`)
/// writes exactly what the one-thread streamed decode writes: the same bytes, reports and error. The stream
/// is served in small reads through a small window, so that records are cut off by the window's end
/// everywhere (refilled, then whole), chunks are tiny, and values larger than a chunk are decoded in place
/// (in pieces, from the window).
@Suite struct StreamedParallelDecodeTests {
    typealias Format = ParallelDecodeTests.Format
    typealias Result = ParallelDecodeTests.Result

    struct Streamed {
        var read: Int
        var window: Int
        var chunkBytes: Int
    }

    /// `bytes` decoded into a sink of `format` behind `filter`: streamed on one thread (`threads` nil) or on
    /// `threads`.
    static func decode(_ bytes: [UInt8], _ format: Format, _ s: Streamed, threads: Int?, filter: KeyFilter = KeyFilter(),
                       statistics: ParallelStatistics? = nil) -> Result {
        let target = MemoryTarget()
        let out = OutputBuffer(target: target, flushThreshold: 1 << 10)
        var reports: [String] = []
        var failure: String?
        var options = RDBDecoderOptions()
        filter.apply(to: &options)
        func run<S: ChunkableSink>(_ sink: inout S) throws {
            let input = InputBuffer(stream: ChunkedArrayStream(bytes, chunk: s.read), chunkSize: s.window, name: "in.rdb")
            if let threads {
                #expect(input.isStreaming)
                _ = try sink.decodeInParallel(input, options: options, threads: threads, chunkBytes: s.chunkBytes, statistics: statistics)
            } else {
                _ = try RDBReader.decode(input, into: &sink, options: options)
            }
        }
        do {
            switch format {
            case .resp:
                var sink = FilteringVisitor(inner: RESPWriter(out: out), filter: filter)
                defer { reports = ParallelDecodeTests.reports(sink.inner.skippedKeys, sink.inner.lossyKeys, "\(sink.inner.keysWritten) \(sink.inner.commandsWritten) \(sink.skippedKeys)") }
                try run(&sink)
            case .restore:
                var sink = FilteringVisitor(inner: RestoreWriter(out: out), filter: filter)
                defer { reports = ParallelDecodeTests.reports(sink.inner.skippedKeys, sink.inner.lossyKeys, "\(sink.inner.stats) \(sink.skippedKeys)") }
                try run(&sink)
            case .jsonl:
                var sink = FilteringVisitor(inner: JSONLWriter(out: out), filter: filter)
                defer { reports = ["filtered \(sink.skippedKeys)"] }
                try run(&sink)
            case .memory:
                var sink = FilteringVisitor(inner: MemoryReportWriter(out: out), filter: filter)
                defer { reports = ["filtered \(sink.skippedKeys)"] }
                try run(&sink)
            }
        } catch {
            failure = "\(error)"
        }
        out.rollback()  // as rdbcat does after an error: the output ends with the last whole key
        try? out.flush()
        return Result(bytes: target.bytes, reports: reports, error: failure)
    }

    static func expectSame(_ bytes: [UInt8], _ format: Format, _ s: Streamed, _ what: String, filter: KeyFilter = KeyFilter(),
                           sourceLocation: SourceLocation = #_sourceLocation) {
        let one = decode(bytes, format, s, threads: nil, filter: filter)
        let many = decode(bytes, format, s, threads: 3, filter: filter)
        #expect(one.error == many.error || sameClaim(one.error, many.error),
                "\(what) \(format) \(s): \(one.error ?? "no error") / \(many.error ?? "no error")", sourceLocation: sourceLocation)
        #expect(one.reports == many.reports, "\(what) \(format) \(s)", sourceLocation: sourceLocation)
        let firstDifference = (0..<min(one.bytes.count, many.bytes.count)).first { one.bytes[$0] != many.bytes[$0] }
            ?? min(one.bytes.count, many.bytes.count)
        #expect(one.bytes == many.bytes, "\(what) \(format) \(s): \(one.bytes.count) vs \(many.bytes.count) bytes, first difference at \(firstDifference)",
                sourceLocation: sourceLocation)
    }

    /// Whether two errors are one damaged record met with more or less of the stream read: a length or count over
    /// the streaming record limit is refused as soon as the record is measured (its framing) while more may come
    /// (`limit-exceeded`, at the record's start, naming the claim's offset); once the stream has ended and the window
    /// holds the rest, the record is decoded instead, and what is wrong with it reported (the claim, or damage the
    /// measuring steps over, before it). Which a decode meets depends on how much it had read: the threads read
    /// ahead into their chunks. The same key (or none), and an error between the record's start and the claim.
    static func sameClaim(_ a: String?, _ b: String?) -> Bool {
        guard let a, let b else { return false }
        func key(_ e: String) -> Substring? { e.range(of: " (key \"").map { e[$0.lowerBound...] } }
        func offset(_ e: String) -> Int? {
            guard e.hasPrefix("in.rdb: offset ") else { return nil }
            return Int(e.dropFirst("in.rdb: offset ".count).prefix { $0.isNumber })
        }
        func claim(_ e: String) -> Int? {
            guard e.contains("limit-exceeded: a single record needs more than"), let r = e.range(of: " bytes claimed at offset ") else { return nil }
            return Int(e[r.upperBound...].prefix { $0.isNumber })
        }
        guard key(a) == key(b) else { return false }
        for (limit, other) in [(a, b), (b, a)] {
            if let c = claim(limit), let start = offset(limit), let at = offset(other), start <= at && at <= c { return true }
        }
        return false
    }

    static let configurations = [
        Streamed(read: 7, window: 64, chunkBytes: 40),
        Streamed(read: 1000, window: 300, chunkBytes: 200),
        Streamed(read: 4096, window: 4096, chunkBytes: 1500),
        Streamed(read: 1 << 16, window: 1 << 20, chunkBytes: 1 << 20),
    ]

    /// Keys of every size (some larger than a chunk or than the first window), across databases, with
    /// expiries, and a function library; the same bytes as a mapped decode on one thread, too.
    static func mixedFile() -> [UInt8] {
        var b = RDBBuilder(version: 10)
        b.aux("redis-ver", "7.0.15")
        for round in 0..<5 {
            for db: UInt64 in [0, 2, 0] {
                b.selectDB(db)
                for i in 0..<12 {
                    let size = (i * 37 + round * 11) % 9 == 0 ? 900 + i * 50 : i * 3
                    b.key(type: 0, "k\(round):\(db):\(i)", value: RDBBuilder.string(String(repeating: "v", count: size)),
                          expireMs: i % 4 == 0 ? 4_102_444_800_000 + Int64(i) : nil)
                }
                var list = RDBBuilder.length(30)
                for j in 0..<30 { list += RDBBuilder.string("element \(round) \(j)") }
                b.key(type: 1, "list:\(round):\(db)", value: list)
            }
            if round == 1 {
                b.bytes += [0xF5] + RDBBuilder.string("#!lua name=lib\nredis.register_function('f', function() return 1 end)")
            }
        }
        return b.finished()
    }

    @Test(arguments: Format.allCases)
    func recordsOfEverySizeAcrossWindowsAndChunks(_ format: Format) throws {
        let file = Self.mixedFile()
        for s in Self.configurations { Self.expectSame(file, format, s, "mixed") }
        // Cut into many chunks, the function library and the long keys decoded in place between them.
        let statistics = ParallelStatistics()
        var sink = RESPWriter(out: OutputBuffer(target: MemoryTarget()))
        let input = InputBuffer(stream: ChunkedArrayStream(file, chunk: 1000), chunkSize: 300, name: "in.rdb")
        _ = try sink.decodeInParallel(input, options: RDBDecoderOptions(), threads: 3, chunkBytes: 200, statistics: statistics)
        #expect(statistics.chunks > 20)
        #expect(statistics.valuesSplit > 0)  // lists of 30 elements are larger than a chunk of 200 bytes
        // And what the mapped file gives on one thread.
        let path = try ParallelDecodeTests.write(file)
        defer { unlink(path) }
        let mapped = ParallelDecodeTests.decode(path, format, threads: 1)
        #expect(Self.decode(file, format, Self.configurations[1], threads: 3).bytes == mapped.bytes)
    }

    /// Values larger than a chunk of every encoding that is cut into pieces, decoded in pieces from the
    /// window; and with a corrupt element inside one (the same output before it, the same error).
    @Test(arguments: Format.allCases)
    func largeValuesInPiecesFromTheWindow(_ format: Format) throws {
        for s in Self.configurations {
            Self.expectSame(ParallelDecodeTests.largeValues(), format, s, "large values")
            Self.expectSame(ParallelDecodeTests.largeValues(corruptListElement: 200), format, s, "corrupt element")
            Self.expectSame(ParallelDecodeTests.largeValues(truncatedSetMember: 150), format, s, "bad framing")
        }
    }

    /// Large values streamed in pieces behind filters: keys the filter skips (stepped over as the window fills),
    /// and size bounds (the decoder measures each value before its key begins, so the window holds it whole
    /// first); with bad framing inside a skipped value and inside a measured one.
    @Test(arguments: Format.allCases)
    func largeValuesBehindFilters(_ format: Format) throws {
        let skipSome = try KeyFilter(notKeyPattern: KeyPattern(regex: "^(set|hash)$"))
        let sized = KeyFilter(minSize: 2_000, maxSize: 5_000)
        for s in Self.configurations {
            for (name, filter) in [("skipping", skipSome), ("sized", sized)] {
                Self.expectSame(ParallelDecodeTests.largeValues(), format, s, "large values \(name)", filter: filter)
                Self.expectSame(ParallelDecodeTests.largeValues(truncatedSetMember: 150), format, s, "bad framing \(name)", filter: filter)
            }
        }
        // Some keys were left out and some written by each filter.
        let file = ParallelDecodeTests.largeValues()
        for filter in [skipSome, sized] {
            let out = String(decoding: Self.decode(file, .jsonl, Self.configurations[1], threads: 3, filter: filter).bytes, as: UTF8.self)
            let all = String(decoding: Self.decode(file, .jsonl, Self.configurations[1], threads: 3).bytes, as: UTF8.self)
            #expect(out.count < all.count && out.contains("\"key\""))
        }
    }

    /// A record that does not parse, and a stream that ends in the middle of a record or before the EOF
    /// opcode or the checksum: the keys before it are written, and the same error (file, offset) reported.
    @Test(arguments: Format.allCases)
    func corruptAndTruncatedStreams(_ format: Format) throws {
        var b = RDBBuilder(version: 10)
        b.selectDB(0)
        for i in 0..<200 { b.key(type: 0, "key:\(i)", value: RDBBuilder.string("value \(i)")) }
        // LZF that does not decompress (to 16 bytes: few enough that the memory report reads them back, to tell an
        // integer's text, where it sizes a longer string from its header)
        b.key(type: 0, "broken", value: [0xC3, 0x05, 0x10] + [UInt8](repeating: 0x41, count: 5))
        for i in 0..<200 { b.key(type: 0, "after:\(i)", value: RDBBuilder.string("x")) }
        let corrupt = b.finished()
        let whole = Self.mixedFile()
        for s in Self.configurations {
            Self.expectSame(corrupt, format, s, "corrupt")
            for cut in [whole.count - 1, whole.count - 9, whole.count - 10, whole.count / 2, whole.count / 3 + 5, 20] {
                Self.expectSame(Array(whole[0..<cut]), format, s, "truncated at \(cut)")
            }
        }
        let r = Self.decode(corrupt, format, Self.configurations[1], threads: 3)
        if format != .restore {  // RESTORE passes the value's bytes through without decompressing them
            #expect(r.error?.contains("key \"broken\"") == true, "\(r.error ?? "no error")")
        }
        let truncated = Self.decode(Array(whole[0..<(whole.count / 2)]), format, Self.configurations[1], threads: 3)
        #expect(truncated.error?.contains("in.rdb") == true, "\(truncated.error ?? "no error")")
    }

    /// Small records (`ParallelDecodeTests.smallRecords`: values that look like records, expiries, databases switching)
    /// streamed: cut at nominal offsets as they are read, without being measured (`RDBReader.cutStreamedChunks`), each
    /// chunk's thread finding its first record. A record running past a chunk's bytes (the long values) stops the
    /// cutting: the decoding thread measures from there, and cuts again further on. The output, reports and errors
    /// are the one-thread ones: with a corrupt record, cut off anywhere, with databases switching every few keys.
    @Test(arguments: Format.allCases)
    func smallRecordsCutAsTheyAreRead(_ format: Format) throws {
        let file = ParallelDecodeTests.smallRecords()
        var cut = 0, stops = 0, inStep = 0
        for chunk in [64, 100, 256, 1000] {
            for read in [7, 4096] {
                let s = Streamed(read: read, window: 4096, chunkBytes: chunk)
                Self.expectSame(file, format, s, "small records")
                let statistics = ParallelStatistics()
                let r = Self.decode(file, format, s, threads: 3, statistics: statistics)
                #expect(r.error == nil)
                cut += statistics.cutChunks
                stops += statistics.cutStops
                inStep += statistics.fellInStep
            }
        }
        #expect(cut > 200, "\(cut) chunks cut by sync")
        #expect(stops > 8, "\(stops) stops")  // the long values, each one in a file cut again past the one before
        #expect(inStep > 0)
        let s = Streamed(read: 1000, window: 1024, chunkBytes: 100)
        let corrupt = ParallelDecodeTests.smallRecords(corruptAt: 2900)
        Self.expectSame(corrupt, format, s, "corrupt record")
        for cut in [file.count - 1, file.count - 9, file.count - 10, file.count / 2, file.count / 3 + 5] {
            Self.expectSame(Array(file[0..<cut]), format, s, "small records cut off at \(cut)")
        }
        // Cut off at every byte around where the cutting starts (after two chunks of 100 bytes), ending there too.
        for cut in 150..<450 { Self.expectSame(Array(file[0..<cut]), format, s, "small records cut off at \(cut)") }
        for seed: UInt64 in 1...3 {
            Self.expectSame(ParallelDecodeTests.smallRecords(dbEvery: 3, fakeRecords: true, seed: seed), format, s, "databases switching")
        }
    }

    /// A file of `n` string keys `key:I` in database 0 with `bytes` before key `at`.
    static func stringKeys(_ n: Int, inserting bytes: some Collection<UInt8>, before at: Int, value: (Int) -> String) -> [UInt8] {
        var b = RDBBuilder(version: 10)
        b.selectDB(0)
        for i in 0..<n {
            if i == at { b.bytes += bytes }
            b.key(type: 0, "key:\(i)", value: RDBBuilder.string(value(i)))
        }
        return b.finished()
    }

    /// An EOF opcode where a record starts, well before the stream ends (a damaged file; found by `CutMutationTests`):
    /// one thread reads it, then the 8 bytes after it as the checksum, and stops there. Chunks cut further on were
    /// decoded again from before their bytes (the chain's end): they must hold nothing, and the output, reports and
    /// error are the one-thread ones. Mapped too.
    @Test(arguments: Format.allCases)
    func anEOFOpcodeLongBeforeTheEnd(_ format: Format) throws {
        for eofAt in [30, 45, 200, 1500] {
            let file = Self.stringKeys(3000, inserting: [0xFF] + [UInt8](repeating: 0x5A, count: 8), before: eofAt) { "value \($0)" }
            for s in [Streamed(read: 1000, window: 1024, chunkBytes: 100), Streamed(read: 4096, window: 4096, chunkBytes: 256)] {
                Self.expectSame(file, format, s, "EOF opcode before key \(eofAt)")
            }
            let one = Self.decode(file, format, Self.configurations[1], threads: nil)
            #expect(one.error?.contains("checksum") == true, "\(one.error ?? "no error")")
            let path = try ParallelDecodeTests.write(file)
            defer { unlink(path) }
            ParallelDecodeTests.expectSame(path, format, chunkBytes: 100)
        }
    }

    /// A record claiming a string over the streaming record limit (found by `CutMutationTests`): the records before it
    /// in the chunk being filled are written, as one thread writes them, and then the error. (They were dropped: the
    /// error was thrown while the decoding thread made that record whole, before their chunk was handed over.)
    @Test(arguments: Format.allCases)
    func recordsBeforeAClaimOverTheLimit(_ format: Format) throws {
        // A string key whose value claims 1 TiB (a 64-bit length), over the 8 GiB limit.
        var huge = RDBBuilder(version: 10)
        huge.key(type: 0, "huge", value: RDBBuilder.length(UInt64(1) << 40) + [UInt8](repeating: 0x41, count: 100))
        for badAt in [3, 40, 41, 47] {
            let file = Self.stringKeys(120, inserting: huge.bytes.dropFirst(9), before: badAt) { String(repeating: "v", count: 300 + $0) }
            for s in [Streamed(read: 4096, window: 4096, chunkBytes: 4096), Streamed(read: 1000, window: 1024, chunkBytes: 1500)] {
                Self.expectSame(file, format, s, "a claim over the limit at key \(badAt)")
                let r = Self.decode(file, format, s, threads: 3)
                #expect(r.error?.contains("key \"huge\"") == true, "\(r.error ?? "no error")")
                if format == .jsonl {  // every key before it
                    #expect(r.bytes.split(separator: 0x0A).count == badAt, "\(s)")
                }
            }
        }
    }

    /// Small records whose JSON is six times their size (control bytes, escaped as `\u00XX`): a streamed chunk of
    /// 1 MiB holds more output than a chunk may before it writes (`ParallelDecode.spillBytes`); it stops there rather
    /// than write, and the decoding thread measures on from there (a mapped one writes what it holds when its turn
    /// comes). The output is the one-thread one.
    @Test func chunksWhoseOutputOutgrowsTheirBuffer() throws {
        var b = RDBBuilder(version: 10)
        b.selectDB(0)
        for i in 0..<24_000 { b.key(type: 0, "k\(i)", value: RDBBuilder.string([UInt8](repeating: UInt8(1 + i % 30), count: 200))) }
        let file = b.finished()
        let s = Streamed(read: 1 << 16, window: 1 << 20, chunkBytes: 1 << 20)
        Self.expectSame(file, .jsonl, s, "escaped")
        let statistics = ParallelStatistics()
        _ = Self.decode(file, .jsonl, s, threads: 3, statistics: statistics)
        #expect(statistics.cutChunks > 1 && statistics.cutStops > 0, "\(statistics.cutChunks) cut, \(statistics.cutStops) stops")
        let path = try ParallelDecodeTests.write(file)
        defer { unlink(path) }
        #expect(ParallelDecodeTests.decode(path, .jsonl, threads: 3, chunkBytes: 1 << 20).bytes == Self.decode(file, .jsonl, s, threads: nil).bytes)
    }

    /// Every server-written fixture and corpus RDB, streamed.
    @Test(arguments: Format.allCases)
    func fixturesStreamedOnSeveralThreads(_ format: Format) throws {
        let files = ParallelDecodeTests.fixtureFiles()
        #expect(files.count >= 100)
        for f in files {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: f)))
            Self.expectSame(bytes, format, Self.configurations[1], f)
        }
    }
}
