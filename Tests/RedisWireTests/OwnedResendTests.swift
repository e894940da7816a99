import Foundation
import NIOCore
import NIOEmbedded
@testable import RDBImport
import RDBKit
import RDBSinks
import RedisWire
import Testing

/// Keys decoded by the importer's own visitor into a `FakeTarget` whose "server" is a small model of a
/// keyspace: it applies what it reads (SET, SET NX, RESTORE with or without REPLACE, DEL, MSET) and answers
/// like Redis, or reads and applies without answering (a server killed after it logged the commands,
/// before its replies reached the import).
final class ModelServer {
    var keys: [[UInt8]: [UInt8]] = [:]
    /// Commands refused with this error (a renamed or refused command), by name.
    var refuse: [String: String] = [:]

    /// Applies the commands written on `ch` and returns the replies a server would give (and the commands).
    func apply(_ t: FakeTarget, _ ch: EmbeddedChannel? = nil) throws -> (replies: String, commands: [[[UInt8]]]) {
        let ch = ch ?? t.channel
        var replies = ""
        var commands: [[[UInt8]]] = []
        while var b = try ch.readOutbound(as: ByteBuffer.self) {
            while b.readableBytes > 0, let r = try RESPReplyDecoder().parse(&b, depth: 0) {
                guard case .array(let items?) = r else { break }
                let args = items.map { item -> [UInt8] in
                    if case .bulk(let bytes?) = item { return bytes }
                    return []
                }
                commands.append(args)
                replies += reply(to: args)
            }
        }
        return (replies, commands)
    }

    func reply(to args: [[UInt8]]) -> String {
        let name = String(decoding: args[0], as: UTF8.self).uppercased()
        if let e = refuse[name] { return "-\(e)\r\n" }
        switch name {
        case "SELECT": return "+OK\r\n"
        case "DEL":
            let n = args.dropFirst().reduce(0) { $0 + (keys.removeValue(forKey: $1) != nil ? 1 : 0) }
            return ":\(n)\r\n"
        case "SET":
            let nx = args.dropFirst(3).contains { String(decoding: $0, as: UTF8.self).uppercased() == "NX" }
            if nx && keys[args[1]] != nil { return "$-1\r\n" }
            keys[args[1]] = args[2]
            return "+OK\r\n"
        case "MSET":
            for i in stride(from: 1, to: args.count - 1, by: 2) { keys[args[i]] = args[i + 1] }
            return "+OK\r\n"
        case "RESTORE":
            let replace = args.dropFirst(4).contains { String(decoding: $0, as: UTF8.self).uppercased() == "REPLACE" }
            if !replace && keys[args[1]] != nil { return "-BUSYKEY Target key name already exists.\r\n" }
            keys[args[1]] = args[3]
            return "+OK\r\n"
        default: return "-ERR unknown command '\(name)'\r\n"
        }
    }
}

extension FakeTarget {
    /// Decodes `path` with the importer's visitor (as `Importer.run` sets it up) into this target's
    /// pipeline; `keyspace`: what the target held at the start (`INFO keyspace`).
    func decode(_ path: String, _ o: ImportOptions, info: ServerInfo) throws -> ImportContext {
        let builder = BatchBuilder(pipeline: pipeline, problems: problems, maxBytes: o.batchBytes, maxCommands: 5000)
        builder.maxRunKeys = o.stringRunKeys
        builder.maxRunBytes = o.stringRunBytes
        let ctx = ImportContext(
            options: o, builder: builder, problems: problems, targetVersion: info.rdbVersion, databases: info.databases,
            temporaryPrefix: Array("tmp:".utf8), keyspaceAtStart: info.keyspace)
        ctx.file = problems.register(file: path)
        builder.stats.append(DecodeCounters())
        let out = OutputBuffer(target: ctx.parts, flushThreshold: 1 << 16, keyChunkThreshold: 1 << 30)
        out.flushThreshold = .max
        var driver = DecodeDriver(rdb: o.decoder, aof: o.aof)
        switch o.mode {
        case .commands, .auto:
            var w = RESPWriterOptions(
                maxElementsPerCommand: o.maxElementsPerCommand, maxBytesPerCommand: o.maxBytesPerCommand,
                dropTTL: o.dropTTL, targetVersion: info.rdbVersion, emitSelect: false, emitFunctions: true)
            w.setIfAbsent = !o.replace
            w.inlineExpiry = true
            var v = ImportVisitor(writer: RESPWriter(out: out, options: w), ctx: ctx)
            try driver.decode(try driver.open(path), into: &v)
        case .restore:
            let w = RestoreWriterOptions(targetVersion: info.rdbVersion ?? 10, replace: o.replace, dropTTL: o.dropTTL, emitSelect: false)
            var v = ImportVisitor(writer: RestoreWriter(out: out, options: w), ctx: ctx)
            try driver.decode(try driver.open(path), into: &v)
        }
        builder.flushAll()
        loop.run()
        return ctx
    }
}

@Suite("Resends after a lost connection: counted once, as imported")
struct OwnedResendTests {
    static let strings = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/testdata/servers/redis-7.0/strings.rdb"

    /// The flaky "killed in the middle of big keys" test, without a network: the target applies (and logs)
    /// a batch of keys, dies before its replies arrive, and comes back with them. Without `replace`, in a
    /// database that was empty (the import's own), the resent keys must count as imported: the existence
    /// check (`SET NX`, `RESTORE` without `REPLACE`) could only find this import's first attempt.
    @Test("Keys applied whose replies a lost connection took: imported when resent into the import's own database",
          arguments: [ImportOptions.Mode.commands, .restore])
    func appliedThenLost(mode: ImportOptions.Mode) throws {
        for (replace, keyspace) in [(false, ""), (true, ""), (false, "db0:keys=1,expires=0,avg_ttl=0\r\n")] {
            let what = "\(mode) replace=\(replace) keyspace=\(keyspace.isEmpty ? "empty" : "not empty")"
            let t = try FakeTarget()
            let server = ModelServer()
            t.begin()
            try t.serveHandshake(keyspace: keyspace)
            guard case .success(let info) = t.started else {
                Issue.record("not started: \(String(describing: t.started))")
                return
            }
            if !keyspace.isEmpty { server.keys[Array("other".utf8)] = [] }
            var o = ImportOptions()
            o.mode = mode
            o.replace = replace
            let ctx = try t.decode(Self.strings, o, info: info)
            let sent = ctx.builder.keysSent
            #expect(sent == 52, "\(what)")
            // Applied, no reply: the server is killed.
            let first = try server.apply(t)
            #expect(server.keys.count == sent + (keyspace.isEmpty ? 0 : 1), "\(what)")
            t.channel.close(promise: nil)
            t.loop.run()
            t.advance(seconds: 0.1)
            #expect(t.channels.count == 2, "\(what)")
            try t.serveHandshake(runID: "run2")
            let (replies, resent) = try server.apply(t)
            let dels = resent.filter { $0.first == Array("DEL".utf8) }.count
            try t.reply(replies)
            let c = t.pipeline.machine.matcher.counters[0]
            let existing = t.problems.problems.filter { $0.kind == .exists }
            #expect(!t.pipeline.machine.matcher.awaitingReplies, "\(what)")
            if keyspace.isEmpty {
                // Counted as imported, once each, and nothing reported.
                #expect(c.imported == sent && c.existing == 0 && c.failed == 0, "\(what): \(c)")
                #expect(existing.count == 0, "\(what): \(existing.first?.message ?? "")")
                // Replace mode overwrites anyway: no DEL is sent for it.
                #expect(dels == (replace ? 0 : sent), "\(what): \(dels) DEL")
            } else {
                // A database that held keys before: the key may be someone else's, so the existence check
                // stands, and the report says the import most likely wrote it.
                #expect(dels == 0, "\(what)")
                #expect(c.existing == sent && existing.count == sent, "\(what): \(c)")
                #expect(existing.allSatisfy { $0.message.contains("in flight when the connection was lost") }, "\(what)")
            }
        }
    }
}
