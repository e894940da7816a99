import Foundation
import Testing
import RDBKit
import RDBSinks

/// Server-written AOFs (testdata/servers/<kind>/aof/: single files with and without RDB preamble, and
/// appendonlydir folders with RDB or RESP base) are decoded from their path, passed through as RESP
/// (`RESPWriter`), piped into a fresh server of the same kind with `redis-cli --pipe`, and the server must
/// then give the `DEBUG DIGEST` of the server that loaded the AOF itself (`X.digest`) and, after SAVE, hold
/// exactly the keys of `X.expected.jsonl`. A missing server binary fails the test with a message.
@Suite struct AOFServerTests {
    typealias Kind = RedisServer.Kind

    struct Fixture: CustomStringConvertible {
        /// The path to decode (a file or a folder), relative to testdata/.
        var path: String
        /// The fixture's name without extension, relative to testdata/.
        var base: String
        var description: String { path }
    }

    static func fixtures(_ kind: Kind) -> [Fixture] {
        let dir = "servers/\(kind.rawValue)/aof/"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.url(dir).path)) ?? []
        return names.filter { $0.hasSuffix(".digest") }.sorted().map { d in
            let base = dir + String(d.dropLast(".digest".count))
            let file = FileManager.default.fileExists(atPath: Fixtures.url(base + ".aof").path) ? base + ".aof" : base
            return Fixture(path: file, base: base)
        }
    }

    @Test(arguments: Kind.allCases)
    func replayGivesTheServersDigestAndKeys(_ kind: Kind) throws {
        let fixtures = AOFServerTests.fixtures(kind)
        #expect(fixtures.count >= 2, "testdata/servers/\(kind)/aof holds \(fixtures.count) AOF fixtures with digests")
        let server: RedisServer
        do {
            server = try RedisServer(kind: kind)
        } catch {
            Issue.record("cannot run the \(kind) AOF server tests: \(error)")
            return
        }
        defer { server.stop() }
        for f in fixtures {
            try check(f, server)
        }
    }

    func check(_ f: Fixture, _ server: RedisServer) throws {
        let digest = try String(contentsOf: Fixtures.url(f.base + ".digest"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let out = OutputBuffer(target: nil)
        var w = RESPWriter(out: out, options: RESPWriterOptions(targetVersion: server.kind.rdbVersion))
        let summary = try AOFReader.decode(path: Fixtures.url(f.path).path, into: &w)
        #expect(summary.warnings.isEmpty, "\(f): \(summary.warnings)")
        #expect(w.skippedKeys.isEmpty, "\(f): skipped \(w.skippedKeys.map(\.reason))")
        try server.flushAll()
        let r = try server.pipe(out.take())
        #expect(r.errors == 0, "\(f): \(r.errors) error replies: \(r.output.suffix(1500))")
        let got = try server.digest()
        #expect(got == digest, "\(f): replay into \(server.kind) gives digest \(got), the server that loaded the AOF gave \(digest)")

        // What the server holds, decoded from its SAVE, against the expected keys.
        let (objects, _) = try decodeToJSONObjects(try server.save())
        let expected = try readExpected(f.base + ".expected.jsonl")
        #expect(objects.count == expected.count, "\(f): \(objects.count) keys held, \(expected.count) expected")
        let held = Canonical.index(objects, .base64)
        for (k, e) in Canonical.index(expected, .latin1).sorted(by: { $0.key < $1.key }) {
            guard let a = held[k] else {
                Issue.record("\(f): key \(k) missing after replay")
                continue
            }
            #expect(Canonical.key(a, .base64, like: e) == Canonical.key(e, .latin1, like: e), "\(f): key \(k)")
        }
    }
}
