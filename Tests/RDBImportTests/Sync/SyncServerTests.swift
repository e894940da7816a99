import RDBTestSupport
import Foundation
import NIOCore
import RDBImport
import RDBReplication
import RedisWire
import Testing

/// `SyncEngine` against real sources and targets on loopback: the snapshot, the stream under writes,
/// a killed replica link, a backlog too small to continue, a source without PSYNC, a checkpoint.
@Suite("Sync from live sources", .serialized)
struct SyncServerTests {
    static let cases: [(TestServer.Kind, Bool, String?)] = [
        (.redis62, false, nil), (.redis62, true, "s3cret"),
        (.redis70, false, "s3cret"), (.redis70, true, nil),
        (.valkey81, false, nil), (.valkey81, true, "s3cret"),
    ]

    static func describe(_ r: SyncReport) -> Comment {
        Comment(rawValue: "\(r.status) failure=\(r.failure ?? "-") warnings=\(r.warnings.prefix(5)) problems=\(r.imports.flatMap(\.problems).prefix(5).map { "\($0.kind) \($0.keyText): \($0.message)" })")
    }

    @Test("Snapshot and stream under writes: the target's digest equals the source's", arguments: 0..<6)
    func snapshotAndStream(index: Int) throws {
        let (kind, diskless, password) = Self.cases[index]
        let source = try TestServer(kind, arguments: SyncFixtures.sourceArguments(diskless: diskless), password: password,
                                    dumpFile: kind.fixtureFolder + "/mixed.rdb")
        defer { source.stop() }
        let target = try TestServer(kind)
        defer { target.stop() }
        // Writes before, during and after the snapshot.
        try SyncFixtures.write(source, rounds: 30, pause: 0)
        let sync = RunningSync(source: source.endpoint, target: target.endpoint)
        try SyncFixtures.write(source, rounds: 300)
        let r = try sync.stopCaughtUp(source, target)
        #expect(r.fullSyncs == 1)
        #expect(r.final.commands > 300)
        #expect(r.final.appliedOffset == r.final.sourceOffset)
        // Relative TTLs (6.2 sends them as they are) arrive absolute: not stretched by the lag.
        let ttlSource = try source.command("PTTL", "w:1:p")
        let ttlTarget = try target.command("PTTL", "w:1:p")
        if case .integer(let s) = ttlSource, case .integer(let t) = ttlTarget {
            #expect(t <= s + 100 && t > s - 60_000, "PTTL source \(s) target \(t)")
        }
        #expect(sync.statuses.contains { $0.phase == .incremental })
    }

    @Test("A killed replica link continues with PSYNC (no second full sync)", arguments: [TestServer.Kind.redis62, .redis70, .valkey81])
    func killedLinkContinues(kind: TestServer.Kind) throws {
        let source = try TestServer(kind, arguments: SyncFixtures.sourceArguments(diskless: true), dumpFile: kind.fixtureFolder + "/mixed.rdb")
        defer { source.stop() }
        let target = try TestServer(kind)
        defer { target.stop() }
        let sync = RunningSync(source: source.endpoint, target: target.endpoint)
        try SyncFixtures.write(source, rounds: 100)
        try sync.waitCaughtUp(source)
        for _ in 0..<2 {
            try source.command("CLIENT", "KILL", "TYPE", "replica")
            try SyncFixtures.write(source, rounds: 100, pause: 500)
        }
        let r = try sync.stopCaughtUp(source, target)
        #expect(try SyncFixtures.stat(source, "sync_full") == 1, "a second full sync happened")
        #expect(try SyncFixtures.stat(source, "sync_partial_ok") >= 2)
        #expect(r.partialSyncs >= 2)
    }

    @Test("A target slower than the source: the snapshot goes through the spool file; WAIT is answered (GETACK)")
    func spoolAndGetAck() throws {
        let kind = TestServer.Kind.redis70
        let source = try TestServer(kind, arguments: SyncFixtures.sourceArguments(diskless: true), dumpFile: kind.fixtureFolder + "/mixed.rdb")
        defer { source.stop() }
        let target = try TestServer(kind)
        defer { target.stop() }
        let sync = RunningSync(source: source.endpoint, target: target.endpoint) {
            $0.replica.spoolMemoryBytes = 2048
            $0.importOptions.pipeline.maxCommandsInFlight = 16
            $0.importOptions.batchBytes = 4096
        }
        try SyncFixtures.write(source, rounds: 100, pause: 0)
        try sync.waitCaughtUp(source)
        // WAIT asks the replica with REPLCONF GETACK: answered as the stream is read.
        #expect(try source.command("WAIT", "1", "5000") == .integer(1))
        let (a, b) = try SyncFixtures.waitDigestEqual(source, target)
        #expect(a == b)
        let r = try sync.stop()
        #expect(r.status == .success, Self.describe(r))
        #expect(r.spooledBytes > 0, "nothing went through the spool file")
    }

    @Test("An unreachable source and a refused login end the run with the reason")
    func unreachableAndRefused() throws {
        let target = try TestServer(.redis70)
        defer { target.stop() }
        let nobody = RedisEndpoint(host: "127.0.0.1", port: try TestServer.freePort())
        let r1 = try RunningSync(source: nobody, target: target.endpoint).wait(seconds: 30)
        #expect(r1.status == .failed && r1.failure?.contains("cannot connect to the source") == true, "\(r1.failure ?? "-")")
        let source = try TestServer(.redis70, password: "right")
        defer { source.stop() }
        var wrong = source.endpoint
        wrong.password = Secret("wrong-password")
        let r2 = try RunningSync(source: wrong, target: target.endpoint).wait(seconds: 30)
        #expect(r2.status == .failed && r2.failure?.contains("refused the login") == true, "\(r2.failure ?? "-")")
        #expect(r2.failure?.contains("wrong-password") == false)
        // An unreachable target is found before the source is asked for a snapshot.
        let r3 = try RunningSync(source: source.endpoint, target: nobody).wait(seconds: 30)
        #expect(r3.status == .failed && r3.failure?.contains("the target") == true, "\(r3.failure ?? "-")")
        #expect(try SyncFixtures.stat(source, "sync_full") == 0)
    }

    @Test("The target's connection killed during the stream: resent, or a new full sync; digest-equal either way")
    func killedTargetConnection() throws {
        let kind = TestServer.Kind.valkey81
        let source = try TestServer(kind, arguments: SyncFixtures.sourceArguments(diskless: true), dumpFile: kind.fixtureFolder + "/mixed.rdb")
        defer { source.stop() }
        let target = try TestServer(kind)
        defer { target.stop() }
        let sync = RunningSync(source: source.endpoint, target: target.endpoint)
        try SyncFixtures.write(source, rounds: 50)
        try sync.waitCaughtUp(source)
        let writer = Thread { try? SyncFixtures.write(source, rounds: 300, pause: 200) }
        writer.start()
        for _ in 0..<3 {
            usleep(150_000)
            try target.command("CLIENT", "KILL", "TYPE", "normal")
        }
        while writer.isExecuting || !writer.isFinished { usleep(50_000) }
        let r = try sync.stopCaughtUp(source, target)
    }

    @Test("A stream command in flight when the target's connection is killed, and nothing written after: a new full sync all the same, digest-equal")
    func killedWithCommandInFlightThenQuiet() throws {
        let kind = TestServer.Kind.redis70
        let source = try TestServer(kind, arguments: SyncFixtures.sourceArguments(diskless: true))
        defer { source.stop() }
        let target = try TestServer(kind)
        defer { target.stop() }
        let sync = RunningSync(source: source.endpoint, target: target.endpoint)
        try SyncFixtures.write(source, rounds: 20)
        try sync.waitCaughtUp(source)
        // The target holds the next write unanswered while its connection is killed.
        try target.command("CLIENT", "PAUSE", "5000", "WRITE")
        try source.command("SET", "quiet:last", "1")
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let list = try target.command("CLIENT", "LIST", "TYPE", "normal").text ?? ""
            if list.split(whereSeparator: \.isNewline).contains(where: { $0.contains("name=rdbcat-import") && $0.contains("cmd=set") }) { break }
            usleep(20_000)
        }
        try target.command("CLIENT", "KILL", "TYPE", "normal")
        try target.command("CLIENT", "UNPAUSE")
        // Nothing more is written: only the stopped pipeline itself can start the new full sync.
        let r = try sync.stopCaughtUp(source, target)
        #expect(r.fullSyncs == 2, "\(sync.notices)")
    }

    @Test("The link killed inside the snapshot (diskless transfer; disk dump being written): a new full sync, digest-equal", arguments: [false, true])
    func killedInsideSnapshot(diskless: Bool) throws {
        let kind = TestServer.Kind.redis70
        let source = try TestServer(kind, arguments: SyncFixtures.sourceArguments(diskless: diskless, extra: ["--rdb-key-save-delay", "200"]))
        defer { source.stop() }
        let target = try TestServer(kind)
        defer { target.stop() }
        try source.command("DEBUG", "POPULATE", "10000", "slow", "10")
        let sync = RunningSync(source: source.endpoint, target: target.endpoint)
        if diskless {
            // Inside the transfer: some keys are in.
            let deadline = Date().addingTimeInterval(10)
            while (sync.statuses.last?.keys ?? 0) == 0 && Date() < deadline { usleep(50_000) }
        } else {
            // Disk-based: after +FULLRESYNC, while the source still writes its dump (keepalive newlines).
            usleep(600_000)
        }
        try source.command("CONFIG", "SET", "rdb-key-save-delay", "0")
        try source.command("CLIENT", "KILL", "TYPE", "replica")
        try SyncFixtures.write(source, rounds: 30)
        let r = try sync.stopCaughtUp(source, target)
        #expect(r.fullSyncs == 2, "\(sync.notices)")
    }

    @Test("--full-only from each kind (REPLCONF rdb-only): the snapshot, digest-equal, nothing after it", arguments: TestServer.Kind.allCases)
    func fullOnlyEachKind(kind: TestServer.Kind) throws {
        let source = try TestServer(kind, arguments: SyncFixtures.sourceArguments(diskless: kind != .redis62), dumpFile: kind.fixtureFolder + "/mixed.rdb")
        defer { source.stop() }
        let target = try TestServer(kind)
        defer { target.stop() }
        let r = try RunningSync(source: source.endpoint, target: target.endpoint) { $0.replica.fullOnly = true }.wait()
        #expect(r.status == .success, Self.describe(r))
        #expect(r.final.commands == 0 && r.fullSyncs == 1)
        #expect(r.warnings.allSatisfy { !$0.contains("rdb-only") }, "\(r.warnings)")
        #expect(try source.digest() == target.digest())
    }

    @Test("--db-map applies to the snapshot and to the stream's SELECTs")
    func databaseMap() throws {
        let kind = TestServer.Kind.redis70
        let source = try TestServer(kind, arguments: SyncFixtures.sourceArguments(diskless: true))
        defer { source.stop() }
        let target = try TestServer(kind)
        defer { target.stop() }
        try SyncFixtures.write(source, rounds: 40, pause: 0)  // databases 0 and 3
        let sync = RunningSync(source: source.endpoint, target: target.endpoint) { $0.importOptions.databaseMap = [3: 5] }
        try SyncFixtures.write(source, rounds: 100)
        try sync.waitCaughtUp(source)
        let r = try sync.stop()
        #expect(r.status == .success, Self.describe(r))
        let s = try source.keyspace()
        let t = try target.keyspace()
        #expect(t[3] == nil && t[5] == s[3] && t[0] == s[0], "source \(s), target \(t)")
        let c = try source.client()
        defer { c.close() }
        let d = try target.client()
        defer { d.close() }
        try c.send(["SELECT", "3"])
        try d.send(["SELECT", "5"])
        for i in 0..<20 {
            #expect(try c.send(["GET", "w:db3:\(i)"]) == d.send(["GET", "w:db3:\(i)"]))
        }
    }

    @Test("A backlog too small to continue: a full resync, and keys deleted meanwhile are gone", arguments: [TestServer.Kind.redis70, .valkey81])
    func backlogTooSmall(kind: TestServer.Kind) throws {
        let source = try TestServer(kind, arguments: SyncFixtures.sourceArguments(diskless: false, extra: ["--repl-backlog-size", "16384"]),
                                    dumpFile: kind.fixtureFolder + "/mixed.rdb")
        defer { source.stop() }
        let target = try TestServer(kind)
        defer { target.stop() }
        try source.command("SET", "doomed", "1")
        let sync = RunningSync(source: source.endpoint, target: target.endpoint)
        try SyncFixtures.write(source, rounds: 50)
        try sync.waitCaughtUp(source)
        #expect(try target.command("EXISTS", "doomed") == .integer(1))
        // Kill the link and write far more than the backlog holds before the replica is back.
        let c = try source.client()
        var b = ByteBuffer()
        b.writeCommand(["CLIENT", "KILL", "TYPE", "replica"])
        b.writeCommand(["DEL", "doomed"])
        for i in 0..<2000 { b.writeCommand(["SET", "bulk:\(i)", String(repeating: "x", count: 100)]) }
        _ = try c.send(b, replies: 2002)
        c.close()
        try SyncFixtures.write(source, rounds: 50)
        try sync.waitCaughtUp(source)
        let (a, d) = try SyncFixtures.waitDigestEqual(source, target)
        #expect(a == d)
        #expect(try target.command("EXISTS", "doomed") == .integer(0))
        let r = try sync.stop()
        #expect(r.status == .success, Self.describe(r))
        #expect(r.fullSyncs == 2)
        #expect(sync.notices.contains { $0.contains("new full sync") })
    }

    @Test("A source with SYNC/PSYNC renamed away: a full copy by SCAN + DUMP/RESTORE; incremental refused")
    func psyncRenamed() throws {
        let kind = TestServer.Kind.redis70
        let source = try TestServer(kind, arguments: ["--rename-command", "SYNC", "", "--rename-command", "PSYNC", ""],
                                    dumpFile: kind.fixtureFolder + "/mixed.rdb")
        defer { source.stop() }
        let target = try TestServer(kind)
        defer { target.stop() }
        try SyncFixtures.write(source, rounds: 20, pause: 0)
        let full = try RunningSync(source: source.endpoint, target: target.endpoint) { $0.replica.fullOnly = true }.wait()
        #expect(full.status == .success, Self.describe(full))
        #expect(full.method == "scan")
        #expect(try source.digest() == target.digest())

        let incremental = try RunningSync(source: source.endpoint, target: target.endpoint).wait()
        #expect(incremental.status == .failed)
        #expect(incremental.failure?.contains("incremental copying is not possible") == true, "\(incremental.failure ?? "-")")
    }

    @Test("--full-only ends by itself after the snapshot; a checkpoint lets a new run continue with PSYNC")
    func fullOnlyAndCheckpoint() throws {
        let kind = TestServer.Kind.redis70
        let source = try TestServer(kind, arguments: SyncFixtures.sourceArguments(diskless: true), dumpFile: kind.fixtureFolder + "/expiry-dbs.rdb")
        defer { source.stop() }
        let target = try TestServer(kind)
        defer { target.stop() }
        let full = try RunningSync(source: source.endpoint, target: target.endpoint) { $0.replica.fullOnly = true }.wait()
        #expect(full.status == .success, Self.describe(full))
        #expect(try SyncFixtures.waitDigestEqual(source, target).0 == target.digest())

        let checkpoint = NSTemporaryDirectory() + "rdbcat-sync-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: checkpoint) }
        let first = RunningSync(source: source.endpoint, target: target.endpoint) { $0.checkpointPath = checkpoint }
        try SyncFixtures.write(source, rounds: 60)
        try first.waitCaughtUp(source)
        let r1 = try first.stop()
        #expect(r1.status == .success, Self.describe(r1))
        let saved = try #require(try SyncCheckpoint.load(checkpoint))
        #expect(saved.offset == r1.final.appliedOffset)
        // Written while no sync runs: the next run gets it from the backlog.
        try SyncFixtures.write(source, rounds: 60, pause: 0)
        let fullBefore = try SyncFixtures.stat(source, "sync_full")
        let second = RunningSync(source: source.endpoint, target: target.endpoint) { $0.checkpointPath = checkpoint }
        let r2 = try second.stopCaughtUp(source, target)
        #expect(r2.fullSyncs == 0 && r2.partialSyncs == 1)
        #expect(try SyncFixtures.stat(source, "sync_full") == fullBefore)
    }
}
