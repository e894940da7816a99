import ArgumentParser
import RDBKit
import RDBSinks
#if canImport(Glibc)
import Glibc
#endif

/// Output formats of `rdbcat`.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case json, jsonl, resp, restore, keys, stats, memory
}

extension BinaryMode: ExpressibleByArgument {}

struct Cat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Decode RDB/AOF files and write them in another format (the default command).",
        discussion: """
            FILE is a path, or - for standard input. Regular files are memory-mapped; a zstd-compressed \
            input is recognised by content and decompressed on the fly. Errors name the file, the byte \
            offset and the key, and end the run with a non-zero exit; output stays valid up to the last \
            complete key.
            """
    )

    @Argument(help: "Input files (RDB, AOF, manifest, appendonlydir); - for stdin.", completion: .file())
    var files: [String] = ["-"]

    @Option(name: .shortAndLong, help: "Output format: \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: OutputFormat = .jsonl

    @Option(name: .shortAndLong, help: "Write to this file instead of stdout.")
    var output: String?

    @Flag(help: "Show progress on stderr even when it is not a terminal.")
    var progress = false

    @Flag(help: "Never show progress.")
    var noProgress = false

    @Option(help: "How JSON formats write byte strings: escape (UTF-8, invalid bytes as \\udcXX) or base64.")
    var binary: BinaryMode = .escape

    @Flag(help: "JSONL: add encoding, idle and freq fields.")
    var metadata = false

    @Flag(help: "Accept RDB versions newer than this tool knows (and try to decode them).")
    var allowNewerVersions = false

    func reportSkipped(_ skipped: [SkippedKey], lossy: [SkippedKey]) {
        for k in skipped {
            writeStderr("rdbcat: warning: key \(RDBError.printable(k.key)) (db \(k.db), \(k.type)) not written: \(k.reason)\n")
        }
        for k in lossy {
            writeStderr("rdbcat: warning: key \(RDBError.printable(k.key)) (db \(k.db), \(k.type)) written without: \(k.reason)\n")
        }
    }

    @Flag(help: "Do not verify the CRC64 trailer.")
    var noVerifyChecksum = false

    @Flag(help: """
        Keep going after a key whose value is corrupt inside intact framing (bad ziplist, listpack, intset, \
        zipmap, stream node, LZF block): the key is dropped whole and reported. Corrupt framing (a bad length, \
        type or opcode) or truncation still stops the file, since RDB has no markers to resynchronise on; \
        the report then names the byte range that was not read. Exit status 3 when anything was lost.
        """)
    var salvage = false

    @Option(help: "Only keys of this database (repeatable).")
    var db: [Int] = []

    @Option(help: "Only keys matching this regular expression (searched in the key as UTF-8).")
    var key: String?

    @Option(help: "Drop keys matching this regular expression.")
    var notKey: String?

    @Option(help: "Only keys of this type: string, list, set, zset, hash, stream, module (repeatable).")
    var type: [String] = []

    @Option(help: "Only values of at least this many serialized bytes in the file.")
    var minSize: Int?

    @Option(help: "Only values of at most this many serialized bytes in the file.")
    var maxSize: Int?

    @Flag(help: "Drop keys already expired at --now.")
    var noExpired = false

    @Option(help: "Current time for --no-expired, in Unix ms (default: now).")
    var now: Int64?

    @Flag(help: "Drop expiries (keys and hash fields) on replay.")
    var noTtl = false

    @Option(help: "resp/restore: RDB version of the target server (9 = Redis 6.2, 10 = 7.0, 11 = 7.2/Valkey 8, 12 = 7.4+, 80 = Valkey 9; default: the file's own).")
    var targetVersion: Int?

    @Option(help: "resp/restore: at most this many elements per command.")
    var batchElements: Int = 512

    @Option(help: "resp/restore: at most this many bytes per command.")
    var batchBytes: Int = 1 << 20

    @Flag(help: "AOF: a torn last command is an error instead of being dropped with a warning.")
    var strict = false

    @Option(help: "Largest single record a streamed input may buffer, in MiB.")
    var maxRecordMB: Int = 1024

    func run() throws {
        var options = RDBDecoderOptions()
        options.allowNewerVersions = allowNewerVersions
        options.verifyChecksum = !noVerifyChecksum
        options.maxRecordBytes = maxRecordMB << 20
        options.salvage = salvage
        let log = SalvageLog()

        let target: OutputTarget
        if let output { target = try FileDescriptorTarget.create(path: output) } else { target = FileDescriptorTarget.standardOutput }
        let out = OutputBuffer(target: target)
        // Salvage drops a key found corrupt half-way whole (rollback), so each key stays in memory until it
        // is complete, however large; otherwise a huge key is written out in parts as it is decoded.
        out.keepsWholeKeys = salvage
        let showProgress = !noProgress && (progress || isatty(2) != 0)

        var filter = KeyFilter(noExpired: noExpired, noTTL: noTtl)
        if let now { filter.now = now }
        if !db.isEmpty { filter.dbs = Set(db) }
        if let key { filter.keyPattern = try KeyPattern(regex: key) }
        if let notKey { filter.notKeyPattern = try KeyPattern(regex: notKey) }
        if !type.isEmpty {
            var kinds = Set<RDBKind>()
            for t in type {
                guard let k = RDBKind.allNames[t] else { throw ValidationError("unknown type '\(t)'") }
                kinds.insert(k)
            }
            filter.types = kinds
        }
        filter.minSize = minSize
        filter.maxSize = maxSize
        filter.apply(to: &options)
        var aofOptions = AOFOptions()
        aofOptions.strict = strict
        aofOptions.rdb = options
        var respOptions = RESPWriterOptions()
        respOptions.maxElementsPerCommand = batchElements
        respOptions.maxBytesPerCommand = batchBytes
        respOptions.targetVersion = targetVersion
        respOptions.dropTTL = noTtl

        do {
            switch format {
            case .jsonl:
                var sink = FilteringVisitor(inner: JSONLWriter(out: out, binary: binary, includeMetadata: metadata), filter: filter)
                try decodeAll(&sink, out: out, options: options, aof: aofOptions, showProgress: showProgress, log: log)
            case .resp:
                var sink = FilteringVisitor(inner: RESPWriter(out: out, options: respOptions), filter: filter)
                try decodeAll(&sink, out: out, options: options, aof: aofOptions, showProgress: showProgress, log: log)
                reportSkipped(sink.inner.skippedKeys, lossy: sink.inner.lossyKeys)
            case .restore:
                var o = RestoreWriterOptions(targetVersion: targetVersion, replace: true, dropTTL: noTtl)
                o.maxElementsPerCommand = batchElements
                o.maxBytesPerCommand = batchBytes
                var sink = FilteringVisitor(inner: RestoreWriter(out: out, options: o), filter: filter)
                try decodeAllRDB(&sink, out: out, options: options, showProgress: showProgress, log: log)
                reportSkipped(sink.inner.skippedKeys, lossy: sink.inner.lossyKeys)
            case .json:
                var sink = FilteringVisitor(inner: JSONWriter(out: out, binary: binary), filter: filter)
                do {
                    try decodeAllRDB(&sink, out: out, options: options, showProgress: showProgress, log: log)
                } catch {
                    if !out.hasFlushedPartialKey {  // else part of a key is out: no way to a valid document
                        out.rollback()
                        sink.inner.finish()
                    }
                    throw error
                }
            case .keys where try inputsIncludeAOF():
                // AOF inputs: every key a preamble holds or a command names, once, with its command count.
                var sink = FilteringVisitor(inner: AOFKeys(binary: binary), filter: filter)
                try decodeAll(&sink, out: out, options: options, aof: aofOptions, showProgress: showProgress, log: log)
                try sink.inner.writeJSONL(to: out)
            case .keys:
                var sink = FilteringVisitor(inner: KeysWriter(out: out), filter: filter)
                try decodeAllRDB(&sink, out: out, options: options, showProgress: showProgress, log: log)
            case .stats where try inputsIncludeAOF():
                var sink = FilteringVisitor(inner: AOFStats(), filter: filter)
                try decodeAll(&sink, out: out, options: options, aof: aofOptions, showProgress: showProgress, log: log)
                try sink.inner.write(to: out)
            case .stats:
                var sink = FilteringVisitor(inner: StatsCollector(out: out), filter: filter)
                try decodeAllRDB(&sink, out: out, options: options, showProgress: showProgress, log: log)
            case .memory:
                var sink = FilteringVisitor(inner: MemoryReportWriter(out: out), filter: filter)
                try decodeAllRDB(&sink, out: out, options: options, showProgress: showProgress, log: log)
            }
            try out.flush()
        } catch let e as RDBError {
            let partial = out.hasFlushedPartialKey
            out.rollback()
            try? out.flush()
            if partial {
                writeStderr("rdbcat: the output ends with part of the key in progress (use --salvage to keep keys whole)\n")
            }
            writeStderr("rdbcat: error: \(e)\n")
            log.report()
            throw ExitCode(2)
        }
        log.report()
        if !log.isClean { throw ExitCode(3) }
    }

    /// Decodes every input in order into one sink that takes RDB events only (AOF inputs are refused).
    func decodeAllRDB<V: RDBVisitor>(_ sink: inout V, out: OutputBuffer, options: RDBDecoderOptions, showProgress: Bool, log: SalvageLog) throws {
        for path in files {
            let input = try InputBuffer.open(path: path, limit: options.maxRecordBytes)
            guard try Cat.isRDB(input) else {
                throw ValidationError("\(path): not an RDB file; format \(format.rawValue) reads RDB files (jsonl, resp, keys and stats read AOF inputs too)")
            }
            let total = input.isStreaming ? nil : input.window.count
            let reporter = ProgressReporter(input: input, total: total, enabled: showProgress)
            var wrapped = SalvageVisitor(inner: ProgressVisitor(inner: sink, progress: reporter), log: log, file: path)
            defer { sink = wrapped.inner.inner }
            do {
                _ = try RDBReader.decode(input, into: &wrapped, options: options)
                if try input.fillMore() || input.window.count > 0 {
                    log.trailing.append((path, input.offset))
                }
            } catch let e as RDBError where options.salvage {
                out.rollback()
                log.stopped.append((path, e.offset, total, e))
            }
        }
    }

    /// Decodes every input in order into a sink that also takes AOF commands: RDB files, AOF files (with or
    /// without an RDB preamble), manifests and appendonlydir folders, told apart by content.
    func decodeAll<V: AOFVisitor>(
        _ sink: inout V, out: OutputBuffer, options: RDBDecoderOptions, aof: AOFOptions, showProgress: Bool, log: SalvageLog
    ) throws {
        for path in files {
            let isDir = Cat.isDirectory(path)
            let input = isDir ? nil : try InputBuffer.open(path: path, limit: options.maxRecordBytes)
            let total = input.flatMap { $0.isStreaming ? nil : $0.window.count }
            if let input, !input.isStreaming, try Cat.isRDB(input) {
                // An RDB file, or an AOF with an RDB preamble: the RDB path (progress, salvage), then any
                // command tail through the AOF reader from where the RDB ended.
                let reporter = ProgressReporter(input: input, total: total, enabled: showProgress)
                var wrapped = SalvageVisitor(inner: ProgressVisitor(inner: sink, progress: reporter), log: log, file: path)
                do {
                    _ = try RDBReader.decode(input, into: &wrapped, options: options)
                    sink = wrapped.inner.inner
                } catch let e as RDBError where options.salvage {
                    sink = wrapped.inner.inner
                    out.rollback()
                    log.stopped.append((path, e.offset, total, e))
                    continue
                }
                if input.window.count > 0 {
                    let summary = try AOFReader.decode(input, name: path, into: &sink, options: aof)
                    for w in summary.warnings { writeStderr("rdbcat: warning: \(w)\n") }
                }
                continue
            }
            let summary: AOFSummary
            if let input, input.isStreaming {
                summary = try AOFReader.decode(input, name: path, into: &sink, options: aof)
            } else {
                summary = try AOFReader.decode(path: path, into: &sink, options: aof)
            }
            for w in summary.warnings { writeStderr("rdbcat: warning: \(w)\n") }
        }
    }

    /// Whether any input is an AOF (a folder, a manifest, or a file that does not start with an RDB header),
    /// so that `keys` and `stats` use their AOF reports. Standard input and RDB files (an AOF with an RDB
    /// preamble among them: bytes after its RDB are reported) keep the RDB reports.
    func inputsIncludeAOF() throws -> Bool {
        for path in files where path != "-" {
            if Cat.isDirectory(path) { return true }
            let input = try InputBuffer.open(path: path, limit: 1 << 20)
            if !input.isStreaming, try !Cat.isRDB(input) { return true }
        }
        return false
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Whether the input starts with an RDB header (REDIS or VALKEY magic).
    static func isRDB(_ input: InputBuffer) throws -> Bool {
        try input.fill(atLeast: 9)
        let w = input.window
        return RDBHeader.parse(w) != nil
    }
}

extension FilteringVisitor: AOFVisitor where Inner: AOFVisitor {
    public mutating func beginAOFFile(name: String, kind: AOFFileKind) throws { try inner.beginAOFFile(name: name, kind: kind) }
    public mutating func command(_ command: AOFCommand) throws {
        if let dbs = filter.dbs, !dbs.contains(command.db) { return }
        try inner.command(command)
    }
    public mutating func annotation(_ text: RDBString, offset: Int) throws { try inner.annotation(text, offset: offset) }
    public mutating func endAOFFile(name: String, kind: AOFFileKind) throws { try inner.endAOFFile(name: name, kind: kind) }
}
