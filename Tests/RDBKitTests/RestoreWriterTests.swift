import Foundation
import Testing
import RDBKit
import RDBSinks

/// DUMP payloads against the vectors of FORMATS.md §5, and the RESTORE writer's choices per target.
@Suite struct RestoreWriterTests {
    // FORMATS.md §5, verified against redis-server 7.0.15 (RDB 10).
    static let hello10 = hexBytes("00 05 68 65 6c 6c 6f 0a 00 63 72 df 76 65 34 20 0a")
    static let int10 = hexBytes("00 c1 39 30 0a 00 9d 94 ea 27 93 fc 08 b9")
    static let intset10 = hexBytes("0b 0e 02 00 00 00 03 00 00 00 01 00 02 00 03 00 0a 00 a5 02 5c e2 6d 6e 4d 1b")
    static let hashLP10 = hexBytes("10 0d 0d 00 00 00 02 00 81 66 02 81 76 02 ff 0a 00 20 f1 3d 44 23 54 08 9d")
    // Computed with the §3.6 algorithm.
    static let hello12 = hexBytes("00 05 68 65 6c 6c 6f 0c 00 a8 04 eb b6 9f 1e be 43")

    @Test func payloadsMatchTheSpecVectors() {
        for (vector, version) in [(Self.hello10, 10), (Self.int10, 10), (Self.intset10, 10), (Self.hashLP10, 10), (Self.hello12, 12)] {
            let value = Array(vector[1..<(vector.count - 10)])
            #expect(DumpPayload.make(type: vector[0], value: value, version: version) == vector)
            let parsed = DumpPayload.parse(vector)
            #expect(parsed?.type == vector[0])
            #expect(parsed?.value == value)
            #expect(parsed?.version == version)
        }
        var broken = Self.hello10
        broken[3] ^= 1
        #expect(DumpPayload.parse(broken) == nil)
    }

    /// Runs the writer and returns the commands (arguments as byte arrays) and the writer.
    func restore(_ bytes: [UInt8], _ options: RestoreWriterOptions = .init()) throws -> ([[[UInt8]]], RestoreWriter) {
        let out = OutputBuffer(target: nil)
        var w = RestoreWriter(out: out, options: options)
        _ = try RDBReader.decode(bytes: bytes, into: &w)
        return (try parseRESPCommands(out.take()), w)
    }

    func text(_ c: [[UInt8]]) -> String { c.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ") }

    @Test func passesValuesThroughAsTheSpecVectors() throws {
        // The same values in an RDB 10 file: their bytes pass through and the payloads equal the vectors.
        var b = RDBBuilder(version: 10)
        b.key(type: 0, "k", value: Array(Self.hello10[1..<7]))
        b.key(type: 0, "n", value: Array(Self.int10[1..<4]))
        b.key(type: 11, "si", value: Array(Self.intset10[1..<16]))
        b.key(type: 16, "h", value: Array(Self.hashLP10[1..<15]), expireMs: 1_900_000_000_000)
        let (cmds, w) = try restore(b.finished())
        #expect(cmds.count == 5)
        #expect(text(cmds[0]) == "SELECT 0")
        #expect(cmds[1] == [Array("RESTORE".utf8), Array("k".utf8), Array("0".utf8), Self.hello10, Array("REPLACE".utf8)])
        #expect(cmds[2][3] == Self.int10)
        #expect(cmds[3][3] == Self.intset10)
        #expect(cmds[4][3] == Self.hashLP10)
        #expect(text(Array(cmds[4][0...2])) == "RESTORE h 1900000000000")
        #expect(text(Array(cmds[4][4...])) == "REPLACE ABSTTL")
        #expect(w.stats.passedThrough == 4)
        #expect(w.stats.reencoded == 0)

        // Stamped for RDB 12, the string payload is the computed vector.
        var o = RestoreWriterOptions()
        o.targetVersion = 12
        o.replace = false
        let (c12, _) = try restore(b.finished(), o)
        #expect(c12[1] == [Array("RESTORE".utf8), Array("k".utf8), Array("0".utf8), Self.hello12])
    }

    @Test func idleAndFreqAreCarried() throws {
        var b = RDBBuilder(version: 10)
        b.bytes += [0xF8, 0x40, 0x64] + [0] + RDBBuilder.string("a") + RDBBuilder.string("x")  // IDLE 100
        b.bytes += [0xF9, 0x07] + [0] + RDBBuilder.string("b") + RDBBuilder.string("y")  // FREQ 7
        let (cmds, _) = try restore(b.finished())
        #expect(text(cmds[1]).hasSuffix("REPLACE IDLETIME 100"))
        #expect(text(cmds[2]).hasSuffix("REPLACE FREQ 7"))
    }

    @Test func reencodesTypesTheTargetCannotLoad() throws {
        var b = RDBBuilder(version: 11)
        // 16 hash listpack, 17 zset listpack, 18 quicklist v2, 20 set listpack.
        b.key(type: 16, "h", value: Array(Self.hashLP10[1..<15]))
        b.key(type: 17, "z", value: RDBBuilder.string(RDBBuilder.listpack([
            RDBBuilder.lpString("a"), RDBBuilder.lpString("1.5"), RDBBuilder.lpString("b"), RDBBuilder.lpInt(2),
        ])))
        b.key(type: 18, "l", value: [0x01, 0x02] + RDBBuilder.string(RDBBuilder.listpack([
            RDBBuilder.lpString("a"), RDBBuilder.lpInt(1), RDBBuilder.lpInt(-5), RDBBuilder.lpInt(70000),
        ])))
        b.key(type: 20, "s", value: RDBBuilder.string(RDBBuilder.listpack([RDBBuilder.lpString("m"), RDBBuilder.lpInt(300)])))
        var o = RestoreWriterOptions()
        o.targetVersion = 9
        let (cmds, w) = try restore(b.finished(), o)
        #expect(w.stats.reencoded == 4)
        func value(_ i: Int) -> (UInt8, [UInt8])? {
            guard let p = DumpPayload.parse(cmds[i][3]), p.version == 9 else { return nil }
            return (p.type, p.value)
        }
        // HASH (4): 1 pair.
        #expect(value(1)?.0 == 4)
        #expect(value(1)?.1 == hexBytes("01 01 66 01 76"))
        // ZSET_2 (5): binary doubles.
        #expect(value(2)?.0 == 5)
        #expect(value(2)?.1 == [0x02] + RDBBuilder.string("a") + RDBBuilder.le(1.5.bitPattern) + RDBBuilder.string("b")
                    + RDBBuilder.le(2.0.bitPattern))
        // LIST (1): integers in the RDB integer encodings.
        #expect(value(3)?.0 == 1)
        #expect(value(3)?.1 == [0x04] + RDBBuilder.string("a") + [0xC0, 0x01, 0xC0, 0xFB, 0xC2] + RDBBuilder.le(Int32(70000)))
        // SET (2).
        #expect(value(4)?.0 == 2)
        #expect(value(4)?.1 == [0x02] + RDBBuilder.string("m") + [0xC1] + RDBBuilder.le(Int16(300)))

        // The re-encoded values decode back to the same content.
        for i in 1...4 {
            let p = DumpPayload.parse(cmds[i][3])!
            var one = RDBBuilder(version: 9)
            one.key(type: p.type, "x", value: p.value)
            #expect(try record(one.finished()).count >= 4)
        }
        // A target that loads them gets the bytes unchanged.
        let (same, w11) = try restore(b.finished(), RestoreWriterOptions(targetVersion: 11))
        #expect(w11.stats.passedThrough == 4)
        #expect(DumpPayload.parse(same[1][3])?.value == Array(Self.hashLP10[1..<15]))
    }

    @Test func streamsAndFieldTTLsFallBackToCommands() throws {
        var b = RDBBuilder(version: 10)
        b.key(type: 19, "s", value: RESPWriterTests.exampleStream(), expireMs: 2_000_000_000_000)
        b.key(type: 0, "k", value: RDBBuilder.string("v"))
        let (cmds, w) = try restore(b.finished(), RestoreWriterOptions(targetVersion: 9))
        #expect(cmds.map(text).dropLast() == [
            "SELECT 0", "XADD s 1-1 f v", "XADD s 1-2 f w", "XSETID s 1-2", "XGROUP CREATE s g 1-1",
            "XCLAIM s g c 0 1-1 TIME 1700000000000 RETRYCOUNT 3 FORCE JUSTID", "XGROUP CREATECONSUMER s g idle",
            "PEXPIREAT s 2000000000000",
        ])
        #expect(w.stats.asCommands == 1)
        #expect(w.stats.passedThrough == 1)
        #expect(cmds.last?.first == Array("RESTORE".utf8))

        // Valkey HASH_2 with a field TTL, for Redis 7.4 (RDB 12): HSET + HPEXPIREAT.
        var v = RDBBuilder(version: 80, family: .valkey)
        v.key(type: 22, "h", value: RDBBuilder.length(1) + RDBBuilder.string("f") + RDBBuilder.string("v")
              + RDBBuilder.le(Int64(4_000_000_000_000)))
        let (hc, _) = try restore(v.finished(), RestoreWriterOptions(targetVersion: 12))
        #expect(hc.map(text) == ["SELECT 0", "HSET h f v", "HPEXPIREAT h 4000000000000 FIELDS 1 f"])
        // ... and for Valkey 9 (RDB 80) it passes through.
        let (vc, vw) = try restore(v.finished(), RestoreWriterOptions(targetVersion: 80))
        #expect(vw.stats.passedThrough == 1)
        #expect(DumpPayload.parse(vc[1][3])?.version == 80)
    }

    @Test func moduleValuesPassThroughAndArraysAreSkipped() throws {
        var b = RDBBuilder(version: 10)
        let id: UInt64 = 0x45e2_5238_df91_2c03
        let module = RDBBuilder.length(id) + [0x02, 0x05, 0x00]
        b.key(type: 7, "m", value: module)
        let (cmds, w) = try restore(b.finished())
        #expect(w.stats.passedThrough == 1)
        #expect(DumpPayload.parse(cmds[1][3])?.type == 7)
        #expect(DumpPayload.parse(cmds[1][3])?.value == module)

        var a = RDBBuilder(version: 14)
        // ARRAY: 1 element, no insert index, index 0 tag 0 (string) "x".
        a.key(type: 28, "arr", value: [0x01, 0x00, 0x00, 0x00] + RDBBuilder.string("x"))
        a.key(type: 0, "k", value: RDBBuilder.string("v"))
        let (ac, aw) = try restore(a.finished(), RestoreWriterOptions(targetVersion: 12))
        #expect(ac.count == 2)
        #expect(aw.skippedKeys.map(\.key) == [Array("arr".utf8)])
        #expect(aw.stats.skipped == 1)
        let (ac14, aw14) = try restore(a.finished(), RestoreWriterOptions(targetVersion: 14))
        #expect(ac14.count == 3)
        #expect(aw14.skippedKeys.isEmpty)
    }

    @Test func keyMetadataLeadsThePayloadOnTargetsThatLoadIt() throws {
        // KEY_META (Redis 8.6): one class (4-byte spec), a UINT item 5, EOF; then the key.
        let block: [UInt8] = [0x01, 0x41, 0x42, 0x43, 0x09, 0x02, 0x05, 0x00]
        var b = RDBBuilder(version: 13)
        b.bytes += [0xF3] + block
        b.key(type: 0, "k", value: RDBBuilder.string("v"))
        b.key(type: 0, "plain", value: RDBBuilder.string("w"))
        let bytes = b.finished()
        let (c13, w13) = try restore(bytes, RestoreWriterOptions(targetVersion: 13))
        #expect(DumpPayload.parse(c13[1][3])?.type == 0xF3)
        #expect(Array(c13[1][3].prefix(1 + block.count + 3)) == [0xF3] + block + [0x00, 0x01, 0x76])
        #expect(c13[2][3].first == 0x00)
        #expect(w13.lossyKeys.isEmpty)
        let (c12, w12) = try restore(bytes, RestoreWriterOptions(targetVersion: 12))
        #expect(c12[1][3].first == 0x00)
        #expect(w12.lossyKeys.map(\.key) == [Array("k".utf8)])
        let out = OutputBuffer(target: nil)
        var r = RESPWriter(out: out)
        _ = try RDBReader.decode(bytes: bytes, into: &r)
        #expect(r.lossyKeys.map(\.key) == [Array("k".utf8)])
    }

    @Test func loadTableFollowsTheSpec() {
        // Redis 6.2 = RDB 9 loads types 0-7, 9-15 (6 only through its module: never passed through).
        let e9: [RDBEncoding] = [.string, .list, .set, .zset, .hash, .zset2, .module2, .hashZipmap, .listZiplist, .setIntset,
                                 .zsetZiplist, .hashZiplist, .listQuicklist, .streamListpacks]
        for e in e9 { #expect(DumpPayload.canLoad(e, target: 9), "\(e)") }
        for e: RDBEncoding in [.hashListpack, .zsetListpack, .listQuicklist2, .streamListpacks2] {
            #expect(!DumpPayload.canLoad(e, target: 9))
            #expect(DumpPayload.canLoad(e, target: 10))
        }
        for e: RDBEncoding in [.setListpack, .streamListpacks3] {
            #expect(!DumpPayload.canLoad(e, target: 10))
            #expect(DumpPayload.canLoad(e, target: 11))
            #expect(DumpPayload.canLoad(e, target: 80))
        }
        #expect(DumpPayload.canLoad(.hashMetadata, target: 12))
        #expect(!DumpPayload.canLoad(.hashMetadata, target: 11))
        #expect(!DumpPayload.canLoad(.hashMetadataPreGA, target: 12))
        #expect(!DumpPayload.canLoad(.hashListpackEx, target: 80))
        #expect(DumpPayload.canLoad(.valkeyHash2, target: 80))
        #expect(!DumpPayload.canLoad(.valkeyHash2, target: 14))
        #expect(!DumpPayload.canLoad(.modulePreGA, target: 9))
    }
}
