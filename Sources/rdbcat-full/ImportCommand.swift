import ArgumentParser
import RDBCatCommand
import RDBImport
import RDBKit
import RDBSinks
import RedisWire
#if canImport(Glibc)
import Glibc
#endif

/// Sets an endpoint's user and its password (from an environment variable or a file, never a flag's value);
/// `flags` is the prefix of the options' names in messages (`from-` for a sync source).
func applyCredentials(user: String?, passwordEnv: String?, passwordFile: String?, to endpoint: inout RedisEndpoint, flags: String) throws {
    if let user { endpoint.username = user }
    if passwordEnv != nil && passwordFile != nil {
        throw ValidationError("give --\(flags)password-env or --\(flags)password-file, not both")
    }
    if let passwordEnv { endpoint.password = try SecretSource.environment(passwordEnv) }
    if let passwordFile { endpoint.password = try SecretSource.file(passwordFile) }
}

/// Connection and import settings shared by `import` and `migrate`.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "ACL user name (with the password).")
    var user: String?

    @Option(help: ArgumentHelp("Read the password from this environment variable.", valueName: "VAR"))
    var passwordEnv: String?

    @Option(help: ArgumentHelp("Read the password from the first line of this file.", valueName: "FILE"))
    var passwordFile: String?

    @Flag(help: "Connect with TLS (implied by rediss://).")
    var tls = false

    @Option(help: ArgumentHelp("TLS: PEM file of the CA to trust (default: the system's).", valueName: "FILE"))
    var tlsCa: String?

    @Option(help: ArgumentHelp("TLS: client certificate (PEM).", valueName: "FILE"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("TLS: client private key (PEM).", valueName: "FILE"))
    var tlsKey: String?

    @Option(help: "TLS: server name for SNI and certificate checks.")
    var tlsServerName: String?

    @Flag(help: "TLS: do not verify the server's certificate.")
    var tlsInsecure = false

    /// Applies user, password and TLS settings to an endpoint.
    func apply(to endpoint: inout RedisEndpoint) throws {
        try applyCredentials(user: user, passwordEnv: passwordEnv, passwordFile: passwordFile, to: &endpoint, flags: "")
        if tls || endpoint.tls != nil || tlsCa != nil || tlsCert != nil {
            endpoint.tls = TLSOptions(caFile: tlsCa, certificateFile: tlsCert, keyFile: tlsKey, verify: !tlsInsecure, serverName: tlsServerName)
        }
    }
}

struct ImportSettings: ParsableArguments {
    @Flag(help: "Every key as a RESTORE payload (values pass through when the target loads their type). Default: per key the fastest faithful form (strings as SET, other values as RESTORE when the target loads them, commands otherwise).")
    var restore = false

    @Flag(help: "Every key as plain commands (SET, RPUSH, HSET, XADD, ...), except values commands cannot rebuild exactly.")
    var commands = false

    @Flag(help: "Overwrite keys that exist on the target (without it they are left as they are and reported).")
    var replace = false

    @Option(help: "RDB version of the target (9 = Redis 6.2, 10 = 7.0, 11 = 7.2/Valkey 8, 12 = 7.4+, 80 = Valkey 9); default: from INFO.")
    var targetVersion: Int?

    @Option(help: "The target's zset-max-listpack-entries, for keeping scores of -0; default: from CONFIG GET (128 where CONFIG is refused).")
    var zsetMaxListpackEntries: Int?

    @Option(help: "The target's zset-max-listpack-value, for keeping scores of -0; default: from CONFIG GET (64 where CONFIG is refused).")
    var zsetMaxListpackValue: Int?

    @Option(name: .customLong("db-map"), help: ArgumentHelp("Map a database of the file to one of the target (repeatable).", valueName: "SRC:DST"))
    var dbMap: [String] = []

    @Option(help: "Import every database (not mapped by --db-map) into this one.")
    var db: Int?

    @Option(help: "Commands in flight (sent, not yet answered).")
    var pipeline: Int = 20_000

    @Option(help: "MiB in flight, or answered and held for a resend (the import's memory bound on the network side; one larger key passes it).")
    var pipelineMb: Int = 16

    @Option(help: "A key whose commands pass this many KiB goes out in parts while it is decoded (default: the batch size, at most 256).")
    var keyChunkKb: Int?

    @Flag(help: "Guard every key (DEL first with --replace, else a temporary name), even in a database that was empty when the import began (use when other clients write to the target meanwhile).")
    var guardEveryKey = false

    @Option(help: "Most collection elements per command.")
    var batch: Int = 512

    @Option(help: "Most bytes per command (a larger single element still gets a command of its own).")
    var batchBytes: Int = 1 << 20

    @Flag(help: "Leave out key expiries and hash-field TTLs.")
    var dropTtl = false

    @Flag(help: "Also send keys whose expiry has passed (by default they are counted and left out, as a loading server does).")
    var keepExpired = false

    @Option(help: "Seconds to keep trying to reconnect after the connection is lost.")
    var reconnectTimeout: Double = 60

    @Option(help: "Seconds without a reply (with commands outstanding) before the connection counts as lost.")
    var replyTimeout: Double = 60

    @Option(help: ArgumentHelp("Write every problem (key errors, existing, not arrived, ...) to this file as JSON lines.", valueName: "FILE"))
    var problems: String?

    @Option(help: "Problems listed in the report (all are counted).")
    var problemLimit: Int = 1000

    @OptionGroup(title: "Decoding")
    var decode: DecodeFlags

    @Flag(help: "Log connection details (handshakes, every reconnect attempt) on stderr.")
    var verbose = false

    func options(dryRun: Bool, urlDatabase: Int?) throws -> ImportOptions {
        var o = ImportOptions()
        if restore && commands { throw ValidationError("give --restore or --commands, not both") }
        if let problem = DumpPayload.targetVersionProblem(targetVersion) { throw ValidationError(problem) }
        o.mode = restore ? .restore : commands ? .commands : .auto
        o.replace = replace
        o.targetVersion = targetVersion
        o.compactSortedSets = try CompactSortedSetLimits.given(entries: zsetMaxListpackEntries, value: zsetMaxListpackValue)
        for m in dbMap {
            let parts = m.split(separator: ":")
            guard parts.count == 2, let s = Int(parts[0]), let d = Int(parts[1]), s >= 0, d >= 0 else {
                throw ValidationError("--db-map wants SRC:DST (two database numbers), not '\(m)'")
            }
            o.databaseMap[s] = d
        }
        if db != nil && urlDatabase != nil && db != urlDatabase {
            throw ValidationError("the URL names database \(urlDatabase!) and --db \(db!): give one")
        }
        o.mergeInto = db ?? urlDatabase
        guard pipeline > 0, pipelineMb > 0, batch > 0, batchBytes > 0, keyChunkKb ?? 1 > 0 else {
            throw ValidationError("--pipeline, --pipeline-mb, --key-chunk-kb, --batch and --batch-bytes must be positive")
        }
        o.pipeline.maxCommandsInFlight = pipeline
        o.pipeline.maxBytesInFlight = pipelineMb << 20
        o.pipeline.reconnectTimeout = reconnectTimeout
        o.pipeline.replyTimeout = replyTimeout
        o.batchBytes = min(256 << 10, max(4096, (pipelineMb << 20) / 8))
        o.keyChunkBytes = keyChunkKb.map { $0 << 10 }
        o.guardEveryKey = guardEveryKey
        o.maxElementsPerCommand = batch
        o.maxBytesPerCommand = batchBytes
        o.dropTTL = dropTtl
        o.skipExpired = !keepExpired
        o.dryRun = dryRun
        o.problemsPath = problems
        o.problemLimit = problemLimit
        decode.apply(to: &o.decoder, aof: &o.aof)
        return o
    }

    var showProgress: Bool { decode.showProgress }
}

/// Renders `ImportProgress` as one line on stderr.
func progressLine(_ p: ImportProgress) -> String {
    func mb(_ n: Int) -> String { String(Double(n / 100_000) / 10) }
    var line = "\r"
    if p.fileCount > 1 { line += "[\(p.fileIndex + 1)/\(p.fileCount)] " }
    if p.inputOffset > 0 {
        line += "\(mb(p.inputOffset)) MB"
        if let t = p.inputSize, t > 0 { line += " of \(mb(t)) MB (\(min(100, p.inputOffset * 100 / t))%)" }
        line += ", "
    }
    let dt = max(p.seconds, 1e-3)
    line += "\(p.keysSent) keys sent, \(p.keysAcknowledged) acknowledged, \(Int(Double(p.keysAcknowledged) / dt)) keys/s, "
    line += "\(mb(p.bytesSent)) MB sent, \(mb(p.bytesInFlight)) MB in flight"
    if p.problems > 0 { line += ", \(p.problems) problems" }
    line += "   "
    if p.final { line += "\n" }
    return line
}

/// One line for a human at the end.
func summaryLine(_ r: ImportReport) -> String {
    let dt = max(r.seconds, 1e-3)
    var s: String
    if r.dryRun {  // nothing is sent: what was read, and what would have been sent
        s = "rdbcat: \(r.status.rawValue) (dry run): \(r.keysRead) keys read in \(Int(r.seconds * 1000)) ms, nothing sent (the commands would take \(r.bytesSent / 1024) KiB)"
    } else {
        s = "rdbcat: \(r.status.rawValue): \(r.keysImported) of \(r.keysRead) keys imported"
        let aof = r.files.reduce(0) { $0 + $1.aofApplied }
        if aof > 0 { s += ", \(aof) AOF commands applied" }
        s += " in \(Int(r.seconds * 1000)) ms (\(Int(Double(r.keysImported) / dt)) keys/s, \(r.bytesSent / 1024) KiB sent)"
    }
    let counts = r.problemCounts.filter { $0.value > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
    if !counts.isEmpty { s += "; " + counts.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ") }
    if r.reconnects > 0 { s += "; \(r.reconnects) reconnects" }
    if !r.shards.isEmpty {
        s += "; cluster of \(r.shards.count) masters: " + r.shards.map { sh in
            "\(sh.node) \(sh.keysImported) keys" + (sh.redirects > 0 ? " (\(sh.redirects) redirects)" : "")
        }.joined(separator: ", ")
    }
    if let f = r.failure { s += "\nrdbcat: \(f)" }
    for p in r.problems.prefix(10) where p.kind.isFailure {
        s += "\nrdbcat:   \(p.kind.rawValue) db \(p.db) \(p.keyText): \(p.message)"
    }
    return s + "\n"
}

/// How a task runs and where its report goes: shared by `import` and `migrate`.
struct RunFlags: ParsableArguments {
    @Flag(help: "Decode and count what would be sent; no connection (migrate: after validating the task).")
    var dryRun = false

    @Option(help: ArgumentHelp("Write the JSON report to this file (import: instead of stdout; migrate: as well).", valueName: "FILE"))
    var report: String?

    /// Writes the report file.
    func writeReport(_ json: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var s = json
        s.withUTF8 { b in _ = Glibc.write(fd, b.baseAddress, b.count) }
    }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import RDB/AOF files into a live Redis or Valkey server.",
        discussion: """
            FILE is an RDB (also zstd- or gzip-compressed), an AOF (with or without RDB preamble), a multi-part AOF \
            manifest or an appendonlydir folder, or an s3://bucket/key object (with --obs-endpoint: read as \
            ranged GETs straight into the decoder, resumed after a dropped connection); files are imported in order over one pipelined connection. \
            The password can be in the URL, but --password-env / --password-file keep it out of the process \
            list; it is never printed. A database in the URL (/3) imports every database into that one. \
            After a lost connection the import reconnects and resends every key not fully acknowledged, \
            rewritten whole (nothing doubled, nothing lost). Without --replace, existing keys are left as \
            they are and reported. Into a database that was empty when the import began, keys go without \
            their guard (DEL first, or a temporary name) unless another file or database wrote there \
            first (--guard-every-key when other clients write to the target meanwhile). Prints a JSON report on stdout (or to --report); exit 0 = SUCCESS \
            or LOSSY (every key sent, some without part of their data: the report's status says so and its \
            problems name them), 1 = FAILED (the report names the keys that did not arrive).
            """
    )

    @Argument(help: "Input files.", completion: .file())
    var files: [String]

    @Option(help: ArgumentHelp("The target: redis://[user[:password]@]host:port[/db], rediss:// for TLS.", valueName: "URL"))
    var to: String?

    @OptionGroup var job: RunFlags

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var settings: ImportSettings
    @OptionGroup(title: "Object store (s3://bucket/key inputs)") var objectStore: ObjectStoreFlags

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one file") }
        if to == nil && !job.dryRun { throw ValidationError("give the target with --to URL (or --dry-run)") }
    }

    func run() throws {
        ImportLogging.bootstrap(verbose: settings.verbose)
        var endpoint: RedisEndpoint?
        if let to {
            var e: RedisEndpoint
            do { e = try RedisEndpoint.parse(to) } catch { throw ValidationError("--to: \(error)") }
            try connection.apply(to: &e)
            endpoint = e
        }
        let options = try settings.options(dryRun: job.dryRun, urlDatabase: endpoint?.database)
        let objects = try objectStore.inputs(for: files)
        let importer = Importer(target: endpoint, options: options)
        importer.opener = objects?.opener
        if settings.showProgress { importer.onProgress = { writeStderr(progressLine($0.reading(objects))) } }
        let result = importer.run(files: files)
        let json = result.json { j in
            if let objects { j.field("object_resumes", objects.resumes) }
        } + "\n"
        if let report = job.report {
            try job.writeReport(json, to: report)
        } else {
            writeStdout(json)
        }
        writeStderr(summaryLine(result))
        if result.status == .failed { throw ExitCode(1) }
    }
}
