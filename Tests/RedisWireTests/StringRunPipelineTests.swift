import Foundation
import NIOCore
@testable import RDBImport
import RedisWire
import Testing

/// Plain strings sent as `MSET` runs (`BatchBuilder.addString`), on a `FakeTarget`: one reply stands for
/// every key of the run, in the report and after a reconnect.
@Suite("MSET runs on EmbeddedChannel: no server")
struct StringRunPipelineTests {
    static func options(runKeys: Int = 16) -> ImportOptions {
        var o = ImportOptions()
        o.mode = .commands
        o.replace = true
        o.stringRunKeys = runKeys
        return o
    }

    static func names(_ cmds: [[[UInt8]]]) -> [String] {
        cmds.map { String(decoding: $0[0], as: UTF8.self) }
    }

    @Test("A run is one MSET; lost before its reply, it is resent whole; each key counted once")
    func resentWhole() throws {
        let t = try FakeTarget()
        let server = ModelServer()
        t.begin()
        try t.serveHandshake()
        guard case .success(let info) = t.started else {
            Issue.record("not started")
            return
        }
        let ctx = try t.decode(OwnedResendTests.strings, Self.options(), info: info)
        #expect(ctx.builder.keysSent == 52)
        // 52 plain strings: three runs of 16, one of 4.
        let first = try server.apply(t)
        #expect(Self.names(first.commands) == ["SELECT", "MSET", "MSET", "MSET", "MSET"], "\(Self.names(first.commands))")
        #expect(first.commands.dropFirst().map { ($0.count - 1) / 2 } == [16, 16, 16, 4])
        // SELECT and the first MSET are answered, then the connection goes.
        try t.reply("+OK\r\n+OK\r\n")
        #expect(t.pipeline.machine.matcher.counters[0].imported == 16)
        #expect(t.pipeline.progress.ackedKeys == 16)
        t.channel.close(promise: nil)
        t.loop.run()
        t.advance(seconds: 0.1)
        try t.serveHandshake(runID: "run2")
        let (replies, resent) = try server.apply(t)
        // The three runs not acknowledged, whole, as they were (MSET overwrites: no DEL).
        #expect(resent == Array(first.commands.suffix(3)))
        try t.reply(replies)
        let c = t.pipeline.machine.matcher.counters[0]
        #expect(c.imported == 52 && c.failed == 0 && c.existing == 0, "\(c)")
        #expect(t.pipeline.progress == (ackedKeys: 52, commands: 0, bytes: 0))
        #expect(t.problems.problems.isEmpty)
        #expect(server.keys.count == 52)
    }

    @Test("An MSET refused: each of its keys reported, with its own name and offset")
    func refusedEachKey() throws {
        let t = try FakeTarget()
        let server = ModelServer()
        server.refuse["MSET"] = "ERR unknown command 'MSET', with args beginning with: "
        t.begin()
        try t.serveHandshake()
        guard case .success(let info) = t.started else {
            Issue.record("not started")
            return
        }
        _ = try t.decode(OwnedResendTests.strings, Self.options(runKeys: 51), info: info)
        let (replies, cmds) = try server.apply(t)
        #expect(Self.names(cmds) == ["SELECT", "MSET", "SET"], "\(Self.names(cmds))")  // a run of one goes as SET
        try t.reply(replies)
        let c = t.pipeline.machine.matcher.counters[0]
        #expect(c.failed == 51 && c.imported == 1, "\(c)")
        let p = t.problems.problems
        #expect(p.count == 51 && p.allSatisfy { $0.kind == .error && $0.message.hasPrefix("ERR unknown command 'MSET'") })
        // The keys of the MSET, in its order, each with the offset of its record in the file.
        let mset = cmds[1]
        let keys = stride(from: 1, to: mset.count, by: 2).map { mset[$0] }
        #expect(p.map(\.key) == keys)
        #expect(zip(p, p.dropFirst()).allSatisfy { $0.offset < $1.offset } && p[0].offset > 0)
        #expect(t.pipeline.progress == (ackedKeys: 52, commands: 0, bytes: 0))
    }
}
