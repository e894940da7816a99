#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix
import NIOSSL

/// Receives what a connection reads, on its event loop.
package protocol ReplyReceiver: AnyObject {
    /// One reply of the connection `generation`.
    func received(_ reply: RESPReply, generation: Int)
    /// `count` replies `+OK` in a row (what bulk writes mostly get), handed over at once.
    func receivedOK(count: Int, generation: Int)
    /// The end of a read (a good moment to publish progress to other threads).
    func readComplete(generation: Int)
    /// The connection closed (after an error, if any).
    func closed(generation: Int, error: Error?)
}

extension ReplyReceiver {
    package func receivedOK(count: Int, generation: Int) {
        for _ in 0..<count { received(.simple("OK"), generation: generation) }
    }
}

/// Splits what a connection reads into replies and hands them straight to the receiver, without a
/// trip through the channel pipeline per reply (one reply per command: at a million keys, the wrapping
/// and dynamic casts of `fireChannelRead` were a good part of the event loop's time). A run of `+OK`
/// replies goes over as one count; `:n` integers are read without the general parser.
package struct ReceiverDecoder: ByteToMessageDecoder {
    package typealias InboundOut = Never
    let receiver: ReplyReceiver
    let generation: Int
    let parser = RESPReplyDecoder()

    package init(receiver: ReplyReceiver, generation: Int) {
        self.receiver = receiver
        self.generation = generation
    }

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try feed(&buffer)
        return .needMoreData
    }

    /// Hands every whole reply in `buffer` to the receiver, leaving a cut-off one in it.
    package func feed(_ buffer: inout ByteBuffer) throws {
        while true {
            let (oks, integer, consumed) = buffer.withUnsafeReadableBytes { RESPReplyDecoder.fastReplies($0) }
            if consumed > 0 {
                buffer.moveReaderIndex(forwardBy: consumed)
                if let integer {
                    receiver.received(.integer(integer), generation: generation)
                } else {
                    receiver.receivedOK(count: oks, generation: generation)
                }
                continue
            }
            guard let reply = try parser.parse(&buffer, depth: 0) else { return }
            receiver.received(reply, generation: generation)
        }
    }

    package mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Tells the receiver about the end of each read and about the connection's end; remembers the first
/// error and closes the channel on it. (The replies go to the receiver from `ReceiverDecoder`.)
package final class ReplyHandler: ChannelInboundHandler {
    package typealias InboundIn = Never
    // Strong: the channel owns the handler, and the pipeline drops its handlers when the channel closes.
    let receiver: ReplyReceiver
    let generation: Int
    var error: Error?

    package init(receiver: ReplyReceiver, generation: Int) {
        self.receiver = receiver
        self.generation = generation
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        receiver.readComplete(generation: generation)
        context.fireChannelReadComplete()
    }

    package func errorCaught(context: ChannelHandlerContext, error: Error) {
        if self.error == nil { self.error = error }
        context.close(promise: nil)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        receiver.closed(generation: generation, error: error)
        context.fireChannelInactive()
    }
}

/// A failure to reach or talk to a server, typed by what went wrong. Messages never include secrets.
public struct ConnectionError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Hashable {
        /// Bad TLS files or settings: nothing was tried.
        case setup
        /// The server could not be reached.
        case unreachable
        /// The connection closed (or was lost) before the work was done.
        case closed
        /// The server refused the login or a handshake step (see `serverError`).
        case handshakeRefused
        /// The server stopped answering.
        case timeout
        /// The server sent something that is not RESP, or not the reply expected.
        case protocolError
        /// A command was refused (see `serverError`).
        case serverError
    }

    public let kind: Kind
    /// The error reply behind `handshakeRefused` and `serverError`.
    public let serverError: RedisServerError?
    public let description: String

    public init(_ kind: Kind, _ description: String, serverError: RedisServerError? = nil) {
        self.kind = kind
        self.description = description
        self.serverError = serverError
    }

    /// Whether trying again may succeed: the server could not be reached, or the connection closed (a killed
    /// client, a restart). A refusal, a timeout or a protocol error is not retried.
    public var isTransient: Bool { kind == .unreachable || kind == .closed }

    /// `body`, run again after `pause` seconds each time it throws a transient `ConnectionError`, until
    /// `seconds` have passed since the first try or `stopped` says so (then that error is thrown). For a server
    /// known to be there (a sync's next segment) whose connection may be cut at any moment.
    public static func retrying<T>(for seconds: Double, pause: Double = 0.2, stopped: () -> Bool = { false },
                                   _ body: () throws -> T) throws -> T {
        let wait = TimeAmount.nanoseconds(Int64(pause * 1e9))
        let deadline = NIODeadline.now() + .nanoseconds(Int64(seconds * 1e9))
        while true {
            do {
                return try body()
            } catch let e as ConnectionError where e.isTransient && NIODeadline.now() + wait < deadline && !stopped() {
                var ts = timespec(tv_sec: Int(wait.nanoseconds / 1_000_000_000), tv_nsec: Int(wait.nanoseconds % 1_000_000_000))
                nanosleep(&ts, nil)
            }
        }
    }
}

/// Opens TCP (optionally TLS) channels to one endpoint with the RESP reply decoder in the pipeline.
package struct Connector: Sendable {
    let endpoint: RedisEndpoint
    let sslContext: NIOSSLContext?
    let connectTimeout: TimeAmount

    package init(endpoint: RedisEndpoint, connectTimeout: TimeAmount = .seconds(10)) throws {
        self.endpoint = endpoint
        self.connectTimeout = connectTimeout
        if let tls = endpoint.tls {
            var config = TLSConfiguration.makeClientConfiguration()
            if let ca = tls.caFile {
                do {
                    config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
                } catch {
                    throw ConnectionError(.setup, "cannot read the CA file \(ca): \(error)")
                }
            }
            if let cert = tls.certificateFile {
                do {
                    config.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                } catch {
                    throw ConnectionError(.setup, "cannot read the certificate file \(cert): \(error)")
                }
            }
            if let key = tls.keyFile {
                do {
                    config.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                } catch {
                    throw ConnectionError(.setup, "cannot read the key file \(key): \(error)")
                }
            }
            if !tls.verify {
                config.certificateVerification = .none
            } else if tls.serverName == nil && endpoint.hostIsIPAddress {
                // No name to check: verify the chain (the certificate may name the IP, which NIOSSL
                // cannot check without a host name).
                config.certificateVerification = .noHostnameVerification
            }
            do {
                sslContext = try NIOSSLContext(configuration: config)
            } catch {
                throw ConnectionError(.setup, "TLS setup failed: \(error)")
            }
        } else {
            sslContext = nil
        }
    }

    /// Connects and installs the handlers; `receiver` gets the replies of this `generation`.
    package func connect(on eventLoop: EventLoop, receiver: ReplyReceiver, generation: Int) -> EventLoopFuture<Channel> {
        let box = UnsafeTransfer(receiver)
        return connect(on: eventLoop) { sync in
            try Self.addReplyHandlers(sync, receiver: box.value, generation: generation)
        }
    }

    /// Connects (TLS when the endpoint asks for it) and lets `handlers` install what reads the bytes (a
    /// replica reads a raw byte stream, not replies).
    package func connect(
        on eventLoop: EventLoop, handlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    ) -> EventLoopFuture<Channel> {
        let ssl = sslContext
        let serverName = endpoint.tls?.serverName ?? (endpoint.hostIsIPAddress ? nil : endpoint.host)
        return ClientBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let ssl {
                        try sync.addHandler(try NIOSSLClientHandler(context: ssl, serverHostname: serverName))
                    }
                    try handlers(sync)
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
    }

    /// The reply side of a connection: the decoder that hands replies to `receiver`, and the handler that
    /// reports the ends of reads and of the connection. (Tests put them on an `EmbeddedChannel`.)
    package static func addReplyHandlers(
        _ sync: ChannelPipeline.SynchronousOperations, receiver: ReplyReceiver, generation: Int
    ) throws {
        try sync.addHandler(ByteToMessageHandler(ReceiverDecoder(receiver: receiver, generation: generation)))
        try sync.addHandler(ReplyHandler(receiver: receiver, generation: generation))
    }
}

/// Moves a non-Sendable reference into an event-loop closure; the caller guarantees it is only used there.
package struct UnsafeTransfer<T>: @unchecked Sendable {
    package let value: T
    package init(_ value: T) { self.value = value }
}
