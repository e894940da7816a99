import RDBKit

/// Settings of an import.
public struct ImportOptions: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Per key the fastest form the target loads faithfully: strings as `SET`, every other value as a
        /// `RESTORE` payload (passed through as it is in the file when the target loads its encoding),
        /// commands for what the target cannot load. The default.
        case auto
        /// Plain commands (SET, RPUSH, HSET, XADD, ...): any target version.
        case commands
        /// RESTORE payloads (values pass through as they are in the file when the target loads their type):
        /// fastest when the versions allow.
        case restore
    }

    public var mode = Mode.auto
    /// Overwrite keys that exist on the target. Without it an existing key is left as it is and reported.
    public var replace = false
    /// RDB version of the target (9 = Redis 6.2, 10 = 7.0, 11 = 7.2 / Valkey 7.2–8.1, 12 = 7.4+, 80 = Valkey 9);
    /// nil = detected from the server's INFO.
    public var targetVersion: Int?
    /// The target's `zset-max-listpack-*` (nil: read from the target, `CONFIG GET zset-max-*`; the defaults where
    /// it is refused).
    public var compactSortedSets: CompactSortedSetLimits?
    /// Database of the file -> database of the target.
    public var databaseMap: [Int: Int] = [:]
    /// Every database not in `databaseMap` goes to this one (nil: the same number as in the file).
    public var mergeInto: Int?
    /// Command size limits of the writers (collections are split into several commands).
    public var maxElementsPerCommand = 512
    public var maxBytesPerCommand = 1 << 20
    /// Leave out key expiries and hash-field TTLs.
    public var dropTTL = false
    /// Do not send keys whose expiry has passed (a server loading the file drops them too).
    public var skipExpired = true
    /// Decode and count, send nothing (no connection).
    public var dryRun = false
    /// The connection's window and fault handling.
    public var pipeline = PipelineOptions()
    /// Bytes gathered before they are handed to the connection in one write.
    public var batchBytes = 256 << 10
    /// A key whose commands (or RESTORE) pass this many bytes is sent in parts while it is decoded, rather
    /// than whole once decoded (see `KeyParts`): the decoder and the server work at the same time, and a
    /// huge key is not held whole in memory twice. nil: `batchBytes`.
    public var keyChunkBytes: Int?
    /// Replace mode, a single server: runs of plain strings (no expiry) go as one `MSET` of at most this
    /// many keys and `stringRunBytes` bytes of keys and values instead of a `SET` each (0 or 1: a `SET`
    /// each). The server's cost per string is mostly its command dispatch.
    public var stringRunKeys = 128
    public var stringRunBytes = 256 << 10
    /// Write every key behind its guard (`DEL key` in replace mode, a temporary name otherwise), even into
    /// a database that was empty when the import began. By default a key that nothing in this import can
    /// have written before goes straight to an empty database (one command per key fewer, three in the
    /// mode without `replace`) and gets its guard only if it is resent after a reconnect; set this when
    /// other clients write to the target during the import.
    public var guardEveryKey = false
    /// Problems listed in the report (all are counted); `problemsPath` gets every one of them as JSON lines.
    public var problemLimit = 1000
    public var problemsPath: String?
    /// Seconds between progress callbacks (0: after every batch).
    public var progressInterval = 0.25
    /// Before each input after the first, wait until everything sent so far is acknowledged, so that
    /// `ImportProgress.filesAcknowledged` says which inputs are wholly in (a resumed task starts after them).
    /// Costs one drain of the pipeline per input.
    public var settleEachFile = false
    public var decoder = RDBDecoderOptions()
    public var aof = AOFOptions()
    /// Set when the input is a live replication stream (see `StreamHooks`).
    public var stream: StreamHooks?

    public init() {}

    /// The target database of a file database.
    @inlinable
    public func targetDatabase(_ db: Int) -> Int {
        databaseMap[db] ?? mergeInto ?? db
    }
}

/// A progress snapshot, given to `Importer.onProgress` on the decoding thread.
public struct ImportProgress: Sendable {
    public var file: String
    public var fileIndex: Int
    public var fileCount: Int
    /// Bytes of the current input read, and its size when known.
    public var inputOffset: Int
    public var inputSize: Int?
    public var keysRead: Int
    public var keysSent: Int
    public var keysAcknowledged: Int
    /// The leading inputs whose every key is acknowledged (known at input boundaries with
    /// `ImportOptions.settleEachFile`, else 0 until the end).
    public var filesAcknowledged = 0
    public var bytesSent: Int
    public var commandsInFlight: Int
    public var bytesInFlight: Int
    public var problems: Int
    public var seconds: Double
    /// The last call for the import.
    public var final: Bool
}
