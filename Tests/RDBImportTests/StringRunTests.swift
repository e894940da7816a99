import Foundation
import RDBTestSupport
import RedisWire
import Testing
@testable import RDBImport

extension GeneratedDump {
    /// `strings` plain strings (DEBUG POPULATE), with strings that expire, lists and a second database
    /// among them (what breaks a run of plain strings).
    static func mixedStrings(_ kind: TestServer.Kind = .redis70, strings: Int, others: Int = 200) throws -> GeneratedDump {
        let script = """
            local n = tonumber(ARGV[1])
            for i = 1, n do
              redis.call('SET', 'ttl:' .. i, 'v' .. i, 'PX', 3600000 + i)
              redis.call('RPUSH', 'list:' .. i, 'a', 'b', i)
              redis.call('SET', 'int:' .. i, i * 7)
            end
            redis.call('SELECT', 1)
            for i = 1, n do redis.call('SET', 'db1:' .. i, string.rep('x', i % 50)) end
            return 1
            """
        return try GeneratedDump(kind: kind, strings: strings, script: script, arguments: [String(others)], keys: strings + 4 * others)
    }
}

extension TestServer {
    /// `INFO commandstats`: calls per command (lowercase name).
    func commandCalls() throws -> [String: Int] {
        guard case .bulk(let b?) = try command("INFO", "commandstats") else { return [:] }
        var calls: [String: Int] = [:]
        for line in String(decoding: b, as: UTF8.self).split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
            let name = line.dropFirst(8).prefix { $0 != ":" }
            if let r = line.range(of: "calls="), let n = Int(line[r.upperBound...].prefix { $0.isNumber }) { calls[String(name)] = n }
        }
        return calls
    }
}

@Suite("Plain strings as MSET runs")
struct StringRunTests {
    @Test("Strings go as MSET into a single server: digest equal, every key counted; without replace, SET NX each",
          arguments: [TestServer.Kind.redis70, .redis62])
    func digestEqual(kind: TestServer.Kind) throws {
        let source = try GeneratedDump.mixedStrings(kind, strings: 5000)
        let target = try TestServer(kind)
        defer { target.stop() }
        for (mode, replace) in [(ImportOptions.Mode.auto, true), (.commands, true), (.auto, false)] {
            let what = "\(kind) \(mode) replace=\(replace)"
            try target.flushAll()
            _ = try target.command("CONFIG", "RESETSTAT")
            let r = ServerImportTests.run([source.path], into: target) {
                $0.mode = mode
                $0.replace = replace
                $0.batchBytes = 16 << 10
            }
            #expect(r.status == .success, "\(what): \(ServerImportTests.describe(r))")
            #expect(r.keysImported == source.keys && r.keysRead == source.keys, "\(what): \(r.keysImported) of \(source.keys)")
            #expect(try target.digest() == source.digest, "\(what)")
            let calls = try target.commandCalls()
            if replace {
                // 5200 plain strings in db 0 and 200 in db 1, in runs of up to 128: far fewer commands than keys.
                let mset = calls["mset"] ?? 0
                #expect(mset >= 5400 / 128 && mset < 5400 / 4, "\(what): \(calls)")
                #expect((calls["set"] ?? 0) < 5400 / 2, "\(what): \(calls)")
            } else {
                #expect(calls["mset"] == nil, "\(what): \(calls)")
            }
        }
    }

    @Test("Each key of an MSET the server refuses is reported: a server without MSET (rename-command)")
    func msetRenamed() throws {
        let source = try GeneratedDump.mixedStrings(strings: 300, others: 30)
        let target = try TestServer(.redis70, arguments: ["--rename-command", "MSET", ""])
        defer { target.stop() }
        let r = ServerImportTests.run([source.path], into: target) { $0.replace = true }
        let failed = r.problems.filter { $0.kind == .error }
        #expect(r.status == .failed)
        #expect(r.files[0].keysFailed > 300 && failed.count == r.files[0].keysFailed, "\(ServerImportTests.describe(r))")
        #expect(failed.allSatisfy { $0.message.contains("unknown command") }, "\(failed.first?.message ?? "")")
        // Each key named once, and what the report counts is what the target holds.
        #expect(Set(failed.map(\.keyText)).count == failed.count)
        #expect(r.keysImported + r.files[0].keysFailed == source.keys)
        let held = try target.keyspace().values.reduce(0, +)
        #expect(held == r.keysImported, "held \(held), imported \(r.keysImported)")
        for p in failed.prefix(20) {
            _ = try target.command("SELECT", String(p.db))
            #expect(try target.command("EXISTS", p.keyText) == .integer(0), "\(p.keyText)")
        }
    }

    @Test("An MSET refused for memory (OOM) stops the import: each of its keys reported, every key accounted for")
    func msetOutOfMemory() throws {
        let source = try GeneratedDump.mixedStrings(strings: 40000, others: 50)
        let target = try TestServer(.redis70, arguments: ["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"])
        defer { target.stop() }
        let r = ServerImportTests.run([source.path], into: target) {
            $0.replace = true
            $0.problemLimit = 100_000
        }
        let f = r.files[0]
        #expect(r.status == .failed && r.failure?.contains("OOM") == true, "\(ServerImportTests.describe(r))")
        let failed = r.problems.filter { $0.kind == .error }
        #expect(f.keysFailed >= 2 && failed.count == f.keysFailed, "\(f.keysFailed) failed, \(failed.count) reported")
        #expect(f.keysImported + f.keysFailed + f.keysNotArrived == f.keysRead, "\(f)")
        #expect(try target.keyspace().values.reduce(0, +) == f.keysImported)
    }

    @Test("The target is killed and restarted in the middle of MSET runs (AOF on): digest equal, exact counts")
    func killAndRestart() throws {
        let source = try GeneratedDump.mixedStrings(strings: 60000, others: 100)
        let target = try TestServer(.redis70, arguments: ["--appendonly", "yes", "--appendfsync", "no"])
        defer { target.stop() }
        for mode in [ImportOptions.Mode.auto, .commands] {
            let r = try KillAndRestart.importKilledOnce(source, into: target, mode: mode, replace: true, maxCommandsInFlight: 200)
            #expect(r.keysImported == source.keys, "\(mode): \(r.keysImported) of \(source.keys)")
            #expect(try target.digest() == source.digest, "\(mode): digest after a restart")
        }
    }
}
