import RDBKit

// The sinks `rdbcat` decodes into in parallel (resp, restore, jsonl, memory): what a chunk's sink starts from, what
// is folded back, and what a chunk decoded from a wrong guess takes back (all four are cut by sync on files of small
// records). (Not keys and stats: their work per key is lighter than measuring the record for the
// split. The memory report does not take values in pieces: its work per element is lighter than measuring the
// element for the cut, measured on huge-aggregates.rdb.)

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

    public mutating func absorb(_ chunk: RESPWriter) {
        skippedKeys += chunk.skippedKeys
        lossyKeys += chunk.lossyKeys
        skippedLibraries += chunk.skippedLibraries
        keysWritten += chunk.keysWritten
        commandsWritten += chunk.commandsWritten
        // A leading SELECT of the database the target was in was left out of the output.
        if let lead = chunk.leadingSelect, lead.db == committedDB { commandsWritten -= 1 }
        if let db = chunk.committedDB { committedDB = db }
    }

    public var selectedDatabase: Int? { committedDB }

    public var cutsBySync: Bool { true }

    public mutating func dropRecords(before snapshot: RESPWriter) {
        skippedKeys.removeFirst(snapshot.skippedKeys.count)
        lossyKeys.removeFirst(snapshot.lossyKeys.count)
        skippedLibraries.removeFirst(snapshot.skippedLibraries.count)
        keysWritten -= snapshot.keysWritten
        commandsWritten -= snapshot.commandsWritten
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

    public mutating func absorb(_ chunk: RestoreWriter) {
        ownSkipped += chunk.ownSkipped
        ownLossy += chunk.ownLossy
        stats.passedThrough += chunk.stats.passedThrough
        stats.reencoded += chunk.stats.reencoded
        stats.asCommands += chunk.stats.asCommands
        stats.skipped += chunk.stats.skipped
        commands.absorb(chunk.commands)
        if let db = chunk.committedDB { committedDB = db }
    }

    public var selectedDatabase: Int? { committedDB }

    public var cutsBySync: Bool { true }

    public mutating func dropRecords(before snapshot: RestoreWriter) {
        ownSkipped.removeFirst(snapshot.ownSkipped.count)
        ownLossy.removeFirst(snapshot.ownLossy.count)
        stats.passedThrough -= snapshot.stats.passedThrough
        stats.reencoded -= snapshot.stats.reencoded
        stats.asCommands -= snapshot.stats.asCommands
        stats.skipped -= snapshot.stats.skipped
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
        out.append(piece.out.bytes)
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
