import Logging
import NIOCore
import RedisWire

/// The network side of an import as a pure state machine: events in (a connection made or lost, a reply,
/// the end of a read, a batch, a watchdog tick), actions out (write, close, connect again, start, end).
/// No I/O, no clock, no locks: `ImportPipeline` feeds it on the event loop and does what it says.
///
/// One connection at a time (reconnected when lost): each gets a `generation`, and events of an older
/// one are ignored. A new connection runs the `Handshake`, then resends every record not fully
/// acknowledged (`ReplyMatcher.resend`), then carries new batches.
struct PipelineStateMachine {
    enum State { case idle, connecting, handshaking, ready, done }

    /// What the driver must do after an event, in this order.
    struct Action {
        /// Close the current channel and forget it.
        var closeChannel = false
        /// Write these bytes and flush.
        var write: ByteBuffer?
        /// The first handshake ended: `start()` returns this (or throws it).
        var started: Result<ServerInfo, PipelineFailure>?
        /// Connect again after this many seconds.
        var connectAfter: Double?
        /// The pipeline is done: nothing more is written or read.
        var finished = false
    }

    private(set) var endpoint: RedisEndpoint
    let options: PipelineOptions
    /// Prefix of temporary key names (see `Record.temporary`).
    let temporaryPrefix: [UInt8]
    let allocator = ByteBufferAllocator()

    private(set) var state = State.idle
    /// The current connection's number.
    private(set) var generation = 0
    private(set) var matcher: ReplyMatcher
    private var handshake: Handshake?
    /// `start()` waits for the first handshake.
    private var starting = true
    private var finishing = false
    /// When the connection went (nil while connected), and connection attempts since.
    private var disconnectedAt: Double?
    private var attempts = 0
    private(set) var reconnects = 0
    /// `retarget` moved the pipeline to another node since the last handshake.
    private var failedOver = false
    /// The database the command stream is in after the last batch queued.
    private var streamDB: Int?
    private(set) var server: ServerInfo?
    private(set) var warnings: [String] = []
    /// When the last reply arrived (or the last write started waiting for one).
    private(set) var lastReply = 0.0

    init(endpoint: RedisEndpoint, options: PipelineOptions, problems: ProblemLog, temporaryPrefix: [UInt8]) {
        self.endpoint = endpoint
        self.options = options
        self.temporaryPrefix = temporaryPrefix
        matcher = ReplyMatcher(problems: problems)
    }

    var failure: PipelineFailure? { matcher.failure }
    var isDone: Bool { state == .done }

    // MARK: connecting

    /// A connection attempt may start: returns its generation (nil: one is under way, or the end came).
    mutating func connect() -> Int? {
        guard state == .idle else { return nil }
        state = .connecting
        generation += 1
        return generation
    }

    /// The connection of `generation` is open: returns the handshake to write, or nil when the connection
    /// is no longer wanted (the driver closes it).
    mutating func connected(generation g: Int, now: Double) -> ByteBuffer? {
        guard g == generation, state == .connecting else { return nil }
        state = .handshaking
        options.logger.debug("connected to \(endpoint.address); handshake")
        var c = Handshake.Configuration(address: endpoint.address, username: endpoint.username, password: endpoint.password)
        c.clientName = options.clientName
        c.readDatabases = server == nil  // what the target holds before the import writes: first connection only
        c.database = matcher.firstPendingDB ?? streamDB
        // After a failover the node is another one: its run id is no sign of a restart.
        var h = Handshake(c, previous: failedOver ? nil : server)
        failedOver = false
        var b = allocator.buffer(capacity: 256)
        h.write(into: &b)
        handshake = h
        lastReply = now
        return b
    }

    /// The connection attempt of `generation` failed.
    mutating func connectFailed(generation g: Int, error: Error, now: Double) -> Action {
        var a = Action()
        guard g == generation else { return a }
        if starting && !options.retryFirstConnection {
            matcher.fail(.connection(ConnectionError(.unreachable, "cannot connect to \(endpoint.address): \(error)")))
            finalize(&a)
        } else {
            lost(reason: "\(error)", delay: nil, now: now, &a)
        }
        return a
    }

    /// The connection of `generation` closed (after `error`, if any).
    mutating func closed(generation g: Int, error: Error?, now: Double) -> Action {
        var a = Action()
        guard g == generation else { return a }
        a.closeChannel = true
        guard state != .done else { return a }
        let reason = error.map { "\($0)" } ?? "the target closed the connection"
        if starting && !options.retryFirstConnection {
            let e = ConnectionError(.closed, "connection to \(endpoint.address) closed during the handshake: \(reason)")
            matcher.fail(.connection(e))
            finalize(&a)
        } else {
            lost(reason: reason, delay: nil, now: now, &a)
        }
        return a
    }

    /// Checks for a target that stopped answering (every half second).
    mutating func watchdog(now: Double) -> Action {
        var a = Action()
        guard state == .ready || state == .handshaking, now - lastReply > options.replyTimeout else { return a }
        let seconds = Int(options.replyTimeout)
        if let b = matcher.current, b.written || state == .handshaking {
            lost(reason: "no reply for \(seconds) s", delay: 0, now: now, &a)
        } else if state == .handshaking {
            lost(reason: "no reply to the handshake for \(seconds) s", delay: 0, now: now, &a)
        }
        return a
    }

    /// The connection is gone (or must go): connect again after a pause and resend, unless the import has
    /// stopped or the target stays away longer than `reconnectTimeout`.
    private mutating func lost(reason: String, delay: Double?, now: Double, _ a: inout Action) {
        if disconnectedAt == nil && state == .ready {
            options.logger.warning("connection to \(endpoint.address) lost (\(reason)); reconnecting")
        } else {
            options.logger.debug("connection attempt to \(endpoint.address): \(reason)")
        }
        a.closeChannel = true
        generation += 1  // ignore whatever the old connection still delivers
        handshake = nil
        matcher.connectionLost()
        if failure != nil || (finishing && !matcher.awaitingReplies) {
            finalize(&a)
            return
        }
        if disconnectedAt == nil { disconnectedAt = now }
        if now - disconnectedAt! > options.reconnectTimeout {
            let seconds = Int(options.reconnectTimeout)
            stop(.connectionLost(address: endpoint.address, seconds: seconds, lastError: reason), &a)
            return
        }
        state = .idle
        a.connectAfter = delay ?? min(0.05 * Double(1 << min(attempts, 5)), 1.0)
        attempts += 1
    }

    // MARK: replies

    /// A run of `count` replies `+OK`: acknowledged record by record without looking at each reply.
    mutating func receivedOK(count: Int, generation g: Int, now: () -> Double) -> Action? {
        guard g == generation else { return nil }
        var n = count
        var action: Action?
        while n > 0 {
            guard state == .ready, matcher.canMatch else {
                // A handshake reply, or unexpected.
                n -= 1
                guard let a = received(.simple("OK"), generation: g, now: now) else { continue }
                action.merge(a)
                if a.closeChannel || a.finished { return action }
                continue
            }
            let (taken, finished) = matcher.takeOKs(n)
            n -= taken
            if finished && (failure != nil || finishing) {
                var a = Action()
                checkDone(&a)
                if a.finished {
                    action.merge(a)
                    return action
                }
            }
        }
        return action
    }

    /// One reply; nil when there is nothing to do. (`now` is read only when the reply changes the
    /// connection: replies come many per read, and the clock is read once per read.)
    mutating func received(_ reply: RESPReply, generation g: Int, now: () -> Double) -> Action? {
        guard g == generation, state == .handshaking || state == .ready else { return nil }
        if handshake != nil { return handshakeReply(reply, now: now) }
        guard state == .ready, matcher.canMatch else {
            var a = Action()
            stop(.unexpectedReply(reply), &a)
            return a
        }
        switch matcher.receive(reply) {
        case .retry(let e):
            var a = Action()
            lost(reason: e.message, delay: 0.2, now: now(), &a)
            return a
        case .matched(let finished):
            guard finished && (failure != nil || finishing) else { return nil }
            var a = Action()
            checkDone(&a)
            return a
        }
    }

    /// The end of a read of `generation` (the driver reads the clock once per read, not per reply).
    mutating func readComplete(generation g: Int, now: Double) {
        if g == generation { lastReply = now }
    }

    private mutating func handshakeReply(_ reply: RESPReply, now: () -> Double) -> Action? {
        var a = Action()
        switch handshake!.receive(reply) {
        case .wait:
            return nil
        case .retry(let e):
            lost(reason: e.message, delay: 0.2, now: now(), &a)  // loading its data after a restart, busy script, ...
        case .refused(let e):
            stop(.connection(e), &a)
        case .done(let info):
            warnings += handshake!.warnings
            handshake = nil
            server = info
            ready(info, now: now(), &a)
        }
        return a
    }

    /// The handshake is done: resend what is pending.
    private mutating func ready(_ info: ServerInfo, now: Double, _ a: inout Action) {
        state = .ready
        disconnectedAt = nil
        attempts = 0
        if starting {
            starting = false
            a.started = .success(info)
        } else {
            reconnects += 1
            options.logger.notice("reconnected to \(endpoint.address): resending \(matcher.pendingRecords) records not fully acknowledged")
        }
        // AOF commands are not idempotent: one that was sent and not acknowledged may or may not have run.
        if let r = matcher.firstUnacknowledgedAOF {
            stop(.aofUnacknowledged(file: matcher.problems.fileName(r.file), offset: r.offset), &a)
            return
        }
        if let out = matcher.resend(temporaryPrefix: temporaryPrefix, allocator: allocator) {
            a.write = out
            lastReply = now
        }
        checkDone(&a)
    }

    // MARK: batches

    /// Queues a batch from the decoder; true when the driver should write it now.
    mutating func enqueue(_ batch: Batch, now: () -> Double) -> Bool {
        guard state != .done else {
            matcher.drop(batch, written: false)
            return false
        }
        if let db = batch.endDB { streamDB = db }
        let idle = matcher.current == nil
        let write = matcher.enqueue(batch, writable: state == .ready)
        if write && idle { lastReply = now() }
        return write
    }

    /// A stop requested before the first handshake ended (a target that accepts the connection and does not
    /// answer): the start fails at once with `reason`. Nothing was sent; later, a stop goes between keys instead.
    mutating func abortStart(_ reason: String) -> Action {
        var a = Action()
        guard starting, state != .done else { return a }
        stop(.connection(ConnectionError(.closed, "\(reason) while connecting to \(endpoint.address)")), &a)
        return a
    }

    /// No more batches come: end once every record is acknowledged.
    mutating func finish() -> Action {
        finishing = true
        var a = Action()
        checkDone(&a)
        return a
    }

    // MARK: ending

    private mutating func checkDone(_ a: inout Action) {
        guard state != .done else { return }
        if failure != nil {
            if !matcher.awaitingReplies || state != .ready { finalize(&a) }
        } else if finishing && !matcher.awaitingReplies {
            finalize(&a)
        }
    }

    /// Stops the import at once: what is pending did not arrive.
    private mutating func stop(_ reason: PipelineFailure, _ a: inout Action) {
        matcher.fail(reason)
        finalize(&a)
    }

    private mutating func finalize(_ a: inout Action) {
        guard state != .done else { return }
        state = .done
        matcher.dropAll()
        handshake = nil
        generation += 1
        a.closeChannel = true
        a.finished = true
        if starting {
            starting = false
            a.started = .failure(failure ?? .connection(ConnectionError(.closed, "the import ended before the connection was ready")))
        }
    }

    /// What to release from the window (the driver publishes it).
    mutating func takeReleased() -> InflightWindow.Release { matcher.takeReleased() }

    /// Cluster targets: `MOVED`/`ASK` answers hand their record back (`takeRedirected`) instead of
    /// stopping the import.
    var followsRedirects: Bool {
        get { matcher.followsRedirects }
        set { matcher.followsRedirects = newValue }
    }

    /// Cluster masters with replicas: records count as delivered once a `WAIT` after them is answered.
    var confirming: Bool {
        get { matcher.confirming }
        set { matcher.confirming = newValue }
    }

    /// Whether the first connection is still being made (no reconnect yet).
    var isStarting: Bool { starting }

    /// Points later connections at another node (the replica that took over a failed cluster master).
    mutating func retarget(_ e: RedisEndpoint) {
        options.logger.notice("\(endpoint.address) is replaced by \(e.address) (cluster failover)")
        endpoint = e
        failedOver = true
    }

    /// `WAIT`s a replica did not answer in time, and AOF commands not resent after a failover.
    var confirmationShortfalls: (waits: Int, aofNotResent: Int) { (matcher.unconfirmedWaits, matcher.aofNotResent) }

    /// Records answered with a redirect since the last call.
    mutating func takeRedirected() -> [RedirectedRecord] {
        defer { matcher.redirected.removeAll() }
        return matcher.redirected
    }
}

extension PipelineStateMachine.Action? {
    /// Adds what `other` asks for (events handled in one go: a run of `+OK` that ends a handshake).
    mutating func merge(_ other: PipelineStateMachine.Action) {
        guard var a = self else {
            self = other
            return
        }
        a.closeChannel = a.closeChannel || other.closeChannel
        if var w = a.write, let o = other.write {
            w.writeImmutableBuffer(o)
            a.write = w
        } else if a.write == nil {
            a.write = other.write
        }
        if a.started == nil { a.started = other.started }
        if other.connectAfter != nil { a.connectAfter = other.connectAfter }
        a.finished = a.finished || other.finished
        self = a
    }
}
