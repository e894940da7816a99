#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A part of a set's commands read on another thread into a sink of its own (`AOFVisitor.makeSplitPart`) while
/// this thread reads what comes before it, and merged into this thread's sink once its reader gets there: the
/// second part of a large memory-mapped AOF file (merged by `AOFTokenizer.run` where the part starts), or a
/// whole file of a multi-part set that comes after it (merged by `AOFReader.decode(path:)`; see `AOFReadAhead`).
///
/// Where a second part starts is a guess: the first `\r\n*N\r\n$` after a given point. A value can hold
/// those bytes, so the guess is checked, exactly, by the first part's reader: the part is used only if that
/// reader ends a command there. What the part cannot know is worked out then: the database selected where it
/// starts (its commands before its first `SELECT` carry -1, which the sink's merge replaces), and whether it
/// starts inside a MULTI block (then the part's first EXEC ends that block, and the block's commands read
/// before it come first; a part without such an EXEC, where the file ends inside the block, is not used).
/// A part that is not used costs its thread's time, and the first part's reader reads on as without a split.
/// A whole file needs no such check: it starts at a command, in database 0, outside a block, as on load.
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

    /// A whole file of commands (a fixed region, without an RDB preamble), from its start, in database 0.
    @usableFromInline
    convenience init(wholeFile input: InputBuffer, part: V, options: AOFOptions, name: String, kind: AOFFileKind, isLast: Bool) {
        self.init(input, from: input.offset, part: part, options: options, name: name, kind: kind, isLast: isLast)
        tokenizer.db = 0
    }

    /// Reads the part, on the thread reading it. (Inlinable: the part's reader is specialised for the sink
    /// like the first part's.)
    @inlinable
    func read() {
        do {
            part.commandBytes(from: start, to: start &+ input.window.count)
            try tokenizer.run(input, isLast: isLast, into: &part, summary: &summary, warnings: &warnings)
        } catch {
            self.error = error
        }
    }

    /// Starts reading the part on a thread of its own; false when no thread could be made.
    @inlinable
    func begin() -> Bool {
        AOFPartReader.start([self]) != nil
    }

    /// Waits until the part has been read.
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

/// A thread that reads parts (`AOFSplit`) one after another, in the order given, and tells when each is read.
@usableFromInline
final class AOFPartReader: @unchecked Sendable {
    @usableFromInline let monitor = Monitor()
    /// Parts read so far.
    @usableFromInline var finished = 0
    @usableFromInline var thread: pthread_t?

    @usableFromInline init() {}

    /// Starts reading `parts` on a new thread; nil (and nothing started) when no thread could be made.
    @inlinable
    static func start<V>(_ parts: [AOFSplit<V>]) -> AOFPartReader? {
        let reader = AOFPartReader()
        for (i, p) in parts.enumerated() {
            p.reader = reader
            p.place = i
        }
        reader.thread = startThread {
            for p in parts {
                p.read()
                reader.finished(one: ())
            }
        }
        if reader.thread == nil {
            for p in parts { p.reader = nil }
            return nil
        }
        return reader
    }

    @usableFromInline
    func finished(one: ()) {
        monitor.withLock { finished += 1 }
        monitor.broadcast()
    }

    /// Waits until the part at `place` has been read.
    @usableFromInline
    func wait(for place: Int) {
        guard thread != nil else { return }
        monitor.withLock { monitor.wait { finished > place } }
    }

    /// Waits until every part has been read and the thread has ended.
    @usableFromInline
    func join() {
        if let t = thread {
            pthread_join(t, nil)
            thread = nil
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
