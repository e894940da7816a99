import NIOCore
import NIOEmbedded
import NIOPosix
@testable import RDBImport
import RedisWire

/// An `ImportPipeline` on an `EmbeddedEventLoop` whose connections are `EmbeddedChannel`s: the test plays
/// the server (reads the commands written, answers them, closes the connection) and moves the clock.
final class FakeTarget: @unchecked Sendable {
    let loop = EmbeddedEventLoop()
    let problems: ProblemLog
    let endpoint: RedisEndpoint
    var pipeline: ImportPipeline!
    /// Every connection opened, oldest first.
    var channels: [EmbeddedChannel] = []
    /// Connection attempts fail while set.
    var refuse = false
    /// The pipeline's clock (seconds).
    var now = 1000.0
    /// What `start` gave (once the first handshake ended).
    var started: Result<ServerInfo, Error>?

    init(options: PipelineOptions = PipelineOptions(), password: String? = nil) throws {
        problems = try ProblemLog()
        endpoint = RedisEndpoint(host: "127.0.0.1", port: 6379, password: password.map { Secret($0) })
        pipeline = ImportPipeline(
            endpoint: endpoint, options: options, problems: problems, temporaryPrefix: Array("tmp:".utf8),
            eventLoop: loop, connect: { [unowned self] _, receiver, g in self.open(receiver, g) }, clock: { [unowned self] in self.now })
    }

    func open(_ receiver: ReplyReceiver, _ generation: Int) -> EventLoopFuture<Channel> {
        if refuse { return loop.makeFailedFuture(IOError(errnoCode: 111, reason: "connection refused")) }
        let ch = EmbeddedChannel(loop: loop)
        try! Connector.addReplyHandlers(ch.pipeline.syncOperations, receiver: receiver, generation: generation)
        ch.connect(to: try! SocketAddress(ipAddress: "127.0.0.1", port: 6379), promise: nil)
        channels.append(ch)
        return loop.makeSucceededFuture(ch)
    }

    var channel: EmbeddedChannel { channels.last! }

    /// Starts the pipeline (the first connection is open, its handshake written).
    func begin() {
        pipeline.begin().whenComplete { self.started = $0 }
        loop.run()
    }

    /// The commands written on `ch` since the last call.
    func commands(_ ch: EmbeddedChannel? = nil) throws -> [[String]] {
        let ch = ch ?? channel
        var out: [[String]] = []
        while var b = try ch.readOutbound(as: ByteBuffer.self) {
            while b.readableBytes > 0, let r = try RESPReplyDecoder().parse(&b, depth: 0) {
                guard case .array(let items?) = r else { break }
                out.append(items.map { $0.text ?? "?" })
            }
        }
        return out
    }

    /// Sends reply bytes (one read).
    func reply(_ text: String, on ch: EmbeddedChannel? = nil) throws {
        let ch = ch ?? channel
        try ch.writeInbound(ByteBuffer(string: text))
        ch.pipeline.fireChannelReadComplete()
        loop.run()
    }

    /// Answers a handshake the way a Redis 7.0 without a password does; returns its commands.
    @discardableResult
    func serveHandshake(runID: String = "run1", keyspace: String = "") throws -> [[String]] {
        let cmds = try commands()
        var replies = ""
        for c in cmds {
            switch c.first ?? "" {
            case "PING": replies += "+PONG\r\n"
            case "INFO" where c.last == "server":
                let info = "redis_version:7.0.15\r\nrun_id:\(runID)\r\n"
                replies += "$\(info.utf8.count)\r\n\(info)\r\n"
            case "INFO": replies += "$\(keyspace.utf8.count)\r\n\(keyspace)\r\n"
            case "CONFIG":
                var b = ByteBuffer()
                // Arrays of bulk strings, as CONFIG GET answers.
                if c.last == "databases" {
                    b.writeCommand(["databases", "16"])
                } else {
                    b.writeCommand(["zset-max-listpack-entries", "128", "zset-max-listpack-value", "64"])
                }
                replies += String(buffer: b)
            default: replies += "+OK\r\n"
            }
        }
        try reply(replies)
        return cmds
    }

    /// Moves both clocks (the pipeline's and the loop's timers).
    func advance(seconds: Double) {
        now += seconds
        loop.advanceTime(by: .milliseconds(Int64(seconds * 1000)))
        loop.run()
    }

    /// A batch of `SET key value` records, one per key; `temporary` keys are rewritten on resend.
    static func batch(_ keys: [String], temporary: Set<String> = [], db: Int = 0) -> Batch {
        let b = Batch(allocator: ByteBufferAllocator(), capacity: 1024)
        for k in keys {
            let start = b.buffer.writerIndex
            b.buffer.writeCommand(["SET", k, "value-of-\(k)"])
            let nameStart = b.names.writerIndex
            b.names.writeString(k)
            b.records.append(Record(
                start: start, length: b.buffer.writerIndex - start, commands: 1, nameStart: nameStart, nameLength: k.utf8.count,
                db: db, file: 0, kind: .key, temporary: temporary.contains(k)))
            b.commands += 1
            b.keys += 1
        }
        return b
    }

    /// A target whose pipeline (its options set by `configure`) has begun and had its handshake answered.
    static func started(_ configure: (inout PipelineOptions) -> Void) throws -> FakeTarget {
        var o = PipelineOptions()
        configure(&o)
        let t = try FakeTarget(options: o)
        t.begin()
        try t.serveHandshake()
        return t
    }

    /// Hands a batch over (from the test thread: the window has room) and lets the loop write it.
    func submit(_ b: Batch) -> Bool {
        let ok = pipeline.submit(b)
        loop.run()
        return ok
    }
}
