import RDBKit

/// The one way inputs are decoded: told apart by `OpenedInput` (RDB, AOF, manifest, appendonlydir, any of
/// them zstd-compressed), then read by the reader that fits, with the salvage log and progress wrapped
/// around the RDB part. The CLI, the importer and the migration runner all decode through it.
///
/// - An RDB (or an AOF with an RDB preamble) goes through `RDBReader` (with `SalvageVisitor` and
///   `ProgressVisitor` around the sink); commands after it, if any, through `AOFReader` from there.
/// - An AOF, a manifest or a folder goes through `AOFReader`.
public struct DecodeDriver {
    public var rdb: RDBDecoderOptions
    /// AOF options; their `rdb` is replaced by `rdb`.
    public var aof: AOFOptions
    /// What salvage lost (and checksum mismatches, and unread bytes after an RDB).
    public let log: SalvageLog
    /// Receives progress lines of RDB inputs; nil: no progress.
    public var progress: ((String) -> Void)?
    /// Called when a salvage decode stops inside a file, before the next file starts (the sink's output of
    /// the key in progress is to be dropped).
    public var onStopped: (() -> Void)?

    public init(rdb: RDBDecoderOptions = .init(), aof: AOFOptions = .init(), log: SalvageLog = SalvageLog()) {
        self.rdb = rdb
        self.aof = aof
        self.log = log
    }

    /// An input of a kind the sink cannot take (a reader of RDB events given an AOF).
    public struct WrongKind: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let kind: InputKind
        public var description: String { "\(path): not an RDB file (\(kind))" }
        public init(path: String, kind: InputKind) {
            self.path = path
            self.kind = kind
        }
    }

    /// Threads that decode a memory-mapped RDB of at least `parallelMinimumBytes` into a sink that can be
    /// split (`ChunkableSink`: RESP, RESTORE, JSONL), in chunks of about `chunkBytes`; 1 = one thread.
    /// Salvage decodes on one thread.
    public var threads = 1
    public var chunkBytes = ParallelDecode<JSONLWriter>.defaultChunkBytes
    public var parallelMinimumBytes = 2 << 20
    /// The least bytes of commands an AOF file has for it to be read in two parts (`AOFOptions.splitMinimumBytes`),
    /// when `threads` > 1.
    public static let splitMinimumBytes = 8 << 20
    /// Counts what the parallel decodes did (chunks, large values split, their pieces), when set.
    public var parallelStatistics: ParallelStatistics?

    /// Opens the paths it knows (objects in a bucket) before they are taken for local files.
    public var opener: InputOpener?

    /// Opens `path` with this driver's record limit (through `opener` first, when there is one).
    public func open(_ path: String) throws -> OpenedInput {
        if let opener, let opened = try opener(path, rdb.maxRecordBytes) { return opened }
        return try OpenedInput.open(path: path, limit: rdb.maxRecordBytes)
    }

    /// Decodes the inputs in order into a sink of RDB events only; anything but an RDB throws `WrongKind`.
    @inlinable
    public func decodeRDB<V: RDBVisitor>(paths: [String], into sink: inout V) throws {
        for path in paths { try decodeRDB(try open(path), into: &sink, rdbPart: decodeRDBPart) }
    }

    /// The same, for a sink that can be split across threads (see `threads`).
    @inlinable
    public func decodeRDB<V: ChunkableSink>(paths: [String], into sink: inout V) throws {
        for path in paths { try decodeRDB(try open(path), into: &sink, rdbPart: decodeRDBPartInParallel) }
    }

    /// Decodes the inputs in order into a sink that takes AOF commands too. Returns the AOF reader's
    /// warnings (a dropped torn tail), each naming its file.
    @inlinable @discardableResult
    public func decode<V: AOFVisitor>(paths: [String], into sink: inout V) throws -> [String] {
        var warnings: [String] = []
        for path in paths { warnings += try decode(try open(path), into: &sink, rdbPart: decodeRDBPart) }
        return warnings
    }

    /// The same, for a sink that can be split across threads (see `threads`).
    @inlinable @discardableResult
    public func decode<V: AOFVisitor & ChunkableSink>(paths: [String], into sink: inout V) throws -> [String] {
        var warnings: [String] = []
        for path in paths { warnings += try decode(try open(path), into: &sink, rdbPart: decodeRDBPartInParallel) }
        return warnings
    }

    /// Decodes one RDB input; bytes after the RDB are recorded in `log.trailing`.
    @inlinable
    public func decodeRDB<V: RDBVisitor>(_ opened: OpenedInput, into sink: inout V) throws {
        try decodeRDB(opened, into: &sink, rdbPart: decodeRDBPart)
    }

    /// Decodes one input of any kind.
    @inlinable @discardableResult
    public func decode<V: AOFVisitor>(_ opened: OpenedInput, into sink: inout V) throws -> [String] {
        try decode(opened, into: &sink, rdbPart: decodeRDBPart)
    }

    @inlinable
    func decodeRDB<V: RDBVisitor>(_ opened: OpenedInput, into sink: inout V, rdbPart: RDBPart<V>) throws {
        guard opened.kind == .rdb, let input = opened.input else { throw WrongKind(path: opened.path, kind: opened.kind) }
        guard try rdbPart(input, opened.path, opened.uncompressedSize, &sink) else { return }
        if try input.fill(atLeast: 1) { log.trailing.append((opened.path, input.offset)) }
    }

    @inlinable
    func decode<V: AOFVisitor>(_ opened: OpenedInput, into sink: inout V, rdbPart: RDBPart<V>) throws -> [String] {
        var aof = self.aof
        aof.rdb = rdb
        // A large mapped AOF in two parts on two threads, for the sinks that take parts (without salvage,
        // which reads on one thread).
        if threads > 1 && !rdb.salvage && aof.splitMinimumBytes == 0 { aof.splitMinimumBytes = Self.splitMinimumBytes }
        switch opened.kind {
        case .aofDirectory, .aofManifest:
            if opened.path == "-" {
                throw RDBError(.aofFormat, offset: 0, "a manifest cannot be read from standard input (it names its files relative to its folder): give its path", file: "-")
            }
            return try AOFReader.decode(path: opened.path, into: &sink, options: aof).warnings
        case .aof:
            guard let input = opened.input else { return [] }
            return try AOFReader.decode(input, name: opened.path, into: &sink, options: aof).warnings
        case .rdb:
            guard let input = opened.input, try rdbPart(input, opened.path, opened.uncompressedSize, &sink) else { return [] }
            // An AOF with an RDB preamble: its commands, read from where the RDB ended.
            guard try input.fill(atLeast: 1) else { return [] }
            return try AOFReader.decode(input, name: opened.path, into: &sink, options: aof).warnings
        }
    }

    /// How the RDB part of an input is decoded: (input, path, uncompressed size, sink) -> whether it was
    /// read to its end (false: a salvage decode stopped inside it).
    public typealias RDBPart<V> = (InputBuffer, String, Int?, inout V) throws -> Bool

    /// A mapped RDB that is large enough, or a streamed one (of a size not known up front), without
    /// salvage: on `threads` threads (the output is the same; progress is reported as chunks are cut);
    /// otherwise as `decodeRDBPart`.
    @inlinable
    func decodeRDBPartInParallel<V: ChunkableSink>(_ input: InputBuffer, path: String, total: Int?, into sink: inout V) throws -> Bool {
        guard threads > 1 && !rdb.salvage && (input.isStreaming || input.window.count >= parallelMinimumBytes),
              sink.output.target != nil else {
            return try decodeRDBPart(input, path: path, total: total, into: &sink)
        }
        let reporter = progress.map { ProgressReporter(input: input, total: total, enabled: true, write: $0) }
        _ = try sink.decodeInParallel(input, options: rdb, threads: threads, chunkBytes: chunkBytes, progress: reporter,
                                    statistics: parallelStatistics)
        reporter?.report(final: true)
        return true
    }

    /// The RDB at the input's position, with salvage and progress around the sink. Returns false when a
    /// salvage decode stopped inside it (recorded in the log).
    @inlinable
    func decodeRDBPart<V: RDBVisitor>(_ input: InputBuffer, path: String, total: Int?, into sink: inout V) throws -> Bool {
        let reporter = ProgressReporter(input: input, total: total, enabled: progress != nil, write: progress ?? { _ in })
        var wrapped = SalvageVisitor(inner: ProgressVisitor(inner: sink, progress: reporter), log: log, file: path)
        defer { sink = wrapped.inner.inner }
        do {
            _ = try RDBReader.decode(input, into: &wrapped, options: rdb)
            return true
        } catch let e as RDBError where rdb.salvage {
            onStopped?()
            log.stopped.append(.init(file: path, from: e.offset, to: total, error: e))
            return false
        }
    }
}
