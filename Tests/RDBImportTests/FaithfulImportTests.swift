import RDBKit
import RDBTestSupport
import Foundation
import Testing
import NIOCore
import RedisWire
@testable import RDBImport

/// Keys commands cannot rebuild exactly go as RESTORE; when nothing can carry them, the status says so.
@Suite("Faithful import")
struct FaithfulImportTests {
    /// A 7.0 dump with a listpack sorted set holding the text "-0" (restored there from a 6.2 ziplist: ZADD
    /// into a listpack stores 0) and a skiplist set with -0 scores: imported with the default (commands)
    /// mode, the listpack set goes as RESTORE and the digest equals the dump loaded by the server.
    @Test func negativeZeroSurvivesImport() throws {
        let old = try TestServer(.redis62)
        defer { old.stop() }
        try old.command("ZADD", "compact", "-0", "a", "2", "b")
        guard case .bulk(let payload?) = try old.command("DUMP", "compact") else {
            Issue.record("DUMP of the 6.2 ziplist failed")
            return
        }
        let source = try TestServer(.redis70)
        defer { source.stop() }
        let c = try source.client()
        let restored = try c.send(bytes: [Array("RESTORE".utf8), Array("compact".utf8), Array("0".utf8), payload])
        c.close()
        #expect(restored == .simple("OK"))
        var big = ["ZADD", "big"]
        for i in 0..<200 { big += [String(i + 1), "m\(i)"] }
        big += ["-0", "nz"]
        _ = try source.client().send(big)
        let file = try source.save()
        try source.command("DEBUG", "RELOAD")
        #expect(try source.command("ZSCORE", "compact", "a").text == "-0", "7.0 keeps the listpack's -0 on load")
        let want = try source.digest()

        let target = try TestServer(.redis70)
        defer { target.stop() }
        let r = ServerImportTests.run([file], into: target)
        #expect(r.status == .success, ServerImportTests.describe(r))
        #expect(r.problemCounts[.lossy] == nil)
        #expect(try target.digest() == want)
        #expect(try target.command("ZSCORE", "compact", "a").text == "-0")
        #expect(try target.command("ZSCORE", "big", "nz").text == "-0")
    }

    /// A target that keeps larger sorted sets compact (`zset-max-listpack-entries 512`, `-value 2048`), where a
    /// listpack would store a score of -0 as 0: a skiplist set of 301 members and one of 2 members, one of them
    /// 1500 bytes long (both skiplists at the source, both small enough for a listpack there), each with a
    /// score of -0. Read from the target (`CONFIG GET zset-max-*`), the limits make the RESTORE payload of
    /// each a listpack holding "-0", and the commands make the set a skiplist by a member longer than 2048
    /// bytes: every mode is digest-equal to the source.
    @Test(arguments: [TestServer.Kind.redis70, .valkey81])
    func negativeZeroKeepsToTheTargetsLimits(kind: TestServer.Kind) throws {
        let source = try TestServer(kind)
        defer { source.stop() }
        let c = try source.client()
        var many = ["ZADD", "many"]
        for i in 0..<300 { many += [String(i + 1), "m\(i)"] }
        _ = try c.send(many + ["-0", "nz"])
        _ = try c.send(["ZADD", "long", "1", String(repeating: "x", count: 1500), "-0", "nz"])
        c.close()
        for key in ["many", "long"] { #expect(try source.command("OBJECT", "ENCODING", key).text == "skiplist") }
        let want = try source.digest()
        let file = try source.save()

        for mode in [ImportOptions.Mode.auto, .commands, .restore] {
            let target = try TestServer(kind)
            defer { target.stop() }
            try target.command("CONFIG", "SET", "zset-max-listpack-entries", "512")
            try target.command("CONFIG", "SET", "zset-max-listpack-value", "2048")
            let r = ServerImportTests.run([file], into: target) { $0.mode = mode }
            #expect(r.status == .success, "\(mode): \(ServerImportTests.describe(r))")
            for key in ["many", "long"] {
                #expect(try target.command("ZSCORE", key, "nz").text == "-0", "\(mode) \(key)")
            }
            #expect(try target.digest() == want, "\(mode)")
        }
        // Limits given (`--zset-max-listpack-*`) win over what the target says: the defaults given here, the
        // commands' maker (1 KiB) leaves the set a listpack on this target, and the -0 is stored as 0.
        let target = try TestServer(kind)
        defer { target.stop() }
        try target.command("CONFIG", "SET", "zset-max-listpack-entries", "512")
        try target.command("CONFIG", "SET", "zset-max-listpack-value", "2048")
        _ = ServerImportTests.run([file], into: target) {
            $0.mode = .commands
            $0.compactSortedSets = CompactSortedSetLimits()
        }
        #expect(try target.command("ZSCORE", "many", "nz").text == "0")
    }

    /// What a live server holds, kept by every import path: a stream whose group has pending entries of
    /// messages trimmed away (XTRIM) and deleted (XDEL), and a sorted set small enough to be a listpack held
    /// as a skiplist with a score of -0 (grown past 128 members, shrunk, then given the -0; the server loading
    /// its own dump makes it a listpack, and the -0 a 0). The import, by default and with `--commands` (which
    /// sends streams as RESTORE: commands cannot claim such entries), is digest-equal to the source and keeps
    /// every pending entry. Into Redis 6.2, which cannot load the stream's type, the stream goes as commands:
    /// every consumer is there, the pending entries of live messages too, and the import ends LOSSY, naming it.
    @Test(arguments: [TestServer.Kind.redis70, .valkey81])
    func pendingEntriesOfGoneMessagesAndSmallSkiplists(kind: TestServer.Kind) throws {
        let source = try TestServer(kind)
        defer { source.stop() }
        for id in ["1-0", "2-0", "3-0", "4-0"] { try source.command("XADD", "s", id, "f", id) }
        try source.command("XGROUP", "CREATE", "s", "g", "0")
        for c in ["alice", "bob", "carol", "dave"] {
            try source.command("XREADGROUP", "GROUP", "g", c, "COUNT", "1", "STREAMS", "s", ">")
        }
        try source.command("XTRIM", "s", "MINID", "2-0")  // alice's 1-0
        try source.command("XDEL", "s", "2-0")  // bob's
        try Self.smallSkiplistWithNegativeZero(source)
        #expect(try source.command("ZSCORE", "z", "nz").text == "-0")
        let want = try source.digest()
        let pending = try source.command("XPENDING", "s", "g")
        #expect(Self.items(pending).first == .integer(4))
        let file = try source.save()

        for mode in [ImportOptions.Mode.auto, .commands] {
            let target = try TestServer(kind)
            defer { target.stop() }
            let r = ServerImportTests.run([file], into: target) { $0.mode = mode }
            #expect(r.status == .success, "\(mode): \(ServerImportTests.describe(r))")
            #expect(try target.digest() == want, "\(mode)")
            #expect(try target.command("XPENDING", "s", "g") == pending, "\(mode)")
            #expect(try target.command("ZSCORE", "z", "nz").text == "-0", "\(mode)")
        }

        let old = try TestServer(.redis62)
        defer { old.stop() }
        let r = ServerImportTests.run([file], into: old)
        #expect(r.status == .lossy, ServerImportTests.describe(r))
        #expect(r.problems.contains { $0.kind == .lossy && $0.keyText == "s" && $0.message.contains("no longer holds") },
                ServerImportTests.describe(r))
        #expect(try old.command("ZSCORE", "z", "nz").text == "-0")
        let consumers = Self.items(try old.command("XINFO", "CONSUMERS", "s", "g"))
        #expect(consumers.count == 4, "\(consumers)")
        #expect(Self.items(try old.command("XPENDING", "s", "g")).first == .integer(2))
    }

    /// Function libraries cannot go to a target before Redis 7.0: `rdbcat --format resp|restore
    /// --target-version 9` leaves them out and names each on stderr (the keys are written).
    @Test(arguments: ["resp", "restore"])
    func functionLibrariesLeftOutAreNamed(format: String) throws {
        let file = TestServer.repositoryRoot + "/testdata/servers/redis-7.0/mixed.rdb"
        let rdbcat = try TestServer.rdbcatPath()
        let (status, out, err) = try TestServer.run(rdbcat, [file, "--format", format, "--target-version", "9"])
        #expect(status == 0, "\(err)")
        #expect(!out.contains("FUNCTION"))
        #expect(err.contains("warning: function library fixturelib not written: function libraries need a target of RDB version 10"), "\(err)")
        let (_, same, sameErr) = try TestServer.run(rdbcat, [file, "--format", format])
        #expect(same.contains("FUNCTION") && !sameErr.contains("fixturelib"), "\(sameErr)")
    }

    /// A Redis 6.2 dump's small skiplist set with -0, as RESTORE payloads for RDB 9 (a ziplist payload holding
    /// "-0"), keeps the -0 in Redis 6.2 and in Redis 7.0 alike (7.0 turns a skiplist payload of that size into a
    /// listpack, with 0).
    @Test func smallSkiplistWithNegativeZeroForAnOlderTarget() throws {
        let source = try TestServer(.redis62)
        defer { source.stop() }
        try Self.smallSkiplistWithNegativeZero(source)
        let want = try source.digest()
        let file = try source.save()
        for kind in [TestServer.Kind.redis62, .redis70] {
            let target = try TestServer(kind)
            defer { target.stop() }
            let r = ServerImportTests.run([file], into: target) {
                $0.mode = .restore
                $0.targetVersion = 9
            }
            #expect(r.status == .success, "\(kind): \(ServerImportTests.describe(r))")
            #expect(try target.command("ZSCORE", "z", "nz").text == "-0", "\(kind)")
            #expect(try target.digest() == want, "\(kind)")
        }
    }

    /// `--target-version` takes the RDB version of a server only: 0, 99 and the like are refused up front
    /// (exit 64, the accepted values named) instead of writing payloads no server loads.
    @Test(arguments: ["0", "15", "99", "65536"])
    func targetVersionIsChecked(version: String) throws {
        let file = TestServer.repositoryRoot + "/testdata/servers/redis-7.0/strings.rdb"
        let (status, out, err) = try TestServer.run(try TestServer.rdbcatPath(), [file, "--format", "restore", "--target-version", version])
        #expect(status == 64, "\(err)")
        #expect(out.isEmpty)
        #expect(err.contains("--target-version \(version) is not the RDB version of a server"), "\(err)")
    }

    /// Sorted set `z` on `server`: grown past 128 members (a skiplist), shrunk to 2, then given member `nz`
    /// of score -0; it stays a skiplist.
    static func smallSkiplistWithNegativeZero(_ server: TestServer) throws {
        let c = try server.client()
        defer { c.close() }
        var big = ["ZADD", "z"]
        for i in 0..<200 { big += [String(i + 1), "m\(i)"] }
        _ = try c.send(big)
        _ = try c.send(["ZREMRANGEBYRANK", "z", "2", "-1"])
        _ = try c.send(["ZADD", "z", "-0", "nz"])
        #expect(try c.send(["OBJECT", "ENCODING", "z"]).text == "skiplist")
    }

    static func items(_ r: RESPReply) -> [RESPReply] {
        if case .array(let a?) = r { return a }
        return []
    }

    /// Hash-field TTLs into Redis 7.0: neither commands nor a payload 7.0 loads can carry them, so the keys
    /// are written without, counted as lossy, and the import ends LOSSY (not SUCCESS).
    @Test func lossyImportEndsLossy() throws {
        let file = TestServer.repositoryRoot + "/testdata/corpus/hdt3213-rdb/hash_with_hfe.rdb"
        let target = try TestServer(.redis70)
        defer { target.stop() }
        let r = ServerImportTests.run([file], into: target) { $0.skipExpired = false }
        #expect(r.status == .lossy, ServerImportTests.describe(r))
        #expect((r.problemCounts[.lossy] ?? 0) > 0)
        #expect(r.keysImported == r.keysRead)
        #expect(r.json().contains("\"status\":\"LOSSY\""))
    }

    /// A hand-made AOF with blocking commands (servers log what they did instead): each goes inside MULTI, where
    /// the server runs it without blocking, so the import neither hangs nor waits out a timeout; the target
    /// ends as a server given the same commands in MULTI.
    @Test func blockingCommandsDoNotBlock() throws {
        let commands: [[String]] = [
            ["RPUSH", "l", "a", "b"], ["BLPOP", "l", "0"], ["BLPOP", "empty", "0"], ["brpop", "l", "empty", "0"],
            ["ZADD", "z", "1", "x", "2", "y"], ["BZPOPMIN", "z", "0"], ["BZPOPMAX", "nozset", "0"],
            ["RPUSH", "src", "1", "2"], ["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"], ["BRPOPLPUSH", "none", "dst", "0"],
            ["XADD", "s", "1-1", "f", "v"], ["XREAD", "BLOCK", "0", "STREAMS", "s", "$"], ["WAIT", "1", "0"],
            ["SET", "after", "1"],
        ]
        var aof = ""
        for c in commands {
            aof += "*\(c.count)\r\n" + c.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()
        }
        let path = NSTemporaryDirectory() + "blocking-\(UUID().uuidString).aof"
        try aof.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }

        let reference = try TestServer(.redis70)
        defer { reference.stop() }
        let c = try reference.client()
        for cmd in commands {
            var b = ByteBuffer()
            b.writeCommand(["MULTI"])
            b.writeCommand(cmd)
            b.writeCommand(["EXEC"])
            _ = try c.send(b, replies: 3)
        }
        c.close()

        let target = try TestServer(.redis70)
        defer { target.stop() }
        let started = Date()
        let r = ServerImportTests.run([path], into: target) { $0.pipeline.replyTimeout = 20 }
        #expect(r.status == .success, ServerImportTests.describe(r))
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(try target.command("GET", "after").text == "1")
        #expect(try target.digest() == reference.digest())
    }
}
