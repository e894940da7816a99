/// A run of whole records of an RDB (memory-mapped, or copied out of a stream), decoded apart from the records
/// around it (on another thread) by `RDBReader.decodeChunk`.
public struct RDBChunk: Sendable {
    /// Its place in the file: chunks are numbered 0, 1, 2… in file order.
    public let index: Int
    /// Positions in the mapped region: its first record, and right after its last.
    public let start: Int
    public let end: Int
    /// The absolute offset of the region's first byte (error offsets are absolute).
    public let baseOffset: Int
    /// The database selected where the chunk starts.
    public let db: Int
    public let header: RDBHeader
    /// The input's name, for errors.
    public let file: String?
    /// Key records in it (for progress; 0 when not counted yet).
    public let keys: Int
    /// Whether `start` is a record's start (known from a walk of the records before it), and `end` the end of the
    /// chunk's last record. A chunk cut at nominal offsets (`RDBReader.cutChunks`) holds the records
    /// that start in `start..<end`: the first found by `RDBReader.syncPoint` (unless `startsAtRecord`), the last
    /// running on past `end`; its `db` is a guess too.
    public let startsAtRecord: Bool
    public let endsAtRecord: Bool
    /// For a chunk cut at nominal offsets, non-zero: its thread stops before a record that is likely larger than
    /// this (`RDBReader.likelyLarge`: a value of many elements), which the decoding thread then decodes in its
    /// place (in pieces, its output written as it goes), rather than holding all of its output in the chunk's buffer.
    public let largeRecordBytes: Int
    /// For a chunk cut at nominal offsets, whether its region is a copy of part of a stream (`cutStreamedChunks`),
    /// which its last records may run past: its thread then stops before the first such record
    /// (`RDBChunkOverrun`), and the decoding thread goes on from there.
    public let regionEndsEarly: Bool

    /// The absolute offsets of its bytes.
    @inlinable public var offsets: Range<Int> { (baseOffset + start)..<(baseOffset + end) }

    @inlinable
    public init(index: Int, start: Int, end: Int, baseOffset: Int, db: Int, header: RDBHeader, file: String?, keys: Int,
                startsAtRecord: Bool = true, endsAtRecord: Bool = true, largeRecordBytes: Int = 0, regionEndsEarly: Bool = false) {
        self.regionEndsEarly = regionEndsEarly
        self.startsAtRecord = startsAtRecord
        self.endsAtRecord = endsAtRecord
        self.largeRecordBytes = largeRecordBytes
        self.index = index
        self.start = start
        self.end = end
        self.baseOffset = baseOffset
        self.db = db
        self.header = header
        self.file = file
        self.keys = keys
    }

    /// This chunk, holding only the records that start before `end`.
    @inlinable
    public func ending(at end: Int) -> RDBChunk {
        RDBChunk(index: index, start: start, end: end, baseOffset: baseOffset, db: db, header: header, file: file, keys: keys,
                 startsAtRecord: startsAtRecord, endsAtRecord: endsAtRecord, largeRecordBytes: largeRecordBytes,
                 regionEndsEarly: regionEndsEarly)
    }
}

/// Thrown by `RDBReader.decodeChunk` for a chunk whose region ends early (`RDBChunk.regionEndsEarly`) where a
/// record runs past that region: the records before it are whole, and the one at `position` (relative to the
/// region) is for the decoding thread, which reads on. What the chunk's sink holds is partly that record's.
public struct RDBChunkOverrun: Error {
    public let position: Int
    @inlinable public init(position: Int) { self.position = position }
}

/// A run of elements of one large value (a value with element framing, `RDBParser.hasElementFraming`),
/// decoded apart from the rest of the value by `RDBReader.decodePiece`.
public struct RDBValuePiece: Sendable {
    /// Its place in the value: pieces are numbered 0, 1, 2… in file order.
    public let index: Int
    public let encoding: RDBEncoding
    /// Positions in the mapped region: its first element, and right after its last.
    public let start: Int
    public let end: Int
    /// Elements in it (nodes, for quicklists).
    public let count: Int
    /// The absolute offset of the region's first byte (error offsets are absolute).
    public let baseOffset: Int
    public let header: RDBHeader
    public let file: String?

    @inlinable
    public init(index: Int, encoding: RDBEncoding, start: Int, end: Int, count: Int, baseOffset: Int, header: RDBHeader, file: String?) {
        self.index = index
        self.encoding = encoding
        self.start = start
        self.end = end
        self.count = count
        self.baseOffset = baseOffset
        self.header = header
        self.file = file
    }
}

/// Decodes the chunks of a mapped RDB on other threads and writes their output in file order (RDBSinks'
/// `ParallelDecode` is the one implementation; this protocol only keeps RDBKit free of output concerns).
///
/// A record too large for a chunk is decoded by the main sink; when the runner `splitsValue` for it (a
/// value with element framing that the sink takes in pieces), its elements are cut into pieces that the
/// runner decodes on its threads (`submitPiece`) and hands back to the main sink in order (`finishPieces`).
public protocol RDBChunkRunner {
    associatedtype Sink: RDBVisitor
    /// Before the first chunk of a run, and after the main sink decoded records itself: the runner
    /// takes over from `sink` (it flushes the sink's output, learns the database it left the target in).
    mutating func resume(from sink: inout Sink) throws
    /// Queues the next chunk (in file order), and folds the chunks written since the last call into `sink`.
    /// May wait while too many chunks are in flight.
    mutating func submit(_ chunk: RDBChunk, region: UnsafeRawBufferPointer, absorbingInto sink: inout Sink) throws
    /// Waits until every chunk submitted is decoded and written (at once when none is in flight), folds
    /// their reports into `sink` in file order, and throws the first error a chunk met (after writing the
    /// output of the keys before it).
    mutating func drain(into sink: inout Sink) throws
    /// The absolute offset before which every chunk is done with the region (its pages may be released).
    var releasableOffset: Int { get }
    /// For chunks cut at nominal offsets, once drained: where the last one truly ended (absolute), and the database
    /// selected there.
    var chainEnd: (offset: Int, db: Int)? { get }
    /// For chunks cut at nominal offsets: a chunk written so far stopped before a record, at `chainEnd` (a large one,
    /// `RDBChunk.largeRecordBytes`; or, streamed, one past its region: `RDBChunk.regionEndsEarly`); the chunks after
    /// it write nothing. Set false before cutting again.
    var cutStopped: Bool { get set }
    /// Whether the value of the key `sink` just began (and answered `.decode` for) is decoded in pieces.
    func splitsValue(_ sink: Sink, _ type: RDBValueType) -> Bool
    /// Queues the next piece of the value being split, and hands the pieces decoded since the last call
    /// to `sink` (in order). May wait while too many pieces are in flight.
    mutating func submitPiece(_ piece: RDBValuePiece, region: UnsafeRawBufferPointer, into sink: inout Sink) throws
    /// Waits for the value's pieces and hands them to `sink` in order; throws the first error a piece met
    /// (after handing over the elements before it).
    mutating func finishPieces(into sink: inout Sink) throws
}

extension RDBChunkRunner {
    @inlinable public var chainEnd: (offset: Int, db: Int)? { nil }
    @inlinable public var cutStopped: Bool {
        get { false }
        set {}
    }
    @inlinable public func splitsValue(_ sink: Sink, _ type: RDBValueType) -> Bool { false }
    @inlinable public mutating func submitPiece(_ piece: RDBValuePiece, region: UnsafeRawBufferPointer, into sink: inout Sink) throws {
        preconditionFailure("submitPiece: this runner does not split values")
    }
    @inlinable public mutating func finishPieces(into sink: inout Sink) throws {}
}

/// The main sink while a record too large for a chunk is decoded: when the runner splits the key's value,
/// it cuts the value's elements into pieces of about `pieceBytes` as it measures their framing, has the runner
/// decode them, ends the key, and lets the parser step over the value. Where the framing does not parse, the
/// rest of the value is decoded in place (the elements before the bad one, then the decoder's own error, as
/// in a sequential decode). From a `stream`, the window is filled as the value is measured.
@usableFromInline
struct ValueSplitter<R: RDBChunkRunner>: RDBForwardingVisitor {
    @usableFromInline var inner: R.Sink
    @usableFromInline var runner: R
    @usableFromInline let parser: RDBParser
    @usableFromInline var region: UnsafeRawBufferPointer
    @usableFromInline let baseOffset: Int
    @usableFromInline let file: String?
    @usableFromInline let pieceBytes: Int
    /// Where the record ends, once its value is measured (the parser then steps straight there).
    @usableFromInline let recordEnd = LearntRecordEnd()
    /// A stream whose window held the record's start only when the parser read the key, and fills as the value
    /// is walked (pinned: it does not move), so that the pieces are decoded while the rest is read.
    @usableFromInline var stream: InputBuffer? = nil

    @inlinable
    init(inner: R.Sink, runner: R, parser: RDBParser, region: UnsafeRawBufferPointer, baseOffset: Int, file: String?, pieceBytes: Int) {
        self.inner = inner
        self.runner = runner
        self.parser = parser
        self.region = region
        self.baseOffset = baseOffset
        self.file = file
        self.pieceBytes = max(1, pieceBytes)
    }

    /// A string key of a mapped input goes to `inner` as `inner` takes it (it has no elements to split); one read
    /// from a `stream` comes through `beginKey`, which fills the window to its end.
    @inlinable
    var stringDelivery: RDBStringDelivery { stream == nil ? inner.stringDelivery : .events }

    @inlinable
    mutating func stringKey(_ key: RDBString, _ info: RDBKeyInfo, value: RDBString, raw: UnsafeRawBufferPointer) throws {
        try inner.stringKey(key, info, value: value, raw: raw)
    }

    @inlinable
    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        let action = try inner.beginKey(key, info)
        let enc = info.type.encoding
        let split = action == .decode && RDBParser.hasElementFraming(enc) && runner.splitsValue(inner, info.type)
        // A key read from a `stream` is finished here whatever the action: the parser's cursor ends where the
        // window ended when it read the key.
        guard split || stream != nil else { return action }
        let valueStart = info.valueOffset - baseOffset
        var c = ByteCursor(region, baseOffset: baseOffset, position: valueStart)
        let n: Int
        do { n = try parser.elementCount(&c, enc) } catch { if stream == nil { return action } else { throw error } }
        let first = c.position
        // Pieces are handed to the runner as they are measured, so the threads start on the first while the
        // rest of the value is measured (and, from a stream, read).
        var start = first
        var count = 0
        var pieces = 0
        var done = 0
        while done < n {
            // To the end of the piece (or of the value) in one run.
            let limit = split ? start + pieceBytes : Int.max
            let doneBefore = done
            do {
                try parser.skipElements(&c, enc, count: n, until: limit, done: &done)
            } catch let e as RDBError where e.code == .truncated && stream?.isStreaming == true {
                count += done - doneBefore
                let before = c.position  // the element the window's end cut off
                try RDBReader.growWindow(stream!, after: e, resuming: true)
                region = stream!.window
                c = ByteCursor(region, baseOffset: baseOffset, position: before)
                continue
            } catch {
                // The framing does not parse from here (or the stream ended). Nothing handed over yet: the
                // value is decoded in place. Else the pieces so far are, then the rest is decoded here, which
                // writes the elements before the bad one and throws the decoder's own error, as a sequential
                // decode would.
                count += done - doneBefore
                let before = c.position  // the element that does not parse
                if pieces == 0 && stream == nil { return action }
                var rest = ByteCursor(region, baseOffset: baseOffset, position: first)
                var p = parser
                guard action == .decode else {
                    rest.position = valueStart
                    try p.skipValue(&rest, enc)  // throws what a sequential decode throws stepping over it
                    return .skip  // (not reached: the walk above did not parse)
                }
                if pieces > 0 {
                    if count > 0 { try submit(pieces, enc, start, before, count) }
                    try runner.finishPieces(into: &inner)
                    rest.position = before
                }
                try p.parseElements(&rest, &inner, enc, count: n - (pieces > 0 ? done : 0))
                recordEnd.position = rest.position  // (the same framing read twice: not reached)
                try inner.endKey()
                return .skip
            }
            count += done - doneBefore
            if split && c.position - start >= pieceBytes && done < n {
                try submit(pieces, enc, start, c.position, count)
                pieces += 1
                start = c.position
                count = 0
            }
        }
        recordEnd.position = c.position
        if pieces > 0 {
            try submit(pieces, enc, start, c.position, count)
            try runner.finishPieces(into: &inner)
        } else {
            guard stream != nil else { return action }  // one piece: decoded in place
            // Not split: what the parser would have done with the value, from the window.
            switch action {
            case .skip:
                return .skip
            case .decode:
                var all = ByteCursor(region, baseOffset: baseOffset, position: first)
                var p = parser
                try p.parseElements(&all, &inner, enc, count: n)
            case .raw:
                try inner.rawValue(UnsafeRawBufferPointer(rebasing: region[valueStart..<c.position]))
            }
        }
        try inner.endKey()
        return .skip  // the parser steps over the value; the key is ended
    }

    @inlinable
    mutating func submit(_ index: Int, _ enc: RDBEncoding, _ start: Int, _ end: Int, _ count: Int) throws {
        try runner.submitPiece(RDBValuePiece(index: index, encoding: enc, start: start, end: end, count: count,
                                             baseOffset: baseOffset, header: parser.header!, file: file),
                               region: region, into: &inner)
    }
}

extension RDBReader {
    /// Decodes an RDB from a memory-mapped input as `decode` does, but cuts its records into chunks of
    /// about `chunkBytes` that `runner` decodes on other threads: this thread only measures records
    /// (`recordEnd`: their framing, no events; O(1) for strings and single-blob values) and follows
    /// SELECTDB, so that each chunk knows its database. A record that is not measured this way (module
    /// values, functions, a record that does not parse), or that is larger than `maxChunkRecord`, is
    /// decoded here by `visitor` itself, in its place: the chunks before it are drained first. The
    /// checksum is computed on another core as in `decode`; the EOF record is reported by `visitor`.
    ///
    /// The events a chunk's records produce go to the runner's sinks, not to `visitor`; the runner folds
    /// their reports into `visitor` (`drain`). An error in a chunk is thrown once the chunks before it and
    /// its keys before the error are written, as a sequential decode would have left the output.
    /// Inlinable: the records decoded here by `visitor` are as fast as in `decode`.
    ///
    /// With `cutBelowRecordBytes`, once the first two chunks are cut: if their records average fewer bytes than
    /// that, the rest is cut at nominal offsets without walking it (`cutChunks`): for sinks whose work per record
    /// is light enough that the walk is a large share of it, on files of small records only (records larger than
    /// a chunk, or many records too large to find a start in, would be decoded one chunk after another). With
    /// `leavesLargeRecords`, a record likely larger than `maxChunkRecord` met there ends the cutting: it is
    /// decoded here as above, and the rest of the file is walked.
    @inlinable
    public static func decodeChunked<R: RDBChunkRunner>(
        _ input: InputBuffer, into visitor: inout R.Sink, runner: inout R, options: RDBDecoderOptions = .init(),
        chunkBytes: Int = 1 << 20, maxChunkRecord: Int = 1 << 20, cutBelowRecordBytes: Int = 0, leavesLargeRecords: Bool = false
    ) throws -> RDBSummary {
        precondition(!input.isStreaming, "decodeChunked reads memory-mapped inputs")
        var parser = RDBParser(options: options)
        var crc = CRC64()
        let header = try readHeader(input, &parser, &crc, &visitor)
        try decodeMapped(input, header: header, crc: &crc, options: options) { c in
            let region = input.window
            var index = 0
            var chunkStart = c.position
            var chunkDB = parser.db
            var keys = 0  // key records in the chunk being cut
            var cutting = SyncCutting(recordBytes: cutBelowRecordBytes)
            try runner.resume(from: &visitor)
            // The parser as the measuring reads it (header and options; they do not change): a local, so that
            // passing it copies nothing per record (the captured `parser`, passed by value, was retained and
            // released for every record: a quarter of the CPU of the memory report of strings.rdb).
            var measurer = parser
            func submit(upTo end: Int) throws {
                guard end > chunkStart else { return }
                try runner.submit(RDBChunk(index: index, start: chunkStart, end: end, baseOffset: c.baseOffset, db: chunkDB,
                                           header: header, file: input.name, keys: keys), region: region,
                                   absorbingInto: &visitor)
                index += 1
                keys = 0
            }
            while true {
                let s = c.position
                let op = recordOpcode(parser, c)
                if op == .eof { break }
                // Measured within `maxChunkRecord` bytes: a larger record is cut off (-1) rather than walked
                // to its end, since it is decoded here anyway.
                let probe = ByteCursor(UnsafeRawBufferPointer(rebasing: region[0..<min(region.count, s + maxChunkRecord)]),
                                       baseOffset: c.baseOffset, position: s)
                let e = likelyLarge(measurer, probe, limit: maxChunkRecord) ? -1 : measurer.recordEndInline(probe)
                if e < 0 {
                    // Decoded here, in its place (a large value of element framing in pieces on the runner's
                    // threads): everything before it first.
                    try submit(upTo: s)
                    try runner.drain(into: &visitor)
                    let result = try decodeInPlace(&parser, &c, into: &visitor, runner: runner, region: region, input: input,
                                                   header: header, options: options, chunkBytes: chunkBytes)
                    if case .endOfFile = result { return }
                    input.release(before: c.offset)  // every chunk before it is done
                    try runner.resume(from: &visitor)
                    chunkStart = c.position
                    chunkDB = parser.db
                    continue
                }
                cutting.measured(e - s)
                try takeMeasured(&parser, &c, op: op, end: e, keys: &keys)
                if c.position - chunkStart >= chunkBytes {
                    input.release(before: runner.releasableOffset)
                    try submit(upTo: c.position)
                    chunkStart = c.position
                    chunkDB = parser.db
                    if cutting.cutsHere(index: index) {
                        try cutChunks(input, &c, &parser, header: header, index: &index, into: &visitor, runner: &runner,
                                      chunkBytes: chunkBytes, largeRecordBytes: leavesLargeRecords ? maxChunkRecord : 0)
                        guard runner.cutStopped else {
                            _ = try parseOne(&parser, &c, &visitor, input)  // the EOF record, or the error met there
                            return
                        }
                        // A large record, at `c`: measured (and decoded in place) as above, and the records after it.
                        cutting.stopped(index: index)
                        chunkStart = c.position
                        chunkDB = parser.db
                    }
                }
            }
            try submit(upTo: c.position)
            try runner.drain(into: &visitor)
            // The EOF record, reported by the main visitor.
            _ = try parseOne(&parser, &c, &visitor, input)
        }
        return try finish(input, header: header, crc: crc, options: options, &visitor)
    }

    /// Whether the record at `c` is a value of element framing with over 1024 elements whose first 256 elements,
    /// as many times over as it has elements, come to more than `limit`: then it is taken as larger than a chunk
    /// without walking `limit` bytes of it first (that walk was ~13% of the memory report of a file of a few large
    /// hashes; with twice `limit` as the bound, values of 1–2 MiB, as Redis 6.2's huge-aggregates.rdb holds, were
    /// still walked). An estimate: a record it takes for large that is not is decoded in place all the same.
    @inlinable
    static func likelyLarge(_ parser: RDBParser, _ c0: ByteCursor, limit: Int) -> Bool {
        // A string or single-blob value (with or without a millisecond expiry) at once, without `recordStart`.
        var i = c0.position
        if i < c0.end && RDBParser.isSingleBlobType(RDBParser.typeByte(c0.base, &i, c0.end)) { return false }
        var c = c0
        guard case .key(let enc)? = try? parser.recordStart(&c), RDBParser.hasElementFraming(enc),
              let n = try? parser.elementCount(&c, enc), n > 1024
        else { return false }
        let first = c.position
        var done = 0
        _ = try? parser.skipElements(&c, enc, count: 256, until: Int.max, done: &done)
        guard done == 256 else { return false }
        return (c.position - first) / 256 * n > limit
    }

    /// The opcode of the record at `c`, nil for a key (a byte below 0xF0 is a value type: every opcode of
    /// every dialect is 0xF3 or above) or at the window's end.
    @inlinable @inline(__always)
    static func recordOpcode(_ parser: RDBParser, _ c: ByteCursor) -> RDBOpcode? {
        c.position < c.end && c.base.load(fromByteOffset: c.position, as: UInt8.self) < 0xF0 ? nil : parser.opcode(at: c)
    }

    /// Steps over a measured record (it ends at `end`) that goes into the chunk being cut: counts a key, and
    /// follows a SELECTDB for the next chunk's database (the chunk's own parser reports it).
    @inlinable @inline(__always)
    static func takeMeasured(_ parser: inout RDBParser, _ c: inout ByteCursor, op: RDBOpcode?, end: Int, keys: inout Int) throws {
        if op == nil || op!.prefixesKey { keys += 1 }
        if op == .selectDB {
            var skip = SkipEverything()
            _ = try parser.parseRecord(&c, &skip)
        } else {
            c.position = end
        }
    }

    /// Decodes the record at `c` in its place, into `visitor`, once the chunks before it are written: through
    /// a `ValueSplitter`, so that a large value of element framing goes in pieces to the runner's threads
    /// (`region`, from which `c` reads, holds the record whole; `knownEnd`: where it ends, if measured).
    @inlinable
    static func decodeInPlace<R: RDBChunkRunner>(
        _ parser: inout RDBParser, _ c: inout ByteCursor, into visitor: inout R.Sink, runner: R, region: UnsafeRawBufferPointer,
        input: InputBuffer, header: RDBHeader, options: RDBDecoderOptions, chunkBytes: Int, knownEnd: Int = -1,
        stream: InputBuffer? = nil
    ) throws -> RDBRecordResult {
        var splitter = ValueSplitter(inner: visitor, runner: runner, parser: RDBParser(options: options, header: header, db: parser.db),
                                     region: region, baseOffset: c.baseOffset, file: input.name, pieceBytes: pieceBytes(chunkBytes))
        splitter.stream = stream
        if knownEnd >= 0 { splitter.recordEnd.position = knownEnd }
        defer { visitor = splitter.inner }
        return try parseOne(&parser, &c, &splitter, input, end: splitter.recordEnd)
    }

    /// The size of the pieces a large value is cut into, for chunks of `chunkBytes`.
    @inlinable
    static func pieceBytes(_ chunkBytes: Int) -> Int { max(1, chunkBytes / 4) }

    /// Decodes the elements of one piece of a large value into `visitor` (its element events only).
    @inlinable
    public static func decodePiece<V: RDBVisitor>(
        _ piece: RDBValuePiece, region: UnsafeRawBufferPointer, options: RDBDecoderOptions, into visitor: inout V
    ) throws {
        var o = options
        o.decompressAhead = false
        var parser = RDBParser(options: o, header: piece.header, db: 0)
        var c = ByteCursor(UnsafeRawBufferPointer(rebasing: region[0..<piece.end]), baseOffset: piece.baseOffset, position: piece.start)
        do {
            try parser.parseElements(&c, &visitor, piece.encoding, count: piece.count)
        } catch var e as RDBError {
            if e.offset < 0 { e.offset = c.offset }
            e.file = piece.file
            throw e
        }
    }

    /// Decodes the records of one chunk into `visitor`, calling `afterRecord` after each (where a runner
    /// may hand the output written so far on, or end the chunk there by returning false): from `start` (default:
    /// the chunk's start) in database `db` (default: the chunk's). Returns where its last record ends, the database
    /// selected there, for a chunk cut at a nominal offset (`endsAtRecord` false) its key records (others: 0), and
    /// whether it stopped before its end (`largeRecordBytes`, `afterRecord`). Such a chunk stops at the
    /// EOF opcode too (the main visitor reports it), and tells `atRecord` where each of its first `watchedRecords`
    /// records starts, the database there and the key records before it (see `ParallelDecode`).
    @inlinable @discardableResult
    public static func decodeChunk<V: RDBVisitor>(
        _ chunk: RDBChunk, region: UnsafeRawBufferPointer, options: RDBDecoderOptions, into visitor: inout V,
        from start: Int? = nil, db: Int? = nil, watchedRecords: Int = 0,
        atRecord: (inout V, _ position: Int, _ db: Int, _ keys: Int) -> Void = { _, _, _, _ in },
        afterRecord: (inout V) throws -> Bool
    ) throws -> (end: Int, db: Int, keys: Int, stopped: Bool) {
        // The chunks already keep the cores busy: no LZF read-ahead thread per chunk (it would start one
        // for each chunk with a long list, and spin while idle).
        var o = options
        o.decompressAhead = false
        var parser = RDBParser(options: o, header: chunk.header, db: db ?? chunk.db)
        // A chunk that ends with a record: the window ends with it (no record can read past it).
        let window = chunk.endsAtRecord ? UnsafeRawBufferPointer(rebasing: region[0..<chunk.end]) : region
        // (The cursor checks reads against the window's end only.)
        precondition((start ?? chunk.start) >= 0, "a chunk decoded from before its region")
        var c = ByteCursor(window, baseOffset: chunk.baseOffset, position: start ?? chunk.start)
        var keys = 0
        var watched = 0
        while c.position < chunk.end {
            if !chunk.endsAtRecord {
                let op = recordOpcode(parser, c)
                if op == .eof { break }
                if _slowPath(watched < watchedRecords) {
                    atRecord(&visitor, c.position, parser.db, keys)
                    watched &+= 1
                }
                if op == nil || op!.prefixesKey {
                    if chunk.largeRecordBytes > 0 && likelyLarge(parser, c, limit: chunk.largeRecordBytes) {
                        return (c.position, parser.db, keys, true)
                    }
                    keys &+= 1
                }
            }
            if _slowPath(chunk.regionEndsEarly) {
                let s = c.position
                do {
                    _ = try parseOne(&parser, &c, &visitor, file: chunk.file)
                } catch let e as RDBError where e.code == .truncated {
                    // Cut off by the region's end (a record that is corrupt there is met again by the decoding thread).
                    throw RDBChunkOverrun(position: s)
                }
            } else {
                _ = try parseOne(&parser, &c, &visitor, file: chunk.file)
            }
            guard try afterRecord(&visitor) else { return (c.position, parser.db, keys, true) }
        }
        return (c.position, parser.db, keys, false)
    }
}

/// When a parallel decode cuts chunks at nominal offsets rather than after measuring their records (`cutChunks`,
/// `cutStreamedChunks`): once two chunks are measured, if their records average fewer than `recordBytes` bytes; after
/// a record stopped the cutting (a large one, or one past a streamed chunk's bytes), once 2, 4, 8… more chunks are
/// measured (each stop costs the chunks in flight after it), if the records measured since average so too.
@usableFromInline
struct SyncCutting {
    /// 0: never.
    @usableFromInline let recordBytes: Int
    /// The records measured since the last decision, and their bytes.
    @usableFromInline var records = 0
    @usableFromInline var bytes = 0
    /// The number of chunks cut when the records are looked at next.
    @usableFromInline var decideAt = 2
    @usableFromInline var walkAfterStop = 2

    @inlinable
    init(recordBytes: Int) { self.recordBytes = recordBytes }

    @inlinable @inline(__always)
    mutating func measured(_ n: Int) {
        records &+= 1
        bytes &+= n
    }

    /// Whether to cut from here (a record's start), `index` chunks being cut; once asked where it decides, it says
    /// no until `stopped`.
    @inlinable
    mutating func cutsHere(index: Int) -> Bool {
        guard recordBytes > 0 && index >= decideAt else { return false }
        decideAt = .max
        return bytes < records * recordBytes
    }

    /// The cutting stopped before a record, `index` chunks being cut.
    @inlinable
    mutating func stopped(index: Int) {
        decideAt = index + walkAfterStop
        walkAfterStop *= 2
        records = 0
        bytes = 0
    }
}

extension RDBReader {
    /// The rest of a memory-mapped RDB from `c` (a record's start, in `parser`'s database), as `decodeChunked` decodes
    /// it but without walking its records on this thread first: cut into chunks at every `chunkBytes` bytes
    /// (numbered on from `index`), each chunk's thread finds where its first record starts (`syncPoint`) and
    /// decodes the records that start in its bytes. A guess, checked in file order: a chunk's output is written
    /// only from where the chunk before truly ended, in the database selected there (its first records, decoded
    /// from a wrong guess, soon fall in step with the true ones; else it is decoded again from there; see
    /// `ParallelDecode`). So the output is that of a sequential decode, and this thread, which only cuts and
    /// waits, leaves both cores to the chunks. A record larger than a chunk is decoded whole by the chunk it
    /// starts in, unless `largeRecordBytes` is set: then the chunk stops before a record likely larger than that
    /// (`RDBChunk.largeRecordBytes`), no chunk is cut after it, and `runner.cutStopped` tells the caller to
    /// decode it in place. Leaves `c` and `parser` at the EOF record, at that large record, or where the last chunk
    /// stopped; `index` at the next chunk's number.
    @inlinable
    static func cutChunks<R: RDBChunkRunner>(
        _ input: InputBuffer, _ c: inout ByteCursor, _ parser: inout RDBParser, header: RDBHeader, index: inout Int,
        into visitor: inout R.Sink, runner: inout R, chunkBytes: Int, largeRecordBytes: Int = 0
    ) throws {
        let region = input.window
        let chunkBytes = max(64, chunkBytes)
        var start = c.position
        let first = index
        runner.cutStopped = false  // (a stop of an earlier cutting: its chunks are drained)
        while start < region.count && !runner.cutStopped {
            let end = region.count - start < 2 * chunkBytes ? region.count : start + chunkBytes
            try runner.submit(RDBChunk(index: index, start: start, end: end, baseOffset: c.baseOffset, db: parser.db,
                                       header: header, file: input.name, keys: 0, startsAtRecord: index == first,
                                       endsAtRecord: false, largeRecordBytes: largeRecordBytes),
                              region: region, absorbingInto: &visitor)
            input.release(before: runner.releasableOffset)
            index += 1
            start = end
        }
        try runner.drain(into: &visitor)
        if let (end, db) = runner.chainEnd {
            c.position = end - c.baseOffset
            parser._db = db
        }
    }

    /// Records in a row that must measure from a position for it to be taken as a record's start.
    @inlinable static var syncRecords: Int { 8 }
    /// How far into a chunk a record's start is looked for (a chunk inside a larger record finds none).
    @inlinable static var syncScanBytes: Int { 16 << 10 }
    /// The bytes the records that make a start plausible must fit in (a wrong start often reads a long length; files
    /// are cut by sync only when their records average under 256 bytes). 64 KiB took a first "record" of 35 KiB read
    /// from inside a value: of small-aggregates.rdb's chunks decoded again, 3 of 45 (Redis 6.2) then 1 at 4 KiB.
    @inlinable static var syncWindowBytes: Int { 4 << 10 }

    /// Where the first record of a chunk cut at a nominal offset most likely starts: the first position from
    /// `chunk.start` (looking `syncScanBytes` on at most) from which `syncRecords` records in a row measure
    /// (`recordEnd`; or some, then the EOF opcode right before the checksum). When what is found there is the
    /// type byte of a record whose prefixes (a millisecond or second expiry, an LFU frequency) start before
    /// `chunk.start`, that record belongs to the chunk before: its end. nil when nothing plausible is found. With
    /// `after` (a start guessed before, whose records did not decode), the search goes on after it.
    /// A guess: the runner checks it against where the chunk before truly ended.
    @inlinable
    public static func syncPoint(_ chunk: RDBChunk, region: UnsafeRawBufferPointer, options: RDBDecoderOptions, after: Int? = nil) -> Int? {
        var parser = RDBParser(options: options, header: chunk.header, db: 0)
        let p = region.baseAddress!
        @inline(__always) func byte(_ i: Int) -> UInt8 { p.load(fromByteOffset: i, as: UInt8.self) }
        let scanEnd = min(chunk.end, chunk.start + syncScanBytes)
        var q = after.map { $0 + 1 } ?? chunk.start
        while q < scanEnd {
            if chains(&parser, region, q, baseOffset: chunk.baseOffset) {
                var s = q
                for _ in 0..<3 {
                    if s >= 9 && byte(s - 9) == 0xFC { s -= 9 } else if s >= 5 && byte(s - 5) == 0xFD { s -= 5 }
                    else if s >= 2 && byte(s - 2) == 0xF9 { s -= 2 } else { break }
                }
                // (A prefix at or after `chunk.start` would have been found first: these bytes are not one.)
                guard s < chunk.start else { return q }
                let e = parser.recordEnd(ByteCursor(region, baseOffset: chunk.baseOffset, position: q))
                return e >= 0 && e < chunk.end ? e : nil
            }
            q &+= 1
        }
        return nil
    }

    /// Whether `syncRecords` records in a row measure from `q` (within `syncWindowBytes`), or some then the EOF opcode followed
    /// by the checksum or nothing.
    @inlinable
    static func chains(_ parser: inout RDBParser, _ region: UnsafeRawBufferPointer, _ q: Int, baseOffset: Int) -> Bool {
        let window = UnsafeRawBufferPointer(rebasing: region[0..<min(region.count, q &+ syncWindowBytes)])
        var at = q
        for n in 0..<syncRecords {
            let c = ByteCursor(window, baseOffset: baseOffset, position: at)
            if recordOpcode(parser, c) == .eof {
                // (Not first: 0xFF, the end of every ziplist and listpack, would pass for one before each record.)
                let trailer = region.count &- at &- 1
                return n > 0 && (trailer == 0 || trailer == 8)
            }
            let e = parser.recordEndInline(c)
            guard e > at else { return false }
            at = e
        }
        return true
    }
}

/// The buffers a streamed decode copies its chunks into: each is held until the runner is past its chunk
/// (`RDBChunkRunner.releasableOffset`), then reused.
@usableFromInline
final class ChunkCopies {
    @usableFromInline let capacity: Int
    @usableFromInline var spare: [UnsafeMutableRawPointer] = []
    /// Submitted chunks' buffers, in file order, with the absolute offsets of the bytes each holds.
    @usableFromInline var held: [(buffer: UnsafeMutableRawPointer, start: Int, end: Int)] = []
    @usableFromInline var heldStart = 0

    @inlinable
    init(capacity: Int) { self.capacity = capacity }

    /// A buffer of `capacity` bytes: one the runner is done with (its chunk ends at or before `releasable`),
    /// or a new one.
    @inlinable
    func take(releasable: Int) -> UnsafeMutableRawPointer {
        release(upTo: releasable)
        return takeSpare()
    }

    /// A spare buffer, or a new one.
    @inlinable
    func takeSpare() -> UnsafeMutableRawPointer {
        spare.popLast() ?? UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    /// A buffer taken and not held (nothing reads it).
    @inlinable
    func putBack(_ buffer: UnsafeMutableRawPointer) { spare.append(buffer) }

    /// Makes the buffers whose bytes end at or before `releasable` spare, oldest first, after showing `released`
    /// their bytes and the absolute offset of the first.
    @inlinable
    func release(upTo releasable: Int, _ released: (UnsafeRawBufferPointer, Int) -> Void = { _, _ in }) {
        while heldStart < held.count && held[heldStart].end <= releasable {
            let h = held[heldStart]
            released(UnsafeRawBufferPointer(start: h.buffer, count: h.end - h.start), h.start)
            spare.append(h.buffer)
            heldStart += 1
        }
        if heldStart == held.count {
            held.removeAll(keepingCapacity: true)
            heldStart = 0
        }
    }

    /// Holds `buffer`, whose first `end - start` bytes are the input's from the absolute offset `start`.
    @inlinable
    func hold(_ buffer: UnsafeMutableRawPointer, from start: Int, to end: Int) { held.append((buffer, start, end)) }

    /// The held bytes from the absolute offset `from` to `to`, in order, as views into the buffers (which overlap:
    /// each byte is taken from the first that holds it).
    @inlinable
    func bytes(from: Int, to: Int) -> [UnsafeRawBufferPointer] {
        var parts: [UnsafeRawBufferPointer] = []
        var at = from
        for h in held[heldStart...] where at < to && h.start <= at && at < h.end {
            let n = min(h.end, to) - at
            parts.append(UnsafeRawBufferPointer(start: h.buffer + (at - h.start), count: n))
            at += n
        }
        precondition(at >= to, "ChunkCopies: bytes \(at)..<\(to) are not held")
        return parts
    }

    deinit {
        for b in spare { b.deallocate() }
        for h in held[heldStart...] { h.buffer.deallocate() }
    }
}

extension RDBReader {
    /// Decodes a streamed RDB (a pipe, a decompressor) as `decodeChunked` decodes a mapped one. This thread
    /// reads the stream into the window and measures its records as the one-thread streamed decode does
    /// (`recordEndInline`; a record cut off by the window's end is made whole by refilling it), and copies
    /// each run of about `chunkBytes` of whole records out of the window into a buffer of its own, which the
    /// runner decodes on its threads while the window moves on. A record larger than a chunk, one that does
    /// not measure, and the EOF record are decoded here, in their place, once the chunks before them are
    /// written (a large value of element framing in pieces, from the window, which holds it whole). The
    /// checksum is computed here as the window moves. Memory: the window and the chunks in flight.
    ///
    /// With `cutBelowRecordBytes`, as in `decodeChunked`: once the first two chunks are cut, if their records average
    /// fewer bytes than that, the rest is read into chunks cut at nominal offsets without measuring it
    /// (`cutStreamedChunks`), until a record does not fit in one (with `leavesLargeRecords`, or is likely larger
    /// than a chunk); from there on it is measured as above.
    @inlinable
    public static func decodeStreamedChunked<R: RDBChunkRunner>(
        _ input: InputBuffer, into visitor: inout R.Sink, runner: inout R, options: RDBDecoderOptions = .init(),
        chunkBytes: Int = 1 << 20, cutBelowRecordBytes: Int = 0, leavesLargeRecords: Bool = false
    ) throws -> RDBSummary {
        var parser = RDBParser(options: options)
        var crc = CRC64()
        let header = try readHeader(input, &parser, &crc, &visitor)
        let file = input.name
        let chunkBytes = max(1, chunkBytes)
        // A chunk holds records while it is under `chunkBytes`, each of them at most that: under twice that (a chunk
        // cut at a nominal offset: its block and the bytes around it).
        let copies = ChunkCopies(capacity: max(2 * chunkBytes, streamLookBehind + chunkBytes + streamOverlap(chunkBytes)))
        var cutting = SyncCutting(recordBytes: cutBelowRecordBytes)
        var skipper = SkipEverything()
        var c = input.cursor
        var runStart = 0  // the window's bytes from here to `c` belong to the chunk and are not copied yet
        var buffer = copies.take(releasable: 0)
        var filled = 0
        var chunkStart = c.offset
        var chunkDB = parser.db
        var keys = 0
        var index = 0
        func copyRun() {
            let n = c.position - runStart
            guard n > 0 else { return }
            let run = UnsafeRawBufferPointer(rebasing: input.window[runStart..<c.position])
            (buffer + filled).copyMemory(from: run.baseAddress!, byteCount: n)
            filled += n
            crc.update(run)
            runStart = c.position
        }
        func submitChunk() throws {
            copyRun()
            if filled > 0 {
                try runner.submit(RDBChunk(index: index, start: 0, end: filled, baseOffset: chunkStart, db: chunkDB,
                                           header: header, file: file, keys: keys),
                                  region: UnsafeRawBufferPointer(start: buffer, count: filled), absorbingInto: &visitor)
                copies.hold(buffer, from: chunkStart, to: chunkStart + filled)
                index += 1
                buffer = copies.take(releasable: runner.releasableOffset)
                filled = 0
                keys = 0
            }
            chunkStart = c.offset
            chunkDB = parser.db
        }
        var measuring = false  // making the record at `c` whole in the window: the records before it are whole
        do {
            try runner.resume(from: &visitor)
            while true {
                measuring = true
                var e = parser.recordEndInline(c)
                var measured = e
                if e < 0 && input.isStreaming {
                    // Cut off by the window's end (or not measured inline): what the chunk has of the window is
                    // copied, and the window refilled, first by a chunk's worth (most records are whole then and
                    // go on in chunks; not up to the buffer's size, which a large record grew), then until the
                    // record is whole in it (a large value of element framing is decoded as it comes).
                    copyRun()
                    input.consume(c.position)
                    try input.fill(atLeast: input.window.count &+ 1, preferring: input.window.count &+ chunkBytes)
                    c = input.cursor
                    runStart = 0
                    e = parser.recordEndInline(c)
                    measured = e
                }
                // A key of element framing still cut off: decoded in place (its pieces on the threads) while the
                // rest of it is read, the window pinned and filling in place; any other record is read whole first.
                var streamed = false
                if e < 0 && input.isStreaming {
                    if !options.measureValues, try readsValueStart(input, parser), input.pinForGrowth() {
                        streamed = true
                    } else {
                        measured = try ensureRecord(input, parser, &skipper)
                    }
                    c = input.cursor
                    runStart = 0
                    e = measured >= 0 ? parser.recordEndInline(c) : -1
                }
                measuring = false
                let s = c.position
                let op = recordOpcode(parser, c)
                if op == .eof { break }
                if e < 0 || e - s > chunkBytes {
                    try submitChunk()
                    try runner.drain(into: &visitor)
                    _ = try decodeInPlace(&parser, &c, into: &visitor, runner: runner, region: input.window, input: input,
                                          header: header, options: options, chunkBytes: chunkBytes, knownEnd: measured,
                                          stream: streamed ? input : nil)
                    if streamed {
                        let end = c.position  // past the end of the window `c` was made from
                        c = input.cursor
                        c.position = end
                    }
                    crc.update(UnsafeRawBufferPointer(rebasing: input.window[runStart..<c.position]))
                    runStart = c.position
                    try runner.resume(from: &visitor)
                    chunkStart = c.offset
                    chunkDB = parser.db
                    continue
                }
                cutting.measured(e - s)
                try takeMeasured(&parser, &c, op: op, end: e, keys: &keys)
                if filled + (c.position - runStart) >= chunkBytes {
                    try submitChunk()
                    if cutting.cutsHere(index: index) {
                        input.consume(c.position)  // checksummed (`copyRun`)
                        try cutStreamedChunks(input, &parser, crc: &crc, header: header, index: &index, into: &visitor,
                                              runner: &runner, copies: copies, chunkBytes: chunkBytes,
                                              largeRecordBytes: leavesLargeRecords ? chunkBytes : 0)
                        c = input.cursor
                        runStart = 0
                        chunkStart = c.offset
                        chunkDB = parser.db
                        if runner.cutStopped { cutting.stopped(index: index) }
                    }
                }
            }
            try submitChunk()
            try runner.drain(into: &visitor)
        } catch {
            // The chunks before the failure are written first, and an error in one of them, earlier in the
            // input, is the one thrown; no chunk reads a copy after this. So are the whole records of the chunk
            // being filled, when the record after them could not be made whole (over the limit, a read that
            // failed), as one thread writes them.
            if measuring { try? submitChunk() }
            try runner.drain(into: &visitor)
            throw error
        }
        // The EOF record, reported by the main visitor.
        _ = try parseOne(&parser, &c, &visitor, input)
        crc.update(UnsafeRawBufferPointer(rebasing: input.window[runStart..<c.position]))
        input.consume(c.position)
        return try finish(input, header: header, crc: crc, options: options, &visitor)
    }
}

extension RDBReader {
    /// Bytes a streamed chunk cut at a nominal offset holds before its block: `syncPoint` looks up to 27 bytes back
    /// for the prefixes of a record.
    @inlinable static var streamLookBehind: Int { 32 }
    /// Bytes it holds after its block, into which its last record runs on (a record running further stops the cutting).
    @inlinable static func streamOverlap(_ chunkBytes: Int) -> Int { max(64, chunkBytes / 8) }

    /// The rest of a streamed RDB from the window's start (a record's start, in `parser`'s database), cut into chunks
    /// at every `chunkBytes` bytes as `cutChunks` cuts a mapped file, without measuring its records: the stream is
    /// read straight into the chunks' buffers (`copies`), each holding its block, the `streamLookBehind` bytes before
    /// it and the `streamOverlap` bytes after it (`RDBChunk.regionEndsEarly`). A chunk stops before a record that runs
    /// past its buffer, a record likely larger than `largeRecordBytes` (when non-zero), or where its output would
    /// spill; the chunks after it then write nothing, and no more are cut. The checksum takes the bytes as their
    /// buffers are done with.
    ///
    /// Returns with the window starting where the last chunk written truly ended (at the EOF record, or at the record
    /// a chunk stopped before: the bytes read past it are given back to `input`), `parser` in the database selected
    /// there, `crc` over the bytes before it, and `index` at the next chunk's number.
    @inlinable
    static func cutStreamedChunks<R: RDBChunkRunner>(
        _ input: InputBuffer, _ parser: inout RDBParser, crc: inout CRC64, header: RDBHeader, index: inout Int,
        into visitor: inout R.Sink, runner: inout R, copies: ChunkCopies, chunkBytes: Int, largeRecordBytes: Int
    ) throws {
        let lookBehind = streamLookBehind
        let overlap = streamOverlap(chunkBytes)
        precondition(copies.capacity >= lookBehind + chunkBytes + overlap)
        var summed = input.offset  // the checksum covers the bytes before this
        func sum(_ bytes: UnsafeRawBufferPointer, _ from: Int) {
            guard summed - from < bytes.count else { return }
            crc.update(UnsafeRawBufferPointer(rebasing: bytes[(summed - from)...]))
            summed = from + bytes.count
        }
        func takeBuffer() -> UnsafeMutableRawPointer {
            copies.release(upTo: runner.releasableOffset, sum)
            return copies.takeSpare()
        }
        let first = index
        runner.cutStopped = false  // (a stop of an earlier cutting: its chunks are drained)
        var bufferStart = input.offset  // the absolute offset of the buffer's first byte
        var buffer = takeBuffer()
        var held = false  // whether `buffer` is held (else it goes back to the spares at the end)
        defer { if !held { copies.putBack(buffer) } }
        var carried = 0  // bytes at its front, read into the buffer before
        var blockStart = 0  // the block's position in it (the first block starts at a record: nothing before it)
        do {
            while !runner.cutStopped {
                let want = blockStart + chunkBytes + overlap
                var filled = carried
                while filled < want {
                    let n = try input.read(into: UnsafeMutableRawBufferPointer(start: buffer + filled, count: want - filled))
                    if n == 0 { break }
                    filled += n
                }
                let atEnd = filled < want
                let end = atEnd ? filled : blockStart + chunkBytes
                if end > blockStart {
                    try runner.submit(RDBChunk(index: index, start: blockStart, end: end, baseOffset: bufferStart, db: parser.db,
                                               header: header, file: input.name, keys: 0, startsAtRecord: index == first,
                                               endsAtRecord: false, largeRecordBytes: largeRecordBytes, regionEndsEarly: true),
                                      region: UnsafeRawBufferPointer(start: buffer, count: filled), absorbingInto: &visitor)
                    index += 1
                }
                copies.hold(buffer, from: bufferStart, to: bufferStart + filled)
                held = true
                if atEnd { break }
                // The next buffer starts `lookBehind` before the next block, with the bytes read past this one.
                let next = takeBuffer()
                carried = filled - (end - lookBehind)
                next.copyMemory(from: buffer + (end - lookBehind), byteCount: carried)
                bufferStart += end - lookBehind
                buffer = next
                held = false
                blockStart = lookBehind
            }
            try runner.drain(into: &visitor)
        } catch {
            try runner.drain(into: &visitor)  // the error of a chunk before, earlier in the input, first
            throw error
        }
        // (No chunk: the stream ended where the cutting began. A chain end then is an earlier cutting's.)
        let (end, db) = index > first ? runner.chainEnd ?? (summed, parser.db) : (summed, parser.db)
        for part in copies.bytes(from: summed, to: end) { crc.update(part) }
        try input.unread(copies.bytes(from: end, to: input.offset))
        parser._db = db
    }
}
