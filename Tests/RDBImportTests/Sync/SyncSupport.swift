import RDBTestSupport
import Testing
import Foundation
import NIOCore
import RDBImport
import RDBReplication
import RedisWire

/// A sync running on a thread of its own, with its status lines kept.
final class RunningSync: @unchecked Sendable {
    let engine: SyncEngine
    private let lock = NSLock()
    private var _report: SyncReport?
    private var _statuses: [SyncStatus] = []
    private var _notices: [String] = []
    private let done = DispatchSemaphore(value: 0)

    init(source: RedisEndpoint, target: RedisEndpoint, configure: (inout SyncOptions) -> Void = { _ in }) {
        var o = SyncOptions()
        o.statusInterval = 0.2
        o.replica.reconnectTimeout = 20
        o.importOptions.pipeline.reconnectTimeout = 20
        configure(&o)
        engine = SyncEngine(source: source, target: target, options: o)
        engine.onStatus = { [unowned self] s in lock.withLock { _statuses.append(s) } }
        engine.onNotice = { [unowned self] s in lock.withLock { _notices.append(s) } }
        let box = UnsafeTransfer(self)
        Thread.detachNewThread {
            let r = box.value.engine.run()
            box.value.lock.withLock { box.value._report = r }
            box.value.done.signal()
        }
    }

    var statuses: [SyncStatus] { lock.withLock { _statuses } }
    var notices: [String] { lock.withLock { _notices } }

    /// Waits for the run to end by itself (full-only, failures).
    func wait(seconds: Double = 60) throws -> SyncReport {
        guard done.wait(timeout: .now() + seconds) == .success else {
            engine.stop()
            _ = done.wait(timeout: .now() + 30)
            throw TestServer.Failure("the sync did not end within \(seconds) s; notices: \(notices)")
        }
        return lock.withLock { _report! }
    }

    /// Stops it (as SIGINT does) and waits for the report.
    func stop() throws -> SyncReport {
        engine.stop()
        return try wait(seconds: 60)
    }

    /// Waits until caught up with `source`, expects `target`'s digest to equal it, stops, and expects a
    /// successful report, which it returns.
    func stopCaughtUp(_ source: TestServer, _ target: TestServer, sourceLocation: SourceLocation = #_sourceLocation) throws -> SyncReport {
        try waitCaughtUp(source)
        let (a, b) = try SyncFixtures.waitDigestEqual(source, target)
        #expect(a == b, "digests differ", sourceLocation: sourceLocation)
        let r = try stop()
        #expect(r.status == .success, SyncServerTests.describe(r), sourceLocation: sourceLocation)
        return r
    }

    /// The report, once the run has ended.
    var report: SyncReport? { lock.withLock { _report } }

    /// Waits until the applied offset reaches the source's `master_repl_offset` (a run that ends first
    /// fails this at once, with its failure: an ended run is not mistaken for a stuck one).
    func waitCaughtUp(_ source: TestServer, seconds: Double = 30) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let r = report {
                throw TestServer.Failure("the sync ended before catching up: \(r.status) \(r.failure ?? "-"); notices \(notices)")
            }
            let target = try SyncFixtures.masterOffset(source)
            if let s = statuses.last, s.appliedOffset >= target, s.phase == .incremental { return }
            usleep(100_000)
        }
        throw TestServer.Failure("not caught up within \(seconds) s: source at \(try SyncFixtures.masterOffset(source)), last status \(String(describing: statuses.last)); notices \(notices)")
    }
}

enum SyncFixtures {
    /// Source settings: replication knobs that keep tests short.
    static func sourceArguments(diskless: Bool, extra: [String] = []) -> [String] {
        ["--repl-diskless-sync", diskless ? "yes" : "no", "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1"] + extra
    }

    static func masterOffset(_ s: TestServer) throws -> Int64 {
        let t = try s.command("INFO", "replication").text ?? ""
        for line in t.split(whereSeparator: \.isNewline) where line.hasPrefix("master_repl_offset:") {
            return Int64(line.dropFirst("master_repl_offset:".count)) ?? 0
        }
        return 0
    }

    static func stat(_ s: TestServer, _ name: String) throws -> Int {
        let t = try s.command("INFO", "stats").text ?? ""
        for line in t.split(whereSeparator: \.isNewline) where line.hasPrefix(name + ":") {
            return Int(line.dropFirst(name.count + 1)) ?? -1
        }
        return -1
    }

    /// Digests equal within `seconds` (keys that expire on either side are touched first).
    static func waitDigestEqual(_ a: TestServer, _ b: TestServer, seconds: Double = 15) throws -> (String, String) {
        let deadline = Date().addingTimeInterval(seconds)
        var last = ("", "")
        while Date() < deadline {
            last = (try a.digest(), try b.digest())
            if last.0 == last.1 { return last }
            usleep(200_000)
        }
        return last
    }

    /// Writes a mix of commands while `running` says so: strings (with relative TTLs, which Redis 6.2
    /// replicates as they are), collections, expiries, deletes, MULTI blocks, streams, other databases.
    static func write(_ s: TestServer, rounds: Int, pause: useconds_t = 2_000) throws {
        let c = try s.client()
        defer { c.close() }
        for i in 0..<rounds {
            let k = "w:\(i % 50)"
            try c.send(["SET", "\(k):s", "v\(i)", "EX", "100000"])
            try c.send(["SET", "\(k):p", "v\(i)", "PX", "100000000"])
            try c.send(["SETEX", "\(k):e", "100000", "x"])
            try c.send(["RPUSH", "\(k):l", "a\(i)", "b\(i)"])
            try c.send(["HSET", "\(k):h", "f\(i % 7)", "\(i)"])
            try c.send(["SADD", "\(k):set", "m\(i % 11)"])
            try c.send(["ZADD", "\(k):z", "\(i)", "m\(i % 13)"])
            try c.send(["EXPIRE", "\(k):l", "100000"])
            try c.send(["XADD", "w:stream", "*", "i", "\(i)"])
            if i % 5 == 0 { try c.send(["DEL", "w:\((i / 5) % 50):set"]) }
            if i % 7 == 0 {
                var b = ByteBuffer()
                b.writeCommand(["MULTI"])
                b.writeCommand(["INCR", "w:counter"])
                b.writeCommand(["LPUSH", "w:multi", "\(i)"])
                b.writeCommand(["EXEC"])
                _ = try c.send(b, replies: 4)
            }
            if i % 10 == 0 {
                try c.send(["SELECT", "3"])
                try c.send(["SET", "w:db3:\(i % 20)", "\(i)"])
                try c.send(["SELECT", "0"])
            }
            if pause > 0 { usleep(pause) }
        }
    }
}
