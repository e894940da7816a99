import Foundation
import Testing
import RDBKit
import RDBSinks

/// The writers' defaults, as `rdbcat --format restore|resp` uses them without `--target-version`: a dump
/// replays into a server of the kind that wrote it (payloads and command forms of the file's own RDB
/// version), checked on real servers with `DEBUG DIGEST`.
@Suite struct ServerDefaultsTests {
    typealias Kind = RedisServer.Kind
    let replay = ServerReplayTests()

    /// Every server fixture restored by default (no target version) into its own kind: digest-equal,
    /// every payload passed through, stamped with the file's version.
    @Test(arguments: Kind.allCases)
    func restoreByDefaultIntoTheWritersKind(_ kind: Kind) throws {
        let fixtures = ServerReplayTests.serverFixtures(kind)
        #expect(fixtures.count >= 5)
        let server = try RedisServer(kind: kind)
        defer { server.stop() }
        for f in fixtures {
            let bytes = try Fixtures.bytes(f.path)
            try server.flushAll()
            let out = OutputBuffer(target: nil)
            var w = RestoreWriter(out: out, options: RestoreWriterOptions())
            _ = try RDBReader.decode(bytes: bytes, into: &w)
            #expect(w.target == kind.rdbVersion, "\(f.path)")
            #expect(w.stats.reencoded == 0 && w.stats.asCommands == 0, "\(f.path): \(w.stats)")
            guard replay.pipeOK(server, out.take(), "\(f.path) RESTORE by default into \(kind)") else { continue }
            #expect(try server.digest() == f.digest, "\(f.path): RESTORE by default into \(kind)")
        }
    }

    /// RESP by default: a 6.2 dump's streams get `XSETID key id` (the form 6.2 takes), so they keep their
    /// last ID; a 7.0 dump's get the ENTRIESADDED / MAXDELETEDID form.
    @Test(arguments: [Kind.redis62, .redis70])
    func respByDefaultUsesTheFilesStreamForms(_ kind: Kind) throws {
        let path = "servers/\(kind.rawValue)/streams.rdb"
        let bytes = try Fixtures.bytes(path)
        let server = try RedisServer(kind: kind)
        defer { server.stop() }
        let out = OutputBuffer(target: nil)
        var w = RESPWriter(out: out)
        _ = try RDBReader.decode(bytes: bytes, into: &w)
        let resp = out.take()
        let text = String(decoding: resp, as: UTF8.self)
        #expect(text.contains("XSETID"))
        #expect(text.contains("ENTRIESADDED") == (kind != .redis62), "\(kind)")
        try server.flushAll()
        #expect(replay.pipeOK(server, resp, "\(path) RESP by default"))
        let original = try replay.keyObjects(bytes)
        // The content comparison covers each stream's last ID (and, on 7.0, its counters).
        #expect(try replay.compareContent(server, original, .init(streamMetadata: kind.rdbVersion >= 10, storedStreamLength: false), "\(path) RESP by default"))
    }

    /// Scores of -0 as a server keeps them (skiplist sets, and 6.2 ziplists): a dump of such sets replayed by
    /// `--format resp` is digest-equal to the server that wrote it, a small skiplist set included (the server
    /// loading the dump makes that one a listpack, and its -0 a 0; the commands keep it).
    @Test(arguments: Kind.allCases)
    func negativeZeroScoresReplayAsCommands(_ kind: Kind) throws {
        let server = try RedisServer(kind: kind)
        defer { server.stop() }
        var big = ["ZADD", "big"]
        for i in 0..<200 { big += [String(i + 1), "m\(i)"] }
        big += ["-0", "nz1", "-0", "nz2", "0", "zero"]
        try server.cli(big)
        try server.cli(["CONFIG", "SET", "zset-max-ziplist-entries", "0"])
        try server.cli(["ZADD", "small-skiplist", "-0", "a", "1", "b"])
        try server.cli(["CONFIG", "SET", "zset-max-ziplist-entries", "128"])
        try server.cli(["ZADD", "compact", "-0", "a", "2", "b"])
        #expect(try server.cli(["ZSCORE", "big", "nz1"]).hasPrefix("-0"))
        #expect(try server.cli(["ZSCORE", "small-skiplist", "a"]).hasPrefix("-0"))
        let want = try server.digest()
        let bytes = try server.save()

        try server.flushAll()
        let out = OutputBuffer(target: nil)
        var w = RESPWriter(out: out)
        _ = try RDBReader.decode(bytes: bytes, into: &w)
        #expect(w.lossyKeys.isEmpty, "\(w.lossyKeys.map(\.reason))")
        #expect(replay.pipeOK(server, out.take(), "-0 sets RESP into \(kind)"))
        #expect(try server.digest() == want, "-0 sets RESP into \(kind)")
        #expect(try server.cli(["ZSCORE", "big", "nz1"]).hasPrefix("-0"))
        #expect(try server.cli(["ZSCORE", "small-skiplist", "a"]).hasPrefix("-0"))
    }
}
