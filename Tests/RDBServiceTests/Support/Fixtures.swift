import Foundation
import Testing
import RDBTestSupport
import RedisWire

/// Data written by real servers for the service tests.
enum Fixtures {
    /// A mix of types (strings, lists, hashes, sets, sorted sets, a stream, TTLs) written by a Lua script.
    static let fill = """
        local p = ARGV[2]
        for i = 1, tonumber(ARGV[1]) do
          redis.call('SET', p .. 's:' .. i, 'value-' .. i)
          redis.call('RPUSH', p .. 'l:' .. (i % 97), i)
          redis.call('HSET', p .. 'h:' .. (i % 89), 'f' .. i, i)
          redis.call('SADD', p .. 'set:' .. (i % 83), i)
          redis.call('ZADD', p .. 'z:' .. (i % 79), i / 7, 'm' .. i)
        end
        redis.call('XADD', p .. 'stream', '*', 'a', '1')
        redis.call('SET', p .. 'with-ttl', 'x', 'EX', '100000')
        return 1
        """

    static func fill(_ server: TestServer, keys: Int, prefix: String = "") throws {
        let r = try server.command("EVAL", fill, "0", String(keys), prefix)
        guard r == .integer(1) else { throw TestServer.Failure("filling answered \(r)") }
    }

    /// A plain AOF (no RDB preamble) of a Redis 6.2 holding `keys` keys' worth of data; and its digest.
    static func aof(keys: Int) throws -> (path: String, digest: String) {
        let s = try TestServer(.redis62, arguments: ["--appendonly", "yes", "--aof-use-rdb-preamble", "no"])
        defer { s.stop() }
        try fill(s, keys: keys)
        try s.command("BGREWRITEAOF")
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            usleep(50_000)
            if let info = try s.command("INFO", "persistence").text, info.contains("aof_rewrite_in_progress:0"),
               info.contains("aof_rewrite_scheduled:0"), info.contains("aof_last_bgrewrite_status:ok") { break }
        }
        let copy = NSTemporaryDirectory() + "rdbcat-aof-\(UUID().uuidString).aof"
        try FileManager.default.copyItem(atPath: s.dir + "/appendonly.aof", toPath: copy)
        return (copy, try s.digest())
    }

    /// An RDB of a Redis 7.0 holding `keys` keys' worth of data; and its digest.
    static func rdb(keys: Int, prefix: String = "") throws -> (path: String, digest: String) {
        let s = try TestServer(.redis70)
        defer { s.stop() }
        try fill(s, keys: keys, prefix: prefix)
        let copy = NSTemporaryDirectory() + "rdbcat-rdb-\(UUID().uuidString).rdb"
        try FileManager.default.copyItem(atPath: try s.save(), toPath: copy)
        return (copy, try s.digest())
    }

    /// A bucket folder holding `files` (name, source path).
    static func bucket(_ files: [(String, String)]) throws -> String {
        let dir = NSTemporaryDirectory() + "rdbcat-bucket-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, path) in files { try FileManager.default.copyItem(atPath: path, toPath: dir + "/" + name) }
        return dir
    }

    /// Removes files and folders a fixture made (the tests' `defer`).
    static func remove(_ paths: String...) {
        for p in paths { try? FileManager.default.removeItem(atPath: p) }
    }

    /// Waits until `key` exists on `server` (a write that has to travel through a migration).
    static func waitForKey(_ server: TestServer, _ key: String, seconds: Double = 30) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try server.command("EXISTS", key) == .integer(1) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("\(key) did not arrive within \(seconds) s")
    }
}
