#if canImport(Glibc)
import Glibc
#endif

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
                  + "\(fb.tasks.count) tools/modes, up to \(o.runs) alternating rounds (\(max(o.runs, o.shortRuns)) for runs under \(fixed(o.shortSeconds, 2)) s, and for the target ratios' rows under \(fixed(o.ratioSeconds, 2)) s)")
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
                // The formats users run, with the default threads (the cores) and with one; the reports next
                // to the counting decode (issue 18: no slower than it).
                var formats: [(String, Group)] = [("jsonl", .json), ("resp", .resp)]
                if !fb.isAOF { formats.append(("restore", .restore)) }
                for (f, g) in formats {
                    fb.tasks.append(external("rdbcat", "--format \(f)", g, ours: true, [rdbcat, cmdPath, "--format", f]))
                    if !fb.isAOF {
                        fb.tasks.append(external("rdbcat", "--format \(f) --threads 1", g, ours: true,
                                                 [rdbcat, cmdPath, "--format", f, "--threads", "1"]))
                    }
                }
                if !fb.isAOF {
                    // Streamed input (issue 18: within 1.3x of the mapped file): the same file through a pipe, as
                    // a download piped in would come (a regular file on stdin is mapped). `cat` is timed too.
                    // The two processes are spawned joined by a pipe, as a shell would, without the shell.
                    fb.tasks.append(piped("rdbcat", Report.streamedMode, .resp, ours: true,
                                          ["cat", p], [rdbcat, "-", "--format", "resp"]))
                }
                // (memory reads RDB files only.)
                for f in fb.isAOF ? ["stats", "keys"] : ["stats", "keys", "memory"] {
                    fb.tasks.append(external("rdbcat", "--format \(f)", .decode, ours: true, [rdbcat, cmdPath, "--format", f]))
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
                if let l = tools.librdb, !o.skip.contains("librdb") {
                    fb.tasks.append(external("librdb", "rdb-cli json", .json, ours: false, [l, p, "-l", "/dev/null", "json"]))
                    fb.tasks.append(external("librdb", "rdb-cli resp", .resp, ours: false, [l, p, "-l", "/dev/null", "resp"]))
                    // RESTORE payloads are compared with its fastest replay output too.
                    fb.tasks.append(external("librdb", "rdb-cli resp", .restore, ours: false, [l, p, "-l", "/dev/null", "resp"]))
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
                if !fb.isAOF {
                    // What the pipe of the streamed row (`cat FILE | rdbcat -`) costs alone: both copies and the
                    // pipe's lock, on the cores the decode shares.
                    fb.tasks.append(piped("cat", Report.pipeFloorMode, .floor, ours: false, ["cat", p], ["cat"]))
                }
            }
        }
        if o.importMode { planImport(fb) }
    }

    /// `producer | consumer` (`runMeasuredPipeline`), the consumer's output to /dev/null.
    func piped(_ tool: String, _ mode: String, _ group: Group, ours: Bool, _ producer: [String], _ consumer: [String]) -> Task {
        let shown = producer.map { shellQuote($0) }.joined(separator: " ") + " | " + consumer.map { shellQuote($0) }.joined(separator: " ")
            + " > /dev/null"
        let errPath = stderrPath
        return Task(tool: tool, mode: mode, group: group, ours: ours, command: shown) { timeout in
            let r = try runMeasuredPipeline(producer, consumer, stdout: .devNull, stderr: .write(errPath), timeout: timeout)
            return try Bench.check(r, timeout: timeout, errPath: errPath)
        }
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
        for round in 0..<max(o.runs, o.shortRuns) {
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
            }
            if !any { break }
            // After the round, when every task has as many runs: a task's count may depend on another's.
            for task in fb.tasks where !task.done {
                if task.samples.count >= runs(of: task, fb) || (task.total >= o.budget && !task.samples.isEmpty) { task.done = true }
            }
        }
    }

    /// How many runs `task` gets: `shortRuns` when the median of its first `runs` is under `shortSeconds`, or
    /// when it is one of our rows read as a multiple of its group's reference row (`x ours`: the reports next
    /// to the counting decode, resp streamed next to mapped) and the reference gets `shortRuns` (the ratio then
    /// comes from the same rounds); else `runs`. The rows whose ratio is a target (issue 18: the reports next to
    /// the counting decode, resp streamed next to mapped) and their references count as short up to
    /// `ratioSeconds`: at 5 runs, the streamed ratio of a 0.45 s file moved between 1.14x and 1.36x from one
    /// bench run to the next on this 2-core VM.
    func runs(of task: Task, _ fb: FileBench) -> Int {
        func short(_ t: Task) -> Bool {
            guard t.samples.count >= o.runs, let m = t.median else { return false }
            return m < (targetRatio(t, fb) ? o.ratioSeconds : o.shortSeconds)
        }
        if short(task) { return max(o.runs, o.shortRuns) }
        if task.ours, let reference = Report.ours(fb, task.group), reference !== task, short(reference) {
            return max(o.runs, o.shortRuns)
        }
        return o.runs
    }

    /// Whether `t` is a row whose ratio to its group's reference is a target, or such a reference: our reports and
    /// the counting decode, the streamed row and resp mapped.
    func targetRatio(_ t: Task, _ fb: FileBench) -> Bool {
        t.ours && (t.group == .decode || t.mode == Report.streamedMode || (t.group == .resp && t === Report.ours(fb, .resp)))
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
