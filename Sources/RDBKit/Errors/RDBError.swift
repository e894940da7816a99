/// The one error type of the decoders.
///
/// Every error names what went wrong (`code` and a sentence), where (the absolute byte offset in the
/// input, and the file when several files are read in sequence) and, when a key was being decoded,
/// which key. Factories are `@inline(never)` so the cold path stays out of the hot loops.
public struct RDBError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is. Opaque so new codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        @usableFromInline let raw: UInt8
        @usableFromInline init(_ raw: UInt8) { self.raw = raw }

        /// The input ended in the middle of a record.
        public static let truncated = Code(1)
        /// The first bytes are not an RDB header.
        public static let badMagic = Code(2)
        /// The RDB version is unknown to this decoder (newer, or outside its family's range).
        public static let unsupportedVersion = Code(3)
        /// A byte in type/opcode position is neither a known type nor a known opcode.
        public static let unknownType = Code(4)
        /// A length or count is impossible (bigger than what can remain, or over a limit).
        public static let invalidLength = Code(5)
        /// An embedded structure (ziplist, listpack, intset, zipmap, stream node) is corrupt.
        public static let corruptEncoding = Code(6)
        /// LZF data does not decompress to its declared length.
        public static let lzf = Code(7)
        /// The CRC64 trailer does not match the content.
        public static let checksumMismatch = Code(8)
        /// A value is over a configured limit (`RDBDecoderOptions`).
        public static let limitExceeded = Code(9)
        /// A value is structurally valid but its content is not (e.g. an invalid string encoding byte).
        public static let invalidValue = Code(10)
        /// Bytes follow the end of the RDB where none are allowed.
        public static let trailingData = Code(11)
        /// Reading the underlying file or stream failed.
        public static let io = Code(12)
        /// An AOF command or manifest is malformed.
        public static let aofFormat = Code(13)

        public var description: String {
            switch raw {
            case 1: "truncated"
            case 2: "bad-magic"
            case 3: "unsupported-version"
            case 4: "unknown-type-or-opcode"
            case 5: "invalid-length"
            case 6: "corrupt-encoding"
            case 7: "lzf"
            case 8: "checksum"
            case 9: "limit-exceeded"
            case 10: "invalid-value"
            case 11: "trailing-data"
            case 12: "io"
            case 13: "aof-format"
            default: "error-\(raw)"
            }
        }
    }

    public var code: Code
    /// Absolute byte offset in the input where the problem was found.
    public var offset: Int
    /// What was expected or found, as a sentence.
    public var message: String
    /// The key being decoded, when the error happened inside a key (raw bytes).
    public var key: [UInt8]?
    /// The file, when known (set by the readers that open files).
    public var file: String?
    /// For `.truncated`: how many bytes the record needs from `offset` on, when known (a length or count
    /// times the smallest item). The streaming reader uses it to refuse a record that cannot fit its limit
    /// before buffering anything.
    public var bytesNeeded: Int?

    public init(_ code: Code, offset: Int, _ message: String, key: [UInt8]? = nil, file: String? = nil) {
        self.code = code
        self.offset = offset
        self.message = message
        self.key = key
        self.file = file
    }

    public var description: String {
        var s = ""
        if let file { s += "\(file): " }
        s += "offset \(offset): \(code): \(message)"
        if let key { s += " (key \(RDBError.printable(key)))" }
        return s
    }

    /// A key rendered for humans: printable ASCII as is, other bytes as `\xHH`, cut at 200 bytes.
    public static func printable(_ bytes: [UInt8]) -> String {
        var out = "\""
        for b in bytes.prefix(200) {
            switch b {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = String(b, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        if bytes.count > 200 { out += "..." }
        return out + "\""
    }

    // MARK: cold factories

    @inline(never) @usableFromInline
    static func truncated(at offset: Int, need: Int, have: Int, what: StaticString) -> RDBError {
        var e = RDBError(.truncated, offset: offset, "input ends while reading \(what): need \(need) bytes, \(have) left")
        e.bytesNeeded = need
        return e
    }

    @inline(never) @usableFromInline
    static func invalidLength(at offset: Int, _ length: UInt64, what: StaticString, limit: Int) -> RDBError {
        RDBError(.invalidLength, offset: offset, "\(what) of \(length) is impossible here (at most \(limit))")
    }

    /// A count that cannot fit in the bytes left. Coded `truncated`: in a streamed input, more bytes may come.
    @inline(never) @usableFromInline
    static func countExceedsInput(at offset: Int, _ count: UInt64, what: StaticString, remaining: Int, minItemSize: Int = 1) -> RDBError {
        var e = RDBError(.truncated, offset: offset, "\(what) claims \(count) items but only \(remaining) bytes remain")
        let (n, overflow) = count.multipliedReportingOverflow(by: UInt64(max(minItemSize, 1)))
        e.bytesNeeded = overflow || n > UInt64(Int.max) ? Int.max : Int(n)
        return e
    }

    @inline(never) @usableFromInline
    static func corrupt(at offset: Int, _ what: StaticString, _ detail: String = "") -> RDBError {
        RDBError(.corruptEncoding, offset: offset, detail.isEmpty ? "\(what)" : "\(what): \(detail)")
    }

    @inline(never) @usableFromInline
    static func invalid(at offset: Int, _ message: String) -> RDBError {
        RDBError(.invalidValue, offset: offset, message)
    }
}
