import ArgumentParser
import RDBCatCommand
import RDBImport
import RDBMigration
import RDBReplication
import RedisWire
#if canImport(Glibc)
import Glibc
#endif

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Run a migration task (the cloud API's create-migration-task body): import backup files, or copy a live instance, into an instance.",
        discussion: """
            TASK.json is the request body: {"task_name", "migration_type": "backupfile_import", \
            "migration_method": "full_amount_migration", "backup_files": {"bucket_name", "files": \
            [{"file_name", "size", "update_at"}]}, "target_instance": {"id", "name", "password"}}. The bucket \
            is the folder --bucket-root/bucket_name, or bucket_name on the S3-compatible service at --obs-endpoint \
            (each file is checked first: it exists, has the declared size, and holds an RDB or AOF this tool \
            reads; any problem fails the task before a key is written); the instance is reached at --target. An invalid body is \
            rejected before anything is written (exit 2, the error with the field named on stdout). While it \
            runs, stdout gets {"id","name","status"} lines: MIGRATING, then SUCCESS or FAILED, then the JSON \
            report (per-file keys, bytes, errors and time). Exit 0 = SUCCESS, 1 = FAILED. \
            An online_migration task ({"migration_type": "online_migration", "source_instance": {"addrs": \
            "host:port", "password"}}) copies the source as its replica (see `rdbcat sync`): \
            full_amount_migration copies its snapshot, incremental_migration then applies its writes until \
            SIGINT/SIGTERM (the cut-over: SUCCESS once what was received is applied); --bucket-root is not used.
            """
    )

    @Argument(help: "The task body (JSON file, - for stdin).", completion: .file())
    var task: String

    @Option(help: ArgumentHelp("Folder holding one folder per bucket (backupfile_import tasks; or read the bucket from --obs-endpoint).", valueName: "DIR"))
    var bucketRoot: String?

    @Option(help: ArgumentHelp("online_migration: keep the replication checkpoint in this file (see `rdbcat sync --checkpoint`).", valueName: "FILE"))
    var checkpoint: String?

    @Option(help: ArgumentHelp("Address of the target instance: host:port or a redis:// URL.", valueName: "HOST:PORT"))
    var target: String

    @OptionGroup var job: RunFlags

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var settings: ImportSettings
    @OptionGroup(title: "Object store (the task's bucket)") var objectStore: ObjectStoreFlags

    func validate() throws {
        if bucketRoot != nil && objectStore.obsEndpoint != nil {
            throw ValidationError("give the bucket's place once: --bucket-root DIR (a folder per bucket) or --obs-endpoint URL (an S3-compatible service)")
        }
    }

    func run() throws {
        ImportLogging.bootstrap(verbose: settings.verbose)
        let body: [UInt8]
        do {
            body = try readAll(task)
        } catch {
            throw ValidationError("cannot read the task: \(error)")
        }
        let parsed: MigrationTask
        let runner: MigrationRunner
        do {
            let request = try MigrationTaskRequest.decodeStructure(body)
            if request.migrationType == .onlineMigration { return try runOnline(request) }
            guard bucketRoot != nil || objectStore.obsEndpoint != nil else {
                throw MigrationTaskError(field: "backup_files", message: "a backupfile_import task needs the bucket's place: --bucket-root DIR (a folder per bucket) or --obs-endpoint URL (an S3-compatible service)")
            }
            parsed = try MigrationTask(request)
            var endpoint: RedisEndpoint
            do { endpoint = try RedisEndpoint.parse(target) } catch { throw ValidationError("--target: \(error)") }
            try connection.apply(to: &endpoint)
            let options = try settings.options(dryRun: job.dryRun, urlDatabase: endpoint.database)
            if let bucketRoot {
                runner = try MigrationRunner(task: parsed, bucketRoot: bucketRoot, target: endpoint, options: options)
            } else {
                // Every file is checked in the bucket (HEAD, size, header) before anything is written.
                runner = MigrationRunner(task: parsed, objects: try objectStore.inputs()!, target: endpoint, options: options)
            }
        } catch let e as MigrationTaskError {
            writeStdout(e.json + "\n")
            writeStderr("rdbcat: invalid task: \(e)\n")
            throw ExitCode(2)
        }
        runner.onState = { writeStdout($0 + "\n") }
        let objects = runner.objects
        if settings.showProgress { runner.onProgress = { writeStderr(progressLine($0.reading(objects))) } }
        let (result, json) = runner.run()
        writeStdout(json + "\n")
        if let report = job.report { try? job.writeReport(json + "\n", to: report) }
        writeStderr(summaryLine(result))
        if result.status == .failed { throw ExitCode(1) }
    }

    /// An `online_migration` task: the sync engine, stopped by SIGINT/SIGTERM when incremental.
    func runOnline(_ request: MigrationTaskRequest) throws {
        var endpoint: RedisEndpoint
        do { endpoint = try RedisEndpoint.parse(target) } catch { throw ValidationError("--target: \(error)") }
        try connection.apply(to: &endpoint)
        var options = SyncOptions()
        options.importOptions = try settings.options(dryRun: false, urlDatabase: endpoint.database)
        options.importOptions.replace = true
        options.checkpointPath = checkpoint
        options.replica.reconnectTimeout = settings.reconnectTimeout
        let runner: OnlineMigrationRunner
        do {
            runner = try OnlineMigrationRunner(request: request, target: endpoint, options: options)
        } catch {
            writeStdout(error.json + "\n")
            writeStderr("rdbcat: invalid task: \(error)\n")
            throw ExitCode(2)
        }
        if job.dryRun {
            writeStdout(runner.stateLine(.migrating) + "\n")
            writeStderr("rdbcat: the task is valid (dry run: nothing copied)\n")
            return
        }
        runner.onState = { writeStdout($0 + "\n") }
        if settings.showProgress { runner.engine.onStatus = { writeStderr($0.json + "\n") } }
        runner.engine.onNotice = { writeStderr("rdbcat: \($0)\n") }
        stopOnSignals { runner.stop() }
        let (result, json) = runner.run()
        writeStdout(json + "\n")
        if let report = job.report { try? job.writeReport(json + "\n", to: report) }
        writeStderr("rdbcat: \(result.status == .failed ? "FAILED" : "SUCCESS"): \(result.final.keys) keys, \(result.final.commands) commands applied (\(result.method))\n")
        if let f = result.failure { writeStderr("rdbcat: \(f)\n") }
        if result.status == .failed { throw ExitCode(1) }
    }

    struct ReadError: Error, CustomStringConvertible {
        let description: String
    }

    func readAll(_ path: String) throws -> [UInt8] {
        let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReadError(description: "\(path): \(String(cString: strerror(errno)))") }
        defer { if fd != 0 { close(fd) } }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buf, buf.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw ReadError(description: "\(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
            if out.count > 16 << 20 { throw ReadError(description: "\(path): larger than 16 MiB") }
        }
        return out
    }
}
