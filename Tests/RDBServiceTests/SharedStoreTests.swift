import Foundation
import RDBTestSupport
import Testing

/// Two services on one PostgreSQL store: every task runs once, on one of them; when one is killed, the
/// tasks it held finish on the other once their leases run out.
@Suite("Task service on PostgreSQL", .serialized) struct SharedStoreTests {
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
        // The targets are frozen until `a` runs a task: then it is killed at once, holding it unfinished. `b`
        // starts once they are thawed (an import `b` began on a frozen target failed, in 2 of 4 full runs, with no
        // reply to its first command within 120 s although the target was resumed within seconds: not reproduced
        // outside the suite, noted as open).
        for (_, t) in targets { t.pause() }
        // Ten tasks, two per target.
        var ids: [String] = []
        for (n, id) in targets.keys.sorted().enumerated() {
            for k in 0..<2 {
                ids.append(try await a.create("shared", ServiceTests.importBody(["dump.rdb"], target: id, name: "t\(n)-\(k)")))
            }
        }
        // Kill `a` as soon as it runs a task.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !a.log.contains("run 1 starts") { try await Task.sleep(for: .milliseconds(20)) }
        #expect(a.log.contains("run 1 starts"))
        a.kill9()
        for (_, t) in targets { t.resume() }
        let b = try ServiceProcess(config: config)
        defer { b.kill9() }
        var attempts: [Int] = []
        for id in ids {
            let t = try await b.wait("shared", id, seconds: 240)
            #expect(t["status"] as? String == "SUCCESS", "\(t)")
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
}
