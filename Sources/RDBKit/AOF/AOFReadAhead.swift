#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a multi-part set (a BASE and its INCR files) is read on two cores: this thread reads the files in order up
/// to a cut near the middle of the set's bytes, while another thread reads what lies after the cut (the rest of
/// the file the cut falls in, as a second part, then each later file), each into a sink of its own
/// (`AOFVisitor.makeSplitPart`), merged in order as this thread gets to it. The later files are cut in pieces of
/// a few MiB: this thread, when it would wait for the other, reads the last pieces nobody has taken, each into a
/// sink of its own (`AOFPartReader`), and the other reads a file on through its pieces until it gets to one
/// taken so. The two meet within a piece of each other however fast each goes, and a piece costs a merge only
/// when it was taken.
///
/// Reading each file in two parts instead would meet the other thread once per file (each time waiting for the
/// slower of the two), and leave the other core idle during a file that cannot be read in parts (an RDB BASE,
/// decoded record after record). Here an RDB BASE is read beside the files after it. The cut falls at a file's
/// end when the middle is inside an RDB, and files read in pieces must hold only commands (no RDB preamble: an
/// INCR never has one).
///
/// A piece starts at a guessed command start (`AOFSplit.splitPoint`), in a database it does not know (-1, like a
/// second part), and ends where it reaches the start of a piece read by the other thread at a command outside a
/// MULTI block; a piece is used only if the one before ended at its start (else that one read on over it). One
/// whose sink gave up (`AOFSplitPartGaveUp`) is read here instead, up to the next piece read.
@usableFromInline
final class AOFReadAhead<V: AOFVisitor> {
    /// Every file of the set, opened (memory-mapped).
    @usableFromInline let inputs: [InputBuffer]
    /// The file the cut falls inside, with the part of it after the cut (nil: the cut is at a file's start).
    @usableFromInline let cutFile: Int
    @usableFromInline let split: AOFSplit<V>?
    /// The first file read in pieces, and the pieces of it and of the files after it.
    @usableFromInline let firstInPieces: Int
    @usableFromInline let pieces: [[AOFSplit<V>]]
    /// The thread reading `split` and then the pieces.
    @usableFromInline let reader: AOFPartReader

    @usableFromInline
    init(inputs: [InputBuffer], cutFile: Int, split: AOFSplit<V>?, firstInPieces: Int, pieces: [[AOFSplit<V>]], reader: AOFPartReader) {
        self.inputs = inputs
        self.cutFile = cutFile
        self.split = split
        self.firstInPieces = firstInPieces
        self.pieces = pieces
        self.reader = reader
    }

    /// Where to cut the set `files` (the first one opened as `first`), with the other thread started on what lies
    /// after the cut; nil when the set is read one file after another (one file, one core, a sink without
    /// parts, a file that is not memory-mapped, fewer than `AOFOptions.splitMinimumBytes` in all, or too
    /// little after the cut).
    @inlinable
    static func start(_ first: InputBuffer, _ files: [(path: String, kind: AOFFileKind)], into visitor: inout V,
                      options: AOFOptions) throws -> AOFReadAhead<V>? {
        let n = files.count
        guard options.splitMinimumBytes > 0, n > 1, availableCores() > 1 else { return nil }
        var inputs = [first]
        for f in files.dropFirst() { inputs.append(try InputBuffer.open(path: f.path)) }
        guard inputs.allSatisfy({ !$0.isStreaming }) else { return nil }
        for (input, f) in zip(inputs, files) where input.name == nil { input.name = f.path }
        let sizes = inputs.map { $0.window.count }
        let isRDB = inputs.map { InputKind.startsWithRDBMagic($0.window) }
        let total = sizes.reduce(0, +), middle = total / 2
        guard total >= options.splitMinimumBytes else { return nil }
        // The file the middle falls in, and the bytes before it.
        var k = 0, before = 0
        while k < n - 1 && before + sizes[k] <= middle {
            before += sizes[k]
            k += 1
        }
        var at: Int?
        var firstInPieces: Int
        if !isRDB[k], let p = AOFSplit<V>.splitPoint(inputs[k].window, from: middle - before) {
            at = p
            firstInPieces = k + 1
        } else {
            // At the end of that file or at its start, whichever is nearer the middle (not before the first file).
            firstInPieces = k > 0 && middle - before < before + sizes[k] - middle ? k : k + 1
        }
        let after = (at.map { sizes[k] - $0 } ?? 0) + sizes[min(firstInPieces, n)...].reduce(0, +)
        guard after >= options.splitMinimumBytes / 2, !isRDB[min(firstInPieces, n)...].contains(true) else { return nil }
        var parts: [AOFSplit<V>] = []
        var split: AOFSplit<V>?
        if let at {
            guard let part = visitor.makeSplitPart() else { return nil }
            split = AOFSplit(inputs[k], from: inputs[k].offset + at, part: part, options: options, name: files[k].path,
                             kind: files[k].kind, isLast: k == n - 1)
            parts.append(split!)
        }
        var pieces: [[AOFSplit<V>]] = []
        for j in firstInPieces..<n {
            guard let first = visitor.makeSplitPart(),
                  let file = AOFSplit.cut(inputs[j], from: 0, first: first, atFileStart: true, options: options, name: files[j].path,
                                          kind: files[j].kind, isLast: j == n - 1, makePart: { visitor.makeSplitPart() })
            else { return nil }
            pieces.append(file)
            parts += file
        }
        // Two decoders' pages are resident together: each gives them back twice as often.
        for input in inputs { input.releaseEvery(InputBuffer.releaseStep / 2) }
        guard let reader = AOFPartReader.start(parts) else { return nil }
        return AOFReadAhead(inputs: inputs, cutFile: at == nil ? firstInPieces : k, split: split, firstInPieces: firstInPieces,
                            pieces: pieces, reader: reader)
    }

    /// Where the pieces of a file of commands start (relative to it): at 0, then at guessed command starts about
    /// `bytes` apart (at most 64 pieces). A guess inside a MULTI block is read over (the piece before cannot stop
    /// there), so where blocks are many (the server writes one around each transaction and, from 7.0, each
    /// script's writes) a piece starts at a `MULTI` as the server writes it (`*1\r\n$5\r\nMULTI\r\n`) when one
    /// follows the guess within 64 KiB.
    @usableFromInline
    static func pieceStarts(_ w: UnsafeRawBufferPointer, bytes: Int) -> [Int] {
        let step = max(min(bytes, w.count &+ 1), w.count / 64, 1)
        var starts = [0]
        var from = step
        while from + step / 2 < w.count, let p = AOFSplit<V>.splitPoint(w, from: from) {
            let start = multiAfter(w, p, within: 64 << 10) ?? p
            starts.append(start)
            from = start + step
        }
        return starts
    }

    /// The offset of the first `*1\r\n$5\r\nMULTI\r\n` after a line ending, from `from` and within `within` bytes of
    /// it, at its `*`.
    @usableFromInline
    static func multiAfter(_ w: UnsafeRawBufferPointer, _ from: Int, within: Int) -> Int? {
        let needle: StaticString = "*1\r\n$5\r\nMULTI\r\n"
        let n = needle.utf8CodeUnitCount
        let end = min(w.count, from + within) - n
        guard let p = w.baseAddress else { return nil }
        var i = max(2, from)
        while i <= end, let found = memchr(p + i, 0x2A, end + 1 - i) {
            let star = UnsafeRawPointer(found) - p
            if p.load(fromByteOffset: star - 2, as: UInt8.self) == 0x0D && p.load(fromByteOffset: star - 1, as: UInt8.self) == 0x0A
                && memcmp(p + star, needle.utf8Start, n) == 0 {
                return star
            }
            i = star + 1
        }
        return nil
    }

    /// The bytes of the files read in pieces, when `i` is the last file this thread reads (the one its sink is
    /// told they follow, so that a table sizes itself for them as well); else 0.
    @inlinable
    func bytesMerged(after i: Int) -> Int {
        i == firstInPieces - 1 ? inputs[firstInPieces...].reduce(0) { $0 + $1.window.count } : 0
    }

    /// The second part of file `i`, being read, when the cut falls inside it.
    @inlinable
    func planned(_ i: Int) -> AOFSplit<V>? { i == cutFile ? split : nil }

    /// File `i` taken in from its pieces once read (its `beginAOFFile`, its commands, its `endAOFFile`), or nil
    /// when this thread reads it (a file before the cut). A piece that ended with an error throws it.
    @inlinable
    func merged(_ i: Int, into visitor: inout V, options: AOFOptions, warnings: inout [String]) throws -> AOFFileSummary? {
        guard i >= firstInPieces else { return nil }
        let file = pieces[i - firstInPieces]
        let name = file[0].summary.name, kind = file[0].summary.kind
        return try AOFReader.inFile(name) {
            try visitor.beginAOFFile(name: name, kind: kind)
            var summary = AOFFileSummary(name: name, kind: kind)
            try AOFSplit.mergePieces(file[...], from: file[0].start, db: 0, of: inputs[i], options: options, into: &visitor,
                                     summary: &summary, warnings: &warnings)
            try visitor.endAOFFile(name: name, kind: kind)
            return summary
        }
    }

    /// Waits until the other thread has read everything and has ended.
    @inlinable
    func finish() { reader.join() }
}
