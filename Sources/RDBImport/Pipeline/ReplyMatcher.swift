import NIOCore
import RedisWire

/// Matches replies, in order, to the records they answer, and accounts for each record once all its
/// replies are in (imported, exists, failed, …). A pure state machine on the event loop: no I/O, no locks;
/// what it frees from the window collects in `released` until the pipeline publishes it.
///
/// A key sent in parts (`KeyPart`) is acknowledged when its last part is: from the moment its first part
/// is acknowledged, the batches from that part on stay (acknowledged, out of the window) until the last
/// part is, and a reconnect in between resends the key from its first part.
struct ReplyMatcher {
    enum Outcome {
        /// The reply was the current record's; `finished`: it was its last.
        case matched(finished: Bool)
        /// "Not now" (`LOADING`, `BUSY`, `TRYAGAIN`): reconnect after a pause and resend.
        case retry(RedisServerError)
    }

    /// Sent or queued batches, oldest first; kept until every record in them is acknowledged.
    private(set) var batches = CircularBuffer<Batch>()
    /// Offset in `batches` of the batch the next reply is for: the ones before it are acknowledged and
    /// kept only for the open key.
    private(set) var cursor = 0
    /// A key sent in parts has its first part acknowledged (at `openStart` in `batches.first`) and its
    /// last part not yet.
    private(set) var keyOpen = false
    private var openStart = 0
    /// The open key's first part was resent (for the report of a key that then exists).
    private var keyResent = false
    /// Replies the current record has had on this attempt.
    private var replyIndex = 0
    /// The current key's first error and whether it exists (reported with its last part).
    private var recordError: RedisServerError?
    private var recordExists = false
    /// Cluster targets: a `MOVED`/`ASK` answer to the current record (it is handed back whole, to be sent
    /// where the redirect says, instead of being counted).
    private var recordRedirect: RedisServerError.Redirect?
    /// Cluster targets: a `TRYAGAIN` answer (a slot being migrated; no redirect): handed back too, to be sent
    /// again after a pause rather than reconnecting the whole pipeline.
    private var recordTryAgain = false
    /// Whether redirects are followed (a cluster import); else they stop the import like any refusal.
    var followsRedirects = false
    /// Records answered with a redirect, for the cluster router (taken by the pipeline).
    var redirected: [RedirectedRecord] = []
    /// Cluster masters with replicas: records are delivered for good only once a `WAIT` after them is
    /// answered (a replica has them). Until then they stay, acknowledged, from `segmentStart` (in
    /// `batches.first`) on, and a reconnect (to the replica that took over from a failed master) sends them
    /// again, except AOF commands, which are not idempotent (`Record.skipOnResend`).
    var confirming = false
    private(set) var segmentOpen = false
    private var segmentStart = 0
    /// `WAIT` answers that counted fewer replicas than asked (the timeout passed first).
    private(set) var unconfirmedWaits = 0
    /// Acknowledged AOF commands of an unconfirmed segment, not resent after a reconnect.
    private(set) var aofNotResent = 0
    /// Why the import stopped (the first reason); nothing more is written once set.
    private(set) var failure: PipelineFailure?
    /// Outcomes per input file.
    private(set) var counters: [ReplyCounters] = []
    /// Acknowledged (or dropped) since the last `takeReleased()`.
    private var released = InflightWindow.Release()
    /// Bytes of the records acknowledged and held for the open key or segment (`InflightWindow.Release.held`).
    private(set) var held = 0 {
        didSet { if held != oldValue { released.held = held } }
    }
    let problems: ProblemLog

    init(problems: ProblemLog) {
        self.problems = problems
    }

    /// The batch the next reply is for.
    var current: Batch? {
        cursor < batches.count ? batches[batches.index(batches.startIndex, offsetBy: cursor)] : nil
    }

    /// Whether a reply now would be for a record (one written and not yet acknowledged).
    var canMatch: Bool {
        guard let b = current else { return false }
        return b.written && b.next < b.records.count
    }

    /// Whether a record is waiting for replies (or to be written).
    var awaitingReplies: Bool { batches.contains { $0.next < $0.records.count } }

    /// Records not acknowledged yet.
    var pendingRecords: Int { batches.reduce(0) { $0 + $1.records.count - $1.next } }

    /// The database of the first record not acknowledged yet.
    var firstPendingDB: Int? {
        for b in batches where b.next < b.records.count { return b.records[b.next].db }
        return nil
    }

    /// The first AOF command (or block) that was written and not acknowledged: after a lost connection
    /// it may or may not have run.
    var firstUnacknowledgedAOF: Record? {
        for b in batches where b.written {
            for i in b.next..<b.records.count
            where (b.records[i].kind == .aofCommand || b.records[i].kind == .aofBlock) && !b.records[i].skipOnResend {
                return b.records[i]
            }
        }
        return nil
    }

    /// What to release from the window (and resets it).
    mutating func takeReleased() -> InflightWindow.Release {
        defer { released = InflightWindow.Release() }
        return released
    }

    /// Queues a batch; true when it should be written now (`writable`: the connection is ready).
    mutating func enqueue(_ batch: Batch, writable: Bool) -> Bool {
        if failure != nil {
            drop(batch, written: false)
            return false
        }
        batches.append(batch)
        guard writable else { return false }
        batch.written = true
        settle()
        return true
    }

    // MARK: replies

    /// Part of a run of `+OK` for the current record (`canMatch` must hold): returns how many it took
    /// and whether they finished the record. An OK is never an error, a BUSYKEY or an "exists" answer.
    mutating func takeOKs(_ n: Int) -> (taken: Int, finished: Bool) {
        let b = current!
        let take = min(n, b.records[b.next].repliesThisAttempt - replyIndex)
        replyIndex += take
        guard replyIndex >= b.records[b.next].repliesThisAttempt else { return (take, false) }
        finishRecord(b)
        settle()
        return (take, true)
    }

    /// One reply for the current record (`canMatch` must hold).
    mutating func receive(_ reply: RESPReply) -> Outcome {
        let b = current!
        let rec = b.records[b.next]
        if let e = rec.kind == .aofBlock ? reply.firstNestedServerError : reply.serverError {
            if followsRedirects, e.redirect != nil || e.code == .tryAgain, rec.part == .whole,
                rec.kind != .select, rec.kind != .abortedKey, rec.kind != .wait
            {
                if let r = e.redirect {
                    if recordRedirect == nil { recordRedirect = r }
                } else {
                    recordTryAgain = true
                }
                replyIndex += 1
                guard replyIndex >= rec.repliesThisAttempt else { return .matched(finished: false) }
                finishRecord(b)
                settle()
                return .matched(finished: true)
            }
            if e.isTransient { return .retry(e) }
            if e.stopsWrites {
                if recordError == nil { recordError = e }
                fail(.writesRefused(e))
            } else if e.code == .busyKey && rec.kind == .key {
                recordExists = true
            } else if recordError == nil {
                recordError = e
            }
        } else if rec.kind == .wait {
            if case .integer(let n) = reply, n < 1 { unconfirmedWaits += 1 }
        } else if rec.existsReply >= 0, replyIndex - (rec.resendPrefix ? 1 : 0) == rec.existsReply,
            reply == .integer(0) || reply == .bulk(nil)
        {
            recordExists = true  // RENAMENX answered 0, or SET NX answered nil
        }
        replyIndex += 1
        guard replyIndex >= rec.repliesThisAttempt else { return .matched(finished: false) }
        finishRecord(b)
        settle()
        return .matched(finished: true)
    }

    /// The current record has all its replies: reports it and moves on. Acknowledged batches are released,
    /// unless they hold part of the open key.
    private mutating func finishRecord(_ b: Batch) {
        let rec = b.records[b.next]
        if let r = recordRedirect {
            redirect(b, rec, r)
        } else if recordTryAgain {
            redirect(b, rec, nil)
        } else {
            complete(b, rec)
        }
        replyIndex = 0
        if !rec.part.continues {  // a key's errors and `exists` are reported with its last part
            recordError = nil
            recordExists = false
            recordRedirect = nil
            recordTryAgain = false
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
        if confirming {
            if rec.kind == .wait {
                segmentOpen = false
            } else if !segmentOpen {
                segmentOpen = true  // not holding before: `b` is `batches.first`
                segmentStart = b.next - 1
            }
        }
        if keyOpen || segmentOpen {
            held += rec.length
            if b.next == b.records.count { cursor += 1 }
        } else {
            held = 0
            while let f = batches.first, f.next == f.records.count { _ = batches.popFirst() }
            cursor = 0
        }
    }

    /// Parts that complete no command (inside a big RESTORE payload) get no reply: they are acknowledged
    /// when their turn comes.
    mutating func settle() {
        while replyIndex == 0, let b = current, b.written, b.next < b.records.count, b.records[b.next].repliesThisAttempt == 0 {
            finishRecord(b)
        }
    }

    /// Hands a redirected record back (its replies are all in): it leaves the window here and is counted
    /// where it is sent next.
    private mutating func redirect(_ b: Batch, _ r: Record, _ to: RedisServerError.Redirect?) {
        released.commands += r.windowCommands
        released.bytes += r.length
        b.records[b.next].skipOnResend = true  // it goes elsewhere now, also after a failover here
        let bytes = b.buffer.getSlice(at: b.buffer.readerIndex + r.start, length: r.length) ?? ByteBuffer()
        redirected.append(RedirectedRecord(record: r, bytes: bytes, name: b.name(of: r), redirect: to))
    }

    private mutating func counter(_ file: Int) -> Int {
        while counters.count <= file { counters.append(ReplyCounters()) }
        return file
    }

    private mutating func complete(_ b: Batch, _ r: Record) {
        released.commands += r.windowCommands
        released.bytes += r.length
        if r.inputEnd > released.inputEnd { released.inputEnd = r.inputEnd }
        if r.counted || r.skipOnResend { return }  // resent from an unconfirmed segment: counted the first time
        if confirming { b.records[b.next].counted = true }
        let f = counter(r.file)
        switch r.kind {
        case .key:
            guard !r.part.continues else { return }
            released.keys += 1
            if let e = recordError {
                counters[f].failed += 1
                problems.add(.error, file: r.file, db: r.db, key: b.name(of: r), message: e.message, offset: r.offset)
            } else if recordExists {
                counters[f].existing += 1
                problems.add(.exists, file: r.file, db: r.db, key: b.name(of: r), message: r.resent || (r.part == .last && keyResent)
                    ? "exists on the target (not overwritten); it was in flight when the connection was lost, so this import most likely wrote it"
                    : "exists on the target: not overwritten (use replace to overwrite)", offset: r.offset)
            } else {
                counters[f].imported += 1
            }
        case .strings:
            // One reply for every key of the MSET: each is reported with it.
            let n = Int(r.keys)
            released.keys += n
            if let e = recordError {
                counters[f].failed += n
                for k in b.reportedKeys(of: r) {
                    problems.add(.error, file: r.file, db: r.db, key: k.name, message: e.message, offset: k.offset)
                }
            } else {
                counters[f].imported += n
            }
        case .aofCommand, .aofBlock:
            if let e = recordError {
                counters[f].aofFailed += 1
                problems.add(.error, file: r.file, db: r.db, key: b.name(of: r), message: e.message, offset: r.offset)
            } else {
                counters[f].aofApplied += 1
                released.aofApplied += 1
            }
        case .select:
            if let e = recordError { fail(.selectFailed(db: r.db, e)) }
        case .function:
            if let e = recordError {
                problems.add(.function, file: r.file, db: r.db, key: b.name(of: r), message: e.message, offset: r.offset)
            }
        case .abortedKey, .wait:
            break  // reported by the decoder; its padded command is expected to fail
        }
    }

    // MARK: faults

    /// Stops the import (the first reason is kept): batches not yet on the wire never will be.
    mutating func fail(_ reason: PipelineFailure) {
        if failure == nil { failure = reason }
        while let last = batches.last, !last.written {
            _ = batches.popLast()
            drop(last, written: false)
        }
    }

    /// The connection is gone: the current record starts over, and the open key is sent again from its
    /// first part (the parts acknowledged so far go back into the window).
    mutating func connectionLost() {
        replyIndex = 0
        recordError = nil
        recordExists = false
        recordRedirect = nil
        recordTryAgain = false
        guard keyOpen || segmentOpen else { return }
        let start = segmentOpen ? segmentStart : openStart
        keyOpen = false
        segmentOpen = false
        held = 0  // (back in the window, below)
        for (i, b) in batches.enumerated() {
            if i > cursor { break }
            let from = i == 0 ? start : 0
            for j in from..<b.next {
                let r = b.records[j]
                released.commands -= r.windowCommands
                released.bytes -= r.length
                if r.counted && (r.kind == .aofCommand || r.kind == .aofBlock) && !r.skipOnResend {
                    b.records[j].skipOnResend = true
                    aofNotResent += 1
                }
            }
            b.next = from
        }
        cursor = 0
    }

    /// Every pending record, to send again on a new connection: the batches never written as they are,
    /// the others rewritten so that each record rebuilds its key whole (see `Record.temporary`).
    mutating func resend(temporaryPrefix: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard !batches.isEmpty else { return nil }
        var out = allocator.buffer(capacity: batches.reduce(64) { $0 + $1.bytes + 64 })
        for b in batches {
            if !b.written {
                out.writeImmutableBuffer(b.buffer)
                b.written = true
                continue
            }
            for i in b.next..<b.records.count where !b.records[i].skipOnResend {
                var r = b.records[i]
                r.resent = true
                if r.temporary || r.deleteOnResend {
                    r.resendPrefix = true
                    let name = b.name(of: r)
                    name.withUnsafeBytes { Commands.del(&out, $0, prefix: r.temporary ? TemporaryName.prefix(temporaryPrefix, key: $0, tagged: followsRedirects) : []) }
                }
                b.records[i] = r
                if let slice = b.buffer.getSlice(at: b.buffer.readerIndex + r.start, length: r.length) {
                    out.writeImmutableBuffer(slice)
                }
            }
        }
        settle()
        return out
    }

    /// Records of a batch that will get no (more) replies.
    mutating func drop(_ b: Batch, written: Bool) {
        for i in b.next..<b.records.count {
            let r = b.records[i]
            released.commands += r.windowCommands
            released.bytes += r.length
            guard r.isReported else { continue }
            let f = counter(r.file)
            if r.kind == .key || r.kind == .strings { counters[f].notArrived += Int(r.keys) }
            let kind: KeyProblem.Kind = written ? .unacknowledged : .notSent
            let why = written
                ? "sent, but no reply arrived before the import stopped: it may or may not be on the target"
                : "not sent: the import stopped before it"
            for k in b.reportedKeys(of: r) {
                problems.add(kind, file: r.file, db: r.db, key: k.name, message: why, offset: k.offset)
            }
        }
        b.next = b.records.count
    }

    /// The import is over: whatever is pending did not arrive.
    mutating func dropAll() {
        while let b = batches.popFirst() { drop(b, written: b.written) }
        cursor = 0
        keyOpen = false
        held = 0
    }
}

/// A record a cluster node answered with `MOVED` or `ASK`: its bytes (every command of it), to be sent
/// again where the redirect points.
struct RedirectedRecord: @unchecked Sendable {
    var record: Record
    var bytes: ByteBuffer
    var name: [UInt8]
    /// Where to; nil for `TRYAGAIN` (the same node, after a pause).
    var redirect: RedisServerError.Redirect?
}
