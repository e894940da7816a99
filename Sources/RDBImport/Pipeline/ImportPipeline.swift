import Logging
import NIOCore
import NIOPosix

/// Limits and fault handling of the pipelined connection.
public struct PipelineOptions: Sendable {
    /// Most commands sent and not yet answered (the decoder waits when the window is full).
    public var maxCommandsInFlight = 20_000
    /// Most bytes sent (or queued) and not yet answered: the import's memory bound for the network side.
    /// 16 MiB covers the bandwidth-delay product of a 10 Gbit/s link at 10 ms; on loopback 16 and 64 MiB
    /// import at the same speed (huge-aggregates: peak RSS 122 -> 84 MiB).
    public var maxBytesInFlight = 16 << 20
    /// After the connection is lost: how long to keep trying to reconnect (seconds).
    public var reconnectTimeout = 60.0
    /// With commands outstanding: how long without any reply before the connection counts as lost.
    public var replyTimeout = 60.0
    /// `CLIENT SETNAME` (nil: not set).
    public var clientName: String? = "rdbcat-import"
    public var connectTimeoutSeconds: Int64 = 10
    /// Connection events: lost and re-established connections (notice/warning), handshakes (debug).
    /// Messages never contain secrets.
    public var logger = Logger(label: "rdbimport")

    public init() {}
}

/// The network side of an import: one connection (reconnected when lost) carrying batches of records
/// with a bounded window of commands in flight.
///
/// The decoder thread calls `submit`, which blocks while the window is full (backpressure: the decoder
/// runs no faster than the server answers, and memory stays bounded by the window). Everything else runs
/// on the connection's event loop: writing, reading replies and matching them in order to the records,
/// counting error replies per key, reconnecting. Records are kept until all their replies have arrived;
/// after a reconnect every record not fully acknowledged is sent again, rewritten so that it rebuilds its
/// key whole (see `Record.temporary`; RESTORE … REPLACE and DEL-first records are whole already), after
/// re-authenticating and re-selecting the database.
///
/// A key sent in parts (`KeyPart`) is acknowledged when its last part is: from the moment its first part
/// is acknowledged, the batches from that part on stay (acknowledged, out of the window) until the last
/// part is, and a reconnect in between resends the key from its first part.
final class ImportPipeline: ReplyReceiver, @unchecked Sendable {
    enum State { case idle, connecting, handshaking, ready, done }
    enum Control { case auth, ignore, ping, info, keyspace, databases, select(Int) }

    /// Errors after which writing more is pointless: the import stops (FAILED).
    static let fatalCodes: Set<Substring> = [
        "OOM", "READONLY", "NOAUTH", "WRONGPASS", "NOPERM", "MISCONF", "MASTERDOWN", "MOVED", "ASK", "CLUSTERDOWN",
        "CROSSSLOT", "NOREPLICAS",
    ]
    /// Errors that mean "not now": reconnect after a pause and resend.
    static let retryCodes: Set<Substring> = ["LOADING", "BUSY", "TRYAGAIN"]

    let connector: Connector
    let endpoint: RedisEndpoint
    let eventLoop: EventLoop
    let options: PipelineOptions
    let problems: ProblemLog
    /// Prefix of temporary key names (see `Record.temporary`).
    let temporaryPrefix: [UInt8]

    // Shared with the decoder thread (under `cond`).
    let cond = ConditionLock()
    var inflightCommands = 0
    var inflightBytes = 0
    var ackedKeys = 0
    var sharedFailure: String?
    var sharedDone = false
    /// Largest `inflightBytes` seen (tests check the memory bound with it).
    var peakInflightBytes = 0

    // Event loop only.
    @exclusivity(unchecked) var state = State.idle
    var channel: Channel?
    @exclusivity(unchecked) var generation = 0
    @exclusivity(unchecked) var batches = CircularBuffer<Batch>()
    /// Offset in `batches` of the batch the next reply is for: the ones before it are acknowledged and
    /// kept only for the open key.
    @exclusivity(unchecked) var cursor = 0
    /// A key sent in parts has its first part acknowledged (at `openStart` in `batches.first`) and its
    /// last part not yet.
    @exclusivity(unchecked) var keyOpen = false
    @exclusivity(unchecked) var openStart = 0
    /// The open key's first part was resent (for the report of a key that then exists).
    @exclusivity(unchecked) var keyResent = false
    @exclusivity(unchecked) var control = CircularBuffer<Control>()
    @exclusivity(unchecked) var replyIndex = 0
    @exclusivity(unchecked) var recordError: String?
    @exclusivity(unchecked) var recordExists = false
    @exclusivity(unchecked) var failure: String?
    @exclusivity(unchecked) var finishing = false
    var disconnectedAt: Double?
    var attempts = 0
    var reconnects = 0
    var streamDB: Int?
    var server: ServerInfo?
    var startPromise: EventLoopPromise<ServerInfo>?
    @exclusivity(unchecked) var counters: [ReplyCounters] = []
    var warnings: [String] = []
    @exclusivity(unchecked) var ackCommands = 0
    @exclusivity(unchecked) var ackBytes = 0
    @exclusivity(unchecked) var ackKeys = 0
    @exclusivity(unchecked) var lastReply = 0.0
    var lastError: String?

    init(endpoint: RedisEndpoint, options: PipelineOptions, problems: ProblemLog, temporaryPrefix: [UInt8]) throws {
        self.endpoint = endpoint
        connector = try Connector(endpoint: endpoint, connectTimeout: .seconds(options.connectTimeoutSeconds))
        eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        self.options = options
        self.problems = problems
        self.temporaryPrefix = temporaryPrefix
    }

    // MARK: decoder thread

    /// Connects, authenticates and reads the server's INFO. Throws when the target cannot be reached or
    /// refuses the login.
    func start() throws -> ServerInfo {
        let p = eventLoop.makePromise(of: ServerInfo.self)
        eventLoop.execute {
            self.startPromise = p
            self.connect()
            self.scheduleWatchdog()
        }
        return try p.futureResult.wait()
    }

    /// Hands a batch to the connection, waiting while the window is full. Returns false (and sends
    /// nothing) once the import has stopped.
    func submit(_ batch: Batch) -> Bool {
        cond.lock()
        while sharedFailure == nil && !sharedDone && inflightCommands > 0
            && (inflightCommands + batch.commands > options.maxCommandsInFlight
                || inflightBytes + batch.bytes > options.maxBytesInFlight)
        {
            cond.wait()
        }
        if sharedFailure != nil || sharedDone {
            cond.unlock()
            return false
        }
        inflightCommands += batch.commands
        inflightBytes += batch.bytes
        peakInflightBytes = max(peakInflightBytes, inflightBytes)
        cond.unlock()
        let box = UnsafeTransfer(batch)
        eventLoop.execute { self.enqueue(box.value) }
        return true
    }

    /// Whether the import has stopped (and why).
    var stopReason: String? { cond.withLock { sharedFailure } }

    /// Keys acknowledged so far, commands and bytes in flight.
    var progress: (ackedKeys: Int, commands: Int, bytes: Int) {
        cond.withLock { (ackedKeys, inflightCommands, inflightBytes) }
    }

    /// Waits until every record is acknowledged (or the import stopped), then closes the connection.
    func finish() {
        eventLoop.execute {
            self.finishing = true
            self.checkDone()
        }
        cond.lock()
        while !sharedDone { cond.wait() }
        cond.unlock()
    }

    // MARK: connecting

    func connect() {
        // One connection attempt at a time.
        guard state == .idle else { return }
        state = .connecting
        generation += 1
        let g = generation
        connector.connect(on: eventLoop, receiver: self, generation: g).whenComplete { result in
            switch result {
            case .success(let ch):
                guard g == self.generation, self.state == .connecting else {
                    ch.close(promise: nil)
                    return
                }
                self.channel = ch
                self.state = .handshaking
                self.sendHandshake(ch)
            case .failure(let e):
                guard g == self.generation else { return }
                if let p = self.startPromise {
                    self.startPromise = nil
                    let msg = "cannot connect to \(self.endpoint.address): \(e)"
                    self.setFailure(msg)
                    self.finalize()
                    p.fail(ConnectionError(msg))
                    return
                }
                self.lostConnection(reason: "\(e)", delay: nil)
            }
        }
    }

    func sendHandshake(_ ch: Channel) {
        options.logger.debug("connected to \(endpoint.address); handshake")
        control.removeAll()
        var b = ch.allocator.buffer(capacity: 256)
        if let password = endpoint.password {
            var args = [Array("AUTH".utf8)]
            if let u = endpoint.username { args.append(Array(u.utf8)) }
            args.append(Array(password.value.utf8))
            appendCommand(&b, args)
            control.append(.auth)
        }
        if let name = options.clientName {
            appendCommand(&b, ["CLIENT", "SETNAME", name])
            control.append(.ignore)
        }
        appendCommand(&b, ["PING"])
        control.append(.ping)
        appendCommand(&b, ["INFO", "server"])
        control.append(.info)
        if server == nil {
            appendCommand(&b, ["CONFIG", "GET", "databases"])
            control.append(.databases)
            // What the target holds before the import writes anything (only on the first connection).
            appendCommand(&b, ["INFO", "keyspace"])
            control.append(.keyspace)
        }
        var db = streamDB
        for batch in batches where batch.next < batch.records.count {
            db = batch.records[batch.next].db
            break
        }
        if let db {
            Commands.select(&b, db)
            control.append(.select(db))
        }
        lastReply = monotonicSeconds()
        ch.writeAndFlush(b, promise: nil)
    }

    func handleControl(_ c: Control, _ reply: RESPReply) {
        if let e = reply.errorMessage, Self.retryCodes.contains(Self.code(e)) {
            lostConnection(reason: e, delay: 0.2)  // loading its data after a restart, busy script, ...
            return
        }
        switch c {
        case .auth:
            if let e = reply.errorMessage {
                stopNow("authentication to \(endpoint.address) failed: \(endpoint.password?.redact(e) ?? e)")
                return
            }
        case .ignore:
            break
        case .ping:
            if let e = reply.errorMessage {
                if Self.code(e) == "NOAUTH" {
                    stopNow("the target requires a password (NOAUTH): give one in the URL, --password-env or --password-file")
                } else {
                    stopNow("the target answered PING with an error: \(e)")
                }
                return
            }
        case .info:
            if let t = reply.text {
                var info = ServerInfo(info: t)
                if let old = server {
                    if !old.runID.isEmpty && !info.runID.isEmpty && old.runID != info.runID {
                        warnings.append("the target restarted during the import (run_id \(old.runID) -> \(info.runID)); keys it acknowledged before are assumed persisted")
                    }
                    info.databases = old.databases
                    info.keyspace = old.keyspace
                }
                server = info
            } else if server == nil {
                server = ServerInfo()
            }
        case .keyspace:
            if let t = reply.text { server?.keyspace = ServerInfo.keyspace(info: t) }
        case .databases:
            if case .array(let items?) = reply, items.count == 2, let v = items[1].text, let n = Int(v) {
                server?.databases = n
            }
        case .select(let db):
            if let e = reply.errorMessage {
                stopNow("SELECT \(db) failed on the target: \(e)")
                return
            }
        }
        if control.isEmpty && state == .handshaking { handshakeDone() }
    }

    func handshakeDone() {
        state = .ready
        disconnectedAt = nil
        attempts = 0
        if let p = startPromise {
            startPromise = nil
            p.succeed(server ?? ServerInfo())
        } else {
            reconnects += 1
            let pending = batches.reduce(0) { $0 + $1.records.count - $1.next }
            options.logger.notice("reconnected to \(endpoint.address): resending \(pending) records not fully acknowledged")
        }
        // AOF commands are not idempotent: one that was sent and not acknowledged may or may not have run.
        for b in batches where b.written {
            for i in b.next..<b.records.count where b.records[i].kind == .aofCommand || b.records[i].kind == .aofBlock {
                let r = b.records[i]
                stopNow("the connection was lost while AOF commands were unacknowledged, from \(problems.fileName(r.file)) offset \(r.offset) on; they may or may not have been applied and cannot be replayed safely (not idempotent)")
                return
            }
        }
        resend()
        checkDone()
    }

    /// Sends every pending record again (the ones never written as they are; the others rewritten).
    func resend() {
        guard let ch = channel, !batches.isEmpty else { return }
        for b in batches {
            if !b.written {
                ch.write(b.buffer, promise: nil)
                b.written = true
                continue
            }
            var out = ch.allocator.buffer(capacity: b.bytes + 64)
            for i in b.next..<b.records.count {
                var r = b.records[i]
                r.resent = true
                if r.temporary || r.deleteOnResend {
                    r.resendPrefix = true
                    let name = b.name(of: r)
                    name.withUnsafeBytes { Commands.del(&out, $0, prefix: r.temporary ? temporaryPrefix : []) }
                }
                b.records[i] = r
                if let slice = b.buffer.getSlice(at: b.buffer.readerIndex + r.start, length: r.length) {
                    var s = slice
                    out.writeBuffer(&s)
                }
            }
            ch.write(out, promise: nil)
        }
        lastReply = monotonicSeconds()
        ch.flush()
        settle()
        publish()
    }

    // MARK: batches

    func enqueue(_ batch: Batch) {
        if failure != nil || state == .done {
            drop(batch, written: false)
            publish()
            return
        }
        if let db = batch.endDB { streamDB = db }
        let idle = current == nil
        batches.append(batch)
        if state == .ready, let ch = channel {
            if idle { lastReply = monotonicSeconds() }
            batch.written = true
            ch.writeAndFlush(batch.buffer, promise: nil)
            settle()
            publish()
        }
    }

    /// The batch the next reply is for.
    var current: Batch? {
        cursor < batches.count ? batches[batches.index(batches.startIndex, offsetBy: cursor)] : nil
    }

    /// Whether a record is waiting for replies (or to be written).
    var awaitingReplies: Bool { batches.contains { $0.next < $0.records.count } }

    /// The current record has all its replies: reports it and moves on. Acknowledged batches are released,
    /// unless they hold part of the open key.
    func finishRecord(_ b: Batch) {
        let rec = b.records[b.next]
        complete(b, rec)
        replyIndex = 0
        if !rec.part.continues {  // a key's errors and `exists` are reported with its last part
            recordError = nil
            recordExists = false
        }
        b.next += 1
        switch rec.part {
        case .first:
            keyOpen = true
            openStart = b.next - 1
            keyResent = rec.resent
        case .last, .whole:
            keyOpen = false
        case .middle:
            break
        }
        if keyOpen {
            if b.next == b.records.count { cursor += 1 }
        } else {
            while let f = batches.first, f.next == f.records.count { _ = batches.popFirst() }
            cursor = 0
        }
    }

    /// Parts that complete no command (inside a big RESTORE payload) get no reply: they are acknowledged
    /// when their turn comes.
    func settle() {
        while replyIndex == 0, let b = current, b.written, b.next < b.records.count, b.records[b.next].repliesThisAttempt == 0 {
            finishRecord(b)
        }
    }

    /// After a lost connection: the open key is sent again from its first part (the parts acknowledged so
    /// far go back into the window).
    func rewindOpenKey() {
        guard keyOpen else { return }
        keyOpen = false
        var commands = 0
        var bytes = 0
        for (i, b) in batches.enumerated() {
            if i > cursor { break }
            let from = i == 0 ? openStart : 0
            for r in b.records[from..<b.next] {
                commands += r.commands
                bytes += r.length
            }
            b.next = from
        }
        cursor = 0
        cond.withLock {
            inflightCommands += commands
            inflightBytes += bytes
        }
    }

    // MARK: replies

    static func code(_ message: String) -> Substring {
        message.prefix(while: { $0 != " " })
    }

    /// A run of `+OK`: acknowledged record by record without looking at each reply (an OK is never an
    /// error, a BUSYKEY or an "exists" answer).
    func receivedOK(count: Int, generation g: Int) {
        guard g == generation else { return }
        var n = count
        while n > 0 {
            guard state == .ready, control.isEmpty, let b = current, b.written, b.next < b.records.count else {
                received(.simple("OK"), generation: g)  // a handshake reply, or unexpected
                n -= 1
                continue
            }
            let take = min(n, b.records[b.next].repliesThisAttempt - replyIndex)
            replyIndex += take
            n -= take
            if replyIndex >= b.records[b.next].repliesThisAttempt {
                finishRecord(b)
                settle()
                if failure != nil || finishing { checkDone() }
            }
        }
    }

    func received(_ reply: RESPReply, generation g: Int) {
        guard g == generation, state == .handshaking || state == .ready else { return }
        if let c = control.popFirst() {
            handleControl(c, reply)
            return
        }
        guard state == .ready, let b = current, b.written, b.next < b.records.count else {
            stopNow("unexpected reply from the target: \(reply)")
            return
        }
        let rec = b.records[b.next]
        let error = rec.kind == .aofBlock ? reply.firstNestedError : reply.errorMessage
        if let e = error {
            let code = Self.code(e)
            if Self.retryCodes.contains(code) {
                lostConnection(reason: e, delay: 0.2)
                return
            }
            if Self.fatalCodes.contains(code) {
                if recordError == nil { recordError = e }
                if ["MOVED", "ASK", "CLUSTERDOWN", "CROSSSLOT"].contains(code) {
                    setFailure("the target is a Redis Cluster (\(e)): cluster targets are not supported yet; import into each primary with the keys of its slots")
                } else {
                    setFailure("the target refused writes: \(e)")
                }
            } else if code == "BUSYKEY" && rec.kind == .key {
                recordExists = true
            } else if recordError == nil {
                recordError = e
            }
        } else if rec.existsReply >= 0, replyIndex - (rec.resendPrefix ? 1 : 0) == rec.existsReply,
            reply == .integer(0) || reply == .bulk(nil)
        {
            recordExists = true  // RENAMENX answered 0, or SET NX answered nil
        }
        replyIndex += 1
        if replyIndex >= rec.repliesThisAttempt {
            finishRecord(b)
            settle()
            if failure != nil || finishing { checkDone() }
        }
    }

    func counters(_ file: Int) -> Int {
        while counters.count <= file { counters.append(ReplyCounters()) }
        return file
    }

    func complete(_ b: Batch, _ r: Record) {
        ackCommands += r.commands
        ackBytes += r.length
        let f = counters(r.file)
        switch r.kind {
        case .key:
            guard !r.part.continues else { return }
            ackKeys += 1
            if let e = recordError {
                counters[f].failed += 1
                problems.add(.error, file: r.file, db: r.db, key: b.name(of: r), message: e, offset: r.offset)
            } else if recordExists {
                counters[f].existing += 1
                problems.add(.exists, file: r.file, db: r.db, key: b.name(of: r), message: r.resent || (r.part == .last && keyResent)
                    ? "exists on the target (not overwritten); it was in flight when the connection was lost, so this import most likely wrote it"
                    : "exists on the target: not overwritten (use replace to overwrite)", offset: r.offset)
            } else {
                counters[f].imported += 1
            }
        case .aofCommand, .aofBlock:
            if let e = recordError {
                counters[f].aofFailed += 1
                problems.add(.error, file: r.file, db: r.db, key: b.name(of: r), message: e, offset: r.offset)
            } else {
                counters[f].aofApplied += 1
            }
        case .select:
            if let e = recordError { setFailure("SELECT \(r.db) failed on the target: \(e)") }
        case .function:
            if let e = recordError {
                problems.add(.function, file: r.file, db: r.db, key: b.name(of: r), message: e, offset: r.offset)
            }
        case .abortedKey:
            break  // reported by the decoder; its padded command is expected to fail
        }
    }

    func readComplete(generation g: Int) {
        if g == generation { lastReply = monotonicSeconds() }  // once per read, not per reply
        publish()
    }

    /// Releases acknowledged commands from the window and wakes the decoder.
    func publish() {
        guard ackCommands > 0 || ackBytes > 0 || ackKeys > 0 || failure != nil else { return }
        cond.lock()
        inflightCommands -= ackCommands
        inflightBytes -= ackBytes
        ackedKeys += ackKeys
        if let failure, sharedFailure == nil { sharedFailure = failure }
        cond.broadcast()
        cond.unlock()
        ackCommands = 0
        ackBytes = 0
        ackKeys = 0
    }

    // MARK: faults

    func closed(generation g: Int, error: Error?) {
        guard g == generation else { return }
        channel = nil
        guard state != .done else { return }
        let reason = error.map { "\($0)" } ?? "the target closed the connection"
        if let p = startPromise {
            startPromise = nil
            let msg = "connection to \(endpoint.address) closed during the handshake: \(reason)"
            setFailure(msg)
            finalize()
            p.fail(ConnectionError(msg))
            return
        }
        lostConnection(reason: reason, delay: nil)
    }

    /// The connection is gone (or must go): reconnect after a pause and resend, unless the import has
    /// stopped or the target stays away longer than `reconnectTimeout`.
    func lostConnection(reason: String, delay: Double?) {
        if disconnectedAt == nil && state == .ready {
            options.logger.warning("connection to \(endpoint.address) lost (\(reason)); reconnecting")
        } else {
            options.logger.debug("connection attempt to \(endpoint.address): \(reason)")
        }
        lastError = reason
        // Forget the old connection before closing it: closing may report its end synchronously.
        let old = channel
        channel = nil
        generation += 1  // ignore whatever the old connection still delivers
        old?.close(promise: nil)
        control.removeAll()
        replyIndex = 0
        recordError = nil
        recordExists = false
        rewindOpenKey()
        if failure != nil || (finishing && !awaitingReplies) {
            finalize()
            return
        }
        let now = monotonicSeconds()
        if disconnectedAt == nil { disconnectedAt = now }
        if now - disconnectedAt! > options.reconnectTimeout {
            stopNow("the connection to \(endpoint.address) was lost and could not be re-established within \(Int(options.reconnectTimeout)) s (last error: \(reason))")
            return
        }
        state = .idle
        let wait = delay ?? min(0.05 * Double(1 << min(attempts, 5)), 1.0)
        attempts += 1
        eventLoop.scheduleTask(in: .milliseconds(Int64(wait * 1000))) { self.connect() }
    }

    /// Detects a target that stopped answering.
    func scheduleWatchdog() {
        eventLoop.scheduleTask(in: .milliseconds(500)) {
            guard self.state != .done else { return }
            if self.state == .ready || self.state == .handshaking, let b = self.current, b.written || self.state == .handshaking,
                monotonicSeconds() - self.lastReply > self.options.replyTimeout
            {
                self.lostConnection(reason: "no reply for \(Int(self.options.replyTimeout)) s", delay: 0)
            } else if self.state == .handshaking, monotonicSeconds() - self.lastReply > self.options.replyTimeout {
                self.lostConnection(reason: "no reply to the handshake for \(Int(self.options.replyTimeout)) s", delay: 0)
            }
            self.scheduleWatchdog()
        }
    }

    func setFailure(_ message: String) {
        if failure == nil { failure = message }
        // Nothing more is written: batches not yet on the wire will never be.
        while let last = batches.last, !last.written {
            _ = batches.popLast()
            drop(last, written: false)
        }
        publish()
    }

    /// Stops the import at once: what is pending did not arrive.
    func stopNow(_ message: String) {
        setFailure(message)
        if let p = startPromise {
            startPromise = nil
            finalize()
            p.fail(ConnectionError(message))
            return
        }
        finalize()
    }

    /// Records of a batch that will get no (more) replies.
    func drop(_ b: Batch, written: Bool) {
        for i in b.next..<b.records.count {
            let r = b.records[i]
            ackCommands += r.commands
            ackBytes += r.length
            guard r.isReported else { continue }
            let f = counters(r.file)
            if r.kind == .key { counters[f].notArrived += 1 }
            let kind: KeyProblem.Kind = written ? .unacknowledged : .notSent
            let why = written
                ? "sent, but no reply arrived before the import stopped: it may or may not be on the target"
                : "not sent: the import stopped before it"
            problems.add(kind, file: r.file, db: r.db, key: b.name(of: r), message: why, offset: r.offset)
        }
        b.next = b.records.count
    }

    func checkDone() {
        guard state != .done else { return }
        if failure != nil {
            if !awaitingReplies || channel == nil || state != .ready { finalize() }
        } else if finishing && !awaitingReplies {
            finalize()
        }
    }

    func finalize() {
        guard state != .done else { return }
        state = .done
        while let b = batches.popFirst() { drop(b, written: b.written) }
        cursor = 0
        keyOpen = false
        let old = channel
        channel = nil
        generation += 1
        old?.close(promise: nil)
        publish()
        cond.lock()
        if let failure, sharedFailure == nil { sharedFailure = failure }
        sharedDone = true
        cond.broadcast()
        cond.unlock()
    }
}

