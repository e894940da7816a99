import ArgumentParser
import RDBCatCommand
import RDBImport
import RDBKit
import RDBReplication
import RedisWire
#if canImport(Glibc)
import Glibc
#endif

struct SyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Copy a live Redis/Valkey server into another by acting as its replica: the snapshot, then every write.",
        discussion: """
            Connects to --from as a replica (PSYNC), imports its snapshot into --to as it arrives, then applies \
            the source's writes as they happen (MULTI blocks as a unit, SELECT mapped with --db-map/--db, \
            relative TTLs of Redis 6.2 made absolute on arrival). Prints one JSON status line a second on \
            stdout: {"phase","source_offset","applied_offset","lag_bytes","keys","commands"}. SIGINT/SIGTERM \
            stop it cleanly: what was received is applied, a final JSON report is printed, exit 0. \
            --full-only exits by itself after the snapshot. A lost source connection is continued with PSYNC \
            (no second snapshot while the source's backlog holds the gap; otherwise a full resync after \
            flushing the target databases written so far; the same when the target's connection is lost while \
            stream commands were in flight, which may or may not have run). --checkpoint FILE keeps replid, applied offset and \
            database, so a restarted run continues where it stopped. When the source refuses PSYNC (disabled \
            or renamed), --full-only copies it with SCAN + DUMP/RESTORE, and an incremental sync is refused. \
            Passwords: in the URLs, or --from-password-env / --password-env (never printed). Exit 0 = SUCCESS, \
            1 = FAILED.
            """
    )

    @Option(help: ArgumentHelp("The source: redis://[user[:password]@]host:port (rediss:// for TLS).", valueName: "URL"))
    var from: String

    @Option(help: ArgumentHelp("The target: redis://[user[:password]@]host:port[/db], rediss:// for TLS.", valueName: "URL"))
    var to: String

    @Flag(help: "Copy the snapshot only (REPLCONF rdb-only), then exit.")
    var fullOnly = false

    @Option(help: ArgumentHelp("Keep the replication id, applied offset and database in this file; continue from it when it exists.", valueName: "FILE"))
    var checkpoint: String?

    @Option(help: "Source: ACL user name.")
    var fromUser: String?

    @Option(help: ArgumentHelp("Source: read the password from this environment variable.", valueName: "VAR"))
    var fromPasswordEnv: String?

    @Option(help: ArgumentHelp("Source: read the password from the first line of this file.", valueName: "FILE"))
    var fromPasswordFile: String?

    @Flag(help: "Do not advertise diskless snapshots (capa eof): the source sends $<len> framing.")
    var noDiskless = false

    @Option(help: "MiB of received data held in memory for a target slower than the source; beyond it, a spool file.")
    var spoolMb: Int = 64

    @Option(help: ArgumentHelp("Folder of the spool file (unlinked at once; bounded by the disk).", valueName: "DIR"))
    var spoolDir: String = "/tmp"

    @Option(help: "Seconds between status lines.")
    var statusInterval: Double = 1

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var settings: ImportSettings

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        ImportLogging.bootstrap(verbose: settings.verbose)

        var source: RedisEndpoint
        do { source = try RedisEndpoint.parse(from) } catch { throw ValidationError("--from: \(error)") }
        try applyCredentials(user: fromUser, passwordEnv: fromPasswordEnv, passwordFile: fromPasswordFile, to: &source, flags: "from-")
        var target: RedisEndpoint
        do { target = try RedisEndpoint.parse(to) } catch { throw ValidationError("--to: \(error)") }
        try connection.apply(to: &target)
        guard spoolMb > 0, statusInterval > 0 else { throw ValidationError("--spool-mb and --status-interval must be positive") }

        var options = SyncOptions()
        options.importOptions = try settings.options(dryRun: false, urlDatabase: target.database)
        options.importOptions.replace = true
        options.importOptions.progressInterval = 1
        options.replica.fullOnly = fullOnly
        options.replica.diskless = !noDiskless
        options.replica.spoolMemoryBytes = spoolMb << 20
        options.replica.spoolDirectory = spoolDir
        options.replica.reconnectTimeout = settings.reconnectTimeout
        options.checkpointPath = checkpoint
        options.statusInterval = statusInterval

        let engine = SyncEngine(source: source, target: target, options: options)
        engine.onStatus = { writeStdout($0.json + "\n") }
        engine.onNotice = { writeStderr("rdbcat: \($0)\n") }
        // SIGINT/SIGTERM stop it cleanly (set up before any other thread starts).
        stopOnSignals { engine.stop() }
        let report = engine.run()
        writeStdout(report.json() + "\n")
        var line = "rdbcat: \(report.status.rawValue): \(report.final.keys) keys, \(report.final.commands) commands applied, "
        line += "offset \(report.final.appliedOffset) of \(report.final.sourceOffset) (\(report.method), \(report.fullSyncs) full, \(report.partialSyncs) partial syncs) in \(Int(report.seconds * 1000)) ms"
        if report.spooledBytes > 0 { line += "; \(report.spooledBytes / 1024) KiB went through the spool file (peak \(report.spoolPeakBytes / 1024) KiB)" }
        if let f = report.failure { line += "\nrdbcat: \(f)" }
        writeStderr(line + "\n")
        if report.status == .failed { throw ExitCode(1) }
    }
}

