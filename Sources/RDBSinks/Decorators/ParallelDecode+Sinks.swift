import RDBKit

// The sinks `rdbcat` decodes into in parallel (resp, restore, jsonl, memory): what a chunk's sink starts from, what
// is folded back, and what a chunk decoded from a wrong guess takes back (all four are cut by sync on files of small
// records). (Not keys and stats: their work per key is lighter than measuring the record for the
// split. The memory report does not take values in pieces: its work per element is lighter than measuring the
// element for the cut, measured on huge-aggregates.rdb.)

/// How a sink's reports meet a chunk's: `absorb` adds those of a chunk written after it; `dropRecords` takes back
/// those of the records before a snapshot (they came first: the lists lose their first entries). A sink lists its
/// reports once (`foldReports`) for both, so that a report added to one is added to the other.
@usableFromInline
enum ReportFold {
    case add, dropLeading

    @inlinable
    func callAsFunction(_ a: inout Int, _ b: Int) { a += self == .add ? b : -b }

    @inlinable
    func callAsFunction<T>(_ a: inout [T], _ b: [T]) {
        if self == .add { a += b } else { a.removeFirst(b.count) }
    }
}

extension RESPEncoder where Output == OutputBuffer {
    /// Writes `SELECT db`; when it is the first thing the buffer ever held, notes its database and size
    /// (a chunk's leading SELECT, see `ChunkableSink.leadingSelect`).
    mutating func select(_ db: Int, noting lead: inout (db: Int, bytes: Int)?) {
        let before = out.totalBytes
        select(db)
        if before == 0 { lead = (db, out.totalBytes) }
    }
}

extension RESPWriter: ChunkableSink {
    public var output: OutputBuffer { out }

    public func chunkSink(out: OutputBuffer) -> RESPWriter { chunkSink(out: out, pieceIndex: nil) }

    func chunkSink(out: OutputBuffer, pieceIndex: OutputBuffer?) -> RESPWriter {
        var w = RESPWriter(out: out, options: options, pieceIndex: pieceIndex)
        w.target = target
        w.keyPrefix = keyPrefix
        return w
    }

    /// Every report of this sink (see `ReportFold`).
    mutating func foldReports(_ other: RESPWriter, _ fold: ReportFold) {
        fold(&skippedKeys, other.skippedKeys)
        fold(&lossyKeys, other.lossyKeys)
        fold(&skippedLibraries, other.skippedLibraries)
        fold(&keysWritten, other.keysWritten)
        fold(&commandsWritten, other.commandsWritten)
    }

    public mutating func absorb(_ chunk: RESPWriter) {
        foldReports(chunk, .add)
        // A leading SELECT of the database the target was in was left out of the output.
        if let lead = chunk.leadingSelect, lead.db == committedDB { commandsWritten -= 1 }
        if let db = chunk.committedDB { committedDB = db }
    }

    public var selectedDatabase: Int? { committedDB }

    public var cutsBySync: Bool { true }

    public mutating func dropRecords(before snapshot: RESPWriter) {
        foldReports(snapshot, .dropLeading)
        if snapshot.leadingSelect != nil { leadingSelect = nil }  // it is in the output dropped
    }

    /// Every value of element framing: lists, sets, sorted sets, and hashes without field TTLs.
    public func splitsValue(_ type: RDBValueType) -> Bool { RDBParser.hasElementFraming(type.encoding) }

    public func pieceSink(out: OutputBuffer, scratch: OutputBuffer) -> RESPWriter {
        chunkSink(out: out, pieceIndex: scratch)
    }

    /// Each element of the piece opens or fills a command as `element` decides, then its arguments are
    /// copied as the piece encoded them.
    public mutating func absorbPiece(_ piece: RESPWriter) throws {
        guard let info else { return }
        // The command and arguments per element of `listElement`, `setMember`, `zsetMember` and `hashField`.
        let command: StaticString
        let args: Int
        switch info.kind {
        case .list: (command, args) = ("RPUSH", 1)
        case .set: (command, args) = ("SADD", 1)
        case .zset: (command, args) = ("ZADD", 2)
        case .hash: (command, args) = ("HSET", 2)
        default: preconditionFailure("absorbPiece: a \(info.kind) value is not split")
        }
        guard piece.isPiece else { return }
        let index = piece.pieceIndex.words
        let bytes = piece.out.bytes
        let n = index.count / 2
        @inline(__always) func start(_ k: Int) -> Int { index[2 &* k] }
        @inline(__always) func size(_ k: Int) -> Int { index[2 &* k &+ 1] }
        @inline(__always) func end(_ k: Int) -> Int { k &+ 1 < n ? start(k &+ 1) : bytes.count }
        var k = 0
        while k < n {
            // The element opens a command or joins the open one, as `element` decides; the elements after
            // it that join the same command (the test `element` makes) are copied with it in one run.
            try element(command, argsPerElement: args, size: size(k))
            var commandBytes = enc.commandBytes &+ (end(k) &- start(k))
            var elements = chunkElements
            var j = k &+ 1
            while j < n && elements < maxElements && commandBytes &+ size(j) <= maxBytes {
                commandBytes &+= end(j) &- start(j)
                elements &+= 1
                j &+= 1
            }
            chunkElements = elements
            enc.append(encoded: UnsafeRawBufferPointer(rebasing: bytes[start(k)..<end(j &- 1)]), arguments: args &* (j &- k))
            k = j
        }
        if info.kind == .zset {
            zsetLongest = max(zsetLongest, piece.zsetLongest)
            let base = negativeZeros.pendingCount
            negativeZeros.append(piece.negativeZeros.bytes)
            for e in piece.negativeZeroEnds { negativeZeroEnds.append(base + e) }
        }
        if let l = piece.lossy { lossy = l }
    }
}

extension RestoreWriter: ChunkableSink {
    public var output: OutputBuffer { out }

    public func chunkSink(out: OutputBuffer) -> RestoreWriter {
        var w = RestoreWriter(out: out, options: options)
        w.target = target
        w.commands = commands.chunkSink(out: out)
        return w
    }

    /// Every report of this sink but those of `commands`, the writer of the keys written as commands (see `ReportFold`).
    mutating func foldReports(_ other: RestoreWriter, _ fold: ReportFold) {
        fold(&ownSkipped, other.ownSkipped)
        fold(&ownLossy, other.ownLossy)
        fold(&stats.passedThrough, other.stats.passedThrough)
        fold(&stats.reencoded, other.stats.reencoded)
        fold(&stats.asCommands, other.stats.asCommands)
        fold(&stats.skipped, other.stats.skipped)
    }

    public mutating func absorb(_ chunk: RestoreWriter) {
        foldReports(chunk, .add)
        commands.absorb(chunk.commands)
        if let db = chunk.committedDB { committedDB = db }
    }

    public var selectedDatabase: Int? { committedDB }

    public var cutsBySync: Bool { true }

    public mutating func dropRecords(before snapshot: RestoreWriter) {
        foldReports(snapshot, .dropLeading)
        commands.dropRecords(before: snapshot.commands)
        if snapshot.leadingSelect != nil { leadingSelect = nil }
    }
}

extension JSONLWriter: ChunkableSink {
    public var output: OutputBuffer { out }

    public func chunkSink(out: OutputBuffer) -> JSONLWriter {
        JSONLWriter(out: out, binary: binary, includeMetadata: includeMetadata)
    }

    public mutating func absorb(_ chunk: JSONLWriter) {}

    public var cutsBySync: Bool { true }
    /// (No reports: each key's line is its own.)
    public mutating func dropRecords(before snapshot: JSONLWriter) {}

    /// Every value of element framing: lists, sets, sorted sets, and hashes without field TTLs.
    public func splitsValue(_ type: RDBValueType) -> Bool { RDBParser.hasElementFraming(type.encoding) }

    public func pieceSink(out: OutputBuffer, scratch: OutputBuffer) -> JSONLWriter { chunkSink(out: out) }

    /// The piece's elements, comma-separated already, after a comma when elements came before.
    public mutating func absorbPiece(_ piece: JSONLWriter) throws {
        guard !piece.first else { return }  // no element
        if !first {
            try out.flushWithinKeyIfNeeded()
            out.append(UInt8(ascii: ","))
        }
        first = false
        let start = out.pendingCount
        out.append(piece.out.bytes)
        // The boundaries the piece's writer noted (before each of its elements but the first), as one thread
        // notes them: an error after this piece cuts its output where one thread's would be cut.
        if piece.out.bytesToLastBoundary > 0 { out.noteBoundaryWithinKey(at: start + piece.out.bytesToLastBoundary) }
    }
}

/// Each key's row depends on the key alone: chunks write theirs, the header comes from this sink.
extension MemoryReportWriter: ChunkableSink {
    public var output: OutputBuffer { out }

    public func chunkSink(out: OutputBuffer) -> MemoryReportWriter {
        var w = MemoryReportWriter(out: out, checksumVerified: checksumVerified)
        w.headerWritten = true
        w.checksCompressed = checksCompressed
        return w
    }

    public mutating func absorb(_ chunk: MemoryReportWriter) {}

    /// A row per key, from a few dozen bytes of it for strings: walking the records first was a fifth of the
    /// report of strings.rdb. A large value's row is as short, and its chunk's thread is as good a place for it.
    public var cutsBySync: Bool { true }
    public var keepsLargeRecordsInChunks: Bool { true }
    /// (No reports: each key's row is its own.)
    public mutating func dropRecords(before snapshot: MemoryReportWriter) {}
}

extension FilteringVisitor: ChunkableSink where Inner: ChunkableSink {
    public var output: OutputBuffer { inner.output }

    public func chunkSink(out: OutputBuffer) -> FilteringVisitor<Inner> {
        FilteringVisitor(inner: inner.chunkSink(out: out), filter: filter)
    }

    public mutating func absorb(_ chunk: FilteringVisitor<Inner>) {
        skippedKeys += chunk.skippedKeys
        inner.absorb(chunk.inner)
    }

    public var selectedDatabase: Int? { inner.selectedDatabase }
    public var leadingSelect: (db: Int, bytes: Int)? { inner.leadingSelect }
    public var cutsBySync: Bool { inner.cutsBySync }
    public var keepsLargeRecordsInChunks: Bool { inner.keepsLargeRecordsInChunks }
    public mutating func dropRecords(before snapshot: FilteringVisitor<Inner>) {
        skippedKeys -= snapshot.skippedKeys
        inner.dropRecords(before: snapshot.inner)
    }

    /// A key that reached `inner` (the filter let it through): `inner`'s answer.
    public func splitsValue(_ type: RDBValueType) -> Bool { inner.splitsValue(type) }
    public func pieceSink(out: OutputBuffer, scratch: OutputBuffer) -> FilteringVisitor<Inner> {
        FilteringVisitor(inner: inner.pieceSink(out: out, scratch: scratch), filter: filter)
    }
    public mutating func absorbPiece(_ piece: FilteringVisitor<Inner>) throws { try inner.absorbPiece(piece.inner) }
}
