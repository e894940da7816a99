import Foundation
import Testing
import RDBKit
import RDBSinks

/// Every AOF fixture: the third-party corpus gives what its README says; the server-written ones
/// (testdata/servers/*/aof) decode without warnings and touch every key the server ends up holding.
@Suite struct AOFFixtureTests {
    static let corpusCounts: [(file: String, commands: Int, annotations: Int, preambleKeys: Int)] = [
        ("corpus/redis-replicator/appendonly-with-ts.aof", 65, 54, 0),
        ("corpus/redis-replicator/appendonly1.aof", 4, 0, 0),
        ("corpus/redis-replicator/appendonly5.aof", 71, 0, 0),
        ("corpus/redis-replicator/appendonly6.aof", 72, 0, 0),
        ("corpus/redis-replicator/appendonly7.aof", 4, 0, 0),
        ("corpus/redis/rdb-preamble.aof", 2, 0, 2),
    ]

    /// Single AOF files with content known to be valid (used by the streaming test too).
    static let singleFiles: [String] = corpusCounts.map(\.file) + serverFixtures.compactMap {
        let f = String($0.dropLast(".expected.jsonl".count)) + ".aof"
        return FileManager.default.fileExists(atPath: Fixtures.url(f).path) ? f : nil
    }

    /// Server-written AOF fixtures (single files and appendonlydir folders), by their expected file:
    /// testdata/servers/<kind>/aof/X.expected.jsonl.
    static let serverFixtures: [String] = {
        let kinds = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.url("servers").path)) ?? []
        var out: [String] = []
        for k in kinds.sorted() {
            let dir = "servers/\(k)/aof/"
            let names = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.url(dir).path)) ?? []
            out += names.filter { $0.hasSuffix(".expected.jsonl") }.sorted().map { dir + $0 }
        }
        return out
    }()

    @Test(arguments: corpusCounts.map(\.file))
    func corpusFileGivesItsCounts(_ file: String) throws {
        let want = AOFFixtureTests.corpusCounts.first { $0.file == file }!
        var r = AOFRecorder()
        let s = try AOFReader.decode(path: Fixtures.url(file).path, into: &r)
        #expect(s.commands == want.commands, "\(file)")
        #expect(s.annotations == want.annotations, "\(file)")
        #expect(r.keys == want.preambleKeys, "\(file)")
        #expect(s.warnings.isEmpty)
        #expect(s.files.count == 1 && s.files[0].kind == .single)
        // Every command starts in db 0 with a SELECT 0.
        #expect(r.commands.first.map { String(decoding: $0[0], as: UTF8.self).uppercased() } == "SELECT")
    }

    @Test func timestampAnnotations() throws {
        var r = AOFRecorder()
        _ = try AOFReader.decode(path: Fixtures.url("corpus/redis-replicator/appendonly-with-ts.aof").path, into: &r)
        let anns = r.events.filter { $0.hasPrefix("ann ") }
        #expect(anns.count == 54)
        #expect(anns.allSatisfy { $0.contains(" #TS:") })
    }

    @Test func moduleAndBinaryCommands() throws {
        var r6 = AOFRecorder()
        _ = try AOFReader.decode(path: Fixtures.url("corpus/redis-replicator/appendonly6.aof").path, into: &r6)
        #expect(r6.commands.contains { String(decoding: $0[0], as: UTF8.self).lowercased() == "hellotype.insert" })
        var r7 = AOFRecorder()
        _ = try AOFReader.decode(path: Fixtures.url("corpus/redis-replicator/appendonly7.aof").path, into: &r7)
        #expect(r7.commands.map { String(decoding: $0[0], as: UTF8.self).uppercased() } == ["SELECT", "SET", "HMSET", "SADD"])
        #expect(r7.commands.joined().contains { $0.contains { $0 >= 0x80 || $0 == 0 } })
    }

    /// redis/rdb-preamble.aof: the RDB preamble's keys, then `SELECT 0` and `set k3 v3`, give the expected keys.
    @Test func rdbPreambleGivesExpectedKeys() throws {
        let out = OutputBuffer(target: nil)
        var w = JSONLWriter(out: out, binary: .escape)
        _ = try AOFReader.decode(path: Fixtures.url("corpus/redis/rdb-preamble.aof").path, into: &w)
        let lines = String(decoding: out.take(), as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines == [
            #"{"db":0,"key":"k2","type":"string","expire_at_ms":null,"value":"v2"}"#,
            #"{"db":0,"key":"k1","type":"string","expire_at_ms":null,"value":"v1"}"#,
            #"{"db":0,"command":["SELECT","0"]}"#,
            #"{"db":0,"command":["set","k3","v3"]}"#,
        ])
        // The same state as the expected file, by a tiny model of SET.
        var state: [String: String] = [:]
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as! [String: Any]
            if let k = o["key"] as? String { state[k] = o["value"] as? String }
            if let c = o["command"] as? [String], c[0].uppercased() == "SET" { state[c[1]] = c[2] }
        }
        let expected = try readExpected("corpus/redis/rdb-preamble.aof.expected.jsonl")
        #expect(state == Dictionary(uniqueKeysWithValues: expected.map { ($0["key"] as! String, $0["value"] as! String) }))
    }

    /// redisshake/appendonlydir: the RDB base is fine, the INCR file lost its CRs (error at offset 0 of it).
    @Test func redisShakeDirectoryFailsAtIncrOffsetZero() throws {
        let dir = Fixtures.url("corpus/redisshake/appendonlydir").path
        let expected = try String(contentsOfFile: dir + "/appendonly.aof.2.incr.aof.expected-error.txt", encoding: .utf8)
        #expect(expected.hasPrefix("corrupt-encoding 0"))
        var r = AOFRecorder()
        do {
            _ = try AOFReader.decode(path: dir, into: &r)
            Issue.record("decoded without error")
        } catch let e as RDBError {
            #expect(e.code == .aofFormat)
            #expect(e.offset == 0)
            #expect(e.file?.hasSuffix("appendonly.aof.2.incr.aof") == true)
            #expect(e.description.contains("bare LF"))
        }
        #expect(r.keys == 10016)  // the base was read before the INCR failed
        #expect(r.commands.isEmpty)
    }

    /// The same folder with CR restored before each LF of the INCR file: 10016 base keys, then 9990 RPUSH (11 … 10000).
    @Test func redisShakeDirectoryWithCRsRestored() throws {
        let src = Fixtures.url("corpus/redisshake/appendonlydir").path
        let tmp = try TempDir()
        for name in ["appendonly.aof.manifest", "appendonly.aof.2.base.rdb"] {
            try tmp.write(name, try Fixtures.bytes("corpus/redisshake/appendonlydir/" + name))
        }
        var fixed: [UInt8] = []
        for b in try [UInt8](Data(contentsOf: URL(fileURLWithPath: src + "/appendonly.aof.2.incr.aof"))) {
            if b == 0x0A { fixed.append(0x0D) }
            fixed.append(b)
        }
        try tmp.write("appendonly.aof.2.incr.aof", fixed)
        var stats = AOFStats()
        let s = try AOFReader.decode(path: tmp.path, into: &stats)
        #expect(stats.preambleKeys == 10016)
        #expect(s.files.map(\.kind) == [.base, .incr])
        #expect(s.files[0].rdb != nil)
        let rpush = stats.byName["RPUSH"]?.count ?? 0
        #expect(rpush == 9990)
        #expect(s.manifest?.incrs.count == 1)
        var r = AOFRecorder()
        _ = try AOFReader.decode(path: tmp.path + "/appendonly.aof.manifest", into: &r)
        let pushes = r.commands.filter { String(decoding: $0[0], as: UTF8.self).lowercased() == "rpush" }
        #expect(pushes.first.map { $0.map { String(decoding: $0, as: UTF8.self) } } == ["rpush", "mylist", "11"])
        #expect(pushes.last.map { String(decoding: $0[2], as: UTF8.self) } == "10000")
    }

    @Test func serverFixturesArePresent() {
        // 6.2 single files (plain, preamble), 7.0 and Valkey 8.1 folders (RESP base, RDB base).
        #expect(AOFFixtureTests.serverFixtures.count >= 6, "\(AOFFixtureTests.serverFixtures)")
    }

    /// A server-written AOF decodes without warnings (from its path: file or folder), and every key the
    /// server holds after loading it is named by its preamble/base or by one of its commands.
    @Test(arguments: serverFixtures)
    func serverFixtureDecodes(_ expectedFile: String) throws {
        let fixture = String(expectedFile.dropLast(".expected.jsonl".count))
        let path = Fixtures.url(FileManager.default.fileExists(atPath: Fixtures.url(fixture + ".aof").path) ? fixture + ".aof" : fixture).path
        var keys = AOFKeys()
        let s = try AOFReader.decode(path: path, into: &keys)
        #expect(s.warnings.isEmpty)
        #expect(s.commands > 20)
        if path.hasSuffix(".aof") {
            #expect(s.files.map(\.kind) == [.single])
        } else {
            #expect(s.files.map(\.kind) == [.base, .incr])
        }
        let touched = Set(keys.keys.map { "\($0.key.db)/\(String(decoding: $0.key.key, as: UTF8.self))" })
        for e in try readExpected(expectedFile) {
            let k = "\(e["db"] ?? "")/\(e["key"] as? String ?? "")"
            #expect(touched.contains(k), "\(fixture): \(k) is not touched")
        }
        #expect(keys.unknownCommands.isEmpty, "\(keys.unknownCommands)")
        // Streamed through stdin-like chunks, a single file gives the same events.
        if path.hasSuffix(".aof") {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let a = try recordAOF(bytes)
            let b = try recordAOF(bytes, chunk: 7)
            #expect(a.0.events == b.0.events)
        }
    }
}
