import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RDBKit
import RedisWire

/// Settings of the replica side of a sync.
public struct ReplicaOptions: Sendable {
    /// Advertise `capa eof` (diskless snapshots with an EOF mark when the source is set up for them).
    public var diskless = true
    /// Stop after the snapshot (`--full-only`).
    public var fullOnly = false
    /// `REPLCONF ACK` period (the master drops a replica whose last ACK is older than its `repl-timeout`).
    public var ackInterval = 1.0
    /// No byte from the source for this long: the connection counts as lost (the master pings every
    /// `repl-ping-replica-period`, 10 s by default).
    public var readTimeout = 60.0
    /// How long to keep trying to reach the source again after the connection is lost.
    public var reconnectTimeout = 60.0
    public var connectTimeoutSeconds: Int64 = 10
    /// Bytes held in memory for the decoder before the rest goes to a spool file.
    public var spoolMemoryBytes = 64 << 20
    /// Where the spool file goes (it is unlinked at once; bounded only by the disk).
    public var spoolDirectory = "/tmp"
    /// Continue from here (`PSYNC <replid> <offset+1>`) on the first connection: a checkpoint.
    public var resume: (replid: String, offset: Int64, db: Int)?
    public var logger = Logger(label: "rdbreplication")

    public init() {}
}

/// Reads a handler's bytes off the channel and hands them to the link (no pipeline trip per reply: the
/// bytes are the replication stream).
final class ReplicaChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let link: ReplicaLink
    let generation: Int

    init(link: ReplicaLink, generation: Int) {
        self.link = link
        self.generation = generation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data)
        link.received(b, generation: generation)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        link.lost(generation: generation, reason: "\(error)")
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        link.lost(generation: generation, reason: "the source closed the connection")
        context.fireChannelInactive()
    }
}

/// The connection to the source, as its replica: the handshake, the snapshot and the command stream into
/// a `ReplicaQueue`, `REPLCONF ACK` every second, and after a lost connection `PSYNC <replid> <offset+1>`
/// (the stream goes on where it stopped) or, when the source cannot continue, a new full sync.
///
/// Everything runs on its own event loop (a thread of its own, so that neither the decoder nor the
/// target's connections can delay the acknowledgements).
public final class ReplicaLink: @unchecked Sendable {
    public let source: RedisEndpoint
    public let options: ReplicaOptions
    public let queue: ReplicaQueue
    let group: MultiThreadedEventLoopGroup
    let eventLoop: EventLoop
    let connector: Connector

    // Event loop only.
    var channel: Channel?
    var generation = 0
    var framing = ReplicationFraming(handshakeReplies: 0)
    var handshakeCommands: [String] = []
    var repliesSeen = 0
    /// Where to continue from after a lost connection (the stream's replid and the offset received).
    var replid: String?
    var streamStartOffset: Int64 = 0
    var streamBytes: Int64 = 0
    var streaming = false
    var segmentOpen = false
    /// Between `+FULLRESYNC` and the snapshot's end: a lost connection makes the segment useless.
    var snapshotPending = false
    var stopping = false
    var lostAt: Double?
    var lastByteAt = 0.0
    var ackTimer: RepeatedTask?
    var firstConnection = true
    /// The last reason a connection attempt failed.
    var lastError = ""

    // Published for other threads.
    private let published = NIOLockedValueBox(Published())
    struct Published {
        var receivedOffset: Int64 = 0
        var fullSyncs = 0
        var partialSyncs = 0
        var reconnects = 0
        var warnings: [String] = []
        var replid: String?
        var inSnapshot = false
        var snapshotBytes = 0
    }

    public init(source: RedisEndpoint, options: ReplicaOptions) throws {
        self.source = source
        self.options = options
        queue = ReplicaQueue(memoryLimit: options.spoolMemoryBytes, spoolDirectory: options.spoolDirectory)
        connector = try Connector(endpoint: source, connectTimeout: .seconds(options.connectTimeoutSeconds))
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        eventLoop = group.next()
        if let r = options.resume {
            replid = r.replid
            streamStartOffset = r.offset
        }
    }

    /// Stops and lets the link's thread go (call once, not from the link's event loop).
    public func shutdown() {
        guard !isShutDown.withLockedValue({ let was = $0; $0 = true; return was }) else { return }
        stop()
        try? eventLoop.submit {}.wait()
        try? group.syncShutdownGracefully()
    }

    private let isShutDown = NIOLockedValueBox(false)

    /// The offset of the source's stream received so far, full and partial syncs, reconnects.
    public var status: (receivedOffset: Int64, fullSyncs: Int, partialSyncs: Int, reconnects: Int, inSnapshot: Bool, snapshotBytes: Int) {
        published.withLockedValue { ($0.receivedOffset, $0.fullSyncs, $0.partialSyncs, $0.reconnects, $0.inSnapshot, $0.snapshotBytes) }
    }

    public var warnings: [String] { published.withLockedValue { $0.warnings } }
    public var currentReplid: String? { published.withLockedValue { $0.replid } }

    /// Connects (the first segment, or the end of one, arrives in the queue).
    public func start() {
        eventLoop.execute { self.connect() }
    }

    /// Stops: the connection is closed and the current segment ends (`.stopped`) after what was received.
    public func stop() {
        eventLoop.execute {
            guard !self.stopping else { return }
            self.stopping = true
            if self.segmentOpen { self.endSegment(.stopped) } else { self.queue.end(.stopped) }
            self.closeChannel()
            self.ackTimer?.cancel()
            self.ackTimer = nil
        }
    }

    /// Ends the current segment and starts over with a full sync (`PSYNC ? -1`): the target can no longer
    /// be trusted to match the stream.
    public func restartFullSync() {
        eventLoop.execute {
            guard !self.stopping else { return }
            self.replid = nil
            self.streaming = false
            self.endSegment(.resync)
            self.closeChannel()
            self.lostAt = nil
            self.connect()
        }
    }

    /// Sends `REPLCONF ACK` now (the stream asked with `REPLCONF GETACK`).
    public func ackNow() {
        eventLoop.execute { self.sendAck() }
    }

    // MARK: event loop

    func warn(_ s: String) {
        options.logger.notice("\(s)")
        published.withLockedValue { $0.warnings.append(s) }
    }

    func connect() {
        guard !stopping else { return }
        generation += 1
        let g = generation
        let box = UnsafeTransfer(self)
        connector.connect(on: eventLoop) { sync in
            try sync.addHandler(ReplicaChannelHandler(link: box.value, generation: g))
        }.whenComplete { result in
            switch result {
            case .success(let ch):
                guard g == self.generation, !self.stopping else {
                    ch.close(promise: nil)
                    return
                }
                self.channel = ch
                self.handshake(ch)
            case .failure(let e):
                guard g == self.generation else { return }
                self.lastError = "cannot connect to the source \(self.source.address): \(e)"
                self.retry()
            }
        }
    }

    /// `PING`, `AUTH`, `REPLCONF listening-port`, `REPLCONF capa`, written at once (`PSYNC` follows their replies).
    func handshake(_ ch: Channel) {
        var b = ch.allocator.buffer(capacity: 256)
        var names: [String] = ["PING"]
        b.writeCommand(["PING"])
        if let pw = source.password {
            var args = ["AUTH"]
            if let u = source.username { args.append(u) }
            args.append(pw.value)
            b.writeCommand(args)
            names.append("AUTH")
        }
        let port = ch.localAddress?.port ?? 0
        b.writeCommand(["REPLCONF", "listening-port", String(port)])
        names.append("REPLCONF listening-port")
        // Never dual-channel, rdb-channel or compression: a replica that does not ask gets the classic flow.
        b.writeCommand(options.diskless ? ["REPLCONF", "capa", "eof", "capa", "psync2"] : ["REPLCONF", "capa", "psync2"])
        names.append("REPLCONF capa")
        if options.fullOnly {
            // The snapshot only: the master keeps no replication buffer for us (6.2+; an older one answers an
            // error, which only costs it that buffer).
            b.writeCommand(["REPLCONF", "rdb-only", "1"])
            names.append("REPLCONF rdb-only")
        }
        // PSYNC goes once these are answered: the master refuses it while replies are pending ("SYNC and
        // PSYNC are invalid with pending output").
        handshakeCommands = names
        repliesSeen = 0
        framing = ReplicationFraming(handshakeReplies: names.count)
        lastByteAt = monotonicNow()
        startTimer()
        ch.writeAndFlush(b, promise: nil)
    }

    func received(_ buffer: ByteBuffer, generation g: Int) {
        guard g == generation, !stopping else { return }
        lastByteAt = monotonicNow()
        let arrival = unixMillis()
        do {
            try buffer.withUnsafeReadableBytes { raw in
                try framing.feed(raw) { out in
                    switch out {
                    case .rdb(let b):
                        if let e = queue.append(b, arrival: arrival) { throw ReplicationFraming.ProtocolError(description: e) }
                        published.withLockedValue { $0.snapshotBytes += b.count }
                    case .stream(let b):
                        if let e = queue.append(b, arrival: arrival) { throw ReplicationFraming.ProtocolError(description: e) }
                        streamBytes += Int64(b.count)
                        let off = streamStartOffset + streamBytes
                        published.withLockedValue { $0.receivedOffset = off }
                    case .event(let e):
                        try handle(e)
                    }
                }
            }
        } catch let r as Refusal {
            fail(r.message)
        } catch {
            fail("the replication stream from \(source.address) broke: \(error)")
        }
    }

    func handle(_ e: ReplicationFraming.Event) throws {
        switch e {
        case .keepalive:
            break
        case .reply(let line):
            let what = repliesSeen < handshakeCommands.count ? handshakeCommands[repliesSeen] : "?"
            repliesSeen += 1
            if repliesSeen == handshakeCommands.count { sendPSync() }
            guard line.hasPrefix("-") else { return }
            if what == "AUTH" {
                throw Refusal(fatal: true, message: "the source \(source.address) refused the login: \(source.password?.redact(line) ?? line)")
            }
            if what != "PING" { warn("the source \(source.address) answered \(what) with \(line)") }
        case .refused(let line):
            let upper = line.uppercased()
            if upper.hasPrefix("-NOMASTERLINK") || upper.hasPrefix("-LOADING") || upper.hasPrefix("-BUSY") {
                lastError = "the source \(source.address) cannot serve a replica yet: \(line)"
                closeChannel()
                retry()
                return
            }
            if upper.contains("NOAUTH") || upper.contains("NOPERM") || upper.contains("WRONGPASS") {
                throw Refusal(fatal: true, message: "the source \(source.address) refused PSYNC: \(line) (the user needs +psync +replconf +ping)")
            }
            // An unknown (renamed, disabled) PSYNC: this source cannot be replicated.
            stopping = true
            endSegment(.psyncRefused("the source \(source.address) refuses to act as a master (PSYNC answered \(line.prefix(200)))"))
            closeChannel()
        case .fullResync(let id, let offset):
            if segmentOpen {
                warn("the source \(source.address) could not continue the stream (replid \(replid ?? "?") offset \(streamStartOffset + streamBytes)): a new full sync")
                endSegment(.resync)
            }
            replid = nil  // until the new stream starts, a lost connection means another full sync
            streaming = false
            streamStartOffset = offset
            streamBytes = 0
            published.withLockedValue {
                $0.fullSyncs += 1
                $0.replid = id
                $0.receivedOffset = offset
                $0.inSnapshot = true
                $0.snapshotBytes = 0
            }
            pendingReplid = id
            snapshotPending = true
            firstConnection = false
            queue.begin(SegmentStart(kind: .full, replid: id, offset: offset))
            segmentOpen = true
            lostAt = nil
        case .rdbBegin:
            break
        case .rdbEnd:
            snapshotPending = false
            published.withLockedValue { $0.inSnapshot = false }
            if options.fullOnly {
                stopping = true
                endSegment(.stopped)
                closeChannel()
                return
            }
            replid = pendingReplid
            streaming = true
            queue.streamStart(streamStartOffset)
            sendAck()
        case .continued(let newID):
            published.withLockedValue {
                $0.partialSyncs += 1
                if let newID { $0.replid = newID } else { $0.replid = self.replid }
            }
            if let newID { replid = newID }
            lostAt = nil
            streaming = true
            if !segmentOpen {
                // The first connection continued from a checkpoint: the stream starts in its database (the
                // master does not send SELECT again), told to the decoder by a SELECT of our own.
                queue.begin(SegmentStart(kind: .continued, replid: replid ?? "?", offset: streamStartOffset))
                segmentOpen = true
                var b = ByteBuffer()
                b.writeCommand(["SELECT", String(options.resume?.db ?? 0)])
                b.withUnsafeReadableBytes { _ = queue.append($0, arrival: unixMillis()) }
                queue.streamStart(streamStartOffset)
            }
            firstConnection = false
            published.withLockedValue { $0.receivedOffset = self.streamStartOffset + self.streamBytes }
            sendAck()
        }
    }

    var pendingReplid: String?

    /// `PSYNC <replid> <offset+1>` to continue, `PSYNC ? -1` for a full sync.
    func sendPSync() {
        guard let ch = channel else { return }
        var b = ch.allocator.buffer(capacity: 96)
        if let id = replid {
            b.writeCommand(["PSYNC", id, String(streamStartOffset + streamBytes + 1)])
        } else {
            b.writeCommand(["PSYNC", "?", "-1"])
        }
        ch.writeAndFlush(b, promise: nil)
    }

    struct Refusal: Error, CustomStringConvertible {
        let fatal: Bool
        let message: String
        var description: String { message }
    }

    func sendAck() {
        guard streaming, let ch = channel else { return }
        var b = ch.allocator.buffer(capacity: 64)
        b.writeCommand(["REPLCONF", "ACK", String(streamStartOffset + streamBytes)])
        ch.writeAndFlush(b, promise: nil)
    }

    func startTimer() {
        guard ackTimer == nil else { return }
        let ms = Int64(options.ackInterval * 1000)
        ackTimer = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(ms), delay: .milliseconds(ms)) { _ in
            self.tick()
        }
    }

    func tick() {
        guard !stopping else { return }
        sendAck()
        if channel != nil, monotonicNow() - lastByteAt > options.readTimeout {
            lost(generation: generation, reason: "no byte from the source for \(Int(options.readTimeout)) s")
        }
    }

    func closeChannel() {
        let ch = channel
        channel = nil
        generation += 1
        ch?.close(promise: nil)
    }

    /// The connection `g` is gone.
    func lost(generation g: Int, reason: String) {
        guard g == generation else { return }
        channel?.close(promise: nil)
        channel = nil
        generation += 1
        guard !stopping else { return }
        if snapshotPending {
            // Half a snapshot is of no use: a new full sync follows.
            endSegment(.broken("the connection to the source \(source.address) was lost during the snapshot: \(reason)"))
            snapshotPending = false
            replid = nil
        }
        streaming = false
        lastError = "the connection to the source \(source.address) was lost: \(reason)"
        warn(lastError + (replid != nil ? "; continuing with PSYNC" : "; starting over with a full sync"))
        published.withLockedValue { $0.reconnects += 1 }
        retry()
    }

    /// Tries again after a pause, until `reconnectTimeout` has passed since the connection was lost.
    func retry() {
        guard !stopping else { return }
        let now = monotonicNow()
        if firstConnection && lostAt == nil && !segmentOpen {
            // Never connected: the source is not there (a clear error at once, rather than a minute of retries).
            if lastError.hasPrefix("cannot connect") { return fail(lastError) }
        }
        if lostAt == nil { lostAt = now }
        if now - lostAt! > options.reconnectTimeout {
            return fail("\(lastError) (gave up after \(Int(options.reconnectTimeout)) s of reconnecting)")
        }
        eventLoop.scheduleTask(in: .milliseconds(200)) { self.connect() }
    }

    func fail(_ message: String) {
        guard !stopping else { return }
        stopping = true
        endSegment(.failed(message))
        closeChannel()
        ackTimer?.cancel()
        ackTimer = nil
    }

    func endSegment(_ e: SegmentEnd) {
        if segmentOpen || !isSegmentEndOnly(e) {
            queue.end(e)
        }
        segmentOpen = false
    }

    /// `stopped`/`resync`/`broken` only end an open segment; failures are always told.
    func isSegmentEndOnly(_ e: SegmentEnd) -> Bool {
        switch e {
        case .stopped, .resync, .broken: true
        case .failed, .psyncRefused: false
        }
    }
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func unixMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
