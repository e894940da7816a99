#if canImport(Glibc)
import Glibc
#endif

/// Renders the results: a Markdown report (summary + every tool/mode) and the same as JSON.
struct Report {
    let options: Options
    let tools: Toolbox
    let benches: [FileBench]
    let seconds: Double
    let stamp: String
    let date: String
    /// 1-minute load average at the start and at the end of the run.
    var loads: (Double, Double) = (0, 0)

    init(options: Options, tools: Toolbox, benches: [FileBench], seconds: Double) {
        self.options = options
        self.tools = tools
        self.benches = benches
        self.seconds = seconds
        var t = time(nil)
        var tm = tm()
        gmtime_r(&t, &tm)
        func f(_ fmt: String) -> String {
            var buf = [CChar](repeating: 0, count: 64)
            let n = strftime(&buf, buf.count, fmt, &tm)
            return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        stamp = f("%Y%m%d-%H%M%S")
        date = f("%Y-%m-%d %H:%M UTC")
    }

    // MARK: what is compared with what

    /// Text for a table cell: a `|` (a pipeline in a mode's name) would end the cell, code span or not.
    static func tableText(_ s: String) -> String { s.replacingOccurrences("|", "\\|") }

    /// Our reference row of a group: the CLI when it ran, else the in-process mode.
    static func ours(_ fb: FileBench, _ g: Group) -> Task? {
        let candidates = fb.tasks.filter { $0.group == g && $0.ours && $0.median != nil }
        switch g {
        case .decode: return candidates.first { $0.mode == "decode" }
        case .json, .resp, .restore: return candidates.first { $0.tool == "rdbcat" } ?? candidates.first
        default: return candidates.first
        }
    }

    static func others(_ fb: FileBench, _ g: Group) -> [Task] {
        fb.tasks.filter { $0.group == g && !$0.ours && $0.tool != importFloorTool && $0.tool != serverLoadTool }
    }

    /// The streamed row (`cat FILE | rdbcat -`), and the pipe it reads alone (`cat FILE | cat`).
    static let streamedMode = "--format resp, streamed (cat FILE | rdbcat -)"
    static let pipeFloorMode = "cat FILE | cat > /dev/null (pipe floor)"
    /// The import rows' floor: redis-cli --pipe reading the commands from a file (no decoding at all).
    static let importFloorTool = "redis-cli (floor)"
    /// The import rows' limit: the target server loading the same RDB at start-up.
    static let serverLoadTool = "redis-server (load)"

    /// Median, or the timeout as a lower bound when the only run was killed.
    static func measured(_ t: Task, _ o: Options) -> (value: Double, lowerBound: Bool)? {
        if let m = t.median { return (m, false) }
        if t.timedOut { return (o.timeout, true) }
        return nil
    }

    static func cell(_ t: Task, _ fb: FileBench, _ o: Options) -> String {
        guard let (v, lb) = measured(t, o) else { return "\(t.tool) \(t.mode): failed" }
        return "\(t.tool) `\(tableText(t.mode))`: \(lb ? "> " : "")\(fmtSeconds(v)) (N=\(t.samples.count), \(mbps(fb.bytes, v)))"
    }

    // MARK: Markdown

    func markdown() -> String {
        let rssSource = gnuTime != nil
            ? "GNU time's `%M` (the program alone; for a pipeline its largest process)"
            : "`ru_maxrss` from wait4 (at least this process's own ~10 MiB: install GNU time for exact numbers)"
        var s = "# rdbbench results\n\n"
        s += "Run on \(date) in \(fixed(seconds / 60, 1)) min: `rdbbench \(commandLine())`.\n\n"
        s += "- Machine: \(machine()); 1-minute load average \(fixed(loads.0, 2)) at the start, \(fixed(loads.1, 2)) at the end\n"
        s += "- Code: swift-rdb \(gitRevision()), `swift build -c release --static-swift-stdlib`\(swiftVersion().map { " (\($0))" } ?? "")\n"
        for (tool, version) in tools.versions { s += "- \(tool): \(version)\n" }
        if let d = datasetsLine() { s += "- Datasets: \(d)\n" }
        s += """
            - Method: every tool and mode runs as its own process on the same file, in alternating rounds \
            (A B C … A B C …), up to N=\(options.runs) runs each (N=\(max(options.runs, options.shortRuns)) for a tool whose first \
            \(options.runs) runs have a median under \(fixed(options.shortSeconds, 2)) s: the medians of short runs move most with \
            this machine's phases; and for our rows read as a multiple of such a reference row, `x ours`); a tool stops early once its runs on a file \
            add up to \(Int(options.budget)) s (so slow tools have a smaller N, shown per row), and a run is \
            killed after \(Int(options.timeout)) s. Times are wall-clock medians including process start; inputs \
            are in the page cache (warmed by `cat` first). `rdbbench` rows are the in-process modes \
            (`rdbbench --child MODE FILE`, output to /dev/null), `rdbcat` rows the CLI with stdout to /dev/null. \
            Peak RSS is the largest over the runs of \(rssSource); it counts the pages of a memory-mapped \
            input that were touched.
            - Reproduce: `python3 scripts/bench/make_datasets.py` (and, for rdbtools, which reads RDB versions up to 9: \
            `python3 scripts/bench/make_datasets.py --server redis-6.2 --out bench-data/redis-6.2 --scale 0.25 \
            --only strings,small-aggregates,huge-aggregates,mixed-ttl-streams,one-big-value`), \
            `swift build -c release --static-swift-stdlib`, then the command above.

            """
        if !tools.notes.isEmpty {
            s += "\nNot measured: " + tools.notes.joined(separator: "; ") + ".\n"
        }

        s += "\n## Summary: ours vs the fastest other tool (ratio of medians)\n\n"
        s += "| file | size | mode | ours | fastest other tool | ours is | vs `cat` floor |\n|---|---|---|---|---|---|---|\n"
        for fb in benches {
            let catFloor = fb.tasks.first { $0.group == .floor }?.median
            let importFloor = fb.tasks.first { $0.tool == Report.importFloorTool }?.median
            for g in [Group.decode, .json, .resp, .restore, .import] {
                let floor = g == .import ? importFloor : catFloor
                guard let ours = Report.ours(fb, g), let om = ours.median else { continue }
                let others = Report.others(fb, g).compactMap { t in Report.measured(t, options).map { (t, $0) } }
                let best = others.min { $0.1.value < $1.1.value }
                var otherCell = "—"
                var ratioCell = "—"
                if let (bt, bv) = best {
                    otherCell = Report.cell(bt, fb, options)
                    ratioCell = "**\(faster(bv.value / om, lowerBound: bv.lowerBound))**"
                } else if !Report.others(fb, g).isEmpty {
                    otherCell = Report.others(fb, g).map { "\($0.tool): \($0.failure ?? "failed")" }.joined(separator: "; ")
                }
                let floorName = g == .import ? "redis-cli --pipe from a file" : "cat"
                var floorCell = floor.map { "\(ratio(om / $0))x the floor (\(floorName) \(fmtSeconds($0)))" } ?? "—"
                if g == .import, let load = fb.tasks.first(where: { $0.tool == Report.serverLoadTool })?.median {
                    floorCell = "\(ratio(om / load))x the server's start-up load (\(fmtSeconds(load))); " + floorCell
                }
                s += "| \(fb.name) | \(human(fb.bytes)) | \(g.rawValue) | \(Report.cell(ours, fb, options)) | \(otherCell) | \(ratioCell) | \(floorCell) |\n"
            }
        }

        s += "\n## Every tool and mode\n\n"
        s += "`vs ours`: how many times faster our reference row of the same group is (decode: `rdbbench decode`; "
        s += "json / resp / restore: `rdbcat` with its default threads; import: `rdbcat import --replace`); for `cat` and the server's start-up load, how many times their time ours takes (the pipe floor: the streamed row); "
        s += "for our other rows (`rdbcat --format stats`/`keys`/`memory` in decode, `--threads 1`, resp streamed through a pipe), their time as a multiple of the reference's (`x ours`). "
        s += "keys/s and elements/s use what our decoder counted in the file (AOF: commands + preamble keys; "
        s += "elements: strings, list/set/zset members, hash fields, stream entry fields).\n\n"
        s += "| file | size | tool | mode | N | median | MB/s | keys/s | elements/s | peak RSS | vs ours | note |\n"
        s += "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for fb in benches {
            for t in fb.tasks {
                var row = "| \(fb.name) | \(human(fb.bytes)) | \(t.tool) | `\(Report.tableText(t.mode))` | \(t.samples.count) | "
                if let (v, lb) = Report.measured(t, options) {
                    let p = lb ? "> " : ""
                    row += "\(p)\(fmtSeconds(v)) | \(lb ? "< " : "")\(mbps(fb.bytes, v)) | "
                    row += fb.records > 0 ? "\(lb ? "< " : "")\(perSecond(fb.records, v)) | " : "— | "
                    row += fb.elements > 0 ? "\(lb ? "< " : "")\(perSecond(fb.elements, v)) | " : "— | "
                    row += t.samples.isEmpty ? "— | " : "\(fixed(Double(t.peakRSSKiB) / 1024, 1)) MiB | "
                    row += vsOurs(t, fb, v, lb) + " | "
                } else {
                    row += "— | — | — | — | — | — | "
                }
                var notes: [String] = []
                if let f = t.failure, !t.timedOut { notes.append(f.replacingOccurrences("|", "\\|")) }
                if t.timedOut { notes.append("killed after \(Int(options.timeout)) s") }
                if let n = t.samples.last?.note { notes.append(n) }
                row += notes.joined(separator: "; ") + " |\n"
                s += row
            }
        }
        let fileNotes = benches.flatMap { fb in fb.notes.map { "- \(fb.name): \($0)" } }
        if !fileNotes.isEmpty { s += "\nNotes:\n" + fileNotes.joined(separator: "\n") + "\n" }
        s += "\n## Commands\n\n"
        var seen = Set<String>()
        for fb in benches.prefix(1) {
            for t in fb.tasks where seen.insert(t.tool + t.mode).inserted {
                s += "- \(t.tool) `\(t.mode)`: `\(t.command.replacingOccurrences(fb.path, "FILE"))`\n"
            }
        }
        return s
    }

    func vsOurs(_ t: Task, _ fb: FileBench, _ v: Double, _ lb: Bool) -> String {
        if t.mode == Report.pipeFloorMode {
            // Next to the streamed row, which reads through such a pipe.
            guard let streamed = fb.tasks.first(where: { $0.mode == Report.streamedMode }), let sm = streamed.median else { return "" }
            return "streamed \(ratio(sm / v))x"
        }
        if t.group == .floor {
            guard let ours = Report.ours(fb, .decode), let om = ours.median else { return "" }
            return "ours \(ratio(om / v))x"
        }
        if t.tool == Report.serverLoadTool {
            guard let ours = Report.ours(fb, .import), let om = ours.median else { return "" }
            return "ours \(ratio(om / v))x"
        }
        if t.ours {
            // Our other rows of a group: their time as a multiple of the reference's (the reports next to the
            // counting decode, one thread next to the default).
            guard let ours = Report.ours(fb, t.group), ours !== t, let om = ours.median, om > 0 else { return "" }
            return "\(ratio(v / om))x ours"
        }
        guard let ours = Report.ours(fb, t.group), let om = ours.median else { return "" }
        return "\(lb ? "≥ " : "")\(ratio(v / om))x"
    }

    // MARK: JSON

    func json() -> String {
        var s = "{\n  \"date\": \(q(date)),\n  \"machine\": \(q(machine())),\n  \"revision\": \(q(gitRevision())),\n"
        s += "  \"load_average\": [\(loads.0), \(loads.1)],\n"
        s += "  \"runs\": \(options.runs),\n  \"budget_seconds\": \(options.budget),\n  \"timeout_seconds\": \(options.timeout),\n"
        s += "  \"versions\": {" + tools.versions.map { "\(q($0.0)): \(q($0.1))" }.joined(separator: ", ") + "},\n"
        s += "  \"not_measured\": [" + tools.notes.map(q).joined(separator: ", ") + "],\n"
        s += "  \"files\": [\n"
        s += benches.map { fb in
            var f = "    {\"file\": \(q(fb.path)), \"bytes\": \(fb.bytes), \"aof\": \(fb.isAOF), \"records\": \(fb.records), \"elements\": \(fb.elements),\n"
            f += "     \"notes\": [" + fb.notes.map(q).joined(separator: ", ") + "],\n"
            f += "     \"results\": [\n"
            f += fb.tasks.map { t in
                var r = "       {\"tool\": \(q(t.tool)), \"mode\": \(q(t.mode)), \"group\": \(q(t.group.rawValue)), \"ours\": \(t.ours), "
                r += "\"command\": \(q(t.command)), \"n\": \(t.samples.count), "
                r += "\"median_seconds\": \(t.median.map { "\($0)" } ?? "null"), "
                r += "\"seconds\": [" + t.samples.map { "\($0.seconds)" }.joined(separator: ", ") + "], "
                r += "\"peak_rss_kib\": \(t.peakRSSKiB), \"timed_out\": \(t.timedOut), "
                r += "\"failure\": \(t.failure.map(q) ?? "null")"
                if let c = t.samples.last?.child {
                    r += ", \"keys\": \(c.keys), \"elements\": \(c.elements), \"commands\": \(c.commands), \"output_bytes\": \(c.outputBytes), "
                    r += "\"in_process_seconds\": [" + t.samples.compactMap { $0.child.map { "\($0.seconds)" } }.joined(separator: ", ") + "]"
                }
                if let n = t.samples.last?.note { r += ", \"note\": \(q(n))" }
                return r + "}"
            }.joined(separator: ",\n")
            return f + "\n     ]}"
        }.joined(separator: ",\n")
        s += "\n  ]\n}\n"
        return s
    }

    // MARK: environment

    func commandLine() -> String {
        CommandLine.arguments.dropFirst().map { shellQuote($0) }.joined(separator: " ")
    }

    func machine() -> String {
        var cpu = "unknown CPU"
        if let info = readFile("/proc/cpuinfo") {
            for line in info.split(separator: "\n") where line.hasPrefix("model name") {
                if let c = line.firstIndex(of: ":") { cpu = String(line[line.index(after: c)...]).trimmed }
                break
            }
        }
        var mem = ""
        if let m = readFile("/proc/meminfo"), let line = m.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }) {
            let kib = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
            mem = ", \(fixed(kib / 1024 / 1024, 0)) GiB RAM"
        }
        var u = utsname()
        uname(&u)
        let kernel = withUnsafePointer(to: u.release) { $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) } }
        return "\(cpu), \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) cores\(mem), Linux \(kernel)"
    }

    func gitRevision() -> String {
        let dir = dirname(dirname(dirname(dirname(selfExecutable()))))  // <repo>/.build/<triple>/release/rdbbench
        guard let rev = firstLine(capture(["git", "-C", dir, "rev-parse", "--short", "HEAD"]).output) else { return "(no git)" }
        let dirty = !capture(["git", "-C", dir, "status", "--porcelain", "--", "Sources", "Package.swift"]).output.trimmed.isEmpty
        return rev + (dirty ? " + uncommitted changes" : "")
    }

    func swiftVersion() -> String? {
        guard let l = firstLine(capture(["swift", "--version"], stderrToo: true).output) else { return nil }
        if let r = Substring(l).range(of: "Swift version ") {
            return "Swift " + l[r.upperBound...].prefix { $0 != " " }
        }
        return l
    }

    func datasetsLine() -> String? {
        guard let text = readFile(options.dataDir + "/datasets.json") else { return nil }
        func field(_ name: String) -> String? {
            guard let r = Substring(text).range(of: "\"\(name)\": ") else { return nil }
            return String(text[r.upperBound...].prefix { $0 != "," && $0 != "\n" }).replacingOccurrences("\"", "")
        }
        guard let server = field("server"), let version = field("server_version") else { return nil }
        return "written by \(server) \(version) (scripts/bench/make_datasets.py, seed \(field("seed") ?? "?"))"
    }
}

/// "12x faster" / "1.3x slower" for a ratio other / ours.
func faster(_ r: Double, lowerBound: Bool = false) -> String {
    if r >= 1 { return "\(lowerBound ? "≥ " : "")\(ratio(r))x faster" }
    return "\(ratio(1 / r))x slower"
}

/// A JSON string literal.
func q(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if u.value < 0x20 {
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}
