import Foundation
import Testing
import RDBKit
import RDBSinks

/// The RESP tokenizer on hand-made bytes: commands, inline commands, annotations, MULTI blocks, torn
/// tails, corruption, limits; and every input gives the same events streamed in small chunks.
@Suite struct AOFTokenizerTests {
    @Test func commandsAndSelect() throws {
        let bytes = respAll([["SET", "a", "1"], ["select", "3"], ["DEL", "a", "b"], ["SELECT", "x"], ["PING"]])
        let (r, s) = try recordAOF(bytes)
        #expect(r.events == [
            "file - single",
            "db=0 @0+27 SET a 1",
            "db=3 @27+23 select 3",
            "db=3 @50+27 DEL a b",
            "db=3 @77+23 SELECT x",
            "db=3 @100+14 PING",
            "end -",
        ])
        #expect(s.commands == 5)
        #expect(s.warnings.isEmpty)
        #expect(s.files[0].validBytes == bytes.count)
        #expect(s.files[0].rdb == nil)
    }

    @Test func binaryAndEmptyArguments() throws {
        let args: [[UInt8]] = [Array("SET".utf8), [0, 13, 10, 0xFF], []]
        let (r, _) = try recordAOF(respBytes(args))
        #expect(r.commands == [args])
    }

    @Test func inlineCommands() throws {
        let text = "SET k \"a b\\x41\\n\" 'it\\'s'\r\nGET k\nmset \"\" x\r\n"
        let (r, s) = try recordAOF(Array(text.utf8))
        #expect(r.commands == [
            [Array("SET".utf8), Array("k".utf8), Array("a bA\n".utf8), Array("it's".utf8)],
            [Array("GET".utf8), Array("k".utf8)],
            [Array("mset".utf8), [], Array("x".utf8)],
        ])
        #expect(r.events[1].hasPrefix("db=0 @0+27 inline"))
        #expect(s.commands == 3)
        // Inline and RESP mix; SELECT inline is tracked.
        let mixed = Array("select 2\r\n".utf8) + resp(["SET", "a", "b"])
        #expect(try recordAOF(mixed).0.events[2] == "db=2 @10+27 SET a b")
    }

    @Test func inlineErrors() throws {
        let e1 = aofError(Array("SET k \"abc\r\n".utf8))
        #expect(e1?.code == .aofFormat && e1?.offset == 0)
        let e2 = aofError(Array("SET \"a\"b c\r\n".utf8))
        #expect(e2?.code == .aofFormat)
        let e3 = aofError(resp(["PING"]) + Array("SET a\u{1}b\r\n".utf8))
        #expect(e3?.code == .aofFormat && e3?.offset == 14)
        var o = AOFOptions()
        o.allowInline = false
        let e4 = aofError(Array("SET a b\r\n".utf8), options: o)
        #expect(e4?.code == .aofFormat && e4?.offset == 0)
        o = AOFOptions()
        o.maxInlineBytes = 16
        let e5 = aofError(Array("SET a bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n".utf8), options: o)
        #expect(e5?.code == .aofFormat)
    }

    @Test func annotations() throws {
        let bytes = Array("#TS:1700000000\r\n".utf8) + resp(["SET", "a", "1"]) + Array("#TS:1700000001\n# free text\r\n".utf8)
            + resp(["DEL", "a"])
        let (r, s) = try recordAOF(bytes)
        #expect(r.events == [
            "file - single",
            "ann @0 #TS:1700000000",
            "db=0 @16+27 SET a 1",
            "ann @43 #TS:1700000001",
            "ann @58 #\\x20free\\x20text",
            "db=0 @71+20 DEL a",
            "end -",
        ])
        #expect(s.annotations == 3 && s.commands == 2)
        let long = Array(("#" + String(repeating: "x", count: 1100) + "\r\n").utf8)
        let e = aofError(resp(["PING"]) + long)
        #expect(e?.code == .aofFormat && e?.offset == 14)
    }

    @Test func multiBlockDeliveredAfterExec() throws {
        let bytes = respAll([["SET", "a", "1"], ["MULTI"], ["INCR", "a"], ["SELECT", "1"], ["SET", "b", "2"], ["EXEC"], ["GET", "b"]])
        let (r, s) = try recordAOF(bytes)
        #expect(r.commands.map { String(decoding: $0[0], as: UTF8.self) } == ["SET", "MULTI", "INCR", "SELECT", "SET", "EXEC", "GET"])
        #expect(r.events[6].hasPrefix("db=1") && r.events[7].hasPrefix("db=1 ") && r.events[7].hasSuffix("GET b"))
        #expect(s.commands == 7)
        // DISCARD closes a block too; EXEC without MULTI is an ordinary command.
        let d = respAll([["MULTI"], ["SET", "a", "1"], ["DISCARD"], ["EXEC"]])
        #expect(try recordAOF(d).1.commands == 4)
    }

    /// Nothing of an unfinished block is delivered: a sink that fails on every block command proves it.
    @Test func unterminatedMultiIsDroppedWithWarning() throws {
        let head = respAll([["SET", "a", "1"]])
        let block = respAll([["MULTI"], ["SET", "b", "2"], ["INCR", "a"]])
        for tail in [[], Array(resp(["EXEC"]).prefix(5))] {
            let (r, s) = try recordAOF(head + block + tail)
            #expect(r.commands.count == 1)
            #expect(s.warnings.count == 1)
            #expect(s.warnings[0].contains("-: offset \(head.count)") && s.warnings[0].contains("MULTI"))
            #expect(s.files[0].droppedTailOffset == head.count)
            #expect(s.files[0].validBytes == head.count)
            var strict = AOFOptions()
            strict.strict = true
            let e = aofError(head + block + tail, options: strict)
            #expect(e?.code == .truncated && e?.offset == head.count)
        }
    }

    @Test func tornLastCommandIsDroppedWithWarning() throws {
        let good = respAll([["SET", "a", "1"], ["RPUSH", "l", "x", "y"]])
        let last = resp(["SET", "key", "value"])
        for cut in 1..<last.count {
            let bytes = good + last.prefix(cut)
            for chunk in [nil, 1, 7] as [Int?] {
                let (r, s) = try recordAOF(bytes, chunk: chunk)
                #expect(r.commands.count == 2, "cut \(cut)")
                #expect(s.warnings.count == 1)
                #expect(s.warnings.first?.contains("offset \(good.count)") == true)
                #expect(s.files[0].droppedTailBytes == cut)
                var strict = AOFOptions()
                strict.strict = true
                let e = aofError(bytes, options: strict, chunk: chunk)
                #expect(e?.code == .truncated && e?.offset == good.count && e?.file == "-")
            }
        }
    }

    @Test func corruptionIsAnErrorWithOffset() throws {
        let good = resp(["PING"])  // 14 bytes
        let cases: [(String, [UInt8], Int)] = [
            ("bad prefix", good + Array("?junk\r\n".utf8), 14),
            ("empty line", good + Array("\r\n".utf8) + good, 14),
            ("$ missing", good + Array("*1\r\n:4\r\nPING\r\n".utf8), 14),
            ("CRLF missing after bulk", good + Array("*1\r\n$4\r\nPINGX\r\n".utf8), 14),
            ("LF only", Array("*1\n$4\nPING\n".utf8), 0),
            ("non-numeric length", good + Array("*1\r\n$x\r\nPING\r\n".utf8), 14),
            ("non-numeric count", Array("*a\r\n".utf8) + good, 0),
            ("zero count", Array("*0\r\n".utf8) + good, 0),
            ("negative count", Array("*-1\r\n".utf8) + good, 0),
            ("negative length", Array("*1\r\n$-1\r\n".utf8) + good, 0),
            ("CR without LF", Array("*1\r$4\r\nPING\r\n".utf8), 0),
            ("digits overflow", Array("*1\r\n$1234567890123456789012\r\n".utf8), 0),
        ]
        for (what, bytes, offset) in cases {
            for chunk in [nil, 1, 7] as [Int?] {
                let e = aofError(bytes, chunk: chunk)
                #expect(e?.code == .aofFormat, "\(what): \(String(describing: e))")
                #expect(e?.offset == offset, "\(what): \(String(describing: e))")
                #expect(e?.file == "-", "\(what)")
            }
        }
    }

    @Test func hugeClaimsAreRejectedBeforeAllocating() throws {
        // 600 MiB claimed in a 40-byte input: a limit error at once, streamed or not.
        let bulk = Array("*2\r\n$3\r\nGET\r\n$629145600\r\nabc".utf8)
        for chunk in [nil, 7] as [Int?] {
            let e = aofError(bulk, chunk: chunk)
            #expect(e?.code == .limitExceeded && e?.offset == 0, "\(String(describing: e))")
        }
        let count = Array("*2000000\r\n$3\r\nGET\r\n".utf8)
        #expect(aofError(count)?.code == .limitExceeded)
        var o = AOFOptions()
        o.maxArguments = 2
        #expect(aofError(resp(["DEL", "a", "b"]), options: o)?.code == .limitExceeded)
        o = AOFOptions()
        o.maxBulkBytes = 4
        #expect(aofError(resp(["SET", "a", "12345"]), options: o)?.code == .limitExceeded)
        // A claim under the limit but past the end is a torn tail, and a stream does not allocate it
        // up front: its window only grows with bytes that arrive (a 1 MiB window limit is enough here).
        let claim = Array("*2\r\n$3\r\nGET\r\n$400000000\r\nabc".utf8)
        let (_, s) = try recordAOF(claim)
        #expect(s.warnings.count == 1)
        var r = AOFRecorder()
        let input = InputBuffer(stream: ChunkedArrayStream(claim, chunk: 7), chunkSize: 64, limit: 4 << 20)
        let s2 = try AOFReader.decode(input, into: &r)
        #expect(s2.warnings.count == 1 && r.commands.isEmpty)
    }

    @Test func streamWindowLimitIsEnforced() throws {
        let big = resp(["SET", "k", String(repeating: "v", count: 100_000)])
        var r = AOFRecorder()
        let input = InputBuffer(stream: ChunkedArrayStream(big, chunk: 1000), chunkSize: 1024, limit: 50_000)
        #expect(throws: RDBError.self) { _ = try AOFReader.decode(input, into: &r) }
        // A MULTI block must fit the window too.
        var block = resp(["MULTI"])
        for i in 0..<2000 { block += resp(["SET", "k\(i)", "value-\(i)"]) }
        block += resp(["EXEC"])
        var r2 = AOFRecorder()
        let input2 = InputBuffer(stream: ChunkedArrayStream(block, chunk: 100), chunkSize: 64, limit: 10_000)
        #expect(throws: RDBError.self) { _ = try AOFReader.decode(input2, into: &r2) }
        let (r3, _) = try recordAOF(block, chunk: 100)
        #expect(r3.commands.count == 2002)
    }

    @Test func rdbPreambleThenCommands() throws {
        var b = RDBBuilder(version: 10)
        b.aux("aof-preamble", "1")
        b.selectDB(2)
        b.key(type: 0, "k1", value: RDBBuilder.string("v1"))
        let bytes = b.finished() + respAll([["SET", "k2", "v2"]]) + Array("#TS:1\r\n".utf8)
        for chunk in [nil, 1, 7, 4096] as [Int?] {
            let (r, s) = try recordAOF(bytes, chunk: chunk)
            #expect(r.events == ["file - single", "rdb 10", "key db=2 k1", "value v1", "rdb-end",
                                 "db=0 @\(b.finished().count)+29 SET k2 v2", "ann @\(b.finished().count + 29) #TS:1", "end -"],
                    "chunk \(String(describing: chunk))")
            #expect(s.files[0].rdb?.header.version == 10)
        }
        // VALKEY magic is detected too; a damaged preamble is an RDB error, never a warning.
        var v = RDBBuilder(version: 80, family: .valkey)
        v.key(type: 0, "k", value: RDBBuilder.string("v"))
        #expect(try recordAOF(v.finished() + resp(["PING"])).1.commands == 1)
        let cut = Array(b.finished().dropLast(12))
        #expect(aofError(cut) != nil)
    }

    @Test func emptyInput() throws {
        let (r, s) = try recordAOF([])
        #expect(r.commands.isEmpty && s.warnings.isEmpty)
    }

    /// Every input above, and more, gives identical events, warnings and errors streamed in small chunks.
    @Test func streamedEqualsMapped() throws {
        var inputs: [[UInt8]] = [
            respAll([["SET", "a", "1"], ["MULTI"], ["INCR", "a"], ["EXEC"], ["SELECT", "5"], ["DEL", "a"]]),
            Array("#TS:1\r\nSET a b\r\n".utf8) + resp(["GET", "a"]) + Array("SET \"x y\" z\n".utf8),
            respAll([["MULTI"], ["SET", "a", String(repeating: "z", count: 5000)]]),
            respAll([["SET", "a", "1"]]) + Array("*3\r\n$3\r\nSET\r\n$1\r".utf8),
            respAll([["SET", "a", "1"]]) + Array("*1\r\n$4\r\nPINGX".utf8),
        ]
        for f in AOFFixtureTests.singleFiles { inputs.append(try Fixtures.bytes(f)) }
        for bytes in inputs {
            let mapped = Result { try recordAOF(bytes) }
            for chunk in [1, 7, 4096] {
                let streamed = Result { try recordAOF(bytes, chunk: chunk) }
                switch (mapped, streamed) {
                case (.success(let a), .success(let b)):
                    #expect(a.0.events == b.0.events)
                    #expect(a.1.warnings == b.1.warnings)
                case (.failure(let a), .failure(let b)):
                    #expect("\(a)" == "\(b)")
                default:
                    Issue.record("mapped \(mapped) vs streamed \(streamed)")
                }
            }
        }
    }

    @Test func lineSplittingRules() throws {
        let text = "a\"b c\"d e" // a quote inside a word is not allowed to be followed by a letter
        #expect(aofError(Array((text + "\n").utf8))?.code == .aofFormat)
        let (r, _) = try recordAOF(Array("SET ab\"c d\" '\\x41'\r\n".utf8))
        #expect(r.commands == [[Array("SET".utf8), Array("abc d".utf8), Array("\\x41".utf8)]])
    }

    /// Damaged inputs (bytes overwritten, cut anywhere) give a result or an RDBError, never a crash, and
    /// the same one mapped and streamed.
    @Test func damagedInputsNeverCrash() throws {
        var seed: UInt64 = 0x5EED_A0F
        func next() -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: seed >> 33)
        }
        let sources = [
            try Fixtures.bytes("corpus/redis-replicator/appendonly5.aof"),
            try Fixtures.bytes("corpus/redis/rdb-preamble.aof"),
            Array("#TS:1\r\nSET a \"b c\"\r\n".utf8) + respAll([["MULTI"], ["SET", "k", "v"], ["EXEC"]]),
        ]
        let specials: [UInt8] = [0x2A, 0x24, 0x23, 0x0D, 0x0A, 0x30, 0x39, 0x22, 0x27, 0x41, 0x2D, 0xFF, 0x00]
        for src in sources {
            for _ in 0..<150 {
                var b = src
                for _ in 0..<(1 + next() % 3) {
                    b[next() % b.count] = next() % 2 == 0 ? specials[next() % specials.count] : UInt8(truncatingIfNeeded: next())
                }
                if next() % 3 == 0 { b = Array(b.prefix(next() % b.count)) }
                let mapped = Result { try recordAOF(b) }
                let streamed = Result { try recordAOF(b, chunk: 7) }
                switch (mapped, streamed) {
                case (.success(let a), .success(let c)):
                    #expect(a.0.events == c.0.events)
                case (.failure(let a), .failure(let c)):
                    #expect(a is RDBError && "\(a)" == "\(c)")
                default:
                    Issue.record("mapped \(mapped) vs streamed \(streamed)")
                }
            }
        }
    }
}
