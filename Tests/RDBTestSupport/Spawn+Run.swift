#if canImport(Glibc)
import Glibc
#endif
import Foundation

extension Spawn {
    /// Runs a program to its end (killed after `seconds`, which throws: a hang fails the test that ran it
    /// instead of holding the whole run); returns its exit status, stdout and stderr. `environment` is added to
    /// this process's.
    public static func run(_ path: String, _ args: [String], environment: [String: String] = [:],
                           seconds: Double = 600) throws -> (Int32, String, String) {
        let (p, out, err) = try launch(path, args, environment: environment)
        return try collect(p, out, err, seconds: seconds)
    }

    /// Starts a program with its standard output and error on pipes (standard input empty); `environment` is
    /// added to this process's.
    public static func launch(_ path: String, _ args: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let outPipe = Pipe()
        let errPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return (p, outPipe, errPipe)
    }

    /// Waits for a program started by `launch` (killed after `seconds`, which throws); returns its exit status,
    /// stdout and stderr.
    ///
    /// The output is read until end of file, but not forever once the program has exited: a child that another
    /// test started at the same moment (a server) may have inherited the write ends of these pipes and keeps
    /// them open. After a short grace period the output read so far is returned (the readers that wait for
    /// that child are left behind). The readers are threads of their own, not work items of a global dispatch
    /// queue: the readers left behind block for good, and once they held all its threads, new readers did not
    /// start within the grace period and a program's whole output was lost (a status 0 with empty stdout).
    public static func collect(_ p: Process, _ out: Pipe, _ err: Pipe, seconds: Double = .infinity) throws -> (Int32, String, String) {
        let outData = Collected()
        let errData = Collected()
        let done = DispatchGroup()
        for (pipe, data) in [(out, outData), (err, errData)] {
            done.enter()
            Thread.detachNewThread {
                let h = pipe.fileHandleForReading
                while true {
                    let chunk = h.availableData
                    if chunk.isEmpty { break }
                    data.append(chunk)
                }
                done.leave()
            }
        }
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            struct Timeout: Error, CustomStringConvertible { let description: String }
            throw Timeout(description: "\(p.executableURL?.lastPathComponent ?? "the program") did not exit within \(seconds) s")
        }
        _ = done.wait(timeout: .now() + 5)
        return (p.terminationStatus, outData.text, errData.text)
    }

    /// Bytes appended by a reader thread and read by another.
    final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func append(_ d: Data) { lock.withLock { data.append(d) } }
        var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
    }

    /// The repository holding `file` (the nearest folder above it with a Package.swift); pass `#filePath`.
    public static func repositoryRoot(of file: String) -> String {
        var u = URL(fileURLWithPath: file)
        while u.path != "/" {
            u.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: u.appendingPathComponent("Package.swift").path) { return u.path }
        }
        return FileManager.default.currentDirectoryPath
    }

    /// 127.0.0.1:`port` as a socket address.
    public static func loopback(_ port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return addr
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` (connects and closes: no request is sent).
    public static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = loopback(port)
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
