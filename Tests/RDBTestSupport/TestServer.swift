import Foundation
import RedisWire
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway `redis-server` / `valkey-server` on 127.0.0.1 for tests: a free port, its own temporary
/// folder, stopped by pid. Unlike the RDBKitTests harness it can be killed (SIGKILL) and restarted on the
/// same port and folder (persistence tests), and it talks to the server through `RedisClient` (no
/// redis-cli needed).
public final class TestServer: @unchecked Sendable {
    public enum Kind: String, CaseIterable, CustomStringConvertible, Sendable {
        case redis62 = "redis-6.2"
        case redis70 = "redis-7.0"
        case valkey81 = "valkey-8.1"

        public var description: String { rawValue }

        public var binaryPath: String {
            switch self {
            case .redis62: return TestServer.repositoryRoot + "/.deps/redis-6.2/redis-server"
            case .valkey81: return TestServer.repositoryRoot + "/.deps/valkey-8.1/valkey-server"
            case .redis70: return TestServer.which("redis-server") ?? "redis-server (on PATH)"
            }
        }

        /// The fixtures this server wrote.
        public var fixtureFolder: String { TestServer.repositoryRoot + "/testdata/servers/" + rawValue }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ d: String) { description = d }
    }

    public let kind: Kind
    public let dir: String
    public let arguments: [String]
    public let password: String?
    public private(set) var port = 0
    /// The server's pid (spawned and reaped here, so stopping does not wait on Foundation's bookkeeping).
    private var pid: pid_t = 0

    /// Starts a server (waiting until it answers PING). `dumpFile` is copied in and loaded at start-up;
    /// `arguments` are extra `--name value` settings (later ones win). `clusterBus` picks a port whose
    /// cluster bus port (+10000) is free too.
    public init(_ kind: Kind, arguments: [String] = [], password: String? = nil, dumpFile: String? = nil, clusterBus: Bool = false) throws {
        self.kind = kind
        self.arguments = arguments
        self.password = password
        signal(SIGPIPE, SIG_IGN)
        guard FileManager.default.isExecutableFile(atPath: kind.binaryPath) else {
            throw Failure("\(kind) server not found at \(kind.binaryPath): run `bash scripts/setup.sh` to install Redis 6.2/7.0 and Valkey 8.1")
        }
        dir = NSTemporaryDirectory() + "rdbimport-\(kind)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if let dumpFile { try FileManager.default.copyItem(atPath: dumpFile, toPath: dir + "/dump.rdb") }
        var lastError = ""
        for _ in 0..<5 {
            port = try clusterBus ? Spawn.freeClusterPort() : TestServer.freePort()
            do {
                try launch()
                return
            } catch {
                lastError = "\(error)"
            }
        }
        throw Failure("\(kind) did not start: \(lastError)")
    }

    deinit { stop() }

    public var endpoint: RedisEndpoint {
        RedisEndpoint(host: "127.0.0.1", port: port, password: password.map { Secret($0) })
    }

    public var url: String { password.map { "redis://:\($0)@127.0.0.1:\(port)" } ?? "redis://127.0.0.1:\(port)" }

    private func launch() throws {
        var args = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
            "--dbfilename", "dump.rdb", "--daemonize", "no", "--logfile", dir + "/server.log",
        ]
        if kind != .redis62 { args += ["--enable-debug-command", "yes"] }
        if let password { args += ["--requirepass", password] }
        args += arguments
        pid = try TestServer.spawn(kind.binaryPath, args)
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if !isRunning { break }
            if let c = try? RedisClient(endpoint, timeoutSeconds: 1), let r = try? c.send(["PING"]) {
                c.close()
                if case .simple("PONG") = r { return }
            }
            usleep(20_000)
        }
        stopProcess(signal: SIGKILL)
        let log = (try? String(contentsOfFile: dir + "/server.log", encoding: .utf8)) ?? "(no log)"
        throw Failure("\(kind) on port \(port) did not answer PING: \(log.suffix(1500))")
    }

    /// Whether the server process is alive (reaps it when it has exited).
    private var isRunning: Bool {
        guard pid > 0 else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            pid = 0
            return false
        }
        return true
    }

    /// Sends `signal`, waits up to 5 s for the exit (then SIGKILL), reaps.
    private func stopProcess(signal sig: Int32) {
        guard pid > 0 else { return }
        kill(pid, sig)
        let deadline = Date().addingTimeInterval(5)
        while isRunning && Date() < deadline { usleep(5_000) }
        if pid > 0 {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            pid = 0
        }
    }

    static func spawn(_ path: String, _ args: [String]) throws -> pid_t {
        try Spawn.start(path, args)
    }

    /// SIGKILL (no shutdown, no save): what a crash looks like to the client.
    public func kill9() {
        stopProcess(signal: SIGKILL)
    }

    /// Starts the server again on the same port and folder (it loads what it persisted).
    public func restart() throws {
        kill9()
        try launch()
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered until `resume()`.
    public func pause() { kill(pid, SIGSTOP) }

    /// Lets a paused server go on (SIGCONT).
    public func resume() { kill(pid, SIGCONT) }

    /// Stops the server (by its pid) and removes its folder.
    public func stop() {
        stopProcess(signal: SIGTERM)
        try? FileManager.default.removeItem(atPath: dir)
    }

    // MARK: talking to it

    public func client() throws -> RedisClient { try RedisClient(endpoint) }

    @discardableResult
    public func command(_ args: String...) throws -> RESPReply {
        let c = try client()
        defer { c.close() }
        return try c.send(args)
    }

    /// `DEBUG DIGEST`.
    public func digest() throws -> String {
        let r = try command("DEBUG", "DIGEST")
        guard let t = r.text else { throw Failure("DEBUG DIGEST answered \(r)") }
        return t
    }

    public func flushAll() throws {
        let r = try command("FLUSHALL")
        guard case .simple("OK") = r else { throw Failure("FLUSHALL answered \(r)") }
    }

    /// Keys per database (from INFO keyspace).
    public func keyspace() throws -> [Int: Int] {
        guard let t = try command("INFO", "keyspace").text else { return [:] }
        return ServerInfo.keyspace(info: t)
    }

    /// SAVE; returns the dump's path.
    public func save() throws -> String {
        let r = try command("SAVE")
        guard case .simple("OK") = r else { throw Failure("SAVE answered \(r)") }
        return dir + "/dump.rdb"
    }

    // MARK: helpers

    public static let repositoryRoot = Spawn.repositoryRoot(of: #filePath)

    public static func which(_ name: String) -> String? { Spawn.which(name) }

    /// A TCP port nobody listens on right now.
    public static func freePort() throws -> Int { try Spawn.freePort() }

    /// Fixture files of a kind with their expected digests: `(path, digest)`. With `aof`, the AOF files
    /// and appendonlydir folders of `aof/`.
    public static func fixtures(_ kind: Kind, aof: Bool = false) throws -> [(String, String)] {
        let folder = aof ? kind.fixtureFolder + "/aof" : kind.fixtureFolder
        let fm = FileManager.default
        var out: [(String, String)] = []
        for name in try fm.contentsOfDirectory(atPath: folder).sorted() where name.hasSuffix(".digest") {
            let base = folder + "/" + String(name.dropLast(".digest".count))
            let digest = try String(contentsOfFile: folder + "/" + name, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let candidates = aof ? [base + ".aof", base] : [base + ".rdb"]
            if let path = candidates.first(where: { fm.fileExists(atPath: $0) }) { out.append((path, digest)) }
        }
        return out
    }

    /// The `rdbcat` executable built next to the test bundle.
    public static func rdbcatPath() throws -> String {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<3 {
            let p = dir.appendingPathComponent("rdbcat").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
            dir.deleteLastPathComponent()
        }
        let p = repositoryRoot + "/.build/debug/rdbcat"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
        throw Failure("rdbcat executable not found next to the tests (\(CommandLine.arguments[0])): run `swift build` first")
    }

    /// Runs a program; returns status, stdout, stderr.
    public static func run(_ path: String, _ args: [String], environment: [String: String] = [:]) throws -> (Int32, String, String) {
        try Spawn.run(path, args, environment: environment)
    }
}
