import Foundation
import RDBTestSupport
import Testing
@testable import RDBImport
import RedisWire

/// `rdbcat migrate --obs-endpoint`, `rdbcat import s3://…` and `rdbcat s3://…` against a real S3-compatible
/// server (moto_server with signature checking on) and real Redis targets.
@Suite("rdbcat with a bucket")
struct BucketImportTests {
    static let folder = TestServer.Kind.redis70.fixtureFolder

    /// A temporary folder with gzip and zstd copies of fixtures.
    final class Scratch {
        let dir = NSTemporaryDirectory() + "bucket-\(UUID().uuidString)"
        init() throws { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: dir) }

        /// `path` compressed with `tool` (gzip, zstd) into the folder.
        func compressed(_ path: String, _ tool: String, as name: String) throws -> String {
            let out = dir + "/" + name
            let (status, _, err) = try TestServer.run("/bin/sh", ["-c", "\(tool) -c < '\(path)' > '\(out)'"])
            guard status == 0 else { throw TestServer.Failure("\(tool) \(path): \(err)") }
            return out
        }

        func write(_ name: String, _ text: String) throws -> String {
            try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/" + name))
            return dir + "/" + name
        }
    }

    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int) ?? -1
    }

    /// A task body naming `files` (`(name, declared size)`) in bucket `backups`.
    static func task(_ files: [(String, Int?)]) -> String {
        let list = files.map { name, size in
            #"{"file_name":"\#(name)"\#(size.map { #","size":"\#($0)""# } ?? ""),"update_at":"2024-06-01 12:00:00"}"#
        }.joined(separator: ",")
        return """
            {"task_name":"bucket-import","migration_type":"backupfile_import","migration_method":"full_amount_migration",
             "backup_files":{"bucket_name":"backups","file_source":"self_build_obs","files":[\(list)]},
             "target_instance":{"id":"318ed365-3c1b-42d7-a5b6-663dded628a0","name":"dcs-test"}}
            """
    }

    /// Runs `rdbcat migrate` with the bucket on `moto`; returns the exit status, the stdout lines as JSON and stderr.
    static func migrate(_ body: String, moto: MotoServer, target: TestServer, scratch: Scratch, environment: [String: String]? = nil,
                        extra: [String] = []) throws -> (Int32, [[String: Any]], String, String) {
        let task = try scratch.write("task-\(UUID().uuidString).json", body)
        let (status, out, err) = try TestServer.run(try TestServer.rdbcatPath(), [
            "migrate", task, "--obs-endpoint", moto.endpoint, "--obs-path-style", "--target", "127.0.0.1:\(target.port)", "--no-progress",
        ] + extra, environment: environment ?? moto.environment)
        let lines = out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return (status, lines, out, err)
    }

    static func files(_ report: [String: Any]?) -> [[String: Any]] {
        ((report?["backup_files"] as? [String: Any])?["files"] as? [[String: Any]]) ?? []
    }

    @Test("migrate reads RDB, gzip and zstd objects straight from the bucket: the union's digest, bytes read of each object")
    func migrateRDB() throws {
        let scratch = try Scratch()
        let plain = ["hashes.rdb", "mixed.rdb", "streams.rdb"].map { Self.folder + "/" + $0 }
        let expected = try MigrateCommandTests.referenceDigest(.redis70, plain)
        let gz = try scratch.compressed(plain[1], "gzip", as: "mixed.rdb.gz")
        let zst = try scratch.compressed(plain[2], "zstd", as: "streams.rdb.zst")
        let moto = try MotoServer()
        defer { moto.stop() }
        try moto.put(bucket: "backups", [("2024/hashes.rdb", plain[0]), ("2024/mixed.rdb.gz", gz), ("2024/streams.rdb.zst", zst)])
        let target = try TestServer(.redis70)
        defer { target.stop() }
        let body = Self.task([("2024/hashes.rdb", Self.size(plain[0])), ("2024/mixed.rdb.gz", Self.size(gz)), ("2024/streams.rdb.zst", nil)])
        let (status, lines, out, err) = try Self.migrate(body, moto: moto, target: target, scratch: scratch, extra: ["--restore"])
        #expect(status == 0, "\(err)")
        #expect(lines.map { $0["status"] as? String } == ["MIGRATING", "SUCCESS", "SUCCESS"], "\(out)")
        #expect(!out.contains(moto.secretAccessKey) && !err.contains(moto.secretAccessKey))
        let files = Self.files(lines.last)
        #expect(files.map { $0["keys"] as? Int ?? -1 } == [7, 300, 6])
        let objects = files.map { $0["object"] as? [String: Any] ?? [:] }
        #expect(objects.map { $0["holds"] as? String ?? "" } == ["RDB version 10 (redis)", "RDB version 10 (redis), gzip", "RDB version 10 (redis), zstd"])
        #expect(objects.map { $0["bytes_read"] as? Int ?? -1 } == [Self.size(plain[0]), Self.size(gz), Self.size(zst)])
        #expect(objects.allSatisfy { ($0["resumes"] as? Int) == 0 })
        #expect(try target.digest() == expected)
    }

    @Test("migrate applies AOF objects in order (a base RDB or AOF, then a gzip'd incremental AOF): the writer's digest")
    func migrateAOF() throws {
        let scratch = try Scratch()
        let moto = try MotoServer()
        defer { moto.stop() }
        for base in ["aof", "rdb"] {
            let dir = Self.folder + "/aof/multipart-\(base)-base"
            let incr = try scratch.compressed(dir + "/appendonly.aof.2.incr.aof", "gzip", as: "incr-\(base).aof.gz")
            try moto.put(bucket: "backups", [("\(base)/base.\(base)", dir + "/appendonly.aof.2.base.\(base)"), ("\(base)/incr.aof.gz", incr)])
            let target = try TestServer(.redis70)
            defer { target.stop() }
            let (status, lines, out, err) = try Self.migrate(Self.task([("\(base)/base.\(base)", nil), ("\(base)/incr.aof.gz", nil)]), moto: moto, target: target, scratch: scratch)
            #expect(status == 0, "\(base): \(err)")
            #expect(lines.last?["status"] as? String == "SUCCESS", "\(out)")
            let expected = try String(contentsOfFile: Self.folder + "/aof/multipart-\(base)-base.digest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try target.digest() == expected, "\(base)")
        }
    }

    @Test("A wrong secret ends FAILED naming the 403, before anything is written; the secret is never shown")
    func wrongSecret() throws {
        let scratch = try Scratch()
        let moto = try MotoServer()
        defer { moto.stop() }
        try moto.put(bucket: "backups", [("hashes.rdb", Self.folder + "/hashes.rdb")])
        let target = try TestServer(.redis70)
        defer { target.stop() }
        let wrong = "Wrong\(UInt32.random(in: 0...UInt32.max))Secret"
        let (status, lines, out, err) = try Self.migrate(Self.task([("hashes.rdb", nil)]), moto: moto, target: target, scratch: scratch,
                                                         environment: ["AWS_ACCESS_KEY_ID": moto.accessKeyID, "AWS_SECRET_ACCESS_KEY": wrong])
        #expect(status == 1, "\(err)")
        #expect(lines.map { $0["status"] as? String } == ["FAILED", "FAILED"], "\(out)")
        let failure = lines.last?["failure"] as? String ?? ""
        #expect(failure.contains("403") && failure.contains("hashes.rdb") && failure.contains("backups"), "\(failure)")
        #expect(!out.contains(wrong) && !err.contains(wrong))
        #expect(try target.keyspace().isEmpty)
    }

    @Test("An endpoint that does not answer: the first file waits out its retries, the others are not asked about; FAILED before any key is written")
    func silentEndpoint() throws {
        let scratch = try Scratch()
        let target = try TestServer(.redis70)
        defer { target.stop() }
        let task = try scratch.write("task-\(UUID().uuidString).json", Self.task([("a.rdb", nil), ("b.rdb", nil), ("c.rdb", nil)]))
        let started = Date()
        let (status, out, err) = try TestServer.run(try TestServer.rdbcatPath(), [
            "migrate", task, "--obs-endpoint", "http://127.0.0.1:\(try TestServer.freePort())", "--obs-path-style",
            "--obs-retry-timeout", "2", "--target", "127.0.0.1:\(target.port)", "--no-progress",
        ], environment: ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-used-here"])
        #expect(status == 1, "\(err)")
        #expect(Date().timeIntervalSince(started) < 20, "each file waited out the retries")
        let lines = out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let problems = (lines.last?["backup_files"] as? [String: Any])?["problems"] as? [String] ?? []
        #expect(problems.count == 3, "\(problems)")
        #expect(problems.contains { $0.contains("files[2]") && $0.contains("not checked: the endpoint did not answer for 'a.rdb'") }, "\(problems)")
        #expect(try target.keyspace().isEmpty)
    }

    @Test("A missing object and a size mismatch are both listed, and the task FAILS before any key is written")
    func checksFirst() throws {
        let scratch = try Scratch()
        let moto = try MotoServer()
        defer { moto.stop() }
        try moto.put(bucket: "backups", [("hashes.rdb", Self.folder + "/hashes.rdb"), ("lists.rdb", Self.folder + "/lists.rdb")])
        let target = try TestServer(.redis70)
        defer { target.stop() }
        let body = Self.task([("hashes.rdb", nil), ("lists.rdb", Self.size(Self.folder + "/lists.rdb") + 1), ("nothere.rdb", nil)])
        let (status, lines, out, err) = try Self.migrate(body, moto: moto, target: target, scratch: scratch)
        #expect(status == 1, "\(err)")
        #expect(lines.first?["status"] as? String == "FAILED", "\(out)")
        let problems = (lines.last?["backup_files"] as? [String: Any])?["problems"] as? [String] ?? []
        #expect(problems.count == 2, "\(problems)")
        #expect(problems.contains { $0.contains("files[1].size") && $0.contains("lists.rdb") })
        #expect(problems.contains { $0.contains("files[2]") && $0.contains("404") && $0.contains("nothere.rdb") })
        #expect(try target.keyspace().isEmpty, "nothing may be written when a file fails its check")
    }

    @Test("rdbcat s3://… --format stats says what the local file says")
    func catStats() throws {
        let scratch = try Scratch()
        let moto = try MotoServer()
        defer { moto.stop() }
        let local = Self.folder + "/mixed.rdb"
        try moto.put(bucket: "backups", [("mixed.rdb.gz", try scratch.compressed(local, "gzip", as: "mixed.rdb.gz")), ("mixed.rdb", local)])
        let rdbcat = try TestServer.rdbcatPath()
        let (s0, expected, e0) = try TestServer.run(rdbcat, [local, "--format", "stats", "--no-progress"])
        #expect(s0 == 0, "\(e0)")
        for key in ["mixed.rdb", "mixed.rdb.gz"] {
            let (status, out, err) = try TestServer.run(rdbcat, [
                "s3://backups/\(key)", "--format", "stats", "--obs-endpoint", moto.endpoint, "--obs-path-style", "--no-progress",
            ], environment: moto.environment)
            #expect(status == 0 && out == expected, "\(key): \(err)")
        }
        // The key pair from a credentials file (AWS's format), or from the OBS_* environment variables.
        let file = try scratch.write("credentials", "[default]\naws_access_key_id = \(moto.accessKeyID)\naws_secret_access_key = \(moto.secretAccessKey)\n")
        let none = ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "OBS_ACCESS_KEY_ID": "", "OBS_SECRET_ACCESS_KEY": ""]
        let (s1, o1, e1) = try TestServer.run(rdbcat, [
            "s3://backups/mixed.rdb", "--format", "stats", "--obs-endpoint", moto.endpoint, "--obs-path-style", "--obs-credentials-file", file,
        ], environment: none)
        #expect(s1 == 0 && o1 == expected, "\(e1)")
        let obs = ["OBS_ACCESS_KEY_ID": moto.accessKeyID, "OBS_SECRET_ACCESS_KEY": moto.secretAccessKey]
        let (s3, o3, e3) = try TestServer.run(rdbcat, [
            "s3://backups/mixed.rdb", "--format", "stats", "--obs-endpoint", moto.endpoint, "--obs-path-style",
        ], environment: none.merging(obs) { _, b in b })
        #expect(s3 == 0 && o3 == expected, "\(e3)")
        let (s4, _, e4) = try TestServer.run(rdbcat, ["s3://backups/mixed.rdb", "--obs-endpoint", moto.endpoint], environment: none)
        #expect(s4 != 0 && e4.contains("no credentials"), "\(e4)")
        let (status, _, err) = try TestServer.run(rdbcat, ["s3://backups/nothere.rdb", "--obs-endpoint", moto.endpoint, "--obs-path-style"], environment: moto.environment)
        #expect(status == 2 && err.contains("rdbcat: error: s3://backups/nothere.rdb: HEAD: HTTP 404"), "\(err)")
        let (s2, _, e2) = try TestServer.run(rdbcat, ["s3://backups/mixed.rdb"])
        #expect(s2 != 0 && e2.contains("--obs-endpoint"), "\(e2)")
    }

    @Test("import through a connection cut mid-object resumes at the right byte: digest equal, resumes counted")
    func resumedImport() throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        let file = Self.folder + "/mixed.rdb"
        try moto.put(bucket: "backups", [("mixed.rdb", file)])
        // The first two connections that pass 9000 bytes of answers are cut there.
        let proxy = try DroppingProxy(upstreamPort: moto.port, maxCuts: 2) { _ in 9000 }
        defer { proxy.stop() }
        let target = try TestServer(.redis70)
        defer { target.stop() }
        let (status, out, err) = try TestServer.run(try TestServer.rdbcatPath(), [
            "import", "s3://backups/mixed.rdb", "--to", target.url, "--obs-endpoint", "http://127.0.0.1:\(proxy.port)", "--obs-path-style",
            "--obs-range-kb", "16", "--no-progress",
        ], environment: moto.environment)
        #expect(status == 0, "\(err)")
        let report = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        #expect(report?["status"] as? String == "SUCCESS")
        #expect(report?["object_resumes"] as? Int == 2, "\(out)")
        #expect(proxy.cuts == 2)
        #expect(err.contains("resuming at byte"), "\(err)")
        let expected = try String(contentsOfFile: Self.folder + "/mixed.digest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try target.digest() == expected)
    }
}
