import Foundation
import Testing
import RDBKit
import RDBSinks

/// Replays RDB files into real servers through `redis-cli --pipe`, as RESP commands (`RESPWriter`) and as
/// RESTORE payloads (`RestoreWriter`), and checks what the server then holds:
///
/// * `DEBUG DIGEST` equals the digest of a server of the same kind that loaded the file itself (the
///   recorded `.digest` of testdata/servers/<kind>/, or the digest column of SERVER-CHECKED.md for corpus
///   files). The digest covers keys, values and expiries; it ignores LRU/LFU and, for streams, everything
///   but the entries (checked on Redis 7.0 and Valkey 8.1: consumer groups, last ID and counters leave it
///   unchanged).
/// * So the rest is checked too: the server SAVEs, and its dump, decoded by our decoder, must hold the
///   same keys, values, expiries, hash-field TTLs, stream metadata and consumer groups (PEL with owners,
///   delivery times and counts; consumers) as the original file, minus keys already expired. Consumer
///   seen/active times are left out: no command can set them.
///
/// One server per kind and test; the data set is flushed between files. A missing server binary fails
/// the test with a message (it is never skipped silently).
@Suite struct ServerReplayTests {
    typealias Kind = RedisServer.Kind

    struct Fixture: CustomStringConvertible {
        /// Path relative to testdata/.
        var path: String
        var digest: String
        var description: String { path }
    }

    /// testdata/servers/<kind>/*.rdb that have a `.digest` next to them (discovered at run time).
    static func serverFixtures(_ kind: Kind) -> [Fixture] {
        let dir = "servers/\(kind.rawValue)/"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.url(dir).path)) ?? []
        return names.filter { $0.hasSuffix(".rdb") }.sorted().compactMap { name in
            let base = String(name.dropLast(4))
            guard let d = try? String(contentsOf: Fixtures.url(dir + base + ".digest"), encoding: .utf8) else { return nil }
            return Fixture(path: dir + name, digest: d.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// Corpus RDB files a server of this kind loads, per testdata/corpus/SERVER-CHECKED.md, with the digest
    /// recorded there when this kind was the one that dumped the file (empty otherwise).
    static func corpusFixtures(_ kind: Kind) -> [Fixture] {
        guard let text = try? String(contentsOf: Fixtures.url("corpus/SERVER-CHECKED.md"), encoding: .utf8) else { return [] }
        let loads: String
        switch kind {
        case .redis62: loads = "6.2:yes"
        case .redis70: loads = "7.0:yes"
        case .valkey81: loads = "V8.1:yes"
        }
        var out: [Fixture] = []
        var inRDBTable = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") { inRDBTable = line.hasPrefix("## RDB files") }
            guard inRDBTable, line.hasPrefix("| `") else { continue }
            // | file | RDB ver | loads (6.2 / 7.0 / Valkey 8.1) | dumped with | keys loaded | keys held | DEBUG DIGEST | expected |
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 9 else { continue }
            let file = cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            let digest = cells[7].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            guard cells[3].split(separator: " ").contains(Substring(loads)), file.hasSuffix(".rdb"),
                FileManager.default.fileExists(atPath: Fixtures.url("corpus/" + file).path)
            else { continue }
            out.append(Fixture(path: "corpus/" + file, digest: cells[4] == kind.rawValue && digest.count == 40 ? digest : ""))
        }
        return out
    }

    // MARK: tests

    @Test(arguments: Kind.allCases)
    func serverFixturesReplayToTheSameDigest(_ kind: Kind) throws {
        let fixtures = ServerReplayTests.serverFixtures(kind)
        #expect(fixtures.count >= 5, "testdata/servers/\(kind) holds \(fixtures.count) RDB files with digests")
        guard let server = startServer(kind) else { return }
        defer { server.stop() }
        var checked = 0
        for f in fixtures {
            checked += try replay(f, into: server, expectedDigest: f.digest, samePassthrough: true) ? 1 : 0
        }
        #expect(checked == fixtures.count)
    }

    /// Corpus files (written by many tools and server versions) into each server that loads them. The
    /// reference digest is that of the same server after loading the file itself (DEBUG RELOAD), which
    /// must also equal the digest SERVER-CHECKED.md recorded, where it has one for this kind.
    @Test(arguments: Kind.allCases)
    func corpusFilesReplayToTheSameDigest(_ kind: Kind) throws {
        let fixtures = ServerReplayTests.corpusFixtures(kind)
        let minimum = [Kind.redis62: 30, .redis70: 40, .valkey81: 50][kind]!
        #expect(fixtures.count >= minimum, "SERVER-CHECKED.md lists \(fixtures.count) RDB files \(kind) loads")
        guard !fixtures.isEmpty else { return }
        guard let server = startServer(kind) else { return }
        defer { server.stop() }
        var checked = 0
        for f in fixtures {
            try server.flushAll()
            do {
                try server.loadDirectly(Fixtures.url(f.path))
            } catch {
                Issue.record("\(f.path): \(kind) does not load it although SERVER-CHECKED.md says so: \(error)")
                continue
            }
            let direct = try server.digest()
            if !f.digest.isEmpty {
                #expect(direct == f.digest, "\(f.path): \(kind) loading the file gives \(direct), SERVER-CHECKED.md says \(f.digest)")
            }
            checked += try replay(f, into: server, expectedDigest: direct, samePassthrough: false) ? 1 : 0
        }
        #expect(checked == fixtures.count)
    }

    /// Files of a newer server restored into an older one: values in types the target cannot load are
    /// re-encoded (listpacks → plain types) or written as commands (streams). The digest must equal that
    /// of the RESP replay into the same server, and the content that of the file.
    @Test(arguments: [(Kind.redis70, Kind.redis62), (.valkey81, .redis62), (.valkey81, .redis70)])
    func newerFilesRestoreIntoOlderServers(_ from: Kind, _ to: Kind) throws {
        let fixtures = ServerReplayTests.serverFixtures(from)
        guard !fixtures.isEmpty else {
            Issue.record("no fixtures for \(from)")
            return
        }
        guard let server = startServer(to) else { return }
        defer { server.stop() }
        var reencoded = 0
        var asCommands = 0
        for f in fixtures {
            let bytes = try Fixtures.bytes(f.path)
            let original = try keyObjects(bytes)
            let meta = to.rdbVersion >= 10
            // Reference: the RESP replay.
            try server.flushAll()
            let (resp, _) = try respBytes(bytes, target: to.rdbVersion)
            guard pipeOK(server, resp, "\(f.path) RESP into \(to)") else { continue }
            let want = try server.digest()
            try compareContent(server, original, Comparison(streamMetadata: meta, storedStreamLength: false), "\(f.path) RESP into \(to)")

            try server.flushAll()
            let out = OutputBuffer(target: nil)
            var w = RestoreWriter(out: out, options: RestoreWriterOptions(targetVersion: to.rdbVersion))
            _ = try RDBReader.decode(bytes: bytes, into: &w)
            reencoded += w.stats.reencoded
            asCommands += w.stats.asCommands
            guard pipeOK(server, out.take(), "\(f.path) RESTORE into \(to)") else { continue }
            #expect(try server.digest() == want, "\(f.path): RESTORE into \(to) gives another digest than the RESP replay")
            // Streams of these files are written as commands (their types are too new): lengths as RESP.
            try compareContent(server, original, Comparison(streamMetadata: meta, storedStreamLength: false), "\(f.path) RESTORE into \(to)")
        }
        // The files hold listpack types and streams the older server cannot load.
        #expect(reencoded > 0)
        #expect(asCommands > 0)
    }

    // MARK: steps

    func startServer(_ kind: Kind) -> RedisServer? {
        do {
            return try RedisServer(kind: kind)
        } catch {
            Issue.record("cannot run the \(kind) server tests: \(error)")
            return nil
        }
    }

    func respBytes(_ bytes: [UInt8], target: Int) throws -> ([UInt8], RESPWriter) {
        let out = OutputBuffer(target: nil)
        var w = RESPWriter(out: out, options: RESPWriterOptions(targetVersion: target))
        _ = try RDBReader.decode(bytes: bytes, into: &w)
        #expect(w.skippedKeys.isEmpty, "skipped: \(w.skippedKeys.map(\.reason))")
        return (out.take(), w)
    }

    /// Pipes the bytes; records an issue (with the server's error replies) when any command failed.
    func pipeOK(_ server: RedisServer, _ bytes: [UInt8], _ what: String) -> Bool {
        do {
            let r = try server.pipe(bytes)
            if r.errors != 0 {
                Issue.record("\(what): \(r.errors) error replies: \(r.output.prefix(1500))")
                return false
            }
            return true
        } catch {
            Issue.record("\(what): \(error)")
            return false
        }
    }

    /// Both replays of one file into a flushed server; returns whether everything matched.
    func replay(_ f: Fixture, into server: RedisServer, expectedDigest: String, samePassthrough: Bool) throws -> Bool {
        let bytes = try Fixtures.bytes(f.path)
        let kind = server.kind
        let meta = kind.rdbVersion >= 10
        let original = try keyObjects(bytes)
        var ok = true

        // A sorted set small enough to be a listpack on load, held as a skiplist with a score of -0, becomes a
        // listpack there, with 0 for -0; both replays keep the -0, as the server that wrote the file held it. The
        // digest of the file loaded is then no reference: the content (where -0 and 0 differ) is compared.
        let loadTurnsNegativeZero = Self.holdsSmallSetWithNegativeZero(original)
        try server.flushAll()
        let (resp, _) = try respBytes(bytes, target: kind.rdbVersion)
        if pipeOK(server, resp, "\(f.path) RESP") {
            let d = try server.digest()
            if !loadTurnsNegativeZero {
                #expect(d == expectedDigest, "\(f.path): RESP replay into \(kind) gives digest \(d), the file loaded gives \(expectedDigest)")
                ok = ok && d == expectedDigest
            }
            ok = try compareContent(server, original, Comparison(streamMetadata: meta, storedStreamLength: false), "\(f.path) RESP") && ok
        } else {
            ok = false
        }

        try server.flushAll()
        let out = OutputBuffer(target: nil)
        var w = RestoreWriter(out: out, options: RestoreWriterOptions(targetVersion: kind.rdbVersion))
        _ = try RDBReader.decode(bytes: bytes, into: &w)
        if samePassthrough {
            // Written by this kind of server: every value is in a type it loads.
            #expect(w.stats.reencoded == 0 && w.stats.asCommands == 0, "\(f.path): \(w.stats)")
        }
        if pipeOK(server, out.take(), "\(f.path) RESTORE") {
            let d = try server.digest()
            if !loadTurnsNegativeZero {
                #expect(d == expectedDigest, "\(f.path): RESTORE replay into \(kind) gives digest \(d), the file loaded gives \(expectedDigest)")
                ok = ok && d == expectedDigest
            }
            ok = try compareContent(server, original, Comparison(streamMetadata: meta, storedStreamLength: true), "\(f.path) RESTORE") && ok
        } else {
            ok = false
        }
        return ok
    }

    /// SAVEs the server and compares the keys of its dump with `original` (the file's keys).
    @discardableResult
    func compareContent(_ server: RedisServer, _ original: [String: [String: Any]], _ how: Comparison, _ what: String) throws -> Bool {
        let held = try keyObjects(try server.save(), dropExpired: false)
        var ok = true
        for (k, o) in original.sorted(by: { $0.key < $1.key }) {
            let want = signature(o, reference: o, how)
            let got = held[k].map { signature($0, reference: o, how) }
            if got != want {
                Issue.record("\(what): key \(k)\n  file:   \(want)\n  server: \(got ?? "missing")")
                ok = false
            }
        }
        let extra = Set(held.keys).subtracting(original.keys)
        if !extra.isEmpty {
            Issue.record("\(what): server holds keys the file does not: \(extra.sorted().prefix(5))")
            ok = false
        }
        return ok
    }

    // MARK: content signatures

    /// The keys of a file as our decoder's JSONL objects (base64 strings), by "db/key"; keys that have
    /// expired (or expire within a second) are left out when `dropExpired`.
    func keyObjects(_ bytes: [UInt8], dropExpired: Bool = true) throws -> [String: [String: Any]] {
        let (objects, _) = try decodeToJSONObjects(bytes)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var out: [String: [String: Any]] = [:]
        for o in objects {
            let exp = (o["expire_at_ms"] as? NSNumber)?.int64Value
            if dropExpired, let e = exp, e <= now + 1000 { continue }
            out["\(o["db"] ?? "?")/\(o["key"] as? String ?? "?")"] = o
        }
        return out
    }

    /// How content is compared.
    struct Comparison {
        /// Compare first ID, max deleted ID, entries added and group entries-read (targets 10+).
        var streamMetadata: Bool
        /// Compare the stream length as stored in the file (a RESTORE keeps it); otherwise the number of
        /// entries (commands cannot make XLEN differ from the entries, and some old files hold a length
        /// that does not match their entries).
        var storedStreamLength: Bool
    }

    /// Whether a file's keys (`keyObjects`) hold a sorted set of at most 128 members with a score of -0.
    static func holdsSmallSetWithNegativeZero(_ keys: [String: [String: Any]]) -> Bool {
        keys.values.contains { o in
            guard o["type"] as? String == "zset", let pairs = o["value"] as? [[Any]], pairs.count <= 128 else { return false }
            return pairs.contains { p in (p[1] as? NSNumber).map { $0.doubleValue == 0 && $0.doubleValue.sign == .minus } ?? false }
        }
    }

    /// One comparable line for a key. `reference` is the file's object for the key: a group's entries-read
    /// is compared only where the file knows it (a server loading a v1 stream estimates it). A score of -0
    /// is "-0.0", apart from 0.
    func signature(_ o: [String: Any], reference: [String: Any], _ how: Comparison) -> String {
        let meta = how.streamMetadata
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        func s(_ v: Any?) -> String {
            switch v {
            case let x as String: return x
            case let n as NSNumber: return n.stringValue
            case nil, is NSNull: return "null"
            default: return "\(v!)"
            }
        }
        let type = s(o["type"])
        var parts = ["type=\(type)", "expire=\(s(o["expire_at_ms"]))"]
        let v = o["value"]
        switch type {
        case "string":
            parts.append(s(v))
        case "list":
            parts.append(((v as? [Any]) ?? []).map { s($0) }.joined(separator: ","))
        case "set":
            parts.append(((v as? [Any]) ?? []).map { s($0) }.sorted().joined(separator: ","))
        case "zset":
            let pairs = ((v as? [[Any]]) ?? []).map { p -> String in
                let score = (p[1] as? NSNumber).map { $0.doubleValue.description } ?? s(p[1])
                return "\(s(p[0])):\(score)"
            }
            parts.append(pairs.sorted().joined(separator: ","))
        case "hash":
            let d = (v as? [String: Any]) ?? [:]
            parts.append(d.map { "\($0.key)=\(s($0.value))" }.sorted().joined(separator: ","))
            let t = (o["field_expire_at_ms"] as? [String: Any]) ?? [:]
            parts.append("ttl:" + t.filter { (($0.value as? NSNumber)?.int64Value ?? 0) > now }
                .map { "\($0.key)=\(s($0.value))" }.sorted().joined(separator: ","))
        case "stream":
            let st = (v as? [String: Any]) ?? [:]
            let entries = ((st["entries"] as? [[String: Any]]) ?? []).map { e in
                s(e["id"]) + "{" + ((e["fields"] as? [Any]) ?? []).map { s($0) }.joined(separator: ",") + "}"
            }
            parts.append("entries=" + entries.joined(separator: ";"))
            parts.append("length=\(how.storedStreamLength ? s(st["length"]) : String(entries.count)) last=\(s(st["last_id"]))")
            if meta {
                parts.append("first=\(s(st["first_id"])) maxdel=\(s(st["max_deleted_entry_id"])) added=\(s(st["entries_added"]))")
            }
            let refGroups = (((reference["value"] as? [String: Any])?["groups"] as? [[String: Any]]) ?? [])
            let groups = ((st["groups"] as? [[String: Any]]) ?? []).map { g -> String in
                var x = "group \(s(g["name"])) last=\(s(g["last_delivered_id"]))"
                let ref = refGroups.first { s($0["name"]) == s(g["name"]) }
                if meta, let r = ref?["entries_read"], !(r is NSNull) { x += " read=\(s(g["entries_read"]))" }
                let pel = ((g["pending"] as? [[String: Any]]) ?? []).map {
                    "\(s($0["id"]))@\(s($0["consumer"]))#\(s($0["delivery_count"]))t\(s($0["delivery_time_ms"]))"
                }
                x += " pel=" + pel.sorted().joined(separator: ",")
                let consumers = ((g["consumers"] as? [[String: Any]]) ?? []).map {
                    s($0["name"]) + ":" + (($0["pending"] as? [Any]) ?? []).map { s($0) }.sorted().joined(separator: ",")
                }
                return x + " consumers=" + consumers.sorted().joined(separator: ";")
            }
            parts.append("groups=[" + groups.sorted().joined(separator: " | ") + "]")
        default:
            parts.append(s(v))
        }
        return parts.joined(separator: " ")
    }
}
