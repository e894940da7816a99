import Foundation
import RDBTestSupport
import Testing

/// Two services on one PostgreSQL store: every task runs once, on one of them; when one is killed, the
/// tasks it held finish on the other once their leases run out.
@Suite("Task service on PostgreSQL", .serialized, .ownThreads) struct SharedStoreTests {
    @Test("Ten tasks on two services run once each; a service killed mid-run leaves its tasks to the other")
    func twoServices() async throws {
        let postgres = try PostgresServer.shared()
        let store = postgres.url(database: try postgres.createDatabase(), password: "pg-password-never-logged")
        let file = try Fixtures.rdb(keys: 40_000, prefix: "t:")
        let bucket = try Fixtures.bucket([("dump.rdb", file.path)])
        defer { Fixtures.remove(file.path, bucket) }
        var targets: [String: TestServer] = [:]
        for i in 0..<5 { targets["instance-\(i)"] = try TestServer(.redis70) }
        var config = ServiceTests.config(targets: targets, bucket: bucket, lease: 2, workers: 2)
        config["store"] = store
        let a = try ServiceProcess(config: config)
        defer { a.kill9() }
        // The targets are frozen, so that `a` is killed holding the first task it runs, unfinished (a run on a
        // frozen target fails after 120 s without a reply). From the freeze to the kill the test blocks its thread
        // instead of awaiting: in a full parallel run the test process's cooperative threads were all held by
        // other tests' blocking calls for two minutes, the run failed before the kill, and the task ended FAILED.
        for (_, t) in targets { t.pause() }
        let ids = try Self.createAndKill(a, targets: targets.keys.sorted())
        for (_, t) in targets { t.resume() }
        let b = try ServiceProcess(config: config)
        defer { b.kill9() }
        var attempts: [Int] = []
        for id in ids {
            let t = try await b.wait("shared", id, seconds: 240)
            if t["status"] as? String != "SUCCESS" {
                // What both services logged about the task, first: a full run's output is long.
                let lines = (a.log + b.log).split(separator: "\n").filter { $0.contains(id) }.suffix(30)
                Issue.record("task \(id) ended \(t["status"] ?? "?"): \(t["failure"] ?? t)\n\(lines.joined(separator: "\n"))")
                try? (a.log + "\n----- b -----\n" + b.log).write(toFile: NSTemporaryDirectory() + "shared-store-\(id).log", atomically: true, encoding: .utf8)
            }
            attempts.append(t["attempts"] as? Int ?? 0)
        }
        // Every task ended once, recorded by one service; those `a` held when it died were run again on `b`.
        let logs = a.log + b.log
        for id in ids {
            #expect(logs.components(separatedBy: "task \(id): SUCCESS").count == 2, "task \(id) ended more than once")
        }
        #expect(attempts.contains { $0 >= 2 }, "no task was taken over from the killed service: \(attempts)")
        for (_, t) in targets { #expect(try t.digest() == file.digest) }
        let list = try await b.request(.GET, "/v2/shared/migration-tasks?limit=100").json
        #expect(list["count"] as? Int == 10)
        #expect(!a.log.contains("pg-password-never-logged") && !b.log.contains("pg-password-never-logged"))
    }

    /// Ten tasks, two per target, created through `a`; then `a` is killed as soon as it runs one. Blocking, so
    /// that no other test's hold on the cooperative threads stretches the time between the steps.
    /// With its PostgreSQL store gone, a request answers 500 with the API's error body after 10 s, and a service
    /// stopped by SIGTERM exits within the release's 10 s, not after the pool's minute of retries (65 s before,
    /// measured by hand; a request took as long and answered an empty 500).
    @Test("The PostgreSQL store gone: a request answers 500 in 10 s, SIGTERM ends the service in seconds")
    func shutdownWithTheStoreGone() throws {
        let postgres = try PostgresServer(stopWithProcess: true)
        defer { postgres.stop() }
        let store = postgres.url(database: try postgres.createDatabase(), password: "pg-password-never-logged")
        let service = try ServiceProcess(config: ["store": store, "instances": ["i1": ["address": "127.0.0.1:1"]], "workers": 1])
        defer { service.kill9() }
        postgres.stop()
        let asked = Date()
        let reply = try service.requestBlocking(.GET, "/v2/p1/migration-task/t1")
        let waited = Date().timeIntervalSince(asked)
        #expect(reply.status == 500 && reply.json["error_code"] as? String == "500", "\(reply.status): \(reply.body)")
        #expect((reply.json["error_msg"] as? String)?.contains("the task store did not answer within 10 s") == true, "\(reply.body)")
        #expect(waited < 25, "answered after \(Int(waited)) s")
        let started = Date()
        let status = service.terminate(seconds: 60)
        let took = Date().timeIntervalSince(started)
        #expect(status == 0, "\(service.log.suffix(3000))")
        #expect(took < 25, "exited \(Int(took)) s after SIGTERM")
        #expect(service.log.contains("releasing the tasks failed"), "\(service.log.suffix(3000))")
        #expect(!service.log.contains("pg-password-never-logged"))
    }

    static func createAndKill(_ a: ServiceProcess, targets: [String]) throws -> [String] {
        var ids: [String] = []
        for (n, id) in targets.enumerated() {
            for k in 0..<2 {
                ids.append(try a.createBlocking("shared", ServiceTests.importBody(["dump.rdb"], target: id, name: "t\(n)-\(k)")))
            }
        }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !a.log.contains("run 1 starts") { usleep(20_000) }
        #expect(a.log.contains("run 1 starts"))
        a.kill9()
        #expect(!a.log.contains("FAILED"), "a task failed on `a` before it was killed: \(a.log)")
        return ids
    }
}
