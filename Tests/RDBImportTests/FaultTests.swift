import RDBTestSupport
import Foundation
import Testing
@testable import RDBImport
import RedisWire

/// A source data set made by a server: many strings plus collections big enough to need several commands
/// each (so a connection lost in the middle of a key leaves a partial key on the target).
final class GeneratedDump: @unchecked Sendable {
    let path: String
    let digest: String
    let keys: Int
    private let server: TestServer

    /// `strings` strings (DEBUG POPULATE), then what `script` (Lua, run with `arguments`) writes: `keys` keys in all.
    init(kind: TestServer.Kind = .redis70, strings: Int, script: String, arguments: [String], keys: Int) throws {
        server = try TestServer(kind)
        if strings > 0 { _ = try server.command("DEBUG", "POPULATE", String(strings), "str", "24") }
        let r = try server.client()
        defer { r.close() }
        _ = try r.send(["EVAL", script, "0"] + arguments)
        path = try server.save()
        digest = try server.digest()
        self.keys = keys
    }

    convenience init(kind: TestServer.Kind = .redis70, strings: Int, collections: Int, elements: Int) throws {
        let script = """
            for i = 1, tonumber(ARGV[1]) do
              local n = tonumber(ARGV[2])
              for j = 1, n, 250 do
                local l, h, z, s = {}, {}, {}, {}
                for k = j, math.min(j + 249, n) do
                  l[#l + 1] = 'e' .. k
                  h[#h + 1] = 'f' .. k; h[#h + 1] = 'v' .. (k * i)
                  z[#z + 1] = k / 7; z[#z + 1] = 'm' .. k
                  s[#s + 1] = 's' .. k
                end
                redis.call('RPUSH', 'list:' .. i, unpack(l))
                redis.call('HSET', 'hash:' .. i, unpack(h))
                redis.call('ZADD', 'zset:' .. i, unpack(z))
                redis.call('SADD', 'set:' .. i, unpack(s))
              end
              if i % 3 == 0 then redis.call('PEXPIREAT', 'list:' .. i, 4102444800000) end
            end
            return 1
            """
        try self.init(kind: kind, strings: strings, script: script, arguments: [String(collections), String(elements)], keys: strings + 4 * collections)
    }

    deinit { server.stop() }
}

/// Kills a target (SIGKILL) from an import's progress callback once `when` holds, and restarts it 0.3 s later.
final class KillAndRestart: @unchecked Sendable {
    private(set) var killed = false
    private(set) var restartError: Error?
    private let restarted = DispatchSemaphore(value: 0)

    init(_ target: TestServer, _ importer: Importer, when: @escaping @Sendable (ImportProgress) -> Bool) {
        importer.onProgress = { p in
            guard !self.killed, when(p) else { return }
            self.killed = true
            target.kill9()
            // A thread of its own, not a global dispatch queue's work item (see `Spawn.collect`).
            Thread.detachNewThread {
                usleep(300_000)
                do { try target.restart() } catch { self.restartError = error }
                self.restarted.signal()
            }
        }
    }

    /// After the import: waits for the restart.
    func wait() { if killed { restarted.wait() } }

    /// Imports `source` into `target` (emptied first), killing the target once a third of the keys are
    /// acknowledged and restarting it; checks that the kill and the restart happened and that the import
    /// reconnected and ended SUCCESS, and returns its report for the caller's own checks.
    static func importKilledOnce(
        _ source: GeneratedDump, into target: TestServer, mode: ImportOptions.Mode, replace: Bool, maxCommandsInFlight: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> ImportReport {
        try target.flushAll()
        var o = ImportOptions()
        o.mode = mode
        o.replace = replace
        o.pipeline.maxCommandsInFlight = maxCommandsInFlight
        o.pipeline.reconnectTimeout = 30
        o.batchBytes = 16 << 10
        o.progressInterval = 0
        let importer = Importer(target: target.endpoint, options: o)
        let kill = KillAndRestart(target, importer) { $0.keysAcknowledged >= source.keys / 3 }
        let r = importer.run(files: [source.path])
        kill.wait()
        #expect(kill.restartError == nil, "\(String(describing: kill.restartError))", sourceLocation: sourceLocation)
        #expect(kill.killed, "\(mode): the import ended before the kill", sourceLocation: sourceLocation)
        #expect(r.status == .success, "\(mode) replace=\(replace): \(ServerImportTests.describe(r))", sourceLocation: sourceLocation)
        #expect(r.reconnects >= 1, "\(mode) replace=\(replace)", sourceLocation: sourceLocation)
        return r
    }
}

@Suite("Faults: restarts, refused writes, slow targets")
struct FaultTests {
    @Test("The target is killed and restarted mid-import (AOF on): the import resumes, digest equal")
    func killAndRestart() throws {
        let source = try GeneratedDump(strings: 6000, collections: 60, elements: 1200)
        let target = try TestServer(.redis70, arguments: ["--appendonly", "yes", "--appendfsync", "no"])
        defer { target.stop() }
        let variants: [(ImportOptions.Mode, Bool)] = [(.commands, false), (.restore, true), (.commands, true)]
        for (mode, replace) in variants {
            let r = try KillAndRestart.importKilledOnce(source, into: target, mode: mode, replace: replace, maxCommandsInFlight: 400)
            // A key the server applied (and logged) whose reply the kill cut off is there when it is resent.
            // The database was empty (the import's own): the resend deletes it first, so it counts as imported,
            // not as existing, also without replace.
            let resentExisting = r.problems.filter { $0.kind == .exists }.count
            #expect(r.keysImported == source.keys, "\(mode) replace=\(replace): \(r.keysImported) of \(source.keys)")
            #expect(resentExisting == 0, "\(mode) replace=\(replace): \(resentExisting)")
            #expect(try target.digest() == source.digest, "\(mode) replace=\(replace): digest after a restart")
        }
    }

    @Test("A read-only replica refuses writes: FAILED, every key named")
    func readOnlyReplica() throws {
        let nobody = try TestServer.freePort()
        let replica = try TestServer(.valkey81, arguments: ["--replicaof", "127.0.0.1", String(nobody)])
        defer { replica.stop() }
        let file = TestServer.Kind.valkey81.fixtureFolder + "/mixed.rdb"
        for mode in ImportOptions.Mode.allCases {
            let r = ServerImportTests.run([file], into: replica) { $0.mode = mode }
            #expect(r.status == .failed && r.failure?.contains("READONLY") == true, ServerImportTests.describe(r))
            #expect(r.keysImported == 0 && r.files[0].keysNotArrived + r.files[0].keysFailed == r.keysRead)
            let named = Set(r.problems.filter { $0.kind.isFailure && !$0.keyText.hasPrefix("function library") }.map { [UInt8]($0.key) + [UInt8(truncatingIfNeeded: $0.db)] })
            #expect(named.count == r.keysRead, "\(mode): \(named.count) of \(r.keysRead) keys named")
        }
    }

    @Test("Out of memory (maxmemory 1, noeviction): FAILED with OOM, the keys named")
    func outOfMemory() throws {
        let server = try TestServer(.redis62, arguments: ["--maxmemory", "1", "--maxmemory-policy", "noeviction"])
        defer { server.stop() }
        let file = TestServer.Kind.redis62.fixtureFolder + "/strings.rdb"
        let r = ServerImportTests.run([file], into: server) { $0.mode = .restore }
        #expect(r.status == .failed && r.failure?.contains("OOM") == true, ServerImportTests.describe(r))
        #expect(r.keysImported == 0)
        #expect(r.problems.filter { $0.kind.isFailure }.count == r.keysRead)
        #expect(r.problems.contains { $0.kind == .error && $0.message.hasPrefix("OOM") })
    }

    @Test("A slow target (paused): the decoder waits, memory stays within the window")
    func slowTarget() throws {
        let server = try TestServer(.redis70)
        defer { server.stop() }
        let folder = TestServer.Kind.redis70.fixtureFolder
        let digest = try String(contentsOfFile: folder + "/mixed.digest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        var o = ImportOptions()
        o.pipeline.maxCommandsInFlight = 40
        o.pipeline.maxBytesInFlight = 16 << 10
        o.batchBytes = 4096
        o.replace = true
        let pauser = try server.client()
        #expect(try pauser.send(["CLIENT", "PAUSE", "700", "WRITE"]) == .simple("OK"))
        let importer = Importer(target: server.endpoint, options: o)
        let start = Date()
        let r = importer.run(files: [folder + "/mixed.rdb"])
        #expect(Date().timeIntervalSince(start) > 0.5)
        #expect(r.status == .success, ServerImportTests.describe(r))
        #expect(try server.digest() == digest)
        // The window: 16 KiB, plus one batch admitted into an empty window.
        #expect(importer.peakBytesInFlight <= (16 << 10) + 64 << 10, "peak \(importer.peakBytesInFlight)")
        #expect(r.bytesSent > 2 * importer.peakBytesInFlight)
    }

    @Test("The target goes away for good: FAILED after the reconnect timeout, unacknowledged keys named")
    func targetGone() throws {
        let source = try GeneratedDump(strings: 3000, collections: 0, elements: 0)
        let target = try TestServer(.redis70)
        defer { target.stop() }
        var o = ImportOptions()
        o.pipeline.maxCommandsInFlight = 200
        o.pipeline.reconnectTimeout = 1
        o.batchBytes = 4096
        o.progressInterval = 0
        let importer = Importer(target: target.endpoint, options: o)
        nonisolated(unsafe) var killed = false
        importer.onProgress = { p in
            if !killed && p.keysAcknowledged > 500 {
                killed = true
                target.kill9()
            }
        }
        let r = importer.run(files: [source.path])
        #expect(killed)
        #expect(r.status == .failed && r.failure?.contains("could not be re-established") == true, ServerImportTests.describe(r))
        #expect(r.keysImported + r.files[0].keysNotArrived == r.keysRead)
        #expect((r.problemCounts[.notSent] ?? 0) + (r.problemCounts[.unacknowledged] ?? 0) == r.files[0].keysNotArrived)
    }
}
