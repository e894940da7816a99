import NIOCore
import NIOPosix

/// A plain request/response connection (blocking calls): handshakes, checks, tests. Not for bulk
/// traffic: that goes through `ImportPipeline`.
public final class RedisClient: ReplyReceiver, @unchecked Sendable {
    public let endpoint: RedisEndpoint
    let eventLoop: EventLoop
    var channel: Channel?
    // Event-loop confined.
    var waiting = CircularBuffer<EventLoopPromise<RESPReply>>()
    var closedError: Error?
    /// How long `send` waits for its replies before the connection counts as dead (nil: without end).
    let replyTimeout: TimeAmount?
    /// Fails what is waiting when no reply comes in time (event-loop confined).
    var replyDeadline: Scheduled<Void>?

    /// Connects, authenticates when the endpoint has a password, and selects its database if it names one.
    /// A `send` whose replies have not all come within `replyTimeoutSeconds` throws a `.timeout`
    /// `ConnectionError` and closes the connection (a server that stopped answering is not waited on for ever).
    public init(_ endpoint: RedisEndpoint, timeoutSeconds: Int64 = 10, replyTimeoutSeconds: Int64? = 120) throws {
        self.endpoint = endpoint
        replyTimeout = replyTimeoutSeconds.map { .seconds($0) }
        eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let connector = try Connector(endpoint: endpoint, connectTimeout: .seconds(timeoutSeconds))
        do {
            channel = try connector.connect(on: eventLoop, receiver: self, generation: 0).wait()
        } catch {
            throw ConnectionError(.unreachable, "cannot connect to \(endpoint.address): \(error)")
        }
        var handshake = Handshake(.init(login: endpoint))
        var buffer = ByteBuffer()
        handshake.write(into: &buffer)
        guard !handshake.isDone else { return }
        let replies = try send(buffer, replies: handshake.pending.count)
        for reply in replies {
            switch handshake.receive(reply) {
            case .wait, .done:
                continue
            case .retry(let e):
                close()
                throw ConnectionError(.serverError, "the handshake with \(endpoint.address) failed: \(e)", serverError: e)
            case .refused(let e):
                close()
                throw e
            }
        }
    }

    deinit { channel?.close(promise: nil) }

    /// Sends one command and waits for its reply (error replies are returned, not thrown).
    @discardableResult
    public func send(_ args: [String]) throws -> RESPReply {
        try send(bytes: args.map { Array($0.utf8) })
    }

    @discardableResult
    public func send(bytes args: [[UInt8]]) throws -> RESPReply {
        var buffer = ByteBuffer()
        buffer.writeCommand(args)
        return try send(buffer, replies: 1)[0]
    }

    /// Sends commands already encoded and waits for their `replies`.
    public func send(_ bytes: ByteBuffer, replies: Int) throws -> [RESPReply] {
        guard let channel else { throw ConnectionError(.closed, "connection to \(endpoint.address) is closed") }
        let promises = (0..<replies).map { _ in eventLoop.makePromise(of: RESPReply.self) }
        let box = UnsafeTransfer(self)
        eventLoop.execute {
            let me = box.value
            if let e = me.closedError {
                for p in promises { p.fail(e) }
                return
            }
            for p in promises { me.waiting.append(p) }
            channel.writeAndFlush(bytes, promise: nil)
            if let t = me.replyTimeout, me.replyDeadline == nil { me.replyDeadline = me.scheduleReplyDeadline(after: t) }
        }
        return try promises.map { try $0.futureResult.wait() }
    }

    /// After `t`, fails every reply still awaited and closes the connection (later replies could not be told
    /// apart from the missing ones). Moved on by each reply (`received`).
    private func scheduleReplyDeadline(after t: TimeAmount) -> Scheduled<Void> {
        let box = UnsafeTransfer(self)
        return eventLoop.scheduleTask(in: t) {
            let me = box.value
            me.replyDeadline = nil
            guard !me.waiting.isEmpty else { return }
            me.failWaiting(ConnectionError(.timeout, "no reply from \(me.endpoint.address) within \(t.nanoseconds / 1_000_000_000) s"))
            me.channel?.close(promise: nil)
        }
    }

    /// Sends a command and returns its reply as text, throwing on an error reply.
    public func text(_ args: [String]) throws -> String {
        let r = try send(args)
        if let e = r.serverError { throw ConnectionError(.serverError, "\(args.first ?? "") failed: \(e)", serverError: e) }
        return r.text ?? r.description
    }

    /// From any thread: what `send` waits for, and every later `send`, fails at once with a `.closed` error
    /// saying `reason` (a stop requested while a server that does not answer is waited on). The owner still
    /// calls `close()`.
    public func cancel(_ reason: String) {
        let box = UnsafeTransfer(self)
        eventLoop.execute {
            let me = box.value
            me.failWaiting(ConnectionError(.closed, "\(reason) (waiting on \(me.endpoint.address))"))
        }
    }

    /// Fails every reply still awaited, and every later `send`, with the first error that ended the connection
    /// (`e` unless one came before). Event-loop confined.
    private func failWaiting(_ e: Error) {
        replyDeadline?.cancel()
        replyDeadline = nil
        if closedError == nil { closedError = e }
        let first = closedError ?? e
        while let p = waiting.popFirst() { p.fail(first) }
    }

    public func close() {
        if let c = channel {
            try? c.close().wait()
            channel = nil
        }
    }

    package func received(_ reply: RESPReply, generation: Int) {
        if let p = waiting.popFirst() { p.succeed(reply) }
        if let t = replyTimeout, let d = replyDeadline {
            d.cancel()
            replyDeadline = waiting.isEmpty ? nil : scheduleReplyDeadline(after: t)
        }
    }

    package func readComplete(generation: Int) {}

    package func closed(generation: Int, error: Error?) {
        failWaiting(ConnectionError(.closed, "connection to \(endpoint.address) closed\(error.map { ": \($0)" } ?? "")"))
    }
}
