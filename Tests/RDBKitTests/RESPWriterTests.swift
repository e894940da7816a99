import Foundation
import Testing
import RDBKit
import RDBSinks

/// Parses RESP multibulk commands back into argument arrays (strict: fails on anything else).
func parseRESPCommands(_ b: [UInt8]) throws -> [[[UInt8]]] {
    struct Bad: Error, CustomStringConvertible { let description: String }
    var i = 0
    func line() throws -> String {
        var j = i
        while j + 1 < b.count && !(b[j] == 0x0D && b[j + 1] == 0x0A) { j += 1 }
        guard j + 1 < b.count else { throw Bad(description: "unterminated line at \(i)") }
        let s = String(decoding: b[i..<j], as: UTF8.self)
        i = j + 2
        return s
    }
    func number(_ s: Substring) throws -> Int {
        // RESP counts have no sign and no leading zeros.
        guard let n = Int(s), n >= 0, String(n) == s else { throw Bad(description: "bad count \(s)") }
        return n
    }
    var commands: [[[UInt8]]] = []
    while i < b.count {
        let h = try line()
        guard h.first == "*" else { throw Bad(description: "expected '*' at \(i), got \(h)") }
        let n = try number(h.dropFirst())
        var args: [[UInt8]] = []
        for _ in 0..<n {
            let a = try line()
            guard a.first == "$" else { throw Bad(description: "expected '$', got \(a)") }
            let len = try number(a.dropFirst())
            guard i + len + 2 <= b.count, b[i + len] == 0x0D, b[i + len + 1] == 0x0A else {
                throw Bad(description: "bad bulk of \(len) at \(i)")
            }
            args.append(Array(b[i..<(i + len)]))
            i += len + 2
        }
        commands.append(args)
    }
    return commands
}

/// Commands as readable strings (arguments joined by spaces), for assertions.
func respText(_ b: [UInt8]) throws -> [String] {
    try parseRESPCommands(b).map { $0.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ") }
}

func hexBytes(_ s: String) -> [UInt8] {
    s.split(separator: " ").map { UInt8($0, radix: 16)! }
}

@Suite struct RESPEncoderTests {
    func encode(_ body: (inout RESPEncoder<OutputBuffer>) -> Void) -> [UInt8] {
        let out = OutputBuffer(target: nil)
        var e = RESPEncoder(out: out)
        body(&e)
        return out.take()
    }

    @Test func framesACommand() {
        let b = encode { e in
            e.begin(maxArguments: 3)
            e.argument("SET")
            e.argument("k")
            e.argument(RDBString(integer: -42))
            e.end()
        }
        #expect(String(decoding: b, as: UTF8.self) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n-42\r\n")
    }

    @Test func patchesCountsShorterAndLongerThanReserved() throws {
        // Reserved 4 digits, 3 used: the body moves down.
        let short = encode { e in
            e.begin(maxArguments: 1026)
            for a: StaticString in ["RPUSH", "l", "a"] { e.argument(a) }
            e.end()
        }
        #expect(String(decoding: short, as: UTF8.self) == "*3\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\na\r\n")
        // Reserved 1 digit, 12 used: the body moves up.
        let long = encode { e in
            e.begin(maxArguments: 2)
            for i in 0..<12 { e.argument(Int64(i)) }
            e.end()
            e.command("PING")
        }
        let cmds = try respText(long)
        #expect(cmds == ["0 1 2 3 4 5 6 7 8 9 10 11", "PING"])
        #expect(long.starts(with: Array("*12\r\n$1\r\n0\r\n".utf8)))
        // Exactly the reserved width: nothing moves.
        let exact = encode { e in
            e.begin(maxArguments: 12)
            for i in 0..<12 { e.argument(Int64(i)) }
            e.end()
        }
        #expect(exact == Array(long.dropLast(14)))
    }

    @Test func cancelDropsTheOpenCommand() {
        let b = encode { e in
            e.command("PING")
            e.begin(maxArguments: 3)
            e.argument("SET")
            e.cancel()
            e.command("PING")
        }
        #expect(String(decoding: b, as: UTF8.self) == "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n")
    }

    @Test func integersAndIDs() throws {
        let b = encode { e in
            e.begin(maxArguments: 6)
            e.argument(Int64.min)
            e.argument(Int64(0))
            e.argument(unsigned: UInt64.max)
            e.argument(StreamID(ms: 1_700_000_000_000, seq: 0))
            e.argument(StreamID(ms: UInt64.max, seq: UInt64.max))
            e.argument(RDBString(integer: Int64.max))
            e.end()
        }
        #expect(try respText(b) == [
            "-9223372036854775808 0 18446744073709551615 1700000000000-0 18446744073709551615-18446744073709551615 9223372036854775807",
        ])
    }

    func scoreText(_ d: Double) -> String {
        var buf = [UInt8](repeating: 0, count: 40)
        let n = buf.withUnsafeMutableBytes { RESPScore.format(d, into: $0.baseAddress!) }
        return String(decoding: buf[..<n], as: UTF8.self)
    }

    /// Short decimals take a fast path (`RESPScore.writeShortDecimal`): the same text as the standard
    /// library's shortest round trip, for decimals of every scale and number of fraction digits, and near
    /// the limits where it must hand over (2^53 scaled, an ulp wider than the last decimal, 1e-3, 1e15).
    @Test func shortDecimalsAreTheShortestText() {
        var g = SystemRandomNumberGenerator()
        var checked = 0
        for k in 0...12 {
            for exponent in -4...16 {
                for _ in 0..<60 {
                    let digits = Double(UInt64.random(in: 0...(UInt64(1) << UInt64.random(in: 4...53, using: &g)), using: &g))
                    let d = (digits / pow(10, Double(k))) * pow(10, Double(exponent - 8)) * (Bool.random(using: &g) ? 1 : -1)
                    guard d.isFinite, d != d.rounded(.towardZero) else { continue }
                    let text = scoreText(d)
                    #expect(text == d.description, "\(d.description) written as \(text)")
                    checked += 1
                }
            }
        }
        for text in ["0.001", "0.3", "-0.7", "523412.123", "0.0011", "999999.99999999", "4503599627370495.5",
                     "1.00000001", "0.00099999", "99999999999999.9", "123456789.12345678", "8.98846567431158e+307"] {
            let d = strtod(text, nil)
            #expect(scoreText(d) == d.description, "\(text)")
        }
        #expect(checked > 10_000)
    }

    @Test func scoresAreShortestAndRoundTrip() {
        let cases: [(Double, String)] = [
            (1.5, "1.5"), (2, "2"), (-3, "-3"), (0, "0"), (-0.0, "-0"), (.infinity, "inf"), (-.infinity, "-inf"),
            (0.1, "0.1"), (1e300, "1e+300"), (-1e300, "-1e+300"), (5e-324, "5e-324"),
            (9_007_199_254_740_994, "9007199254740994"), (1e19, "1e+19"), (1.0 / 3, "0.3333333333333333"),
        ]
        for (d, s) in cases { #expect(scoreText(d) == s, "score \(d)") }
        var g = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let d = Double(bitPattern: g.next())
            guard d.isFinite else { continue }
            let t = scoreText(d)
            let back = strtod(t, nil)  // what the server uses
            #expect(back.bitPattern == d.bitPattern, "\(d) written as \(t)")
            #expect(t.utf8.count <= 24)
        }
        for d in [0.1, 1e-5, 123.456, -2.5e-308, 1.7976931348623157e308] {
            #expect(strtod(scoreText(d), nil) == d)
        }
    }
}

@Suite struct RESPWriterTests {
    func resp(_ bytes: [UInt8], _ options: RESPWriterOptions = .init()) throws -> (commands: [String], writer: RESPWriter) {
        let out = OutputBuffer(target: nil)
        var w = RESPWriter(out: out, options: options)
        _ = try RDBReader.decode(bytes: bytes, into: &w)
        return (try respText(out.take()), w)
    }

    static func plainList(_ items: [String]) -> [UInt8] {
        RDBBuilder.length(UInt64(items.count)) + items.flatMap { RDBBuilder.string($0) }
    }

    @Test func writesEveryPlainTypeWithSelectAndExpiry() throws {
        var b = RDBBuilder(version: 10)
        b.selectDB(0)
        b.key(type: 0, "s", value: RDBBuilder.string("hello"), expireMs: 1_900_000_000_123)
        b.key(type: 0, "n", value: [0xC1, 0x39, 0x30])
        b.selectDB(3)
        b.key(type: 1, "l", value: RESPWriterTests.plainList(["a", "b", "c"]))
        b.key(type: 2, "st", value: RESPWriterTests.plainList(["x"]))
        b.key(type: 5, "z", value: RDBBuilder.length(2) + RDBBuilder.string("m1") + RDBBuilder.le(UInt64(1.5.bitPattern))
                  + RDBBuilder.string("m2") + RDBBuilder.le(UInt64((-Double.infinity).bitPattern)))
        b.key(type: 4, "h", value: RDBBuilder.length(1) + RDBBuilder.string("f") + RDBBuilder.string("v"))
        let (cmds, w) = try resp(b.finished())
        #expect(cmds == [
            "SELECT 0", "SET s hello", "PEXPIREAT s 1900000000123", "SET n 12345",
            "SELECT 3", "RPUSH l a b c", "SADD st x", "ZADD z 1.5 m1 -inf m2", "HSET h f v",
        ])
        #expect(w.keysWritten == 6)
        #expect(w.skippedKeys.isEmpty)
    }

    /// Listpack scores are text: plain decimals go out as written; integers, infinities, exponents and a
    /// negative zero take the checked Double path; corrupt text is an error, not a command.
    @Test func listpackScoresPassThroughWhenPlain() throws {
        var b = RDBBuilder(version: 10)
        let entries: [[UInt8]] = [
            RDBBuilder.lpString("a"), RDBBuilder.lpString("1.50"), RDBBuilder.lpString("b"), RDBBuilder.lpInt(7),
            RDBBuilder.lpString("c"), RDBBuilder.lpString("-0.25"), RDBBuilder.lpString("d"), RDBBuilder.lpString("inf"),
            RDBBuilder.lpString("e"), RDBBuilder.lpString("1e3"), RDBBuilder.lpString("f"), RDBBuilder.lpString("-0"),
        ]
        b.key(type: 17, "z", value: RDBBuilder.string(RDBBuilder.listpack(entries)))
        let (cmds, _) = try resp(b.finished())
        // -0 last, once the set is a skiplist (see zsetMember, writeNegativeZeros).
        let maker = String(decoding: RESPWriter.skiplistMaker, as: UTF8.self)
        #expect(maker.utf8.count > 64)
        #expect(cmds == ["SELECT 0", "ZADD z 1.50 a 7 b -0.25 c inf d 1000 e", "ZADD z 0 \(maker)", "ZADD z -0 f", "ZREM z \(maker)"])
        var bad = RDBBuilder(version: 10)
        bad.key(type: 17, "z", value: RDBBuilder.string(RDBBuilder.listpack([RDBBuilder.lpString("a"), RDBBuilder.lpString("1.2.3")])))
        #expect(throws: RDBError.self) { try resp(bad.finished()) }
    }

    /// The member that makes a set a skiplist is longer than the target's zset-max-listpack-value (1 KiB at
    /// least); a target keeping members of 1 MiB in listpacks gets none, and the key is named lossy (a 6.2
    /// target's ziplists keep -0: not lossy there).
    @Test func skiplistMakerFollowsTheTargetsLimits() throws {
        var b = RDBBuilder(version: 10)
        b.key(type: 17, "z", value: RDBBuilder.string(RDBBuilder.listpack([
            RDBBuilder.lpString("a"), RDBBuilder.lpString("1"), RDBBuilder.lpString("f"), RDBBuilder.lpString("-0"),
        ])))
        var o = RESPWriterOptions()
        o.compactSortedSets = CompactSortedSetLimits(entries: 128, value: 4000)
        let (cmds, w) = try resp(b.finished(), o)
        let maker = "rdbcat:skiplist:" + String(repeating: "-", count: 4001 - 16)
        #expect(cmds == ["SELECT 0", "ZADD z 1 a", "ZADD z 0 \(maker)", "ZADD z -0 f", "ZREM z \(maker)"])
        #expect(w.lossyKeys.isEmpty)
        o.compactSortedSets.value = 1 << 20
        let (none, lossy) = try resp(b.finished(), o)
        #expect(none == ["SELECT 0", "ZADD z 1 a", "ZADD z -0 f"])
        #expect(lossy.lossyKeys.map(\.reason) == ["scores of -0 written as 0: the target keeps sorted sets of members up to 1048576 bytes as listpacks (zset-max-listpack-value)"])
        o.targetVersion = 9
        #expect(try resp(b.finished(), o).writer.lossyKeys.isEmpty)
    }

    @Test func emitSelectAndDropTTLOptions() throws {
        var b = RDBBuilder(version: 10)
        b.selectDB(2)
        b.key(type: 0, "s", value: RDBBuilder.string("v"), expireMs: 5)
        var o = RESPWriterOptions()
        o.emitSelect = false
        o.dropTTL = true
        #expect(try resp(b.finished(), o).commands == ["SET s v"])
    }

    @Test func splitsByElementCountAndBytes() throws {
        var b = RDBBuilder(version: 10)
        b.key(type: 1, "l", value: RESPWriterTests.plainList((0..<10).map { "e\($0)" }))
        var o = RESPWriterOptions()
        o.maxElementsPerCommand = 4
        #expect(try resp(b.finished(), o).commands == [
            "SELECT 0", "RPUSH l e0 e1 e2 e3", "RPUSH l e4 e5 e6 e7", "RPUSH l e8 e9",
        ])

        var big = RDBBuilder(version: 10)
        let v = String(repeating: "x", count: 100)
        big.key(type: 4, "h", value: RDBBuilder.length(5) + (0..<5).flatMap { RDBBuilder.string("f\($0)") + RDBBuilder.string(v) })
        var ob = RESPWriterOptions()
        ob.maxBytesPerCommand = 300  // two pairs (~2×120 bytes) fit, a third does not
        let out = OutputBuffer(target: nil)
        var w = RESPWriter(out: out, options: ob)
        _ = try RDBReader.decode(bytes: big.finished(), into: &w)
        let raw = out.take()
        let cmds = try parseRESPCommands(raw)
        #expect(cmds.count == 4)  // SELECT + 3 HSET
        #expect(cmds.dropFirst().map { ($0.count - 2) / 2 } == [2, 2, 1])
        // Each command stays within the limit.
        var offset = 0
        for c in cmds {
            let size = 4 + c.reduce(0) { $0 + $1.count + 5 + String($1.count).count } + String(c.count).count - 1
            #expect(size <= 300)
            offset += size
        }
        #expect(offset == raw.count)
    }

    @Test func skipsModuleValuesAndListsThem() throws {
        var b = RDBBuilder(version: 10)
        b.key(type: 0, "a", value: RDBBuilder.string("1"))
        // MODULE_2: module id, one UINT item, EOF.
        let id: UInt64 = 0x45e2_5238_df91_2c03  // ReJSON-RL/3
        b.key(type: 7, "m", value: RDBBuilder.length(id) + [0x02, 0x05, 0x00])
        b.key(type: 0, "b", value: RDBBuilder.string("2"))
        let (cmds, w) = try resp(b.finished())
        #expect(cmds == ["SELECT 0", "SET a 1", "SET b 2"])
        #expect(w.skippedKeys.count == 1)
        #expect(w.skippedKeys.first?.key == Array("m".utf8))
        #expect(w.skippedKeys.first?.reason.contains("module") == true)
    }

    @Test func fieldTTLsNeedATargetThatHasThem() throws {
        // Valkey HASH_2: field, value, expiry (-1 = none).
        var b = RDBBuilder(version: 80, family: .valkey)
        b.key(type: 22, "h", value: RDBBuilder.length(4)
              + RDBBuilder.string("f1") + RDBBuilder.string("v1") + RDBBuilder.le(Int64(4_000_000_000_000))
              + RDBBuilder.string("f2") + RDBBuilder.string("v2") + RDBBuilder.le(Int64(-1))
              + RDBBuilder.string("f3") + RDBBuilder.string("v3") + RDBBuilder.le(Int64(4_000_000_000_000))
              + RDBBuilder.string("f4") + RDBBuilder.string("v4") + RDBBuilder.le(Int64(4_000_000_000_001)),
              expireMs: 4_100_000_000_000)
        let bytes = b.finished()
        #expect(try resp(bytes).commands == [
            "SELECT 0", "HSET h f1 v1 f2 v2 f3 v3 f4 v4", "HPEXPIREAT h 4000000000000 FIELDS 2 f1 f3",
            "HPEXPIREAT h 4000000000001 FIELDS 1 f4", "PEXPIREAT h 4100000000000",
        ])
        var old = RESPWriterOptions()
        old.targetVersion = 11
        let (cmds, w) = try resp(bytes, old)
        #expect(cmds == ["SELECT 0", "HSET h f1 v1 f2 v2 f3 v3 f4 v4", "PEXPIREAT h 4100000000000"])
        #expect(w.lossyKeys.count == 1)
    }

    /// The stream of FORMATS.md §4.8 (type 19): two entries, group g with entry 1-1 delivered to c.
    static func exampleStream() -> [UInt8] {
        let lp = hexBytes("28 00 00 00 0f 00 02 01 00 01 01 01 81 66 02 00 01 02 01 00 01 00 01 81 76 02 04 01 02 01 00 01 01 01 81 77 02 04 01 ff")
        var v: [UInt8] = [0x01] + RDBBuilder.string(RDBBuilder.le(UInt64(1).bigEndian) + RDBBuilder.le(UInt64(1).bigEndian)) + RDBBuilder.string(lp)
        v += [0x02, 0x01, 0x02, 0x01, 0x01, 0x00, 0x00, 0x02]  // length 2, last 1-2, first 1-1, max deleted 0-0, added 2
        v += [0x01] + RDBBuilder.string("g") + [0x01, 0x01, 0x01]  // 1 group "g", last delivered 1-1, entries read 1
        let id11 = RDBBuilder.le(UInt64(1).bigEndian) + RDBBuilder.le(UInt64(1).bigEndian)
        v += [0x01] + id11 + RDBBuilder.le(Int64(1_700_000_000_000)) + [0x03]  // PEL: 1-1, time, 3 deliveries
        v += [0x02] + RDBBuilder.string("c") + RDBBuilder.le(Int64(1_700_000_000_001)) + [0x01] + id11
        v += RDBBuilder.string("idle") + RDBBuilder.le(Int64(1_700_000_000_002)) + [0x00]
        return v
    }

    @Test func streamsWithGroupsPELAndConsumers() throws {
        var b = RDBBuilder(version: 10)
        b.key(type: 19, "s", value: RESPWriterTests.exampleStream())
        let bytes = b.finished()
        #expect(try resp(bytes).commands == [
            "SELECT 0", "XADD s 1-1 f v", "XADD s 1-2 f w", "XSETID s 1-2 ENTRIESADDED 2 MAXDELETEDID 0-0",
            "XGROUP CREATE s g 1-1 ENTRIESREAD 1", "XCLAIM s g c 0 1-1 TIME 1700000000000 RETRYCOUNT 3 FORCE JUSTID",
            "XGROUP CREATECONSUMER s g idle",
        ])
        var o = RESPWriterOptions()
        o.targetVersion = 9
        #expect(try resp(bytes, o).commands == [
            "SELECT 0", "XADD s 1-1 f v", "XADD s 1-2 f w", "XSETID s 1-2", "XGROUP CREATE s g 1-1",
            "XCLAIM s g c 0 1-1 TIME 1700000000000 RETRYCOUNT 3 FORCE JUSTID", "XGROUP CREATECONSUMER s g idle",
        ])
    }

    @Test func emptyStreamIsStillCreated() throws {
        var b = RDBBuilder(version: 10)
        // No nodes, length 0, last 5-5, first 0-0, max deleted 5-5, added 3, no groups.
        b.key(type: 19, "e", value: [0x00, 0x00, 0x05, 0x05, 0x00, 0x00, 0x05, 0x05, 0x03, 0x00])
        #expect(try resp(b.finished()).commands == [
            "SELECT 0", "XADD e MAXLEN 0 0-1 x y", "XSETID e 5-5 ENTRIESADDED 3 MAXDELETEDID 5-5",
        ])
    }

    @Test func aFailedKeyLeavesNothingBehind() throws {
        var b = RDBBuilder(version: 10)
        b.key(type: 0, "ok", value: RDBBuilder.string("1"))
        // A list announcing 3 elements, holding 2, and the file ends.
        b.bytes += [1] + RDBBuilder.string("broken") + [0x03] + RDBBuilder.string("a") + RDBBuilder.string("b")
        let out = OutputBuffer(target: nil)
        var w = RESPWriter(out: out)
        #expect(throws: RDBError.self) { _ = try RDBReader.decode(bytes: b.bytes, into: &w) }
        out.rollback()
        #expect(try respText(out.take()) == ["SELECT 0", "SET ok 1"])
    }

    @Test func flushesOnlyBetweenKeys() throws {
        final class Chunks: OutputTarget {
            var writes: [[UInt8]] = []
            func write(_ bytes: UnsafeRawBufferPointer) throws { writes.append(Array(bytes)) }
        }
        var b = RDBBuilder(version: 10)
        for k in 0..<20 { b.key(type: 1, "l\(k)", value: RESPWriterTests.plainList((0..<50).map { "element-\($0)" })) }
        let target = Chunks()
        let out = OutputBuffer(target: target, flushThreshold: 256)
        var w = RESPWriter(out: out, options: RESPWriterOptions(maxElementsPerCommand: 7))
        _ = try RDBReader.decode(bytes: b.finished(), into: &w)
        #expect(target.writes.count > 5)
        // Every flushed chunk is whole commands ending with the last command of a key (RPUSH lN element-49).
        for c in target.writes {
            let last = try parseRESPCommands(c).last
            #expect(last?.count == 3)
            #expect(last.map { String(decoding: $0[2], as: UTF8.self) } == "element-49")
        }
        #expect(try parseRESPCommands(target.writes.flatMap { $0 }).count == 1 + 20 * 8)
    }
}
