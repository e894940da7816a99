import ArgumentParser
import RDBCatCommand
import Logging
import Dispatch
import RDBService
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the migration-task API: create, watch, stop and delete tasks that import backup files or copy live instances.",
        discussion: """
            Routes: POST /v2/{project_id}/migration-task (the task body of `rdbcat migrate`), \
            GET|DELETE /v2/{project_id}/migration-task/{task_id}, POST /v2/{project_id}/migration-task/{task_id}/stop, \
            GET /v2/{project_id}/migration-tasks?offset&limit&name, GET /openapi.json, GET /metrics, GET /health. \
            The config (JSON) names the task store ("store": "sqlite:PATH" or "postgres://user:password@host:port/db", \
            shared by several services), the target instances ("instances": {"ID": {"address", "password" or \
            "password_env"}}), the buckets ("buckets": {"NAME": {"path": DIR} or {"endpoint", "region", "path_style"}}; \
            bucket credentials from the environment as for `rdbcat migrate`), "workers" (tasks at once) and \
            "lease_seconds". Passwords of task bodies are kept sealed with the key in RDBCAT_SECRET_KEY (64 hex \
            digits: `openssl rand -hex 32`). Tasks survive a restart: one that was running resumes (an import from \
            its current file, writing with replace semantics; an online migration from its checkpoint). \
            SIGTERM/SIGINT stop gracefully.
            """
    )

    @Option(help: ArgumentHelp("Address to listen on (port 0: any free port, printed at start).", valueName: "HOST:PORT"))
    var listen = "127.0.0.1:8080"

    @Option(help: ArgumentHelp("The service's config file (JSON).", valueName: "FILE"), completion: .file())
    var config: String

    @Flag(help: "Log at debug level.")
    var verbose = false

    // A synchronous command (rdbcat's others block SIGINT/SIGTERM on their main thread before any other thread
    // starts, which an async entry point would not allow): the service runs in a task, this thread waits.
    func run() throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen: expected HOST:PORT, not '\(listen)'")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let cfg: ServiceConfig
        do { cfg = try ServiceConfig.load(config) } catch { throw ValidationError("\(error)") }
        let verbose = verbose
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = verbose ? .debug : .info
            return h
        }
        var logger = Logger(label: "rdbcat.serve")
        logger.logLevel = verbose ? .debug : .info
        let store = cfg.store
        let workers = cfg.workerCount
        let shown = host
        let result = Mutex<(any Error)??>(nil)
        let finished = DispatchSemaphore(value: 0)
        Task { [logger] in
            do {
                try await MigrationService.run(config: cfg, host: shown, port: port, logger: logger) { bound in
                    writeStdout("rdbcat serve: listening on http://\(shown):\(bound) (store \(redactedURL(store)), \(workers) worker\(workers == 1 ? "" : "s"))\n")
                }
                result.withLock { $0 = .some(nil) }
            } catch {
                result.withLock { $0 = .some(error) }
            }
            finished.signal()
        }
        finished.wait()
        if case let error?? = result.withLock({ $0 }) {
            writeStderr("rdbcat serve: \(error)\n")
            throw ExitCode(1)
        }
    }
}

/// A store URL with its password replaced (`postgres://user:***@host/db`).
func redactedURL(_ url: String) -> String {
    guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
    let userinfo = url[scheme.upperBound..<at]
    guard let colon = userinfo.firstIndex(of: ":") else { return url }
    return String(url[..<userinfo.index(after: colon)]) + "***" + String(url[at...])
}
