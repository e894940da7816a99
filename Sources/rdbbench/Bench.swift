#if canImport(Glibc)
import Glibc
#endif

/// What a measurement is compared with: our rows and the other tools' rows of the same group.
enum Group: String {
    case decode, json, resp, restore, floor, `import`
}

/// One measured run.
struct Sample {
    var seconds: Double
    var maxRSSKiB: Int
    var child: ChildResult?
    var note: String?
}

/// One tool in one mode on one file: the thing that gets N runs and a median.
final class Task {
    let tool: String
    let mode: String
    let group: Group
    let ours: Bool
    /// The command as a shell line, for the report.
    let command: String
    let body: (Double) throws -> Sample
    var samples: [Sample] = []
    var failure: String?
    var timedOut = false
    var done = false

    init(tool: String, mode: String, group: Group, ours: Bool, command: String, body: @escaping (Double) throws -> Sample) {
        self.tool = tool
        self.mode = mode
        self.group = group
        self.ours = ours
        self.command = command
        self.body = body
    }

    var total: Double { samples.reduce(0) { $0 + $1.seconds } }
    var median: Double? { medianOf(samples.map(\.seconds)) }
    var peakRSSKiB: Int { samples.map(\.maxRSSKiB).max() ?? 0 }
}

func medianOf(_ xs: [Double]) -> Double? {
    if xs.isEmpty { return nil }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// One input and everything measured on it.
final class FileBench {
    let path: String
    let name: String
    let bytes: Int
    let isAOF: Bool
    /// Keys (RDB) or commands plus preamble keys (AOF), as counted by our decoder.
    var records = 0
    /// Values' elements (strings, list/set/zset members, hash fields, stream fields), as counted by our decoder.
    var elements = 0
    var tasks: [Task] = []
    var notes: [String] = []
    /// Scratch files made for this input (the RESP of `--import`), removed after its rounds.
    var scratch: [String] = []

    init(path: String, dataDir: String) {
        self.path = path
        // Files under the data folder are named relative to it (`redis-6.2/strings.rdb`), others by base name.
        let prefix = dataDir.hasSuffix("/") ? dataDir : dataDir + "/"
        self.name = path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : basename(path)
        self.bytes = inputSize(path)
        self.isAOF = looksLikeAOF(path)
    }
}

/// Tools found on this machine, with their versions.
struct Toolbox {
    var rdbcat: String?
    var redisCheckRDB: String?
    var redisCheckAOF: String?
    var redisCLI: String?
    var importServer: String?
    var rdbtools: String?
    var rdbtoolsVersion: String?
    var rdbPyVersion: String?
    var python: String?
    var notes: [String] = []
    var versions: [(String, String)] = []

    static func discover(_ o: Options) -> Toolbox {
        var t = Toolbox()
        let exe = selfExecutable()
        let candidate = o.rdbcat ?? dirname(exe) + "/rdbcat"
        t.rdbcat = which(candidate) ?? which("rdbcat")
        if t.rdbcat == nil { t.notes.append("rdbcat: not found (build it with `swift build -c release`)") }
        t.redisCheckRDB = which("redis-check-rdb")
        t.redisCheckAOF = which("redis-check-aof")
        t.redisCLI = which("redis-cli")
        t.importServer = which(o.importServer)
        t.python = which("python3")
        if let v = firstLine(capture(["redis-server", "--version"]).output) { t.versions.append(("redis-server / redis-check-rdb / redis-check-aof", v)) }
        if t.redisCheckRDB == nil { t.notes.append("redis-check-rdb: not installed (Debian package redis-tools / redis-server)") }
        if let py = t.python {
            let rt = capture([py, "-c", "import rdbtools, importlib.metadata as m; print(m.version('rdbtools'))"])
            if rt.ok, let rdb = which("rdb") {
                t.rdbtools = rdb
                t.rdbtoolsVersion = firstLine(rt.output)
                let lzf = capture([py, "-c", "import lzf"]).ok
                t.versions.append(("rdbtools (rdb)", (t.rdbtoolsVersion ?? "?") + (lzf ? " with python-lzf" : " (no python-lzf: pure-Python LZF)")))
            } else {
                t.notes.append("rdbtools: not installed (`pip install rdbtools python-lzf`)")
            }
            let rp = capture([py, "-c", "import rdb, importlib.metadata as m; rdb.RdbDecoder; print(m.version('rdb-py'))"])
            if rp.ok {
                t.rdbPyVersion = firstLine(rp.output)
                t.versions.append(("rdb-py (Rust, via Python)", t.rdbPyVersion ?? "?"))
            } else {
                t.notes.append("rdb-py: not installed (`pip install rdb-py`)")
            }
            if let v = firstLine(capture([py, "--version"], stderrToo: true).output) { t.versions.append(("python3", v)) }
        } else {
            t.notes.append("python3: not found (rdbtools and rdb-py need it)")
        }
        return t
    }
}

func firstLine(_ s: String) -> String? {
    let l = s.split(separator: "\n").first.map { String($0).trimmed }
    return (l?.isEmpty ?? true) ? nil : l
}

extension String {
    var trimmed: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s = s.dropLast() }
        return String(s)
    }
}

/// The benchmark run: discovers inputs and tools, plans the tasks, runs the rounds, reports.
struct Bench {
    let o: Options
    let tools: Toolbox
    /// A private copy of this executable for the children, so that rebuilding during a long run does not
    /// change what is measured half-way.
    let selfPath: String = {
        let copy = scratchPath("exe")
        if (try? runProcess(["cp", selfExecutable(), copy]))?.ok == true { return copy }
        return selfExecutable()
    }()
    let stderrPath = scratchPath("stderr")

    init(_ o: Options) {
        self.o = o
        self.tools = o.compare || o.importMode ? Toolbox.discover(o) : Toolbox()
    }

    static func main(_ args: [String]) -> Int32 {
        let o: Options
        do { o = try Options.parse(args) } catch {
            writeStderr("rdbbench: \(error)\n")
            return 64
        }
        installAlarmHandler()
        let bench = Bench(o)
        return bench.run()
    }

    func inputs() -> [String] {
        if !o.files.isEmpty { return o.files }
        let order = ["strings", "small-aggregates", "huge-aggregates", "mixed-ttl-streams", "one-big-value", "aof-plain",
                     "aof-multipart", "aof-multipart-preamble", "aof-rewrite-plain", "aof-rewrite-preamble"]
        var found: [String] = []
        for name in listDirectory(o.dataDir) {
            let p = o.dataDir + "/" + name
            if isDirectory(p) {
                if listDirectory(p).contains(where: { $0.hasSuffix(".manifest") }) { found.append(p) }
            } else if name.hasSuffix(".rdb") || name.hasSuffix(".aof") {
                found.append(p)
            }
        }
        func rank(_ p: String) -> Int {
            let stem = basename(p).split(separator: ".").first.map(String.init) ?? ""
            return order.firstIndex(of: stem) ?? order.count
        }
        return found.sorted { (rank($0), $0) < (rank($1), $1) }
    }

    func run() -> Int32 {
        defer {
            unlink(stderrPath)
            if selfPath != selfExecutable() { unlink(selfPath) }
        }
        let paths = inputs()
        if paths.isEmpty {
            writeStderr("rdbbench: no inputs: give files, or run `python3 scripts/bench/make_datasets.py` to fill \(o.dataDir)/\n")
            return 66
        }
        for n in tools.notes { say("note: \(n)") }
        let started = monotonicNow()
        let loadAtStart = loadAverage()
        var benches: [FileBench] = []
        for p in paths {
            if let limit = o.maxLoad { waitForLoad(below: limit) }
            guard access(p, R_OK) == 0 else {
                writeStderr("rdbbench: cannot read \(p)\n")
                return 66
            }
            let fb = FileBench(path: p, dataDir: o.dataDir)
            plan(fb)
            benches.append(fb)
            say("\(fb.name): \(human(fb.bytes)), \(fb.records) \(fb.isAOF ? "commands + preamble keys" : "keys"); "
                  + "\(fb.tasks.count) tools/modes, up to \(o.runs) alternating rounds")
            runRounds(fb)
            for f in fb.scratch { unlink(f) }
            printFileSummary(fb)
        }
        var report = Report(options: o, tools: tools, benches: benches, seconds: monotonicNow() - started)
        report.loads = (loadAtStart, loadAverage())
        let md = report.markdown()
        say("")
        say(md)
        do {
            mkdirs(o.resultsDir)
            let stamp = report.stamp
            try writeFile("\(o.resultsDir)/bench-\(stamp).md", md)
            try writeFile("\(o.resultsDir)/bench-\(stamp).json", report.json())
            try writeFile("\(o.resultsDir)/latest.md", md)
            try writeFile("\(o.resultsDir)/latest.json", report.json())
            say("wrote \(o.resultsDir)/bench-\(stamp).md and .json")
            if o.writeResults {
                mkdirs(dirname(o.resultsMarkdown))
                try writeFile(o.resultsMarkdown, md)
                say("wrote \(o.resultsMarkdown)")
            }
        } catch {
            writeStderr("rdbbench: \(error)\n")
            return 1
        }
        return 0
    }

    // MARK: planning

    func plan(_ fb: FileBench) {
        let p = fb.path
        let isDir = isDirectory(p)
        // Warm the page cache and count the records (not measured).
        let files = isDir ? listDirectory(p).map { p + "/" + $0 } : [p]
        _ = try? runProcess(["cat"] + files, timeout: o.timeout)
        if let probe = try? childRun(.decode, p, timeout: o.timeout), let r = probe.child {
            fb.records = r.keys + r.commands
            fb.elements = r.elements + r.commands
        } else {
            fb.notes.append("our decoder failed on this input: \(stderrTail())")
        }

        let modes = (o.modes ?? ChildMode.allCases).filter {
            ChildMode.available(isAOF: fb.isAOF, isDirectory: isDir).contains($0)
        }
        for m in modes {
            let group: Group
            switch m {
            case .decode, .decodeStdin: group = .decode
            case .jsonl: group = .json
            case .resp: group = .resp
            case .restore: group = .restore
            }
            fb.tasks.append(Task(tool: "rdbbench", mode: m.rawValue, group: group, ours: true,
                                 command: "rdbbench --child \(m.rawValue) \(m == .decodeStdin ? "- < " : "")\(shellQuote(p))") { t in
                try self.childRun(m, p, timeout: t)
            })
        }
        guard o.compare || o.importMode else { return }
        let cmdPath = isDir ? p : p  // rdbcat and redis-check-aof read an appendonlydir by its folder / manifest
        if o.compare {
            if let rdbcat = tools.rdbcat, !o.skip.contains("rdbcat") {
                for f in ["jsonl", "resp"] {
                    fb.tasks.append(external("rdbcat", "--format \(f)", f == "jsonl" ? .json : .resp, ours: true,
                                             [rdbcat, cmdPath, "--format", f]))
                }
            }
            if !fb.isAOF {
                if let rc = tools.redisCheckRDB, !o.skip.contains("redis-check-rdb") {
                    fb.tasks.append(external("redis-check-rdb", "load (the server's loader)", .decode, ours: false, [rc, p]))
                }
                if let py = tools.python, tools.rdbPyVersion != nil, !o.skip.contains("rdb-py") {
                    let script = "import rdb, sys\nn = 0\nfor _ in rdb.RdbDecoder(sys.argv[1]):\n    n += 1\nprint(n)"
                    fb.tasks.append(external("rdb-py", "decode (iterate items)", .decode, ours: false, [py, "-c", script, p],
                                             display: "python3 -c 'for _ in rdb.RdbDecoder(FILE): n += 1' FILE"))
                }
                if let rdb = tools.rdbtools, !o.skip.contains("rdbtools") {
                    fb.tasks.append(external("rdbtools", "rdb --command json", .json, ours: false, [rdb, "--command", "json", p]))
                    fb.tasks.append(external("rdbtools", "rdb --command protocol", .resp, ours: false, [rdb, "--command", "protocol", p]))
                }
            } else if let ca = tools.redisCheckAOF, !o.skip.contains("redis-check-aof") {
                let target = isDir ? (listDirectory(p).first { $0.hasSuffix(".manifest") }.map { p + "/" + $0 } ?? p) : p
                fb.tasks.append(external("redis-check-aof", "check (the server's AOF loader)", .decode, ours: false, [ca, target]))
            }
            if !o.skip.contains("cat") {
                fb.tasks.append(external("cat", "cat FILE > /dev/null (page-cache floor)", .floor, ours: false, ["cat"] + files))
            }
        }
        if o.importMode { planImport(fb) }
    }

    func external(_ tool: String, _ mode: String, _ group: Group, ours: Bool, _ argv: [String], display: String? = nil) -> Task {
        let shown = display ?? (argv.map { shellQuote($0) }.joined(separator: " ") + " > /dev/null")
        let errPath = stderrPath
        return Task(tool: tool, mode: mode, group: group, ours: ours, command: shown) { timeout in
            let r = try runMeasured(argv, stdout: .devNull, stderr: .write(errPath), timeout: timeout)
            return try Bench.check(r, timeout: timeout, errPath: errPath)
        }
    }

    static func check(_ r: ProcessResult, timeout: Double, errPath: String) throws -> Sample {
        if r.timedOut { throw RunFailure(message: "killed after \(Int(timeout)) s", timedOut: true) }
        if !r.ok {
            throw RunFailure(message: "exit \(r.exitCode): \(lastErrorLine(errPath))", timedOut: false)
        }
        return Sample(seconds: r.seconds, maxRSSKiB: r.maxRSSKiB)
    }

    func childRun(_ mode: ChildMode, _ path: String, timeout: Double) throws -> Sample {
        let outPath = scratchPath("child")
        defer { unlink(outPath) }
        let stdin: Redirect = mode == .decodeStdin ? .read(path) : .devNull
        let r = try runMeasured([selfPath, "--child", mode.rawValue, path], stdin: stdin, stdout: .write(outPath),
                               stderr: .write(stderrPath), timeout: timeout)
        var s = try Bench.check(r, timeout: timeout, errPath: stderrPath)
        s.child = ChildResult(line: readFile(outPath) ?? "")
        return s
    }

    func stderrTail() -> String { lastErrorLine(stderrPath) }

    // MARK: running

    func runRounds(_ fb: FileBench) {
        for round in 0..<o.runs {
            var any = false
            for task in fb.tasks where !task.done {
                any = true
                do {
                    let s = try task.body(o.timeout)
                    task.samples.append(s)
                    if o.verbose {
                        say("  round \(round + 1): \(task.tool) \(task.mode): \(fmtSeconds(s.seconds)), \(s.maxRSSKiB / 1024) MiB"
                              + (s.note.map { " (\($0))" } ?? ""))
                    }
                } catch let f as RunFailure {
                    task.failure = f.message
                    task.timedOut = f.timedOut
                    task.done = true
                    say("  \(task.tool) \(task.mode): \(f.message)")
                } catch {
                    task.failure = "\(error)"
                    task.done = true
                    say("  \(task.tool) \(task.mode): \(error)")
                }
                if task.samples.count >= o.runs || (task.total >= o.budget && !task.samples.isEmpty) { task.done = true }
            }
            if !any { break }
        }
    }

    func printFileSummary(_ fb: FileBench) {
        for t in fb.tasks {
            if let m = t.median {
                say("  \(pad(t.tool, 16)) \(pad(t.mode, 38)) N=\(t.samples.count)  \(pad(fmtSeconds(m), 10)) "
                      + "\(pad(mbps(fb.bytes, m), 12)) peak RSS \(t.peakRSSKiB / 1024) MiB")
            } else {
                say("  \(pad(t.tool, 16)) \(pad(t.mode, 38)) \(t.failure ?? "no runs")")
            }
        }
    }
}

/// The last non-empty line a failed run wrote to standard error, shortened for a table cell.
func lastErrorLine(_ path: String) -> String {
    let lines = (readFile(path) ?? "").split(separator: "\n").map { $0.trimmingSpaces }.filter {
        !$0.isEmpty && !$0.hasPrefix("Command exited with") && !$0.hasPrefix("Command terminated")
    }
    guard let last = lines.last else { return "(no message)" }
    return last.count > 140 ? String(last.prefix(140)) + "…" : String(last)
}

/// The 1-minute load average.
func loadAverage() -> Double {
    var l = [0.0, 0.0, 0.0]
    return getloadavg(&l, 3) > 0 ? l[0] : 0
}

/// Waits (at most 10 minutes) until the 1-minute load average drops to `limit`.
func waitForLoad(below limit: Double) {
    let deadline = monotonicNow() + 600
    var said = false
    while loadAverage() > limit && monotonicNow() < deadline {
        if !said {
            say("waiting for the load average (\(fixed(loadAverage(), 2))) to drop to \(fixed(limit, 2))...")
            said = true
        }
        sleep(5)
    }
}

struct RunFailure: Error {
    var message: String
    var timedOut: Bool
}

// MARK: formatting

func fixed(_ x: Double, _ digits: Int) -> String {
    if !x.isFinite { return "\(x)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let v = (abs(x) * scale).rounded()
    let whole = Int(v / scale)
    let frac = Int(v - Double(whole) * scale)
    let sign = x < 0 && v != 0 ? "-" : ""
    if digits == 0 { return sign + String(whole) }
    var f = String(frac)
    while f.count < digits { f = "0" + f }
    return "\(sign)\(whole).\(f)"
}

func fmtSeconds(_ s: Double) -> String {
    if s >= 100 { return fixed(s, 0) + " s" }
    if s >= 10 { return fixed(s, 1) + " s" }
    if s >= 1 { return fixed(s, 2) + " s" }
    return fixed(s, 3) + " s"
}

func human(_ bytes: Int) -> String {
    let b = Double(bytes)
    if b >= 1e9 { return fixed(b / 1e9, 2) + " GB" }
    if b >= 1e6 { return fixed(b / 1e6, 1) + " MB" }
    if b >= 1e3 { return fixed(b / 1e3, 1) + " KB" }
    return "\(bytes) B"
}

func mbps(_ bytes: Int, _ seconds: Double) -> String {
    let v = Double(bytes) / seconds / 1e6
    return (v >= 100 ? fixed(v, 0) : fixed(v, 1)) + " MB/s"
}

func perSecond(_ n: Int, _ seconds: Double) -> String {
    let v = Double(n) / seconds
    if v >= 1e6 { return fixed(v / 1e6, 2) + " M/s" }
    if v >= 1e3 { return fixed(v / 1e3, 1) + " k/s" }
    return fixed(v, 0) + " /s"
}

func ratio(_ x: Double) -> String {
    x >= 10 ? fixed(x, 0) : (x >= 1 ? fixed(x, 1) : fixed(x, 2))
}

func pad(_ s: String, _ n: Int) -> String {
    s.count >= n ? s : s + String(repeating: " ", count: n - s.count)
}
