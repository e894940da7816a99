import RDBKit
@testable import RDBSinks
import Testing

/// The inlined per-key paths of `keys` and `stats`: the word-at-a-time test for keys that need no escaping, the
/// line written with one capacity check, and values stepped over inline (`shortStringEnd`) instead of by
/// `skipString`. Each is checked against the general path it stands in for.
@Suite struct ReportsFastPathTests {
    /// The escaping of `OutputBuffer.appendLineEscaped`, one byte at a time (the documented rules).
    static func referenceEscaped(_ key: [UInt8]) -> [UInt8] {
        let out = OutputBuffer(target: nil)
        key.withUnsafeBytes { out.appendLineEscapedSlow($0) }
        return out.take()
    }

    static func escaped(_ key: [UInt8]) -> [UInt8] {
        let out = OutputBuffer(target: nil)
        key.withUnsafeBytes { out.appendLineEscaped($0) }
        return out.take()
    }

    /// Every length from 0 to 80 (the tail word, whole words, the overlapping last word, past the 64-byte inline
    /// limit of `KeysWriter`), each byte that needs escaping or is a boundary of the plain range, at every position.
    @Test func plainTestMatchesByteByByte() {
        let specials: [UInt8] = [0x00, 0x09, 0x0A, 0x1F, 0x5C, 0x7F, 0x80, 0xC2, 0xE9, 0xFF]
        let plains: [UInt8] = [0x20, 0x21, 0x5B, 0x5D, 0x7E]
        for n in 0...80 {
            let base = (0..<n).map { UInt8(0x41 + $0 % 26) }
            #expect(Self.escaped(base) == base)
            #expect(OutputBuffer.isPrintableASCII(base.withUnsafeBytes { $0 }))
            for i in 0..<n {
                for s in specials + plains {
                    var k = base
                    k[i] = s
                    #expect(Self.escaped(k) == Self.referenceEscaped(k), "length \(n), byte \(s) at \(i)")
                }
            }
        }
    }

    /// Lines through `KeysWriter`: keys up to and past the inline limit, escaped keys, integer keys, and the
    /// `db<TAB>type<TAB>` prefix of databases up to the largest SELECTDB and of every kind name length.
    @Test func keysLines() throws {
        var b = RDBBuilder(version: 9)
        var expected = ""
        let keys: [[UInt8]] = [
            Array("k".utf8), Array("str:01242923".utf8), Array(repeating: 0x61, count: 64),
            Array(repeating: 0x62, count: 65), Array(repeating: 0x63, count: 300), Array("tab\there".utf8), [],
        ]
        for db in [0, 9, 10, 123_456, Int(Int32.max)] {
            b.bytes += [0xFE] + RDBBuilder.length(UInt64(db))
            for k in keys {
                b.key(type: 0, bytes: k, value: PlainValue.string("v"))
                expected += "\(db)\tstring\t" + String(decoding: Self.referenceEscaped(k), as: UTF8.self) + "\n"
            }
            b.bytes += [0, 0xC1] + RDBBuilder.le(Int16(-300)) + PlainValue.string("v")  // a key stored as an int16
            expected += "\(db)\tstring\t-300\n"
            b.key(type: 2, bytes: Array("a set".utf8), value: RDBBuilder.length(1) + RDBBuilder.string("m"))
            expected += "\(db)\tset\ta set\n"
        }
        let text = String(decoding: try sinkOutput(b.finished()) { KeysWriter(out: $0) }, as: UTF8.self)
        #expect(text == expected)
    }

    /// String values in every framing the inline step handles (6- and 14-bit lengths, integers, LZF with 6- and
    /// 14-bit lengths) and the ones it leaves to `skipString` (32-bit lengths, LZF with longer lengths): the
    /// sizes `stats` reports from `.raw` views are those of the measuring decoder (which walks every value with
    /// `skipValue`), and `keys` lists every key.
    @Test func statsSizesOfEveryStringFraming() throws {
        // LZF made of literal runs (a control byte n - 1 < 32, then n bytes): valid, and as long as we like.
        func lzf(_ u: [UInt8]) -> [UInt8] {
            var c: [UInt8] = []
            var i = 0
            while i < u.count {
                let n = min(32, u.count - i)
                c += [UInt8(n - 1)] + u[i..<(i + n)]
                i += n
            }
            return [0xC3] + RDBBuilder.length(UInt64(c.count)) + RDBBuilder.length(UInt64(u.count)) + c
        }
        let values: [[UInt8]] = [
            RDBBuilder.string(""), RDBBuilder.string("x"), RDBBuilder.string(Array(repeating: 0x78, count: 63)),
            RDBBuilder.string(Array(repeating: 0x79, count: 64)), RDBBuilder.string(Array(repeating: 0x7A, count: 16383)),
            RDBBuilder.string(Array(repeating: 0x7A, count: 16384)), RDBBuilder.string(Array(repeating: 0x7A, count: 70000)),
            [0xC0, 0x85], [0xC1] + RDBBuilder.le(Int16(1234)), [0xC2] + RDBBuilder.le(Int32(-123_456)),
            lzf(Array(repeating: 0x61, count: 20)), lzf((0..<200).map { UInt8($0 & 0x7F) }),
            lzf((0..<20000).map { UInt8($0 % 251) }),
        ]
        var b = RDBBuilder(version: 9)
        for (i, v) in values.enumerated() {
            b.bytes += [0] + RDBBuilder.string("key\(i)") + v
        }
        let bytes = b.finished()
        var measured = RDBDecoderOptions()
        measured.measureValues = true
        var raw = StatsCollector(out: OutputBuffer(target: nil))
        var sized = StatsCollector(out: OutputBuffer(target: nil))
        _ = try RDBReader.decode(bytes: bytes, into: &raw)
        _ = try RDBReader.decode(bytes: bytes, into: &sized, options: measured)
        #expect(raw.stats.total == sized.stats.total)
        #expect(raw.stats.total.keys == values.count)
        #expect(raw.stats.total.valueBytes == values.reduce(0) { $0 + $1.count })
        let lines = String(decoding: try sinkOutput(bytes) { KeysWriter(out: $0) }, as: UTF8.self)
        #expect(lines == values.indices.map { "0\tstring\tkey\($0)\n" }.joined())
    }

    /// The memory report takes string keys whole and undecompressed: its rows are those of the decoded values
    /// (salvage mode delivers them as events, decompressed) in every framing, an LZF string short enough to be an
    /// integer's text among them; LZF data that does not decompress to its declared size is an error naming the
    /// key and the value's offset, as when it is decompressed (for a string longer than an integer's text, when
    /// no checked CRC64 trailer covers it), and in salvage mode the key's row is left out.
    @Test func memoryRowsOfEveryStringFraming() throws {
        func lzf(_ text: String) -> [UInt8] {  // literal runs of up to 32 bytes
            let u = Array(text.utf8)
            var c: [UInt8] = []
            for i in stride(from: 0, to: u.count, by: 32) {
                let n = min(32, u.count - i)
                c += [UInt8(n - 1)] + u[i..<(i + n)]
            }
            return [0xC3] + RDBBuilder.length(UInt64(c.count)) + RDBBuilder.length(UInt64(u.count)) + c
        }
        let values: [[UInt8]] = [
            RDBBuilder.string(""), RDBBuilder.string("x"), RDBBuilder.string("12345678901234567"),
            RDBBuilder.string("-9223372036854775808"), RDBBuilder.string("0123"), RDBBuilder.string(Array(repeating: 0x78, count: 300)),
            RDBBuilder.string(Array(repeating: 0x7A, count: 70000)), [0xC0, 0x85], [0xC2] + RDBBuilder.le(Int32(-123_456)),
            lzf("12345678901234567"), lzf("-9223372036854775808"), lzf("1234567890123456789012"), lzf("not a number"),
            lzf(String(repeating: "abc", count: 100)),
        ]
        var b = RDBBuilder(version: 9)
        for (i, v) in values.enumerated() { b.bytes += [0] + RDBBuilder.string("key\(i)") + v }
        let bytes = b.finished()
        var events = RDBDecoderOptions()
        events.salvage = true
        let whole = String(decoding: try sinkOutput(bytes) { MemoryReportWriter(out: $0) }, as: UTF8.self)
        let decoded = String(decoding: try sinkOutput(bytes, options: events) { MemoryReportWriter(out: $0) }, as: UTF8.self)
        #expect(whole == decoded)
        let rows = whole.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(rows.count == values.count)
        // Integer text takes no string of its own (as an int-encoded value); other text is an sds string.
        #expect(rows[9][3] == rows[7][3] && rows[10][3] == rows[7][3] && rows[2][3] == rows[7][3])
        #expect(rows[9][5] == "17" && rows[11][3] != rows[7][3] && rows[12][5] == "12" && rows[13][5] == "300")

        // Corrupt LZF: a 40-byte string (not read back) and a 15-byte one (read back, to tell an integer). The
        // first is checked when no checked CRC64 covers the file: RDB 4 (no trailer), or verification off.
        for (text, cut) in [(String(repeating: "q", count: 40), 3), ("123456789012345", 2)] {
            var v = lzf(text)
            v.removeLast(cut)
            v[1] = UInt8(v.count - 3)  // the compressed length of what is left
            for version in [4, 9] {
                var c = RDBBuilder(version: version)
                c.bytes += [0] + RDBBuilder.string("ok") + RDBBuilder.string("v")
                let valueAt = c.bytes.count + 1 + 1 + 6
                c.bytes += [0] + RDBBuilder.string("broken") + v
                let file = c.finished()
                for verified in [true, false] {
                    do {
                        let rows = String(decoding: try sinkOutput(file) { MemoryReportWriter(out: $0, checksumVerified: verified) },
                                          as: UTF8.self)
                        // Sized from its header: the trailer, written after the corruption, matches.
                        #expect(text.count > 20 && version >= 5 && verified, "corrupt LZF (\(text.count) bytes) was not reported")
                        #expect(rows.hasSuffix("0,string,broken,96,string,40,40,\n"), "\(rows)")
                    } catch let e as RDBError {
                        #expect(text.count <= 20 || version < 5 || !verified, "\(e)")
                        #expect(e.code == .lzf && e.offset == valueAt && e.key == Array("broken".utf8), "\(e)")
                    }
                }
                // Salvage mode (values decoded) goes on after it, without a row for it (nor a part of one).
                let salvaged = String(decoding: try sinkOutput(file, options: events) { MemoryReportWriter(out: $0) }, as: UTF8.self)
                #expect(salvaged.split(separator: "\n").dropFirst() == ["0,string,ok,56,string,1,1,"])
            }
        }
        // The CRC64 trailer catches what the report does not read: a changed byte of a compressed literal run.
        var c = RDBBuilder(version: 9)
        c.bytes += [0] + RDBBuilder.string("big") + lzf(String(repeating: "q", count: 40))
        var file = c.finished()
        file[file.count - 9 - 30] ^= 0x01
        do {
            _ = try sinkOutput(file) { MemoryReportWriter(out: $0) }
            Issue.record("a changed LZF byte was not reported")
        } catch let e as RDBError {
            #expect(e.code == .checksumMismatch, "\(e)")
        }
    }

    /// The memory model's integer test agrees with `DecimalFormatter.parseCanonical` on every kind of text
    /// (canonical or not, every length to 21, the int64 limits and one past them), and its size arithmetic with
    /// its definitions: jemalloc's classes (4 per power of two above 64), element by element.
    @Test func memoryModelArithmetic() {
        var texts = ["", "-", "0", "-0", "00", "01", "-01", "+1", " 1", "1 ", "1a", "a1", "12345678901234567", "123456789012345678",
                     "-123456789012345678", "1234567890123456789", "9223372036854775807", "9223372036854775808",
                     "-9223372036854775808", "-9223372036854775809", "99999999999999999999", "999999999999999999999",
                     ".5", "/1", ".", "/", "-.", ",1"]
        var rng = LZFTests.SplitMix(state: 42)
        for _ in 0..<2000 {
            let n = Int.random(in: 1...21, using: &rng)
            let digits = (0..<n).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) }
            texts.append((Bool.random(using: &rng) ? "-" : "") + String(digits))
            // One byte just outside the digits (or a letter) somewhere in the text.
            var spoiled = Array(texts.last!.utf8)
            spoiled[Int.random(in: 0..<spoiled.count, using: &rng)] = [0x2E, 0x2F, 0x3A, 0x3F, 0x40, 0x61, 0xB0, 0x00].randomElement(using: &rng)!
            texts.append(String(decoding: spoiled, as: UTF8.self))
        }
        for t in texts {
            let b = Array(t.utf8)
            let ours = b.withUnsafeBytes { MemoryModel.integerText($0) }
            let canonical = b.withUnsafeBytes { DecimalFormatter.parseCanonical($0) }
            #expect(ours == canonical, "\(t)")
            #expect(b.withUnsafeBytes { MemoryModel.isIntegerText($0) } == (canonical != nil), "\(t)")
            let sized = b.withUnsafeBytes { MemoryModel.sizeofString(RDBString(bytes: $0)) }
            #expect(sized == (canonical != nil ? 0 : MemoryModel.sizeofText(b.count)), "\(t)")
            // The two in one, as hash tables' elements are measured.
            let both = b.withUnsafeBytes { MemoryModel.lengthAndSize(RDBString(bytes: $0)) }
            #expect(both.length == b.count && both.size == sized, "\(t)")
        }
        let integer = MemoryModel.lengthAndSize(RDBString(integer: -12))
        #expect(integer.length == 8 && integer.size == 0)
        for n in 1...100_000 {
            var p = 64
            while p * 2 < n { p *= 2 }
            let expected = n <= 8 ? 8 : n <= 64 ? (n + 7) / 8 * 8 : (n + p / 4 - 1) / (p / 4) * (p / 4)
            if MemoryModel.malloc(n) != expected {
                Issue.record("malloc(\(n)) = \(MemoryModel.malloc(n)), not \(expected)")
                break
            }
        }
        #expect(MemoryModel.malloc(1 << 40) == 1 << 40 && MemoryModel.malloc((1 << 40) + 1) == (1 << 40) + (1 << 38))
        // sds strings: the header for the length's type (+ NUL), malloc-rounded.
        for l in 0..<70_000 {
            let header = l < 32 ? 2 : l < 256 ? 4 : l < 65536 ? 6 : 10
            if MemoryModel.sizeofText(l) != MemoryModel.malloc(l + header) {
                Issue.record("sizeofText(\(l)) = \(MemoryModel.sizeofText(l)), not \(MemoryModel.malloc(l + header))")
                break
            }
        }
        // Integer entries take the narrowest encoding that holds them (ziplist: 0...12 in the encoding byte, then
        // int8, int16, int24, int32, int64 after it; listpack: 0...127, 13 bits, then int16, int24, int32, int64),
        // at each power of two, one before and one past it, both signs.
        var values: [Int64] = [0, -1, .min, .max]
        for bits in 0..<63 {
            let p = Int64(1) << bits
            values += [p - 1, p, p + 1, -p - 1, -p, -p + 1]
        }
        let int24 = Int64(-(1 << 23))...Int64((1 << 23) - 1)
        for v in values {
            let zip = (0...12).contains(v) ? 1 : Int8(exactly: v) != nil ? 2 : Int16(exactly: v) != nil ? 3
                : int24.contains(v) ? 4 : Int32(exactly: v) != nil ? 5 : 9
            #expect(MemoryModel.ziplistEntry(.integer(v), previous: 0) == zip + 1, "ziplist \(v)")
            let lp = (0...127).contains(v) ? 1 : (-4096...4095).contains(v) ? 2 : Int16(exactly: v) != nil ? 3
                : int24.contains(v) ? 4 : Int32(exactly: v) != nil ? 5 : 9
            #expect(MemoryModel.listpackEntry(.integer(v)) == lp + 1, "listpack \(v)")
        }
        // Back-lengths of strings' entries: 1 byte up to 127, 7 bits a byte above.
        for l in [0, 62, 63, 64, 124, 125, 126, 127, 4094, 4095, 4096, 16_380, 16_381, 16_382, 16_383, 70_000] {
            let body = l + (l < 64 ? 1 : l < 4096 ? 2 : 5)
            let back = body <= 127 ? 1 : body < 16383 ? 2 : body < 2_097_151 ? 3 : 4
            #expect(MemoryModel.listpackEntry(.string(l)) == body + back, "listpack string \(l)")
        }
    }

    /// A compact sorted set is sized as its blob is: scores as the text the file holds (a server writes
    /// `%.17g`: `0.10000000000000001`, not the shortest `0.1`), integers as listpack integers.
    @Test func memoryOfListpackScoresIsTheBlobsSize() throws {
        let blobs = [
            RDBBuilder.listpack([RDBBuilder.lpString("a"), RDBBuilder.lpString("0.10000000000000001")]),
            RDBBuilder.listpack([RDBBuilder.lpString("a"), RDBBuilder.lpString("0.1")]),
            RDBBuilder.listpack([RDBBuilder.lpString("a"), RDBBuilder.lpInt(5), RDBBuilder.lpString("b"), RDBBuilder.lpString("-2.5e-300")]),
        ]
        var b = RDBBuilder(version: 10)
        for (i, blob) in blobs.enumerated() { b.bytes += [17] + RDBBuilder.string("z\(i)") + RDBBuilder.string(blob) }
        let text = String(decoding: try sinkOutput(b.finished()) { MemoryReportWriter(out: $0) }, as: UTF8.self)
        let sizes = text.split(separator: "\n").dropFirst().map { Int($0.split(separator: ",")[3]) ?? -1 }
        let keyOverhead = 24 + 8 + 16  // dict entry, the sds key (2 bytes + 2: 8), robj
        #expect(sizes == blobs.map { keyOverhead + $0.count })
    }

    /// A compact value is sized as the length of its blob, slack inside it included, as rdbtools reads it: a
    /// ziplist integer in a wider encoding than it needs, an intset of 64-bit width holding small numbers, a
    /// zipmap value with free bytes after it.
    @Test func memoryOfCompactValuesIsTheirBlobsLength() throws {
        let values: [(type: UInt8, blob: [UInt8])] = [
            (13, RDBBuilder.ziplist([RDBBuilder.zlString("f"), [0xE0] + RDBBuilder.le(Int64(5))])),
            (11, RDBBuilder.le(UInt32(8)) + RDBBuilder.le(UInt32(2)) + RDBBuilder.le(Int64(1)) + RDBBuilder.le(Int64(2))),
            (9, [1, 1, UInt8(ascii: "a"), 1, 3, UInt8(ascii: "b"), 0, 0, 0, 0xFF]),
        ]
        var b = RDBBuilder(version: 9)
        for (i, v) in values.enumerated() { b.bytes += [v.type] + RDBBuilder.string("k\(i)") + RDBBuilder.string(v.blob) }
        let text = String(decoding: try sinkOutput(b.finished()) { MemoryReportWriter(out: $0) }, as: UTF8.self)
        let rows = text.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let keyOverhead = 24 + 8 + 16  // dict entry, the sds key (2 bytes + 2: 8), robj
        #expect(rows.map { Int($0[3]) ?? -1 } == values.map { keyOverhead + $0.blob.count })
        #expect(rows.map { "\($0[4]),\($0[5]),\($0[6])" } == ["ziplist,1,8", "intset,2,8", "zipmap,1,1"])
    }

    /// A key is listed once its record was read to its end: a string or a list cut off by the end of the input,
    /// or a list whose element framing is corrupt, is not (the lines before it are).
    @Test func onlyWholeRecordsAreListed() throws {
        var b = RDBBuilder(version: 9)
        b.selectDB(0)
        b.key(type: 0, "first", value: RDBBuilder.string("v"))
        var list = RDBBuilder.length(2)
        for e in ["a", "b"] { list += RDBBuilder.string(e) }
        b.key(type: 1, "whole-list", value: list)
        let head = b.bytes
        let cases: [(String, [UInt8])] = [
            ("string cut", head + [0] + RDBBuilder.string("cut") + [0x0A] + Array("abc".utf8)),
            ("list cut", head + [1] + RDBBuilder.string("cut") + RDBBuilder.length(3) + RDBBuilder.string("x")),
            ("list element framing", head + [1] + RDBBuilder.string("cut") + RDBBuilder.length(1) + [0xC3, 0x80] + RDBBuilder.string("rest")),
        ]
        for (what, bytes) in cases {
            let out = OutputBuffer(target: nil)
            var sink = KeysWriter(out: out)
            #expect(throws: RDBError.self, "\(what)") { _ = try RDBReader.decode(bytes: bytes, into: &sink) }
            out.rollback()  // as rdbcat does after an error
            #expect(String(decoding: out.take(), as: UTF8.self) == "0\tstring\tfirst\n0\tlist\twhole-list\n", "\(what)")
        }
    }

    /// A value cut off by the end of the input is left to `skipValue`, which reports it as before.
    @Test func truncatedValueStillFails() throws {
        var b = RDBBuilder(version: 9)
        b.bytes += [0] + RDBBuilder.string("k") + [0x0A] + Array("abc".utf8)  // says 10 bytes, has 3 and the end
        let bytes = b.bytes
        #expect(throws: RDBError.self) { _ = try sinkOutput(bytes) { StatsCollector(out: $0) } }
        #expect(throws: RDBError.self) { _ = try sinkOutput(bytes) { KeysWriter(out: $0) } }
    }
}

/// A list node's elements reach the memory report in one `listElements(from:)` call (its quicklist model in
/// locals); this wrapper takes the default, one `listElement` per element, as any sink does.
private struct OneElementAtATime<Inner: RDBVisitor>: RDBForwardingVisitor {
    var inner: Inner
    mutating func listElements<R: RDBElementReader>(from reader: inout R) throws {
        while let e = try reader.next() { try inner.listElement(e) }
    }
}

@Suite struct MemoryListNodesTests {
    /// Elements at every ziplist integer width's bounds, integer text (canonical or not), strings around the
    /// entry-header and previous-length steps, and enough of them to cross the model's 8 KiB nodes.
    static var listpackNodes: [[UInt8]] {
        let ints: [Int64] = [0, 12, 13, 127, 128, -1, -128, -129, 4095, -4096, 32767, -32768, 32768, 8_388_607, -8_388_608,
                             8_388_608, Int64(Int32.max), Int64(Int32.min), Int64(Int32.max) + 1, .max, .min]
        let texts = ["", "x", "123", "-7", "007", "-0", "9223372036854775807", "9223372036854775808", "12345678901234567890",
                     String(repeating: "a", count: 63), String(repeating: "b", count: 64), String(repeating: "c", count: 252),
                     String(repeating: "d", count: 253), String(repeating: "e", count: 300), String(repeating: "f", count: 16384)]
        var nodes = [RDBBuilder.listpack(ints.map(RDBBuilder.lpInt) + texts.map(RDBBuilder.lpString))]
        nodes.append(RDBBuilder.listpack((0..<3000).map { RDBBuilder.lpString("element:\($0 % 997)") }))
        nodes.append(RDBBuilder.listpack((0..<500).map { RDBBuilder.lpInt(Int64($0) * 104_729 - 20_000_000) }))
        return nodes
    }

    static var file: [UInt8] {
        var b = RDBBuilder(version: 11)
        // Quicklist 2 (type 18): packed nodes, and a plain node (container 1) between them.
        let nodes = listpackNodes
        var value = RDBBuilder.length(UInt64(nodes.count + 1))
        for (i, n) in nodes.enumerated() {
            value += RDBBuilder.length(2) + RDBBuilder.string(n)
            if i == 0 { value += RDBBuilder.length(1) + RDBBuilder.string(String(repeating: "p", count: 9000)) }
        }
        b.key(type: 18, "list:quicklist2", value: value)
        // Quicklist (type 14, Redis 3.2-6.2): ziplist nodes.
        let zl1 = RDBBuilder.ziplist(["1", "22", "-3", "word", "", "18446744073709551616"].map(RDBBuilder.zlString))
        let zl2 = RDBBuilder.ziplist((0..<2000).map { RDBBuilder.zlString("z\($0)") })
        b.key(type: 14, "list:quicklist", value: RDBBuilder.length(2) + RDBBuilder.string(zl1) + RDBBuilder.string(zl2))
        // A small list as one ziplist (type 10, Redis < 3.2).
        b.key(type: 10, "list:ziplist", value: RDBBuilder.string(RDBBuilder.ziplist(["a", "10", "bb"].map(RDBBuilder.zlString))))
        return b.finished()
    }

    @Test func nodeAtATimeEqualsElementAtATime() throws {
        let bytes = Self.file
        let batched = String(decoding: try sinkOutput(bytes) { MemoryReportWriter(out: $0) }, as: UTF8.self)
        let single = String(decoding: try sinkOutput(bytes) { OneElementAtATime(inner: MemoryReportWriter(out: $0)) }, as: UTF8.self)
        #expect(batched == single)
        let rows = batched.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(rows.map { String($0[2]) } == ["list:quicklist2", "list:quicklist", "list:ziplist"])
        #expect(rows.map { Int($0[5]) } == [21 + 15 + 1 + 3000 + 500, 2006, 3])
        #expect(rows.map { Int($0[6]) } == [16384, 20, 2])
        #expect(rows.allSatisfy { (Int($0[3]) ?? 0) > 0 && $0[4] == "quicklist" })
    }
}
