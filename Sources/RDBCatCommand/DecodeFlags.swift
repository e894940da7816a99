import ArgumentParser
import RDBKit
import RDBSinks
#if canImport(Glibc)
import Glibc
#endif

/// How inputs are decoded, and progress: shared by `cat`, `import` and `migrate`.
package struct DecodeFlags: ParsableArguments {
    package init() {}

    @Flag(help: "Do not verify the CRC64 trailer of RDB files.")
    var noVerifyChecksum = false

    @Flag(help: "Accept RDB versions newer than this tool knows (and try to decode them).")
    var allowNewerVersions = false

    @Flag(help: "AOF: a torn last command is an error instead of being dropped with a warning.")
    var strict = false

    @Option(help: "Largest single record a streamed input may buffer, in MiB (default: cat 1024, import 8192).")
    var maxRecordMB: Int?

    @Flag(help: "Show progress on stderr even when it is not a terminal.")
    var progress = false

    @Flag(help: "Never show progress.")
    var noProgress = false

    package var showProgress: Bool { Self.showsProgress(progress: progress, noProgress: noProgress) }

    /// Whether progress is shown, given the two flags: on a terminal, or when asked for.
    package static func showsProgress(progress: Bool = false, noProgress: Bool = false) -> Bool {
        !noProgress && (progress || isatty(2) != 0)
    }

    /// Applies the flags to decoder options (RDB, and AOF with its RDB options); the record limit keeps the
    /// caller's default when not given.
    package func apply(to rdb: inout RDBDecoderOptions, aof: inout AOFOptions) {
        rdb.allowNewerVersions = allowNewerVersions
        rdb.verifyChecksum = !noVerifyChecksum
        if let maxRecordMB { rdb.maxRecordBytes = maxRecordMB << 20 }
        aof.strict = strict
        aof.rdb = rdb
    }
}

/// Which keys `cat` writes.
struct FilterFlags: ParsableArguments {
    @Option(help: "Only keys of this database (repeatable).")
    var db: [Int] = []

    @Option(help: "Only keys matching this regular expression (searched in the key as UTF-8).")
    var key: String?

    @Option(help: "Drop keys matching this regular expression.")
    var notKey: String?

    @Option(help: "Only keys of this type: string, list, set, zset, hash, stream, module (repeatable).")
    var type: [String] = []

    @Option(help: "Only values of at least this many serialized bytes in the file.")
    var minSize: Int?

    @Option(help: "Only values of at most this many serialized bytes in the file.")
    var maxSize: Int?

    @Flag(help: "Drop keys already expired at --now.")
    var noExpired = false

    @Option(help: "Current time for --no-expired, in Unix ms (default: now).")
    var now: Int64?

    @Flag(help: "Drop expiries (keys and hash fields) on replay.")
    var noTtl = false

    /// The filter these flags describe.
    func keyFilter() throws -> KeyFilter {
        var filter = KeyFilter(noExpired: noExpired, noTTL: noTtl)
        if let now { filter.now = now }
        if !db.isEmpty { filter.dbs = Set(db) }
        if let key { filter.keyPattern = try KeyPattern(regex: key) }
        if let notKey { filter.notKeyPattern = try KeyPattern(regex: notKey) }
        if !type.isEmpty {
            var kinds = Set<RDBKind>()
            for t in type {
                guard let k = RDBKind.allNames[t] else { throw ValidationError("unknown type '\(t)'") }
                kinds.insert(k)
            }
            filter.types = kinds
        }
        filter.minSize = minSize
        filter.maxSize = maxSize
        return filter
    }
}
