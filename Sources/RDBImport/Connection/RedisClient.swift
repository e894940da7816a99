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

    /// Connects, authenticates when the endpoint has a password, and selects its database if it names one.
    public init(_ endpoint: RedisEndpoint, timeoutSeconds: Int64 = 10) throws {
        self.endpoint = endpoint
        eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let connector = try Connector(endpoint: endpoint, connectTimeout: .seconds(timeoutSeconds))
        do {
            channel = try connector.connect(on: eventLoop, receiver: self, generation: 0).wait()
        } catch {
            throw ConnectionError("cannot connect to \(endpoint.address): \(error)")
        }
        if let password = endpoint.password {
            var args = ["AUTH"]
            if let u = endpoint.username { args.append(u) }
            args.append(password.value)
            let r = try send(args)
            if let e = r.errorMessage {
                close()
                throw ConnectionError("authentication to \(endpoint.address) failed: \(password.redact(e))")
            }
        }
        if let db = endpoint.database {
            let r = try send(["SELECT", String(db)])
            if let e = r.errorMessage { throw ConnectionError("SELECT \(db) failed: \(e)") }
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
        guard let channel else { throw ConnectionError("connection to \(endpoint.address) is closed") }
        let promise = eventLoop.makePromise(of: RESPReply.self)
        var buffer = channel.allocator.buffer(capacity: 64)
        appendCommand(&buffer, args)
        let bytes = buffer
        let box = UnsafeTransfer(self)
        eventLoop.execute {
            let me = box.value
            if let e = me.closedError {
                promise.fail(e)
                return
            }
            me.waiting.append(promise)
            channel.writeAndFlush(bytes, promise: nil)
        }
        return try promise.futureResult.wait()
    }

    /// Sends a command and returns its reply as text, throwing on an error reply.
    public func text(_ args: [String]) throws -> String {
        let r = try send(args)
        if let e = r.errorMessage { throw ConnectionError("\(args.first ?? "") failed: \(e)") }
        return r.text ?? r.description
    }

    public func close() {
        if let c = channel {
            try? c.close().wait()
            channel = nil
        }
    }

    func received(_ reply: RESPReply, generation: Int) {
        if let p = waiting.popFirst() { p.succeed(reply) }
    }

    func readComplete(generation: Int) {}

    func closed(generation: Int, error: Error?) {
        let e = ConnectionError("connection to \(endpoint.address) closed\(error.map { ": \($0)" } ?? "")")
        closedError = e
        while let p = waiting.popFirst() { p.fail(e) }
    }
}
