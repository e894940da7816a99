import Foundation
import Testing
import RDBKit
@testable import RDBSinks

/// The sinks on AOF input: RESP passthrough, JSONL commands, stats and keys.
@Suite struct AOFSinkTests {
    func preambleAOF() -> [UInt8] {
        var b = RDBBuilder(version: 10)
        b.selectDB(3)
        b.key(type: 0, "pre", value: RDBBuilder.string("v"))
        return b.finished() + respAll([["SET", "a", "1"], ["MULTI"], ["INCR", "a"], ["EXEC"], ["SELECT", "2"], ["DEL", "a", "b"]])
            + Array("#TS:5\r\nlpush l \"x y\"\r\n".utf8)
    }

    @Test func respPassthroughReplaysCommands() throws {
        let out = OutputBuffer(target: nil)
        var w = RESPWriter(out: out)
        _ = try AOFReader.decode(bytes: preambleAOF(), into: &w)
        let bytes = out.take()
        // The output is itself a plain AOF: the preamble's key as commands, then a SELECT 0 (the AOF part
        // starts in db 0 while the preamble left the target in db 3), then the commands, inline ones as RESP.
        let (r, s) = try recordAOF(bytes)
        let texts = r.commands.map { $0.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ") }
        #expect(texts == ["SELECT 3", "SET pre v", "SELECT 0", "SET a 1", "MULTI", "INCR a", "EXEC", "SELECT 2", "DEL a b", "lpush l x y"])
        #expect(s.annotations == 0)
        #expect(w.commandsWritten == 10)
        #expect(!r.events.contains { $0.contains("inline") })
        // Without SELECTs, the AOF's own SELECT is left out too.
        let out2 = OutputBuffer(target: nil)
        var w2 = RESPWriter(out: out2, options: RESPWriterOptions(emitSelect: false))
        _ = try AOFReader.decode(bytes: preambleAOF(), into: &w2)
        let texts2 = try recordAOF(out2.take()).0.commands.map { String(decoding: $0[0], as: UTF8.self) }
        #expect(!texts2.contains("SELECT"))
    }

    @Test func jsonlCommands() throws {
        let out = OutputBuffer(target: nil)
        var w = JSONLWriter(out: out, binary: .base64)
        let bytes = respBytes([Array("SET".utf8), [0xFF, 0x00], Array("v".utf8)]) + resp(["SELECT", "1"])
        _ = try AOFReader.decode(bytes: bytes, into: &w)
        let lines = String(decoding: out.take(), as: UTF8.self).split(separator: "\n")
        #expect(lines == [#"{"db":0,"command":["U0VU","/wA=","dg=="]}"#, #"{"db":1,"command":["U0VMRUNU","MQ=="]}"#])
        let out2 = OutputBuffer(target: nil)
        var w2 = JSONLWriter(out: out2)
        _ = try AOFReader.decode(bytes: preambleAOF(), into: &w2)
        let text = String(decoding: out2.take(), as: UTF8.self)
        #expect(text.hasPrefix(#"{"db":3,"key":"pre","type":"string""#))
        #expect(text.hasSuffix("{\"db\":2,\"command\":[\"lpush\",\"l\",\"x y\"]}\n"))
        for l in text.split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(l.utf8))) != nil, "\(l)")
        }
    }

    @Test func stats() throws {
        var st = AOFStats()
        _ = try AOFReader.decode(bytes: preambleAOF(), into: &st)
        #expect(st.commands == 7 && st.preambleKeys == 1 && st.annotations == 1 && st.multiBlocks == 1)
        #expect(st.inlineCommands == 1)
        #expect(st.byName["SET"]?.count == 1 && st.byName["SET"]?.bytes == 27)
        #expect(st.byName["LPUSH"]?.count == 1)
        #expect(st.commandsByDB == [0: 4, 2: 3])  // a SELECT counts in the db it selects
        let out = OutputBuffer(target: nil)
        try st.writeJSON(to: out)
        #expect((try? JSONSerialization.jsonObject(with: Data(out.take()))) != nil)
        try st.write(to: out)
        #expect(String(decoding: out.take(), as: UTF8.self).contains("\nSET\t1\t27\n"))
        var small = AOFStats()
        small.maxNames = 2
        _ = try AOFReader.decode(bytes: respAll([["A"], ["B"], ["C"], ["D"]]), into: &small)
        #expect(small.byName.count == 3 && small.byName["(other)"]?.count == 2)
        // MULTI counted as a block also when its name is past `maxNames` (counted under "(other)").
        var late = AOFStats()
        late.maxNames = 2
        _ = try AOFReader.decode(bytes: respAll([["A"], ["B"], ["MULTI"], ["SET", "k", "v"], ["EXEC"], ["multi"], ["EXEC"]]), into: &late)
        #expect(late.multiBlocks == 2 && late.byName["(other)"]?.count == 5)
        // Spellings in any case count under one name, past the cache of spellings too (100 distinct ones).
        var spelled = AOFStats()
        let commands = [["set", "a", "1"], ["SET", "b", "2"], ["Set", "c", "3"], ["incr", "n"], ["set", "d", "4"]]
            + (0..<100).map { ["cmd\($0)"] } + [["sEt", "e", "5"], ["CMD7"]]
        _ = try AOFReader.decode(bytes: respAll(commands), into: &spelled)
        #expect(spelled.byName["SET"]?.count == 5 && spelled.byName["INCR"]?.count == 1)
        #expect(spelled.byName["CMD7"]?.count == 2 && spelled.byName["CMD99"]?.count == 1)
        #expect(spelled.byName.count == 102 && spelled.commands == 107)
        #expect(spelled.argumentBytes == commands.joined().map(\.utf8.count).reduce(0, +))
        // Names of every length up to past the 16 bytes a spelling holds, and names of one length that differ
        // only in one byte (in the first 8, the overlap, the last 8): each counted under its own name.
        var lengths = AOFStats()
        var named: [[String]] = []
        for n in 1...20 {
            let base = Array("ABCDEFGHIJKLMNOPQRST".prefix(n))
            for k in [0, n / 2, n - 1] {
                var v = base
                v[k] = "z"
                named.append([String(v)])
                named.append([String(v).lowercased()])
            }
            named.append([String(base)])
        }
        _ = try AOFReader.decode(bytes: respAll(named + named), into: &lengths)
        let expected = Dictionary(named.map { ($0[0].uppercased(), 2) }, uniquingKeysWith: +)
        #expect(lengths.byName.mapValues(\.count) == expected)
    }

    func keysOf(_ commands: [[String]]) throws -> [String] {
        var k = AOFKeys()
        _ = try AOFReader.decode(bytes: respAll(commands), into: &k)
        return k.keys.map { "\($0.key.db):\(String(decoding: $0.key.key, as: UTF8.self))" }
    }

    @Test func keyPositions() throws {
        #expect(try keysOf([["SET", "a", "1"], ["MSET", "b", "1", "c", "2"], ["DEL", "a", "d"]]) == ["0:a", "0:b", "0:c", "0:d"])
        #expect(try keysOf([["ZUNIONSTORE", "dst", "2", "s1", "s2", "WEIGHTS", "1", "2"]]) == ["0:dst", "0:s1", "0:s2"])
        #expect(try keysOf([["EVAL", "return 1", "1", "k", "arg"]]) == ["0:k"])
        #expect(try keysOf([["BLPOP", "l1", "l2", "0"]]) == ["0:l1", "0:l2"])
        #expect(try keysOf([["SORT", "src", "BY", "w", "STORE", "dst"]]) == ["0:src", "0:dst"])
        #expect(try keysOf([["XGROUP", "CREATE", "s", "g", "$"], ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "s2", ">", ">"]]) == ["0:s", "0:s1", "0:s2"])
        #expect(try keysOf([["BITOP", "AND", "d", "x", "y"], ["RENAME", "x", "z"], ["SELECT", "4"], ["SET", "a", "1"]])
                == ["0:d", "0:x", "0:y", "0:z", "4:a"])
        var k = AOFKeys()
        _ = try AOFReader.decode(bytes: respAll([["SET", "a", "1"], ["SET", "a", "2"], ["FLUSHALL"], ["MYMODULE.CMD", "x"]]), into: &k)
        #expect(k.keys.count == 1 && k.keys[0].commands == 2)
        #expect(k.unknownCommands == ["MYMODULE.CMD": 1])
        var p = AOFKeys()
        _ = try AOFReader.decode(bytes: preambleAOF(), into: &p)
        #expect(p.keys.first?.inPreamble == true && p.keys.first?.key.db == 3)
        let out = OutputBuffer(target: nil)
        try p.writeJSONL(to: out)
        #expect(String(decoding: out.take(), as: UTF8.self).hasPrefix("{\"db\":3,\"key\":\"pre\",\"commands\":0,\"preamble\":true}\n"))
    }

    /// Thousands of keys (the table grows several times), the same names in two databases, an empty name,
    /// names that differ in their last byte: each (db, key) once, in first-seen order, with its count.
    @Test func manyKeysAreCountedOncePerDatabase() throws {
        var commands: [[String]] = []
        for i in 0..<3000 { commands.append(["SET", "key:\(i)", "v"]) }
        commands.append(["SELECT", "2"])
        for i in stride(from: 0, to: 3000, by: 2) { commands.append(["INCR", "key:\(i)"]) }
        commands.append(["SET", "", "empty"])
        commands.append(["SELECT", "0"])
        for i in 0..<3000 where i % 3 == 0 { commands.append(["APPEND", "key:\(i)", "x"]) }
        var k = AOFKeys()
        _ = try AOFReader.decode(bytes: respAll(commands), into: &k)
        #expect(k.keys.count == 3000 + 1500 + 1)
        var expected: [String: Int] = [:]
        var order: [String] = []
        var db = 0
        for c in commands {
            if c[0] == "SELECT" { db = Int(c[1])!; continue }
            let name = "\(db):\(c[1])"
            if expected[name] == nil { order.append(name) }
            expected[name, default: 0] += 1
        }
        #expect(k.keys.map { "\($0.key.db):\(String(decoding: $0.key.key, as: UTF8.self))" } == order)
        #expect(k.keys.allSatisfy { expected["\($0.key.db):\(String(decoding: $0.key.key, as: UTF8.self))"] == $0.commands })
        #expect(k.keys.first { $0.key.db == 0 && $0.key.key == Array("key:3".utf8) }?.commands == 2)
    }

    /// What `AOFKeys` lists for `commands` (of SELECT, SET and DEL only).
    func keysAndCounts(_ commands: [[String]]) throws -> [AOFKeys.Usage] {
        var k = AOFKeys()
        _ = try AOFReader.decode(bytes: respAll(commands), into: &k)
        return k.keys
    }

    /// The keys of `commands` (of SELECT, SET and DEL only) in the order first seen, and their counts, counted
    /// one by one in a dictionary.
    func countedOneByOne(_ commands: [[String]]) -> (order: [String], counts: [String: Int]) {
        var counts: [String: Int] = [:]
        var order: [String] = []
        var db = 0
        for c in commands {
            if c[0] == "SELECT" { db = Int(c[1])!; continue }
            for name in c.dropFirst().prefix(c[0] == "SET" ? 1 : c.count - 1) {
                let key = "\(db):\(name)"
                if counts[key] == nil { order.append(key) }
                counts[key, default: 0] += 1
            }
        }
        return (order, counts)
    }

    /// Long names, and keys named again while still batched: the same keys, order and counts as counting them
    /// one by one.
    @Test func longNamesAndRepeatsInABatch() throws {
        var commands: [[String]] = []
        let pad = String(repeating: "n", count: 200)
        for i in 0..<4000 {
            commands.append(["SET", "\(pad):\(i % 1500)", "v"])
            if i % 7 == 0 { commands.append(["DEL", "\(pad):\(i % 1500)", "\(pad):\(i % 1500)"]) }  // twice in one command
            if i % 500 == 0 { commands.append(["SELECT", "\(i / 500 % 3)"]) }
        }
        let got = try keysAndCounts(commands)
        let (order, expected) = countedOneByOne(commands)
        #expect(got.map { "\($0.key.db):\(String(decoding: $0.key.key, as: UTF8.self))" } == order)
        #expect(got.map(\.commands) == order.map { expected[$0]! })
    }

    /// Names of every length around a word and the 64 bytes compared a word at a time, names that differ only in
    /// their last byte or only in length, in several databases, over enough keys that the index grows and batches
    /// go to the worker: each once, in first-seen order, with its count.
    @Test func namesOfEveryLengthAroundTheLimits() throws {
        var commands: [[String]] = []
        let lengths = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 31, 32, 33, 40, 63, 64, 65, 104, 300]
        for round in 0..<3 {
            commands.append(["SELECT", "\(round % 2)"])
            for i in 0..<700 {
                let n = lengths[i % lengths.count]
                let base = String(repeating: "k", count: max(0, n - 1))
                let name = n == 0 ? "" : base + String(UnicodeScalar(UInt8(97 + (i / lengths.count) % 26)))
                commands.append(i % 5 == 0 ? ["DEL", name, name + "x"] : ["SET", name, "v"])
            }
        }
        let got = try keysAndCounts(commands)
        let (order, expected) = countedOneByOne(commands)
        #expect(got.count > 600)
        #expect(got.map { "\($0.key.db):\(String(decoding: $0.key.key, as: UTF8.self))" } == order)
        #expect(got.map(\.commands) == order.map { expected[$0]! })
    }

    /// `AOFKeys` is a value: a copy made part-way goes on counting on its own, and the original is unchanged.
    @Test func aCopyCountsOnItsOwn() throws {
        let first = (0..<2000).map { ["SET", "key:\($0 % 900)", "v"] }
        let second = (0..<2000).map { ["INCR", "key:\($0 % 1300)"] } + [["SET", String(repeating: "z", count: 200), "v"]]
        var a = AOFKeys()
        _ = try AOFReader.decode(bytes: respAll(first), into: &a)
        var b = a
        _ = try AOFReader.decode(bytes: respAll(second), into: &b)
        var onlyFirst = AOFKeys()
        _ = try AOFReader.decode(bytes: respAll(first), into: &onlyFirst)
        var both = AOFKeys()
        _ = try AOFReader.decode(bytes: respAll(first + second), into: &both)
        func listed(_ k: inout AOFKeys) -> [String] { k.keys.map { "\($0.key.db):\($0.key.key.count):\($0.commands)" } }
        #expect(listed(&a) == listed(&onlyFirst))
        #expect(listed(&b) == listed(&both))
        #expect(listed(&a) != listed(&b))
    }

    /// A table of tens of MiB: its entries grow by moving their pages (`regrown`), its index is mapped and
    /// grown several times. Every key is listed once, in order, with its count, and each found again after
    /// the growths (named a second time, the keys of the first half twice over).
    @Test func aLargeTableMovesItsEntriesAndKeepsEveryKey() {
        let t = AOFKeyTable(seed: 0x1234_5678_9ABC_DEF1)
        let n = 150_000
        var name = [UInt8](repeating: 0x6E, count: 100) + [0, 0, 0, 0]  // 100-byte names, zero-padded to a word
        func count(_ i: Int) {
            var v = i
            for k in 0..<8 { name[k] = UInt8(truncatingIfNeeded: v); v >>= 8 }
            name.withUnsafeBytes { b in
                let p = b.baseAddress!
                t.tally(AOFKeyTable.keyWord(i % 3, 100), p, hash: t.hash(i % 3, padded: p, 100), adding: 1)
            }
        }
        for i in 0..<n { count(i) }
        #expect(t.entriesCapacity >= n * AOFKeyTable.entryBytes(100) && t.capacity >= 2 * n)
        for i in 0..<n { count(i) }
        for i in 0..<(n / 2) { count(i) }
        var i = 0
        var wrong = 0
        t.forEachEntry { db, key, commands, _ in
            var v = 0
            for k in (0..<8).reversed() { v = v << 8 | Int(key[k]) }
            if db != i % 3 || v != i || key.count != 100 || key[99] != 0x6E || commands != (i < n / 2 ? 3 : 2) { wrong += 1 }
            i += 1
        }
        #expect(i == n && t.count == n && wrong == 0)
    }

    /// A part placed on two cores may fill the index to three quarters without growing it (at the end of a set,
    /// no key may come after); the next new key counted grows it. Every key is found once, with its count.
    @Test func aMergeFillsTheIndexPastHalfAndTheNextKeyGrowsIt() {
        let seed: UInt64 = 99
        let words = 1 << 16
        func add(_ t: AOFKeyTable, _ i: Int) {
            var name = [UInt8](repeating: 0, count: 16)
            var v = i
            for k in 0..<8 { name[k] = UInt8(truncatingIfNeeded: v); v >>= 8 }
            name.withUnsafeBytes { b in t.tally(AOFKeyTable.keyWord(0, 8), b.baseAddress!, hash: t.hash(0, padded: b.baseAddress!, 8), adding: 1) }
        }
        let t = AOFKeyTable(capacity: words, seed: seed), part = AOFKeyTable(capacity: words, seed: seed)
        for i in 0..<(words * 2 / 5) { add(t, i) }
        for i in (words * 3 / 10)..<(words * 3 / 5) { add(part, i) }  // a quarter of them in `t` already
        t.merge(part, dbAtStart: 0)
        #expect(t.capacity == words && t.count == words * 3 / 5)
        for i in 0..<(words * 3 / 5) { add(t, i) }
        #expect(t.capacity == words && t.count == words * 3 / 5)  // all found: no key added, no growth
        add(t, words)
        #expect(t.capacity > words && t.count == words * 3 / 5 + 1)
        var counts: [Int: Int] = [:]
        t.forEachEntry { _, key, commands, _ in
            var v = 0
            for k in (0..<8).reversed() { v = v << 8 | Int(key[k]) }
            counts[v] = commands
        }
        let twice = (0..<(words * 3 / 5)).filter { counts[$0] != (($0 >= words * 3 / 10 && $0 < words * 2 / 5) ? 3 : 2) }
        #expect(counts.count == words * 3 / 5 + 1 && twice.isEmpty)
    }

    /// A mapped region made of two mappings (as when a part's entries were moved in) grows by moving a huge page
    /// at a time: every byte kept, the rest zero.
    @Test func aRegionOfSeveralMappingsGrowsWhole() {
        let huge = AOFKeyTable.hugePage
        let p = AOFKeyTable.zeroed(2 * huge)
        for k in 0..<(2 * huge / 8) { p.storeBytes(of: UInt64(k) &* 0x9E37_79B9, toByteOffset: k * 8, as: UInt64.self) }
        // Its second half made a mapping of its own (other flags): the region cannot be moved at once.
        #expect(madvise(p + huge, huge, MADV_NOHUGEPAGE) == 0)
        let used = 2 * huge - 24
        let q = AOFKeyTable.regrown(p, 2 * huge, used: used, to: 5 * huge)
        var wrong = 0
        for k in 0..<(used / 8) where q.load(fromByteOffset: k * 8, as: UInt64.self) != UInt64(k) &* 0x9E37_79B9 { wrong += 1 }
        for k in (2 * huge / 8)..<(5 * huge / 8) where q.load(fromByteOffset: k * 8, as: UInt64.self) != 0 { wrong += 1 }
        #expect(wrong == 0)
        AOFKeyTable.free(q, 5 * huge)
    }

    /// Keys counted with a hint of the bytes they come in (`expect`): a file of one new key per command grows its
    /// index by the rate keys come at (8 times its words at once), keys named again only by doubling; each key
    /// once, in order, with its count.
    @Test func theIndexGrowsByTheRateKeysComeAt() {
        let t = AOFKeyTable(seed: 7)
        t.expect(from: 1000, to: 1000 + 60_000 * 40)
        func count(_ i: Int, at position: Int) {
            var name = Array("key:\(i)".utf8)
            let n = name.count
            name += [0, 0, 0, 0, 0, 0, 0, 0]
            name.withUnsafeBytes { b in
                t.position = position
                t.tally(AOFKeyTable.keyWord(0, n), b.baseAddress!, hash: t.hash(0, padded: b.baseAddress!, n), adding: 1)
            }
        }
        for i in 0..<513 { count(i, at: 1000 + i * 40) }
        #expect(t.capacity == 8 << 10)  // 513 new keys in 20 KB of 2.4 MB: 60,000 to come
        for i in 513..<60_000 { count(i, at: 1000 + i * 40) }
        #expect(t.capacity == 1 << 17)
        // Past the hinted bytes (a file larger than said): doubling.
        for i in 60_000..<70_000 { count(i, at: 1000 + 60_000 * 40 + i) }
        #expect(t.capacity == 1 << 18)
        for i in 0..<70_000 where i % 2 == 0 { count(i, at: 1000 + 60_000 * 40 + 70_000) }
        var i = 0, wrong = 0
        t.forEachEntry { db, key, commands, _ in
            if db != 0 || Array(key) != Array("key:\(i)".utf8) || commands != (i % 2 == 0 ? 2 : 1) { wrong += 1 }
            i += 1
        }
        #expect(i == 70_000 && wrong == 0)
    }

    /// Keys whose hashes are all the same (given to `tally` as such): told apart by database, length and every
    /// byte of the name (compared a word at a time, and beyond 64 bytes by memcmp). (The index does not grow
    /// here: growing places each key by the hash of its name, `AOFKeyTable.hash`.)
    @Test func collidingHashesAreToldApartByTheirBytes() {
        let t = AOFKeyTable(capacity: 128)
        var names: [(Int, [UInt8])] = []
        for n in [1, 8, 24, 31, 32, 33, 64, 200] {
            let base = [UInt8](repeating: 0x6B, count: n)
            for last in 0..<3 {
                var name = base
                name[n - 1] = 0x61 + UInt8(last)
                names.append((0, name))
                names.append((1, name))
            }
        }
        func count(_ db: Int, _ name: [UInt8]) {
            let padded = name + [UInt8](repeating: 0, count: 32)  // a name in the slot is compared as zero-padded words
            padded.withUnsafeBytes { t.tally(AOFKeyTable.keyWord(db, name.count), $0.baseAddress!, hash: 42, adding: 1) }
        }
        for (db, name) in names { count(db, name) }
        for (db, name) in names.reversed() { count(db, name) }
        #expect(t.capacity == 128 && t.count == names.count)
        var seen: [String] = []
        t.forEachEntry { db, name, commands, _ in seen.append("\(db):\(Array(name)):\(commands)") }
        #expect(seen == names.map { "\($0.0):\($0.1):2" })
    }
}
