import Foundation
import RDBTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway `redis-server` / `valkey-server` for tests: started on 127.0.0.1 with a free port in a
/// temporary directory, without persistence, optionally loading a dump file; stopped by pid on `stop()`
/// or when released. Talks to it through `redis-cli` (apt's, which works against every kind).
final class RedisServer {
    enum Kind: String, CaseIterable, CustomStringConvertible, Sendable {
        case redis62 = "redis-6.2"
        case redis70 = "redis-7.0"
        case valkey81 = "valkey-8.1"

        var description: String { rawValue }

        /// The RDB version this server writes (and the newest it reads).
        var rdbVersion: Int {
            switch self {
            case .redis62: 9
            case .redis70: 10
            case .valkey81: 11
            }
        }

        /// Where the binary is: `.deps/` of the repository, or the PATH for Redis 7.0.
        var binaryPath: String? {
            switch self {
            case .redis62: return RedisServer.depsPath("redis-6.2/redis-server")
            case .valkey81: return RedisServer.depsPath("valkey-8.1/valkey-server")
            case .redis70: return RedisServer.which("redis-server")
            }
        }

        var hasDebugCommandSetting: Bool { self != .redis62 }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    let kind: Kind
    let port: Int
    let dir: URL
    private var pid: pid_t = 0
    static let cli = "/usr/bin/redis-cli"
    /// A pipe to a child that exited must give EPIPE, not kill the test process.
    static let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

    /// Starts a server and waits until it answers PING. `dumpFile` is copied into the server's directory
    /// and loaded at start-up.
    init(kind: Kind, dumpFile: URL? = nil, extraArguments: [String] = []) throws {
        self.kind = kind
        RedisServer.ignoreSIGPIPE
        guard let binary = kind.binaryPath, FileManager.default.isExecutableFile(atPath: binary) else {
            throw Failure("\(kind) server binary not found (expected \(kind.binaryPath ?? "redis-server on PATH")); install it to run the server tests")
        }
        guard FileManager.default.isExecutableFile(atPath: RedisServer.cli) else {
            throw Failure("\(RedisServer.cli) not found; install redis-tools to run the server tests")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("rdbkit-\(kind)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        if let dumpFile {
            try FileManager.default.copyItem(at: dumpFile, to: dir.appendingPathComponent("dump.rdb"))
        }
        var lastError = ""
        for _ in 0..<5 {
            let port = try RedisServer.freePort()
            var args = [
                "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", dir.path, "--dbfilename", "dump.rdb", "--daemonize", "no",
                "--logfile", dir.appendingPathComponent("server.log").path,
            ]
            if kind.hasDebugCommandSetting { args += ["--enable-debug-command", "yes"] }
            args += extraArguments
            let pid = try RedisServer.spawn(binary, args)
            if RedisServer.waitForPing(port: port, pid: pid) {
                self.port = port
                self.pid = pid
                return
            }
            RedisServer.terminate(pid)
            lastError = (try? String(contentsOf: dir.appendingPathComponent("server.log"), encoding: .utf8)) ?? "(no log)"
        }
        try? FileManager.default.removeItem(at: dir)
        throw Failure("\(kind) did not start: \(lastError.suffix(2000))")
    }

    deinit { stop() }

    /// Stops the server (by its pid) and removes its directory.
    func stop() {
        guard pid > 0 else { return }
        RedisServer.terminate(pid)
        pid = 0
        try? FileManager.default.removeItem(at: dir)
    }

    /// SIGTERM, then SIGKILL after 5 s; reaps the child.
    static func terminate(_ pid: pid_t) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<500 {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno != EINTR) { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    /// Whether the child is still running (reaps it if it exited).
    static func isRunning(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    // MARK: talking to it

    /// Runs `redis-cli -p PORT args...` and returns its standard output.
    @discardableResult
    func cli(_ args: [String], input: Data? = nil) throws -> String {
        let (status, out, err) = try RedisServer.run(RedisServer.cli, ["-h", "127.0.0.1", "-p", String(port)] + args, input: input)
        guard status == 0 else { throw Failure("redis-cli \(args.joined(separator: " ")) exited \(status): \(err)\(out)") }
        return out
    }

    /// `DEBUG DIGEST`: 40 hex digits covering every key, value and expiry.
    func digest() throws -> String {
        try cli(["DEBUG", "DIGEST"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// FLUSHALL, and FUNCTION FLUSH where functions exist (7.0+): an empty server again.
    func flushAll() throws {
        let r = try cli(["FLUSHALL"]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard r == "OK" else { throw Failure("FLUSHALL answered \(r)") }
        if kind != .redis62 {
            let f = try cli(["FUNCTION", "FLUSH"]).trimmingCharacters(in: .whitespacesAndNewlines)
            guard f == "OK" else { throw Failure("FUNCTION FLUSH answered \(f)") }
        }
    }

    /// Result of `redis-cli --pipe`.
    struct PipeResult {
        var replies: Int
        var errors: Int
        var output: String
    }

    /// Sends RESP bytes through `redis-cli --pipe` and returns the reply and error counts it reports
    /// (error replies are in `output`).
    func pipe(_ bytes: [UInt8]) throws -> PipeResult {
        let (_, out, err) = try RedisServer.run(
            RedisServer.cli, ["-h", "127.0.0.1", "-p", String(port), "--pipe"], input: Data(bytes))
        let text = out + err
        guard let r = text.range(of: #"errors: (\d+), replies: (\d+)"#, options: .regularExpression) else {
            throw Failure("redis-cli --pipe gave no summary: \(text.suffix(2000))")
        }
        let nums = text[r].split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        return PipeResult(replies: nums[1], errors: nums[0], output: text)
    }

    /// Replaces the data set with the RDB file's content, loaded by the server itself (copied over its
    /// dump file, then `DEBUG RELOAD NOSAVE`: loaded as at start-up, expired keys dropped).
    func loadDirectly(_ file: URL) throws {
        let dump = dir.appendingPathComponent("dump.rdb")
        try? FileManager.default.removeItem(at: dump)
        try FileManager.default.copyItem(at: file, to: dump)
        let r = try cli(["DEBUG", "RELOAD", "NOSAVE"]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard r == "OK" else { throw Failure("DEBUG RELOAD NOSAVE of \(file.lastPathComponent) answered \(r)") }
    }

    /// SAVE, then the bytes of the dump the server wrote.
    func save() throws -> [UInt8] {
        try cli(["SAVE"])
        return [UInt8](try Data(contentsOf: dir.appendingPathComponent("dump.rdb")))
    }

    // MARK: helpers

    static let repositoryRoot: URL = {
        var u = URL(fileURLWithPath: #filePath)
        while u.path != "/" {
            u.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: u.appendingPathComponent("Package.swift").path) { return u }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    static func depsPath(_ relative: String) -> String {
        repositoryRoot.appendingPathComponent(".deps").appendingPathComponent(relative).path
    }

    static func which(_ name: String) -> String? { Spawn.which(name) }

    /// A TCP port nobody listens on right now.
    static func freePort() throws -> Int { try Spawn.freePort() }

    static func waitForPing(port: Int, pid: pid_t, timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !isRunning(pid) { return false }
            if let (status, out, _) = try? run(cli, ["-h", "127.0.0.1", "-p", String(port), "PING"], input: nil),
                status == 0, out.hasPrefix("PONG")
            {
                return true
            }
            usleep(20_000)
        }
        return false
    }

    /// Starts a program with its standard streams on /dev/null; returns its pid.
    static func spawn(_ path: String, _ args: [String]) throws -> pid_t {
        try Spawn.start(path, args)
    }

    /// Runs a program to completion, feeding `input` on stdin; returns status, stdout, stderr.
    /// (posix_spawn with files for the standard streams: Foundation's Process polls for the child's exit,
    /// which costs tens of milliseconds per call.)
    static func run(_ path: String, _ args: [String], input: Data?) throws -> (Int32, String, String) {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("rdbkit-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let inPath = tmp.appendingPathComponent("in").path
        let outPath = tmp.appendingPathComponent("out").path
        let errPath = tmp.appendingPathComponent("err").path
        try (input ?? Data()).write(to: URL(fileURLWithPath: inPath))
        let pid = try Spawn.start(path, args, stdin: inPath, stdout: outPath, stderr: errPath)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7F == 0
        let code = exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        let out = (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data()
        let err = (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data()
        return (code, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }
}
