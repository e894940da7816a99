import Foundation
import Testing
import RDBKit
import RDBSinks

/// Systematic corruption of every small fixture: truncation at every offset, single-byte flips, stomped
/// length prefixes. Each decode must end in an `RDBError` or a decode whose events are well formed; a trap
/// would crash the test process (debug build: bounds and overflow checks are on).
///
/// Cost control (the sweeps run in a debug build, and a file of N bytes has N cuts): the top-level record
/// boundaries of each fixture are found once. A mutation inside record i only changes how record i (and,
/// when its framing breaks, what follows) is read; records before it are the same bytes the intact decode
/// already read. So each mutated input is the file's 9-byte header followed by the bytes from the start of
/// record i: the truncated prefix for cuts, and records i, i+1, i+2 for flips and stomps. Cuts inside a
/// record larger than `bigRecord` are sampled (its first 512 offsets, its last 64, 512 spread evenly).
/// Files up to `everyOffsetLimit` are flipped at every offset, larger ones at their first 128 offsets and
/// `sampledFlips` more spread evenly; a flipped input ends at most 8 KiB after the flip.
@Suite struct SweepTests {
    static let smallLimit = 64 << 10
    static let everyOffsetLimit = 4 << 10
    static let sampledFlips = 384
    static let bigRecord = 4 << 10
    static let masks: [UInt8] = [0x01, 0x80, 0xFF]

    static let fixtures: [String] = Fixtures.files(endingWith: ".rdb").filter { path in
        let size = (try? FileManager.default.attributesOfItem(atPath: Fixtures.url(path).path)[.size] as? Int) ?? Int.max
        return size < smallLimit
    }

    /// Checks the event grammar and reads every byte of every view it is given.
    struct Checker: RDBVisitor {
        var problems: [String] = []
        var sum: UInt64 = 0
        var keys = 0
        var inKey = false
        var inEntry = false
        var inGroup = false
        var inConsumer = false

        mutating func touch(_ b: UnsafeRawBufferPointer) { for x in b { sum = sum &* 31 &+ UInt64(x) } }
        mutating func touch(_ s: RDBString) {
            if s.isInteger { s.withBytes { touch($0) } } else { touch(s.bytes) }
        }
        mutating func expect(_ ok: Bool, _ what: @autoclosure () -> String) { if !ok { problems.append(what()) } }

        mutating func auxField(key: RDBString, value: RDBString) throws { touch(key); touch(value) }
        mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
            expect(!inKey, "beginKey inside a key")
            touch(key)
            inKey = true
            return .decode
        }
        mutating func stringValue(_ v: RDBString) throws { expect(inKey, "value outside a key"); touch(v) }
        mutating func listElement(_ v: RDBString) throws { expect(inKey, "element outside a key"); touch(v) }
        mutating func setMember(_ v: RDBString) throws { expect(inKey, "member outside a key"); touch(v) }
        mutating func zsetMember(_ m: RDBString, score: Double) throws { expect(inKey, "member outside a key"); touch(m) }
        mutating func zsetMember(_ m: RDBString, scoreText: RDBString) throws {
            expect(inKey, "member outside a key")
            touch(m)
            _ = try RDBParser.score(scoreText)
        }
        mutating func hashField(_ f: RDBString, value: RDBString, expireAtMs: Int64?) throws {
            expect(inKey, "field outside a key")
            touch(f)
            touch(value)
        }
        mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws {
            expect(inKey && !inEntry && fieldCount >= 0, "bad beginStreamEntry")
            inEntry = true
        }
        mutating func streamEntryField(_ f: RDBString, value: RDBString) throws { expect(inEntry, "field outside an entry"); touch(f); touch(value) }
        mutating func endStreamEntry() throws { expect(inEntry, "endStreamEntry outside an entry"); inEntry = false }
        mutating func beginStreamGroup(_ g: RDBStreamGroup) throws { expect(inKey && !inGroup, "bad beginStreamGroup"); inGroup = true; touch(g.name) }
        mutating func beginStreamConsumer(_ c: RDBStreamConsumer) throws { expect(inGroup && !inConsumer, "bad beginStreamConsumer"); inConsumer = true; touch(c.name) }
        mutating func endStreamConsumer() throws { expect(inConsumer, "bad endStreamConsumer"); inConsumer = false }
        mutating func endStreamGroup() throws { expect(inGroup && !inConsumer, "bad endStreamGroup"); inGroup = false }
        mutating func moduleValue(_ module: RDBModuleID, raw: UnsafeRawBufferPointer) throws { touch(raw) }
        mutating func endKey() throws {
            expect(inKey && !inEntry && !inGroup, "endKey with an open key part")
            inKey = false
            keys += 1
        }
        mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws {
            expect(lostRange.lowerBound <= lostRange.upperBound, "reversed lost range")
            inKey = false; inEntry = false; inGroup = false; inConsumer = false
        }
        mutating func endFile(checksum: RDBChecksumStatus) throws { expect(!inKey, "endFile inside a key") }
    }

    /// Skips every key; notes where each key's value starts.
    struct Skipper: RDBVisitor {
        var valueOffsets: [Int: Int] = [:]
        mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
            valueOffsets[info.recordOffset] = info.valueOffset
            return .skip
        }
    }

    /// Where the top-level records of a file start.
    struct Layout {
        /// 9 when the header parses, else 0 (the whole file is then one region).
        var header: Int
        /// Start of each record (the EOF opcode with its checksum is the last one).
        var starts: [Int]
        /// Value offset of each key record, by record start.
        var valueOffsets: [Int: Int]
        /// Where a decode of the intact file ends (nil when it fails).
        var end: Int?

        /// Index of the region holding `offset` (the last start at or before it).
        func region(of offset: Int) -> Int {
            var lo = 0, hi = starts.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if starts[mid] <= offset { lo = mid + 1 } else { hi = mid }
            }
            return max(0, lo - 1)
        }
    }

    static func layout(_ file: [UInt8]) -> Layout {
        file.withUnsafeBytes { raw -> Layout in
            var whole = Skipper()
            let end = try? RDBReader.decode(bytes: raw, into: &whole, options: options()).endOffset
            var parser = RDBParser(options: options())
            var c = ByteCursor(raw)
            var v = Skipper()
            do { try parser.parseHeader(&c, &v) } catch { return Layout(header: 0, starts: [0], valueOffsets: [:], end: end) }
            var starts = [c.position]
            // The last start is the EOF opcode's (its checksum belongs to it) or the record that failed.
            while let r = try? parser.parseRecord(&c, &v) {
                if case .endOfFile = r { break }
                starts.append(c.position)
            }
            return Layout(header: 9, starts: starts, valueOffsets: v.valueOffsets, end: end)
        }
    }

    static func options(salvage: Bool = false, checksum: Bool = false) -> RDBDecoderOptions {
        var o = RDBDecoderOptions()
        o.allowNewerVersions = true
        o.verifyChecksum = checksum
        o.salvage = salvage
        return o
    }

    /// The header, then `file[from..<to]` (mutated by `edit`, given offsets in the file).
    static func excerpt(_ file: [UInt8], _ layout: Layout, from: Int, to: Int) -> [UInt8] {
        if from <= layout.header { return Array(file[0..<to]) }
        return Array(file[0..<layout.header]) + file[from..<to]
    }

    /// Decodes and classifies; problems (malformed events, a non-RDBError, a bad error) go to `problems`.
    @discardableResult
    static func run(_ bytes: [UInt8], options: RDBDecoderOptions, _ what: @autoclosure () -> String, _ problems: inout [String]) -> Bool {
        var v = Checker()
        do {
            _ = try RDBReader.decode(bytes: bytes, into: &v, options: options)
            problems += v.problems.map { "\(what()): \($0)" }
            return true
        } catch let e as RDBError {
            problems += v.problems.map { "\(what()): \($0)" }
            if e.offset < 0 || e.offset > bytes.count { problems.append("\(what()): error offset \(e.offset) outside the input") }
            if e.message.isEmpty { problems.append("\(what()): error without a message") }
            return false
        } catch {
            problems.append("\(what()): non-RDBError \(error)")
            return false
        }
    }

    /// Cut positions: every offset, except inside big records (sampled).
    static func cuts(_ file: [UInt8], _ layout: Layout) -> [Int] {
        var out = Array(0...min(layout.header, file.count))
        var bounds = layout.starts
        if bounds.last != file.count { bounds.append(file.count) }
        for (a, b) in zip(bounds, bounds.dropFirst()) where b > a {
            if b - a <= bigRecord {
                out += (a + 1)...b
            } else {
                out += (a + 1)...(a + 512)
                out += Swift.stride(from: a + 513, to: b - 64, by: max(1, (b - a - 576) / 512))
                out += (b - 64)...b
            }
        }
        return Array(Set(out.filter { $0 <= file.count })).sorted()
    }

    @Test func fixturesArePresent() {
        #expect(SweepTests.fixtures.count > 100)
    }

    @Test(arguments: fixtures)
    func truncatedAtEveryOffset(_ fixture: String) throws {
        let file = try Fixtures.bytes(fixture)
        let layout = SweepTests.layout(file)
        let opts = SweepTests.options()
        var problems: [String] = []
        for cut in SweepTests.cuts(file, layout) {
            let from = layout.starts[layout.region(of: max(0, cut - 1))]
            let decoded = SweepTests.run(SweepTests.excerpt(file, layout, from: from, to: cut), options: opts, "cut \(cut)", &problems)
            // A cut before the end of the RDB (EOF opcode and checksum) must fail; bytes after it are not
            // the decoder's (an AOF tail may follow).
            if decoded && cut < (layout.end ?? 0) { problems.append("cut \(cut): a truncated file decoded") }
            if problems.count > 20 { break }
        }
        #expect(problems.isEmpty, "\(fixture): \(problems.prefix(20).joined(separator: "; "))")
    }

    @Test(arguments: fixtures)
    func singleByteFlips(_ fixture: String) throws {
        let file = try Fixtures.bytes(fixture)
        let layout = SweepTests.layout(file)
        let offsets: [Int]
        if file.count <= SweepTests.everyOffsetLimit {
            offsets = Array(0..<file.count)
        } else {
            let head = min(file.count, 128)
            let stride = max(1, (file.count - head) / SweepTests.sampledFlips)
            offsets = Array(0..<head) + Array(Swift.stride(from: head, to: file.count, by: stride))
        }
        var problems: [String] = []
        for (i, at) in offsets.enumerated() {
            let r = layout.region(of: at)
            let from = at < layout.header ? 0 : layout.starts[r]
            // Records r, r+1, r+2, at most 8 KiB past the flip (a big record is then cut: still hostile input).
            let to = min(r + 3 < layout.starts.count ? layout.starts[r + 3] : file.count, at + (8 << 10))
            var mutated = SweepTests.excerpt(file, layout, from: from, to: to)
            let local = from <= layout.header ? at : at - from + layout.header
            let original = mutated[local]
            for mask in SweepTests.masks {
                mutated[local] = original ^ mask
                // Alternate: plain (stops at the first error) and salvage (goes on past corrupt content).
                let o = SweepTests.options(salvage: (i + Int(mask)) % 2 == 0)
                SweepTests.run(mutated, options: o, "flip \(at)^\(mask)", &problems)
            }
            if problems.count > 20 { break }
        }
        #expect(problems.isEmpty, "\(fixture): \(problems.prefix(20).joined(separator: "; "))")
    }

    /// Each key's first value length (element count, string length, or LZF lengths), and each of the
    /// record's first 24 bytes, replaced by hostile lengths: the exact remaining size, one more, twice,
    /// 2^31, 2^32-1, 2^40, the 64-bit maximum, 0, and string-encoding / invalid prefix bytes.
    @Test(arguments: fixtures)
    func stompedLengthPrefixes(_ fixture: String) throws {
        let file = try Fixtures.bytes(fixture)
        let layout = SweepTests.layout(file)
        var problems: [String] = []
        let opts = SweepTests.options()
        for (r, start) in layout.starts.enumerated().prefix(150) {
            guard let at = layout.valueOffsets[start], at < file.count else { continue }
            var fields: [(Int, Int)] = []  // (offset, encoded size) of length fields to stomp
            let b0 = file[at]
            if b0 >> 6 == 3 {
                if b0 == 0xC3 {  // LZF: the compressed and the uncompressed length
                    let c1 = SweepTests.lengthFieldSize(file, at + 1)
                    fields.append((at + 1, c1))
                    fields.append((at + 1 + c1, SweepTests.lengthFieldSize(file, at + 1 + c1)))
                }
            } else {
                fields.append((at, SweepTests.lengthFieldSize(file, at)))
            }
            let to = min(r + 2 < layout.starts.count ? layout.starts[r + 2] : file.count, max(start, at) + (8 << 10))
            let remaining = UInt64(to - at)
            let hostile: [[UInt8]] = [
                RDBBuilder.length(remaining), RDBBuilder.length(remaining + 1), RDBBuilder.length(remaining * 2),
                RDBBuilder.length(1 << 31), RDBBuilder.length(0xFFFF_FFFF), RDBBuilder.length(1 << 40),
                [0x81] + [UInt8](repeating: 0xFF, count: 8), [0x81, 0x7F] + [UInt8](repeating: 0xFF, count: 7),
                RDBBuilder.length(0), [0x3F], [0x7F, 0xFF], [0xC0], [0xC3], [0x82],
            ]
            for (off, size) in fields where off + size <= to {
                for h in hostile {
                    let mutated = Array(file[0..<layout.header]) + file[start..<off] + h + file[(off + size)..<to]
                    SweepTests.run(mutated, options: opts, "stomp \(off) \(h)", &problems)
                }
            }
            // Every byte of the record's first 24 (type, prefixes, key length, counts, blob headers) replaced
            // by a few of them.
            for off in start..<min(start + 24, to) where !fields.contains(where: { $0.0 == off }) {
                for h in [hostile[1], hostile[4], hostile[6], [0xC3], [0x3F]] {
                    let mutated = Array(file[0..<layout.header]) + file[start..<off] + h + file[(off + 1)..<to]
                    SweepTests.run(mutated, options: opts, "stomp \(off) \(h)", &problems)
                }
            }
            if problems.count > 20 { break }
        }
        #expect(problems.isEmpty, "\(fixture): \(problems.prefix(20).joined(separator: "; "))")
    }

    static func lengthFieldSize(_ b: [UInt8], _ at: Int) -> Int {
        guard at < b.count else { return 1 }
        switch b[at] >> 6 {
        case 1: return 2
        case 2: return b[at] == 0x81 ? 9 : 5
        default: return 1
        }
    }
}

/// The hostile shapes the issue names, each rejected with a typed error before allocating or looping.
@Suite struct BoundedResourceTests {
    func decodeTimed(_ bytes: [UInt8], options: RDBDecoderOptions = .init()) -> (RDBError?, Double) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let e = decodeError(bytes, options: options)
        return (e, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }

    func file(type: UInt8, value: [UInt8], version: Int = 10) -> [UInt8] {
        var b = RDBBuilder(version: version)
        b.key(type: type, "k", value: value)
        return b.finished()
    }

    @Test func lengthLargerThanWhatRemains() {
        // A string, a list count, a set count, a zset count, a hash count claiming 2^32-1 / 2^63 items.
        for n: UInt64 in [1_000, 0xFFFF_FFFF, 1 << 63, UInt64.max] {
            for type: UInt8 in [0, 1, 2, 3, 4, 5, 14, 18, 15, 19, 21] {
                let (e, t) = decodeTimed(file(type: type, value: RDBBuilder.length(n) + [0x01, 0x61]))
                #expect(e != nil, "type \(type) count \(n)")
                #expect(e?.code == .truncated || e?.code == .invalidLength || e?.code == .corruptEncoding, "type \(type): \(String(describing: e))")
                #expect(t < 1, "type \(type) count \(n) took \(t) s")
            }
        }
    }

    @Test func ziplistHeaderDisagreeingWithEntries() {
        let entries = [RDBBuilder.zlString("a"), RDBBuilder.zlString("b")]
        var zl = RDBBuilder.ziplist(entries)
        // zllen says 3, entries are 2.
        zl[8] = 3
        #expect(decodeError(file(type: 10, value: RDBBuilder.string(zl), version: 6))?.code == .corruptEncoding)
        // zlbytes larger than the blob.
        var big = RDBBuilder.ziplist(entries)
        big[0] = 0xFF; big[1] = 0xFF; big[2] = 0xFF; big[3] = 0x7F
        #expect(decodeError(file(type: 10, value: RDBBuilder.string(big), version: 6))?.code == .corruptEncoding)
        // zltail pointing elsewhere.
        var tail = RDBBuilder.ziplist(entries)
        tail[4] = 10
        #expect(decodeError(file(type: 10, value: RDBBuilder.string(tail), version: 6))?.code == .corruptEncoding)
        // An entry whose prevlen disagrees with the previous entry.
        var prev = RDBBuilder.ziplist(entries)
        prev[13] = 7  // the second entry's prevlen (the first entry is 3 bytes)
        #expect(decodeError(file(type: 10, value: RDBBuilder.string(prev), version: 6))?.code == .corruptEncoding)
    }

    @Test func lzfDeclaringAHugeOutput() {
        let payload: [UInt8] = [0x02, 0x61, 0x62, 0x63]  // literal "abc"
        for ulen: UInt64 in [1 << 31, 1 << 40, UInt64.max, 4 * 88 + 65] {
            let s: [UInt8] = [0xC3] + RDBBuilder.length(UInt64(payload.count)) + RDBBuilder.length(ulen) + payload
            let (e, t) = decodeTimed(file(type: 0, value: s))
            #expect(e?.code == .lzf || e?.code == .limitExceeded, "ulen \(ulen): \(String(describing: e))")
            #expect(t < 1)
        }
        // Within the expansion bound but over the configured limit.
        var o = RDBDecoderOptions()
        o.maxStringBytes = 100
        let s: [UInt8] = [0xC3] + RDBBuilder.length(4) + RDBBuilder.length(200) + payload
        #expect(decodeError(file(type: 0, value: s), options: o)?.code == .limitExceeded)
        // Declared output larger than what the data gives.
        let short: [UInt8] = [0xC3] + RDBBuilder.length(4) + RDBBuilder.length(10) + payload
        #expect(decodeError(file(type: 0, value: short))?.code == .lzf)
    }

    @Test func listpackWithLoopingBackLength() throws {
        // Back-lengths are never followed: a forward walk steps over them. A back-length that points
        // backwards at the header (or at itself) changes nothing; the walk ends at the terminator.
        var lp = RDBBuilder.listpack([RDBBuilder.lpString("a"), RDBBuilder.lpString("b")])
        lp[6 + 2] = 0x7F  // first element's back-length: 127 (far before the blob)
        lp[6 + 5] = 0x00  // second element's back-length: 0 (itself)
        let ev = try record(file(type: 20, value: RDBBuilder.string(lp)))
        #expect(ev.contains("set a") && ev.contains("set b"))
        // A header count that is wrong is an error; an element running past the end too.
        var count = RDBBuilder.listpack([RDBBuilder.lpString("a")])
        count[4] = 9
        #expect(decodeError(file(type: 20, value: RDBBuilder.string(count)))?.code == .corruptEncoding)
        let long = RDBBuilder.listpack([[0xF0, 0xFF, 0xFF, 0xFF, 0x7F, 0x61]])
        #expect(decodeError(file(type: 20, value: RDBBuilder.string(long)))?.code == .corruptEncoding)
    }

    @Test func streamWithAbsurdCounts() {
        let node = RDBBuilder.listpack([
            RDBBuilder.lpInt(1), RDBBuilder.lpInt(0), RDBBuilder.lpInt(1), RDBBuilder.lpString("f"), RDBBuilder.lpInt(0),
            RDBBuilder.lpInt(2), RDBBuilder.lpInt(0), RDBBuilder.lpInt(0), RDBBuilder.lpString("v"), RDBBuilder.lpInt(4),
        ])
        let nodeKey = RDBBuilder.string([UInt8](repeating: 0, count: 15) + [1])
        func stream(nodes: UInt64 = 1, groups: UInt64 = 0, pel: UInt64? = nil, consumers: UInt64? = nil, node lp: [UInt8] = node) -> [UInt8] {
            var v = RDBBuilder.length(nodes) + nodeKey + RDBBuilder.string(lp)
            v += RDBBuilder.length(1) + RDBBuilder.length(0) + RDBBuilder.length(1)  // length, last ID
            v += RDBBuilder.length(0) + RDBBuilder.length(1) + RDBBuilder.length(0) + RDBBuilder.length(0) + RDBBuilder.length(1)
            v += RDBBuilder.length(groups)
            if let pel {
                v += RDBBuilder.string("g") + RDBBuilder.length(0) + RDBBuilder.length(1) + RDBBuilder.length(0)
                v += RDBBuilder.length(pel)
                if let consumers { v += RDBBuilder.length(consumers) }
            }
            return file(type: 19, value: v)
        }
        #expect(decodeError(stream()) == nil)
        for n: UInt64 in [0xFFFF_FFFF, 1 << 62, UInt64.max] {
            for bytes in [stream(nodes: n), stream(groups: n), stream(groups: 1, pel: n), stream(groups: 1, pel: 0, consumers: n)] {
                let (e, t) = decodeTimed(bytes)
                #expect(e?.code == .truncated, "\(String(describing: e))")
                #expect(t < 1)
            }
        }
        // Master entry claiming more fields / entries than the node holds.
        var fields = node
        fields[6 + 4] = 0x7F  // master field count 127 (the 3rd element, a 7-bit uint)
        #expect(decodeError(stream(node: fields))?.code == .corruptEncoding)
        var live = node
        live[6] = 0x7F  // live count 127
        #expect(decodeError(stream(node: live))?.code == .corruptEncoding)
    }

    @Test func manifestListingThousandsOfFiles() {
        var text = "file appendonly.aof.1.base.rdb seq 1 type b\n"
        for i in 1...5000 { text += "file appendonly.aof.\(i).incr.aof seq \(i) type i\n" }
        do {
            _ = try AOFManifest.parse(Array(text.utf8))
            Issue.record("a 5001-file manifest was accepted")
        } catch let e as RDBError {
            #expect(e.code == .aofFormat || e.code == .limitExceeded)
        } catch {
            Issue.record("non-RDBError \(error)")
        }
    }

    @Test func streamedRecordLimitAndHugeStrings() {
        // A string claiming 2^40 bytes in a stream: the record limit stops the buffering, not memory.
        var b = RDBBuilder(version: 9)
        b.bytes += [0x00] + RDBBuilder.string("k") + RDBBuilder.length(1 << 40)
        let bytes = b.bytes + [UInt8](repeating: 0x61, count: 1000)
        var o = RDBDecoderOptions()
        o.maxRecordBytes = 1 << 20
        let input = InputBuffer(stream: ChunkedArrayStream(bytes, chunk: 100), chunkSize: 64)
        var r = Recorder()
        do {
            _ = try RDBReader.decode(input, into: &r, options: o)
            Issue.record("decoded")
        } catch let e as RDBError {
            #expect(e.code == .truncated || e.code == .limitExceeded)
        } catch {
            Issue.record("non-RDBError \(error)")
        }
    }
}
