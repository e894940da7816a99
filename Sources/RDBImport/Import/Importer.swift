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

    /// Largest number of bytes the pipeline had in flight (for tests of the memory bound).
    public private(set) var peakBytesInFlight = 0
    /// Keys sent in parts while they were decoded (larger than `ImportOptions.keyChunkBytes`).
    public private(set) var keysSentInParts = 0

    /// - Parameter target: the server; nil only for a dry run.
    public init(target: RedisEndpoint?, options: ImportOptions) {
        self.target = target
        self.options = options
    }

    /// Runs the import. Never throws: every failure (unreachable target, refused login, corrupt input,
    /// refused writes) is in the report, with the keys that did not arrive.
    public func run(files: [String]) -> ImportReport {
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
        if !options.dryRun {
            guard let target else { return failedEarly("no target given", files: files, started: started) }
            do {
                let p = try ImportPipeline(endpoint: target, options: options.pipeline, problems: problems, temporaryPrefix: temporaryPrefix)
                pipeline = p
                server = try p.start()
            } catch {
                failure = target.password?.redact("\(error)") ?? "\(error)"
            }
        }
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
        if failure != nil { builder.stopped = true }
        let ctx = ImportContext(
            options: options, builder: builder, problems: problems, targetVersion: targetVersion,
            databases: server?.databases, temporaryPrefix: temporaryPrefix, keyspaceAtStart: server?.keyspace)
        // A key's output stays in the buffer until `ImportVisitor.endKey` takes it out as one record, unless
        // it passes `keyChunkBytes`: then the writer's within-key flushes hand it to `KeyParts` in chunks.
        let out = OutputBuffer(target: ctx.parts, flushThreshold: 1 << 16, keyChunkThreshold: max(4096, options.keyChunkBytes ?? options.batchBytes))
        out.flushThreshold = .max  // no flushes between keys: the buffer holds at most the current key

        var fileStarted: [Double] = []
        let state = RunState(files: files, ctx: ctx, pipeline: pipeline, started: started)
        builder.onBatch = { [unowned self] in self.tick(state, final: false) }
        switch options.mode {
        case .commands:
            var o = RESPWriterOptions(
                maxElementsPerCommand: options.maxElementsPerCommand, maxBytesPerCommand: options.maxBytesPerCommand,
                dropTTL: options.dropTTL, targetVersion: targetVersion, emitSelect: false, emitFunctions: true)
            // Strings as one SET with NX (the existence check) and PXAT (Redis 6.2+) instead of SET + PEXPIREAT.
            o.setIfAbsent = !options.replace
            o.inlineExpiry = (targetVersion ?? 99) >= 9
            let w = RESPWriter(out: out, options: o)
            var v = ImportVisitor(writer: w, ctx: ctx)
            decodeAll(files, &v, ctx: ctx, state: state, fileStarted: &fileStarted, failure: &failure)
        case .restore:
            var o = RestoreWriterOptions(targetVersion: targetVersion ?? 10, replace: options.replace, dropTTL: options.dropTTL, emitSelect: false)
            o.maxElementsPerCommand = options.maxElementsPerCommand
            o.maxBytesPerCommand = options.maxBytesPerCommand
            var v = ImportVisitor(writer: RestoreWriter(out: out, options: o), ctx: ctx)
            decodeAll(files, &v, ctx: ctx, state: state, fileStarted: &fileStarted, failure: &failure)
        }
        builder.flush()
        keysSentInParts = ctx.parts.keysInParts
        if let pipeline {
            pipeline.finish()
            peakBytesInFlight = pipeline.window.peakBytes
        }
        tick(state, final: true)
        problems.flush()

        // Merge what the event loop counted (safe: the pipeline is done).
        let replies = pipeline?.counters ?? []
        var stats = builder.stats.enumerated().map { i, d in
            ImportFileStats(file: i < files.count ? files[i] : "?", decoded: d, replies: i < replies.count ? replies[i] : nil)
        }
        if let pipeline {
            warnings += pipeline.warnings
            if failure == nil, let f = pipeline.failure { failure = f.description }
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
        return ImportReport(
            status: failed ? .failed : (counts[.lossy] ?? 0) > 0 ? .lossy : .success, failure: failure, files: stats, problems: problems.problems,
            problemCounts: counts, warnings: warnings, target: target?.description, server: server,
            targetVersion: targetVersion, mode: options.mode == .restore ? "restore" : "commands", dryRun: options.dryRun,
            reconnects: pipeline?.reconnects ?? 0, seconds: end - started)
    }

    final class RunState {
        let files: [String]
        let ctx: ImportContext
        let pipeline: ImportPipeline?
        let started: Double
        var lastTick = 0.0
        var input: InputBuffer?
        var inputSize: Int?

        init(files: [String], ctx: ImportContext, pipeline: ImportPipeline?, started: Double) {
            self.files = files
            self.ctx = ctx
            self.pipeline = pipeline
            self.started = started
        }
    }

    func tick(_ s: RunState, final: Bool) {
        guard let onProgress else { return }
        let now = monotonicSeconds()
        if !final && now - s.lastTick < options.progressInterval { return }
        s.lastTick = now
        let p = s.pipeline?.progress ?? (0, 0, 0)
        let b = s.ctx.builder
        let f = min(s.ctx.file, max(0, s.files.count - 1))
        onProgress(ImportProgress(
            file: s.files.isEmpty ? "" : s.files[f], fileIndex: f, fileCount: s.files.count,
            inputOffset: final ? (s.input?.offset ?? s.ctx.position) : max(s.input?.offset ?? 0, s.ctx.position), inputSize: s.inputSize,
            keysRead: b.stats.reduce(0) { $0 + $1.keysRead }, keysSent: b.keysSent, keysAcknowledged: p.0,
            bytesSent: b.stats.reduce(0) { $0 + $1.bytesSent }, commandsInFlight: p.1, bytesInFlight: p.2,
            problems: s.ctx.problems.total, seconds: now - s.started, final: final))
    }

    func decodeAll<W: ReplayWriter>(
        _ files: [String], _ v: inout ImportVisitor<W>, ctx: ImportContext, state: RunState,
        fileStarted: inout [Double], failure: inout String?
    ) {
        for path in files {
            let index = ctx.problems.register(file: path)
            ctx.builder.stats.append(DecodeCounters())
            ctx.file = index
            ctx.position = 0
            fileStarted.append(monotonicSeconds())
            if let failure, ctx.failure == nil { ctx.failure = failure }
            do {
                try decodeFile(path, &v, ctx: ctx, state: state)
            } catch {
                let msg = "\(path): \(error)"
                if failure == nil { failure = msg }
                _ = ctx.parts.abort("\(error)")
                ctx.parts.armed = false
                ctx.builder.abandon()
                if ctx.failure == nil { ctx.failure = msg }
                v.out.truncate(to: 0)
                v.out.commit()
                ctx.problems.add(.notSent, file: index, db: 0, key: [], message: "the keys after the error in this file could not be read: \(error)")
            }
            tick(state, final: false)
        }
    }

    func decodeFile<W: ReplayWriter>(_ path: String, _ v: inout ImportVisitor<W>, ctx: ImportContext, state: RunState) throws {
        var driver = DecodeDriver(rdb: options.decoder, aof: options.aof)
        driver.opener = opener
        let opened = try driver.open(path)
        if let size = opened.fileSize { ctx.stats.inputBytes = size }
        // A manifest or a folder opens its files one by one: no single input to follow.
        let single = opened.kind == .rdb || opened.kind == .aof
        state.input = single ? opened.input : nil
        state.inputSize = opened.kind == .aofDirectory ? nil : opened.fileSize
        try driver.decode(opened, into: &v)
        if single, ctx.stats.inputBytes == 0, let input = opened.input { ctx.stats.inputBytes = input.offset }
    }

    /// The report of an import that stopped before anything was sent (nothing connected, nothing written).
    public func failedEarly(_ message: String, files: [String], started: Double? = nil) -> ImportReport {
        ImportReport(
            status: .failed, failure: message, files: files.map { ImportFileStats(file: $0) }, problems: [], problemCounts: [:],
            warnings: [], target: target?.description, server: nil, targetVersion: nil,
            mode: options.mode == .restore ? "restore" : "commands", dryRun: options.dryRun, reconnects: 0,
            seconds: started.map { monotonicSeconds() - $0 } ?? 0)
    }
}
