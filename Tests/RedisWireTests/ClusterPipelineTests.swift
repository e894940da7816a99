import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
@testable import RDBImport
@testable import RedisWire
import Testing

/// What a cluster import asks of one master's pipeline, on EmbeddedChannel: redirects handed back, and
/// records kept until a `WAIT` confirms a replica has them.
@Suite("A cluster master's pipeline on EmbeddedChannel: no server")
struct ClusterPipelineTests {
    /// `keys` as SET records with a `WAIT 1 1000` record after the ones in `waitAfter`.
    static func batch(_ keys: [String], waitAfter: Set<String>) -> Batch {
        let b = FakeTarget.batch([])
        for k in keys {
            let one = FakeTarget.batch([k])
            var r = one.records[0]
            r.start = b.buffer.writerIndex
            r.nameStart = b.names.writerIndex
            b.buffer.writeImmutableBuffer(one.buffer)
            b.names.writeString(k)
            b.records.append(r)
            b.commands += 1
            b.keys += 1
            if waitAfter.contains(k) {
                let start = b.buffer.writerIndex
                Commands.wait(&b.buffer, replicas: 1, timeoutMs: 1000)
                b.records.append(Record(start: start, length: b.buffer.writerIndex - start, commands: 1, db: 0, file: 0, kind: .wait))
                b.commands += 1
            }
        }
        return b
    }

    @Test("Records acknowledged but not confirmed by a WAIT go again after a reconnect, and count once")
    func unconfirmedRecordsAreResent() throws {
        let t = try FakeTarget()
        t.pipeline.confirming = true
        t.begin()
        try t.serveHandshake()
        #expect(t.submit(Self.batch(["a", "b", "c", "d", "e"], waitAfter: ["b", "e"])))
        #expect(try t.commands().map { $0[0] } == ["SET", "SET", "WAIT", "SET", "SET", "SET", "WAIT"])
        // a, b and their WAIT are answered (a replica has them); c and d are acknowledged, not confirmed.
        try t.reply("+OK\r\n+OK\r\n:1\r\n+OK\r\n+OK\r\n")
        #expect(t.pipeline.progress.ackedKeys == 4)
        t.channel.close(promise: nil)  // the master fails before its WAIT for c, d, e is answered
        t.loop.run()
        t.advance(seconds: 0.1)
        #expect(t.channels.count == 2)
        try t.serveHandshake(runID: "run2")
        // c and d again (the node now serving them may not have them), then e and the WAIT.
        #expect(try t.commands() == [["SET", "c", "value-of-c"], ["SET", "d", "value-of-d"], ["SET", "e", "value-of-e"],
                                     ["WAIT", "1", "1000"]])
        try t.reply("+OK\r\n+OK\r\n+OK\r\n:0\r\n")  // no replica answered in time: counted, and said
        #expect(t.pipeline.progress == (ackedKeys: 5, commands: 0, bytes: 0))
        #expect(t.pipeline.machine.matcher.counters[0].imported == 5)
        #expect(t.pipeline.machine.confirmationShortfalls.waits == 1)
    }

    @Test("Without confirmation (a master without replicas) acknowledged records are final")
    func withoutConfirmationNothingIsResent() throws {
        let t = try FakeTarget()
        t.begin()
        try t.serveHandshake()
        #expect(t.submit(FakeTarget.batch(["a", "b", "c"])))
        _ = try t.commands()
        try t.reply("+OK\r\n+OK\r\n")
        t.channel.close(promise: nil)
        t.loop.run()
        t.advance(seconds: 0.1)
        try t.serveHandshake(runID: "run1")
        #expect(try t.commands() == [["SET", "c", "value-of-c"]])
    }

    @Test("MOVED and ASK hand the record back to the router instead of stopping the import")
    func redirectsAreHandedBack() throws {
        let t = try FakeTarget()
        let got = NIOLockedValueBox<[RedirectedRecord]>([])
        t.pipeline.onRedirect = { records in got.withLockedValue { $0 += records } }
        t.begin()
        try t.serveHandshake()
        #expect(t.submit(FakeTarget.batch(["a", "b", "c"])))
        _ = try t.commands()
        try t.reply("-MOVED 15495 10.0.0.7:6380\r\n+OK\r\n-ASK 7 :6381\r\n")
        #expect(t.pipeline.failure == nil)
        let records = got.withLockedValue { $0 }
        #expect(records.map { String(decoding: $0.name, as: UTF8.self) } == ["a", "c"])
        #expect(records.map(\.redirect) == [.init(isAsk: false, slot: 15495, host: "10.0.0.7", port: 6380),
                                            .init(isAsk: true, slot: 7, host: "", port: 6381)])
        #expect(records.first.map { String(buffer: $0.bytes) } == "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$10\r\nvalue-of-a\r\n")
        #expect(t.pipeline.machine.matcher.counters[0].imported == 1)  // b; a and c count where they go next
        #expect(t.pipeline.progress.commands == 0)
    }

    @Test("ASK: each command of the record after an ASKING")
    func askingInterleaved() throws {
        var commands = ByteBuffer()
        commands.writeCommand(["DEL", "k"])
        commands.writeCommand(["RPUSH", "k", "a", "b"])
        var out = ByteBuffer()
        #expect(Commands.interleaveAsking(commands, into: &out) == 2)
        var expected = ByteBuffer()
        expected.writeCommand(["ASKING"])
        expected.writeCommand(["DEL", "k"])
        expected.writeCommand(["ASKING"])
        expected.writeCommand(["RPUSH", "k", "a", "b"])
        #expect(out == expected)
    }

    @Test("Temporary names carry the key's hash tag, so RENAMENX stays in the key's slot")
    func taggedTemporaryNames() {
        let base = Array("rdbcat:tmp:1f:".utf8)
        for key in ["user:1", "{user}:1", "a{b}c", "{", "x{y", "{a}{}b"] {
            let k = Array(key.utf8)
            let prefix = k.withUnsafeBytes { TemporaryName.prefix(base, key: $0, tagged: true) }
            #expect(HashSlot.of(bytes: prefix + k) == HashSlot.of(bytes: k), "\(key) -> \(String(decoding: prefix, as: UTF8.self))")
            #expect(k.withUnsafeBytes { TemporaryName.prefix(base, key: $0, tagged: false) } == base)
        }
        // A key hashed whole that holds a `}` can carry no tag.
        for key in ["{}x}", "a{}b"] {
            #expect(Array(key.utf8).withUnsafeBytes { HashSlot.tag(sameSlotAs: $0) } == nil, "\(key)")
        }
    }
}
