#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A throwaway PostgreSQL 15 server for tests (Debian's `postgresql` package, installed by
/// `scripts/setup.sh`): a fresh cluster in a temporary folder owned by user `postgres` (PostgreSQL refuses to
/// run as root), `trust` authentication for the superuser `rdbcat` (any password is accepted), listening on
/// 127.0.0.1 on a free port, durability off (tests need speed, not crash safety). Each test takes a fresh
/// database (`createDatabase()`). Stopped by pid (`stop()`); `shared()` is one server per test process,
/// stopped by a watchdog when the process ends.
public final class PostgresServer: @unchecked Sendable {
    public static let binaries = "/usr/lib/postgresql/15/bin"
    /// The superuser `initdb` made.
    public let user = "rdbcat"
    public private(set) var port = 0
    /// The cluster's folder: `data/`, the Unix socket, `server.log`.
    public let dir: String
    private var pid: pid_t = 0
    private var watchdog: pid_t = 0

    /// Makes and starts a cluster; waits until it accepts connections. `stopWithProcess`: a watchdog stops it
    /// and removes its folder when this process ends (however it ends).
    public init(stopWithProcess: Bool = false) throws {
        let postgres = Self.binaries + "/postgres"
        guard FileManager.default.isExecutableFile(atPath: postgres) else {
            throw Spawn.Failure(description: "PostgreSQL 15 not found at \(postgres): run `bash scripts/setup.sh` (apt postgresql)")
        }
        guard let account = getpwnam("postgres") else {
            throw Spawn.Failure(description: "no user `postgres` (the postgresql package makes it): run `bash scripts/setup.sh`")
        }
        var template = Array("/tmp/rdbcat-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Spawn.Failure(description: "cannot make a folder in /tmp for PostgreSQL") }
        dir = String(cString: made)
        guard chown(dir, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
            throw Spawn.Failure(description: "cannot give \(dir) to user postgres: \(String(cString: strerror(errno)))")
        }
        let (status, out, err) = try Spawn.run("/usr/sbin/runuser", [
            "-u", "postgres", "--", Self.binaries + "/initdb", "-D", dir + "/data", "-A", "trust", "-U", user,
            "-E", "UTF8", "--locale=C", "--no-sync",
        ])
        guard status == 0 else {
            try? FileManager.default.removeItem(atPath: dir)
            throw Spawn.Failure(description: "initdb failed (\(status)): \((out + err).suffix(2000))")
        }
        var lastError = ""
        for _ in 0..<3 {
            port = try Spawn.freePort()
            do {
                try launch()
                if stopWithProcess { try startWatchdog() }
                return
            } catch {
                lastError = "\(error)"
            }
        }
        try? FileManager.default.removeItem(atPath: dir)
        throw Spawn.Failure(description: "PostgreSQL did not start: \(lastError)")
    }

    deinit { stop() }

    private static let sharedServer = Result { try PostgresServer(stopWithProcess: true) }

    /// One server for the whole test process, started on first use. A server that cannot start is an error
    /// for every test that asks (they fail, they are not skipped).
    public static func shared() throws -> PostgresServer { try sharedServer.get() }

    /// The URL of `database` (`password` goes into the URL; the server accepts any).
    public func url(database: String, password: String? = nil) -> String {
        "postgres://\(user)\(password.map { ":\($0)" } ?? "")@127.0.0.1:\(port)/\(database)"
    }

    /// Creates an empty database (a fresh name when none is given) and returns its name.
    @discardableResult
    public func createDatabase(_ name: String = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()) throws -> String {
        try psql("postgres", "CREATE DATABASE \"\(name)\"")
        return name
    }

    /// Runs SQL in `database` with psql; returns its unaligned output (no headers).
    @discardableResult
    public func psql(_ database: String, _ sql: String) throws -> String {
        let (status, out, err) = try Spawn.run(Self.binaries + "/psql", [
            "-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-q",
            "-A", "-t", "-c", sql,
        ])
        guard status == 0 else { throw Spawn.Failure(description: "psql \(database) failed (\(status)): \(err.suffix(2000))") }
        return out
    }

    private func launch() throws {
        let log = dir + "/server.log"
        pid = try Spawn.start("/usr/bin/setpriv", [
            "--reuid=postgres", "--regid=postgres", "--init-groups", "--", Self.binaries + "/postgres",
            "-D", dir + "/data", "-k", dir, "-p", String(port), "-c", "listen_addresses=127.0.0.1",
            "-c", "max_connections=300", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ], stdout: log, stderr: log)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if Spawn.hasExited(pid) {
                pid = 0
                break
            }
            let (ready, _, _) = try Spawn.run(Self.binaries + "/pg_isready", ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", "postgres", "-t", "1"])
            if ready == 0 { return }
            usleep(100_000)
        }
        stopServer()
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? "(no log)"
        throw Spawn.Failure(description: "PostgreSQL on port \(port) did not accept connections: \(text.suffix(1500))")
    }

    /// A shell that waits for this process to end, then stops the server (SIGINT: fast shutdown) and removes
    /// its folder.
    private func startWatchdog() throws {
        let script = """
            while kill -0 "$0" 2>/dev/null; do sleep 1; done
            kill -INT "$1" 2>/dev/null
            for i in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$1" 2>/dev/null
            rm -rf "$2"
            """
        watchdog = try Spawn.start("/bin/sh", ["-c", script, String(getpid()), String(pid), dir])
    }

    /// Stops the server (by its pid, SIGINT then SIGKILL after 10 s) and the watchdog, and removes the folder.
    public func stop() {
        Spawn.stop(watchdog, signal: SIGKILL)
        watchdog = 0
        stopServer()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// SIGINT: PostgreSQL's fast shutdown (ends sessions, no waiting for clients).
    private func stopServer() {
        Spawn.stop(pid, signal: SIGINT, seconds: 10)
        pid = 0
    }
}
