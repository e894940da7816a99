import RDBTestSupport
import Foundation
import Testing
@testable import RDBImport
import RedisWire

/// Imports into real servers on loopback and compares `DEBUG DIGEST` with the server that wrote the file.
@Suite("Import into live servers")
struct ServerImportTests {
    static func run(_ files: [String], into server: TestServer, _ configure: (inout ImportOptions) -> Void = { _ in }) -> ImportReport {
        var o = ImportOptions()
        o.pipeline.reconnectTimeout = 20
        configure(&o)
        return Importer(target: server.endpoint, options: o).run(files: files)
    }

    static func describe(_ r: ImportReport) -> Comment {
        Comment(rawValue: "\(r.status) failure=\(r.failure ?? "-") problems=\(r.problems.prefix(5).map { "\($0.kind) \($0.keyText): \($0.message)" })")
    }

    @Test("RDB fixtures give the writer's digest, as commands and as RESTORE", arguments: TestServer.Kind.allCases)
    func rdbFixtures(kind: TestServer.Kind) throws {
        let server = try TestServer(kind)
        defer { server.stop() }
        let fixtures = try TestServer.fixtures(kind)
        #expect(fixtures.count >= 8, "fixtures of \(kind) missing")
        for (file, digest) in fixtures {
            for mode in ImportOptions.Mode.allCases {
                try server.flushAll()
                let r = Self.run([file], into: server) { $0.mode = mode }
                #expect(r.status == .success, "\(file) \(mode): \(Self.describe(r))")
                #expect(r.keysImported + r.files[0].keysEmpty == r.keysRead, "\(file) \(mode)")
                #expect(try server.digest() == digest, "\(file) as \(mode) into \(kind)")
            }
        }
    }

    @Test("AOF fixtures (single file, preamble, multi-part folders) give the loader's digest", arguments: TestServer.Kind.allCases)
    func aofFixtures(kind: TestServer.Kind) throws {
        let server = try TestServer(kind)
        defer { server.stop() }
        let fixtures = try TestServer.fixtures(kind, aof: true)
        #expect(fixtures.count >= 2, "AOF fixtures of \(kind) missing")
        for (file, digest) in fixtures {
            for mode in ImportOptions.Mode.allCases {
                try server.flushAll()
                let r = Self.run([file], into: server) { $0.mode = mode }
                #expect(r.status == .success, "\(file) \(mode): \(Self.describe(r))")
                #expect(r.files[0].aofApplied > 0, "\(file): no AOF command applied")
                #expect(try server.digest() == digest, "\(file) as \(mode) into \(kind)")
            }
        }
    }

    @Test("Existing keys are reported, not overwritten, unless replace")
    func existingKeys() throws {
        let server = try TestServer(.redis70)
        defer { server.stop() }
        let file = TestServer.Kind.redis70.fixtureFolder + "/mixed.rdb"
        let digest = try String(contentsOfFile: TestServer.Kind.redis70.fixtureFolder + "/mixed.digest", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Self.run([file], into: server).status == .success)
        for mode in ImportOptions.Mode.allCases {
            // One key changed on the target: without replace it stays changed and is reported.
            let c = try server.client()
            _ = try c.send(["SELECT", "0"])
            let keys = try c.send(["KEYS", "*"])
            guard case .array(let items?) = keys, let first = items.first, case .bulk(let k?) = first else {
                Issue.record("no keys in db 0: \(keys)")
                return
            }
            _ = try c.send(bytes: [Array("DEL".utf8), k])
            _ = try c.send(bytes: [Array("SET".utf8), k, Array("changed".utf8)])
            c.close()
            let r = Self.run([file], into: server) { $0.mode = mode }
            #expect(r.status == .success, Self.describe(r))
            #expect(r.problemCounts[.exists] == r.keysRead, "\(mode): every key exists")
            #expect(r.keysImported == 0)
            #expect(try server.digest() != digest)
            let again = Self.run([file], into: server) {
                $0.mode = mode
                $0.replace = true
            }
            #expect(again.status == .success && again.keysImported == again.keysRead, Self.describe(again))
            #expect(try server.digest() == digest, "\(mode) with replace")
        }
        let dbsWithTemporaries = try server.command("KEYS", "rdbcat:tmp:*")
        #expect(dbsWithTemporaries == .array([]))
    }

    @Test("Databases: mapped, merged, or refused when the target does not have them")
    func databases() throws {
        let server = try TestServer(.valkey81)
        defer { server.stop() }
        let file = TestServer.Kind.valkey81.fixtureFolder + "/expiry-dbs.rdb"
        let plain = Self.run([file], into: server)
        #expect(plain.status == .success)
        let original = try server.keyspace()
        #expect(original.count > 2)
        try server.flushAll()
        let mapped = Self.run([file], into: server) { $0.databaseMap = [1: 2, 5: 7] }
        #expect(mapped.status == .success, Self.describe(mapped))
        let ks = try server.keyspace()
        #expect(ks[2] == original[1] && ks[7] == original[5] && ks[1] == nil && ks[5] == nil && ks[0] == original[0])
        try server.flushAll()
        let merged = Self.run([file], into: server) { $0.mergeInto = 4 }
        // Keys with the same name in several databases collide: the later ones exist and are reported.
        let total = original.values.reduce(0, +)
        #expect(merged.status == .success, Self.describe(merged))
        #expect(try server.keyspace() == [4: total - (merged.problemCounts[.exists] ?? 0)])
        #expect((merged.problemCounts[.exists] ?? 0) > 0)
        try server.flushAll()
        let missing = Self.run([file], into: server) { $0.mergeInto = 99 }
        #expect(missing.status == .failed && missing.failure?.contains("database 99") == true, Self.describe(missing))
        #expect(try server.keyspace().isEmpty)
    }

    @Test("Dry run: decodes and counts, connects to nothing")
    func dryRun() throws {
        var o = ImportOptions()
        o.dryRun = true
        let r = Importer(target: nil, options: o).run(files: [TestServer.Kind.redis70.fixtureFolder + "/mixed.rdb"])
        #expect(r.status == .success && r.keysRead == 300 && r.commandsSent > 300 && r.keysImported == 0)
    }

    @Test("rdbcat import --dry-run: the summary says what was read and that nothing was sent; a truncated file's error names it once")
    func dryRunSummary() throws {
        let rdbcat = try TestServer.rdbcatPath()
        let file = TestServer.Kind.redis70.fixtureFolder + "/mixed.rdb"
        let (status, _, err) = try TestServer.run(rdbcat, ["import", "--dry-run", "--no-progress", file])
        #expect(status == 0, "\(err)")
        #expect(err.contains("SUCCESS (dry run): 300 keys read in ") && err.contains("nothing sent"), "\(err)")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let cut = NSTemporaryDirectory() + "cut-\(UUID().uuidString).rdb"
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        defer { try? FileManager.default.removeItem(atPath: cut) }
        let (failed, _, cutErr) = try TestServer.run(rdbcat, ["import", "--dry-run", "--no-progress", cut])
        #expect(failed == 1, "\(cutErr)")
        #expect(cutErr.contains("rdbcat: \(cut): offset ") && !cutErr.contains("\(cut): \(cut)"), "\(cutErr)")
    }

    @Test("Unreadable input: FAILED with the file named")
    func missingFile() throws {
        let server = try TestServer(.redis70)
        defer { server.stop() }
        let r = Self.run(["/nonexistent/dump.rdb"], into: server)
        #expect(r.status == .failed && r.failure?.contains("/nonexistent/dump.rdb") == true)
    }
}

@Suite("Authentication and TLS")
struct AuthTests {
    @Test("requirepass, ACL user, wrong password; the password never printed")
    func passwords() throws {
        let password = "s3cret-Pw-\(UInt32.random(in: 0...UInt32.max))"
        let server = try TestServer(.redis70, password: password)
        defer { server.stop() }
        let folder = TestServer.Kind.redis70.fixtureFolder
        let digest = try String(contentsOfFile: folder + "/mixed.digest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let ok = ServerImportTests.run([folder + "/mixed.rdb"], into: server) { $0.mode = .restore }
        #expect(ok.status == .success, ServerImportTests.describe(ok))
        #expect(try server.digest() == digest)

        // An ACL user.
        try server.flushAll()
        let userPassword = "u-\(password)"
        #expect(try server.command("ACL", "SETUSER", "importer", "on", ">" + userPassword, "~*", "&*", "+@all") == .simple("OK"))
        var user = server.endpoint
        user.username = "importer"
        user.password = Secret(userPassword)
        var o = ImportOptions()
        o.replace = true
        let r = Importer(target: user, options: o).run(files: [folder + "/mixed.rdb"])
        #expect(r.status == .success, ServerImportTests.describe(r))
        #expect(try server.digest() == digest)

        // A wrong password: FAILED before anything is written, every key named, the password nowhere.
        try server.flushAll()
        var wrong = server.endpoint
        wrong.password = Secret("not-\(password)")
        let bad = Importer(target: wrong, options: ImportOptions()).run(files: [folder + "/mixed.rdb"])
        #expect(bad.status == .failed && bad.failure?.contains("authentication") == true, ServerImportTests.describe(bad))
        #expect(bad.problemCounts[.notSent] == 301 && bad.keysRead == 300, "\(bad.problemCounts)")  // 300 keys and a function library
        let json = bad.json()
        #expect(!json.contains(password) && !(bad.failure ?? "").contains(password))
        #expect(try server.keyspace().isEmpty)

        // The CLI: password from the environment, from a file, and a wrong one in the URL.
        let rdbcat = try TestServer.rdbcatPath()
        let (status, out, err) = try TestServer.run(rdbcat, [
            "import", folder + "/mixed.rdb", "--to", "redis://127.0.0.1:\(server.port)", "--password-env", "RDBIMPORT_TEST_PW", "--no-progress",
        ], environment: ["RDBIMPORT_TEST_PW": password])
        #expect(status == 0, "\(err)")
        #expect(!out.contains(password) && !err.contains(password))
        #expect(try server.digest() == digest)
        let pwFile = server.dir + "/pw.txt"
        try Data((password + "\n").utf8).write(to: URL(fileURLWithPath: pwFile))
        let (s2, _, e2) = try TestServer.run(rdbcat, [
            "import", folder + "/mixed.rdb", "--to", "redis://127.0.0.1:\(server.port)", "--password-file", pwFile, "--replace", "--no-progress",
        ])
        #expect(s2 == 0, "\(e2)")
        let (s3, o3, e3) = try TestServer.run(rdbcat, [
            "import", folder + "/mixed.rdb", "--to", "redis://:wrong-\(password)@127.0.0.1:\(server.port)", "--no-progress",
        ])
        #expect(s3 == 1)
        #expect(!o3.contains(password) && !e3.contains(password), "\(e3)")
        #expect(o3.contains("\"status\":\"FAILED\"") && e3.contains("authentication"))
    }

    @Test("TLS with a CA file")
    func tls() throws {
        let dir = NSTemporaryDirectory() + "rdbimport-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let openssl = TestServer.which("openssl") else {
            Issue.record("openssl not found: it makes the test certificates")
            return
        }
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.crt", "-days", "2", "-subj", "/CN=rdbimport-test-ca"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/server.key", "-out", "\(dir)/server.csr", "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", "\(dir)/server.csr", "-CA", "\(dir)/ca.crt", "-CAkey", "\(dir)/ca.key", "-CAcreateserial",
             "-out", "\(dir)/server.crt", "-days", "2", "-extfile", "\(dir)/san.cnf"],
        ]
        try Data("subjectAltName=DNS:localhost,IP:127.0.0.1\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/san.cnf"))
        for s in steps {
            let (st, _, err) = try TestServer.run(openssl, s)
            guard st == 0 else {
                Issue.record("openssl \(s[0]) failed: \(err)")
                return
            }
        }
        let tlsPort = try TestServer.freePort()
        let server = try TestServer(.redis70, arguments: [
            "--tls-port", String(tlsPort), "--tls-cert-file", "\(dir)/server.crt", "--tls-key-file", "\(dir)/server.key",
            "--tls-ca-cert-file", "\(dir)/ca.crt", "--tls-auth-clients", "no",
        ])
        defer { server.stop() }
        var endpoint = RedisEndpoint(host: "localhost", port: tlsPort)
        endpoint.tls = TLSOptions(caFile: "\(dir)/ca.crt")
        let folder = TestServer.Kind.redis70.fixtureFolder
        var o = ImportOptions()
        o.mode = .restore
        let r = Importer(target: endpoint, options: o).run(files: [folder + "/mixed.rdb", folder + "/streams.rdb"])
        #expect(r.status == .success, ServerImportTests.describe(r))
        #expect(r.keysImported == 306)
        // A client that does not trust the CA is refused.
        var untrusted = endpoint
        untrusted.tls = TLSOptions()
        let bad = Importer(target: untrusted, options: o).run(files: [folder + "/streams.rdb"])
        #expect(bad.status == .failed)
    }
}

@Suite("Across versions")
struct CrossVersionTests {
    /// Newer files into older servers: the target version comes from INFO, RESTORE payloads are re-encoded
    /// into types the target loads and commands use the forms it knows. (Digests agree across kinds except
    /// for streams with consumer groups and zsets holding -0.0, so those fixtures are left out here.)
    @Test(arguments: [(TestServer.Kind.valkey81, TestServer.Kind.redis62), (.redis70, .redis62), (.valkey81, .redis70)])
    func newerIntoOlder(_ from: TestServer.Kind, _ into: TestServer.Kind) throws {
        let server = try TestServer(into)
        defer { server.stop() }
        for name in ["strings", "lists", "sets", "hashes", "expiry-dbs"] {
            let file = from.fixtureFolder + "/\(name).rdb"
            let digest = try String(contentsOfFile: from.fixtureFolder + "/\(name).digest", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            for mode in ImportOptions.Mode.allCases {
                try server.flushAll()
                let r = ServerImportTests.run([file], into: server) { $0.mode = mode }
                #expect(r.status == .success, "\(name) \(mode) \(from) -> \(into): \(ServerImportTests.describe(r).rawValue)")
                #expect(try server.digest() == digest, "\(name) \(mode) \(from) -> \(into)")
            }
        }
    }

    @Test("The default mode: strings as SET, every other value as a RESTORE payload, digest equal")
    func autoMode() throws {
        let kind = TestServer.Kind.redis70
        let server = try TestServer(kind)
        defer { server.stop() }
        for name in ["mixed", "hashes", "zsets", "streams"] {
            let file = kind.fixtureFolder + "/\(name).rdb"
            let digest = try String(contentsOfFile: kind.fixtureFolder + "/\(name).digest", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try server.flushAll()
            _ = try server.command("CONFIG", "RESETSTAT")
            let r = ServerImportTests.run([file], into: server)
            #expect(r.status == .success, "\(name): \(ServerImportTests.describe(r))")
            #expect(try server.digest() == digest, "\(name)")
            let calls = try UnguardedTests.calls(server)
            #expect(calls["restore", default: 0] > 0, "\(name): \(calls)")
            for builder in ["rpush", "hset", "sadd", "zadd", "xadd", "xgroup", "xsetid"] {
                #expect(calls[builder, default: 0] == 0, "\(name): \(builder) in \(calls)")
            }
        }
    }
}
