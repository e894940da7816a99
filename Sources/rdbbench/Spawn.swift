#if canImport(Glibc)
import Glibc
#endif

/// Where a child's standard stream goes.
enum Redirect {
    case inherit
    case devNull
    /// Standard input from this file.
    case read(String)
    /// Standard output / error to this file (created or truncated).
    case write(String)
    /// This process's descriptor (an end of a pipe).
    case descriptor(Int32)
}

/// How one child process ended.
struct ProcessResult {
    /// The exit code, or minus the signal number.
    var exitCode: Int32
    /// Wall-clock seconds from spawn to exit.
    var seconds: Double
    /// Peak resident set of the child and its waited-for descendants (`ru_maxrss`), in KiB.
    var maxRSSKiB: Int
    var timedOut: Bool
    var ok: Bool { exitCode == 0 && !timedOut }
}

struct SpawnError: Error, CustomStringConvertible {
    var description: String
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Makes SIGALRM interrupt `wait4` (no SA_RESTART): that is how a run's timeout fires.
func installAlarmHandler() {
    var sa = sigaction()
    sa.__sigaction_handler.sa_handler = { _ in }
    sigemptyset(&sa.sa_mask)
    sa.sa_flags = 0
    sigaction(SIGALRM, &sa, nil)
}

/// Starts `argv` (looked up on PATH) in its own process group, or in `group`'s. `closing`: descriptors of this
/// process the child must not keep (the other ends of its pipes).
func spawnProcess(_ argv: [String], stdin: Redirect = .devNull, stdout: Redirect = .devNull,
                  stderr: Redirect = .devNull, group: pid_t = 0, closing: [Int32] = []) throws -> pid_t {
    var fa = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&fa)
    defer { posix_spawn_file_actions_destroy(&fa) }
    for (fd, r) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
        switch r {
        case .inherit: break
        case .devNull: posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
        case .read(let p): posix_spawn_file_actions_addopen(&fa, fd, p, O_RDONLY, 0)
        case .write(let p): posix_spawn_file_actions_addopen(&fa, fd, p, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        case .descriptor(let d): posix_spawn_file_actions_adddup2(&fa, d, fd)
        }
    }
    for d in closing { posix_spawn_file_actions_addclose(&fa, d) }
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
    posix_spawnattr_setpgroup(&attr, group)
    let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for p in cargs { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, argv[0], &fa, &attr, cargs, environ)
    if rc != 0 {
        throw SpawnError(description: "cannot start \(argv[0]): \(String(cString: strerror(rc)))")
    }
    return pid
}

/// Waits for `pid`; after `timeout` seconds its whole process group is killed.
func waitProcess(_ pid: pid_t, started: Double, timeout: Double) -> ProcessResult {
    var status: Int32 = 0
    var ru = rusage()
    var timedOut = false
    let remaining = timeout - (monotonicNow() - started)
    alarm(UInt32(max(1, remaining.rounded(.up))))
    while true {
        let r = wait4(pid, &status, 0, &ru)
        if r == pid { break }
        if r < 0 && errno == EINTR {
            if monotonicNow() - started >= timeout - 0.5 {
                kill(-pid, SIGKILL)
                timedOut = true
            } else {
                alarm(1)
            }
            continue
        }
        break
    }
    alarm(0)
    let end = monotonicNow()
    // Anything the group left behind (a pipeline's other half) goes too.
    if timedOut { kill(-pid, SIGKILL) }
    let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -(status & 0x7f)
    return ProcessResult(exitCode: code, seconds: end - started, maxRSSKiB: Int(ru.ru_maxrss), timedOut: timedOut)
}

/// Runs `argv` to completion (or timeout) and measures it.
func runProcess(_ argv: [String], stdin: Redirect = .devNull, stdout: Redirect = .devNull,
                stderr: Redirect = .devNull, timeout: Double = 600) throws -> ProcessResult {
    let t0 = monotonicNow()
    let pid = try spawnProcess(argv, stdin: stdin, stdout: stdout, stderr: stderr)
    return waitProcess(pid, started: t0, timeout: timeout)
}

/// GNU time, when installed: it reports the peak RSS of the measured program alone.
///
/// `ru_maxrss` of a child we spawn ourselves is not enough: Linux keeps the high-water mark of the
/// memory the process had before `exec`, and a spawned child starts out sharing this process's memory
/// (about 10 MiB), so every small tool would read as at least that. GNU time forks from a ~2 MiB image.
let gnuTime: String? = {
    guard let t = which("/usr/bin/time") else { return nil }
    return capture([t, "--version"], stderrToo: true).output.contains("GNU") ? t : nil
}()

/// Runs `argv` like `runProcess`, with the peak RSS taken by GNU time when it is there.
func runMeasured(_ argv: [String], stdin: Redirect = .devNull, stdout: Redirect = .devNull,
                 stderr: Redirect = .devNull, timeout: Double = 600) throws -> ProcessResult {
    guard let t = gnuTime else {
        return try runProcess(argv, stdin: stdin, stdout: stdout, stderr: stderr, timeout: timeout)
    }
    let rssPath = scratchPath("rss")
    defer { unlink(rssPath) }
    var r = try runProcess(underGNUTime(t, argv, rssPath), stdin: stdin, stdout: stdout, stderr: stderr, timeout: timeout)
    if let kib = peakRSSKiB(rssPath) { r.maxRSSKiB = kib }
    return r
}

/// `argv` under GNU time `t`, its peak RSS written to `rssPath` (read back by `peakRSSKiB`).
func underGNUTime(_ t: String, _ argv: [String], _ rssPath: String) -> [String] {
    [t, "-f", "%M", "-o", rssPath, "--"] + argv
}

/// The peak RSS GNU time wrote to `rssPath`: its last line (a line before it may say "Command exited with non-zero
/// status N").
func peakRSSKiB(_ rssPath: String) -> Int? {
    (readFile(rssPath) ?? "").split(separator: "\n").last.flatMap { Int($0.trimmingSpaces) }
}

/// Runs `producer | consumer` as a shell would, without the shell (whose start, ~1.4 ms, is not the pipeline's):
/// `producer`'s standard output is `consumer`'s standard input, through a pipe of the system's default size, both in
/// one process group. The time is from the first spawn until both have exited; the peak RSS is the consumer's
/// (through GNU time when it is there, as `runMeasured`), and so is the standard error (the producer's goes to
/// /dev/null). The exit code is the consumer's, or the producer's when the consumer's is 0.
func runMeasuredPipeline(_ producer: [String], _ consumer: [String], stdout: Redirect = .devNull,
                         stderr: Redirect = .devNull, timeout: Double = 600) throws -> ProcessResult {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))") }
    let (readEnd, writeEnd) = (fds[0], fds[1])
    let rssPath = scratchPath("rss")
    defer { unlink(rssPath) }
    let measured = gnuTime.map { underGNUTime($0, consumer, rssPath) } ?? consumer
    let t0 = monotonicNow()
    let first: pid_t
    do {
        first = try spawnProcess(producer, stdin: .devNull, stdout: .descriptor(writeEnd), stderr: .devNull, closing: [readEnd, writeEnd])
    } catch {
        close(readEnd)
        close(writeEnd)
        throw error
    }
    let second: pid_t
    do {
        second = try spawnProcess(measured, stdin: .descriptor(readEnd), stdout: stdout, stderr: stderr, group: first,
                                  closing: [readEnd, writeEnd])
    } catch {
        close(readEnd)
        close(writeEnd)
        kill(-first, SIGKILL)
        _ = waitProcess(first, started: t0, timeout: timeout)
        throw error
    }
    close(readEnd)
    close(writeEnd)
    var last = waitProcess(second, started: t0, timeout: timeout)
    let other = waitProcess(first, started: t0, timeout: timeout)
    if last.exitCode == 0 && !other.ok { last.exitCode = other.exitCode }
    last.timedOut = last.timedOut || other.timedOut
    last.seconds = max(last.seconds, other.seconds)
    if gnuTime != nil, let kib = peakRSSKiB(rssPath) { last.maxRSSKiB = kib }
    return last
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s = s.dropLast() }
        return s
    }
}

/// Runs `argv` and returns its standard output (and whether it exited 0).
func capture(_ argv: [String], stdin: Redirect = .devNull, stderrToo: Bool = false, timeout: Double = 60)
    -> (ok: Bool, output: String)
{
    let path = scratchPath("capture")
    defer { unlink(path) }
    guard let r = try? runProcess(argv, stdin: stdin, stdout: .write(path),
                                  stderr: stderrToo ? .write(path + ".err") : .devNull, timeout: timeout)
    else { return (false, "") }
    var out = readFile(path) ?? ""
    if stderrToo {
        out += readFile(path + ".err") ?? ""
        unlink(path + ".err")
    }
    return (r.ok, out)
}

// MARK: small file-system helpers (no Foundation: it would add to every child's RSS)

func scratchPath(_ tag: String) -> String {
    "/tmp/rdbbench-\(getpid())-\(tag)"
}

func readFile(_ path: String, limit: Int = 1 << 24) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while bytes.count < limit {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

func writeFile(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    if fd < 0 { throw SpawnError(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var s = text
    try s.withUTF8 { buf in
        var off = 0
        while off < buf.count {
            let n = write(fd, buf.baseAddress! + off, buf.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw SpawnError(description: "write \(path): \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }
}

func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

func isRegularFile(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
}

func fileSize(_ path: String) -> Int {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : 0
}

/// Names in a directory (no . and ..), sorted.
func listDirectory(_ path: String) -> [String] {
    guard let d = opendir(path) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafePointer(to: e.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// Bytes of a file, or of the regular files directly in a directory.
func inputSize(_ path: String) -> Int {
    if isDirectory(path) {
        return listDirectory(path).reduce(0) { $0 + fileSize(path + "/" + $1) }
    }
    return fileSize(path)
}

func mkdirs(_ path: String) {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/") {
        prefix += part
        mkdir(prefix, 0o755)
        prefix += "/"
    }
}

/// The full path of an executable found on PATH, if any.
func which(_ name: String) -> String? {
    if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
    guard let path = getenv("PATH") else { return nil }
    for dir in String(cString: path).split(separator: ":") {
        let candidate = "\(dir)/\(name)"
        if access(candidate, X_OK) == 0 && isRegularFile(candidate) { return candidate }
    }
    return nil
}

/// This executable's path.
func selfExecutable() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    if n > 0 { return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    return CommandLine.arguments[0]
}

func dirname(_ path: String) -> String {
    guard let i = path.lastIndex(of: "/") else { return "." }
    return i == path.startIndex ? "/" : String(path[..<i])
}

func basename(_ path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    guard let i = p.lastIndex(of: "/") else { return String(p) }
    return String(p[p.index(after: i)...])
}

/// Shell-quotes one word (for the pipelines of `--import` and for printing commands).
func shellQuote(_ s: String) -> String {
    if !s.isEmpty && s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+".contains($0) }) { return s }
    return "'" + s.replacingOccurrences("'", "'\\''") + "'"
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: a) {
            out += rest[..<r.lowerBound]
            out += b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    func range(of needle: String) -> Range<Substring.Index>? {
        guard !needle.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(needle) { return i..<index(i, offsetBy: needle.count) }
            i = index(after: i)
        }
        return nil
    }
}
