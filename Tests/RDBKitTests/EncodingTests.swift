import Testing
import RDBKit

@Suite struct PrimitiveTests {
    @Test func crc64CheckValue() {
        #expect(CRC64.checksum(Array("123456789".utf8)) == 0xe9c6_d914_c4b8_d9ca)
        // Same result byte by byte and in one call (slicing-by-8 vs tail loop).
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var c = CRC64()
        for i in stride(from: 0, to: data.count, by: 13) {
            data[i..<min(i + 13, data.count)].withUnsafeBytes { c.update($0) }
        }
        #expect(c.value == CRC64.checksum(data))
    }

    @Test func dumpPayloadVector() {
        // FORMATS.md §5: DUMP of SET k hello on Redis 7.0 ends with this CRC.
        let payload: [UInt8] = [0x00, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a, 0x00]
        let crc = CRC64.checksum(payload)
        let le = withUnsafeBytes(of: crc.littleEndian, Array.init)
        #expect(le == [0x63, 0x72, 0xdf, 0x76, 0x65, 0x34, 0x20, 0x0a])
    }

    @Test func lengthEncodings() throws {
        for v: UInt64 in [0, 63, 64, 16383, 16384, 0xFFFF_FFFF, 0x1_0000_0000, UInt64.max] {
            let b = RDBBuilder.length(v)
            let got = try b.withUnsafeBytes { raw -> UInt64 in
                var c = ByteCursor(raw)
                return try c.readLength()
            }
            #expect(got == v)
        }
        let bad: [UInt8] = [0x82, 0, 0, 0, 0]
        let e = bad.withUnsafeBytes { raw -> RDBError? in
            var c = ByteCursor(raw)
            do { _ = try c.readLength(); return nil } catch { return error as? RDBError }
        }
        #expect(e?.code == .corruptEncoding)
    }

    @Test func decimalFormatting() {
        var values: [Int64] = [0, 1, -1, 9, 10, -10, 12345, Int64.max, Int64.min, Int64.max - 1, Int64.min + 1]
        var p: Int64 = 1
        for _ in 0..<18 {  // every digit-count boundary: 10^k - 1, 10^k, 10^k + 1, both signs
            p *= 10
            values += [p - 1, p, p + 1, -(p - 1), -p, -(p + 1), p + p / 2]
        }
        for v in values {
            #expect(RDBString(integer: v).string == String(v))
            #expect(RDBString(integer: v).count == String(v).count)
        }
        var unsigned: [UInt64] = [0, 1, 9, 10, 99, 100, 10_000, 99_999, UInt64.max, UInt64.max / 10, 1 << 63]
        var q: UInt64 = 1
        for _ in 0..<19 {  // every digit-count boundary and every power of two's neighbours
            q *= 10
            unsigned += [q - 1, q, q + 1]
        }
        for k in 0..<64 { unsigned += [UInt64(1) << k, (UInt64(1) << k) - 1, (UInt64(1) << k) + 1] }
        for v in unsigned {
            #expect(DecimalFormatter.digitCount(unsigned: v) == String(v).count, "\(v)")
        }
        for v in unsigned + (0..<12_000).map(UInt64.init) {
            var buf = [UInt8](repeating: 0, count: 24)
            let n = buf.withUnsafeMutableBytes { DecimalFormatter.write(unsigned: v, into: $0.baseAddress!) }
            #expect(String(decoding: buf[0..<n], as: UTF8.self) == String(v))
            let m = buf.withUnsafeMutableBytes { DecimalFormatter.writeMostlySmall(v, into: $0.baseAddress!) }
            #expect(String(decoding: buf[0..<m], as: UTF8.self) == String(v))
        }
        let canon: [(String, Int64?)] = [("0", 0), ("-0", nil), ("007", nil), ("+1", nil), ("-9223372036854775808", Int64.min),
                                         ("9223372036854775808", nil), ("12a", nil), ("", nil)]
        for (s, want) in canon {
            let got = Array(s.utf8).withUnsafeBytes { DecimalFormatter.parseCanonical($0) }
            #expect(got == want, "\(s)")
        }
    }
}

@Suite struct StringEncodingTests {
    @Test func integerAndLZFStrings() throws {
        var b = RDBBuilder(version: 9)
        b.bytes += [0x00] + RDBBuilder.string("i8") + [0xC0, 0xFB]
        b.bytes += [0x00] + RDBBuilder.string("i16") + [0xC1] + RDBBuilder.le(Int16(-30000))
        b.bytes += [0x00] + RDBBuilder.string("i32") + [0xC2] + RDBBuilder.le(Int32(2_000_000_000))
        let text = Array(String(repeating: "abcabcabc", count: 20).utf8)
        var comp = [UInt8](repeating: 0, count: text.count)
        let n = text.withUnsafeBytes { t in comp.withUnsafeMutableBytes { LZF.compress(t, into: $0) } }
        #expect(n > 0 && n < text.count)
        b.bytes += [0x00] + RDBBuilder.string("lzf") + [0xC3] + RDBBuilder.length(UInt64(n)) + RDBBuilder.length(UInt64(text.count)) + comp[0..<n]
        let ev = try record(b.finished())
        #expect(ev.contains("str #-5"))
        #expect(ev.contains("str #-30000"))
        #expect(ev.contains("str #2000000000"))
        #expect(ev.contains("str " + String(repeating: "abcabcabc", count: 20)))
    }

    @Test func corruptLZFIsAnError() {
        var b = RDBBuilder(version: 9)
        b.bytes += [0x00] + RDBBuilder.string("k") + [0xC3, 0x03, 0x20, 0xFF, 0xFF, 0xFF]
        let e = decodeError(b.finished())
        #expect(e?.code == .lzf)
        #expect(e?.key == Array("k".utf8))
    }

    @Test func absurdLZFLengthIsRejectedBeforeAllocating() {
        var b = RDBBuilder(version: 9)
        // Claims 2^40 bytes from 3 compressed bytes.
        b.bytes += [0x00] + RDBBuilder.string("k") + [0xC3, 0x03] + RDBBuilder.length(1 << 40) + [0x01, 0x61, 0x61]
        let e = decodeError(b.finished())
        #expect(e?.code == .limitExceeded || e?.code == .lzf)
    }

    @Test func unknownStringEncoding() {
        var b = RDBBuilder(version: 9)
        b.bytes += [0x00] + RDBBuilder.string("k") + [0xC5]
        #expect(decodeError(b.finished())?.code == .invalidValue)
    }
}

@Suite struct CompactEncodingTests {
    @Test func listpackAllEncodings() throws {
        let ints: [Int64] = [0, 127, -1, 4095, -4096, 30000, -30000, 8_000_000, -8_000_000, 2_000_000_000, -2_000_000_000, 1 << 40, Int64.min]
        let long = String(repeating: "x", count: 100)
        let huge = String(repeating: "y", count: 5000)
        var entries = ints.map(RDBBuilder.lpInt)
        entries += [RDBBuilder.lpString("a"), RDBBuilder.lpString(long), RDBBuilder.lpString(huge)]
        var b = RDBBuilder(version: 11)
        b.key(type: 20, "s", value: RDBBuilder.string(RDBBuilder.listpack(entries)))
        let ev = try record(b.finished())
        let members = ev.filter { $0.hasPrefix("set ") }
        #expect(members == ints.map { "set #\($0)" } + ["set a", "set \(long)", "set \(huge)"])
    }

    @Test func listpackCorruptions() {
        func check(_ blob: [UInt8], _ why: Comment) {
            var b = RDBBuilder(version: 11)
            b.key(type: 20, "s", value: RDBBuilder.string(blob))
            let e = decodeError(b.finished())
            #expect(e?.code == .corruptEncoding, why)
            #expect(e?.key == Array("s".utf8), why)
        }
        let good = RDBBuilder.listpack([RDBBuilder.lpString("ab"), RDBBuilder.lpInt(5)])
        var wrongTotal = good
        wrongTotal[0] &+= 1
        check(wrongTotal, "total bytes")
        var wrongCount = good
        wrongCount[4] = 3
        check(wrongCount, "count")
        var noTerminator = good
        noTerminator[noTerminator.count - 1] = 0x05
        check(noTerminator, "terminator")
        // A string header claiming more bytes than the blob holds.
        check(RDBBuilder.listpack([[0x80 | 50, 0x61, 0x01]]), "string past end")
        check(RDBBuilder.listpack([[0xF5, 0x01]]), "invalid encoding byte")
    }

    @Test func ziplistAllEncodings() throws {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { RDBBuilder.le(v) }
        let entries: [[UInt8]] = [
            RDBBuilder.zlString("hello"),
            [0xC0] + le(Int16(-2)), [0xD0] + le(Int32(100_000)), [0xE0] + le(Int64(6_000_000_000)),
            [0xF0, 0xFF, 0xFF, 0x7F], [0xFE, 0x80], [0xF1], [0xFD],
            [0x40 | 1, 0x2C] + [UInt8](repeating: 0x7A, count: 300),  // 14-bit length string (300 bytes): next prevlen is 5 bytes
            RDBBuilder.zlString("after"),
        ]
        var b = RDBBuilder(version: 9)
        b.key(type: 10, "l", value: RDBBuilder.string(RDBBuilder.ziplist(entries)))
        let ev = try record(b.finished()).filter { $0.hasPrefix("list ") }
        #expect(ev == ["list hello", "list #-2", "list #100000", "list #6000000000", "list #8388607", "list #-128", "list #0", "list #12",
                       "list " + String(repeating: "z", count: 300), "list after"])
    }

    @Test func ziplistCorruptions() {
        func check(_ blob: [UInt8], _ why: Comment) {
            var b = RDBBuilder(version: 9)
            b.key(type: 10, "l", value: RDBBuilder.string(blob))
            #expect(decodeError(b.finished())?.code == .corruptEncoding, why)
        }
        let good = RDBBuilder.ziplist([RDBBuilder.zlString("a"), RDBBuilder.zlString("b")])
        var badPrev = good
        badPrev[13] = 9  // second entry's prevlen
        check(badPrev, "prevlen")
        var badTail = good
        badTail[4] = 10
        check(badTail, "tail")
        var badCount = good
        badCount[8] = 5
        check(badCount, "count")
        check(RDBBuilder.ziplist([[0x3F, 0x61]]), "string past end")
    }

    @Test func intsetWidthsAndOrder() throws {
        func intset(_ w: UInt32, _ vals: [Int64]) -> [UInt8] {
            var b = RDBBuilder.le(w) + RDBBuilder.le(UInt32(vals.count))
            for v in vals {
                switch w {
                case 2: b += RDBBuilder.le(Int16(v))
                case 4: b += RDBBuilder.le(Int32(v))
                default: b += RDBBuilder.le(v)
                }
            }
            return b
        }
        var b = RDBBuilder(version: 9)
        b.key(type: 11, "a", value: RDBBuilder.string(intset(2, [-5, 1, 300])))
        b.key(type: 11, "b", value: RDBBuilder.string(intset(4, [-100_000, 100_000])))
        b.key(type: 11, "c", value: RDBBuilder.string(intset(8, [Int64.min, 5_000_000_000])))
        let ev = try record(b.finished()).filter { $0.hasPrefix("set ") }
        #expect(ev == ["set #-5", "set #1", "set #300", "set #-100000", "set #100000", "set #\(Int64.min)", "set #5000000000"])
        var bad = RDBBuilder(version: 9)
        bad.key(type: 11, "d", value: RDBBuilder.string(intset(2, [3, 1])))
        #expect(decodeError(bad.finished())?.code == .corruptEncoding)
        var badSize = RDBBuilder(version: 9)
        badSize.key(type: 11, "e", value: RDBBuilder.string(intset(2, [1]) + [0]))
        #expect(decodeError(badSize.finished())?.code == .corruptEncoding)
    }

    @Test func zipmap() throws {
        let zm: [UInt8] = [2, 2, 0x66, 0x31, 2, 3, 0x76, 0x31, 0, 0, 0, 2, 0x66, 0x32, 2, 0, 0x76, 0x32, 0xFF]
        var b = RDBBuilder(version: 3)
        b.key(type: 9, "h", value: RDBBuilder.string(zm))
        let ev = try record(b.finished()).filter { $0.hasPrefix("hash ") }
        #expect(ev == ["hash f1=v1", "hash f2=v2"])
    }
}

@Suite struct StructureTests {
    @Test func emptyCollectionsAreDroppedLikeTheServer() throws {
        var b = RDBBuilder(version: 10)
        b.key(type: 2, "set", value: RDBBuilder.length(0))
        b.key(type: 16, "hash", value: RDBBuilder.string(RDBBuilder.listpack([])))
        b.key(type: 0, "kept", value: RDBBuilder.string("v"))
        let ev = try record(b.finished())
        #expect(ev.contains("dropped set"))
        #expect(ev.contains("dropped hash"))
        #expect(ev.contains("str v"))
    }

    @Test func checksumStates() throws {
        var b = RDBBuilder(version: 9)
        b.key(type: 0, "k", value: RDBBuilder.string("v"))
        #expect(try record(b.finished()).last?.hasPrefix("eof verified") == true)
        #expect(try record(b.finished(checksum: false)).last == "eof notWritten")
        var bad = b.finished()
        bad[bad.count - 1] ^= 1
        let e = decodeError(bad)
        #expect(e?.code == .checksumMismatch)
        #expect(e?.offset == bad.count - 8)
        var off = RDBDecoderOptions()
        off.verifyChecksum = false
        #expect(try record(bad, options: off).last?.hasPrefix("eof unchecked") == true)
        var v4 = RDBBuilder(version: 4)
        v4.key(type: 0, "k", value: RDBBuilder.string("v"))
        #expect(try record(v4.finished()).last == "eof absent")
    }

    @Test func versionsAndFamilies() throws {
        var future = RDBBuilder(version: 15)
        future.key(type: 0, "k", value: RDBBuilder.string("v"))
        let e = decodeError(future.finished())
        #expect(e?.code == .unsupportedVersion)
        #expect(e?.message.contains("15") == true)
        var lenient = RDBDecoderOptions()
        lenient.allowNewerVersions = true
        #expect(try record(future.finished(), options: lenient).contains("str v"))

        // Byte 22 is HASH_2 in VALKEY files and the 7.4 pre-GA HFE hash in REDIS files.
        var valkey = RDBBuilder(version: 80, family: .valkey)
        valkey.key(type: 22, "h", value: RDBBuilder.length(1) + RDBBuilder.string("f") + RDBBuilder.string("v") + RDBBuilder.le(Int64(1_700_000_000_000)))
        #expect(try record(valkey.finished()).contains("hash f=v ttl=1700000000000"))
        var redis = RDBBuilder(version: 12)
        redis.key(type: 22, "h", value: RDBBuilder.length(1) + RDBBuilder.length(1_700_000_000_000) + RDBBuilder.string("f") + RDBBuilder.string("v"))
        #expect(try record(redis.finished()).contains("hash f=v ttl=1700000000000"))
        var old = RDBBuilder(version: 79, family: .valkey)
        old.bytes += []
        #expect(decodeError(old.finished())?.code == .unsupportedVersion)
    }

    @Test func unknownTypeNamesOffset() {
        var b = RDBBuilder(version: 9)
        b.key(type: 0, "k", value: RDBBuilder.string("v"))
        let at = b.bytes.count
        b.bytes += [100]
        let e = decodeError(b.finished())
        #expect(e?.code == .unknownType)
        #expect(e?.offset == at)
    }

    @Test func skipAndRawActions() throws {
        var b = RDBBuilder(version: 10)
        let lp = RDBBuilder.listpack([RDBBuilder.lpString("a"), RDBBuilder.lpInt(1)])
        b.key(type: 16, "h", value: RDBBuilder.string(lp))
        let skipped = try record(b.finished(), action: .skip)
        #expect(!skipped.contains { $0.hasPrefix("hash") || $0 == "end" })
        let raw = try record(b.finished(), action: .raw)
        #expect(raw.contains("raw \(RDBBuilder.string(lp).count)"))
        #expect(raw.contains("end"))
    }

    @Test func truncatedAtEveryOffsetNeverTraps() throws {
        let file = try Fixtures.bytes("corpus/redis/encodings.rdb")
        for cut in 0..<file.count {
            let e = decodeError(Array(file[0..<cut]))
            #expect(e != nil, "cut at \(cut)")
        }
    }

    @Test func expiriesAndPrefixes() throws {
        var b = RDBBuilder(version: 9)
        b.bytes += [0xFD] + RDBBuilder.le(Int32(1_000_000))
        b.bytes += [0x00] + RDBBuilder.string("s") + RDBBuilder.string("v")
        b.key(type: 0, "ms", value: RDBBuilder.string("v"), expireMs: 1_234_567_890_123)
        let ev = try record(b.finished())
        #expect(ev.contains("key s string exp=1000000000"))
        #expect(ev.contains("key ms string exp=1234567890123"))
    }
}
