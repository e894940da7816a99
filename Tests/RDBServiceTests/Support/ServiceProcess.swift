import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RDBTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `rdbcat serve` started as a process on a free port, driven over HTTP: created, killed (SIGKILL) or
/// stopped (SIGTERM), and started again on the same config.
final class ServiceProcess: @unchecked Sendable {
    /// The key the tests' services seal passwords with.
    static let secretKey = "4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f"

    let dir: String
    let configPath: String
    private(set) var port = 0
    private(set) var pid: pid_t = 0
    private(set) var starts = 0

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// Writes `config` (JSON) into a folder of its own (removed with this object) and starts the service on it.
    init(config: [String: Any]) throws {
        self.dir = NSTemporaryDirectory() + "rdbcat-serve-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: self.dir, withIntermediateDirectories: true)
        configPath = self.dir + "/config.json"
        var c = config
        if c["store"] == nil { c["store"] = "sqlite:" + self.dir + "/tasks.sqlite" }
        if c["state_dir"] == nil { c["state_dir"] = self.dir + "/state" }
        try JSONSerialization.data(withJSONObject: c, options: [.sortedKeys]).write(to: URL(fileURLWithPath: configPath))
        try start()
    }

    deinit {
        if pid > 0 { kill9() }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Starts (again): waits for the "listening on" line and reads the port from it.
    func start() throws {
        setenv("RDBCAT_SECRET_KEY", Self.secretKey, 1)
        starts += 1
        let out = dir + "/stdout.\(starts)"
        pid = try Spawn.start(try TestServer.rdbcatPath(), ["serve", "--listen", "127.0.0.1:0", "--config", configPath],
                              stdout: out, stderr: dir + "/stderr.\(starts)")
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: out, encoding: .utf8), let r = text.range(of: "listening on http://127.0.0.1:") {
                let digits = text[r.upperBound...].prefix(while: \.isNumber)
                if let p = Int(digits), !digits.isEmpty, text[r.upperBound...].dropFirst(digits.count).first == " " {
                    port = p
                    return
                }
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                throw Failure(description: "rdbcat serve exited at start: \(log)")
            }
            usleep(50_000)
        }
        throw Failure(description: "rdbcat serve did not start listening within 60 s: \(log)")
    }

    /// Everything the service wrote to stderr over its starts.
    var log: String {
        (1...max(1, starts)).compactMap { try? String(contentsOfFile: dir + "/stderr.\($0)", encoding: .utf8) }.joined()
    }

    func kill9() {
        guard pid > 0 else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
    }

    /// SIGTERM, and waits for the graceful exit; returns its exit status.
    @discardableResult
    func terminate(seconds: Double = 30) -> Int32 {
        signal(SIGTERM)
        return waitExit(seconds: seconds)
    }

    func signal(_ sig: Int32) {
        if pid > 0 { kill(pid, sig) }
    }

    /// Waits for the service to exit (SIGKILL after `seconds`); its exit status, -1 when it was killed.
    func waitExit(seconds: Double = 30) -> Int32 {
        guard pid > 0 else { return -1 }
        let deadline = Date().addingTimeInterval(seconds)
        var status: Int32 = 0
        while Date() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                return (status >> 8) & 0xff
            }
            usleep(20_000)
        }
        kill9()
        return -1
    }

    // MARK: HTTP

    struct Reply {
        var status: Int
        var body: String
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
    }

    func request(_ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> Reply {
        var r = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        r.method = method
        if let body {
            r.headers.add(name: "Content-Type", value: "application/json")
            r.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(r, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), body: String(buffer: bytes))
    }

    /// `request`, blocking the calling thread on the HTTP client's own event loop instead of awaiting: for steps
    /// that must follow each other within a bound while the test process's cooperative threads may all be busy
    /// (in a full parallel run, other tests' blocking calls held them for two minutes).
    func requestBlocking(_ method: HTTPMethod, _ path: String, body: String? = nil) throws -> Reply {
        var r = try HTTPClient.Request(url: "http://127.0.0.1:\(port)\(path)", method: method)
        if let body {
            r.headers.add(name: "Content-Type", value: "application/json")
            r.body = .string(body)
        }
        let response = try HTTPClient.shared.execute(request: r, deadline: .now() + .seconds(30)).wait()
        return Reply(status: Int(response.status.code), body: response.body.map { String(buffer: $0) } ?? "")
    }

    /// `create`, blocking (see `requestBlocking`).
    func createBlocking(_ project: String, _ body: String) throws -> String {
        try Self.taskID(try requestBlocking(.POST, "/v2/\(project)/migration-task", body: body))
    }

    /// POSTs a task body; returns the task id (the reply must be 200).
    func create(_ project: String, _ body: String) async throws -> String {
        try Self.taskID(try await request(.POST, "/v2/\(project)/migration-task", body: body))
    }

    static func taskID(_ r: Reply) throws -> String {
        guard r.status == 200, let id = r.json["id"] as? String, r.json["status"] as? String == "MIGRATING" else {
            throw Failure(description: "POST answered \(r.status): \(r.body)")
        }
        return id
    }

    func task(_ project: String, _ id: String) async throws -> [String: Any] {
        let r = try await request(.GET, "/v2/\(project)/migration-task/\(id)")
        guard r.status == 200 else { throw Failure(description: "GET answered \(r.status): \(r.body)") }
        return r.json
    }

    /// Polls the task until `done` holds (default: it is no longer MIGRATING).
    func wait(_ project: String, _ id: String, seconds: Double = 120,
              until done: ([String: Any]) -> Bool = { $0["status"] as? String != "MIGRATING" }) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        var last: [String: Any] = [:]
        while Date() < deadline {
            last = try await task(project, id)
            if done(last) { return last }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "task \(id) still not done after \(seconds) s: \(last)")
    }
}

extension Dictionary where Key == String, Value == Any {
    subscript(path path: String) -> Any? {
        var cur: Any? = self
        for part in path.split(separator: ".") { cur = (cur as? [String: Any])?[String(part)] }
        return cur
    }
}
