import Foundation
import RDBTestSupport
import Testing

/// `rdbcat serve` driven over HTTP, against real servers: the seed's two example bodies, invalid bodies,
/// stop, a task queued behind another on the same target, and passwords kept out of answers, logs and the
/// database.
@Suite("Task service", .serialized, .ownThreads) struct ServiceTests {
    static let targetID = "318ed365-3c1b-42d7-a5b6-663dded628a0"
    static let onlineTargetID = "4cd5dbb8-aacd-4603-b817-3e97d48c7a20"

    static func config(targets: [String: TestServer], bucket: String?, lease: Double = 3, workers: Int = 2) -> [String: Any] {
        var instances: [String: Any] = [:]
        for (id, s) in targets { instances[id] = ["address": "127.0.0.1:\(s.port)"] }
        var c: [String: Any] = ["instances": instances, "workers": workers, "lease_seconds": lease]
        c["buckets"] = bucket.map { ["bucket-lmz": ["path": $0]] } ?? [:]
        return c
    }

    /// The seed's backup-import example, verbatim but for the file list.
    static func importBody(_ files: [String], target: String = targetID, name: String = "lmd-test") -> String {
        let list = files.map { "{\"file_name\":\"\($0)\"}" }.joined(separator: ",")
        return """
            {"backup_files":{"bucket_name":"bucket-lmz","file_source":"self_build_obs","files":[\(list)]},
             "migration_method":"full_amount_migration","migration_type":"backupfile_import",
             "target_instance":{"id":"\(target)"},"task_name":"\(name)"}
            """
    }

    /// An online migration of `source` into the online target.
    static func onlineBody(_ source: TestServer, method: String = "incremental_migration") -> String {
        """
        {"task_name":"inc","migration_type":"online_migration","migration_method":"\(method)",
         "source_instance":{"addrs":"127.0.0.1:\(source.port)"},"target_instance":{"id":"\(onlineTargetID)"}}
        """
    }

    @Test("The seed's backup import (an AOF in the bucket): MIGRATING, then SUCCESS with the source's digest")
    func backupImport() async throws {
        let aof = try Fixtures.aof(keys: 2000)
        let bucket = try Fixtures.bucket([("appendonly03.aof", aof.path)])
        defer { Fixtures.remove(aof.path, bucket) }
        // The target's password comes from the environment variable the config names.
        let target = try TestServer(.redis70, password: "from-the-environment")
        setenv("RDBCAT_TEST_TARGET_PASSWORD", "from-the-environment", 1)
        var config = Self.config(targets: [Self.targetID: target], bucket: bucket)
        config["instances"] = [Self.targetID: ["address": "127.0.0.1:\(target.port)", "password_env": "RDBCAT_TEST_TARGET_PASSWORD"]]
        let service = try ServiceProcess(config: config)
        defer { service.kill9() }
        let id = try await service.create("p1", Self.importBody(["appendonly03.aof"]))
        let task = try await service.wait("p1", id)
        #expect(task["status"] as? String == "SUCCESS", "\(task)")
        #expect(try target.digest() == aof.digest)
        #expect(task["phase"] as? String == "done")
        #expect(task[path: "report.status"] as? String == "SUCCESS")
        #expect(task[path: "report.id"] as? String == id)
        #expect(task[path: "progress.files_done"] as? Int == 1)
        #expect((task["finished_at"] as? String)?.count == 19)
        // Listed, with the list fields of the cloud API.
        let list = try await service.request(.GET, "/v2/p1/migration-tasks?limit=5").json
        #expect(list["count"] as? Int == 1)
        let first = (list["migration_tasks"] as? [[String: Any]])?.first
        #expect(first?["task_id"] as? String == id)
        #expect(first?["data_source"] as? String == "bucket-lmz")
        // Another project sees nothing.
        #expect(try await service.request(.GET, "/v2/p2/migration-task/\(id)").status == 404)
        #expect(try await service.request(.GET, "/v2/p2/migration-tasks").json["count"] as? Int == 0)
        // Metrics count it.
        let metrics = try await service.request(.GET, "/metrics").body
        #expect(metrics.contains("rdbcat_tasks{status=\"SUCCESS\"} 1"), "\(metrics)")
        #expect(metrics.contains("rdbcat_task_runs_ended_total{status=\"SUCCESS\"} 1"))
        // A finished task can be deleted; then it is gone.
        #expect(try await service.request(.DELETE, "/v2/p1/migration-task/\(id)").status == 204)
        #expect(try await service.request(.GET, "/v2/p1/migration-task/\(id)").status == 404)
    }

    @Test("The seed's online migration (full): SUCCESS, the source's digest; its password never shown, logged or stored in clear")
    func onlineMigration() async throws {
        let password = "s3cr3t-Pa55word-for-the-source"
        let targetPassword = "t4rget-Pa55word-from-the-body"
        let source = try TestServer(.redis70, password: password)
        try Fixtures.fill(source, keys: 1500)
        // The target's password comes from the body (the config has none).
        let target = try TestServer(.redis70, password: targetPassword)
        let service = try ServiceProcess(config: Self.config(targets: [Self.onlineTargetID: target], bucket: nil))
        defer { service.kill9() }
        let body = """
            {"task_name":"lmd-test","description":"Test","migration_type":"online_migration",
             "migration_method":"full_amount_migration","network_type":"vpc",
             "source_instance":{"addrs":"127.0.0.1:\(source.port)","password":"\(password)"},
             "target_instance":{"name":"dcs-test","id":"\(Self.onlineTargetID)","password":"\(targetPassword)"}}
            """
        let id = try await service.create("p1", body)
        let task = try await service.wait("p1", id)
        #expect(task["status"] as? String == "SUCCESS", "\(task)")
        #expect(try target.digest() == source.digest())
        let shown = try await service.request(.GET, "/v2/p1/migration-task/\(id)").body
        #expect(task[path: "request.source_instance.password"] as? String == "******")
        #expect(task[path: "request.target_instance.password"] as? String == "******")
        for secret in [password, targetPassword] {
            #expect(!shown.contains(secret))
            #expect(!service.log.contains(secret))
            for f in ["tasks.sqlite", "tasks.sqlite-wal"] {
                if let data = FileManager.default.contents(atPath: service.dir + "/" + f) {
                    #expect(data.range(of: Data(secret.utf8)) == nil, "\(f) holds a password in clear")
                }
            }
        }
    }

    @Test("Invalid bodies get 400 naming the field, and nothing is created")
    func invalidBodies() async throws {
        let target = try TestServer(.redis70)
        let service = try ServiceProcess(config: Self.config(targets: [Self.targetID: target], bucket: "/nonexistent"))
        defer { service.kill9() }
        let cases: [(String, String)] = [
            (Self.importBody(["a.rdb"]).replacingOccurrences(of: "backupfile_import", with: "file_import"), "migration_type"),
            (Self.importBody(["a.rdb"]).replacingOccurrences(of: "\"backup_files\":", with: "\"x\":"), "backup_files"),
            (#"{"task_name":"t","migration_type":"online_migration","migration_method":"full_amount_migration","target_instance":{"id":"\#(Self.targetID)"}}"#, "source_instance"),
            (Self.importBody(["a.rdb"], target: "no-such-instance"), "target_instance.id"),
            (Self.importBody(["a.rdb"]).replacingOccurrences(of: "bucket-lmz", with: "other-bucket"), "backup_files.bucket_name"),
            (Self.importBody(["../etc/passwd"]), "backup_files.files[0].file_name"),
            (Self.importBody(["a.rdb"]).replacingOccurrences(of: "full_amount_migration", with: "incremental_migration"), "migration_method"),
            ("[1,2]", ""),
            ("{not json", ""),
        ]
        for (body, field) in cases {
            let r = try await service.request(.POST, "/v2/p1/migration-task", body: body)
            #expect(r.status == 400, "\(body)")
            #expect(r.json["error_field"] as? String == field, "\(r.body)")
            #expect((r.json["error_msg"] as? String)?.isEmpty == false)
        }
        #expect(try await service.request(.POST, "/v2/bad%20project/migration-task", body: Self.importBody(["a.rdb"])).status == 400)
        #expect(try await service.request(.GET, "/v2/p1/migration-tasks?limit=0").status == 400)
        #expect(try await service.request(.GET, "/v2/p1/migration-tasks").json["count"] as? Int == 0)
        #expect(try target.keyspace().isEmpty)
    }

    @Test("A missing file fails the task with the reason; the OpenAPI document names the configured instances")
    func missingFileAndDocument() async throws {
        let target = try TestServer(.redis70)
        let bucket = try Fixtures.bucket([])
        defer { Fixtures.remove(bucket) }
        let service = try ServiceProcess(config: Self.config(targets: [Self.targetID: target], bucket: bucket))
        defer { service.kill9() }
        let id = try await service.create("p1", Self.importBody(["nope.rdb"]))
        let task = try await service.wait("p1", id)
        #expect(task["status"] as? String == "FAILED")
        #expect((task["failure"] as? String)?.contains("nope.rdb") == true, "\(task)")
        let doc = try await service.request(.GET, "/openapi.json")
        #expect(doc.status == 200)
        #expect(doc.json["openapi"] as? String == "3.1.0")
        #expect(doc.body.contains(Self.targetID) && doc.body.contains("bucket-lmz"))
    }

    @Test("Stop: an incremental migration ends TERMINATED; a task queued behind it on the same target waits, then is stopped at once")
    func stopAndQueue() async throws {
        let source = try TestServer(.redis70)
        try Fixtures.fill(source, keys: 300)
        let target = try TestServer(.redis70)
        let bucket = try Fixtures.bucket([])
        defer { Fixtures.remove(bucket) }
        let service = try ServiceProcess(config: Self.config(targets: [Self.onlineTargetID: target], bucket: bucket))
        defer { service.kill9() }
        let id = try await service.create("p1", Self.onlineBody(source))
        _ = try await service.wait("p1", id, until: { $0["phase"] as? String == "incremental" })
        // Writes on the source reach the target while it runs.
        try source.command("SET", "live-key", "live-value")
        try await Fixtures.waitForKey(target, "live-key")
        #expect(try target.command("GET", "live-key").text == "live-value")
        // The replication lag is a metric while it runs.
        let metrics = try await service.request(.GET, "/metrics").body
        #expect(metrics.contains("rdbcat_replication_lag_bytes{task_id=\"\(id)\"}"), "\(metrics)")
        #expect(metrics.contains("rdbcat_tasks_running 1"))
        // A second task on the same target waits (queued) while the first holds it.
        let queued = try await service.create("p1", Self.importBody(["x.rdb"], target: Self.onlineTargetID, name: "queued"))
        try await Task.sleep(for: .seconds(1))
        let q = try await service.task("p1", queued)
        #expect(q["status"] as? String == "MIGRATING" && q["phase"] as? String == "queued", "\(q)")
        let stopQueued = try await service.request(.POST, "/v2/p1/migration-task/\(queued)/stop")
        #expect(stopQueued.json["status"] as? String == "TERMINATED")
        // The running one stops cleanly.
        #expect(try await service.request(.DELETE, "/v2/p1/migration-task/\(id)").status == 409)
        let stop = try await service.request(.POST, "/v2/p1/migration-task/\(id)/stop")
        #expect(stop.status == 200)
        let task = try await service.wait("p1", id)
        #expect(task["status"] as? String == "TERMINATED", "\(task)")
        #expect(try target.digest() == source.digest())
    }
}
