import Foundation
import RDBTestSupport
import Testing

/// Tasks survive their service: killed (SIGKILL) in the middle of an import, or stopped gracefully
/// (SIGTERM), a service started again on the same store finishes the task with the right digest.
@Suite("Task service restarts", .serialized) struct ResumeTests {
    static let targetID = ServiceTests.targetID

    /// Two RDB files in the bucket; the service is stopped (`interrupt`) while it imports the second one.
    func resume(_ interrupt: (ServiceProcess) -> Void, expectAttempts: Int) async throws {
        let small = try Fixtures.rdb(keys: 300, prefix: "a:")
        let big = try Fixtures.rdb(keys: 120_000, prefix: "b:")
        let union = try TestServer(.redis70)
        defer { union.stop() }
        // The digest of both files loaded (their keys have different names).
        for f in [small.path, big.path] {
            let (status, _, err) = try TestServer.run(try TestServer.rdbcatPath(), ["import", f, "--to", union.url, "--replace", "--no-progress"])
            #expect(status == 0, "\(err)")
        }
        let expected = try union.digest()
        let bucket = try Fixtures.bucket([("first.rdb", small.path), ("second.rdb", big.path)])
        let target = try TestServer(.redis70)
        let service = try ServiceProcess(config: ServiceTests.config(targets: [Self.targetID: target], bucket: bucket, lease: 2))
        defer { service.kill9() }
        let id = try await service.create("p1", ServiceTests.importBody(["first.rdb", "second.rdb"]))
        // Into the second file, some of its keys read.
        let running = try await service.wait("p1", id, seconds: 60, until: {
            ($0[path: "progress.files_done"] as? Int ?? 0) >= 1 && ($0[path: "progress.keys_read"] as? Int ?? 0) > 400
                || $0["status"] as? String != "MIGRATING"
        })
        #expect(running["status"] as? String == "MIGRATING", "the import ended before it could be interrupted: \(running)")
        interrupt(service)
        let partial = try target.keyspace()[0] ?? 0
        try service.start()
        let task = try await service.wait("p1", id, seconds: 180)
        #expect(task["status"] as? String == "SUCCESS", "\(task)")
        #expect(task["attempts"] as? Int == expectAttempts)
        // The second run started past the first file (imported whole before the interruption).
        #expect(task[path: "report.backup_files.resumed_past"] as? Int == 1, "\(task["report"] ?? "")")
        #expect(try target.digest() == expected, "\(partial) keys were there after the interruption")
    }

    @Test("SIGKILL in the middle of an import: the next start takes the task over when its lease runs out; SUCCESS, the digest of the files")
    func killed() async throws {
        try await resume({ $0.kill9() }, expectAttempts: 2)
    }

    @Test("SIGTERM: imports stop between keys, tasks are released and resumed at the next start; SUCCESS, the digest of the files")
    func terminated() async throws {
        try await resume({ #expect($0.terminate() == 0) }, expectAttempts: 2)
    }
}
