import RDBTestSupport
import Foundation
import RDBKit
import RDBSinks
import Testing

/// `rdbcat --format stats|keys` on AOF inputs (a multi-part appendonlydir written by Redis 7.0, and one
/// of its files alone): the CLI prints what the library's AOF reports compute, and RDB inputs keep the
/// RDB reports.
@Suite("rdbcat stats/keys on AOF inputs")
struct CatAOFReportTests {
    static let folder = TestServer.repositoryRoot + "/testdata/servers/redis-7.0/aof/multipart-rdb-base"

    static func library(_ path: String) throws -> (stats: String, keys: [String]) {
        var stats = AOFStats()
        _ = try AOFReader.decode(path: path, into: &stats)
        let so = OutputBuffer(target: nil)
        try stats.write(to: so)
        var keys = AOFKeys()
        _ = try AOFReader.decode(path: path, into: &keys)
        let ko = OutputBuffer(target: nil)
        try keys.writeJSONL(to: ko)
        return (String(decoding: so.take(), as: UTF8.self), String(decoding: ko.take(), as: UTF8.self).split(separator: "\n").map(String.init))
    }

    @Test func statsAndKeysOfAFolder() throws {
        let want = try Self.library(Self.folder)
        #expect(want.stats.contains("preamble_keys: ") && !want.keys.isEmpty)
        let rdbcat = try TestServer.rdbcatPath()
        let (s1, stats, e1) = try TestServer.run(rdbcat, [Self.folder, "--format", "stats"])
        #expect(s1 == 0, "\(e1)")
        #expect(stats == want.stats)
        let (s2, keys, e2) = try TestServer.run(rdbcat, [Self.folder, "--format", "keys"])
        #expect(s2 == 0, "\(e2)")
        #expect(keys.split(separator: "\n").map(String.init) == want.keys)
    }

    @Test func rdbInputsKeepTheRDBReports() throws {
        let rdb = try #require(try TestServer.fixtures(.redis70).first).0
        let (status, out, err) = try TestServer.run(try TestServer.rdbcatPath(), [rdb, "--format", "stats"])
        #expect(status == 0, "\(err)")
        #expect(!out.contains("preamble_keys"))  // the RDB report, not the AOF one
        #expect(out.contains("keys"))
    }

    /// Standard input is told apart by its first bytes like a path: an AOF piped in gets the AOF reports, an RDB
    /// the RDB ones, the same as when its path is given.
    @Test func standardInputGetsTheReportOfItsKind() throws {
        let rdbcat = try TestServer.rdbcatPath()
        let aof = TestServer.repositoryRoot + "/testdata/servers/redis-7.0/aof/multipart-aof-base/appendonly.aof.2.incr.aof"
        let rdb = TestServer.repositoryRoot + "/testdata/servers/redis-7.0/aof/multipart-rdb-base/appendonly.aof.2.base.rdb"
        for (file, isAOF) in [(aof, true), (rdb, false)] {
            for format in ["keys", "stats"] {
                let (s1, byPath, e1) = try TestServer.run(rdbcat, [file, "--format", format])
                let (s2, piped, e2) = try TestServer.run("/bin/sh", ["-c", "cat '\(file)' | '\(rdbcat)' - --format \(format)"])
                #expect(s1 == 0 && s2 == 0, "\(e1) \(e2)")
                #expect(!piped.isEmpty && piped == byPath, "\(format) of \(file)")
                if format == "stats" { #expect(piped.contains("preamble_keys") == isAOF) }
            }
        }
    }
}
