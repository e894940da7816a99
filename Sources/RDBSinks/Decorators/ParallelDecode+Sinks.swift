import RDBKit

// The sinks `rdbcat` decodes into in parallel (resp, restore, jsonl): what a chunk's sink starts from, and what
// is folded back. (Not keys and stats: their work per key is lighter than measuring the record for the split.)

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

    public func chunkSink(out: OutputBuffer) -> RESPWriter {
        var w = RESPWriter(out: out, options: options)
        w.target = target
        w.keyPrefix = keyPrefix
        return w
    }

    public mutating func absorb(_ chunk: RESPWriter) {
        skippedKeys += chunk.skippedKeys
        lossyKeys += chunk.lossyKeys
        keysWritten += chunk.keysWritten
        commandsWritten += chunk.commandsWritten
        // A leading SELECT of the database the target was in was left out of the output.
        if let lead = chunk.leadingSelect, lead.db == committedDB { commandsWritten -= 1 }
        if let db = chunk.committedDB { committedDB = db }
    }

    public var selectedDatabase: Int? { committedDB }
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
}

extension JSONLWriter: ChunkableSink {
    public var output: OutputBuffer { out }

    public func chunkSink(out: OutputBuffer) -> JSONLWriter {
        JSONLWriter(out: out, binary: binary, includeMetadata: includeMetadata)
    }

    public mutating func absorb(_ chunk: JSONLWriter) {}
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
}
