import RDBKit

/// What a decode with `RDBDecoderOptions.salvage` lost: keys whose value was corrupt, where decoding of a file
/// stopped, checksum mismatches, and bytes after an RDB that a reader of RDB only left unread.
public final class SalvageLog {
    public struct LostKey: Sendable {
        public let file: String
        public let key: [UInt8]
        public let db: Int
        public let range: Range<Int>
        public let error: RDBError
    }
    public struct Stopped: Sendable {
        public let file: String
        public let from: Int
        /// The size of the input, when known.
        public let to: Int?
        public let error: RDBError
        public init(file: String, from: Int, to: Int?, error: RDBError) {
            self.file = file
            self.from = from
            self.to = to
            self.error = error
        }
    }
    public var lostKeys: [LostKey] = []
    public var stopped: [Stopped] = []
    public var checksumMismatches: [String] = []
    /// Files with bytes after the RDB's checksum that a format reading RDB only did not read.
    public var trailing: [(file: String, offset: Int)] = []

    public init() {}

    public var isClean: Bool { lostKeys.isEmpty && stopped.isEmpty && checksumMismatches.isEmpty && trailing.isEmpty }

    /// The end-of-run report as lines (each ending in a newline); none when nothing was lost.
    /// `tool` prefixes the lines that stand alone (`rdbcat: …`).
    public func reportLines(tool: String = "rdbcat") -> [String] {
        guard !isClean else { return [] }
        var lines: [String] = []
        for t in trailing {
            lines.append("\(tool): \(t.file): bytes after the end of the RDB (from offset \(t.offset)) were not read; use --format jsonl or resp if they are AOF commands\n")
        }
        if lostKeys.isEmpty && stopped.isEmpty && checksumMismatches.isEmpty { return lines }
        lines.append("\(tool): salvage report: \(lostKeys.count) key(s) lost, \(stopped.count) file(s) cut short\n")
        for k in lostKeys {
            lines.append("  lost key \(RDBError.printable(k.key)) (db \(k.db)) in \(k.file), bytes \(k.range.lowerBound)..<\(k.range.upperBound): \(k.error.code): \(k.error.message)\n")
        }
        for s in stopped {
            let size = s.to.map { " of \($0)" } ?? ""
            lines.append("  \(s.file): decoding stopped at offset \(s.from)\(size): the key in progress and everything after it are lost: \(s.error)\n")
        }
        for f in checksumMismatches { lines.append("  \(f): CRC64 trailer does not match the content\n") }
        return lines
    }
}

/// Records keys the decoder gave up on (salvage mode) and checksum mismatches; forwards everything.
public struct SalvageVisitor<Inner: RDBVisitor>: RDBForwardingVisitor {
    public var inner: Inner
    public let log: SalvageLog
    public let file: String

    public init(inner: Inner, log: SalvageLog, file: String) {
        self.inner = inner
        self.log = log
        self.file = file
    }

    @inlinable public var stringDelivery: RDBStringDelivery { inner.stringDelivery }
    @inlinable
    public mutating func stringKey(_ key: RDBString, _ info: RDBKeyInfo, value: RDBString, raw: UnsafeRawBufferPointer) throws {
        try inner.stringKey(key, info, value: value, raw: raw)
    }

    public mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws {
        log.lostKeys.append(.init(file: file, key: key.array, db: info.db, range: lostRange, error: error))
        try inner.abortKey(key, info, error: error, lostRange: lostRange)
    }

    public mutating func endFile(checksum: RDBChecksumStatus) throws {
        if case .mismatch = checksum { log.checksumMismatches.append(file) }
        try inner.endFile(checksum: checksum)
    }
}
