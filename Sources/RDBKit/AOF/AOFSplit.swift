#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A part of a set's commands read on another thread (or taken by a thread that would wait for it) into a sink
/// of its own (`AOFVisitor.makeSplitPart`) while this thread reads what comes before it, and merged into this
/// thread's sink once its reader gets there: the second part of a large memory-mapped AOF file (merged by
/// `AOFTokenizer.run` where the part starts) and the pieces it is cut in (its `followers`, merged after it), or
/// a piece of a later file of a multi-part set (merged by `AOFReadAhead.merged`).
///
/// Where a second part starts is a guess: the first `\r\n*N\r\n$` after a given point. A value can hold
/// those bytes, so the guess is checked, exactly, by the first part's reader: the part is used only if that
/// reader ends a command there. What the part cannot know is worked out then: the database selected where it
/// starts (its commands before its first `SELECT` carry -1, which the sink's merge replaces), and whether it
/// starts inside a MULTI block (then the part's first EXEC ends that block, and the block's commands read
/// before it come first; a part without such an EXEC, where the file ends inside the block, is not used).
/// A part that is not used costs its thread's time, and the first part's reader reads on as without a split.
/// The first piece of a file needs no such check: it starts at a command, in database 0, outside a block, as on
/// load. Later pieces are checked like a second part, without MULTI blocks (see `AOFReadAhead`).
@usableFromInline
final class AOFSplit<V: AOFVisitor>: @unchecked Sendable {
    /// The absolute offset where the part starts.
    @usableFromInline let start: Int
    @usableFromInline let input: InputBuffer
    @usableFromInline let isLast: Bool
    @usableFromInline var part: V
    @usableFromInline var tokenizer: AOFTokenizer
    @usableFromInline var summary: AOFFileSummary
    @usableFromInline var warnings: [String] = []
    @usableFromInline var error: (any Error)?
    /// The thread reading the part (after the parts handed to it before this one), and this part's place there.
    @usableFromInline var reader: AOFPartReader?
    @usableFromInline var place = 0
    /// Where later pieces of the file start: the part stops at the first it reaches at a command outside a
    /// MULTI block (`AOFTokenizer.run`) whose piece it does not claim (`claims`: the piece at the reader's place
    /// `place + 1 + i` for stop `i`, if still free; else none), and `endedAt` is that offset (nil: it read to the end).
    @usableFromInline var stops: [Int] = []
    @usableFromInline var claims = false
    @usableFromInline var endedAt: Int?
    /// The later pieces of the file (a single file's part read in pieces: `AOFReader.splitting`), each ending
    /// where the next starts: read on through by this part's thread, or, those a waiting thread took, each into a
    /// sink of its own; taken in after this part (`mergePieces`).
    @usableFromInline var followers: [AOFSplit<V>] = []

    /// A part of `input` (a fixed region: a mapped file) from the absolute offset `start`.
    @usableFromInline
    init(_ input: InputBuffer, from start: Int, part: V, options: AOFOptions, name: String, kind: AOFFileKind, isLast: Bool) {
        self.start = start
        self.input = InputBuffer(partOf: input, from: start)
        self.isLast = isLast
        self.part = part
        tokenizer = AOFTokenizer(options: options, file: name)
        tokenizer.db = -1
        summary = AOFFileSummary(name: name, kind: kind)
    }

    /// A file of commands (a fixed region, without an RDB preamble) from its start, in database 0.
    @usableFromInline
    convenience init(fileStart input: InputBuffer, part: V, options: AOFOptions, name: String, kind: AOFFileKind, isLast: Bool) {
        self.init(input, from: input.offset, part: part, options: options, name: name, kind: kind, isLast: isLast)
        tokenizer.db = 0
    }

    /// Reads the part, on whichever thread takes it. (Inlinable: the part's reader is specialised for the sink
    /// like the first part's.)
    @inlinable
    func read() {
        do {
            part.commandBytes(from: start, to: start &+ input.window.count)
            let claim: ((Int) -> Bool)? = claims ? { [reader, place] i in reader?.claim(place + 1 + i) ?? false } : nil
            endedAt = try tokenizer.run(input, isLast: isLast, into: &part, summary: &summary, warnings: &warnings,
                                        stops: stops, claim: claim)
            // Its last pages too (a piece ends between two release steps): another reader may hold pages of
            // its own meanwhile.
            input.releasePages(before: endedAt ?? input.offset)
        } catch {
            self.error = error
        }
    }

    /// Whether the part has been read (as a part of its own: not read on into the one before it).
    @usableFromInline
    var isRead: Bool {
        guard let reader else { return true }
        return reader.monitor.withLock { reader.done[place] }
    }

    /// Waits until the part has been read (reading, meanwhile, parts of the same thread nobody has taken).
    @usableFromInline
    func join() {
        reader?.wait(for: place)
    }

    /// Waits until the thread reading the part has read every part handed to it, and has ended.
    @usableFromInline
    func finish() {
        reader?.join()
    }

    /// Once the first part's reader has ended a command at `start`: whether the part can be taken as read
    /// (false: the reader reads on). A part that ended with an error, which the reader would meet at the same
    /// byte, throws it.
    @usableFromInline
    func usable(inMulti: Bool) throws -> Bool {
        join()
        // Inside a MULTI block, the part read its commands as if outside one, which is the same only if the
        // block ends in the part (else the file ends inside it, a torn tail from the block's start).
        if inMulti && tokenizer.unmatchedExecs == 0 { return false }
        if error is AOFSplitPartGaveUp { return false }
        if let error { throw error }
        return true
    }

    /// `input`'s commands from `at` (relative to its window) to its end, cut in pieces about `options.pieceBytes`
    /// apart (`AOFReadAhead.pieceStarts`) and chained (`chain`): the first with the sink `first`, starting at a
    /// command in database 0 when `atFileStart` (a file's first piece), else at a guessed command start in a
    /// database it does not know; each later one with a sink from `makePart` (nil when it gives none). The pages
    /// the search for where pieces start touched are given back.
    @inlinable
    static func cut(_ input: InputBuffer, from at: Int, first: V, atFileStart: Bool, options: AOFOptions, name: String,
                    kind: AOFFileKind, isLast: Bool, makePart: () -> V?) -> [AOFSplit<V>]? {
        let starts = AOFReadAhead<V>.pieceStarts(UnsafeRawBufferPointer(rebasing: input.window[at...]), bytes: options.pieceBytes)
        var pieces = [atFileStart
            ? AOFSplit(fileStart: input, part: first, options: options, name: name, kind: kind, isLast: isLast)
            : AOFSplit(input, from: input.offset + at, part: first, options: options, name: name, kind: kind, isLast: isLast)]
        for start in starts.dropFirst() {
            guard let part = makePart() else { return nil }
            pieces.append(AOFSplit(input, from: input.offset + at + start, part: part, options: options, name: name,
                                   kind: kind, isLast: isLast))
        }
        input.releasePages(after: input.offset + at)
        chain(pieces)
        return pieces
    }

    /// Makes `pieces` (of one file, in order) a chain: each stops where a later one starts, unless its reader
    /// claims that one (`claims`) and reads on through it.
    @inlinable
    static func chain(_ pieces: [AOFSplit<V>]) {
        let starts = pieces.map(\.start)
        for (s, piece) in pieces.enumerated() {
            piece.stops = Array(starts[(s + 1)...])
            piece.claims = true
        }
    }

    /// Takes in pieces of one file (`input`), read by the parts' thread or taken by this one, in order: those that
    /// start where the one before ended, from `at` in database `db` (a piece that starts before that was read
    /// over by the one before it). A piece whose sink gave up (`AOFSplitPartGaveUp`) is read here instead, up to
    /// where a later piece that was read starts; one that ended with an error throws it.
    @inlinable
    static func mergePieces(_ pieces: ArraySlice<AOFSplit<V>>, from at: Int, db: Int, of input: InputBuffer, options: AOFOptions,
                            into visitor: inout V, summary: inout AOFFileSummary, warnings: inout [String]) throws {
        var at = at, db = db
        for (s, piece) in zip(pieces.indices, pieces) where piece.start == at {
            piece.join()
            if piece.error is AOFSplitPartGaveUp {
                var tokenizer = AOFTokenizer(options: options, file: piece.summary.name)
                tokenizer.db = db
                let region = InputBuffer(partOf: input, from: at)
                let stops = pieces[(s + 1)...].filter(\.isRead).map(\.start)
                if let end = try tokenizer.run(region, isLast: piece.isLast, into: &visitor, summary: &summary, warnings: &warnings, stops: stops) {
                    at = end
                }
                db = tokenizer.db
                continue
            }
            if let error = piece.error { throw error }
            try piece.merge(into: &visitor, dbAtStart: db, summary: &summary, warnings: &warnings)
            if piece.tokenizer.db >= 0 { db = piece.tokenizer.db }
            if let end = piece.endedAt { at = end }
        }
    }

    /// Hands the part's sink, counts and warnings to the first part's.
    @usableFromInline
    func merge(into visitor: inout V, dbAtStart: Int, summary total: inout AOFFileSummary, warnings all: inout [String]) throws {
        try visitor.mergeSplitPart(part, dbAtStart: dbAtStart)
        total.commands += summary.commands
        total.annotations += summary.annotations
        total.validBytes = summary.validBytes
        total.droppedTailOffset = summary.droppedTailOffset
        total.droppedTailBytes = summary.droppedTailBytes
        all += warnings
    }

    /// Where a part may start in `window` (relative to it): the first `\r\n*N\r\n$` from `from` (its middle by
    /// default) on, at its `*`; nil when there is none within a few MiB of there.
    @usableFromInline
    static func splitPoint(_ w: UnsafeRawBufferPointer, from: Int? = nil) -> Int? {
        guard let p = w.baseAddress, w.count >= 64 else { return nil }
        var i = max(2, min(from ?? w.count / 2, w.count))
        let limit = min(w.count &- 32, i + (4 << 20))
        @inline(__always) func byte(_ k: Int) -> UInt8 { p.load(fromByteOffset: k, as: UInt8.self) }
        @inline(__always) func digits(_ k: Int) -> Int {
            var e = k
            while e < k + 10 && byte(e) >= 0x30 && byte(e) <= 0x39 { e += 1 }
            return e
        }
        while i < limit {
            guard let found = memchr(p + i, 0x2A, limit - i) else { return nil }
            let star = UnsafeRawPointer(found) - p
            i = star + 1
            guard byte(star - 2) == 0x0D && byte(star - 1) == 0x0A else { continue }
            let e = digits(star + 1)
            guard e > star + 1 && byte(e) == 0x0D && byte(e + 1) == 0x0A && byte(e + 2) == 0x24 else { continue }
            let f = digits(e + 3)
            guard f > e + 3 && byte(f) == 0x0D && byte(f + 1) == 0x0A else { continue }
            return star
        }
        return nil
    }
}

/// Thrown by the sink of a split file's second part (`AOFVisitor.makeSplitPart`) that cannot count it so that
/// the merge is the same as one pass (a report whose table of names is full): the part is dropped, and the
/// first part's reader reads on.
public struct AOFSplitPartGaveUp: Error {
    public init() {}
}

/// A thread that reads parts (`AOFSplit`) in the order given, while a thread that waits for one of them reads
/// the parts nobody has taken yet, the last first: neither waits while a part is left to read, and the two meet
/// within a part of the end.
@usableFromInline
final class AOFPartReader: @unchecked Sendable {
    @usableFromInline let monitor = Monitor()
    /// What reads each part (emptied once the thread has ended: they hold the parts, which hold this).
    @usableFromInline var reads: [() -> Void]
    /// Parts before `taken` are the thread's; from `stolen` on, the waiting thread's; whether each has been read.
    @usableFromInline var taken = 0
    @usableFromInline var stolen: Int
    @usableFromInline var done: [Bool]
    @usableFromInline var thread: pthread_t?

    @usableFromInline
    init(reads: [() -> Void]) {
        self.reads = reads
        stolen = reads.count
        done = Array(repeating: false, count: reads.count)
    }

    /// Starts reading `parts` on a new thread; nil (and nothing started) when no thread could be made.
    @inlinable
    static func start<V>(_ parts: [AOFSplit<V>]) -> AOFPartReader? {
        let reader = AOFPartReader(reads: parts.map { p in { p.read() } })
        for (i, p) in parts.enumerated() {
            p.reader = reader
            p.place = i
        }
        guard reader.begin() else {
            for p in parts { p.reader = nil }
            return nil
        }
        return reader
    }

    /// Starts the thread, which runs the reads nobody else has taken, in order; false when it could not be made.
    @usableFromInline
    func begin() -> Bool {
        thread = startThread { [self] in
            while let i = next(fromTheEnd: false) {
                reads[i]()
                finished(i)
            }
        }
        if thread == nil { reads = [] }
        return thread != nil
    }

    /// Takes part `i` for the thread, read on into the part before it, if nobody has taken it (the thread takes
    /// parts in order).
    @usableFromInline
    func claim(_ i: Int) -> Bool {
        monitor.withLock {
            guard i == taken && taken < stolen else { return false }
            taken += 1
            return true
        }
    }

    /// The next part nobody has taken, from the start (the thread) or from the end (a waiting thread); nil: none.
    @usableFromInline
    func next(fromTheEnd: Bool) -> Int? {
        monitor.withLock {
            guard taken < stolen else { return nil }
            if fromTheEnd {
                stolen -= 1
                return stolen
            }
            taken += 1
            return taken - 1
        }
    }

    @usableFromInline
    func finished(_ i: Int) {
        monitor.withLock { done[i] = true }
        monitor.broadcast()
    }

    /// Waits until the part at `place` has been read, reading meanwhile the parts nobody has taken (the last
    /// first, each on this thread).
    @usableFromInline
    func wait(for place: Int) {
        guard thread != nil else { return }
        while true {
            let steal: Int? = monitor.withLock {
                if done[place] { return nil }
                if taken < stolen {
                    stolen -= 1
                    return stolen
                }
                monitor.wait { done[place] }
                return nil
            }
            guard let i = steal else { return }
            reads[i]()
            finished(i)
        }
    }

    /// Waits until every part has been read and the thread has ended.
    @usableFromInline
    func join() {
        if let t = thread {
            pthread_join(t, nil)
            thread = nil
            reads = []
        }
    }

    deinit {
        // Released last by its own thread (its owner let go without joining): that thread cannot join itself.
        if let t = thread, pthread_equal(t, pthread_self()) != 0 {
            pthread_detach(t)
        } else {
            join()
        }
    }
}
