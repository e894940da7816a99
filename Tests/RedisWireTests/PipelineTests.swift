import Foundation
import NIOCore
import NIOEmbedded
@testable import RDBImport
import RedisWire
import Testing

/// A decoder thread taking room in a window (`InflightWindow.reserve`), for tests of when it waits.
final class Producer: @unchecked Sendable {
    let condition = NSCondition()
    var done = false
    let window: InflightWindow
    let deadline = Date().addingTimeInterval(10)

    init(_ window: InflightWindow, commands: Int, bytes: Int) {
        self.window = window
        Thread { [self] in
            let ok = window.reserve(commands: commands, bytes: bytes)
            condition.lock()
            done = ok
            condition.signal()
            condition.unlock()
        }.start()
    }

    /// Whether the thread is waiting for room (and has not taken it).
    func waits() -> Bool {
        while !window.hasWaiter && Date() < deadline { usleep(1000) }
        condition.lock()
        defer { condition.unlock() }
        return window.hasWaiter && !done
    }

    /// Whether the thread took its room (waiting up to the deadline).
    func reserved() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !done && Date() < deadline { _ = condition.wait(until: deadline) }
        return done
    }
}

@Suite("The import pipeline on EmbeddedChannel: no server")
struct PipelineTests {
    static func ok(_ n: Int) -> String { String(repeating: "+OK\r\n", count: n) }

    @Test("Handshake, then records matched to their replies; the window empties")
    func matched() throws {
        let t = try FakeTarget()
        t.begin()
        let hs = try t.serveHandshake()
        #expect(hs.map { $0.first! } == ["CLIENT", "PING", "INFO", "CONFIG", "CONFIG", "INFO"])
        guard case .success(let info) = t.started else { Issue.record("not started: \(String(describing: t.started))"); return }
        #expect(info.version == "7.0.15" && info.databases == 16 && info.keyspace == [:])

        #expect(t.submit(FakeTarget.batch(["a", "b", "c"])))
        #expect(try t.commands() == [["SET", "a", "value-of-a"], ["SET", "b", "value-of-b"], ["SET", "c", "value-of-c"]])
        #expect(t.pipeline.progress.commands == 3)
        try t.reply("+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n+OK\r\n")
        #expect(t.pipeline.progress == (ackedKeys: 3, commands: 0, bytes: 0))
        let c = t.pipeline.machine.matcher.counters[0]
        #expect(c.imported == 2 && c.failed == 1)
        #expect(t.problems.problems.map(\.keyText) == ["b"])
        #expect(t.problems.problems.first?.message.hasPrefix("WRONGTYPE") == true)
    }

    @Test("A stop while the handshake is unanswered ends the start at once, naming the stop; a later one is a no-op")
    func abortStart() throws {
        let t = try FakeTarget()
        t.begin()
        #expect(t.started == nil)  // the handshake is written and unanswered
        t.pipeline.abortStart("stopped on request")
        t.loop.run()
        guard case .failure(let e)? = t.started else { Issue.record("the start did not end: \(String(describing: t.started))"); return }
        #expect("\(e)".contains("stopped on request while connecting to 127.0.0.1:6379"), "\(e)")
        #expect(!t.channel.isActive)
        #expect(!t.submit(FakeTarget.batch(["a"])))  // nothing is sent after it
        // Once started, abortStart does nothing: a stop then goes between keys.
        let u = try FakeTarget()
        u.begin()
        try u.serveHandshake()
        u.pipeline.abortStart("stopped on request")
        u.loop.run()
        #expect(u.submit(FakeTarget.batch(["a"])))
        #expect(try u.commands() == [["SET", "a", "value-of-a"]])
    }

    @Test("A connection lost with commands in flight: reconnect, handshake again, resend the unacknowledged")
    func resend() throws {
        let t = try FakeTarget()
        t.begin()
        try t.serveHandshake()
        #expect(t.submit(FakeTarget.batch(["a", "b", "c"], temporary: ["c"])))
        _ = try t.commands()
        try t.reply(Self.ok(1))  // a is acknowledged; b and c are in flight
        t.channel.close(promise: nil)
        t.loop.run()
        #expect(t.channels.count == 1)  // not at once: after a pause
        t.advance(seconds: 0.1)
        #expect(t.channels.count == 2)
        // Second handshake: no CONFIG/INFO keyspace (first connection only), SELECT the pending records' db.
        let hs = try t.serveHandshake(runID: "run2")
        #expect(hs.map { $0.first! } == ["CLIENT", "PING", "INFO", "SELECT"])
        // b as it was; c (written under a temporary name) first deletes what the lost connection left.
        #expect(try t.commands() == [["SET", "b", "value-of-b"], ["DEL", "tmp:c"], ["SET", "c", "value-of-c"]])
        try t.reply(Self.ok(3))
        #expect(t.pipeline.progress == (ackedKeys: 3, commands: 0, bytes: 0))
        #expect(t.pipeline.reconnects == 1)
        #expect(t.pipeline.machine.matcher.counters[0].imported == 3)
        #expect(t.pipeline.warnings.count == 1 && t.pipeline.warnings[0].contains("run1 -> run2"))
    }

    @Test("A window full blocks the producer until replies free it")
    func windowFull() throws {
        let t = try FakeTarget.started { $0.maxCommandsInFlight = 4 }
        #expect(t.submit(FakeTarget.batch(["a", "b", "c"])))
        _ = try t.commands()

        // The decoder thread wants room for 3 more: 3 + 3 > 4, so it waits.
        let producer = Producer(t.pipeline.window, commands: 3, bytes: 10)
        #expect(producer.waits())
        try t.reply(Self.ok(2))  // 1 in flight: 1 + 3 fits
        #expect(producer.reserved())
        #expect(t.pipeline.progress.commands == 4)
        #expect(t.pipeline.window.peakBytes > 0)
    }

    @Test("The parts of a key held for a resend take room: what follows the key waits for its reply")
    func heldPartsTakeRoom() throws {
        let t = try FakeTarget.started { $0.maxBytesInFlight = 200 }
        // SET k <300 bytes> in three parts: the first two complete no command, the last one the SET.
        var whole = ByteBuffer()
        whole.writeCommand(["SET", "k", String(repeating: "v", count: 300)])
        let bytes = whole.readableBytesView
        let cuts = [0, 110, 220, bytes.count]
        for (i, part) in [KeyPart.first, .middle, .last].enumerated() {
            let b = Batch(allocator: ByteBufferAllocator(), capacity: 512)
            b.buffer.writeBytes(bytes[(bytes.startIndex + cuts[i])..<(bytes.startIndex + cuts[i + 1])])
            b.names.writeString("k")
            b.records.append(Record(start: 0, length: b.buffer.readableBytes, commands: part == .last ? 1 : 0,
                                    nameStart: 0, nameLength: 1, db: 0, file: 0, kind: .key, part: part))
            b.commands = part == .last ? 1 : 0
            b.keys = part == .last ? 1 : 0
            // Nothing answerable in flight before the last part: the parts go whatever their size.
            #expect(t.submit(b), "part \(i)")
        }
        var written = ByteBuffer()
        while var w = try t.channel.readOutbound(as: ByteBuffer.self) { written.writeBuffer(&w) }
        #expect(written == whole)
        // The first two parts are acknowledged at their turn, and held: 220 bytes, the last part's in flight.
        #expect(t.pipeline.machine.matcher.held == 220)
        #expect(t.pipeline.progress.bytes == bytes.count - 220)

        let producer = Producer(t.pipeline.window, commands: 1, bytes: 10)
        #expect(producer.waits(), "10 bytes more fit the window's 200 beside the 81 in flight, not beside the 220 held")
        try t.reply(Self.ok(1))
        #expect(producer.reserved())
        #expect(t.pipeline.machine.matcher.held == 0)
        #expect(t.pipeline.machine.matcher.counters[0].imported == 1)
    }

    @Test("No reply within the reply timeout: the connection counts as lost and the records go again")
    func replyTimeout() throws {
        let t = try FakeTarget.started {
            $0.replyTimeout = 5
            $0.reconnectTimeout = 3
        }
        #expect(t.submit(FakeTarget.batch(["a"])))
        _ = try t.commands()
        t.advance(seconds: 2)
        #expect(t.channel.isActive)  // not yet
        t.advance(seconds: 4)
        #expect(!t.channels[0].isActive)
        t.advance(seconds: 0.1)
        #expect(t.channels.count == 2)
        try t.serveHandshake()
        #expect(try t.commands() == [["SET", "a", "value-of-a"]])

        // Then the target goes away for longer than the reconnect timeout: the import stops.
        t.refuse = true
        t.channel.close(promise: nil)
        for _ in 0..<20 { t.advance(seconds: 0.5) }
        #expect(t.pipeline.machine.isDone)
        let f = t.pipeline.failure
        guard case .connectionLost(_, let seconds, let last)? = f else { Issue.record("\(String(describing: f))"); return }
        #expect(seconds == 3 && last.contains("connection refused"))
        #expect(f!.description.contains("could not be re-established within 3 s"))
        #expect(t.pipeline.machine.matcher.counters[0].notArrived == 1)
        #expect(t.problems.problems.first?.kind == .unacknowledged)
        #expect(!t.pipeline.submit(FakeTarget.batch(["late"])))
    }

    @Test("Typed refusals: MOVED stops the import as a cluster; LOADING is waited out")
    func typedRefusals() throws {
        let t = try FakeTarget()
        t.begin()
        try t.serveHandshake()
        #expect(t.submit(FakeTarget.batch(["a", "b"])))
        _ = try t.commands()
        try t.reply("-LOADING Redis is loading the dataset in memory\r\n")
        t.advance(seconds: 0.3)
        #expect(t.channels.count == 2)
        try t.serveHandshake()
        #expect(try t.commands().count == 2)  // both again
        try t.reply("-MOVED 15495 10.0.0.7:6380\r\n")
        let f = t.pipeline.failure
        guard case .writesRefused(let e)? = f else { Issue.record("\(String(describing: f))"); return }
        #expect(e.code == .moved && e.redirect == .init(isAsk: false, slot: 15495, host: "10.0.0.7", port: 6380))
        #expect(f!.description.hasPrefix("the target is a Redis Cluster (MOVED 15495 10.0.0.7:6380)"))
        try t.reply("+OK\r\n")  // b still gets its reply; then the pipeline ends
        #expect(t.pipeline.machine.isDone)
        #expect(!t.pipeline.submit(FakeTarget.batch(["c"])))
    }

    @Test("Handshake refused: WRONGPASS, NOAUTH, an unreachable target")
    func handshakeRefused() throws {
        let wrong = try FakeTarget(password: "s3cret")
        wrong.begin()
        #expect(try wrong.commands().first == ["AUTH", "s3cret"])
        try wrong.reply("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
        guard case .failure(let e1 as PipelineFailure)? = wrong.started, case .connection(let c1) = e1 else {
            Issue.record("\(String(describing: wrong.started))")
            return
        }
        #expect(c1.kind == .handshakeRefused && c1.serverError?.code == .wrongPass)
        #expect(e1.description == "authentication to 127.0.0.1:6379 failed: WRONGPASS invalid username-password pair or user is disabled.")
        #expect(!wrong.channels[0].isActive)

        let none = try FakeTarget()
        none.begin()
        try none.reply("+OK\r\n-NOAUTH Authentication required.\r\n")  // SETNAME is answered before PING
        guard case .failure(let e2 as PipelineFailure)? = none.started else { Issue.record("\(String(describing: none.started))"); return }
        #expect(e2.serverError?.code == .noAuth)
        #expect(e2.description.hasPrefix("the target requires a password (NOAUTH)"))

        let away = try FakeTarget()
        away.refuse = true
        away.begin()
        guard case .failure(let e3 as PipelineFailure)? = away.started, case .connection(let c3) = e3 else {
            Issue.record("\(String(describing: away.started))")
            return
        }
        #expect(c3.kind == .unreachable && e3.description.hasPrefix("cannot connect to 127.0.0.1:6379"))
    }

    @Test("retryFirstConnection: a first connection closed in its handshake, or refused, is made again; the start waits for it, within the reconnect timeout")
    func firstConnectionRetried() throws {
        var o = PipelineOptions()
        o.retryFirstConnection = true
        o.reconnectTimeout = 5
        let t = try FakeTarget(options: o)
        t.begin()
        #expect(try t.commands().contains(["PING"]))
        try t.channel.close().wait()  // killed in the handshake
        t.loop.run()
        #expect(t.started == nil)
        t.refuse = true  // the next attempt is refused
        t.advance(seconds: 0.05)
        #expect(t.started == nil)
        t.refuse = false
        t.advance(seconds: 0.1)
        #expect(t.channels.count == 2)
        try t.serveHandshake()
        guard case .success(let info)? = t.started else {
            Issue.record("\(String(describing: t.started))")
            return
        }
        #expect(info.version == "7.0.15")
        #expect(t.submit(FakeTarget.batch(["a"])))
        #expect(try t.commands() == [["SET", "a", "value-of-a"]])

        // Still away after the reconnect timeout: the start fails, saying for how long.
        let away = try FakeTarget(options: o)
        away.refuse = true
        away.begin()
        for _ in 0..<8 where away.started == nil { away.advance(seconds: 1) }
        guard case .failure(let e as PipelineFailure)? = away.started else {
            Issue.record("\(String(describing: away.started))")
            return
        }
        #expect(e.description.contains("5 s"), "\(e)")
    }
}
