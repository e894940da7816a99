import Foundation
import RDBTestSupport
import Testing

/// Tasks survive their service: killed (SIGKILL) in the middle of an import, or stopped gracefully
/// (SIGTERM), a service started again on the same store finishes the task with the right digest.
@Suite("Task service restarts", .serialized, .ownThreads) struct ResumeTests {
    static let targetID = ServiceTests.targetID

    /// Two RDB files in the bucket. The service reaches the target through a proxy that holds what it sends
    /// from the first key of the second file on, so the task is surely in the middle of that file; then the
    /// service is interrupted (`interrupt`), the proxy lets everything through, and the service starts again.
    func resume(_ interrupt: (ServiceProcess, DroppingProxy) -> Void, expectAttempts: Int) async throws {
        let small = try Fixtures.rdb(keys: 300, prefix: "a:")
        // More keys than the importer keeps in flight (20,000 commands): held, its decoding waits mid-file.
        let big = try Fixtures.rdb(keys: 60_000, prefix: "b:")
        let union = try TestServer(.redis70)
        defer { union.stop() }
        // The digest of both files loaded (their keys have different names).
        for f in [small.path, big.path] {
            let (status, _, err) = try TestServer.run(try TestServer.rdbcatPath(), ["import", f, "--to", union.url, "--no-progress"])
            #expect(status == 0, "\(err)")
        }
        let expected = try union.digest()
        let bucket = try Fixtures.bucket([("first.rdb", small.path), ("second.rdb", big.path)])
        defer { Fixtures.remove(small.path, big.path, bucket) }
        let target = try TestServer(.redis70)
        // Keys of the second file start with "b:": held from the first one sent.
        let proxy = try DroppingProxy(upstreamPort: target.port, holdAt: Array("\r\nb:".utf8))
        defer { proxy.stop() }
        var config = ServiceTests.config(targets: [:], bucket: bucket, lease: 2)
        config["instances"] = [Self.targetID: ["address": "127.0.0.1:\(proxy.port)"]]
        let service = try ServiceProcess(config: config)
        defer { service.kill9() }
        let id = try await service.create("p1", ServiceTests.importBody(["first.rdb", "second.rdb"]))
        let running = try await service.wait("p1", id, seconds: 120, until: {
            proxy.isHolding && ($0[path: "progress.files_done"] as? Int ?? 0) >= 1 || $0["status"] as? String != "MIGRATING"
        })
        #expect(running["status"] as? String == "MIGRATING", "\(running)")
        #expect(try target.keyspace()[0] == 650, "the first file's 650 keys, none of the second's")
        interrupt(service, proxy)
        proxy.release()
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
        // The import waits for the held answers: it goes on once the service has begun shutting down.
        try await resume({ service, proxy in
            service.signal(SIGTERM)
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, !service.log.contains("shutting down: 1 running task stops") { usleep(20_000) }
            proxy.release()
            #expect(service.waitExit() == 0)
        }, expectAttempts: 2)
    }

    @Test("A stop in the middle of an import: it ends between keys, TERMINATED, with a reason; keys before the stop are whole")
    func stopImport() async throws {
        let file = try Fixtures.rdb(keys: 60_000, prefix: "b:")
        let bucket = try Fixtures.bucket([("dump.rdb", file.path)])
        defer { Fixtures.remove(file.path, bucket) }
        let target = try TestServer(.redis70)
        // Held from the first key on: the stop comes while the import waits for answers.
        let proxy = try DroppingProxy(upstreamPort: target.port, holdAt: Array("\r\nb:".utf8))
        defer { proxy.stop() }
        var config = ServiceTests.config(targets: [:], bucket: bucket)
        config["instances"] = [Self.targetID: ["address": "127.0.0.1:\(proxy.port)"]]
        let service = try ServiceProcess(config: config)
        defer { service.kill9() }
        let id = try await service.create("p1", ServiceTests.importBody(["dump.rdb"]))
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !proxy.isHolding { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await service.request(.POST, "/v2/p1/migration-task/\(id)/stop").json["status"] as? String == "MIGRATING")
        _ = try await service.wait("p1", id, until: { $0["stop_requested"] as? Bool == true && $0["phase"] as? String == "stopping" })
        proxy.release()
        let task = try await service.wait("p1", id)
        #expect(task["status"] as? String == "TERMINATED", "\(task)")
        #expect((task["failure"] as? String)?.contains("stopped on request") == true, "\(task)")
        let written = try target.keyspace()[0] ?? 0
        #expect(written > 0 && written < 60_000 + 350, "\(written) keys")
        #expect(task[path: "report.totals.keys_imported"] as? Int == written)
    }

    /// An incremental online migration of a source holding `keys` keys, run by a service of its own (lease 2 s),
    /// past its snapshot.
    static func incrementalRunning(keys: Int) async throws -> (source: TestServer, target: TestServer, service: ServiceProcess, id: String) {
        let source = try TestServer(.redis70)
        try Fixtures.fill(source, keys: keys)
        let target = try TestServer(.redis70)
        let service = try ServiceProcess(config: ServiceTests.config(targets: [ServiceTests.onlineTargetID: target], bucket: nil, lease: 2))
        let id = try await service.create("p1", ServiceTests.onlineBody(source))
        _ = try await service.wait("p1", id, until: { $0["phase"] as? String == "incremental" })
        return (source, target, service, id)
    }

    /// Stops the task through the API: it ends TERMINATED, the target equal to the source.
    static func stopEqual(_ service: ServiceProcess, _ id: String, _ source: TestServer, _ target: TestServer,
                          sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(try await service.request(.POST, "/v2/p1/migration-task/\(id)/stop").status == 200, sourceLocation: sourceLocation)
        let done = try await service.wait("p1", id)
        #expect(done["status"] as? String == "TERMINATED", sourceLocation: sourceLocation)
        #expect(try target.digest() == source.digest(), sourceLocation: sourceLocation)
    }

    @Test("SIGKILL during an incremental migration: the next start continues from the stored checkpoint (a partial resync), writes made meanwhile arrive")
    func onlineResumes() async throws {
        let (source, target, service, id) = try await Self.incrementalRunning(keys: 500)
        defer { service.kill9() }
        try source.command("SET", "before-kill", "1")
        try await Fixtures.waitForKey(target, "before-kill")
        // Let a renewal store the checkpoint past that write, then kill the service.
        try await Task.sleep(for: .seconds(1.5))
        service.kill9()
        try source.command("SET", "while-down", "2")
        try service.start()
        try await Fixtures.waitForKey(target, "while-down")
        let t = try await service.task("p1", id)
        #expect(t["attempts"] as? Int == 2)
        let stats = try source.command("INFO", "stats").text ?? ""
        #expect(stats.contains("sync_partial_ok:1"), "the second run did not continue with PSYNC: \(stats)")
        try await Self.stopEqual(service, id, source, target)
    }

    @Test("The store's write lock held elsewhere for longer than the lease: never two runs of the task at once; a renewal that fails stops the run as lost, and the task is claimed again and continues once the store answers")
    func leaseNotRenewed() async throws {
        let (source, target, service, id) = try await Self.incrementalRunning(keys: 200)
        defer { service.kill9() }
        // Another process holds the store's write lock for 24 s: the service's writes wait out its busy timeout
        // (10 s) each and fail, a renewal among them.
        let locker = Process()
        locker.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        locker.arguments = ["python3", "-c", """
            import sqlite3, time
            c = sqlite3.connect("\(service.dir)/tasks.sqlite", timeout=30, isolation_level=None)
            c.execute("BEGIN EXCLUSIVE")
            time.sleep(24)
            c.execute("COMMIT")
            """]
        try locker.run()
        locker.waitUntilExit()
        #expect(locker.terminationStatus == 0)
        let again = try await service.wait("p1", id, seconds: 60, until: { ($0["attempts"] as? Int ?? 0) >= 2 && $0["phase"] as? String == "incremental" })
        #expect(again["status"] as? String == "MIGRATING")
        try source.command("SET", "after-lock", "1")
        try await Fixtures.waitForKey(target, "after-lock")
        let log = service.log
        #expect(log.contains("its lease was not renewed for 2 s: its run here stops"), "\(log)")
        // Each run starts after the one before has stopped: "run N starts" lines and the lost lease in order.
        let starts = log.split(separator: "\n").filter { $0.contains("run ") && $0.contains(" starts") }
        #expect(starts.count == 2, "\(starts)")
        if let lost = log.range(of: "its lease was not renewed"), let second = log.range(of: "run 2 starts") {
            #expect(lost.lowerBound < second.lowerBound)
        }
        // Two runs, two attempts: a claim taken back while run 1 still ran (the lock gone, its stop under way)
        // does not count.
        #expect(try await service.task("p1", id)["attempts"] as? Int == 2, "\(log)")
        try await Self.stopEqual(service, id, source, target)
    }
}
