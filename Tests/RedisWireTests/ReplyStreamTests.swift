import NIOCore
import NIOEmbedded
import RedisWire
import Testing

/// Records what the reply handlers hand over.
final class RecordingReceiver: ReplyReceiver {
    var replies: [RESPReply] = []
    var runs: [Int] = []
    var reads = 0
    var closes: [String?] = []
    func received(_ reply: RESPReply, generation: Int) { replies.append(reply) }
    func receivedOK(count: Int, generation: Int) {
        runs.append(count)
        for _ in 0..<count { replies.append(.simple("OK")) }
    }
    func readComplete(generation: Int) { reads += 1 }
    func closed(generation: Int, error: Error?) { closes.append(error.map { "\($0)" }) }
}

@Suite("Replies through the channel handlers (EmbeddedChannel)")
struct ReplyStreamTests {
    static let stream = "+OK\r\n+OK\r\n+OK\r\n:12\r\n:-3\r\n:0\r\n$-1\r\n+OK\r\n-BUSYKEY Target key name already exists.\r\n*2\r\n:1\r\n+OK\r\n+OK\r\n:99999999999\r\n+QUEUED\r\n$5\r\nab\r\nc\r\n%1\r\n+k\r\n#t\r\n_\r\n"
    static let expected: [RESPReply] = [
        .simple("OK"), .simple("OK"), .simple("OK"), .integer(12), .integer(-3), .integer(0), .bulk(nil),
        .simple("OK"), .error("BUSYKEY Target key name already exists."), .array([.integer(1), .simple("OK")]),
        .simple("OK"), .integer(99_999_999_999), .simple("QUEUED"), .bulk(Array("ab\r\nc".utf8)),
        .array([.simple("k"), .integer(1)]), .bulk(nil),
    ]

    static func channel(_ r: RecordingReceiver) throws -> EmbeddedChannel {
        let ch = EmbeddedChannel()
        try Connector.addReplyHandlers(ch.pipeline.syncOperations, receiver: r, generation: 1)
        ch.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 6379), promise: nil)
        return ch
    }

    @Test("Every reply once and in order, however the stream is cut (at every byte, and in three pieces)")
    func cutAnywhere() throws {
        let bytes = Array(Self.stream.utf8)
        for cut1 in 0...bytes.count {
            for cut2 in [cut1, min(bytes.count, cut1 + 7), bytes.count] {
                let r = RecordingReceiver()
                let ch = try Self.channel(r)
                for piece in [bytes[0..<cut1], bytes[cut1..<cut2], bytes[cut2...]] where !piece.isEmpty {
                    try ch.writeInbound(ByteBuffer(bytes: piece))
                }
                #expect(r.replies == Self.expected, "cut at \(cut1), \(cut2)")
                _ = try ch.finish()
            }
        }
        // One byte at a time.
        let r = RecordingReceiver()
        let ch = try Self.channel(r)
        for b in bytes { try ch.writeInbound(ByteBuffer(bytes: [b])) }
        #expect(r.replies == Self.expected)
        #expect(r.runs.allSatisfy { $0 == 1 })
        _ = try ch.finish()
    }

    @Test("Runs of +OK go over as one count; the end of each read is reported")
    func okRuns() throws {
        let r = RecordingReceiver()
        let ch = try Self.channel(r)
        try ch.writeInbound(ByteBuffer(string: Self.stream))
        ch.pipeline.fireChannelReadComplete()
        #expect(r.runs == [3, 1, 1])
        #expect(r.reads >= 1)
        _ = try ch.finish()
    }

    @Test("Bytes that are not RESP close the connection, and the receiver hears why")
    func protocolError() throws {
        let r = RecordingReceiver()
        let ch = try Self.channel(r)
        try ch.writeInbound(ByteBuffer(string: "+OK\r\n"))
        _ = try? ch.writeInbound(ByteBuffer(string: "?what\r\n"))
        #expect(r.replies == [.simple("OK")])
        #expect(!ch.isActive)
        #expect(r.closes.count == 1 && r.closes[0]?.contains("expected a RESP type byte") == true, "\(r.closes)")
    }
}
