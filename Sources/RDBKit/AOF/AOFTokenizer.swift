#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A growable buffer of `Int`s reused for the argument spans of every command. A struct (held in the
/// tokenizer, accessed statically in the hot loop); the small class only frees the memory.
@usableFromInline
struct AOFSpanBuffer {
    final class Owner {
        var pointer: UnsafeMutablePointer<Int>
        init(_ p: UnsafeMutablePointer<Int>) { pointer = p }
        deinit { pointer.deallocate() }
    }

    let owner: Owner
    @usableFromInline var pointer: UnsafeMutablePointer<Int>
    var capacity: Int
    @usableFromInline var count = 0
    /// The sum of the lengths appended since the last `reset`.
    @usableFromInline var lengths = 0

    init() {
        capacity = 64
        pointer = .allocate(capacity: capacity)
        owner = Owner(pointer)
    }

    @inline(__always)
    mutating func append(_ a: Int, _ b: Int) {
        if _slowPath(count &+ 2 > capacity) { grow() }
        pointer[count] = a
        pointer[count &+ 1] = b
        count &+= 2
        lengths &+= b
    }

    @inline(__always)
    mutating func reset() {
        count = 0
        lengths = 0
    }

    @inline(never)
    mutating func grow() {
        let newCapacity = capacity * 2
        let p = UnsafeMutablePointer<Int>.allocate(capacity: newCapacity)
        p.update(from: pointer, count: count)
        pointer.deallocate()
        pointer = p
        owner.pointer = p
        capacity = newCapacity
    }

    @inlinable var buffer: UnsafeBufferPointer<Int> { UnsafeBufferPointer(start: pointer, count: count) }

    /// The arguments laid out from `base`.
    @inlinable func arguments(_ base: UnsafeRawPointer?) -> AOFArguments {
        AOFArguments(base: base, spans: buffer, totalBytes: lengths)
    }
}

/// The RESP / inline / annotation tokenizer of one file.
@usableFromInline
struct AOFTokenizer {
    @usableFromInline let options: AOFOptions
    @usableFromInline let file: String
    @usableFromInline var spans = AOFSpanBuffer()
    @usableFromInline var splitter = AOFLineSplitter()
    /// The database commands run in; every file starts in db 0 (the server loads each file with a new client).
    @usableFromInline var db = 0

    /// Reads RESP commands, and keeps the resume state of one whose bytes are not all in the window yet.
    @usableFromInline var commandReader: RESPCommandReader
    /// Bytes of an annotation or inline line already searched for its line ending.
    @usableFromInline var pendingLine = 0
    /// EXEC (or DISCARD) commands read outside a MULTI block: where the second part of a split file starts
    /// inside a block, the first of them ends it (see `AOFSplit`).
    @usableFromInline var unmatchedExecs = 0

    @usableFromInline
    init(options: AOFOptions, file: String) {
        self.options = options
        self.file = file
        commandReader = RESPCommandReader(maxArguments: options.maxArguments, maxBulkBytes: options.maxBulkBytes)
    }

    /// What one step of the tokenizer found at a position of the window.
    @usableFromInline
    enum Step {
        /// A RESP command ending (exclusive, window-relative) at `end`; its spans are in `spans`.
        case command(end: Int)
        /// An inline command ending at `end`; the line (without its ending) is `lineStart..<lineEnd`.
        case inline(end: Int, lineStart: Int, lineEnd: Int)
        /// An annotation line ending at `end`; its text (without line ending) is `textStart..<textEnd`.
        case annotation(end: Int, textStart: Int, textEnd: Int)
        /// The window must hold at least `need` bytes (window-relative) to go on.
        case needMore(Int)
    }

    /// Reads commands until the end of the input.
    ///
    /// Positions are relative to the current window `w` (absolute offset `base`). `done` is where the
    /// delivered part ends; outside a MULTI block `scan` (the next item) equals it, inside one the block is
    /// kept from its MULTI (`done`) to `scan` until EXEC. The input is told what was consumed only before it
    /// is refilled, so a memory-mapped file is walked without touching the `InputBuffer` per command, except to
    /// tell it (one compare per item) that the bytes before `done` may be released: never past the start of an
    /// open MULTI block, whose commands are delivered from the window on EXEC.
    ///
    /// With `split`, the rest of the file from `split.start` is being read on another thread: when this reader
    /// gets there at a command boundary, it takes in what that part read (`AOFSplit.merge`) and stops; when it
    /// gets past it inside a command (the split was not at one), or the part cannot be used, it reads on.
    ///
    /// With `stops` (ascending absolute offsets where later pieces of the file start), it stops at the first of
    /// them that it reaches at a command boundary outside a MULTI block, and returns it (nil: it read to the end);
    /// with `claim` as well, only at those whose piece someone else reads (`claim(i)` false for stop `i`; true:
    /// the piece is now this reader's, which reads on through it). Every stop reached or passed is claimed.
    @inlinable @discardableResult
    mutating func run<V: AOFVisitor>(
        _ input: InputBuffer, isLast: Bool, into visitor: inout V,
        summary: inout AOFFileSummary, warnings: inout [String], split: AOFSplit<V>? = nil, stops: [Int] = [],
        claim: ((Int) -> Bool)? = nil
    ) throws -> Int? {
        var w = input.window
        var base = input.offset
        var done = 0
        var scan = 0
        var inMulti = false
        var blockCommands = 0
        var commands = 0
        var annotations = 0
        var stopAt = split?.start ?? stops.first ?? .max
        var nextStop = 0
        defer {
            summary.commands += commands
            summary.annotations += annotations
        }
        while true {
            input.release(before: base &+ done)
            if _slowPath(base &+ scan >= stopAt) {
                stopAt = .max
                let at = base &+ scan
                if let split {
                    // Pages this reader is done with, before it may wait (reading the last pieces meanwhile).
                    input.releasePages(before: base &+ done)
                    if at == split.start, try split.usable(inMulti: inMulti) {
                        // The block open here goes on in the part, which ends it: its commands so far come first.
                        if inMulti {
                            try replayBlock(w, from: done, to: scan, base: base, into: &visitor, commands: &commands, annotations: &annotations)
                        }
                        try split.merge(into: &visitor, dbAtStart: db, summary: &summary, warnings: &warnings)
                        if let end = split.endedAt, !split.followers.isEmpty {
                            try AOFSplit.mergePieces(split.followers[...], from: end, db: split.tokenizer.db >= 0 ? split.tokenizer.db : db,
                                                     of: input, options: options, into: &visitor, summary: &summary, warnings: &warnings)
                        }
                        input.consume(w.count)
                        return nil
                    }
                } else {
                    while nextStop < stops.count && stops[nextStop] <= at {
                        let mine = claim?(nextStop) ?? false
                        if !mine && stops[nextStop] == at && !inMulti {
                            input.consume(w.count)
                            return at
                        }
                        nextStop &+= 1
                    }
                    if nextStop < stops.count { stopAt = stops[nextStop] }
                }
            }
            if scan == w.count || w.baseAddress == nil {
                if input.isStreaming {
                    input.consume(done)
                    scan -= done
                    done = 0
                    let more = try input.fillMore()
                    w = input.window
                    base = input.offset
                    if more { continue }
                }
                input.consume(done)
                if inMulti {
                    try tornTail(input, at: 0, isLast: isLast,
                                 what: "the file ends inside a MULTI block (\(blockCommands) commands, no EXEC)",
                                 summary: &summary, warnings: &warnings)
                } else {
                    summary.validBytes = input.offset
                }
                return nil
            }
            switch try step(w, at: scan, offset: base &+ scan) {
            case .needMore(let need):
                input.consume(done)
                scan -= done
                let needed = need - done
                done = 0
                if input.isStreaming {
                    let loaded = input.window.count
                    // Grow with the bytes actually present, so a lying length does not allocate up front.
                    try input.fill(atLeast: min(needed, max(loaded &* 2, loaded &+ (1 << 20))))
                    w = input.window
                    base = input.offset
                    continue
                }
                let what = inMulti
                    ? "the file ends inside a MULTI block (\(blockCommands) commands, no EXEC; the last one is incomplete)"
                    : "the file ends inside the last command"
                try tornTail(input, at: inMulti ? 0 : scan, isLast: isLast, what: what,
                             summary: &summary, warnings: &warnings)
                return nil
            case .annotation(let end, let ts, let te):
                if !inMulti {
                    try visitor.annotation(RDBString(bytes: UnsafeRawBufferPointer(rebasing: w[ts..<te])), offset: base &+ scan)
                    annotations &+= 1
                    done = end
                }
                scan = end
            case .command(let end):
                let kind = AOFTokenizer.classify(spans.arguments(w.baseAddress! + scan))
                try advance(kind, end: end, inline: false, w, base: base, scan: &scan, done: &done, inMulti: &inMulti,
                            blockCommands: &blockCommands, commands: &commands, annotations: &annotations, into: &visitor)
            case .inline(let end, let ls, let le):
                let kind = try splitInline(w, ls, le, offset: base &+ scan)
                try advance(kind, end: end, inline: true, w, base: base, scan: &scan, done: &done, inMulti: &inMulti,
                            blockCommands: &blockCommands, commands: &commands, annotations: &annotations, into: &visitor)
            }
        }
    }

    /// One command (RESP, or inline and split into `splitter`) read up to `end`: delivered now outside a MULTI
    /// block; inside one, held in the window until EXEC, which delivers the whole block.
    @inlinable @inline(__always)
    mutating func advance<V: AOFVisitor>(
        _ kind: Kind, end: Int, inline: Bool, _ w: UnsafeRawBufferPointer, base: Int, scan: inout Int, done: inout Int,
        inMulti: inout Bool, blockCommands: inout Int, commands: inout Int, annotations: inout Int, into visitor: inout V
    ) throws {
        if !inMulti {
            if kind == .multi {
                inMulti = true
                blockCommands = 1
            } else {
                if kind == .exec { unmatchedExecs &+= 1 }
                if inline {
                    try deliverInline(offset: base &+ scan, byteCount: end &- scan, into: &visitor)
                } else {
                    try deliverRESP(w, start: scan, end: end, offset: base &+ scan, into: &visitor)
                }
                commands &+= 1
                done = end
            }
            scan = end
            return
        }
        blockCommands &+= 1
        scan = end
        if kind == .exec {
            try replayBlock(w, from: done, to: scan, base: base, into: &visitor, commands: &commands, annotations: &annotations)
            done = scan
            inMulti = false
        }
    }

    /// Delivers the items of a complete MULTI block, `from..<to` of the window.
    @inlinable
    mutating func replayBlock<V: AOFVisitor>(
        _ w: UnsafeRawBufferPointer, from: Int, to end: Int, base: Int, into visitor: inout V,
        commands: inout Int, annotations: inout Int
    ) throws {
        var pos = from
        while pos < end {
            switch try step(w, at: pos, offset: base &+ pos) {
            case .command(let e):
                try deliverRESP(w, start: pos, end: e, offset: base &+ pos, into: &visitor)
                commands &+= 1
                pos = e
            case .inline(let e, let ls, let le):
                _ = try splitInline(w, ls, le, offset: base &+ pos)
                try deliverInline(offset: base &+ pos, byteCount: e &- pos, into: &visitor)
                commands &+= 1
                pos = e
            case .annotation(let e, let ts, let te):
                try visitor.annotation(RDBString(bytes: UnsafeRawBufferPointer(rebasing: w[ts..<te])), offset: base &+ pos)
                annotations &+= 1
                pos = e
            case .needMore:
                preconditionFailure("a MULTI block was checked complete before it is delivered")
            }
        }
    }

    /// Handles an incomplete end of input at window position `at`: a warning (and the rest is dropped),
    /// or an error when strict or when more files follow.
    @usableFromInline
    func tornTail(
        _ input: InputBuffer, at: Int, isLast: Bool, what: String,
        summary: inout AOFFileSummary, warnings: inout [String]
    ) throws {
        let offset = input.offset + at
        let dropped = input.window.count - at
        if options.strict || !isLast {
            let why = isLast ? "(strict mode)" : "(only the last file of an AOF may end with a torn command)"
            throw RDBError(.truncated, offset: offset, "\(what): \(dropped) bytes from offset \(offset) are incomplete \(why)", file: file)
        }
        warnings.append("\(file): offset \(offset): \(what); dropped the last \(dropped) bytes (the server does the same with aof-load-truncated yes)")
        summary.droppedTailOffset = offset
        summary.droppedTailBytes = dropped
        input.consume(at)
        summary.validBytes = input.offset
        input.consume(input.window.count)
    }

    @usableFromInline enum Kind { case multi, exec, other }

    /// Whether the command just read is MULTI, EXEC (or DISCARD).
    @usableFromInline
    static func classify(_ args: AOFArguments) -> Kind {
        let name = args.bytes(0)
        if name.count == 5 && AOFArguments.equalsIgnoringCase(name, "MULTI") { return .multi }
        if name.count == 4 && AOFArguments.equalsIgnoringCase(name, "EXEC") { return .exec }
        if name.count == 7 && AOFArguments.equalsIgnoringCase(name, "DISCARD") { return .exec }
        return .other
    }

    /// Delivers the RESP command at `start..<end` whose spans were just read.
    @inlinable
    mutating func deliverRESP<V: AOFVisitor>(
        _ w: UnsafeRawBufferPointer, start: Int, end: Int, offset: Int, into visitor: inout V
    ) throws {
        let args = spans.arguments(UnsafeRawPointer(w.baseAddress!) + start)
        if let newDB = AOFTokenizer.selectedDB(args) { db = newDB }
        try visitor.command(AOFCommand(db: db, offset: offset, byteCount: end - start, isInline: false, args: args))
    }

    /// Splits an inline line into `splitter` and copies its spans; returns its kind.
    @usableFromInline
    mutating func splitInline(_ w: UnsafeRawBufferPointer, _ ls: Int, _ le: Int, offset: Int) throws -> Kind {
        let line = UnsafeRawBufferPointer(rebasing: w[ls..<le])
        do {
            _ = try splitter.split(line)
        } catch {
            throw formatError(offset, at: offset + error.position, "inline command: \(error.message)")
        }
        spans.reset()
        var i = 0
        while i < splitter.spans.count {
            spans.append(splitter.spans[i], splitter.spans[i + 1])
            i += 2
        }
        let spans = self.spans
        return splitter.scratch.withUnsafeBytes { AOFTokenizer.classify(spans.arguments($0.baseAddress)) }
    }

    /// Delivers the inline command held by `splitter`.
    @inlinable
    mutating func deliverInline<V: AOFVisitor>(offset: Int, byteCount: Int, into visitor: inout V) throws {
        let spans = self.spans
        let newDB = splitter.scratch.withUnsafeBytes { AOFTokenizer.selectedDB(spans.arguments($0.baseAddress)) }
        if let newDB { db = newDB }
        let db = self.db
        try splitter.scratch.withUnsafeBytes { raw in
            let args = spans.arguments(raw.baseAddress)
            try visitor.command(AOFCommand(db: db, offset: offset, byteCount: byteCount, isInline: true, args: args))
        }
    }

    /// The database a SELECT with a valid index switches to (an invalid SELECT fails on the server and
    /// changes nothing); nil for other commands.
    @inlinable @inline(__always)
    static func selectedDB(_ args: AOFArguments) -> Int? {
        if args.count == 2, args.bytes(0).count == 6, AOFArguments.equalsIgnoringCase(args.bytes(0), "SELECT"),
           let v = DecimalFormatter.parseCanonical(args.bytes(1)), v >= 0, v <= Int64(Int32.max)
        {
            return Int(v)
        }
        return nil
    }

    // MARK: tokenizing

    /// Reads one item at window position `start` (absolute `offset`).
    @usableFromInline
    mutating func step(_ w: UnsafeRawBufferPointer, at start: Int, offset: Int) throws -> Step {
        let base = w.baseAddress!
        let first = base.load(fromByteOffset: start, as: UInt8.self)
        switch first {
        case 0x2A:  // '*'
            return try readRESP(w, start, offset)
        case 0x23:  // '#'
            guard let nl = AOFTokenizer.findNewline(base, from: start &+ pendingLine, to: min(w.count, start + options.maxAnnotationBytes)) else {
                if w.count - start >= options.maxAnnotationBytes {
                    throw formatError(offset, at: offset, "annotation line longer than \(options.maxAnnotationBytes) bytes (no line ending)")
                }
                pendingLine = w.count - start
                return .needMore(w.count + 1)
            }
            pendingLine = 0
            let textEnd = nl > start && base.load(fromByteOffset: nl - 1, as: UInt8.self) == 0x0D ? nl - 1 : nl
            return .annotation(end: nl + 1, textStart: start, textEnd: textEnd)
        case 0x41...0x5A, 0x61...0x7A, 0x22, 0x27:  // letters and quotes: an inline command
            if !options.allowInline {
                throw formatError(offset, at: offset, "expected '*' (a command) or '#' (an annotation), found \(RESPTokenizer.describe(first)) (inline commands are not allowed)")
            }
            guard let nl = AOFTokenizer.findNewline(base, from: start &+ pendingLine, to: min(w.count, start + options.maxInlineBytes)) else {
                if w.count - start >= options.maxInlineBytes {
                    throw formatError(offset, at: offset, "inline command longer than \(options.maxInlineBytes) bytes (no line ending)")
                }
                pendingLine = w.count - start
                return .needMore(w.count + 1)
            }
            pendingLine = 0
            let lineEnd = nl > start && base.load(fromByteOffset: nl - 1, as: UInt8.self) == 0x0D ? nl - 1 : nl
            for i in start..<lineEnd {
                let c = base.load(fromByteOffset: i, as: UInt8.self)
                if c < 0x20 && c != 0x09 {
                    throw formatError(offset, at: offset + i - start, "control byte 0x\(RESPTokenizer.hex(c)) in an inline command line")
                }
            }
            return .inline(end: nl + 1, lineStart: start, lineEnd: lineEnd)
        default:
            throw formatError(offset, at: offset, "expected '*' (a command) or '#' (an annotation), found \(RESPTokenizer.describe(first))")
        }
    }

    @inline(__always)
    static func findNewline(_ base: UnsafeRawPointer, from: Int, to: Int) -> Int? {
        guard to > from, let p = memchr(base + from, 0x0A, to - from) else { return nil }
        return UnsafeRawPointer(p) - base
    }

    /// Reads a RESP array of bulk strings at `start` into `spans`, resuming after a previous `.needMore`.
    @inline(__always)
    mutating func readRESP(_ w: UnsafeRawBufferPointer, _ start: Int, _ offset: Int) throws -> Step {
        do {
            while true {
                switch try commandReader.next(w, commandStart: start) {
                case .header:
                    spans.reset()
                case .argument(let s, let c):
                    spans.append(s &- start, c)
                case .end(let end):
                    return .command(end: end)
                case .needMore(let k):
                    return .needMore(k)
                }
            }
        } catch {
            if error.kind == .tooLarge { throw RDBError(.limitExceeded, offset: offset, error.message, file: file) }
            throw formatError(offset, at: offset &+ (error.position &- start), error.message)
        }
    }

    @inline(never)
    func formatError(_ commandOffset: Int, at byte: Int, _ message: String) -> RDBError {
        RDBError(.aofFormat, offset: commandOffset, "\(message) (at byte \(byte), in the command starting at \(commandOffset))", file: file)
    }
}
