import ArgumentParser
import RDBKit
import RDBSinks
#if canImport(Glibc)
import Glibc
#endif

/// Output formats of `rdbcat`.
package enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case json, jsonl, resp, restore, keys, stats, memory
}

extension BinaryMode: ExpressibleByArgument {}

package struct Cat: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Decode RDB/AOF files and write them in another format (the default command).",
        discussion: """
            FILE is a path, - for standard input, or s3://bucket/key with --obs-endpoint (read as ranged GETs, \
            no local copy). Regular files are memory-mapped; a zstd or gzip input is recognised by content \
            and decompressed on the fly. Errors name the file, the byte \
            offset and the key, and end the run with a non-zero exit; output stays valid up to the last \
            complete key.
            """
    )

    @Argument(help: "Input files (RDB, AOF, manifest, appendonlydir); - for stdin; s3://bucket/key.", completion: .file())
    var files: [String] = ["-"]

    @Option(name: .shortAndLong, help: "Output format: \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: OutputFormat = .jsonl

    @Option(name: .shortAndLong, help: "Write to this file instead of stdout.")
    var output: String?

    @Option(help: "How JSON formats write byte strings: escape (UTF-8, invalid bytes as \\udcXX) or base64.")
    var binary: BinaryMode = .escape

    @Flag(help: "JSONL: add encoding, idle and freq fields.")
    var metadata = false

    package init() {}

    @Flag(help: """
        Keep going after a key whose value is corrupt inside intact framing (bad ziplist, listpack, intset, \
        zipmap, stream node, LZF block): the key is dropped whole and reported. Corrupt framing (a bad length, \
        type or opcode) or truncation still stops the file, since RDB has no markers to resynchronise on; \
        the report then names the byte range that was not read. Exit status 3 when anything was lost.
        """)
    var salvage = false

    @Option(help: "resp/restore: RDB version of the target server (9 = Redis 6.2, 10 = 7.0, 11 = 7.2/Valkey 8, 12 = 7.4+, 80 = Valkey 9; default: the file's own).")
    var targetVersion: Int?

    @Option(help: "resp/restore: the target's zset-max-listpack-entries, for keeping scores of -0 (default 128).")
    var zsetMaxListpackEntries: Int?

    @Option(help: "resp/restore: the target's zset-max-listpack-value, for keeping scores of -0 (default 64).")
    var zsetMaxListpackValue: Int?

    @Option(help: "resp/restore: at most this many elements per command.")
    var batchElements: Int = 512

    @Option(help: "resp/restore: at most this many bytes per command.")
    var batchBytes: Int = 1 << 20

    @Option(help: "resp, restore, jsonl, memory: threads that decode a memory-mapped RDB file of 2 MiB or more (or a streamed one), in chunks written in order; keys, stats: a mapped AOF file of 8 MiB or more is read in two parts on two threads when there are two (default: the number of cores; 1 = one thread). --salvage uses one.")
    var threads: Int?

    @OptionGroup(title: "Decoding")
    var decode: DecodeFlags

    @OptionGroup(title: "Filters")
    var filters: FilterFlags

    @OptionGroup(title: "Object store (s3://bucket/key inputs)")
    var objectStore: ObjectStoreFlags

    /// The run these flags ask for (a filter that does not compile, or an object store the inputs need but the
    /// flags do not give, is an error).
    package var job: CatJob {
        get throws {
            if let problem = DumpPayload.targetVersionProblem(targetVersion) { throw ValidationError(problem) }
            var job = CatJob()
            job.files = files
            job.format = format
            job.output = output
            job.binary = binary
            job.metadata = metadata
            job.salvage = salvage
            job.targetVersion = targetVersion
            job.compactSortedSets = try CompactSortedSetLimits.given(entries: zsetMaxListpackEntries, value: zsetMaxListpackValue)
                ?? CompactSortedSetLimits()
            job.batchElements = batchElements
            job.batchBytes = batchBytes
            job.threads = threads
            decode.apply(to: &job.rdb, aof: &job.aof)
            job.showProgress = decode.showProgress
            job.filter = try filters.keyFilter()
            job.opener = try objectStore.opener(for: files)
            return job
        }
    }

    package func run() throws {
        try job.run()
    }
}

/// What a `cat` run does, in plain values: made from the parsed command (`Cat.job`), or, for arguments that are
/// only input paths, a format, an output file and a thread count, straight from them (`CatJob(quickArguments:)`).
package struct CatJob {
    package var files = ["-"]
    package var format = OutputFormat.jsonl
    package var output: String?
    package var binary = BinaryMode.escape
    package var metadata = false
    package var salvage = false
    package var targetVersion: Int?
    /// The target's `zset-max-listpack-*` (resp, restore).
    package var compactSortedSets = CompactSortedSetLimits()
    package var batchElements = 512
    package var batchBytes = 1 << 20
    package var threads: Int?
    /// The decoders' options with the decode flags applied (`DecodeFlags.apply`), before `salvage` and the filter are.
    package var rdb = CatJob.defaultRecordLimit
    package var aof = AOFOptions()
    package var showProgress = DecodeFlags.showsProgress()
    package var filter = KeyFilter()
    /// Opens the inputs an object store holds (rdbcat-full, with its flags).
    package var opener: InputOpener?

    /// Every flag at its default (as `Cat` declares them: a test holds the two the same).
    package init() {
        aof.rdb = rdb
    }

    /// The job for arguments that are only input paths (`-` for standard input), `--format`/`-f`,
    /// `--output`/`-o` and `--threads` (each at most once, its value after a space, or after `=` for a long
    /// name): what ArgumentParser makes of them (a test holds the two the same), without its start-up, 2-3.5 ms
    /// of reflection over the command's 34 options on every run (the time rdbcat takes to read 3 MB of AOF).
    /// Nil for anything else, which ArgumentParser parses.
    package init?(quickArguments arguments: [String]) {
        self.init()
        var files: [String] = []
        var format: OutputFormat?, output: String?, threads: Int?
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            i += 1
            if a == "-" || !a.hasPrefix("-") {
                files.append(a)
                continue
            }
            var name = Substring(a), value: Substring?
            if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") {
                name = a[..<eq]
                value = a[a.index(after: eq)...]
            } else if i < arguments.count {
                value = Substring(arguments[i])
                i += 1
            }
            // A value that looks like an option is left to ArgumentParser.
            guard let value, !value.hasPrefix("-") else { return nil }
            switch name {
            case "--format", "-f":
                guard format == nil, let f = OutputFormat(rawValue: String(value)) else { return nil }
                format = f
            case "--output", "-o":
                guard output == nil, !value.isEmpty else { return nil }
                output = String(value)
            case "--threads":
                guard threads == nil, let n = Int(value) else { return nil }
                threads = n
            default:
                return nil
            }
        }
        if !files.isEmpty { self.files = files }
        if let format { self.format = format }
        self.output = output
        self.threads = threads
    }

    /// `cat` buffers a streamed record of up to 1 GiB (`--max-record-mb`).
    static var defaultRecordLimit: RDBDecoderOptions {
        var o = RDBDecoderOptions()
        o.maxRecordBytes = 1024 << 20
        return o
    }

    package func run() throws {
        var options = rdb
        var aofOptions = aof
        options.salvage = salvage
        let log = SalvageLog()

        let target: OutputTarget
        if let output { target = try FileDescriptorTarget.create(path: output) } else { target = FileDescriptorTarget.standardOutput }
        let out = OutputBuffer(target: target)
        // Salvage drops a key found corrupt half-way whole (rollback), so each key stays in memory until it
        // is complete, however large; otherwise a huge key is written out in parts as it is decoded.
        out.keepsWholeKeys = salvage
        filter.apply(to: &options)
        aofOptions.rdb = options
        var respOptions = RESPWriterOptions()
        respOptions.maxElementsPerCommand = batchElements
        respOptions.maxBytesPerCommand = batchBytes
        respOptions.targetVersion = targetVersion
        respOptions.dropTTL = filter.noTTL
        respOptions.compactSortedSets = compactSortedSets

        var driver = DecodeDriver(rdb: options, aof: aofOptions, log: log)
        driver.opener = opener
        if showProgress { driver.progress = { writeStderr($0) } }
        driver.onStopped = { out.rollback() }
        driver.threads = max(1, threads ?? availableCores())
        do {
            // The reports of AOF inputs (a keys list, command stats) differ from those of RDB files.
            let readsAOF = format == .keys || format == .stats ? try inputsIncludeAOF(&driver) : false
            switch format {
            case .jsonl:
                var sink = FilteringVisitor(inner: JSONLWriter(out: out, binary: binary, includeMetadata: metadata), filter: filter)
                try decodeAll(&sink, driver: driver)
            case .resp:
                var sink = FilteringVisitor(inner: RESPWriter(out: out, options: respOptions), filter: filter)
                try decodeAll(&sink, driver: driver)
                reportSkipped(sink.inner.skippedKeys, lossy: sink.inner.lossyKeys, libraries: sink.inner.skippedLibraries)
            case .restore:
                var o = RestoreWriterOptions(targetVersion: targetVersion, replace: true, dropTTL: filter.noTTL)
                o.maxElementsPerCommand = batchElements
                o.maxBytesPerCommand = batchBytes
                o.compactSortedSets = compactSortedSets
                var sink = FilteringVisitor(inner: RestoreWriter(out: out, options: o), filter: filter)
                try decodeAllRDB(&sink, driver: driver)
                reportSkipped(sink.inner.skippedKeys, lossy: sink.inner.lossyKeys, libraries: sink.inner.skippedLibraries)
            case .json:
                var sink = FilteringVisitor(inner: JSONWriter(out: out, binary: binary), filter: filter)
                do {
                    try decodeAllRDB(&sink, driver: driver)
                } catch {
                    if !out.keepsPartOfKey {  // else part of a key is out: no way to a valid document
                        out.rollback()
                        sink.inner.finish()
                    }
                    throw error
                }
            case .keys where readsAOF:
                // AOF inputs: every key a preamble holds or a command names, once, with its command count.
                var sink = FilteringVisitor(inner: AOFKeys(binary: binary, otherCore: driver.threads > 1), filter: filter)
                try decodeAll(&sink, driver: driver)
                try sink.inner.writeJSONL(to: out)
            case .keys:
                var sink = FilteringVisitor(inner: KeysWriter(out: out), filter: filter)
                try decodeAllRDB(&sink, driver: driver)
            case .stats where readsAOF:
                var sink = FilteringVisitor(inner: AOFStats(), filter: filter)
                try decodeAll(&sink, driver: driver)
                try sink.inner.write(to: out)
            case .stats:
                var sink = FilteringVisitor(inner: StatsCollector(out: out), filter: filter)
                try decodeAllRDB(&sink, driver: driver)
            case .memory:
                var sink = FilteringVisitor(inner: MemoryReportWriter(out: out, checksumVerified: options.verifyChecksum), filter: filter)
                try decodeAllRDB(&sink, driver: driver)
            }
            try out.flush()
        } catch let e as RDBError {
            let partial = out.keepsPartOfKey
            out.rollback()
            try? out.flush()
            if partial {
                writeStderr("rdbcat: the output ends with part of the key in progress (use --salvage to keep keys whole)\n")
            }
            writeStderr("rdbcat: error: \(e)\n")
            log.reportLines().forEach(writeStderr)
            throw ExitCode(2)
        } catch let e where objectStoreSupport?.flushesOutput(e) != nil {  // ObjectStoreError flushes, ObjectInputs.Unsupported not
            if objectStoreSupport?.flushesOutput(e) == true { try? out.flush() }
            writeStderr("rdbcat: error: \(e)\n")
            throw ExitCode(2)
        }
        log.reportLines().forEach(writeStderr)
        if !log.isClean { throw ExitCode(3) }
    }

    func reportSkipped(_ skipped: [SkippedKey], lossy: [SkippedKey], libraries: [String]) {
        for name in libraries {
            writeStderr("rdbcat: warning: function library \(name) not written: \(RESPWriter.functionsNeedVersion10)\n")
        }
        for k in skipped {
            writeStderr("rdbcat: warning: key \(RDBError.printable(k.key)) (db \(k.db), \(k.type.kind.staticName), RDB type \(k.type.rawValue)) not written: \(k.reason)\n")
        }
        for k in lossy {
            writeStderr("rdbcat: warning: key \(RDBError.printable(k.key)) (db \(k.db), \(k.type.kind.staticName), RDB type \(k.type.rawValue)) written without: \(k.reason)\n")
        }
    }

    /// Decodes every input in order into one sink that takes RDB events only (AOF inputs are refused).
    func decodeAllRDB<V: RDBVisitor>(_ sink: inout V, driver: DecodeDriver) throws {
        try refusingAOF { try driver.decodeRDB(paths: files, into: &sink) }
    }

    /// The same, for a sink the RDB files may be decoded into on several threads (`--threads`).
    func decodeAllRDB<V: ChunkableSink>(_ sink: inout V, driver: DecodeDriver) throws {
        try refusingAOF { try driver.decodeRDB(paths: files, into: &sink) }
    }

    /// Runs a decode of RDB files only, an AOF input being a usage error.
    func refusingAOF(_ decode: () throws -> Void) throws {
        do {
            try decode()
        } catch let e as DecodeDriver.WrongKind {
            throw ValidationError("\(e.path): not an RDB file; format \(format.rawValue) reads RDB files (jsonl, resp, keys and stats read AOF inputs too)")
        }
    }

    /// The same, for a sink the RDB parts of inputs may be decoded into on several threads (`--threads`).
    func decodeAll<V: AOFVisitor & ChunkableSink>(_ sink: inout V, driver: DecodeDriver) throws {
        for w in try driver.decode(paths: files, into: &sink) { writeStderr("rdbcat: warning: \(w)\n") }
    }

    /// Decodes every input in order into a sink that also takes AOF commands: RDB files, AOF files (with or
    /// without an RDB preamble), manifests and appendonlydir folders, told apart by content.
    func decodeAll<V: AOFVisitor>(_ sink: inout V, driver: DecodeDriver) throws {
        for w in try driver.decode(paths: files, into: &sink) { writeStderr("rdbcat: warning: \(w)\n") }
    }

    /// Whether any input is an AOF (a folder, a manifest, or a file that does not start with an RDB header),
    /// so that `keys` and `stats` use their AOF reports. Standard input and RDB files (an AOF with an RDB
    /// preamble among them: bytes after its RDB are reported) keep the RDB reports.
    /// Whether an input is an AOF (a file, a manifest, a folder). Standard input is told by its first bytes,
    /// which opening it reads into its window: the driver is given that opened input for "-", to decode it from
    /// there.
    func inputsIncludeAOF(_ driver: inout DecodeDriver) throws -> Bool {
        var aof = false
        for path in files {
            let opened = try driver.open(path)
            if opened.kind != .rdb { aof = true }
            if path == "-" {
                let previous = driver.opener
                var stdin: OpenedInput? = opened
                driver.opener = { path, limit in
                    if path == "-", let taken = stdin {
                        stdin = nil
                        return taken
                    }
                    return try previous?(path, limit)
                }
            }
        }
        return aof
    }
}

extension CompactSortedSetLimits {
    /// The limits `--zset-max-listpack-entries` and `--zset-max-listpack-value` give (the default for the one not
    /// given); nil when neither is given.
    package static func given(entries: Int?, value: Int?) throws -> CompactSortedSetLimits? {
        guard entries != nil || value != nil else { return nil }
        guard entries ?? 0 >= 0, value ?? 0 >= 0 else {
            throw ValidationError("--zset-max-listpack-entries and --zset-max-listpack-value take a number of 0 or more")
        }
        return CompactSortedSetLimits(entries: entries ?? defaults.entries, value: value ?? defaults.value)
    }
}

