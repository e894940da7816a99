import RDBTestSupport
import Foundation
import Testing
@testable import RDBImport
import RedisWire

@Suite("rdbcat migrate")
struct MigrateCommandTests {
    /// The digest of the union of several dumps, made by the servers themselves: each dump is loaded by a
    /// server of its kind and its keys are copied into one server with MIGRATE … COPY.
    static func referenceDigest(_ kind: TestServer.Kind, _ files: [String]) throws -> String {
        let reference = try TestServer(kind)
        defer { reference.stop() }
        for f in files {
            let source = try TestServer(kind, dumpFile: f)
            defer { source.stop() }
            let c = try source.client()
            defer { c.close() }
            for db in try source.keyspace().keys.sorted() {
                _ = try c.send(["SELECT", String(db)])
                guard case .array(let items?) = try c.send(["KEYS", "*"]) else { continue }
                let keys = items.compactMap { r -> [UInt8]? in if case .bulk(let b?) = r { return b } else { return nil } }
                var args = ["MIGRATE", "127.0.0.1", String(reference.port), "", String(db), "5000", "COPY", "KEYS"].map { Array($0.utf8) }
                args += keys
                let r = try c.send(bytes: args)
                guard case .simple("OK") = r else { throw TestServer.Failure("MIGRATE from \(f) db \(db): \(r)") }
            }
        }
        return try reference.digest()
    }

    func bucket(_ files: [String]) throws -> (root: String, sizes: [Int]) {
        let root = NSTemporaryDirectory() + "bucket-root-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/backups-2024", withIntermediateDirectories: true)
        var sizes: [Int] = []
        for f in files {
            let name = URL(fileURLWithPath: f).lastPathComponent
            try FileManager.default.copyItem(atPath: f, toPath: root + "/backups-2024/" + name)
            sizes.append((try FileManager.default.attributesOfItem(atPath: f)[.size] as? Int) ?? 0)
        }
        return (root, sizes)
    }

    func taskBody(_ files: [String], sizes: [Int], password: String?, sizeOverride: [Int: String] = [:]) -> String {
        let list = zip(files, sizes).enumerated().map { i, fs in
            let name = URL(fileURLWithPath: fs.0).lastPathComponent
            return #"{"file_name":"\#(name)","size":"\#(sizeOverride[i] ?? String(fs.1))","update_at":"2024-06-01 12:00:00"}"#
        }.joined(separator: ",")
        let pw = password.map { #","password":"\#($0)""# } ?? ""
        return """
            {"task_name":"import-backups","description":"test","migration_type":"backupfile_import",
             "migration_method":"full_amount_migration",
             "backup_files":{"bucket_name":"backups-2024","file_source":"self_build_obs","files":[\(list)]},
             "target_instance":{"id":"318ed365-3c1b-42d7-a5b6-663dded628a0","name":"dcs-test"\(pw)}}
            """
    }

    @Test("A task naming several backup files: MIGRATING, SUCCESS, a report, the union's digest")
    func severalFiles() throws {
        let folder = TestServer.Kind.redis70.fixtureFolder
        let files = ["hashes.rdb", "lists.rdb", "mixed.rdb", "expiry-dbs.rdb", "streams.rdb"].map { folder + "/" + $0 }
        let expected = try Self.referenceDigest(.redis70, files)
        let password = "task-pw-\(UInt32.random(in: 0...UInt32.max))"
        let target = try TestServer(.redis70, password: password)
        defer { target.stop() }
        let (root, sizes) = try bucket(files)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let task = root + "/task.json"
        try Data(taskBody(files, sizes: sizes, password: password).utf8).write(to: URL(fileURLWithPath: task))
        let (status, out, err) = try TestServer.run(try TestServer.rdbcatPath(), [
            "migrate", task, "--bucket-root", root, "--target", "127.0.0.1:\(target.port)", "--restore", "--no-progress",
        ])
        #expect(status == 0, "\(err)")
        #expect(!out.contains(password) && !err.contains(password))
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(out)")
        guard lines.count == 3 else { return }
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
        let second = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any]
        #expect(Set(first?.keys.map { $0 } ?? []) == ["id", "name", "status"])
        #expect(first?["status"] as? String == "MIGRATING" && first?["name"] as? String == "import-backups")
        #expect(second?["status"] as? String == "SUCCESS" && second?["id"] as? String == first?["id"] as? String)
        #expect((first?["id"] as? String)?.count == 32)
        let report = try JSONSerialization.jsonObject(with: Data(lines[2].utf8)) as? [String: Any]
        #expect(report?["status"] as? String == "SUCCESS")
        let target_ = report?["target_instance"] as? [String: Any]
        #expect(target_?["id"] as? String == "318ed365-3c1b-42d7-a5b6-663dded628a0" && target_?["name"] as? String == "dcs-test")
        let reported = ((report?["backup_files"] as? [String: Any])?["files"] as? [[String: Any]]) ?? []
        #expect(reported.count == files.count)
        #expect(reported.map { $0["keys"] as? Int ?? -1 } == [7, 11, 300, 36, 6])
        #expect(reported.allSatisfy { ($0["errors"] as? Int) == 0 && ($0["bytes_sent"] as? Int ?? 0) > 0 && $0["seconds"] != nil })
        #expect(try target.digest() == expected)
    }

    @Test("Invalid tasks are refused before anything is written, with the field named")
    func invalidTasks() throws {
        let folder = TestServer.Kind.redis70.fixtureFolder
        let files = [folder + "/hashes.rdb", folder + "/lists.rdb"]
        let target = try TestServer(.redis70)
        defer { target.stop() }
        let (root, sizes) = try bucket(files)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let rdbcat = try TestServer.rdbcatPath()
        func run(_ body: String) throws -> (Int32, [String: Any]?, String) {
            let task = root + "/task-\(UUID().uuidString).json"
            try Data(body.utf8).write(to: URL(fileURLWithPath: task))
            let (status, out, err) = try TestServer.run(rdbcat, ["migrate", task, "--bucket-root", root, "--target", "127.0.0.1:\(target.port)"])
            let json = try? JSONSerialization.jsonObject(with: Data((out.split(separator: "\n").first.map(String.init) ?? "").utf8)) as? [String: Any]
            return (status, json, err)
        }
        let valid = taskBody(files, sizes: sizes, password: nil)
        let cases: [(String, String)] = [
            (taskBody(files, sizes: sizes, password: nil, sizeOverride: [1: "12"]), "backup_files.files[1].size"),
            (valid.replacingOccurrences(of: "lists.rdb", with: "nothere.rdb"), "backup_files.files[1].file_name"),
            // An online_migration task (run by the sync engine) without its source.
            (valid.replacingOccurrences(of: "backupfile_import", with: "online_migration"), "source_instance"),
            (valid.replacingOccurrences(of: "backupfile_import", with: "tape_import"), "migration_type"),
            (valid.replacingOccurrences(of: "full_amount_migration", with: "some_migration"), "migration_method"),
            (valid.replacingOccurrences(of: #""task_name":"import-backups","#, with: ""), "task_name"),
            (valid.replacingOccurrences(of: "backups-2024", with: "other-bucket"), "backup_files.bucket_name"),
        ]
        for (body, field) in cases {
            let (status, json, err) = try run(body)
            #expect(status == 2, "\(field): \(err)")
            #expect(json?["error_field"] as? String == field, "\(err)")
            #expect(err.contains(field))
        }
        let (_, online, _) = try run(cases[2].0)
        #expect((online?["error_msg"] as? String)?.contains("required for online_migration") == true)
        #expect(try target.keyspace().isEmpty, "nothing may be written for an invalid task")
    }
}
