/// What part of a persistence set a file is.
public enum AOFFileKind: String, Sendable, Hashable, CustomStringConvertible {
    /// The BASE of a multi-part AOF (an RDB, or a RESP rewrite), listed as `type b` in the manifest.
    case base
    /// An INCR file of a multi-part AOF (`type i`).
    case incr
    /// A file read on its own: a pre-7.0 single-file AOF, or one file of a set passed directly.
    case single

    public var description: String { rawValue }
}

/// The sink side of the AOF reader: the RDB events of a preamble or RDB base (inherited from
/// `RDBVisitor`), then one event per command and per annotation line.
///
/// Every method has a default that does nothing. Views (`AOFCommand`'s arguments, annotation text) are
/// valid during the call only; a sink that keeps one must copy it.
///
/// Per file: `beginAOFFile`, then for an RDB preamble or RDB base the usual RDB events (`beginFile` …
/// `endFile`), then `command` / `annotation` in file order, then `endAOFFile`. The commands of a
/// `MULTI` … `EXEC` block are delivered only once its `EXEC` has been read, so a block cut off by the end
/// of the input is never half-delivered.
public protocol AOFVisitor: RDBVisitor {
    /// A file starts. `name` is the path as opened (or the name given for an in-memory input).
    mutating func beginAOFFile(name: String, kind: AOFFileKind) throws
    /// One command, with the database it runs in. `SELECT` commands are delivered too.
    mutating func command(_ command: AOFCommand) throws
    /// A `#` line (e.g. `#TS:1700000000`, written with `aof-timestamp-enabled`): the whole line
    /// including the `#`, without its line ending. `offset` is the absolute offset of the `#`.
    mutating func annotation(_ text: RDBString, offset: Int) throws
    /// The file has been read completely (after a dropped torn tail, if any).
    mutating func endAOFFile(name: String, kind: AOFFileKind) throws

    /// A sink for the commands of the second part of a file, to be read on another thread while this one reads
    /// the first part (a large memory-mapped file: see `AOFOptions.splitMinimumBytes`); nil (the default): the
    /// sink takes the commands of a file in order, on one thread.
    ///
    /// The part's commands that run before the part's first `SELECT` carry the database `-1` (it is not known
    /// until the first part has been read); the part gets no `beginAOFFile`/`endAOFFile`. Once the first part
    /// has been read up to where the second starts, `mergeSplitPart` hands the part over; when the second part
    /// turns out not to start at a command (or cannot be used), the part is dropped and this sink reads on.
    mutating func makeSplitPart() -> Self?
    /// Takes in what `part` saw, as if its commands had come to this sink after those it has seen, the database
    /// `-1` being `dbAtStart` (the database selected where the part starts).
    mutating func mergeSplitPart(_ part: consuming Self, dbAtStart: Int) throws
    /// The commands this sink is about to be given lie between the absolute offsets `start` and `end` of the
    /// file (those of a second part read on another thread and merged in included): a hint for sizing tables
    /// by the rate at which they fill, given before the first command when the file's size is known (a
    /// memory-mapped file, after its RDB preamble if it has one), and to a split part for its own bytes.
    mutating func commandBytes(from start: Int, to end: Int)
}

extension AOFVisitor {
    public mutating func beginAOFFile(name: String, kind: AOFFileKind) throws {}
    public mutating func command(_ command: AOFCommand) throws {}
    public mutating func annotation(_ text: RDBString, offset: Int) throws {}
    public mutating func endAOFFile(name: String, kind: AOFFileKind) throws {}
    public mutating func makeSplitPart() -> Self? { nil }
    public mutating func mergeSplitPart(_ part: consuming Self, dbAtStart: Int) throws {}
    public mutating func commandBytes(from start: Int, to end: Int) {}
}

/// One command read from an AOF: borrowed views of its arguments plus where it runs and where it was read
/// (the file is the one `beginAOFFile` named: nothing here is reference-counted).
///
/// The arguments are not copied: each one is a view into the input window (or, for inline commands
/// with quoted arguments, into a reused scratch buffer) and is valid during the `command` callback only.
/// `args[0]` is the command name as written (any case); `nameEquals(_:)` compares it case-insensitively.
public struct AOFCommand {
    /// The database the command runs in (tracked from `SELECT`; every file starts in db 0, as on load).
    public let db: Int
    /// Absolute offset of the command's first byte in its file.
    public let offset: Int
    /// Size of the command in the file, in bytes (header, arguments and line endings).
    public let byteCount: Int
    /// Whether the command was written inline (a text line split like redis-cli does) instead of as RESP.
    public let isInline: Bool
    /// The arguments, `args[0]` being the command name.
    public let args: AOFArguments

    @inlinable
    public init(db: Int, offset: Int, byteCount: Int, isInline: Bool, args: AOFArguments) {
        self.db = db
        self.offset = offset
        self.byteCount = byteCount
        self.isInline = isInline
        self.args = args
    }

    /// Number of arguments, the command name included.
    @inlinable public var argumentCount: Int { args.count }

    /// The command name as written.
    @inlinable public var name: RDBString { args[0] }

    /// Argument `i` (0 is the command name).
    @inlinable public subscript(i: Int) -> RDBString { args[i] }

    /// Whether the command name equals `upper` (given in upper case, ASCII) ignoring case.
    @inlinable
    public func nameEquals(_ upper: StaticString) -> Bool {
        AOFArguments.equalsIgnoringCase(args.bytes(0), upper)
    }

    /// The command name in upper case (ASCII letters only are changed).
    public var upperName: String { AOFArguments.upper(args.bytes(0)) }

    /// A copy of every argument (for tests and sinks that keep commands).
    public var arrays: [[UInt8]] { args.map { Array($0.bytes) } }
}

/// The arguments of one command: a random-access collection of borrowed byte strings.
///
/// It stores a base pointer and a reused array of `(offset, length)` pairs owned by the reader, so
/// reading a command allocates nothing per argument.
public struct AOFArguments: RandomAccessCollection {
    @usableFromInline let base: UnsafeRawPointer?
    /// Two integers per argument: offset from `base`, and length.
    @usableFromInline let spans: UnsafeBufferPointer<Int>
    /// The length of all the arguments together (the payload of the command without its RESP framing).
    public let totalBytes: Int

    /// Arguments laid out from `base`: `spans` holds an (offset from `base`, length) pair per argument.
    @inlinable
    public init(base: UnsafeRawPointer?, spans: UnsafeBufferPointer<Int>) {
        var n = 0
        var i = 1
        while i < spans.count {
            n &+= spans[i]
            i &+= 2
        }
        self.init(base: base, spans: spans, totalBytes: n)
    }

    /// The same, with the total of the lengths known already (the reader adds them up as it reads them).
    @inlinable
    public init(base: UnsafeRawPointer?, spans: UnsafeBufferPointer<Int>, totalBytes: Int) {
        self.base = base
        self.spans = spans
        self.totalBytes = totalBytes
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { spans.count >> 1 }

    @inlinable
    public subscript(i: Int) -> RDBString {
        RDBString(bytes: bytes(i))
    }

    /// The raw bytes of argument `i`.
    @inlinable @inline(__always)
    public func bytes(_ i: Int) -> UnsafeRawBufferPointer {
        precondition(i >= 0 && i < endIndex, "argument index out of range")
        let o = spans[i &<< 1]
        let n = spans[(i &<< 1) &+ 1]
        return UnsafeRawBufferPointer(start: base.map { $0 + o }, count: n)
    }

    @inlinable
    public static func equalsIgnoringCase(_ b: UnsafeRawBufferPointer, _ upper: StaticString) -> Bool {
        let n = upper.utf8CodeUnitCount
        guard b.count == n else { return false }
        let u = upper.utf8Start
        for i in 0..<n {
            var c = b[i]
            if c >= 0x61 && c <= 0x7A { c &-= 0x20 }
            if c != u[i] { return false }
        }
        return true
    }

    /// Upper-cases a command name; names up to 15 bytes become small strings (no heap allocation).
    static func upper(_ b: UnsafeRawBufferPointer) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Swift.max(b.count, 1)) { tmp in
            for i in 0..<b.count {
                let c = b[i]
                tmp[i] = (c >= 0x61 && c <= 0x7A) ? c &- 0x20 : c
            }
            return String(decoding: UnsafeBufferPointer(rebasing: tmp[0..<b.count]), as: UTF8.self)
        }
    }
}
