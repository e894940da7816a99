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
    /// librdb's `rdb-cli` (the official C library, built -O3): `RDB_CLI`, the copy in `../shared`, or on PATH.
    var librdb: String?
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
        var root = dirname(exe)  // up from .build/…/release to the folder with Package.swift
        while root.count > 1 && access(root + "/Package.swift", F_OK) != 0 { root = dirname(root) }
        let fromEnv = getenv("RDB_CLI").map { String(cString: $0) }
        let librdbCandidates = [fromEnv, root + "/../shared/tools/peers/librdb/rdb-cli", "rdb-cli"]
        t.librdb = librdbCandidates.compactMap { $0 }.lazy.compactMap { which($0) }.first
        if let l = t.librdb {
            // It prints its version in front of its usage: "[v2.1.0] Usage: ...".
            let usage = firstLine(capture([l], stderrToo: true).output) ?? ""
            let version = usage.hasPrefix("[") ? String(usage.dropFirst().prefix { $0 != "]" }) : "?"
            t.versions.append(("librdb rdb-cli (C, -O3)", version))
        } else {
            t.notes.append("librdb rdb-cli: not found (set RDB_CLI)")
        }
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
