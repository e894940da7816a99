import Foundation
import RDBImport
import RDBTestSupport
import RedisWire
import Testing

/// `Importer.stop()`: the import ends between keys, what was sent is acknowledged, the status says STOPPED.
@Suite("Import stop") struct ImportStopTests {
    @Test("A stop from another thread ends an RDB import between keys: STOPPED, every key written whole")
    func stopsBetweenKeys() throws {
        let source = try TestServer(.redis70)
        // 200k keys (strings and, below, lists: a key cut in half would show as a short list).
        try source.command("DEBUG", "POPULATE", "150000", "s", "64")
        try source.command("EVAL", "for i=1,50000 do redis.call('RPUSH','list:'..i,'a','b','c','d') end return 1", "0")
        let dump = try source.save()
        let target = try TestServer(.redis70)
        var options = ImportOptions()
        options.progressInterval = 0.01
        let importer = Importer(target: target.endpoint, options: options)
        importer.onProgress = { p in
            if p.keysRead > 20_000 { importer.stop() }
        }
        let report = importer.run(files: [dump])
        #expect(report.status == .stopped)
        #expect(report.failure?.contains("stopped on request") == true)
        let written = try target.keyspace()[0] ?? 0
        #expect(written == report.keysImported)
        #expect(written > 0 && written < 200_000, "\(written) keys written")
        // Every list that arrived is whole.
        let bad = try target.command("EVAL", """
            local n = 0
            for _, k in ipairs(redis.call('KEYS', 'list:*')) do if redis.call('LLEN', k) ~= 4 then n = n + 1 end end
            return n
            """, "0")
        #expect(bad == .integer(0))
    }
}
