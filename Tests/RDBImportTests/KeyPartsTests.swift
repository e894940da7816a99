import RDBTestSupport
import Foundation
import Testing
@testable import RDBImport
import RedisWire

extension GeneratedDump {
    /// A few big keys of every collection type (a stream with a consumer group and pending entries too,
    /// a hash with an expiry), and some strings; or one big list only.
    static func bigKeys(elements: Int, strings: Int = 50, onlyList: Bool = false) throws -> GeneratedDump {
        let script = """
            local n = tonumber(ARGV[1])
            for j = 1, n, 250 do
              local l, h, z, s = {}, {}, {}, {}
              for k = j, math.min(j + 249, n) do
                l[#l + 1] = 'element:' .. k
                h[#h + 1] = 'field:' .. k; h[#h + 1] = 'value:' .. (k * 3)
                z[#z + 1] = k / 7; z[#z + 1] = 'member:' .. k
                s[#s + 1] = 'm' .. k
              end
              redis.call('RPUSH', 'big:list', unpack(l))
              if ARGV[2] == '0' then
                redis.call('HSET', 'big:hash', unpack(h))
                redis.call('ZADD', 'big:zset', unpack(z))
                redis.call('SADD', 'big:set', unpack(s))
              end
            end
            if ARGV[2] == '0' then
              for k = 1, n / 4 do
                redis.call('XADD', 'big:stream', k .. '-1', 'f', 'v' .. k, 'g', 'w')
              end
              redis.call('XGROUP', 'CREATE', 'big:stream', 'group', '0')
              redis.call('XREADGROUP', 'GROUP', 'group', 'alice', 'COUNT', '100', 'STREAMS', 'big:stream', '>')
              redis.call('PEXPIREAT', 'big:hash', 4102444800000)
            end
            return 1
            """
        return try GeneratedDump(strings: strings, script: script, arguments: [String(elements), onlyList ? "1" : "0"], keys: strings + (onlyList ? 1 : 5))
    }
}

@Suite("Big keys sent in parts while decoded")
struct KeyPartsTests {
    static let modes: [(ImportOptions.Mode, Bool)] = [(.commands, false), (.commands, true), (.restore, false), (.restore, true)]

    static func options(_ mode: ImportOptions.Mode, replace: Bool) -> ImportOptions {
        var o = ImportOptions()
        o.mode = mode
        o.replace = replace
        o.batchBytes = 16 << 10
        o.keyChunkBytes = 16 << 10
        o.maxElementsPerCommand = 100
        o.pipeline.reconnectTimeout = 30
        o.progressInterval = 0
        return o
    }

    @Test("The command counter counts commands cut anywhere, and completes a cut command")
    func commandCounter() throws {
        var text = ""
        for i in 0..<20 { text += "*3\r\n$5\r\nRPUSH\r\n$\(3 + i)\r\n" + String(repeating: "k", count: 3 + i) + "\r\n$1\r\nx\r\n" }
        let bytes = Array(text.utf8)
        for cut in 0...bytes.count {
            var c = RESPCommandCounter()
            let n = bytes[..<cut].withUnsafeBytes { c.feed($0) } + 0
            let tail = c.completion()
            var d = c
            let m = tail.withUnsafeBytes { d.feed($0) }
            #expect(d.atBoundary, "cut at \(cut)")
            #expect(n + m == (c.atBoundary ? n : n + 1), "cut at \(cut)")
            let rest = bytes[cut...].withUnsafeBytes { c.feed($0) }
            #expect(n + rest == 20, "cut at \(cut)")
        }
    }

    @Test("Big keys in every mode: digest equal, each key counted once, existing keys reported once")
    func bigKeys() throws {
        let source = try GeneratedDump.bigKeys(elements: 6000)
        let target = try TestServer(.redis70)
        defer { target.stop() }
        for (mode, replace) in Self.modes {
            try target.flushAll()
            let importer = Importer(target: target.endpoint, options: Self.options(mode, replace: replace))
            let r = importer.run(files: [source.path])
            let what = "\(mode) replace=\(replace)"
            #expect(r.status == .success, "\(what): \(ServerImportTests.describe(r))")
            #expect(importer.keysSentInParts >= 4, "\(what): \(importer.keysSentInParts) keys in parts")
            #expect(r.keysImported == source.keys && r.keysRead == source.keys, "\(what): \(r.keysImported) of \(source.keys)")
            #expect(try target.digest() == source.digest, "\(what)")
            // Again: with replace the same, without every key exists (reported once).
            let again = Importer(target: target.endpoint, options: Self.options(mode, replace: replace)).run(files: [source.path])
            #expect(again.status == .success, "\(what): \(ServerImportTests.describe(again))")
            if replace {
                #expect(again.keysImported == source.keys, "\(what)")
            } else {
                #expect(again.problemCounts[.exists] == source.keys && again.files[0].keysExisting == source.keys, "\(what)")
            }
            #expect(try target.digest() == source.digest, "\(what): after the second import")
            #expect(try target.keyspace()[0] == source.keys, "\(what): temporary keys left")
        }
    }

    @Test("The target is killed and restarted in the middle of big keys (AOF on): digest equal")
    func killAndRestart() throws {
        let source = try GeneratedDump.bigKeys(elements: 12000)
        let target = try TestServer(.redis70, arguments: ["--appendonly", "yes", "--appendfsync", "no"])
        defer { target.stop() }
        for (mode, replace) in Self.modes {
            try target.flushAll()
            var o = Self.options(mode, replace: replace)
            o.pipeline.maxCommandsInFlight = 200
            let importer = Importer(target: target.endpoint, options: o)
            // Killed from inside a key: the decoder has read it and sent parts of it.
            let kill = KillAndRestart(target, importer) { $0.bytesSent >= 400 << 10 && $0.keysRead > $0.keysSent }
            let r = importer.run(files: [source.path])
            kill.wait()
            let what = "\(mode) replace=\(replace)"
            #expect(kill.restartError == nil, "\(String(describing: kill.restartError))")
            #expect(kill.killed, "\(what): the import ended before the kill")
            #expect(r.status == .success, "\(what): \(ServerImportTests.describe(r))")
            #expect(r.reconnects >= 1, "\(what)")
            #expect(r.keysImported == source.keys, "\(what): \(r.keysImported) of \(source.keys): \(ServerImportTests.describe(r))")
            #expect(try target.digest() == source.digest, "\(what): digest after a restart")
            #expect(try target.keyspace()[0] == source.keys, "\(what): temporary keys left")
        }
    }

    @Test("A key larger than the window: acknowledged parts leave the window, no deadlock")
    func keyLargerThanWindow() throws {
        let source = try GeneratedDump.bigKeys(elements: 20000, strings: 0, onlyList: true)
        let target = try TestServer(.redis70)
        defer { target.stop() }
        for (mode, replace) in [(ImportOptions.Mode.commands, true), (.commands, false)] {
            try target.flushAll()
            var o = Self.options(mode, replace: replace)
            o.pipeline.maxBytesInFlight = 64 << 10
            let importer = Importer(target: target.endpoint, options: o)
            let r = importer.run(files: [source.path])
            #expect(r.status == .success, ServerImportTests.describe(r))
            #expect(r.bytesSent > 4 * (64 << 10), "the key is not larger than the window: \(r.bytesSent)")
            #expect(importer.peakBytesInFlight <= (64 << 10) + 2 * (16 << 10), "peak \(importer.peakBytesInFlight)")
            #expect(try target.digest() == source.digest)
        }
    }

    @Test("Decoding fails in the middle of a key sent in parts: the part sent is deleted, the key reported failed")
    func corruptInTheMiddle() throws {
        let source = try GeneratedDump.bigKeys(elements: 20000, strings: 0, onlyList: true)
        let data = try Data(contentsOf: URL(fileURLWithPath: source.path))
        let cut = NSTemporaryDirectory() + "rdbimport-cut-\(UUID().uuidString).rdb"
        try data.prefix(data.count * 2 / 3).write(to: URL(fileURLWithPath: cut))
        defer { try? FileManager.default.removeItem(atPath: cut) }
        let target = try TestServer(.redis70)
        defer { target.stop() }
        for replace in [false, true] {
            try target.flushAll()
            if replace { _ = try target.command("RPUSH", "big:list", "old") }
            let importer = Importer(target: target.endpoint, options: Self.options(.commands, replace: replace))
            let r = importer.run(files: [cut])
            #expect(r.status == .failed)
            #expect(importer.keysSentInParts == 1)
            let p = r.problems.filter { $0.keyText == "big:list" }
            #expect(p.count == 1 && p.first?.kind == .error && p.first?.message.contains("decoding failed in the middle of the key") == true, "\(p)")
            #expect(r.files[0].keysFailed == 1)
            #expect(try target.keyspace()[0] == nil, "replace=\(replace): the target keeps part of the key")
        }
        // The same key not sent in parts (nothing of it went out before the error): reported failed too.
        try target.flushAll()
        var o = Self.options(.commands, replace: false)
        o.keyChunkBytes = 1 << 30
        let importer = Importer(target: target.endpoint, options: o)
        let r = importer.run(files: [cut])
        #expect(r.status == .failed && importer.keysSentInParts == 0)
        let p = r.problems.filter { $0.keyText == "big:list" }
        #expect(p.count == 1 && p.first?.kind == .error && p.first?.message.contains("before any of it was sent") == true, "\(p)")
        #expect(r.files[0].keysFailed == 1 && r.keysRead == 1 && r.keysImported == 0)
        #expect(try target.keyspace()[0] == nil)
    }
}

extension KeyPartsTests {
    @Test("Salvage: a key corrupt in the file is reported once and left out, the others arrive")
    func salvage() throws {
        let target = try TestServer(.redis70)
        defer { target.stop() }
        let file = TestServer.repositoryRoot + "/testdata/corpus/redis/corrupt_ziplist.rdb"
        for mode in ImportOptions.Mode.allCases {
            try target.flushAll()
            let r = ServerImportTests.run([file], into: target) {
                $0.mode = mode
                $0.decoder.salvage = true
            }
            // As commands the decoder finds it corrupt; as RESTORE its bytes pass through and the server refuses them.
            let bad = r.problems.filter { $0.keyText == "key:000000000091" }
            #expect(bad.count == 1 && bad.first?.kind == (mode == .commands ? .skipped : .error), "\(mode): \(ServerImportTests.describe(r))")
            #expect(r.keysImported + r.files[0].keysSkipped + r.files[0].keysFailed == r.keysRead, "\(mode)")
            #expect(try target.keyspace().values.reduce(0, +) == r.keysImported, "\(mode)")
        }
    }
}
