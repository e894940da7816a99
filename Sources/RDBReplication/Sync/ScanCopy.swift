import NIOCore
import RDBImport
import RedisWire

/// The full copy for a source that refuses to act as a master (managed services disable or rename
/// `SYNC`/`PSYNC`): every database's keys by `SCAN`, each value by `DUMP` + `PTTL` (pipelined), written
/// with `RESTORE key ttl payload REPLACE`. A copy of the moment each key is read, not a snapshot: writes
/// during the copy may or may not be in it, and nothing after it is followed (no incremental copy).
/// Payloads restore only on a target whose RDB version is at least the source's.
struct ScanCopy {
    let source: RedisEndpoint
    let target: RedisEndpoint
    let options: ImportOptions
    /// Keys per `SCAN` (and per pipelined round).
    var count = 500
    var onProgress: ((_ keys: Int) -> Void)?

    struct Result {
        var keys = 0
        var failed = 0
        var vanished = 0
        var errors: [String] = []
    }

    func run(stop: () -> Bool) throws -> Result {
        let src: RedisClient
        let dst: RedisClient
        do { src = try RedisClient(source) } catch { throw SyncError("cannot connect to the source \(source.address): \(error)") }
        defer { src.close() }
        do { dst = try RedisClient(target) } catch { throw SyncError("cannot connect to the target \(target.address): \(error)") }
        defer { dst.close() }
        if let t = try? dst.text(["INFO", "cluster"]), t.contains("cluster_enabled:1") {
            throw SyncError("the fallback copy (SCAN + DUMP/RESTORE) writes into a single server; the target \(target.address) is a cluster")
        }
        var result = Result()
        // Functions (Redis 7.0+, Valkey): their own dump (a 6.2 source answers an error: it has none).
        if case .bulk(let payload?) = try src.send(["FUNCTION", "DUMP"]) {
            let r = try dst.send(bytes: [Array("FUNCTION".utf8), Array("RESTORE".utf8), payload, Array("REPLACE".utf8)])
            if let e = r.errorMessage {
                result.failed += 1
                result.errors.append("FUNCTION RESTORE failed on \(target.address): \(e)")
            }
        }
        let info = try src.text(["INFO", "keyspace"])
        for db in ServerInfo.keyspace(info: info).keys.sorted() {
            let tdb = options.targetDatabase(db)
            try expectOK(src.send(["SELECT", String(db)]), "SELECT \(db) on the source \(source.address)")
            try expectOK(dst.send(["SELECT", String(tdb)]), "SELECT \(tdb) on the target \(target.address)")
            var cursor = "0"
            repeat {
                if stop() { return result }
                let r = try src.send(["SCAN", cursor, "COUNT", String(count)])
                guard case .array(let parts?) = r, parts.count == 2, let next = parts[0].text, case .array(let keyReplies?) = parts[1] else {
                    throw SyncError("SCAN on the source \(source.address) answered \(String(describing: r).prefix(200))")
                }
                cursor = next
                let keys: [[UInt8]] = keyReplies.compactMap { if case .bulk(let b?) = $0 { b } else { nil } }
                if keys.isEmpty { continue }
                var b = ByteBuffer()
                for k in keys {
                    b.writeCommand([Array("DUMP".utf8), k])
                    b.writeCommand([Array("PTTL".utf8), k])
                }
                let values = try src.send(b, replies: keys.count * 2)
                var w = ByteBuffer()
                var written: [[UInt8]] = []
                for (i, k) in keys.enumerated() {
                    let dump = values[2 * i]
                    let pttl = values[2 * i + 1]
                    if let e = dump.errorMessage {
                        throw SyncError("DUMP on the source \(source.address) failed: \(e)")
                    }
                    guard case .bulk(let payload?) = dump, case .integer(let ttl) = pttl, ttl != -2 else {
                        result.vanished += 1  // deleted or expired between SCAN and DUMP
                        continue
                    }
                    w.writeCommand([Array("RESTORE".utf8), k, Array(String(max(0, ttl)).utf8), payload, Array("REPLACE".utf8)])
                    written.append(k)
                }
                if written.isEmpty { continue }
                let replies = try dst.send(w, replies: written.count)
                for (i, r) in replies.enumerated() {
                    if let e = r.errorMessage {
                        result.failed += 1
                        if result.errors.count < 10 {
                            result.errors.append("db \(db) key \(String(decoding: written[i], as: UTF8.self)): RESTORE failed on \(target.address): \(e)")
                        }
                    } else {
                        result.keys += 1
                    }
                }
                onProgress?(result.keys)
            } while cursor != "0"
        }
        return result
    }

    func expectOK(_ r: RESPReply, _ what: String) throws {
        if let e = r.errorMessage { throw SyncError("\(what) failed: \(e)") }
    }
}
