/// What a finished decode found.
public struct RDBSummary: Sendable {
    public var header: RDBHeader
    public var checksum: RDBChecksumStatus
    /// Absolute offset right after the RDB (after the checksum when there is one).
    public var endOffset: Int

    @inlinable
    public init(header: RDBHeader, checksum: RDBChecksumStatus, endOffset: Int) {
        self.header = header
        self.checksum = checksum
        self.endOffset = endOffset
    }
}

/// Drives `RDBParser` over an `InputBuffer`: header, records, EOF and checksum.
///
/// The same code runs over a memory-mapped file (the window is the whole file: every view is zero-copy)
/// and over a stream (each record is first measured, its framing only, to make sure it is entirely in the
/// window, the buffer refilled or grown geometrically when it is not, then decoded from the window once).
public enum RDBReader {
    /// Decodes one RDB from the input's current position, reporting to `visitor`.
    /// On return the input is positioned right after the RDB (an AOF tail may follow).
    @inlinable
    public static func decode<V: RDBVisitor>(
        _ input: InputBuffer, into visitor: inout V, options: RDBDecoderOptions = .init()
    ) throws -> RDBSummary {
        var parser = RDBParser(options: options)
        var crc = CRC64()
        let header = try readHeader(input, &parser, &crc, &visitor)
        if input.isStreaming {
            // Streamed: a record is reported only once it is whole in the window. Each one is measured first
            // (`recordEnd`: its framing only, no events; O(1) for strings and single-blob values), then decoded
            // from the window with its end known, so a value the visitor skips is not walked twice. A record
            // cut off by the window's end (or one `recordEnd` does not measure) takes the slow path: what is
            // decoded is checksummed and dropped, and the window refilled (grown when the record needs it)
            // until that record is whole.
            var skipper = SkipEverything()
            let file = input.name  // read once (see the mapped branch)
            var c = input.cursor
            var streaming = true  // more bytes may come (false once the source has ended: all the rest is in the window)
            while true {
                var end = -1
                if streaming {
                    end = parser.recordEndInline(c)
                    if end < 0 {
                        crc.update(UnsafeRawBufferPointer(rebasing: input.window[0..<c.position]))
                        input.consume(c.position)
                        end = try ensureRecord(input, parser, &skipper)
                        c = input.cursor
                        streaming = input.isStreaming
                    }
                }
                if case .endOfFile = try parseOne(&parser, &c, &visitor, file: file, end: MeasuredRecordEnd(end)) { break }
            }
            crc.update(UnsafeRawBufferPointer(rebasing: input.window[0..<c.position]))
            input.consume(c.position)
        } else {
            // Mapped: one cursor runs over the whole region; the checksum of everything from the header to the
            // EOF byte is computed on another core while the records are decoded (see BackgroundCRC). Pages
            // both are done with are released every few MiB, so resident memory stays flat.
            // The file name for errors, read once: read from the input (a class) per record, it was retained
            // and released around every record.
            let file = input.name
            try decodeMapped(input, header: header, crc: &crc, options: options) { c in
                while true {
                    // No view into an earlier record outlives it: the pages before this one may be released.
                    input.release(before: c.offset)
                    if case .endOfFile = try parseOne(&parser, &c, &visitor, file: file) { break }
                }
            }
        }
        return try finish(input, header: header, crc: crc, options: options, &visitor)
    }

    /// Runs `records` with a cursor over the whole mapped region (from the first record; it leaves the
    /// cursor right after the EOF opcode) while the region's checksum is computed on another core (see
    /// `BackgroundCRC`); `crc` is then the checksum of everything before the trailer.
    @inlinable
    static func decodeMapped(_ input: InputBuffer, header: RDBHeader, crc: inout CRC64, options: RDBDecoderOptions,
                             _ records: (inout ByteCursor) throws -> Void) throws {
        let region = input.window
        let background = options.verifyChecksum && header.version >= 5 && region.count >= BackgroundCRC.minimumSize
            ? BackgroundCRC(region, initial: crc.value, input: input) : nil
        var c = input.cursor
        do {
            try records(&c)
        } catch {
            background?.cancel()
            throw error
        }
        if let background {
            crc = CRC64(background.finish(at: c.position))
        } else if options.verifyChecksum {
            crc.update(UnsafeRawBufferPointer(rebasing: region[0..<c.position]))
        }
        input.consume(c.position)
    }

    /// Reads the header (the input's window grown to hold it), reports it and checksums it.
    @inlinable
    static func readHeader<V: RDBVisitor>(_ input: InputBuffer, _ parser: inout RDBParser, _ crc: inout CRC64, _ visitor: inout V) throws -> RDBHeader {
        if input.isStreaming { input.limit = min(input.limit, parser.options.maxRecordBytes) }
        guard try input.fill(atLeast: 9) else {
            throw RDBError(.truncated, offset: input.offset, "input ends before the 9-byte RDB header (\(input.window.count) bytes)", file: input.name)
        }
        do {
            var c = input.cursor
            try parser.parseHeader(&c, &visitor)
            crc.update(input.window.prefix(c.position).rebased)
            input.consume(c.position)
        } catch var e as RDBError {
            e.file = input.name
            throw e
        }
        return parser.header!
    }

    /// After the EOF opcode: checks the CRC64 trailer against `crc` (the checksum of everything before
    /// it), tells the visitor the file ended, and returns the summary.
    @inlinable
    static func finish<V: RDBVisitor>(_ input: InputBuffer, header: RDBHeader, crc: CRC64, options: RDBDecoderOptions, _ visitor: inout V) throws -> RDBSummary {
        let status: RDBChecksumStatus
        if header.version >= 5 {
            guard try input.fill(atLeast: 8) else {
                throw RDBError(.truncated, offset: input.offset, "input ends before the 8-byte CRC64 trailer", file: input.name)
            }
            let stored = UInt64(littleEndian: input.window.loadUnaligned(as: UInt64.self))
            if stored == 0 {
                status = .notWritten
            } else if !options.verifyChecksum {
                status = .unchecked(stored)
            } else if stored == crc.value {
                status = .verified(stored)
            } else if options.salvage {
                status = .mismatch(stored: stored, computed: crc.value)
            } else {
                throw RDBError(.checksumMismatch, offset: input.offset,
                               "CRC64 trailer is \(hex(stored)) but the content's checksum is \(hex(crc.value))", file: input.name)
            }
            input.consume(8)
        } else {
            status = .absent
        }
        try visitor.endFile(checksum: status)
        return RDBSummary(header: header, checksum: status, endOffset: input.offset)
    }

    @inlinable
    static func parseOne<V: RDBVisitor>(
        _ parser: inout RDBParser, _ c: inout ByteCursor, _ visitor: inout V, _ input: InputBuffer, end: some RecordEndHint = UnknownRecordEnd()
    ) throws -> RDBRecordResult {
        try parseOne(&parser, &c, &visitor, file: input.name, end: end)
    }

    /// One record; an error names the file and, when a sink-side default raised it without one (e.g. a
    /// score parse), the cursor's offset.
    @inlinable
    static func parseOne<V: RDBVisitor>(
        _ parser: inout RDBParser, _ c: inout ByteCursor, _ visitor: inout V, file: String?, end: some RecordEndHint = UnknownRecordEnd()
    ) throws -> RDBRecordResult {
        do {
            return try parser.parseRecord(&c, &visitor, knownEnd: end)
        } catch var e as RDBError {
            if e.offset < 0 { e.offset = c.offset }
            e.file = file
            throw e
        }
    }

    /// Grows the window until the next record is entirely inside it (or the stream ends, or the record does
    /// not parse: the decode then reports it, as it would from a mapped file). It is stepped over without
    /// events on a copy of the parser (a SELECTDB is left for the decode). Returns where the record ends in
    /// the new window (so a big record is not walked once more to measure it), or -1.
    @usableFromInline
    static func ensureRecord(_ input: InputBuffer, _ parser: RDBParser, _ skipper: inout SkipEverything) throws -> Int {
        while input.isStreaming {
            var m = input.cursor
            var probe = parser
            do {
                _ = try probe.parseRecord(&m, &skipper)
                return m.position
            } catch let e as RDBError where e.code == .truncated {
                try growWindow(input, after: e)
            } catch {
                return -1  // not a truncation: the decode reports it, naming the file and the key
            }
        }
        return -1
    }

    /// Reads more of a stream after a walk of the window's record stopped at its end (`truncation`), to the
    /// buffer's end (a walk that starts again from the record's start; the buffer doubles when the record
    /// needs more than it holds), or another `resumeStep` bytes (a walk `resuming` where it stopped, which goes
    /// on as soon as they are in); throws when the record would need more than the input's limit.
    @usableFromInline
    static func growWindow(_ input: InputBuffer, after truncation: RDBError, resuming: Bool = false) throws {
        let e = truncation
        let have = input.window.count
        // What the record is known to need: from its start to the field that did not fit, plus the
        // field's claimed size. A claim beyond the limit is refused before anything is buffered.
        let needed = e.bytesNeeded.map { n in n > Int.max - max(0, e.offset - input.offset) ? Int.max : max(0, e.offset - input.offset) + n } ?? 0
        if have >= input.limit || needed > input.limit {
            // (What the window held does not enter the message: it depends on how the stream was read.)
            let what = e.bytesNeeded.map { "\($0) bytes claimed at offset \(e.offset)" } ?? e.message
            throw RDBError(.limitExceeded, offset: input.offset,
                           "a single record needs more than \(input.limit) bytes of buffer (\(what): a damaged file, or raise the streaming record limit)",
                           key: e.key, file: input.name)
        }
        // Read ahead (a record re-parsed after every small read would cost its size squared), but
        // wait only for the bytes known to be needed: a live stream may have nothing more yet.
        // The whole buffer when it has room (fewer refills; a live stream still stops at what it has).
        // Reading ahead does not grow the buffer more than the record is known to need (`fill` doubles it,
        // or more, when the record needs more than it holds): every page of it is written sooner or later,
        // so a buffer grown for bytes not needed yet (a 14 MB record read towards twice the window grew it
        // to 32 MiB) stays that much more resident for the whole decode.
        let atLeast = min(max(needed, have + 1), input.limit)
        let room = input.capacity(holding: atLeast)
        try input.fill(atLeast: atLeast, preferring: resuming ? min(have + resumeStep, room) : room)
    }

    /// Whether the stream's next record is a key whose value has element framing, the window filled until it
    /// holds what the parser reads of the key before `beginKey` (its start, and as much of the value as tells
    /// whether it is empty: its count, a quicklist's first node), and its count with the bytes its elements
    /// take at least.
    @usableFromInline
    static func readsValueStart(_ input: InputBuffer, _ parser: RDBParser) throws -> Bool {
        while input.isStreaming {
            var c = input.cursor
            do {
                guard case .key(let e) = try parser.recordStart(&c), RDBParser.hasElementFraming(e) else { return false }
                _ = try parser.isEmptyValue(c, e)
                _ = try parser.elementCount(&c, e)  // (a count is checked against the bytes in the window)
                return true
            } catch var e as RDBError where e.code == .truncated {
                if e.key == nil { e.key = parser.keyOfRecord(input.cursor) }  // (the error of a claim over the limit names it)
                try growWindow(input, after: e)
            } catch {
                return false
            }
        }
        return false
    }

    /// What a resumed walk reads at a time (`growWindow`).
    @usableFromInline static var resumeStep: Int { 1 << 18 }

    /// Decodes an RDB held in memory.
    @inlinable
    public static func decode<V: RDBVisitor>(
        bytes: UnsafeRawBufferPointer, into visitor: inout V, options: RDBDecoderOptions = .init()
    ) throws -> RDBSummary {
        try decode(InputBuffer(region: bytes), into: &visitor, options: options)
    }

    /// Decodes an RDB held in an array.
    @inlinable
    public static func decode<V: RDBVisitor>(
        bytes: [UInt8], into visitor: inout V, options: RDBDecoderOptions = .init()
    ) throws -> RDBSummary {
        try bytes.withUnsafeBytes { try decode(InputBuffer(region: $0), into: &visitor, options: options) }
    }

    @usableFromInline
    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: 16 - s.count) + s
    }
}

/// Answers `.skip` to every key: the streaming driver uses it to measure a record without events.
@usableFromInline
struct SkipEverything: RDBVisitor {
    @usableFromInline init() {}
    @usableFromInline
    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction { .skip }
}

extension UnsafeRawBufferPointer.SubSequence {
    @inlinable var rebased: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: self) }
}
