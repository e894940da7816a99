#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Limits and policies of the AOF reader.
public struct AOFOptions: Sendable {
    /// Make a torn tail (the input ends inside the last command, or inside an unterminated `MULTI` block)
    /// an error instead of dropping it with a warning.
    public var strict = false
    /// Largest argument count a command may claim (checked before anything is allocated).
    public var maxArguments = 1 << 20
    /// Largest bulk string length a command may claim (the server's `proto-max-bulk-len` default).
    public var maxBulkBytes = 512 << 20
    /// Longest `#` annotation line, line ending included (the server's `AOF_ANNOTATION_LINE_MAX_LEN`).
    public var maxAnnotationBytes = 1024
    /// Accept inline commands (a text line such as `SET k v`, split like redis-cli does). The server's
    /// AOF loader accepts only RESP arrays; hand-written files often use the inline form.
    public var allowInline = true
    /// Longest inline command line, line ending included (the server's `PROTO_INLINE_MAX_SIZE`).
    public var maxInlineBytes = 64 << 10
    /// Most files (BASE, HISTORY and INCR lines) a manifest may list.
    public var maxManifestFiles = 1000
    /// Options for RDB preambles and RDB BASE files.
    public var rdb = RDBDecoderOptions()
    /// A memory-mapped file with at least this many bytes of commands is read in two parts on two threads
    /// when the sink can take a part apart and merge it (`AOFVisitor.makeSplitPart`) and a second core is
    /// there; 0: never (the default).
    public var splitMinimumBytes = 0
    /// The bytes of each piece what the other thread reads is cut in (the part after the middle of a file, the
    /// files after the middle of a set), so that the thread that would wait can take the last ones; nil: a
    /// quarter of `splitMinimumBytes`. At least 4 KiB, and a file is cut in at most 64 pieces.
    public var splitPieceBytes: Int?

    /// `splitPieceBytes`, or its default.
    @inlinable
    var pieceBytes: Int { max(splitPieceBytes ?? splitMinimumBytes / 4, 4096) }

    public init() {}
}

/// What reading one file found.
public struct AOFFileSummary: Sendable {
    /// The file name as opened.
    public var name: String
    public var kind: AOFFileKind
    /// The RDB preamble (or RDB BASE) of the file, if it starts with one.
    public var rdb: RDBSummary?
    /// Commands delivered (SELECT, MULTI and EXEC included).
    public var commands: Int
    public var annotations: Int
    /// Absolute offset where the file's valid content ends (its size, unless a torn tail was dropped).
    public var validBytes: Int
    /// Where a torn tail that was dropped starts.
    public var droppedTailOffset: Int?
    /// Bytes dropped with the torn tail.
    public var droppedTailBytes: Int

    public init(name: String, kind: AOFFileKind) {
        self.name = name
        self.kind = kind
        rdb = nil
        commands = 0
        annotations = 0
        validBytes = 0
        droppedTailOffset = nil
        droppedTailBytes = 0
    }
}

/// What a finished AOF decode found.
public struct AOFSummary: Sendable {
    /// The files in the order they were read.
    public var files: [AOFFileSummary] = []
    /// Problems that did not stop the decode (a dropped torn tail), each naming the file and byte offset.
    public var warnings: [String] = []
    /// The manifest, when the input was a multi-part AOF.
    public var manifest: AOFManifest?

    public init() {}

    public var commands: Int { files.reduce(0) { $0 + $1.commands } }
    public var annotations: Int { files.reduce(0) { $0 + $1.annotations } }
}

/// Reads AOF files: an optional RDB preamble (through `RDBReader`), then a stream of RESP commands.
///
/// The same code reads memory-mapped files (the window is the whole file and every argument view points
/// into the map) and streams (the window is refilled until a whole command, or a whole `MULTI` block, is in
/// it; it grows only as far as the input's `limit`).
///
/// A command is delivered once it has been read completely, and the commands of a `MULTI` … `EXEC` block
/// only once its `EXEC` has been read. At the end of the input, an incomplete last command or an
/// unterminated `MULTI` block is a torn tail: like the server with `aof-load-truncated yes`, it is dropped
/// with a warning (`AOFSummary.warnings`), unless `strict` is set or more files follow, which makes it a
/// `.truncated` error. Any other malformed byte is an `.aofFormat` error whose offset is the start of the
/// command it belongs to (what `redis-check-aof` reports as "ok up to"); the message names the exact byte.
public enum AOFReader {
    /// Decodes one AOF file from the input's current position.
    ///
    /// - Parameters:
    ///   - name: the name used in events, warnings and errors (default: the input's name, or "-").
    ///   - isLast: whether this is the last file of its set (only the last one may have a torn tail).
    @inlinable
    public static func decode<V: AOFVisitor>(
        _ input: InputBuffer, name: String? = nil, kind: AOFFileKind = .single, isLast: Bool = true,
        into visitor: inout V, options: AOFOptions = .init()
    ) throws -> AOFSummary {
        var summary = AOFSummary()
        let file = try decodeFile(input, name: name ?? input.name ?? "-", kind: kind, isLast: isLast,
                                  into: &visitor, options: options, warnings: &summary.warnings)
        summary.files.append(file)
        return summary
    }

    /// Decodes an AOF held in memory.
    @inlinable
    public static func decode<V: AOFVisitor>(
        bytes: [UInt8], name: String = "-", into visitor: inout V, options: AOFOptions = .init()
    ) throws -> AOFSummary {
        try bytes.withUnsafeBytes { raw in
            try decode(InputBuffer(region: raw, name: name), name: name, into: &visitor, options: options)
        }
    }

    /// Decodes one file: detects an RDB preamble, then reads the commands.
    ///
    /// Inlinable, with the entry points above, so that the RDB part (a preamble, an RDB BASE, or a whole
    /// RDB file read as an AOF) is specialised for the caller's visitor like `RDBReader.decode`; the RESP
    /// tokenizer is generic (one visitor call per command).
    ///
    /// `planned`: the second part of the file, already being read (see `AOFReadAhead`); `mayReadInTwoParts`:
    /// whether the file may be read in two parts otherwise (not while the other core reads ahead); `moreBytes`:
    /// the bytes of later files whose commands will be merged into the sink after this file's (read ahead).
    @inlinable
    static func decodeFile<V: AOFVisitor>(
        _ input: InputBuffer, name: String, kind: AOFFileKind, isLast: Bool,
        into visitor: inout V, options: AOFOptions, warnings: inout [String],
        planned: AOFSplit<V>? = nil, mayReadInTwoParts: Bool = true, moreBytes: Int = 0
    ) throws -> AOFFileSummary {
        if input.name == nil { input.name = name }
        var summary = AOFFileSummary(name: name, kind: kind)
        try inFile(name) {
            try visitor.beginAOFFile(name: name, kind: kind)
            try input.fill(atLeast: 6)
            if InputKind.startsWithRDBMagic(input.window) {
                summary.rdb = try RDBReader.decode(input, into: &visitor, options: options.rdb)
            }
            var tokenizer = AOFTokenizer(options: options, file: name)
            if !input.isStreaming { visitor.commandBytes(from: input.offset, to: input.offset &+ input.window.count &+ moreBytes) }
            let split = planned ?? (mayReadInTwoParts ? splitting(input, into: &visitor, options: options, name: name, kind: kind, isLast: isLast) : nil)
            // A split of its own: its thread ends with the file. A planned one: the thread reads on, and this
            // thread, waiting for the later pieces, reads the last ones (its owner ends it).
            defer { if planned == nil { split?.finish() } else { split?.join() } }
            try tokenizer.run(input, isLast: isLast, into: &visitor, summary: &summary, warnings: &warnings, split: split)
            try visitor.endAOFFile(name: name, kind: kind)
        }
        return summary
    }

    /// Runs `body`; an `RDBError` it throws that names no file is given `name`.
    @inlinable
    static func inFile<T>(_ name: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var e as RDBError {
            if e.file == nil { e.file = name }
            throw e
        }
    }

    /// The second part of the file's commands, being read on another thread, when the file is large enough,
    /// mapped, and the sink takes parts (see `AOFOptions.splitMinimumBytes`).
    @inlinable
    static func splitting<V: AOFVisitor>(
        _ input: InputBuffer, into visitor: inout V, options: AOFOptions, name: String, kind: AOFFileKind, isLast: Bool
    ) -> AOFSplit<V>? {
        guard options.splitMinimumBytes > 0, !input.isStreaming, input.window.count >= options.splitMinimumBytes,
              availableCores() > 1, let at = AOFSplit<V>.splitPoint(input.window), let part = visitor.makeSplitPart()
        else { return nil }
        // Two decoders' pages are resident together: each gives them back twice as often.
        input.releaseEvery(InputBuffer.releaseStep / 2)
        // The part in pieces, which the other thread reads on through while this one is busy; this one, when it
        // would wait for the other, reads the last pieces nobody has taken (`AOFPartReader.wait`). The two threads
        // then finish within a piece of each other, however fast each goes (read in two halves, either thread
        // waited for the other by up to 40% of its own time, which one at random).
        guard let pieces = AOFSplit.cut(input, from: at, first: part, atFileStart: false, options: options, name: name, kind: kind,
                                        isLast: isLast, makePart: { visitor.makeSplitPart() })
        else { return nil }
        let split = pieces[0]
        split.followers = Array(pieces.dropFirst())
        return AOFPartReader.start(pieces) != nil ? split : nil
    }
}
