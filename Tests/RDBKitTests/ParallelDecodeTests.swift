import Foundation
import Testing
import RDBKit
import RDBSinks

/// The parallel decode (`DecodeDriver.threads`, `ParallelDecode`) writes exactly what the one-thread
/// decode writes: the same bytes, the same reports, the same error after the same output. Chunks are made
/// tiny here (a few records each) so that every file is cut in many places: between databases, around
/// records decoded on the main thread (functions, modules), inside runs of keys with expiries.
///
/// The one-thread output of the server-written files is checked against real servers by
/// `ServerReplayTests` (digest-equal after replay); byte equality carries that over to the parallel one.
@Suite struct ParallelDecodeTests {
    enum Format: CaseIterable { case resp, restore, jsonl, memory }

    struct Result: Equatable {
        var bytes: [UInt8]
        var reports: [String]
        var error: String?
        /// After the error, the output ends with part of the key that failed (`OutputBuffer.keepsPartOfKey`).
        var partial = false
    }

    /// Decodes `path` into a sink of `format`, with `threads` threads and chunks of about `chunkBytes`.
    static func decode(_ path: String, _ format: Format, threads: Int, chunkBytes: Int = 200, filter: KeyFilter = KeyFilter(),
                       statistics: ParallelStatistics? = nil, flushThreshold: Int = 1 << 10) -> Result {
        let target = MemoryTarget()
        let out = OutputBuffer(target: target, flushThreshold: flushThreshold)
        var driver = DecodeDriver()
        driver.parallelStatistics = statistics
        driver.threads = threads
        driver.chunkBytes = chunkBytes
        driver.parallelMinimumBytes = 0
        var reports: [String] = []
        var failure: String?
        do {
            switch format {
            case .resp:
                var sink = FilteringVisitor(inner: RESPWriter(out: out), filter: filter)
                defer { reports = Self.reports(sink.inner.skippedKeys, sink.inner.lossyKeys, "\(sink.inner.keysWritten) \(sink.inner.commandsWritten) \(sink.skippedKeys)") }
                try driver.decode(paths: [path], into: &sink)
            case .restore:
                var sink = FilteringVisitor(inner: RestoreWriter(out: out), filter: filter)
                defer { reports = Self.reports(sink.inner.skippedKeys, sink.inner.lossyKeys, "\(sink.inner.stats) \(sink.skippedKeys)") }
                try driver.decodeRDB(paths: [path], into: &sink)
            case .jsonl:
                var sink = FilteringVisitor(inner: JSONLWriter(out: out), filter: filter)
                defer { reports = ["filtered \(sink.skippedKeys)"] }
                try driver.decode(paths: [path], into: &sink)
            case .memory:
                var sink = FilteringVisitor(inner: MemoryReportWriter(out: out), filter: filter)
                defer { reports = ["filtered \(sink.skippedKeys)"] }
                try driver.decodeRDB(paths: [path], into: &sink)
            }
        } catch {
            failure = "\(error)"
        }
        let partial = out.keepsPartOfKey
        out.rollback()  // as rdbcat does after an error: the output ends with the last whole key
        try? out.flush()
        return Result(bytes: target.bytes, reports: reports, error: failure, partial: partial)
    }

    /// Keys left out and written lossily, then the counts (keys, commands, filtered).
    static func reports(_ skipped: [SkippedKey], _ lossy: [SkippedKey], _ counts: String) -> [String] {
        skipped.map { "skipped \($0)" } + lossy.map { "lossy \($0)" } + [counts]
    }

    static func expectSame(_ path: String, _ format: Format, chunkBytes: Int = 200, filter: KeyFilter = KeyFilter(),
                           flushThreshold: Int = 1 << 10, sourceLocation: SourceLocation = #_sourceLocation) {
        let one = decode(path, format, threads: 1, filter: filter, flushThreshold: flushThreshold)
        let many = decode(path, format, threads: 3, chunkBytes: chunkBytes, filter: filter, flushThreshold: flushThreshold)
        #expect(one.error == many.error, "\(path) \(format)", sourceLocation: sourceLocation)
        #expect(one.partial == many.partial, "\(path) \(format): part of the key kept", sourceLocation: sourceLocation)
        #expect(one.reports == many.reports, "\(path) \(format)", sourceLocation: sourceLocation)
        let same = one.bytes == many.bytes
        let firstDifference = (0..<min(one.bytes.count, many.bytes.count)).first { one.bytes[$0] != many.bytes[$0] }
            ?? min(one.bytes.count, many.bytes.count)
        #expect(same, "\(path) \(format): \(one.bytes.count) vs \(many.bytes.count) bytes, first difference at \(firstDifference)",
                sourceLocation: sourceLocation)
    }

    /// Every server-written fixture (Redis 6.2, 7.0, Valkey 8.1) and every corpus RDB, in each format.
    @Test(arguments: Format.allCases)
    func fixturesDecodeTheSameOnSeveralThreads(_ format: Format) throws {
        let files = Self.fixtureFiles()
        #expect(files.count >= 100)
        for f in files { Self.expectSame(f, format) }
    }

    /// The paths of every server-written fixture and corpus RDB.
    static func fixtureFiles() -> [String] {
        let root = Fixtures.url("").path
        return (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? [])
            .filter { $0.hasSuffix(".rdb") && ($0.hasPrefix("servers/") || $0.hasPrefix("corpus/")) }.sorted()
            .map { root + "/" + $0 }
    }

    /// Keys switching between databases and back, with and without expiries, a function library (decoded
    /// on the main thread between chunks), and a database filter.
    @Test func databasesFunctionsAndFiltersAcrossChunks() throws {
        var b = RDBBuilder(version: 10)
        b.aux("redis-ver", "7.0.15")
        for round in 0..<6 {
            for db: UInt64 in [0, 3, 0, 1] {
                b.selectDB(db)
                for i in 0..<7 {
                    b.key(type: 0, "k\(round):\(db):\(i)", value: RDBBuilder.string("v\(i)"),
                          expireMs: i % 3 == 0 ? 4_102_444_800_000 + Int64(i) : nil)
                }
            }
            if round == 2 {
                b.bytes += [0xF5] + RDBBuilder.string("#!lua name=lib\nredis.register_function('f', function() return 1 end)")
            }
        }
        let path = try Self.write(b.finished())
        defer { unlink(path) }
        for format in Format.allCases {
            for chunk in [1, 40, 200, 1 << 20] { Self.expectSame(path, format, chunkBytes: chunk) }
            var filter = KeyFilter()
            filter.dbs = [3]
            Self.expectSame(path, format, filter: filter)
        }
        // Some chunks really did start in a database the target was already in: the SELECT count is exact.
        let out = Self.decode(path, .resp, threads: 3, chunkBytes: 40)
        let selects = String(decoding: out.bytes, as: UTF8.self).components(separatedBy: "SELECT").count - 1
        #expect(selects == 6 * 4)
    }

    /// A record that does not parse half-way through: the same keys are written before it and the same
    /// error (file, offset) is reported, however the records around it were chunked.
    @Test func aCorruptRecordStopsAtTheSamePlace() throws {
        var b = RDBBuilder(version: 10)
        b.selectDB(0)
        for i in 0..<300 { b.key(type: 0, "key:\(i)", value: RDBBuilder.string("value \(i)")) }
        // LZF that does not decompress (to 16 bytes: few enough that the memory report reads them back, to tell an
        // integer's text, where it sizes a longer string from its header)
        b.key(type: 0, "broken", value: [0xC3, 0x05, 0x10] + [UInt8](repeating: 0x41, count: 5))
        for i in 0..<300 { b.key(type: 0, "after:\(i)", value: RDBBuilder.string("x")) }
        let path = try Self.write(b.finished())
        defer { unlink(path) }
        for format in Format.allCases {
            for chunk in [1, 100, 1000] { Self.expectSame(path, format, chunkBytes: chunk) }
            let r = Self.decode(path, format, threads: 3, chunkBytes: 100)
            // RESTORE passes the value's bytes through without decompressing them: no error there.
            if format == .restore { continue }
            #expect(r.error?.contains("key \"broken\"") == true, "\(r.error ?? "no error")")
            #expect(!String(decoding: r.bytes, as: UTF8.self).contains("after:"))
        }
        // Declared as 32 bytes, the memory report sizes it from its header (the trailer covers its bytes), on one
        // thread or many, a record larger than a chunk (decoded in place) included: every row, no error.
        var longer = RDBBuilder(version: 10)
        longer.bytes = Array(b.bytes)
        let at = longer.bytes.indices.first { longer.bytes[$0...].starts(with: [0xC3, 0x05, 0x10] as [UInt8]) }!
        longer.bytes[at + 2] = 0x20
        let path32 = try Self.write(longer.finished())
        defer { unlink(path32) }
        for chunk in [1, 100, 1000] { Self.expectSame(path32, .memory, chunkBytes: chunk) }
        let r = Self.decode(path32, .memory, threads: 3, chunkBytes: 1)
        #expect(r.error == nil && String(decoding: r.bytes, as: UTF8.self).contains("\n0,string,broken,88,string,32,32,\n0,string,after:0,"),
                "\(r.error ?? "")")
    }

    /// A file of values larger than a chunk, one of each encoding that is cut between elements: a list of
    /// strings, quicklists of ziplists and of listpacks (with a plain node), a set, sorted sets with text
    /// and binary scores (some of them -0, which the RESP writer holds back for a trailing ZADD), a hash.
    static func largeValues(corruptListElement: Int? = nil, truncatedSetMember: Int? = nil) -> [UInt8] {
        var b = RDBBuilder(version: 10)
        b.selectDB(0)
        b.key(type: 0, "before", value: RDBBuilder.string("x"))
        var list = RDBBuilder.length(400)
        for i in 0..<400 {
            // A bad LZF block: its framing is fine (the value is split), its content fails in a piece.
            list += i == corruptListElement ? [0xC3, 0x05, 0x20] + [UInt8](repeating: 0x41, count: 5) : RDBBuilder.string("element \(i)")
        }
        b.key(type: 1, "list", value: list, expireMs: 4_102_444_800_000)
        var set = RDBBuilder.length(300)
        for i in 0..<300 {
            // A member whose length runs past the end of the value: the framing does not parse, so the value
            // is decoded in place, with the errors of a sequential decode.
            set += i == truncatedSetMember ? [0x80] + RDBBuilder.le(UInt32(1 << 30).byteSwapped) : RDBBuilder.string("member:\(i)")
        }
        b.key(type: 2, "set", value: set)
        var zsetText = RDBBuilder.length(250)
        for i in 0..<250 {
            let score = i % 50 == 7 ? "-0" : "\(Double(i) / 4)"
            zsetText += RDBBuilder.string("m\(i)") + [UInt8(score.utf8.count)] + Array(score.utf8)
        }
        b.key(type: 3, "zset-text", value: zsetText)
        var zset2 = RDBBuilder.length(250)
        for i in 0..<250 {
            zset2 += RDBBuilder.string("z\(i)") + RDBBuilder.le((i % 60 == 3 ? -0.0 : Double(i) * 1.5).bitPattern)
        }
        b.key(type: 5, "zset2", value: zset2)
        var hash = RDBBuilder.length(300)
        for i in 0..<300 { hash += RDBBuilder.string("field\(i)") + RDBBuilder.string(String(repeating: "v", count: i % 20)) }
        b.key(type: 4, "hash", value: hash)
        var quicklist = RDBBuilder.length(40)
        for n in 0..<40 { quicklist += RDBBuilder.string(RDBBuilder.ziplist((0..<9).map { RDBBuilder.zlString("q\(n).\($0)") })) }
        b.key(type: 14, "quicklist", value: quicklist)
        var quicklist2 = RDBBuilder.length(40)
        for n in 0..<40 {
            if n % 13 == 5 {
                quicklist2 += RDBBuilder.length(1) + RDBBuilder.string("plain node \(n)")
            } else {
                quicklist2 += RDBBuilder.length(2) + RDBBuilder.string(RDBBuilder.listpack((0..<9).map { $0 % 3 == 0 ? RDBBuilder.lpInt(Int64(n * 100 + $0)) : RDBBuilder.lpString("p\(n).\($0)") }))
            }
        }
        b.key(type: 18, "quicklist2", value: quicklist2)
        b.key(type: 0, "after", value: RDBBuilder.string("y"))
        return b.finished()
    }

    /// Large values are decoded in pieces on the threads (every piece size, from one element up): the same
    /// bytes and reports as one thread.
    @Test func largeValuesAreDecodedInPieces() throws {
        let path = try Self.write(Self.largeValues())
        defer { unlink(path) }
        for format in [Format.resp, .jsonl] {
            for chunk in [4, 64, 512, 4096] { Self.expectSame(path, format, chunkBytes: chunk) }
            let statistics = ParallelStatistics()
            let r = Self.decode(path, format, threads: 3, chunkBytes: 256, statistics: statistics)
            #expect(r.error == nil)
            #expect(statistics.valuesSplit == 7, "\(format): \(statistics.valuesSplit) values split")
            #expect(statistics.pieces > 7 * 4, "\(format): \(statistics.pieces) pieces")
        }
        // The -0 scores were held back for the trailing ZADD, from every piece.
        let text = String(decoding: Self.decode(path, .resp, threads: 3, chunkBytes: 64).bytes, as: UTF8.self)
        #expect(text.components(separatedBy: "$2\r\n-0\r\n").count - 1 == 5 + 5)
    }

    /// An error inside a key whose output is partly written already (more of it than the buffer's key chunk):
    /// one thread and the pieces end the output at the same whole command (RESP) or element (JSONL) before it,
    /// wherever their flushes fell.
    @Test(arguments: [Format.resp, .jsonl])
    func aPartlyWrittenKeyEndsAtTheSameBoundary(_ format: Format) throws {
        var b = RDBBuilder(version: 10)
        b.selectDB(0)
        // Keys before it, in chunks written on the threads: the buffer holds another amount when the list starts.
        for i in 0..<3000 { b.key(type: 0, "k\(i)", value: RDBBuilder.string(String(repeating: "v", count: i % 97))) }
        var list = RDBBuilder.length(120_000)
        for i in 0..<120_000 {
            // A bad LZF block near the end: the framing is fine (the list is split), its content fails.
            list += i == 100_000 ? [0xC3, 0x05, 0x20] + [UInt8](repeating: 0x41, count: 5) : RDBBuilder.string("element \(i)")
        }
        b.key(type: 1, "list", value: list)
        let path = try Self.write(b.finished())
        defer { unlink(path) }
        let one = Self.decode(path, format, threads: 1)
        #expect(one.error != nil)
        #expect(one.bytes.count > 1 << 20, "part of the key is written before the error")
        // rdbcat's flush threshold too: the pending bytes when the list starts then differ with the threads.
        for flush in [1 << 10, 1 << 18] {
            for chunk in [4096, 65536] { Self.expectSame(path, format, chunkBytes: chunk, flushThreshold: flush) }
        }
        // (The list goes in pieces: the path whose flushes fall elsewhere.)
        let statistics = ParallelStatistics()
        _ = Self.decode(path, format, threads: 3, chunkBytes: 65536, statistics: statistics)
        #expect(statistics.valuesSplit == 1 && statistics.pieces > 4, "\(statistics.valuesSplit) \(statistics.pieces)")
    }

    /// An error inside a key whose output up to it is a little under or over the key chunk (1 MiB, rdbcat's): one
    /// thread, whose buffer holds some of the keys before it when the key starts, and several, whose buffer holds
    /// none, keep the same part of it or none (`OutputBuffer.keepsPartOfKey`: counted from the key's start).
    @Test(arguments: [Format.resp, .jsonl])
    func aKeyFailingNearTheKeyChunkKeepsTheSamePart(_ format: Format) throws {
        var kept: [Bool] = []
        for bad in [40_000, 48_000, 51_000, 54_000, 60_000, 66_000, 72_000] {
            var b = RDBBuilder(version: 10)
            b.selectDB(0)
            for i in 0..<3000 { b.key(type: 0, "k\(i)", value: RDBBuilder.string(String(repeating: "v", count: i % 97))) }
            var list = RDBBuilder.length(80_000)
            for i in 0..<80_000 {
                list += i == bad ? [0xC3, 0x05, 0x20] + [UInt8](repeating: 0x41, count: 5) : RDBBuilder.string("element \(i + 10_000)")
            }
            b.key(type: 1, "list", value: list)
            let path = try Self.write(b.finished())
            defer { unlink(path) }
            let one = Self.decode(path, format, threads: 1, flushThreshold: 1 << 18)
            #expect(one.error != nil)
            kept.append(one.partial)
            // (4 MiB: the list is decoded in a chunk, on another thread, into a buffer without a target.)
            for chunk in [4096, 65536, 4 << 20] { Self.expectSame(path, format, chunkBytes: chunk, flushThreshold: 1 << 18) }
        }
        #expect(kept.contains(true) && kept.contains(false), "\(kept)")
    }

    /// A file of large values only: a sink that takes them in pieces starts the threads; one that does not (the
    /// memory report) decodes them on the calling thread and starts none (idle threads beside it slowed it), the
    /// chunk of the records before them (SELECTDB) decoded there too.
    @Test func threadsStartWithTheFirstChunkOrPiece() throws {
        var b = RDBBuilder(version: 10)
        b.selectDB(0)
        var hash = RDBBuilder.length(3000)
        for i in 0..<3000 { hash += RDBBuilder.string("field\(i)") + RDBBuilder.string("\(i % 7 == 0 ? "v" : "\(i)")") }
        b.key(type: 4, "hash", value: hash)
        var set = RDBBuilder.length(2000)
        for i in 0..<2000 { set += RDBBuilder.string("member:\(i)") }
        b.key(type: 2, "set", value: set)
        let path = try Self.write(b.finished())
        defer { unlink(path) }
        for (format, threads) in [(Format.memory, 0), (.resp, 3), (.jsonl, 3)] {
            Self.expectSame(path, format, chunkBytes: 1024)
            let statistics = ParallelStatistics()
            let r = Self.decode(path, format, threads: 3, chunkBytes: 1024, statistics: statistics)
            #expect(r.error == nil)
            #expect(statistics.threadsStarted == threads, "\(format)")
        }
    }

    /// An element that fails in a piece: the elements before it are written as by one thread, then the same
    /// error. A value whose framing stops parsing half-way is split up to there and decoded in place from
    /// there: the same elements, then the same error.
    @Test func anErrorInsideALargeValue() throws {
        for (file, what, split) in [(Self.largeValues(corruptListElement: 250), "LZF", 1), (Self.largeValues(truncatedSetMember: 200), "set", 2)] {
            let path = try Self.write(file)
            defer { unlink(path) }
            for format in [Format.resp, .jsonl] {
                for chunk in [4, 64, 512] { Self.expectSame(path, format, chunkBytes: chunk) }
                let statistics = ParallelStatistics()
                let r = Self.decode(path, format, threads: 3, chunkBytes: 64, statistics: statistics)
                // The list is split (its error comes from a piece); so is the set, up to its bad member (the rest
                // is decoded in place, and throws the decoder's own error).
                #expect(statistics.valuesSplit == split, "\(what) \(format)")
                #expect(r.error != nil, "\(what) \(format)")
                #expect(!String(decoding: r.bytes, as: UTF8.self).contains("after"), "\(what) \(format)")
            }
        }
    }

    /// A file of small records, as every sink cuts it at nominal offsets (each chunk finding its first
    /// record itself, `ChunkableSink.cutsBySync`): values made of bytes that read as type bytes, lengths and
    /// opcodes (0xFC, 0xFE, 0xFF) so that wrong starts look plausible, keys with a millisecond expiry and an LFU
    /// frequency (a cut between a prefix and its type byte), databases switching (a chunk's database guessed
    /// wrong), values longer than a chunk, and optionally a corrupt record near the end. Whatever was guessed,
    /// the output, reports and error are the one-thread ones; and guesses were wrong, kept from where they fell
    /// in step with the true records or decoded again.
    static func smallRecords(corruptAt: Int? = nil, dbEvery: Int = 700, fakeRecords: Bool = false, seed: UInt64 = 0) -> [UInt8] {
        var b = RDBBuilder(version: 10)
        b.aux("redis-ver", "7.0.15")
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ seed
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: state >> 33)
        }
        let lookalikes: [UInt8] = [0x00, 0x02, 0x05, 0x0E, 0x10, 0x14, 0xC0, 0xFC, 0xFE, 0xFF]
        for i in 0..<3000 {
            if i % dbEvery == 0 { b.selectDB(UInt64(i / dbEvery % 3)) }
            if i == corruptAt {
                // (16 bytes declared: the memory report reads them back, see `aCorruptRecordStopsAtTheSamePlace`)
                b.key(type: 0, "broken", value: [0xC3, 0x05, 0x10] + [UInt8](repeating: 0x41, count: 5))
                continue
            }
            if i % 3 == 0 { b.bytes += [0xFC] + RDBBuilder.le(Int64(4_102_444_800_000 + i)) }
            if i % 5 == 0 { b.bytes += [0xF9, UInt8(i & 0x7F)] }
            var value = (0..<(next() % 40)).map { _ in next() % 3 == 0 ? UInt8(next() & 0xFF) : lookalikes[next() % lookalikes.count] }
            if fakeRecords && next() % 2 == 0 {
                // Whole records inside the value (a SELECTDB, keys): a start guessed in it decodes them.
                var fake = RDBBuilder(version: 10)
                if next() % 2 == 0 { fake.selectDB(UInt64(next() % 3)) }
                for f in 0..<(1 + next() % 3) { fake.key(type: 0, "f\(i).\(f)", value: RDBBuilder.string("fake")) }
                if next() % 2 == 0 { fake.selectDB(UInt64(next() % 3)) }
                value += fake.bytes.dropFirst(9)
            }
            b.key(type: 0, "k\(i)", value: RDBBuilder.string(value))
            if i % 1000 == 999 { b.key(type: 0, "long\(i)", value: RDBBuilder.string(String(repeating: "x", count: 3000 + i))) }
        }
        return b.finished()
    }

    @Test(arguments: [nil, 2900], Format.allCases)
    func chunksCutAtNominalOffsetsFindTheirRecords(corruptAt: Int?, format: Format) throws {
        let path = try Self.write(Self.smallRecords(corruptAt: corruptAt))
        defer { unlink(path) }
        var cut = 0, inStep = 0, again = 0, guessedAgain = 0
        for chunk in [64, 100, 256, 1000] {
            Self.expectSame(path, format, chunkBytes: chunk)
            let statistics = ParallelStatistics()
            let r = Self.decode(path, format, threads: 3, chunkBytes: chunk, statistics: statistics)
            // (RESTORE passes the broken LZF block through as it is, as one thread does.)
            #expect((r.error != nil) == (corruptAt != nil && format != .restore), "\(r.error ?? "no error")")
            cut += statistics.cutChunks
            inStep += statistics.fellInStep
            again += statistics.decodedAgain
            guessedAgain += statistics.guessedAgain
        }
        #expect(cut > 100)
        #expect(inStep > 0)
        #expect(again > 0)
        #expect(guessedAgain > 0)
        var filter = KeyFilter()
        filter.dbs = [1]
        Self.expectSame(path, format, chunkBytes: 100, filter: filter)
    }

    /// Databases switched every few keys, and values holding whole records (SELECTDB, keys): starts guessed in a
    /// value decode keys in some database and fall in step with the true records, where the sink may have
    /// selected another database than the target is in; the output is still the one-thread one.
    @Test(arguments: [Format.resp, .restore])
    func chunksCutAcrossFrequentDatabaseSwitches(_ format: Format) throws {
        var inStep = 0
        for seed: UInt64 in 1...6 {
            let path = try Self.write(Self.smallRecords(dbEvery: 3, fakeRecords: true, seed: seed))
            defer { unlink(path) }
            for chunk in [64, 100, 160, 256] {
                Self.expectSame(path, format, chunkBytes: chunk)
                let statistics = ParallelStatistics()
                _ = Self.decode(path, format, threads: 3, chunkBytes: chunk, statistics: statistics)
                inStep += statistics.fellInStep
            }
        }
        #expect(inStep > 0)
    }

    /// Small records with values of many elements among them: in the formats whose output for such a value is as
    /// large as the value, the chunk cut by sync stops before it, the decoding thread decodes it in pieces (its
    /// output written as it goes, not held in a chunk's buffer) and walks the rest of the file; the memory report
    /// decodes it in its chunk. Either way the output and reports are the one-thread ones.
    @Test(arguments: Format.allCases)
    func aLargeValueAmongSmallRecords(_ format: Format) throws {
        var b = RDBBuilder(version: 10)
        b.selectDB(0)
        for i in 0..<4000 {
            if i == 1500 { b.selectDB(2) }
            if i == 2500 || i == 3000 {
                var list = RDBBuilder.length(3000)
                for j in 0..<3000 { list += RDBBuilder.string("e\(i).\(j)") }
                b.key(type: 1, "big\(i)", value: list, expireMs: 4_102_444_800_000)
            }
            b.key(type: 0, "k\(i)", value: RDBBuilder.string("v\(i % 97)"))
        }
        let path = try Self.write(b.finished())
        defer { unlink(path) }
        for chunk in [512, 4096] { Self.expectSame(path, format, chunkBytes: chunk) }
        let statistics = ParallelStatistics()
        let r = Self.decode(path, format, threads: 3, chunkBytes: 4096, statistics: statistics)
        #expect(r.error == nil)
        #expect(statistics.cutChunks > 4, "\(format): \(statistics.cutChunks) chunks cut by sync")
        // The first large value ends the cutting (resp and jsonl split it, and the one after, in pieces; restore
        // writes each in place); the memory report cuts to the end.
        switch format {
        case .resp, .jsonl: #expect(statistics.valuesSplit == 2, "\(format): \(statistics.valuesSplit) values split")
        case .restore: #expect(statistics.valuesSplit == 0)
        case .memory: #expect(statistics.cutChunks > 12, "\(statistics.cutChunks) chunks cut by sync")
        }
    }

    /// Progress is reported from the chunks as they are cut, and ends with every key and byte counted.
    @Test func progressCountsTheKeysOfEveryChunk() throws {
        var b = RDBBuilder(version: 10)
        for db: UInt64 in [0, 2] {
            b.selectDB(db)
            for i in 0..<500 { b.key(type: 0, "key:\(i)", value: RDBBuilder.string("v"), expireMs: i % 2 == 0 ? 4_102_444_800_000 : nil) }
        }
        let bytes = b.finished()
        let path = try Self.write(bytes)
        defer { unlink(path) }
        let lines = Collected()
        let out = OutputBuffer(target: MemoryTarget())
        var driver = DecodeDriver()
        driver.threads = 3
        driver.chunkBytes = 300
        driver.parallelMinimumBytes = 0
        driver.progress = { lines.append($0) }
        var sink = FilteringVisitor(inner: RESPWriter(out: out), filter: KeyFilter())
        try driver.decode(paths: [path], into: &sink)
        #expect(sink.inner.keysWritten == 1000)
        let last = lines.all.last ?? ""
        #expect(last.contains("1000 keys"), "\(last)")
        #expect(last.contains("(100%)"), "\(last)")
    }

    final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ s: String) { lock.withLock { lines.append(s) } }
        var all: [String] { lock.withLock { lines } }
    }

    static func write(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "parallel-\(UUID().uuidString).rdb"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}
