import RDBTestSupport
import Foundation
import Testing
@testable import RDBImport
import RedisWire

/// Keys go without their guard (`DEL key` in replace mode, a temporary name and `RENAMENX` otherwise) only
/// where nothing can have written their name before: a database that was empty when the import began,
/// written by one database of one file. Everywhere else the guards stay, and the result is the same.
@Suite("Unguarded writes into empty databases")
struct UnguardedTests {
    /// Calls of each command since the last `CONFIG RESETSTAT`.
    static func calls(_ server: TestServer) throws -> [String: Int] {
        guard let t = try server.command("INFO", "commandstats").text else { return [:] }
        var out: [String: Int] = [:]
        for line in t.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
            guard let colon = line.firstIndex(of: ":"), let r = line.range(of: "calls=") else { continue }
            out[String(line[line.index(line.startIndex, offsetBy: 8)..<colon])] = Int(line[r.upperBound...].prefix { $0.isNumber })
        }
        return out
    }

    static func list(_ server: TestServer, _ key: String, db: Int = 0) throws -> [String] {
        let c = try server.client()
        defer { c.close() }
        _ = try c.send(["SELECT", String(db)])
        guard case .array(let items?) = try c.send(["LRANGE", key, "0", "-1"]) else { return [] }
        return items.compactMap(\.text)
    }

    /// A dump of `commands` (with SELECTs) written by a real server.
    static func dump(_ commands: [[String]], into dir: String, name: String) throws -> String {
        let source = try TestServer(.redis70)
        defer { source.stop() }
        let c = try source.client()
        for cmd in commands { _ = try c.send(cmd) }
        c.close()
        let path = dir + "/" + name
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: try source.save(), toPath: path)
        return path
    }

    static let keys: [[String]] = [
        ["RPUSH", "dup", "a", "b"], ["HSET", "h", "f", "v", "g", "w"], ["SADD", "s", "1", "2", "x"],
        ["ZADD", "z", "1", "m", "2", "n"], ["SET", "str", "v"], ["XADD", "x", "1-1", "f", "v"],
    ]

    @Test("Empty target: no guard commands, same digest; a target with keys: the guards, same digest")
    func emptyAndNot() throws {
        let dir = NSTemporaryDirectory() + "unguarded-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = try Self.dump(Self.keys + [["SELECT", "2"], ["RPUSH", "dup", "q"], ["SADD", "s2", "a"]], into: dir, name: "a.rdb")
        let reference = try TestServer(.redis70)
        defer { reference.stop() }
        let server = try TestServer(.redis70)
        defer { server.stop() }
        #expect(Self.run([file], into: reference) { _ in }.status == .success)
        let digest = try reference.digest()
        for replace in [true, false] {
            for guardEveryKey in [false, true] {
                try server.flushAll()
                _ = try server.command("CONFIG", "RESETSTAT")
                let r = Self.run([file], into: server) {
                    $0.mode = .commands  // the guards are those of keys rebuilt by commands
                    $0.replace = replace
                    $0.guardEveryKey = guardEveryKey
                }
                #expect(r.status == .success && r.keysImported == 8)
                #expect(try server.digest() == digest)
                let c = try Self.calls(server)
                // 5 keys rebuilt by commands (the string is one SET, the listpack sorted set and the stream one
                // RESTORE each: see `RESPWriter.commandsMayLose`): each gets DEL, or a temporary name.
                #expect(c["del", default: 0] == (guardEveryKey ? 5 : 0), "replace \(replace) guard \(guardEveryKey): \(c)")
                #expect(c["renamenx", default: 0] == (guardEveryKey && !replace ? 5 : 0), "\(c)")
            }
            // Into a target that has keys (in database 0 only): database 0 is guarded, database 2 is not.
            try server.flushAll()
            _ = try server.command("SET", "other", "1")
            _ = try server.command("CONFIG", "RESETSTAT")
            let r = Self.run([file], into: server) {
                $0.mode = .commands
                $0.replace = replace
            }
            #expect(r.status == .success && r.keysImported == 8)
            _ = try server.command("DEL", "other")
            #expect(try server.digest() == digest)
            let c = try Self.calls(server)
            // Database 0's 3 keys rebuilt by commands: `DEL key` each, or `RENAMENX` and `DEL tmp`; plus our `DEL other`.
            #expect(c["del", default: 0] == 3 + 1, "replace \(replace): \(c)")
            #expect(c["renamenx", default: 0] == (replace ? 0 : 3), "replace \(replace): \(c)")
        }
    }

    @Test("Two databases merged into one, and two files: the later key replaces the earlier one whole")
    func laterStreamsAreGuarded() throws {
        let dir = NSTemporaryDirectory() + "unguarded2-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let twoDBs = try Self.dump([["RPUSH", "dup", "a", "b"], ["SELECT", "1"], ["RPUSH", "dup", "x", "y", "z"]], into: dir, name: "two.rdb")
        let first = try Self.dump([["RPUSH", "dup", "a", "b"], ["HSET", "h", "f", "1"]], into: dir, name: "first.rdb")
        let second = try Self.dump([["RPUSH", "dup", "x", "y", "z"], ["HSET", "h", "g", "2"]], into: dir, name: "second.rdb")
        let server = try TestServer(.redis70)
        defer { server.stop() }

        // Databases 0 and 1 merged into 0: database 1's `dup` must replace database 0's, not append to it.
        let merged = Self.run([twoDBs], into: server) {
            $0.replace = true
            $0.mergeInto = 0
        }
        #expect(merged.status == .success)
        #expect(try Self.list(server, "dup") == ["x", "y", "z"])
        // Without replace the later one is reported as existing and the first stays.
        try server.flushAll()
        let kept = Self.run([twoDBs], into: server) { $0.mergeInto = 0 }
        #expect(kept.problemCounts[.exists] == 1)
        #expect(try Self.list(server, "dup") == ["a", "b"])

        // Two files in one run: the second file's keys are guarded.
        try server.flushAll()
        #expect(Self.run([first, second], into: server) { $0.replace = true }.status == .success)
        #expect(try Self.list(server, "dup") == ["x", "y", "z"])
        guard case .array(let h?) = try server.command("HGETALL", "h") else { throw TestServer.Failure("HGETALL") }
        #expect(h.compactMap(\.text) == ["g", "2"])
    }

    static func run(_ files: [String], into server: TestServer, _ configure: (inout ImportOptions) -> Void) -> ImportReport {
        ServerImportTests.run(files, into: server, configure)
    }
}
