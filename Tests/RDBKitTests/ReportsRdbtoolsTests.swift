import Foundation
import RDBKit
import RDBSinks
import XCTest

/// Cross-checks against redis-rdb-tools (`pip install rdbtools python-lzf`), run through its `rdb` command.
///
/// rdbtools is required: when `rdb` is not on PATH these tests fail (they do not skip).
///
/// Normalisations, because the two tools write the same data differently:
/// - byte strings: rdbtools (default `--escape utf8`) decodes valid UTF-8 and writes each byte of an invalid
///   sequence as the four characters `\xHH`; we write such bytes as lone surrogates `\udcHH` (escape mode) or
///   everything as base64. Both sides are turned back into bytes. (rdbtools' form is ambiguous: a key holding the
///   text `\xFF` reads back as the byte 0xFF; no fixture has one.)
/// - scores: rdbtools writes every score as a string (the text stored in the file, or Python's `repr` of the
///   double: `"1"`, `"2.37"`, `"1.0"`, `"inf"`); we write JSON numbers. Both are compared as doubles.
/// - streams and module values: rdbtools writes `{}`; we write an object with the content (checked elsewhere).
/// - layout whitespace: rdbtools puts `\r\n` before each key, we put `\n` (irrelevant once parsed).
final class ReportsRdbtoolsTests: XCTestCase {
    /// The redis-rdb-tools fixtures that rdbtools 0.1.15 reads (it refuses RDB ≥ 10, i.e. `pr-193/`, and fails
    /// on the MODULE_AUX record of `redis_60_with_module_aux.rdb`).
    static let readable = [
        "dictionary", "easily_compressible_string_key", "empty_database", "hash_as_ziplist", "integer_keys",
        "intset_16", "intset_32", "intset_64", "keys_with_expiry", "linkedlist", "multiple_databases",
        "non_ascii_values", "parser_filters", "pr-189/key-with-comma", "rdb_version_5_with_checksum",
        "rdb_version_8_with_64b_length_and_scores", "redis_40_with_module", "redis_50_with_streams", "regular_set",
        "regular_sorted_set", "sorted_set_as_ziplist", "uncompressible_string_keys", "ziplist_that_compresses_easily",
        "ziplist_that_doesnt_compress", "ziplist_with_integers", "zipmap_that_compresses_easily",
        "zipmap_that_doesnt_compress", "zipmap_with_big_values",
    ]

    static func fixture(_ name: String) -> String { "corpus/redis-rdb-tools/\(name).rdb" }

    // MARK: running rdbtools

    static func findRdb() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/rdb"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// rdbtools imports `distutils`, which setuptools' shim makes slow to load (0.5 s of the 0.7 s a run takes);
    /// Pythons that still have the standard library's distutils (≤ 3.11) load it fast with
    /// `SETUPTOOLS_USE_DISTUTILS=stdlib`. Use that when a probe run works with it, else the plain environment.
    static func fastEnvironment(_ rdb: String) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["SETUPTOOLS_USE_DISTUTILS"] = "stdlib"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: rdb)
        p.arguments = ["--command", "json", Fixtures.url(fixture("intset_16")).path]
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        if (try? p.run()) != nil {
            p.waitUntilExit()
            if p.terminationStatus == 0 { return env }
        }
        return ProcessInfo.processInfo.environment
    }

    /// Runs `rdb --command <command> <fixture>` for each fixture (several at a time: rdbtools takes about a second
    /// to start) and returns their stdout; fails the test (returns nil) when rdbtools is missing or fails.
    func rdbtools(_ command: String, _ fixtures: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [String: [UInt8]]? {
        guard let rdb = ReportsRdbtoolsTests.findRdb() else {
            XCTFail("redis-rdb-tools is not installed: no `rdb` command on PATH. These tests compare our output with "
                    + "it; install it with `pip install rdbtools python-lzf`.", file: file, line: line)
            return nil
        }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("rdbtools-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        var results: [String: [UInt8]] = [:]
        var failed = false
        let parallel = 8
        let environment = ReportsRdbtoolsTests.fastEnvironment(rdb)
        for start in stride(from: 0, to: fixtures.count, by: parallel) {
            var running: [(fixture: String, process: Process, out: URL, err: URL)] = []
            for (i, fixture) in fixtures[start..<min(start + parallel, fixtures.count)].enumerated() {
                let out = tmp.appendingPathComponent("\(start + i).out")
                let err = tmp.appendingPathComponent("\(start + i).err")
                _ = FileManager.default.createFile(atPath: out.path, contents: nil)
                _ = FileManager.default.createFile(atPath: err.path, contents: nil)
                let p = Process()
                p.executableURL = URL(fileURLWithPath: rdb)
                p.arguments = ["--command", command, Fixtures.url(fixture).path]
                p.environment = environment
                p.standardOutput = try FileHandle(forWritingTo: out)
                p.standardError = try FileHandle(forWritingTo: err)
                try p.run()
                running.append((fixture, p, out, err))
            }
            for r in running {
                r.process.waitUntilExit()
                if r.process.terminationStatus != 0 {
                    let err = (try? Data(contentsOf: r.err)) ?? Data()
                    XCTFail("`rdb --command \(command) \(r.fixture)` exited with \(r.process.terminationStatus): "
                            + String(decoding: err.suffix(400), as: UTF8.self), file: file, line: line)
                    failed = true
                } else {
                    results[r.fixture] = [UInt8](try Data(contentsOf: r.out))
                }
            }
        }
        return failed ? nil : results
    }

    // MARK: JSON

    /// Key kinds per database object, in the order JSONWriter opens them.
    struct Kinds: RDBVisitor {
        var dbs: [[[UInt8]: RDBKind]] = []
        mutating func beginDatabase(_ db: Int) throws { dbs.append([:]) }
        mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
            if dbs.isEmpty { dbs.append([:]) }
            dbs[dbs.count - 1][key.array] = info.kind
            return .skip
        }
    }

    enum Side { case rdbtools, ourEscape, ourBase64 }

    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    /// rdbtools' `--escape utf8` text back to bytes: `\xHH` (HH ≥ 80, uppercase) is a raw byte.
    static func rdbtoolsBytes(_ s: String) -> [UInt8] {
        let u = Array(s.unicodeScalars)
        func hexValue(_ c: Unicode.Scalar) -> UInt8? {
            switch c {
            case "0"..."9": UInt8(c.value - 48)
            case "A"..."F": UInt8(c.value - 55)
            default: nil
            }
        }
        var out: [UInt8] = []
        var i = 0
        while i < u.count {
            if u[i] == "\\", i + 3 < u.count, u[i + 1] == "x", let h = hexValue(u[i + 2]), let l = hexValue(u[i + 3]), h >= 8 {
                out.append(h << 4 | l)
                i += 4
            } else {
                out += Array(String(u[i]).utf8)
                i += 1
            }
        }
        return out
    }

    /// Our escape-mode text: U+E080...U+E0FF stand for the bytes written as `\udc80`...`\udcff` (see `parseOurs`).
    static func ourEscapedBytes(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        for c in s.unicodeScalars {
            if (0xE080...0xE0FF).contains(c.value) { out.append(UInt8(c.value - 0xE000)) } else { out += Array(String(c).utf8) }
        }
        return out
    }

    /// Parses our escape-mode JSON. Foundation rejects lone surrogates, so `\udcHH` escapes are first rewritten to
    /// `\ue0HH` (private use; no fixture holds such characters), and mapped back to bytes by `ourEscapedBytes`.
    static func parseOurs(_ text: [UInt8]) throws -> Any {
        var t: [UInt8] = []
        t.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == UInt8(ascii: "\\"), i + 1 < text.count {
                if text[i + 1] == UInt8(ascii: "u"), i + 5 < text.count, text[i + 2] == UInt8(ascii: "d"), text[i + 3] == UInt8(ascii: "c") {
                    t += Array("\\ue0".utf8) + [text[i + 4], text[i + 5]]
                    i += 6
                } else {
                    t += [text[i], text[i + 1]]
                    i += 2
                }
            } else {
                t.append(text[i])
                i += 1
            }
        }
        return try JSONSerialization.jsonObject(with: Data(t))
    }

    static func bytes(_ v: Any, _ side: Side) -> [UInt8] {
        guard let s = v as? String else { return Array("<not a string: \(v)>".utf8) }
        switch side {
        case .rdbtools: return rdbtoolsBytes(s)
        case .ourEscape: return ourEscapedBytes(s)
        case .ourBase64: return [UInt8](Data(base64Encoded: s) ?? Data("<bad base64 \(s)>".utf8))
        }
    }

    static func score(_ v: Any) -> String {
        var d: Double?
        if let s = v as? String { d = Double(s) } else if let n = v as? NSNumber { d = n.doubleValue }
        guard let d else { return "<not a score: \(v)>" }
        return (d == 0 ? 0.0 : d).description
    }

    /// Canonical text of one value of the given kind.
    static func canonical(_ v: Any, _ kind: RDBKind, _ side: Side) -> String {
        switch kind {
        case .string:
            return hex(bytes(v, side))
        case .list, .set:
            return "[" + ((v as? [Any]) ?? []).map { hex(bytes($0, side)) }.joined(separator: ",") + "]"
        case .hash:
            let d = (v as? [String: Any]) ?? [:]
            return "{" + d.map { hex(bytes($0.key, side)) + "=" + hex(bytes($0.value, side)) }.sorted().joined(separator: ",") + "}"
        case .zset:
            let d = (v as? [String: Any]) ?? [:]
            return "{" + d.map { hex(bytes($0.key, side)) + "=" + score($0.value) }.sorted().joined(separator: ",") + "}"
        case .stream, .module:
            // rdbtools: {}; ours: an object with the content.
            guard let d = v as? [String: Any] else { return "<not an object>" }
            if side == .rdbtools { return d.isEmpty ? "object" : "<rdbtools wrote content: \(d)>" }
            return d[kind == .stream ? "entries" : "module"] != nil ? "object" : "<no content: \(d)>"
        case .array:
            return "\(v)"
        }
    }

    /// Database objects → (key hex → canonical value).
    static func canonicalDatabases(_ json: Any, kinds: Kinds, _ side: Side) -> [[String: String]] {
        let dbs = (json as? [[String: Any]]) ?? []
        var out: [[String: String]] = []
        for (i, db) in dbs.enumerated() {
            var m: [String: String] = [:]
            for (k, v) in db {
                let key = bytes(k, side)
                let kind = i < kinds.dbs.count ? kinds.dbs[i][key] : nil
                m[hex(key)] = kind.map { canonical(v, $0, side) } ?? "<key unknown to the decoder>"
            }
            out.append(m)
        }
        return out
    }

    func testJSONHoldsTheSameDataAsRdbtools() throws {
        var compared = 0
        guard let outputs = try rdbtools("json", ReportsRdbtoolsTests.readable.map(ReportsRdbtoolsTests.fixture)) else { return }
        for name in ReportsRdbtoolsTests.readable {
            let fixture = ReportsRdbtoolsTests.fixture(name)
            let theirsText = outputs[fixture]!
            let theirsJSON = try JSONSerialization.jsonObject(with: Data(theirsText))
            let bytes = try Fixtures.bytes(fixture)
            var kinds = Kinds()
            _ = try RDBReader.decode(bytes: bytes, into: &kinds)
            let theirs = ReportsRdbtoolsTests.canonicalDatabases(theirsJSON, kinds: kinds, .rdbtools)

            let escaped = try sinkOutput(bytes) { JSONWriter(out: $0) }
            let base64 = try sinkOutput(bytes) { JSONWriter(out: $0, binary: .base64) }
            for (side, json) in [(Side.ourEscape, try ReportsRdbtoolsTests.parseOurs(escaped)),
                                 (Side.ourBase64, try JSONSerialization.jsonObject(with: Data(base64)))] {
                let ours = ReportsRdbtoolsTests.canonicalDatabases(json, kinds: kinds, side)
                XCTAssertEqual(ours.count, theirs.count, "\(name) (\(side)): number of database objects")
                for (i, (o, t)) in zip(ours, theirs).enumerated() {
                    XCTAssertEqual(Set(o.keys), Set(t.keys), "\(name) (\(side)) db object \(i): keys")
                    for (k, v) in t where o[k] != v {
                        XCTFail("\(name) (\(side)) db object \(i) key \(k): ours \(o[k] ?? "missing") rdbtools \(v)")
                    }
                    compared += t.count
                }
            }
        }
        XCTAssertGreaterThan(compared, 100)
    }

    // MARK: memory report

    static func rows(_ text: [UInt8]) -> [[String]] {
        String(decoding: text, as: UTF8.self).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    /// Every column is rdbtools' except `size_in_bytes`, which is within max(16 bytes, 2%) (see MemoryReportWriter
    /// for where the models differ), and `num_elements` of streams (rdbtools prints 1, we print the entry count).
    func testMemoryReportIsCloseToRdbtools() throws {
        var compared = 0
        var exactSizes = 0
        // Every type and encoding rdbtools knows (each run of `rdb` costs a second: not all 28 fixtures).
        let names = [
            "integer_keys", "keys_with_expiry", "multiple_databases", "intset_64", "regular_set", "dictionary",
            "zipmap_that_doesnt_compress", "hash_as_ziplist", "regular_sorted_set", "sorted_set_as_ziplist",
            "ziplist_with_integers", "linkedlist", "parser_filters", "redis_40_with_module", "redis_50_with_streams",
        ]
        guard let outputs = try rdbtools("memory", names.map(ReportsRdbtoolsTests.fixture)) else { return }
        for name in names {
            let fixture = ReportsRdbtoolsTests.fixture(name)
            let theirsText = outputs[fixture]!
            let theirs = ReportsRdbtoolsTests.rows(theirsText)
            let ours = ReportsRdbtoolsTests.rows(try sinkOutput(try Fixtures.bytes(fixture)) { MemoryReportWriter(out: $0) })
            XCTAssertEqual(ours.count, theirs.count, name)
            XCTAssertEqual(ours.first, theirs.first, "\(name): header")
            for (o, t) in zip(ours, theirs).dropFirst() {
                guard o.count == 8, t.count == 8 else {
                    XCTFail("\(name): row \(o) / \(t)")
                    continue
                }
                let what = "\(name) key \(t[2])"
                for c in [0, 1, 2, 4, 6, 7] { XCTAssertEqual(o[c], t[c], "\(what): column \(c)") }
                if t[1] != "stream" { XCTAssertEqual(o[5], t[5], "\(what): num_elements") }
                let os = Int(o[3]) ?? -1
                let ts = Int(t[3]) ?? -1
                XCTAssertLessThanOrEqual(abs(os - ts), max(16, ts / 50), "\(what): size ours \(os) rdbtools \(ts)")
                compared += 1
                if os == ts { exactSizes += 1 }
            }
        }
        XCTAssertGreaterThan(compared, 60)
        // Today 75 of 77 rows have rdbtools' exact size; the others are a skiplist (rdbtools' random levels) and a
        // list of integers (see MemoryReportWriter).
        XCTAssertGreaterThanOrEqual(exactSizes * 100 / max(compared, 1), 95, "\(exactSizes) of \(compared) sizes are exact")
    }
}
