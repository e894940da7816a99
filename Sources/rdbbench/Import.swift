#if canImport(Glibc)
import Glibc
#endif

/// A throw-away server on 127.0.0.1 and a free port, in its own temporary directory, no persistence.
struct LocalServer {
    let pid: pid_t
    let port: Int
    let dir: String
    let cli: String

    /// `rdb`: a file the server loads at start-up (linked into its directory as its dump file); the wait for
    /// PING covers the load (the server answers LOADING until it is done).
    static func start(binary: String, cli: String, rdb: String? = nil) throws -> LocalServer {
        var template = Array("/tmp/rdbbench-server-XXXXXX".utf8CString)
        guard let d = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SpawnError(description: "mkdtemp failed")
        }
        let dir = String(cString: d)
        let port = try freePort()
        var argv = [binary, "--port", "\(port)", "--bind", "127.0.0.1", "--protected-mode", "no",
                    "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir,
                    "--logfile", dir + "/server.log"]
        if let rdb {
            guard let abs = realpath(rdb, nil) else { throw SpawnError(description: "\(rdb): no such file") }
            defer { free(abs) }
            guard symlink(abs, dir + "/dump.rdb") == 0 else { throw SpawnError(description: "symlink \(rdb) failed") }
            argv += ["--dbfilename", "dump.rdb"]
        }
        let pid = try spawnProcess(argv)
        let srv = LocalServer(pid: pid, port: port, dir: dir, cli: cli)
        let deadline = monotonicNow() + (rdb == nil ? 20 : 600)
        while monotonicNow() < deadline {
            if capture([cli, "-p", "\(port)", "ping"], timeout: 5).output.hasPrefix("PONG") { return srv }
            usleep(20_000)
        }
        srv.stop()
        throw SpawnError(description: "\(binary) did not answer PING on port \(port)")
    }

    /// Keys in all databases (INFO keyspace).
    func keyCount() -> Int {
        var n = 0
        for line in capture([cli, "-p", "\(port)", "info", "keyspace"]).output.split(separator: "\n") {
            guard let r = Substring(line).range(of: "keys=") else { continue }
            n += Int(line[r.upperBound...].prefix { $0.isNumber }) ?? 0
        }
        return n
    }

    /// The load time the server logged ("DB loaded from disk: 1.333 seconds"), if it loaded a file.
    func loggedLoadSeconds() -> Double? {
        guard let log = readFile(dir + "/server.log"), let r = Substring(log).range(of: "DB loaded from disk: ") else { return nil }
        return Double(log[r.upperBound...].prefix { $0.isNumber || $0 == "." })
    }

    /// The server's resident set (INFO memory `used_memory_rss`), in KiB.
    func rssKiB() -> Int {
        let text = capture([cli, "-p", "\(port)", "info", "memory"]).output
        guard let r = Substring(text).range(of: "used_memory_rss:") else { return 0 }
        return (Int(text[r.upperBound...].prefix { $0.isNumber }) ?? 0) / 1024
    }

    func stop() {
        _ = capture([cli, "-p", "\(port)", "shutdown", "nosave"], timeout: 30)
        let r = waitProcess(pid, started: monotonicNow(), timeout: 30)
        if r.timedOut { kill(pid, SIGKILL) }
        _ = try? runProcess(["rm", "-rf", dir])
    }
}

func freePort() throws -> Int {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard s >= 0 else { throw SpawnError(description: "socket failed") }
    defer { close(s) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
            bind(s, sp, len) == 0 && getsockname(s, sp, &len) == 0
        }
    }
    guard ok else { throw SpawnError(description: "bind failed") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

extension Bench {
    /// `--import`: per run a fresh server. Ours is `rdbcat import FILE --to redis://… --replace` (the live
    /// importer, same overwrite semantics as piping commands) and `--restore`; the baseline the speed
    /// issue names is `rdbcat FILE --format resp | redis-cli --pipe`; `redis-cli --pipe < FILE.resp` (the
    /// same commands already on disk: what the server and redis-cli cost without any decoding) is the
    /// floor column of the import rows.
    func planImport(_ fb: FileBench) {
        guard !fb.isAOF else {
            fb.notes.append("--import: only RDB inputs are imported")
            return
        }
        guard let server = tools.importServer, let cli = tools.redisCLI else {
            fb.notes.append("--import: needs \(o.importServer) and redis-cli on PATH")
            return
        }
        guard let rdbcat = tools.rdbcat else {
            fb.notes.append("--import: needs rdbcat")
            return
        }
        let respPath = o.resultsDir + "/tmp/" + fb.name.replacingOccurrences("/", "_") + ".resp"
        mkdirs(dirname(respPath))
        guard let made = try? runProcess([rdbcat, fb.path, "--format", "resp", "--output", respPath],
                                         stderr: .write(stderrPath), timeout: o.timeout), made.ok
        else {
            fb.notes.append("--import: `rdbcat --format resp` failed: \(stderrTail())")
            return
        }
        fb.scratch.append(respPath)
        let expected = fb.records
        for flag in ["--replace", "--restore"] {
            let command = "\(shellQuote(rdbcat)) import \(shellQuote(fb.path)) --to redis://127.0.0.1:PORT \(flag) --report /dev/null"
            fb.tasks.append(Task(tool: "rdbcat import", mode: "import \(flag)", group: .import, ours: true, command: command) { t in
                try self.importRun(server: server, cli: cli, expected: expected, timeout: t, pipeOutput: false) { port in
                    ([rdbcat, "import", fb.path, "--to", "redis://127.0.0.1:\(port)", flag, "--report", "/dev/null"], .devNull)
                }
            })
        }
        // The limit the speed issue names: the same server loading the same RDB at start-up (its own log line;
        // unlike redis-check-rdb, which parses and frees each value, this builds the keyspace).
        fb.tasks.append(Task(tool: Report.serverLoadTool, mode: "load the RDB at start-up (its logged load time)", group: .import,
                             ours: false, command: "\(shellQuote(server)) --dir D --dbfilename FILE") { _ in
            let srv = try LocalServer.start(binary: server, cli: cli, rdb: fb.path)
            defer { srv.stop() }
            guard let seconds = srv.loggedLoadSeconds() else {
                throw RunFailure(message: "the server's log has no \"DB loaded from disk\" line", timedOut: false)
            }
            let keys = srv.keyCount()
            return Sample(seconds: seconds, maxRSSKiB: srv.rssKiB(), child: nil,
                          note: "\(keys) keys loaded" + (keys == expected ? "" : " (the file has \(expected))"))
        })
        let pipeline = "\(shellQuote(rdbcat)) \(shellQuote(fb.path)) --format resp | \(shellQuote(cli)) -p PORT --pipe"
        fb.tasks.append(Task(tool: "rdbcat + redis-cli", mode: "rdbcat --format resp | redis-cli --pipe", group: .import, ours: false,
                             command: pipeline) { t in
            try self.importRun(server: server, cli: cli, expected: expected, timeout: t, pipeOutput: true) { port in
                (["/bin/sh", "-c", pipeline.replacingOccurrences("PORT", "\(port)")], .devNull)
            }
        })
        fb.tasks.append(Task(tool: Report.importFloorTool, mode: "redis-cli --pipe < the same RESP from a file", group: .import, ours: false,
                             command: "\(shellQuote(cli)) -p PORT --pipe < \(shellQuote(respPath))") { t in
            try self.importRun(server: server, cli: cli, expected: expected, timeout: t, pipeOutput: true) { port in
                ([cli, "-p", "\(port)", "--pipe"], .read(respPath))
            }
        })
    }

    /// One import into a fresh server; `pipeOutput`: the command's output is redis-cli --pipe's summary
    /// (its error count must be 0), else only the exit status counts. Either way the key count is noted.
    func importRun(server: String, cli: String, expected: Int, timeout: Double, pipeOutput: Bool,
                   _ command: (Int) -> ([String], Redirect)) throws -> Sample {
        let srv = try LocalServer.start(binary: server, cli: cli)
        defer { srv.stop() }
        let outPath = scratchPath("import")
        defer { unlink(outPath) }
        let (argv, stdin) = command(srv.port)
        let r = try runMeasured(argv, stdin: stdin, stdout: .write(outPath), stderr: .write(stderrPath), timeout: timeout)
        var s = try Bench.check(r, timeout: timeout, errPath: stderrPath)
        let text = readFile(outPath) ?? ""
        var errors = -1
        if let e = Substring(text).range(of: "errors: ") {
            errors = Int(text[e.upperBound...].prefix { $0.isNumber }) ?? -1
        }
        let keys = srv.keyCount()
        if pipeOutput && errors != 0 {
            throw RunFailure(message: "redis-cli --pipe reported errors: \(firstLine(String(text.suffix(300))) ?? "?")", timedOut: false)
        }
        s.note = "\(keys) keys loaded" + (keys == expected ? "" : " (the file has \(expected))")
        return s
    }
}
