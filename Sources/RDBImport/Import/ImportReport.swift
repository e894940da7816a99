#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import RDBKit
import RDBSinks
import RedisWire

/// A key (or AOF command) that did not arrive as it is in the file, or that needs a word in the report.
public struct KeyProblem: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The server answered an error to one of the key's commands.
        case error
        /// The key exists on the target and `replace` is off: it was left as it is.
        case exists
        /// The writer cannot express the value (module or array values, ...): not sent.
        case skipped
        /// Not sent because the import stopped before it.
        case notSent = "not_sent"
        /// Sent, but the connection was lost for good before its replies: it may or may not be there.
        case unacknowledged
        /// Written without something the target cannot hold (hash-field TTLs for an old target, ...).
        case lossy
        /// A function library the target cannot load.
        case function

        /// Whether it means the key did not arrive (the import then ends FAILED).
        public var isFailure: Bool {
            switch self {
            case .error, .skipped, .notSent, .unacknowledged, .function: true
            case .exists, .lossy: false
            }
        }
    }

    public var kind: Kind
    public var file: String
    public var db: Int
    /// The key's bytes (for an AOF command: its first key, or its name).
    public var key: [UInt8]
    /// The server's error, or why.
    public var message: String
    /// Offset of the key or command in its file.
    public var offset: Int

    public init(kind: Kind, file: String, db: Int, key: [UInt8], message: String, offset: Int = 0) {
        self.kind = kind
        self.file = file
        self.db = db
        self.key = key
        self.message = message
        self.offset = offset
    }

    public var keyText: String { String(decoding: key, as: UTF8.self) }

    func writeJSON(_ j: inout JSONBuilder) {
        j.beginObject()
        j.field("kind", kind.rawValue)
        j.field("file", file)
        j.field("db", db)
        j.key("key")
        j.bytes(key)
        j.field("offset", offset)
        j.field("message", message)
        j.endObject()
    }
}

/// Collects problems from the decoder thread and the event loop: counts per kind, the first `limit`
/// problems in memory, and optionally every one of them as JSON lines in a file.
public final class ProblemLog: @unchecked Sendable {
    let lock = NIOLock()
    public let limit: Int
    var kept: [KeyProblem] = []
    var counts: [KeyProblem.Kind: Int] = [:]
    var fileNames: [String] = []
    var sink: OutputBuffer?
    var sinkTarget: FileDescriptorTarget?

    /// - Parameters:
    ///   - limit: problems kept for the report (all are counted).
    ///   - path: a file that receives every problem as a JSON line.
    public init(limit: Int = 1000, path: String? = nil) throws {
        self.limit = limit
        if let path {
            let t = try FileDescriptorTarget.create(path: path)
            sinkTarget = t
            sink = OutputBuffer(target: t, flushThreshold: 1 << 16)
        }
    }

    deinit {
        try? sink?.flush()
        if let t = sinkTarget { close(t.fd) }
    }

    /// Registers an input file; returns its index.
    func register(file: String) -> Int {
        lock.withLock {
            fileNames.append(file)
            return fileNames.count - 1
        }
    }

    func fileName(_ index: Int) -> String {
        lock.withLock { index < fileNames.count ? fileNames[index] : "?" }
    }

    func add(_ kind: KeyProblem.Kind, file: Int, db: Int, key: [UInt8], message: String, offset: Int = 0) {
        lock.withLock {
            let name = file < fileNames.count ? fileNames[file] : "?"
            let p = KeyProblem(kind: kind, file: name, db: db, key: key, message: message, offset: offset)
            counts[kind, default: 0] += 1
            if kept.count < limit { kept.append(p) }
            if let sink {
                var j = JSONBuilder()
                p.writeJSON(&j)
                sink.append(j.text)
                sink.append(UInt8(ascii: "\n"))
                try? sink.flushIfNeeded()
            }
        }
    }

    /// The problems kept (the first `limit`).
    public var problems: [KeyProblem] { lock.withLock { kept } }
    /// How many of each kind.
    public var countsByKind: [KeyProblem.Kind: Int] { lock.withLock { counts } }
    public var total: Int { lock.withLock { counts.values.reduce(0, +) } }
    /// Problems that mean a key did not arrive.
    public var failures: Int { lock.withLock { counts.filter { $0.key.isFailure }.values.reduce(0, +) } }

    func flush() { lock.withLock { try? sink?.flush() } }
}

/// What happened to one input file.
public struct ImportFileStats: Sendable {
    public var file: String
    /// Size of the input, when it is a regular file.
    public var inputBytes: Int = 0
    /// Keys read from the file (RDB or AOF preamble).
    public var keysRead = 0
    /// Keys the server acknowledged without error.
    public var keysImported = 0
    /// Keys left as they were because they exist on the target (without `replace`).
    public var keysExisting = 0
    /// Keys with an error reply.
    public var keysFailed = 0
    /// Keys the writer cannot express (not sent).
    public var keysSkipped = 0
    /// Keys whose expiry had passed (not sent: a server loading the file drops them too).
    public var keysExpired = 0
    /// Keys with an empty collection (a server drops them on load).
    public var keysEmpty = 0
    /// Keys not sent, or sent and never acknowledged, because the import stopped.
    public var keysNotArrived = 0
    /// AOF commands read / acknowledged without error / with an error reply.
    public var aofCommands = 0
    public var aofApplied = 0
    public var aofFailed = 0
    /// Commands and bytes sent for this file (resends not included).
    public var commandsSent = 0
    public var bytesSent = 0
    /// Seconds from the first byte read to the last reply.
    public var seconds = 0.0

    public init(file: String) { self.file = file }

    mutating func add(replies o: ReplyCounters) {
        keysImported += o.imported
        keysExisting += o.existing
        keysFailed += o.failed
        keysNotArrived += o.notArrived
        aofApplied += o.aofApplied
        aofFailed += o.aofFailed
    }
}

/// Counters kept by the decoding thread per file (no strings: updated per key).
struct DecodeCounters {
    var inputBytes = 0
    var keysRead = 0
    var keysSkipped = 0
    var keysExpired = 0
    var keysEmpty = 0
    var keysNotArrived = 0
    /// Keys that failed on the decoding side after parts of them were sent (`KeyParts.abort`).
    var keysFailed = 0
    var aofCommands = 0
    var commandsSent = 0
    var bytesSent = 0
}

extension ImportFileStats {
    init(file: String, decoded d: DecodeCounters, replies r: ReplyCounters?) {
        self.init(file: file)
        inputBytes = d.inputBytes
        keysRead = d.keysRead
        keysSkipped = d.keysSkipped
        keysExpired = d.keysExpired
        keysEmpty = d.keysEmpty
        keysNotArrived = d.keysNotArrived
        keysFailed = d.keysFailed
        aofCommands = d.aofCommands
        commandsSent = d.commandsSent
        bytesSent = d.bytesSent
        if let r { add(replies: r) }
    }
}

/// Counters kept by the event loop per file.
struct ReplyCounters {
    var imported = 0
    var existing = 0
    var failed = 0
    var notArrived = 0
    var aofApplied = 0
    var aofFailed = 0

    /// Adds another pipeline's counts (a cluster import has one per master).
    mutating func add(_ o: ReplyCounters) {
        imported += o.imported
        existing += o.existing
        failed += o.failed
        notArrived += o.notArrived
        aofApplied += o.aofApplied
        aofFailed += o.aofFailed
    }
}

/// The outcome of an import.
public struct ImportReport: Sendable {
    /// `LOSSY`: every key was written, but some without part of their data (the `lossy` problems: the
    /// target cannot hold it, and neither commands nor a payload it loads could carry it).
    /// `STOPPED`: `Importer.stop()` ended it between keys; `failure` says where.
    public enum Status: String, Sendable { case success = "SUCCESS", lossy = "LOSSY", failed = "FAILED", stopped = "STOPPED" }

    public var status: Status
    /// Why it failed, when it stopped (connection lost for good, writes refused, authentication, ...).
    public var failure: String?
    public var files: [ImportFileStats]
    /// The first problems (see `problemLimit`), and how many of each kind there were.
    public var problems: [KeyProblem]
    public var problemCounts: [KeyProblem.Kind: Int]
    public var warnings: [String]
    public var target: String?
    public var server: ServerInfo?
    /// RDB version the commands/payloads were written for.
    public var targetVersion: Int?
    public var mode: String
    public var dryRun: Bool
    public var reconnects: Int
    public var seconds: Double
    /// A cluster target: what each master got (empty for a single server).
    public var shards: [ShardReport] = []

    public var keysImported: Int { files.reduce(0) { $0 + $1.keysImported } }
    public var keysRead: Int { files.reduce(0) { $0 + $1.keysRead } }
    public var bytesSent: Int { files.reduce(0) { $0 + $1.bytesSent } }
    public var commandsSent: Int { files.reduce(0) { $0 + $1.commandsSent } }

    /// The report as one JSON object.
    public func json(extra: (inout JSONBuilder) -> Void = { _ in }) -> String {
        var j = JSONBuilder()
        j.beginObject()
        extra(&j)
        j.field("status", status.rawValue)
        j.field("failure", failure)
        j.field("mode", mode)
        j.field("dry_run", dryRun)
        if let target { j.field("target", target) }
        if let server {
            j.key("server")
            j.beginObject()
            j.field("name", server.name)
            j.field("version", server.version)
            j.field("role", server.role)
            j.endObject()
        }
        if let targetVersion { j.field("target_rdb_version", targetVersion) }
        j.key("seconds")
        j.seconds(seconds)
        j.field("reconnects", reconnects)
        j.key("totals")
        writeTotals(&j)
        j.key("files")
        j.beginArray()
        for f in files {
            j.beginObject()
            j.field("file", f.file)
            j.field("input_bytes", f.inputBytes)
            j.field("keys_read", f.keysRead)
            j.field("keys_imported", f.keysImported)
            j.field("keys_existing", f.keysExisting)
            j.field("keys_failed", f.keysFailed)
            j.field("keys_skipped", f.keysSkipped)
            j.field("keys_expired", f.keysExpired)
            j.field("keys_empty", f.keysEmpty)
            j.field("keys_not_arrived", f.keysNotArrived)
            j.field("aof_commands", f.aofCommands)
            j.field("aof_applied", f.aofApplied)
            j.field("aof_failed", f.aofFailed)
            j.field("commands_sent", f.commandsSent)
            j.field("bytes_sent", f.bytesSent)
            j.key("seconds")
            j.seconds(f.seconds)
            j.endObject()
        }
        j.endArray()
        if !shards.isEmpty {
            j.key("shards")
            j.beginArray()
            for s in shards {
                j.beginObject()
                j.field("node", s.node)
                j.field("keys_imported", s.keysImported)
                j.field("keys_failed", s.keysFailed)
                j.field("commands_sent", s.commandsSent)
                j.field("bytes_sent", s.bytesSent)
                j.field("redirects", s.redirects)
                j.field("reconnects", s.reconnects)
                j.endObject()
            }
            j.endArray()
        }
        j.key("problem_counts")
        j.beginObject()
        for k in KeyProblem.Kind.allCases where (problemCounts[k] ?? 0) > 0 { j.field(k.rawValue, problemCounts[k]!) }
        j.endObject()
        let total = problemCounts.values.reduce(0, +)
        j.field("problems_listed", problems.count)
        j.field("problems_total", total)
        j.key("problems")
        j.beginArray()
        for p in problems { p.writeJSON(&j) }
        j.endArray()
        j.key("warnings")
        j.beginArray()
        for w in warnings { j.string(w) }
        j.endArray()
        j.endObject()
        return j.text
    }

    func writeTotals(_ j: inout JSONBuilder) {
        j.beginObject()
        j.field("keys_read", keysRead)
        j.field("keys_imported", keysImported)
        j.field("keys_existing", files.reduce(0) { $0 + $1.keysExisting })
        j.field("keys_failed", files.reduce(0) { $0 + $1.keysFailed })
        j.field("keys_skipped", files.reduce(0) { $0 + $1.keysSkipped })
        j.field("keys_expired", files.reduce(0) { $0 + $1.keysExpired })
        j.field("keys_not_arrived", files.reduce(0) { $0 + $1.keysNotArrived })
        j.field("aof_commands", files.reduce(0) { $0 + $1.aofCommands })
        j.field("aof_failed", files.reduce(0) { $0 + $1.aofFailed })
        j.field("commands_sent", commandsSent)
        j.field("bytes_sent", bytesSent)
        j.endObject()
    }
}
