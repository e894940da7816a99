#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A throwaway S3-compatible server for tests: `moto_server` on 127.0.0.1 on a free port, with signature
/// checking on (`INITIAL_NO_AUTH_ACTION_COUNT=3`: the first three requests create an IAM user with `s3:*` and its
/// access key; every request after them is SigV4-checked and authorised). Files are uploaded with boto3
/// (`moto_bucket.py`). Stopped by pid.
public final class MotoServer: @unchecked Sendable {
    public private(set) var port = 0
    public private(set) var accessKeyID = ""
    public private(set) var secretAccessKey = ""
    var pid: pid_t = 0
    let log: String

    /// `scripts/setup.sh` installs moto (pip `moto[server]`).
    public init() throws {
        guard let moto = Spawn.which("moto_server") else {
            throw Spawn.Failure(description: "moto_server not found on PATH: run `bash scripts/setup.sh` (pip install 'moto[server]')")
        }
        log = NSTemporaryDirectory() + "moto-\(UUID().uuidString).log"
        var lastError = ""
        for _ in 0..<3 {
            port = try Spawn.freePort()
            pid = try Spawn.start("/usr/bin/env", ["INITIAL_NO_AUTH_ACTION_COUNT=3", moto, "-H", "127.0.0.1", "-p", String(port)], stdout: log, stderr: log)
            if waitListening(seconds: 30) {
                let (status, out, err) = try Spawn.run("/usr/bin/env", ["python3", MotoServer.helper, "setup", String(port)])
                let parts = out.split(whereSeparator: \.isWhitespace).map(String.init)
                guard status == 0, parts.count == 2 else {
                    stop()
                    throw Spawn.Failure(description: "moto IAM setup failed (\(status)): \(err.suffix(2000))")
                }
                accessKeyID = parts[0]
                secretAccessKey = parts[1]
                return
            }
            lastError = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(1500)) } ?? "(no log)"
            stop()
        }
        throw Spawn.Failure(description: "moto_server did not start: \(lastError)")
    }

    deinit { stop() }

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// The environment that gives `rdbcat` the access key.
    public var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": accessKeyID, "AWS_SECRET_ACCESS_KEY": secretAccessKey]
    }

    /// Uploads `files` (`(key, local path)`) into `bucket` (created when missing), signed with the access key.
    public func put(bucket: String, _ files: [(String, String)]) throws {
        let specs = files.map { "\($0.0)=\($0.1)" }
        let (status, _, err) = try Spawn.run("/usr/bin/env", ["python3", MotoServer.helper, "put", String(port), accessKeyID, secretAccessKey, bucket] + specs)
        guard status == 0 else { throw Spawn.Failure(description: "upload to moto failed (\(status)): \(err.suffix(2000))") }
    }

    /// Stops the server (by its pid).
    public func stop() {
        guard pid > 0 else { return }
        Spawn.stop(pid)
        pid = 0
        try? FileManager.default.removeItem(atPath: log)
    }

    /// Whether 127.0.0.1:`port` accepts connections within `seconds` (a TCP connect: no request is spent).
    func waitListening(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if Spawn.hasExited(pid) {
                pid = 0
                return false
            }
            if Spawn.canConnect(port) { return true }
            usleep(50_000)
        }
        return false
    }

    /// The boto3 helper next to this file.
    static let helper = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("moto_bucket.py").path
}
