import RDBKit

/// What `--salvage` lost: keys whose value was corrupt, and the byte range where decoding stopped.
final class SalvageLog {
    struct LostKey {
        let file: String
        let key: [UInt8]
        let db: Int
        let range: Range<Int>
        let error: RDBError
    }
    var lostKeys: [LostKey] = []
    var stopped: [(file: String, from: Int, to: Int?, error: RDBError)] = []
    var checksumMismatches: [String] = []
    /// Files with bytes after the RDB's checksum that a format reading RDB only did not read.
    var trailing: [(file: String, offset: Int)] = []

    var isClean: Bool { lostKeys.isEmpty && stopped.isEmpty && checksumMismatches.isEmpty && trailing.isEmpty }

    /// The end-of-run report, on stderr.
    func report() {
        guard !isClean else { return }
        for t in trailing {
            writeStderr("rdbcat: \(t.file): bytes after the end of the RDB (from offset \(t.offset)) were not read; use --format jsonl or resp if they are AOF commands\n")
        }
        if lostKeys.isEmpty && stopped.isEmpty && checksumMismatches.isEmpty { return }
        writeStderr("rdbcat: salvage report: \(lostKeys.count) key(s) lost, \(stopped.count) file(s) cut short\n")
        for k in lostKeys {
            writeStderr("  lost key \(RDBError.printable(k.key)) (db \(k.db)) in \(k.file), bytes \(k.range.lowerBound)..<\(k.range.upperBound): \(k.error.code): \(k.error.message)\n")
        }
        for s in stopped {
            let size = s.to.map { " of \($0)" } ?? ""
            writeStderr("  \(s.file): decoding stopped at offset \(s.from)\(size): the key in progress and everything after it are lost: \(s.error)\n")
        }
        for f in checksumMismatches { writeStderr("  \(f): CRC64 trailer does not match the content\n") }
    }
}

/// Records keys the decoder gave up on (salvage mode) and forwards everything else.
struct SalvageVisitor<Inner: RDBVisitor>: RDBForwardingVisitor {
    var inner: Inner
    let log: SalvageLog
    let file: String

    mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws {
        log.lostKeys.append(.init(file: file, key: key.array, db: info.db, range: lostRange, error: error))
        try inner.abortKey(key, info, error: error, lostRange: lostRange)
    }

    mutating func endFile(checksum: RDBChecksumStatus) throws {
        if case .mismatch = checksum { log.checksumMismatches.append(file) }
        try inner.endFile(checksum: checksum)
    }
}
