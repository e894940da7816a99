import NIOCore
import NIOPosix
import NIOSSL

/// Receives what a connection reads, on its event loop.
protocol ReplyReceiver: AnyObject {
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
    func receivedOK(count: Int, generation: Int) {
        for _ in 0..<count { received(.simple("OK"), generation: generation) }
    }
}

/// Splits what a connection reads into replies and hands them straight to the receiver, without a
/// trip through the channel pipeline per reply (one reply per command: at a million keys, the wrapping
/// and dynamic casts of `fireChannelRead` were a good part of the event loop's time). A run of `+OK`
/// replies goes over as one count; `:n` integers are read without the general parser.
struct ReceiverDecoder: ByteToMessageDecoder {
    typealias InboundOut = Never
    let receiver: ReplyReceiver
    let generation: Int
    let parser = RESPReplyDecoder()

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try feed(&buffer)
        return .needMoreData
    }

    /// Hands every whole reply in `buffer` to the receiver, leaving a cut-off one in it.
    func feed(_ buffer: inout ByteBuffer) throws {
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
            var copy = buffer
            guard let reply = try parser.parse(&copy, depth: 0) else { return }
            buffer = copy
            receiver.received(reply, generation: generation)
        }
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Tells the receiver about the end of each read and about the connection's end; remembers the first
/// error and closes the channel on it. (The replies go to the receiver from `ReceiverDecoder`.)
final class ReplyHandler: ChannelInboundHandler {
    typealias InboundIn = Never
    // Strong: the channel owns the handler, and the pipeline drops its handlers when the channel closes.
    let receiver: ReplyReceiver
    let generation: Int
    var error: Error?

    init(receiver: ReplyReceiver, generation: Int) {
        self.receiver = receiver
        self.generation = generation
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        receiver.readComplete(generation: generation)
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if self.error == nil { self.error = error }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        receiver.closed(generation: generation, error: error)
        context.fireChannelInactive()
    }
}

/// A failure to reach or talk to a server. Messages never include secrets.
public struct ConnectionError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Opens TCP (optionally TLS) channels to one endpoint with the RESP reply decoder in the pipeline.
struct Connector: Sendable {
    let endpoint: RedisEndpoint
    let sslContext: NIOSSLContext?
    let connectTimeout: TimeAmount

    init(endpoint: RedisEndpoint, connectTimeout: TimeAmount = .seconds(10)) throws {
        self.endpoint = endpoint
        self.connectTimeout = connectTimeout
        if let tls = endpoint.tls {
            var config = TLSConfiguration.makeClientConfiguration()
            if let ca = tls.caFile {
                do {
                    config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
                } catch {
                    throw ConnectionError("cannot read the CA file \(ca): \(error)")
                }
            }
            if let cert = tls.certificateFile {
                do {
                    config.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                } catch {
                    throw ConnectionError("cannot read the certificate file \(cert): \(error)")
                }
            }
            if let key = tls.keyFile {
                do {
                    config.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                } catch {
                    throw ConnectionError("cannot read the key file \(key): \(error)")
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
                throw ConnectionError("TLS setup failed: \(error)")
            }
        } else {
            sslContext = nil
        }
    }

    /// Connects and installs the handlers; `receiver` gets the replies of this `generation`.
    func connect(on eventLoop: EventLoop, receiver: ReplyReceiver, generation: Int) -> EventLoopFuture<Channel> {
        let ssl = sslContext
        let serverName = endpoint.tls?.serverName ?? (endpoint.hostIsIPAddress ? nil : endpoint.host)
        let box = UnsafeTransfer(receiver)
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
                    try sync.addHandler(ByteToMessageHandler(ReceiverDecoder(receiver: box.value, generation: generation)))
                    try sync.addHandler(ReplyHandler(receiver: box.value, generation: generation))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
    }
}

/// Moves a non-Sendable reference into an event-loop closure; the caller guarantees it is only used there.
struct UnsafeTransfer<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Writes a command as a RESP array.
func appendCommand(_ buffer: inout ByteBuffer, _ args: [[UInt8]]) {
    buffer.writeString("*\(args.count)\r\n")
    for a in args {
        buffer.writeString("$\(a.count)\r\n")
        buffer.writeBytes(a)
        buffer.writeStaticString("\r\n")
    }
}

func appendCommand(_ buffer: inout ByteBuffer, _ args: [String]) {
    appendCommand(&buffer, args.map { Array($0.utf8) })
}
