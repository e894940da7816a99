#if canImport(Glibc)
import Glibc
#endif

/// Process start-up shared by the test targets' server harnesses and CLI runners.
public enum Spawn {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `path` with its standard streams on the given files (outputs created or truncated) and
    /// returns its pid. The child gets an empty signal mask and default handlers for SIGTERM, SIGINT and
    /// SIGPIPE whatever the test thread blocks, so a server stops at once on SIGTERM; and no other descriptor
    /// of this process (`closeInherited`).
    public static func start(_ path: String, _ args: [String], stdin: String = "/dev/null",
                             stdout: String = "/dev/null", stderr: String = "/dev/null") throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        closeInherited(&actions)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, argv, environ)
        guard rc == 0 else { throw Failure(description: "cannot start \(path): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Makes the child close every descriptor from 3 up. Without it a server started here kept whatever the test
    /// process had open at that moment: the pipes of programs other tests were running (`Spawn.run`), and the
    /// socket by which Foundation's `Process` learns that its child has ended, which closes only when every copy
    /// does. A `Spawn.run` of initdb then never saw it end while two `rdbcat serve` started at the same moment
    /// lived, and those waited on the test that waited on initdb (CI hung). glibc 2.34's
    /// `posix_spawn_file_actions_addclosefrom_np`, which the Glibc module does not export, found by name; else
    /// each descriptor open now is closed.
    static func closeInherited(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np"),
           unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3) == 0 {
            return
        }
        guard let dir = opendir("/proc/self/fd") else { return }
        defer { closedir(dir) }
        let own = dirfd(dir)
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if let fd = Int32(name), fd > 2, fd != own { posix_spawn_file_actions_addclose(&actions, fd) }
        }
    }
}

extension Spawn {
    /// Whether the child `pid` has exited (it is reaped then).
    public static func hasExited(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid
    }

    /// Stops the child `pid`: sends `signal`, waits up to `seconds` for it to exit, then SIGKILL; reaps it.
    public static func stop(_ pid: pid_t, signal sig: Int32 = SIGTERM, seconds: Double = 2) {
        guard pid > 0 else { return }
        kill(pid, sig)
        for _ in 0..<max(1, Int(seconds * 100)) {
            if hasExited(pid) { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    /// The first executable named `name` on PATH.
    public static func which(_ name: String) -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for d in path.split(separator: ":") {
            let p = "\(d)/\(name)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    /// A TCP port on 127.0.0.1 nobody listens on right now (bound to port 0, then released).
    public static func freePort() throws -> Int {
        guard let p = bindable(0) else { throw Failure(description: "cannot bind a free port") }
        return p
    }

    /// A free port whose cluster bus port (+10000) is free too: at most 55535, as cluster mode requires.
    public static func freeClusterPort() throws -> Int {
        for _ in 0..<200 {
            let p = try freePort()
            if p <= 55535, bindable(p + 10000) != nil { return p }
        }
        throw Failure(description: "no free port pair (p, p+10000) for a cluster node")
    }

    /// Binds 127.0.0.1:`port` (0 = any) and releases it; the port bound, nil when it is taken.
    static func bindable(_ port: Int) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var addr = loopback(port)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp -> Bool in
                bind(fd, sp, len) == 0 && getsockname(fd, sp, &len) == 0
            }
        }
        return ok ? Int(UInt16(bigEndian: addr.sin_port)) : nil
    }
}
