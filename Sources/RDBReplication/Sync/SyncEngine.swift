#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import RDBImport
import RDBKit
import RDBSinks
import RedisWire

/// Settings of a sync (`rdbcat sync`, and `online_migration` tasks).
public struct SyncOptions: Sendable {
    public var replica = ReplicaOptions()
    /// How the target is written (`stream` is set per segment by the engine).
    public var importOptions = ImportOptions()
    /// Keeps replid, applied offset and database (see `SyncCheckpoint`); nil: none.
    public var checkpointPath: String?
    /// Seconds between status callbacks.
    public var statusInterval = 1.0
    /// When the source refuses `PSYNC`, copy it with `SCAN` + `DUMP`/`RESTORE` (full copies only).
    public var scanFallback = true

    public init() {
        importOptions.replace = true  // the target ends equal to the source
    }
}

/// One status line (`rdbcat sync` prints one a second).
public struct SyncStatus: Sendable, Equatable {
    public enum Phase: String, Sendable { case snapshot, incremental }
    public var phase: Phase
    /// The source's offset received so far.
    public var sourceOffset: Int64
    /// The source's offset applied to the target (every command before it acknowledged).
    public var appliedOffset: Int64
    public var lagBytes: Int64 { max(0, sourceOffset - appliedOffset) }
    /// Keys of the snapshots acknowledged, and commands of the stream applied.
    public var keys: Int
    public var commands: Int

    public var json: String {
        var j = JSONBuilder()
        j.beginObject()
        j.field("phase", phase.rawValue)
        j.field("source_offset", Int(sourceOffset))
        j.field("applied_offset", Int(appliedOffset))
        j.field("lag_bytes", Int(lagBytes))
        j.field("keys", keys)
        j.field("commands", commands)
        j.endObject()
        return j.text
    }
}

/// What a sync did.
public struct SyncReport: Sendable {
    public var status: ImportReport.Status
    public var failure: String?
    /// `replication` or `scan` (the fallback copy).
    public var method: String
    public var final: SyncStatus
    public var replid: String?
    public var fullSyncs = 0
    public var partialSyncs = 0
    public var sourceReconnects = 0
    public var spooledBytes = 0
    public var spoolPeakBytes = 0
    public var warnings: [String] = []
    /// The import of each snapshot and its stream.
    public var imports: [ImportReport] = []
    public var seconds = 0.0

    public func json() -> String {
        var j = JSONBuilder()
        j.beginObject()
        j.field("status", status.rawValue)
        j.field("failure", failure)
        j.field("method", method)
        j.field("phase", final.phase.rawValue)
        j.field("replid", replid)
        j.field("source_offset", Int(final.sourceOffset))
        j.field("applied_offset", Int(final.appliedOffset))
        j.field("lag_bytes", Int(final.lagBytes))
        j.field("keys", final.keys)
        j.field("commands", final.commands)
        j.field("full_syncs", fullSyncs)
        j.field("partial_syncs", partialSyncs)
        j.field("source_reconnects", sourceReconnects)
        j.field("spooled_bytes", spooledBytes)
        j.field("spool_peak_bytes", spoolPeakBytes)
        j.key("seconds")
        j.seconds(seconds)
        j.key("warnings")
        j.beginArray()
        for w in warnings { j.string(w) }
        j.endArray()
        j.key("problems")
        j.beginArray()
        for r in imports {
            for p in r.problems.prefix(20) {
                j.beginObject()
                j.field("kind", p.kind.rawValue)
                j.field("db", p.db)
                j.field("key", p.keyText)
                j.field("message", p.message)
                j.endObject()
            }
        }
        j.endArray()
        j.endObject()
        return j.text
    }
}

/// Copies a live source into a target by acting as its replica: the snapshot (straight from the socket
/// into the decoder and the importer), then the source's writes as they happen, until `stop()`.
///
/// The replication stream is, to the decoder, an AOF with an RDB preamble: each segment (a snapshot and
/// the stream after it) is one import through `Importer.run(inputs:)` of a `SegmentReader`. A lost source
/// connection is continued with `PSYNC <replid> <offset+1>` inside the same segment (the decoder does not
/// notice); when the source cannot continue, the segment ends and the next one is a new snapshot, imported
/// after the target databases written so far are flushed (so that keys the source deleted meanwhile do not
/// survive; flushing costs no memory, where diffing key sets would hold every key name).
public final class SyncEngine: @unchecked Sendable {
    public let source: RedisEndpoint
    public let target: RedisEndpoint
    public let options: SyncOptions
    /// Called about every `statusInterval` seconds from a thread of its own, and once at the end.
    public var onStatus: ((SyncStatus) -> Void)?
    /// Messages for people (a resync, a fallback), as they happen.
    public var onNotice: ((String) -> Void)?

    private let stopFlag = NIOLockedValueBox(false)
    private let linkBox = NIOLockedValueBox<ReplicaLink?>(nil)
    private let state = NIOLockedValueBox(Shared())

    struct Shared {
        var phase = SyncStatus.Phase.snapshot
        var applied: Int64 = 0
        var appliedDB = 0
        var baseKeys = 0
        var baseCommands = 0
        var hooks: StreamHooks?
        /// The current segment's stream start (input offset, source offset), once known.
        var streamStart: (input: Int, offset: Int64)?
        /// SELECTs of the stream: (input end, db), oldest first, trimmed to the applied offset.
        var selects: [(end: Int, db: Int)] = []
        var replid: String?
        var databases: Set<Int> = []
        var fallbackKeys = 0
        var received: Int64 = 0
        /// The current segment's snapshot is applied: `applied` is an offset of its stream.
        var streamApplied = false
    }

    public init(source: RedisEndpoint, target: RedisEndpoint, options: SyncOptions) {
        self.source = source
        self.target = target
        self.options = options
    }

    /// Stops the sync (any thread): what was received is applied, then `run` returns.
    public func stop() {
        stopFlag.withLockedValue { $0 = true }
        linkBox.withLockedValue { $0 }?.stop()
    }

    var stopped: Bool { stopFlag.withLockedValue { $0 } }

    /// Runs until stopped (or, with `fullOnly`, until the snapshot is applied), or until it fails.
    public func run() -> SyncReport {
        let started = monotonicNow()
        var report = SyncReport(status: .success, method: "replication", final: SyncStatus(phase: .snapshot, sourceOffset: 0, appliedOffset: 0, keys: 0, commands: 0))
        var replica = options.replica
        var checkpoint: SyncCheckpoint?
        if let path = options.checkpointPath {
            do {
                checkpoint = try SyncCheckpoint.load(path)
            } catch {
                report.status = .failed
                report.failure = "\(error)"
                return report
            }
            if let c = checkpoint, !replica.fullOnly {
                if c.source != source.address {
                    report.status = .failed
                    report.failure = "the checkpoint \(path) is for the source \(c.source), not \(source.address): remove it, or give another --checkpoint"
                    return report
                }
                state.withLockedValue { $0.databases = Set(c.databases) }
                if c.replid.isEmpty {
                    // The run that wrote it stopped inside a snapshot: a full sync, after a flush, follows.
                    notice("the checkpoint \(path) was written during a snapshot: a full sync follows")
                } else {
                    replica.resume = (c.replid, c.offset, c.db)
                    state.withLockedValue {
                        $0.applied = c.offset
                        $0.appliedDB = c.db
                        $0.replid = c.replid
                        $0.received = c.offset
                        $0.phase = .incremental
                    }
                    notice("continuing from the checkpoint \(path): replid \(c.replid) offset \(c.offset) db \(c.db)")
                }
            }
        }
        // The target first: a source is not made to fork a snapshot for a target that cannot take it.
        do {
            // A round trip: a target that accepts connections and does not answer is found here too.
            let probe = try RedisClient(target, timeoutSeconds: options.importOptions.pipeline.connectTimeoutSeconds, replyTimeoutSeconds: 10)
            defer { probe.close() }
            if let e = try probe.send(["PING"]).errorMessage, !e.hasPrefix("LOADING") {
                throw ConnectionError(.serverError, "PING failed: \(e)")
            }
        } catch {
            report.status = .failed
            report.failure = "the target \(target.address) cannot be used: \(target.password?.redact("\(error)") ?? "\(error)")"
            return report
        }
        let link: ReplicaLink
        do {
            link = try ReplicaLink(source: source, options: replica)
        } catch {
            report.status = .failed
            report.failure = "\(error)"
            return report
        }
        linkBox.withLockedValue { $0 = link }
        if stopped { link.stop() }
        link.start()

        // The status thread: one line a second, and the checkpoint.
        let statusDone = NIOLockedValueBox(false)
        let statusThread = startThread { [self] in
            while !statusDone.withLockedValue({ $0 }) {
                var slept = 0.0
                while slept < options.statusInterval && !statusDone.withLockedValue({ $0 }) {
                    usleep(50_000)
                    slept += 0.05
                }
                if statusDone.withLockedValue({ $0 }) { break }
                let s = currentStatus(link)
                onStatus?(s)
                saveCheckpoint()
            }
        }

        var hadSegment = false
        segments: while true {
            let next: Result<SegmentStart, SegmentEnd>
            do { next = try link.queue.nextSegment() } catch {
                report.status = .failed
                report.failure = "\(error)"
                break
            }
            let start: SegmentStart
            switch next {
            case .success(let s): start = s
            case .failure(.stopped): break segments
            case .failure(.failed(let m)):
                report.status = .failed
                report.failure = m
                break segments
            case .failure(.psyncRefused(let m)):
                link.shutdown()
                if replica.fullOnly && options.scanFallback && !hadSegment {
                    notice("\(m): copying it with SCAN + DUMP/RESTORE instead (a full copy; no incremental copy from this source)")
                    report.method = "scan"
                    runFallback(&report)
                } else {
                    report.status = .failed
                    report.failure = "\(m): incremental copying is not possible from this source (it needs SYNC/PSYNC); a full copy can be made with --full-only (SCAN + DUMP/RESTORE)"
                }
                break segments
            case .failure(let other):
                report.status = .failed
                report.failure = "the replication ended unexpectedly (\(other))"
                break segments
            }
            if start.kind == .full && (hadSegment || checkpoint != nil) {
                let dbs = state.withLockedValue { $0.databases }
                notice(hadSegment || checkpoint == nil
                       ? "the source \(source.address) started a new full sync: flushing the target's databases \(dbs.sorted()) before the new snapshot"
                       : "the source \(source.address) cannot continue from the checkpoint (replid or offset no longer in its backlog): a full resync, flushing the target's databases \(dbs.sorted()) first")
                do {
                    try flushTarget(dbs)
                } catch {
                    report.status = .failed
                    report.failure = "\(error)"
                    break segments
                }
            }
            hadSegment = true
            state.withLockedValue {
                $0.phase = start.kind == .full ? .snapshot : .incremental
                $0.streamStart = nil
                $0.streamApplied = false
                $0.selects = []
                $0.replid = start.replid
                if start.kind == .full { $0.applied = 0 }
            }
            // A checkpoint from before this snapshot must not be continued from: until the snapshot is
            // applied the file says "resync" (no replid), keeping the databases to flush.
            if start.kind == .full { saveCheckpoint() }
            let (imported, end, lostTarget) = importSegment(start, link: link)
            report.imports.append(imported)
            switch end {
            case .stopped?:
                let inSnapshot = state.withLockedValue { $0.streamStart == nil }
                if imported.status == .failed {
                    report.status = .failed
                    report.failure = imported.failure ?? "the import into \(target.address) failed (see problems)"
                    if inSnapshot && !replica.fullOnly {
                        report.failure = "stopped during the snapshot: the target holds only part of the source (\(imported.keysImported) keys); run again to copy it whole (\(report.failure!))"
                    }
                } else if replica.fullOnly {
                    state.withLockedValue { $0.applied = start.offset }
                }
                break segments
            case .resync?, .broken?:
                continue segments
            case .failed(let m)?:
                report.status = .failed
                report.failure = m
                break segments
            case .psyncRefused(let m)?:
                report.status = .failed
                report.failure = m
                break segments
            case nil:
                if lostTarget {
                    notice("the connection to the target \(target.address) was lost with stream commands in flight (they may or may not have run): a new full sync makes the target equal to the source again")
                    link.restartFullSync()
                    continue segments
                }
                report.status = .failed
                report.failure = imported.failure ?? "the import into \(target.address) stopped"
                break segments
            }
        }
        link.shutdown()
        statusDone.withLockedValue { $0 = true }
        if let t = statusThread { pthread_join(t, nil) }
        saveCheckpoint()
        let final = currentStatus(link)
        onStatus?(final)
        let ls = link.status
        report.final = final
        report.replid = state.withLockedValue { $0.replid }
        report.fullSyncs = ls.fullSyncs
        report.partialSyncs = ls.partialSyncs
        report.sourceReconnects = ls.reconnects
        report.spooledBytes = link.queue.spooledTotal
        report.spoolPeakBytes = link.queue.spoolPeak
        report.warnings += link.warnings
        for r in report.imports { report.warnings += r.warnings }
        report.seconds = monotonicNow() - started
        if let p = source.password { report.failure = report.failure.map { p.redact($0) } }
        if let p = target.password { report.failure = report.failure.map { p.redact($0) } }
        return report
    }

    func notice(_ s: String) { onNotice?(s) }

    /// Imports one segment; returns the import's report, how the segment ended (nil: the decode stopped
    /// before the segment did: the import failed), and whether it failed because the target connection
    /// was lost with stream commands in flight.
    func importSegment(_ start: SegmentStart, link: ReplicaLink) -> (ImportReport, SegmentEnd?, lostTarget: Bool) {
        let reader = SegmentReader(queue: link.queue, start: start)
        let hooks = StreamHooks()
        hooks.arrivalMillis = { reader.arrival(of: $0) }
        hooks.onGetAck = { link.ackNow() }
        hooks.onSelect = { [state] end, db in state.withLockedValue { $0.selects.append((end, db)) } }
        reader.onStreamStart = { [state] input, offset in
            // The stream's offsets count as applied only once the target has acknowledged what comes
            // before them (the snapshot): `publishApplied`.
            state.withLockedValue { $0.streamStart = (input, offset) }
        }
        reader.onIdle = { [weak self] in
            hooks.flushPending?()
            if let end = hooks.acknowledgedInputEnd?() { self?.publishApplied(inputEnd: end) }
        }
        reader.stopReason = { hooks.stopReason?() }
        state.withLockedValue { $0.hooks = hooks }
        var o = options.importOptions
        o.stream = hooks
        // The target was reached before: a connection cut as this segment starts is made again.
        o.pipeline.retryFirstConnection = true
        // A cut-off last command when the stream stops is normal here (it was not applied).
        o.aof.strict = false
        let input = InputBuffer(stream: SegmentStream(reader: reader), limit: o.decoder.maxRecordBytes, name: "replication stream of \(source.address)")
        let opened = OpenedInput(path: "replication stream of \(source.address)", kind: start.kind == .full ? .rdb : .aof, input: input, fileSize: nil)
        let importer = Importer(target: target, options: o)
        let r = importer.run(inputs: [.opened(opened)])
        if let end = hooks.finalInputEnd { publishApplied(inputEnd: end) }
        let counts = hooks.acknowledged
        state.withLockedValue {
            $0.baseKeys += counts.keys
            $0.baseCommands += counts.commands
            $0.hooks = nil
            $0.databases.formUnion(hooks.databasesWritten)
        }
        return (r, reader.ended, hooks.lostTargetWithCommandsInFlight)
    }

    /// Maps the acknowledged input end to the source's offset (and its database).
    func publishApplied(inputEnd: Int) {
        state.withLockedValue { s in
            guard let st = s.streamStart, inputEnd >= st.input else { return }
            let off = st.offset + Int64(inputEnd - st.input)
            guard off >= s.applied || !s.streamApplied else { return }
            s.applied = off
            s.streamApplied = true
            s.phase = .incremental
            var i = 0
            while i < s.selects.count && s.selects[i].end <= inputEnd {
                s.appliedDB = s.selects[i].db
                i += 1
            }
            if i > 0 { s.selects.removeFirst(i) }
        }
    }

    func currentStatus(_ link: ReplicaLink) -> SyncStatus {
        let ls = link.status
        let hooks = state.withLockedValue { $0.hooks }
        let counts = hooks?.acknowledged
        if let e = counts?.inputEnd, e > 0 { publishApplied(inputEnd: e) }
        return state.withLockedValue { s in
            let received = max(ls.receivedOffset, s.received)
            if s.phase == .snapshot && s.streamStart == nil && s.fallbackKeys == 0 {
                return SyncStatus(phase: .snapshot, sourceOffset: received, appliedOffset: min(s.applied, received),
                                  keys: s.baseKeys + (counts?.keys ?? 0), commands: s.baseCommands + (counts?.commands ?? 0))
            }
            return SyncStatus(phase: s.phase, sourceOffset: max(received, s.applied), appliedOffset: s.applied,
                              keys: s.baseKeys + (counts?.keys ?? 0) + s.fallbackKeys, commands: s.baseCommands + (counts?.commands ?? 0))
        }
    }

    func saveCheckpoint() {
        guard let path = options.checkpointPath, !options.replica.fullOnly else { return }
        let live = state.withLockedValue { $0.hooks }?.databasesWritten ?? []
        let c: SyncCheckpoint? = state.withLockedValue { s in
            s.databases.formUnion(live)
            guard let id = s.replid else { return nil }
            if !s.streamApplied && s.phase == .snapshot {
                return SyncCheckpoint(replid: "", offset: 0, db: 0, databases: s.databases.sorted(), source: source.address)
            }
            return SyncCheckpoint(replid: id, offset: s.applied, db: s.appliedDB, databases: s.databases.sorted(), source: source.address)
        }
        guard let c else { return }
        do { try c.save(path) } catch { notice("\(error)") }
    }

    /// Empties the target databases written so far (every master of a cluster), connecting again (within the
    /// reconnect timeout, unless the run is stopped) when a connection is cut.
    func flushTarget(_ dbs: Set<Int>) throws {
        guard !dbs.isEmpty else { return }
        try ConnectionError.retrying(for: options.importOptions.pipeline.reconnectTimeout, stopped: { stopped }) { try flushTargetOnce(dbs) }
    }

    func flushTargetOnce(_ dbs: Set<Int>) throws {
        var nodes = [target]
        if let topology = try ClusterDiscovery.discover(from: target, timeoutSeconds: 10) {
            nodes = topology.shards.map { $0.master.address.endpoint(like: target) }
        }
        for node in nodes {
            let c: RedisClient
            do {
                c = try RedisClient(node, replyTimeoutSeconds: 600)  // FLUSHDB of a large database takes a while
            } catch let e as ConnectionError {
                throw ConnectionError(e.kind, "cannot connect to the target \(node.address) to flush it before the resync: \(e)", serverError: e.serverError)
            }
            defer { c.close() }
            for db in dbs.sorted() {
                if nodes.count == 1 || db == 0 {
                    if nodes.count == 1, let e = try c.send(["SELECT", String(db)]).errorMessage {
                        throw SyncError("SELECT \(db) on the target \(node.address) failed: \(e)")
                    }
                    if let e = try c.send(["FLUSHDB"]).errorMessage {
                        throw SyncError("FLUSHDB of database \(db) on the target \(node.address) failed: \(e)")
                    }
                }
            }
        }
    }

    func runFallback(_ report: inout SyncReport) {
        state.withLockedValue { $0.phase = .snapshot }
        var copy = ScanCopy(source: source, target: target, options: options.importOptions)
        copy.onProgress = { [state] n in state.withLockedValue { $0.fallbackKeys = n } }
        do {
            let r = try copy.run(stop: { self.stopped })
            state.withLockedValue { $0.fallbackKeys = r.keys }
            if r.vanished > 0 { report.warnings.append("\(r.vanished) keys were deleted or expired on the source between SCAN and DUMP") }
            if r.failed > 0 {
                report.status = .failed
                report.failure = "\(r.failed) keys could not be restored on the target: " + r.errors.joined(separator: "; ")
            }
        } catch {
            report.status = .failed
            report.failure = "the fallback copy failed: \(error)"
        }
    }
}
