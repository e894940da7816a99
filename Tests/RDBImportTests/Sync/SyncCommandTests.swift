import Foundation
import RDBImport
import RDBTestSupport
import RedisWire
import Testing

/// The `rdbcat sync` and `rdbcat migrate` (online_migration) command lines against live servers.
@Suite("rdbcat sync", .serialized)
struct SyncCommandTests {
    /// Starts rdbcat; returns the process and its output pipes.
    static func start(_ args: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        try Spawn.launch(try TestServer.rdbcatPath(), args, environment: environment)
    }

    static func finish(_ p: Process, _ out: Pipe, _ err: Pipe, seconds: Double = 60) throws -> (Int32, String, String) {
        try Spawn.collect(p, out, err, seconds: seconds)
    }

    @Test("sync prints a JSON status line a second, stops cleanly on SIGINT with exit 0; secrets stay out of the output")
    func statusLinesAndSigint() throws {
        let source = try TestServer(.redis70, arguments: SyncFixtures.sourceArguments(diskless: true), password: "srcpw",
                                    dumpFile: TestServer.Kind.redis70.fixtureFolder + "/mixed.rdb")
        defer { source.stop() }
        let target = try TestServer(.redis70, password: "dstpw")
        defer { target.stop() }
        let (p, out, err) = try Self.start(
            ["sync", "--from", "redis://127.0.0.1:\(source.port)", "--from-password-env", "SRC_PW",
             "--to", "redis://127.0.0.1:\(target.port)", "--password-env", "DST_PW"],
            environment: ["SRC_PW": "srcpw", "DST_PW": "dstpw"])
        try SyncFixtures.write(source, rounds: 200)
        sleep(2)
        p.interrupt()
        let (status, stdout, stderr) = try Self.finish(p, out, err)
        #expect(status == 0, "\(stderr)")
        let lines = stdout.split(separator: "\n").map(String.init)
        #expect(lines.count >= 3, "\(stdout)")
        for line in lines.dropLast() {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(Set(obj?.keys.map { $0 } ?? []) == ["phase", "source_offset", "applied_offset", "lag_bytes", "keys", "commands"], "\(line)")
        }
        let final = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any]
        #expect(final?["status"] as? String == "SUCCESS")
        #expect(final?["lag_bytes"] as? Int == 0)
        #expect(!stdout.contains("srcpw") && !stdout.contains("dstpw") && !stderr.contains("srcpw") && !stderr.contains("dstpw"))
        #expect(try source.digest() == target.digest())
    }

    @Test("A second SIGINT ends a sync at once (exit 130) while the first one's stop waits on a target that holds its replies")
    func secondSignalEndsAtOnce() throws {
        let source = try TestServer(.redis70, arguments: SyncFixtures.sourceArguments(diskless: true))
        defer { source.stop() }
        let target = try TestServer(.redis70)
        defer { target.stop() }
        let (p, out, err) = try Self.start(["sync", "--from", "redis://127.0.0.1:\(source.port)", "--to", "redis://127.0.0.1:\(target.port)"])
        try SyncFixtures.write(source, rounds: 20)
        sleep(1)
        try target.command("CLIENT", "PAUSE", "30000", "WRITE")
        defer { _ = try? target.command("CLIENT", "UNPAUSE") }
        try SyncFixtures.write(source, rounds: 5)
        usleep(500_000)
        p.interrupt()
        usleep(500_000)
        #expect(p.isRunning, "the first signal's stop waits for the held replies")
        let started = Date()
        p.interrupt()
        let (status, _, stderr) = try Self.finish(p, out, err, seconds: 10)
        #expect(status == 130, "\(stderr)")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(stderr.contains("ending at once"), "\(stderr)")
    }

    @Test("migrate runs online_migration tasks: full_amount_migration ends SUCCESS; a refused source ends FAILED with the reason")
    func migrateOnline() throws {
        let source = try TestServer(.valkey81, arguments: SyncFixtures.sourceArguments(diskless: false), password: "srcpw",
                                    dumpFile: TestServer.Kind.valkey81.fixtureFolder + "/mixed.rdb")
        defer { source.stop() }
        let target = try TestServer(.valkey81)
        defer { target.stop() }
        let dir = NSTemporaryDirectory() + "rdbcat-online-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func task(_ method: String, password: String) throws -> String {
            let path = dir + "/\(method)-\(password).json"
            let body = """
                {"task_name":"t1","migration_type":"online_migration","migration_method":"\(method)","network_type":"vpc",
                 "source_instance":{"addrs":"127.0.0.1:\(source.port)","password":"\(password)"},
                 "target_instance":{"id":"4cd5dbb8","name":"dcs-test"}}
                """
            try body.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let (st, out, err) = try TestServer.run(try TestServer.rdbcatPath(), ["migrate", try task("full_amount_migration", password: "srcpw"), "--target", "127.0.0.1:\(target.port)"])
        #expect(st == 0, "\(err)")
        let states = out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(states.first?["status"] as? String == "MIGRATING")
        #expect(states.dropFirst().first?["status"] as? String == "SUCCESS")
        #expect(states.last?["migration_type"] as? String == "online_migration")
        #expect(!out.contains("srcpw"))
        #expect(try source.digest() == target.digest())

        let (st2, out2, err2) = try TestServer.run(try TestServer.rdbcatPath(), ["migrate", try task("incremental_migration", password: "wrong"), "--target", "127.0.0.1:\(target.port)"])
        #expect(st2 == 1)
        #expect(out2.contains("\"FAILED\""))
        #expect(err2.contains("refused the login"), "\(err2)")
        #expect(!out2.contains("wrong") && !err2.contains("wrong"))
    }
}
