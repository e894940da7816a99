#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import RDBKit
import RDBSinks
import RedisWire

/// Imports RDB and AOF files into a live server.
///
/// ```swift
/// var options = ImportOptions()
/// options.mode = .restore
/// let importer = Importer(target: try RedisEndpoint.parse("redis://127.0.0.1:6379"), options: options)
/// let report = importer.run(files: ["dump.rdb"])
/// print(report.status, report.keysImported)
/// ```
///
/// Files are decoded on the calling thread, in order, into one connection; the call returns when every
/// key has been acknowledged (or the import stopped). Inputs: RDB files (also zstd-compressed), AOF files
/// (with or without RDB preamble), multi-part AOF manifests and `appendonlydir` folders.
public final class Importer {
    public let target: RedisEndpoint?
    public let options: ImportOptions
    /// Called on the decoding thread about every `progressInterval` seconds, and once at the end.
    public var onProgress: ((ImportProgress) -> Void)?
    /// Opens the inputs that are not local files (objects in a bucket); see `DecodeDriver.opener`.
    public var opener: InputOpener?
    /// Set by `stop()` (or by whoever shares it).
    public let stopRequest: StopRequest

    /// Largest number of bytes the pipeline had in flight (for tests of the memory bound).
    public private(set) var peakBytesInFlight = 0
    /// Keys sent in parts while they were decoded (larger than `ImportOptions.keyChunkBytes`).
    public private(set) var keysSentInParts = 0

    /// - Parameter target: the server; nil only for a dry run.
    /// - Parameter stopRequest: stops the import when set (`stop()` sets it).
    public init(target: RedisEndpoint?, options: ImportOptions, stopRequest: StopRequest = StopRequest()) {
        self.target = target
        self.options = options
        self.stopRequest = stopRequest
    }

    /// Stops the import between keys (from any thread): the key being decoded is finished, nothing after it
    /// is read, what was sent is acknowledged, and the report's status is `STOPPED`.
    public func stop() { stopRequest.set() }

    /// Runs the import. Never throws: every failure (unreachable target, refused login, corrupt input,
    /// refused writes) is in the report, with the keys that did not arrive.
    public func run(files: [String]) -> ImportReport {
        run(inputs: files.map { .path($0) })
    }

    /// An input of `run(inputs:)`.
    public enum Input {
        /// A file, manifest or folder by path (`-`: standard input).
        case path(String)
        /// An input opened by the caller (a replication stream: see `ImportOptions.stream`).
        case opened(OpenedInput)

        var name: String {
            switch self {
            case .path(let p): p
            case .opened(let o): o.path
            }
        }
    }

    /// Runs the import of `inputs` in order (see `run(files:)`).
    public func run(inputs: [Input]) -> ImportReport {
        let files = inputs.map(\.name)
        let started = monotonicSeconds()
        var warnings: [String] = []
        var failure: String?
        let problems: ProblemLog
        do {
            problems = try ProblemLog(limit: options.problemLimit, path: options.problemsPath)
        } catch {
            return failedEarly("\(error)", files: files, started: started)
        }
        var tag: UInt64 = 0
        while tag == 0 { tag = UInt64.random(in: 1...UInt64.max) }
        let hex = String(tag, radix: 16)
        let temporaryPrefix = Array("rdbcat:tmp:\(hex):".utf8)

        var pipeline: ImportPipeline?
        var server: ServerInfo?
        var cluster: ClusterRouting?
        if !options.dryRun {
            guard let target else { return failedEarly("no target given", files: files, started: started) }
            do {
                // A cluster node (`cluster_enabled:1`): a cluster import, with a pipeline per master.
                let timeout = options.pipeline.connectTimeoutSeconds
                // A stop requested meanwhile ends the wait for a target that does not answer.
                let stopRequest = self.stopRequest
                let discover = {
                    let client = try ClusterDiscovery.client(for: target, timeoutSeconds: timeout)
                    defer { client.close() }
                    return try stopRequest.whileBlocking(interrupt: { client.cancel(Self.stoppedWhileConnecting) }) {
                        try ClusterDiscovery.discover(using: client)
                    }
                }
                let found = options.pipeline.retryFirstConnection
                    ? try ConnectionError.retrying(for: options.pipeline.reconnectTimeout, stopped: { stopRequest.isSet }, discover) : try discover()
                if let topology = found {
                    if let refusal = try refuseOtherDatabases(inputs.compactMap { if case .path(let p) = $0 { p } else { nil } }) {
                        return failedEarly(refusal, files: files, started: started)
                    }
                    let c = ClusterRouting(seed: target, topology: topology, options: options.pipeline, problems: problems,
                                           temporaryPrefix: temporaryPrefix)
                    cluster = c
                    try c.connect(stop: stopRequest)
                    pipeline = c.pipelines.first
                    server = c.servers.first
                    server?.databases = 1
                    // Keys per database summed over the masters (a database is empty only if it is on all).
                    server?.keyspace = c.servers.reduce(into: [:]) { ks, s in
                        for (db, n) in s.keyspace ?? [0: 1] { ks[db, default: 0] += n }
                    }
                } else {
                    let p = try ImportPipeline(endpoint: target, options: options.pipeline, problems: problems, temporaryPrefix: temporaryPrefix)
                    pipeline = p
                    server = try stopRequest.whileBlocking(interrupt: { p.abortStart(Self.stoppedWhileConnecting) }) { try p.start() }
                }
            } catch {
                // Stopped before anything was sent: STOPPED, not FAILED (nothing was written).
                if stopRequest.isSet {
                    for p in cluster?.pipelines ?? [] { p.finish() }  // masters connected before the stop: closed
                    return stoppedEarly("stopped on request while connecting to \(target.address) (nothing was sent)", files: files, started: started)
                }
                failure = target.password?.redact("\(error)") ?? "\(error)"
            }
        }
        let pipelines = cluster?.pipelines ?? pipeline.map { [$0] } ?? []
        var targetVersion = options.targetVersion ?? server?.rdbVersion
        if targetVersion == nil && options.mode == .restore {
            if failure == nil && !options.dryRun {
                warnings.append("the target's version is unknown (INFO unavailable): RESTORE payloads are written for RDB 10 (Redis 7.0); give the target version to change it")
            }
            targetVersion = 10
        }

        let builder = BatchBuilder(
            pipeline: failure == nil ? pipeline : nil, problems: problems, maxBytes: options.batchBytes,
            maxCommands: max(1, options.pipeline.maxCommandsInFlight / 4))
        builder.maxRunKeys = options.stringRunKeys
        builder.maxRunBytes = options.stringRunBytes
        if failure != nil { builder.stopped = true }
        if failure == nil { cluster?.attach(builder) }
        let ctx = ImportContext(
            options: options, builder: builder, problems: problems, targetVersion: targetVersion,
            databases: server?.databases, temporaryPrefix: temporaryPrefix, keyspaceAtStart: server?.keyspace,
            stopRequest: stopRequest)
        // Which sorted sets the target keeps compact: on a cluster, those any master does.
        let zsetLimits = (cluster?.servers ?? server.map { [$0] } ?? []).compactMap(\.compactSortedSets).reduce(nil) { (a: CompactSortedSetLimits?, b) in a?.union(b) ?? b }
        if let limits = options.compactSortedSets ?? zsetLimits { ctx.compactSortedSets = limits }
        // A key's output stays in the buffer until `ImportVisitor.endKey` takes it out as one record, unless
        // it passes `keyChunkBytes`: then the writer's within-key flushes hand it to `KeyParts` in chunks.
        // (A cluster import sends every key whole: a redirected record is resent whole, so it must be one.)
        let chunk = cluster != nil ? Int.max / 4 : max(4096, options.keyChunkBytes ?? options.batchBytes)
        let out = OutputBuffer(target: ctx.parts, flushThreshold: 1 << 16, keyChunkThreshold: chunk)
        out.flushThreshold = .max  // no flushes between keys: the buffer holds at most the current key

        var fileStarted: [Double] = []
        let state = RunState(files: files, ctx: ctx, pipelines: pipelines, started: started)
        state.cluster = cluster
        builder.onBatch = { [unowned self] in self.tick(state, final: false) }
        if let hooks = options.stream {
            hooks.attach(pipelines.map(\.window))
            builder.onNewDatabase = { hooks.noteDatabase($0) }
            hooks.flushPending = { [unowned builder] in
                if !builder.recordOpen && !builder.stopped { builder.flushAll() }
            }
            hooks.acknowledgedInputEnd = { [unowned builder, unowned state, unowned ctx] in
                var end = 0
                var idle = !builder.recordOpen && !builder.holdsRecords && !builder.stopped && ctx.failure == nil
                for p in pipelines {
                    let a = p.window.acknowledged
                    end = max(end, a.inputEnd)
                    if a.inFlight > 0 || a.stopped { idle = false }
                }
                // Nothing held back or in flight: everything read so far has been applied.
                if idle, let input = state.input { end = max(end, input.offset) }
                return end
            }
            // A pipeline that stopped (an AOF command in flight when the connection was lost) is seen here too,
            // not only by the next record submitted: a quiet stream may bring none.
            hooks.stopReason = { [unowned builder, unowned ctx] in
                if let f = ctx.failure { return f }
                return builder.stopped || pipelines.contains(where: { $0.window.isStopped })
                    ? "the import into the target stopped (the report says why)" : nil
            }
        }
        switch options.mode {
        case .commands, .auto:
            var o = RESPWriterOptions(
                maxElementsPerCommand: options.maxElementsPerCommand, maxBytesPerCommand: options.maxBytesPerCommand,
                dropTTL: options.dropTTL, targetVersion: targetVersion, emitSelect: false, emitFunctions: true)
            // Strings as one SET with NX (the existence check) and PXAT (Redis 6.2+) instead of SET + PEXPIREAT.
            o.setIfAbsent = !options.replace
            o.inlineExpiry = (targetVersion ?? 99) >= 9
            o.compactSortedSets = ctx.compactSortedSets
            let w = RESPWriter(out: out, options: o)
            var v = ImportVisitor(writer: w, ctx: ctx)
            decodeAll(inputs, &v, ctx: ctx, state: state, fileStarted: &fileStarted, failure: &failure)
        case .restore:
            var o = RestoreWriterOptions(targetVersion: targetVersion ?? 10, replace: options.replace, dropTTL: options.dropTTL, emitSelect: false)
            o.maxElementsPerCommand = options.maxElementsPerCommand
            o.maxBytesPerCommand = options.maxBytesPerCommand
            o.compactSortedSets = ctx.compactSortedSets
            var v = ImportVisitor(writer: RestoreWriter(out: out, options: o), ctx: ctx)
            decodeAll(inputs, &v, ctx: ctx, state: state, fileStarted: &fileStarted, failure: &failure)
        }
        builder.flushAll()
        keysSentInParts = ctx.parts.keysInParts
        cluster?.settle()
        for p in pipelines {
            p.finish()
            peakBytesInFlight = max(peakBytesInFlight, p.window.peakBytes)
        }
        if let hooks = options.stream {
            let failed = failure != nil || ctx.failure != nil || pipelines.contains { $0.failure != nil }
            let lost = pipelines.contains { if case .aofUnacknowledged? = $0.failure { true } else { false } }
            hooks.finish(inputEnd: failed ? nil : hooks.acknowledgedInputEnd?(), databases: builder.databasesWritten, lostInFlight: lost)
        }
        if failure == nil && ctx.failure == nil && state.stopped == nil && !builder.stopped && pipelines.allSatisfy({ $0.failure == nil }) {
            state.filesAcknowledged = files.count
        }
        tick(state, final: true)
        problems.flush()

        // Merge what the event loops counted (safe: the pipelines are done).
        var replies: [ReplyCounters] = []
        for p in pipelines {
            for (i, c) in p.counters.enumerated() {
                if i == replies.count { replies.append(ReplyCounters()) }
                replies[i].add(c)
            }
        }
        var stats = builder.stats.enumerated().map { i, d in
            ImportFileStats(file: i < files.count ? files[i] : "?", decoded: d, replies: i < replies.count ? replies[i] : nil)
        }
        for (i, p) in pipelines.enumerated() {
            let node = cluster.map { "\($0.addresses[i]): " } ?? ""
            warnings += p.warnings.map { node + $0 }
            let short = p.confirmationShortfalls
            if short.waits > 0 {
                warnings.append(node + "\(short.waits) WAIT checkpoints were not answered by a replica within \(BatchBuilder.waitTimeoutMs) ms: the keys before them count as delivered on the master's word")
            }
            if short.aofNotResent > 0 {
                warnings.append(node + "\(short.aofNotResent) AOF commands the failed master acknowledged were not sent again (they are not idempotent): lost if it had not replicated them")
            }
            if failure == nil, let f = p.failure { failure = node + f.description }
        }
        if failure == nil, let f = ctx.failure { failure = f }
        let end = monotonicSeconds()
        for i in stats.indices {
            let s = i < fileStarted.count ? fileStarted[i] : end
            let e = i + 1 < fileStarted.count ? fileStarted[i + 1] : end
            stats[i].seconds = e - s
        }
        let counts = problems.countsByKind
        let failed = failure != nil || counts.contains(where: { $0.key.isFailure && $0.value > 0 })
        if let target, let f = failure { failure = target.password?.redact(f) ?? f }
        let status: ImportReport.Status = failed ? .failed : state.stopped != nil ? .stopped : (counts[.lossy] ?? 0) > 0 ? .lossy : .success
        return ImportReport(
            status: status, failure: failure ?? state.stopped, files: stats, problems: problems.problems,
            problemCounts: counts, warnings: warnings, target: target?.description, server: server,
            targetVersion: targetVersion, mode: options.mode.rawValue, dryRun: options.dryRun,
            reconnects: pipelines.reduce(0) { $0 + $1.reconnects }, seconds: end - started,
            shards: cluster?.shardReports(builder) ?? [])
    }

    final class RunState {
        let files: [String]
        let ctx: ImportContext
        let pipelines: [ImportPipeline]
        let started: Double
        var cluster: ClusterRouting?
        var lastTick = 0.0
        var input: InputBuffer?
        var inputSize: Int?
        /// Where a stop request ended the decoding (`file: stopped on request before …`).
        var stopped: String?
        /// Leading inputs wholly acknowledged (`ImportOptions.settleEachFile`).
        var filesAcknowledged = 0

        init(files: [String], ctx: ImportContext, pipelines: [ImportPipeline], started: Double) {
            self.files = files
            self.ctx = ctx
            self.pipelines = pipelines
            self.started = started
        }
    }

    /// Reports progress, at most every `progressInterval` unless `final` or `now` (an input boundary).
    func tick(_ s: RunState, final: Bool, now force: Bool = false) {
        guard let onProgress else { return }
        let now = monotonicSeconds()
        if !final && !force && now - s.lastTick < options.progressInterval { return }
        s.lastTick = now
        let p = s.pipelines.reduce((0, 0, 0)) { t, pipe in
            let q = pipe.progress
            return (t.0 + q.ackedKeys, t.1 + q.commands, t.2 + q.bytes)
        }
        let b = s.ctx.builder
        let f = min(s.ctx.file, max(0, s.files.count - 1))
        onProgress(ImportProgress(
            file: s.files.isEmpty ? "" : s.files[f], fileIndex: f, fileCount: s.files.count,
            inputOffset: final ? (s.input?.offset ?? s.ctx.position) : max(s.input?.offset ?? 0, s.ctx.position), inputSize: s.inputSize,
            keysRead: b.stats.reduce(0) { $0 + $1.keysRead }, keysSent: b.keysSent, keysAcknowledged: p.0,
            filesAcknowledged: s.filesAcknowledged, bytesSent: b.stats.reduce(0) { $0 + $1.bytesSent },
            commandsInFlight: p.1, bytesInFlight: p.2, problems: s.ctx.problems.total, seconds: now - s.started, final: final))
    }

    func decodeAll<W: ReplayWriter>(
        _ inputs: [Input], _ v: inout ImportVisitor<W>, ctx: ImportContext, state: RunState,
        fileStarted: inout [Double], failure: inout String?
    ) {
        for input in inputs {
            let path = input.name
            if options.settleEachFile && !state.pipelines.isEmpty && state.stopped == nil && !stopRequest.isSet {
                settle(state)
                if ctx.failure == nil && !ctx.builder.stopped && state.pipelines.allSatisfy({ $0.failure == nil }) {
                    state.filesAcknowledged = ctx.builder.stats.count
                    // Said at once: the next input may fill the window before the next regular report.
                    tick(state, final: false, now: true)
                }
            }
            let index = ctx.problems.register(file: path)
            ctx.builder.stats.append(DecodeCounters())
            ctx.file = index
            ctx.position = 0
            fileStarted.append(monotonicSeconds())
            if let failure, ctx.failure == nil { ctx.failure = failure }
            do {
                if stopRequest.isSet { throw ImportStopped(offset: 0) }
                switch input {
                case .path(let p): try decodeFile(p, &v, ctx: ctx, state: state)
                case .opened(let o): try decodeOpened(o, &v, ctx: ctx, state: state)
                }
            } catch let stop as ImportStopped {
                // Between keys: the keys before are whole (sent as they are), nothing after is read.
                state.stopped = "\(path): \(stop)"
                break
            } catch {
                let text = "\(error)"
                let msg = text.hasPrefix(path + ":") ? text : "\(path): \(text)"  // (RDB and AOF errors name their file)
                if failure == nil { failure = msg }
                ctx.parts.fail("\(error)")
                ctx.builder.abandon()
                if ctx.failure == nil { ctx.failure = msg }
                v.out.truncate(to: 0)
                v.out.commit()
                ctx.problems.add(.notSent, file: index, db: 0, key: [], message: "the keys after the error in this file could not be read: \(error)")
            }
            tick(state, final: false)
        }
    }

    /// Sends what is held back and waits until everything sent is answered (or the import stopped).
    func settle(_ state: RunState) {
        if let cluster = state.cluster {
            cluster.settle()
            return
        }
        state.ctx.builder.flushAll()
        while !state.pipelines.allSatisfy({ $0.window.isSettled }) { usleep(500) }
    }

    func decodeFile<W: ReplayWriter>(_ path: String, _ v: inout ImportVisitor<W>, ctx: ImportContext, state: RunState) throws {
        var driver = DecodeDriver(rdb: options.decoder, aof: options.aof)
        driver.opener = opener
        try decodeOpened(try driver.open(path), &v, ctx: ctx, state: state)
    }

    func decodeOpened<W: ReplayWriter>(_ opened: OpenedInput, _ v: inout ImportVisitor<W>, ctx: ImportContext, state: RunState) throws {
        var driver = DecodeDriver(rdb: options.decoder, aof: options.aof)
        driver.opener = opener
        if let size = opened.fileSize { ctx.stats.inputBytes = size }
        // A manifest or a folder opens its files one by one: no single input to follow.
        let single = opened.kind == .rdb || opened.kind == .aof
        state.input = single ? opened.input : nil
        ctx.parts.input = state.input
        // The import's decoder mostly waits for the server: the mapped pages a decode keeps between two
        // releases (and the checksum's lead, two steps) count whole in the import's peak, and releasing
        // them every 2 MiB instead of 8 costs nothing next to the network.
        state.input?.releaseEvery(InputBuffer.releaseStep / 4)
        defer { ctx.parts.input = nil }
        state.inputSize = opened.kind == .aofDirectory ? nil : opened.fileSize
        try driver.decode(opened, into: &v)
        if single, ctx.stats.inputBytes == 0, let input = opened.input { ctx.stats.inputBytes = input.offset }
    }

    /// A cluster has only database 0: the databases of the inputs that would go elsewhere (not mapped to 0
    /// with `--db`/`--db-map`), found by a pass over the inputs that steps over every value, before
    /// anything is written. Nil when all go to 0 (inputs read from standard input cannot be read twice:
    /// those stop at their first such key instead).
    func refuseOtherDatabases(_ files: [String]) throws -> String? {
        var found: [String: Set<Int>] = [:]
        var driver = DecodeDriver(rdb: options.decoder, aof: options.aof)
        driver.opener = opener  // (an object in a bucket is read twice then)
        for path in files where path != "-" {
            var scan = DatabaseScan()
            try driver.decode(try driver.open(path), into: &scan)
            let other = scan.databases.filter { options.targetDatabase($0) != 0 }
            if !other.isEmpty { found[path] = other }
        }
        guard !found.isEmpty else { return nil }
        let list = found.keys.sorted().map { "\($0) (database\(found[$0]!.count > 1 ? "s" : "") \(found[$0]!.sorted().map(String.init).joined(separator: ", ")))" }
        return "the target is a Redis Cluster, which has only database 0, but keys are in other databases: "
            + list.joined(separator: "; ") + "; nothing was written. Merge them into database 0 with --db 0 (or --db-map N:0)"
    }

    /// What a connection to the target waited on says when a stop request ended the wait.
    static let stoppedWhileConnecting = "stopped on request"

    /// The report of an import that stopped before anything was sent (nothing connected, nothing written).
    public func failedEarly(_ message: String, files: [String], started: Double? = nil) -> ImportReport {
        endedEarly(.failed, message, files: files, started: started)
    }

    /// The report of an import stopped on request before anything was sent.
    func stoppedEarly(_ message: String, files: [String], started: Double? = nil) -> ImportReport {
        endedEarly(.stopped, message, files: files, started: started)
    }

    private func endedEarly(_ status: ImportReport.Status, _ message: String, files: [String], started: Double?) -> ImportReport {
        ImportReport(
            status: status, failure: message, files: files.map { ImportFileStats(file: $0) }, problems: [], problemCounts: [:],
            warnings: [], target: target?.description, server: nil, targetVersion: nil,
            mode: options.mode.rawValue, dryRun: options.dryRun, reconnects: 0,
            seconds: started.map { monotonicSeconds() - $0 } ?? 0)
    }
}

/// The databases an input writes to (keys, and AOF commands other than `SELECT`), every value stepped over.
struct DatabaseScan: AOFVisitor {
    var databases: Set<Int> = []

    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        databases.insert(info.db)
        return .skip
    }

    mutating func command(_ command: AOFCommand) throws {
        if !command.nameEquals("SELECT") { databases.insert(command.db) }
    }
}
