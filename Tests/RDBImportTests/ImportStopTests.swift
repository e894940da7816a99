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

    @Test("A stop while the target accepts the connection and does not answer (SIGSTOP): STOPPED at once, nothing written")
    func stopsWhileTheTargetDoesNotAnswer() throws {
        let source = try TestServer(.redis70)
        try source.command("DEBUG", "POPULATE", "1000")
        let dump = try source.save()
        let target = try TestServer(.redis70)
        target.pause()
        defer { target.resume() }
        let stop = StopRequest()
        let importer = Importer(target: target.endpoint, options: ImportOptions(), stopRequest: stop)
        let stopper = Thread { usleep(500_000); stop.set() }
        stopper.start()
        let started = Date()
        let report = importer.run(files: [dump])
        let seconds = Date().timeIntervalSince(started)
        // Without the stop it waits 120 s for INFO (the reply timeout) and ends FAILED.
        #expect(seconds < 10, "the stop took \(seconds) s")
        #expect(report.status == .stopped, "\(report.status): \(report.failure ?? "")")
        #expect(report.failure?.contains("stopped on request while connecting to \(target.endpoint.address)") == true, "\(report.failure ?? "")")
        #expect(report.keysImported == 0)
        target.resume()
        #expect(try target.keyspace()[0] == nil)
        // A stop requested before the run: STOPPED at once as well.
        let early = Importer(target: target.endpoint, options: ImportOptions())
        early.stop()
        target.pause()
        let again = early.run(files: [dump])
        target.resume()
        #expect(again.status == .stopped && again.keysImported == 0, "\(again.status): \(again.failure ?? "")")
    }
}
