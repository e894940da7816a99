#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Logging
import NIOCore
import NIOPosix
import RDBKit
import RedisWire

/// Limits and fault handling of the pipelined connection.
public struct PipelineOptions: Sendable {
    /// Most commands sent and not yet answered (the decoder waits when the window is full).
    public var maxCommandsInFlight = 20_000
    /// Most bytes sent (or queued) and not yet answered, with those answered but held for a resend (the parts
    /// of a key until its last part is answered): the import's memory bound for the network side, passed only
    /// by one key larger than it. 16 MiB covers the bandwidth-delay product of a 10 Gbit/s link at 10 ms; on
    /// loopback 16 and 64 MiB import at the same speed (huge-aggregates: peak RSS 122 -> 84 MiB).
    public var maxBytesInFlight = 16 << 20
    /// After the connection is lost: how long to keep trying to reconnect (seconds).
    public var reconnectTimeout = 60.0
    /// With commands outstanding: how long without any reply before the connection counts as lost.
    public var replyTimeout = 60.0
    /// Whether a first connection that cannot be made, or closes before it is ready, is tried again like a lost
    /// one (within `reconnectTimeout`) instead of ending the import: for a target known to be there, such as a
    /// sync's next segment, whose connections may be cut at any moment. (An import's first connection fails at
    /// once: a wrong address is not waited on.)
    public var retryFirstConnection = false
    /// `CLIENT SETNAME` (nil: not set).
    public var clientName: String? = "rdbcat-import"
    public var connectTimeoutSeconds: Int64 = 10
    /// Connection events: lost and re-established connections (notice/warning), handshakes (debug).
    /// Messages never contain secrets.
    public var logger = Logger(label: "rdbimport")

    public init() {}
}

/// The network side of an import: one connection (reconnected when lost) carrying batches of records
/// with a bounded window of commands in flight. The driver of `PipelineStateMachine`: it feeds it events
/// on the connection's event loop and does what it says.
///
/// The decoder thread calls `submit`, which blocks while the window is full (backpressure: the decoder
/// runs no faster than the server answers, and memory stays bounded by the window). Everything else runs
/// on the event loop: writing, reading replies and matching them in order to the records (`ReplyMatcher`),
/// counting error replies per key, reconnecting. Records are kept until all their replies have arrived;
/// after a reconnect every record not fully acknowledged is sent again, rewritten so that it rebuilds its
/// key whole (see `Record.temporary`; RESTORE … REPLACE and DEL-first records are whole already), after
/// re-authenticating and re-selecting the database.
final class ImportPipeline: ReplyReceiver, @unchecked Sendable {
    /// Opens a connection whose replies go to the receiver (`Connector.connect`; tests use an
    /// `EmbeddedChannel`).
    typealias Connect = (EventLoop, ReplyReceiver, Int) -> EventLoopFuture<Channel>

    let endpoint: RedisEndpoint
    let eventLoop: EventLoop
    let window: InflightWindow
    var open: Connect
    /// The clock (monotonic seconds); read once per read, not per reply.
    let clock: () -> Double

    // Event loop only (and, after `finish`, the decoder thread).
    @exclusivity(unchecked) var machine: PipelineStateMachine
    var channel: Channel?
    var startPromise: EventLoopPromise<ServerInfo>?
    /// Cluster targets: before each reconnect (not the first connection), asked off the event loop which node
    /// to connect to now: nil keeps the current one; else the node and whether records wait for a replica's
    /// confirmation there (`confirming`). A failed master's replica takes over this way.
    var resolveTarget: (@Sendable (RedisEndpoint) -> (endpoint: RedisEndpoint, confirming: Bool)?)?

    /// Cluster masters with replicas: see `ReplyMatcher.confirming`. Set before `start`.
    var confirming: Bool {
        get { machine.confirming }
        set { machine.confirming = newValue }
    }

    /// Cluster targets: receives the records a node redirected (on the event loop, before the window
    /// releases them). Set before `start`.
    var onRedirect: (([RedirectedRecord]) -> Void)? {
        didSet { machine.followsRedirects = onRedirect != nil }
    }

    convenience init(endpoint: RedisEndpoint, options: PipelineOptions, problems: ProblemLog, temporaryPrefix: [UInt8]) throws {
        self.init(
            endpoint: endpoint, options: options, problems: problems, temporaryPrefix: temporaryPrefix,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            connect: try Self.connector(for: endpoint, options: options))
    }

    /// Connections to `endpoint` (TCP or TLS, as it says).
    static func connector(for endpoint: RedisEndpoint, options: PipelineOptions) throws -> Connect {
        let connector = try Connector(endpoint: endpoint, connectTimeout: .seconds(options.connectTimeoutSeconds))
        return { connector.connect(on: $0, receiver: $1, generation: $2) }
    }

    init(
        endpoint: RedisEndpoint, options: PipelineOptions, problems: ProblemLog, temporaryPrefix: [UInt8],
        eventLoop: EventLoop, connect: @escaping Connect, clock: @escaping () -> Double = monotonicSeconds
    ) {
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        open = connect
        self.clock = clock
        window = InflightWindow(maxCommands: options.maxCommandsInFlight, maxBytes: options.maxBytesInFlight)
        machine = PipelineStateMachine(endpoint: endpoint, options: options, problems: problems, temporaryPrefix: temporaryPrefix)
    }

    // MARK: decoder thread

    /// Connects, authenticates and reads the server's INFO. Throws (a `PipelineFailure`) when the target
    /// cannot be reached or refuses the login.
    func start() throws -> ServerInfo {
        try begin().wait()
    }

    /// Ends a `start` still waiting for the handshake (from any thread; see `PipelineStateMachine.abortStart`).
    func abortStart(_ reason: String) {
        eventLoop.execute { self.perform(self.machine.abortStart(reason)) }
    }

    /// `start` without waiting (tests on an `EmbeddedEventLoop` run the loop themselves).
    func begin() -> EventLoopFuture<ServerInfo> {
        let p = eventLoop.makePromise(of: ServerInfo.self)
        eventLoop.execute {
            self.startPromise = p
            self.connect()
            self.scheduleWatchdog()
        }
        return p.futureResult
    }

    /// Hands a batch to the connection, waiting while the window is full. Returns false (and sends
    /// nothing) once the import has stopped.
    func submit(_ batch: Batch) -> Bool {
        guard window.reserve(commands: batch.commands, bytes: batch.bytes) else { return false }
        let box = UnsafeTransfer(batch)
        eventLoop.execute { self.enqueue(box.value) }
        return true
    }

    /// Keys acknowledged so far, commands and bytes in flight.
    var progress: (ackedKeys: Int, commands: Int, bytes: Int) { window.progress }

    /// Waits until every record is acknowledged (or the import stopped), then closes the connection.
    func finish() {
        eventLoop.execute { self.perform(self.machine.finish()) }
        window.waitForEnd()
    }

    // After `finish` (the event loop is done with them).
    var failure: PipelineFailure? { machine.failure }
    var counters: [ReplyCounters] { machine.matcher.counters }
    var warnings: [String] { machine.warnings }
    var reconnects: Int { machine.reconnects }
    var confirmationShortfalls: (waits: Int, aofNotResent: Int) { machine.confirmationShortfalls }

    // MARK: event loop

    func connect() {
        guard let g = machine.connect() else { return }
        guard let resolve = resolveTarget, !machine.isStarting else { return open(generation: g) }
        let current = machine.endpoint
        // Discovery blocks (a connection and replies to each node asked, up to seconds): not on the event loop,
        // and on a thread of its own rather than a global dispatch queue's, whose few threads such waits can
        // all hold (a failover makes every pipeline of the lost master rediscover at once).
        let rediscover: @Sendable () -> Void = {
            let next = resolve(current)
            self.eventLoop.execute {
                if let next, next.endpoint.address != self.machine.endpoint.address {
                    do {
                        self.open = try Self.connector(for: next.endpoint, options: self.machine.options)
                        self.machine.retarget(next.endpoint)
                        self.machine.confirming = next.confirming
                    } catch {
                        self.machine.options.logger.warning("cannot connect to \(next.endpoint.address): \(error)")
                    }
                }
                self.open(generation: g)
            }
        }
        if let thread = startThread(rediscover) {
            pthread_detach(thread)
        } else {
            DispatchQueue.global().async(execute: rediscover)
        }
    }

    /// Opens the connection of attempt `g`.
    func open(generation g: Int) {
        open(eventLoop, self, g).whenComplete { result in
            switch result {
            case .success(let ch):
                guard let handshake = self.machine.connected(generation: g, now: self.clock()) else {
                    ch.close(promise: nil)
                    return
                }
                self.channel = ch
                ch.writeAndFlush(handshake, promise: nil)
            case .failure(let e):
                self.perform(self.machine.connectFailed(generation: g, error: e, now: self.clock()))
            }
        }
    }

    func enqueue(_ batch: Batch) {
        if machine.enqueue(batch, now: clock), let ch = channel {
            ch.writeAndFlush(batch.buffer, promise: nil)
        }
        publish()
    }

    func received(_ reply: RESPReply, generation g: Int) {
        if let a = machine.received(reply, generation: g, now: clock) { perform(a) }
    }

    func receivedOK(count: Int, generation g: Int) {
        if let a = machine.receivedOK(count: count, generation: g, now: clock) { perform(a) }
    }

    func readComplete(generation g: Int) {
        machine.readComplete(generation: g, now: clock())
        publish()
    }

    func closed(generation g: Int, error: Error?) {
        perform(machine.closed(generation: g, error: error, now: clock()))
    }

    /// Detects a target that stopped answering.
    func scheduleWatchdog() {
        eventLoop.scheduleTask(in: .milliseconds(500)) {
            guard !self.machine.isDone else { return }
            self.perform(self.machine.watchdog(now: self.clock()))
            self.scheduleWatchdog()
        }
    }

    /// Does what the state machine asks, then publishes the window.
    func perform(_ a: PipelineStateMachine.Action) {
        if a.closeChannel {
            // Forget the old connection before closing it: closing may report its end synchronously.
            let old = channel
            channel = nil
            old?.close(promise: nil)
        }
        if let w = a.write, let ch = channel { ch.writeAndFlush(w, promise: nil) }
        if let started = a.started, let p = startPromise {
            startPromise = nil
            p.completeWith(started.mapError { $0 as Error })
        }
        if let after = a.connectAfter {
            eventLoop.scheduleTask(in: .milliseconds(Int64(after * 1000))) { self.connect() }
        }
        publish()
        if a.finished { window.end(stopped: machine.failure != nil) }
    }

    /// Releases acknowledged commands from the window and wakes the decoder.
    func publish() {
        if let onRedirect {
            let moved = machine.takeRedirected()
            if !moved.isEmpty { onRedirect(moved) }
        }
        let r = machine.takeReleased()
        let stopped = machine.failure != nil
        if !r.isEmpty || stopped { window.release(r, stopped: stopped) }
    }
}
