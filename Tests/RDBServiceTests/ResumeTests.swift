import Foundation
import RDBTestSupport
import Testing

/// Tasks survive their service: killed (SIGKILL) in the middle of an import, or stopped gracefully
/// (SIGTERM), a service started again on the same store finishes the task with the right digest.
@Suite("Task service restarts", .serialized) struct ResumeTests {
    static let targetID = ServiceTests.targetID

    /// Two RDB files in the bucket. While the second one is imported the target is frozen (SIGSTOP), so the
    /// task is surely in the middle of it; then the service is interrupted (`interrupt`), the target goes on,
    /// and the service is started again.
    func resume(_ interrupt: (ServiceProcess, TestServer) -> Void, expectAttempts: Int) async throws {
        let small = try Fixtures.rdb(keys: 300, prefix: "a:")
        let big = try Fixtures.rdb(keys: 120_000, prefix: "b:")
        let union = try TestServer(.redis70)
        defer { union.stop() }
        // The digest of both files loaded (their keys have different names).
        for f in [small.path, big.path] {
            let (status, _, err) = try TestServer.run(try TestServer.rdbcatPath(), ["import", f, "--to", union.url, "--no-progress"])
            #expect(status == 0, "\(err)")
        }
        let expected = try union.digest()
        let bucket = try Fixtures.bucket([("first.rdb", small.path), ("second.rdb", big.path)])
        let target = try TestServer(.redis70)
        let service = try ServiceProcess(config: ServiceTests.config(targets: [Self.targetID: target], bucket: bucket, lease: 2))
        defer { service.kill9() }
        let id = try await service.create("p1", ServiceTests.importBody(["first.rdb", "second.rdb"]))
        // The first file holds 650 keys: past 2000, the second one is being imported.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, (try target.keyspace()[0] ?? 0) < 2000 { usleep(10_000) }
        target.pause()
        let running = try await service.wait("p1", id, seconds: 30, until: { ($0[path: "progress.files_done"] as? Int ?? 0) >= 1 })
        #expect(running["status"] as? String == "MIGRATING", "\(running)")
        interrupt(service, target)
        target.resume()
        try service.start()
        let task = try await service.wait("p1", id, seconds: 180)
        #expect(task["status"] as? String == "SUCCESS", "\(task)")
        #expect(task["attempts"] as? Int == expectAttempts)
        // The second run started past the first file (acknowledged whole before the interruption).
        #expect(task[path: "report.backup_files.resumed_past"] as? Int == 1, "\(task["report"] ?? "")")
        #expect(try target.digest() == expected)
    }

    @Test("SIGKILL in the middle of an import: the next start takes the task over when its lease runs out; SUCCESS, the digest of the files")
    func killed() async throws {
        try await resume({ service, _ in service.kill9() }, expectAttempts: 2)
    }

    @Test("SIGTERM: imports stop between keys, tasks are released and resumed at the next start; SUCCESS, the digest of the files")
    func terminated() async throws {
        // The import waits for the frozen target's answers: it goes on once SIGTERM is sent.
        try await resume({ service, target in
            service.signal(SIGTERM)
            target.resume()
            #expect(service.waitExit() == 0)
        }, expectAttempts: 2)
    }

    @Test("SIGKILL during an incremental migration: the next start continues from the stored checkpoint (a partial resync), writes made meanwhile arrive")
    func onlineResumes() async throws {
        let source = try TestServer(.redis70)
        try Fixtures.fill(source, keys: 500)
        let target = try TestServer(.redis70)
        let service = try ServiceProcess(config: ServiceTests.config(targets: [ServiceTests.onlineTargetID: target], bucket: nil, lease: 2))
        defer { service.kill9() }
        let body = """
            {"task_name":"inc","migration_type":"online_migration","migration_method":"incremental_migration",
             "source_instance":{"addrs":"127.0.0.1:\(source.port)"},"target_instance":{"id":"\(ServiceTests.onlineTargetID)"}}
            """
        let id = try await service.create("p1", body)
        _ = try await service.wait("p1", id, until: { $0["phase"] as? String == "incremental" })
        try source.command("SET", "before-kill", "1")
        try await waitForKey(target, "before-kill")
        // Let a renewal store the checkpoint past that write, then kill the service.
        try await Task.sleep(for: .seconds(1.5))
        service.kill9()
        try source.command("SET", "while-down", "2")
        try service.start()
        try await waitForKey(target, "while-down")
        let t = try await service.task("p1", id)
        #expect(t["attempts"] as? Int == 2)
        let stats = try source.command("INFO", "stats").text ?? ""
        #expect(stats.contains("sync_partial_ok:1"), "the second run did not continue with PSYNC: \(stats)")
        #expect(try await service.request(.POST, "/v2/p1/migration-task/\(id)/stop").status == 200)
        let done = try await service.wait("p1", id)
        #expect(done["status"] as? String == "TERMINATED")
        #expect(try target.digest() == source.digest())
    }

    func waitForKey(_ server: TestServer, _ key: String, seconds: Double = 30) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try server.command("EXISTS", key) == .integer(1) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("\(key) did not arrive within \(seconds) s")
    }
}
