import RDBTestSupport
import Foundation
import Testing
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
}
