/// How a multi-part set (a BASE and its INCR files) is read on two cores: this thread reads the files in order up
/// to a cut near the middle of the set's bytes, while another thread reads what lies after the cut (the rest of
/// the file the cut falls in, as a second part, then each later file whole), each part into a sink of its own
/// (`AOFVisitor.makeSplitPart`), merged in order as this thread gets to it.
///
/// Reading each file in two parts instead would meet the other thread once per file (each time waiting for the
/// slower of the two), and leave the other core idle during a file that cannot be read in parts (an RDB BASE,
/// decoded record after record). Here the two threads meet once, and an RDB BASE is read beside the files after
/// it. The cut is placed by bytes; it falls at a file's end when the middle is inside an RDB, and files read
/// whole must hold only commands (no RDB preamble: an INCR never has one).
@usableFromInline
final class AOFReadAhead<V: AOFVisitor> {
    /// Every file of the set, opened (memory-mapped).
    @usableFromInline let inputs: [InputBuffer]
    /// The file the cut falls inside, with the part of it after the cut (nil: the cut is at a file's start).
    @usableFromInline let cutFile: Int
    @usableFromInline let split: AOFSplit<V>?
    /// The first file read whole by the other thread, and the parts of it and of the files after it.
    @usableFromInline let firstWhole: Int
    @usableFromInline let wholes: [AOFSplit<V>]
    /// The thread reading `split` and then `wholes`.
    @usableFromInline let reader: AOFPartReader

    @usableFromInline
    init(inputs: [InputBuffer], cutFile: Int, split: AOFSplit<V>?, firstWhole: Int, wholes: [AOFSplit<V>], reader: AOFPartReader) {
        self.inputs = inputs
        self.cutFile = cutFile
        self.split = split
        self.firstWhole = firstWhole
        self.wholes = wholes
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
        var firstWhole: Int
        if !isRDB[k], let p = AOFSplit<V>.splitPoint(inputs[k].window, from: middle - before) {
            at = p
            firstWhole = k + 1
        } else {
            // At the end of that file or at its start, whichever is nearer the middle (not before the first file).
            firstWhole = k > 0 && middle - before < before + sizes[k] - middle ? k : k + 1
        }
        let after = (at.map { sizes[k] - $0 } ?? 0) + sizes[min(firstWhole, n)...].reduce(0, +)
        guard after >= options.splitMinimumBytes / 2, !isRDB[min(firstWhole, n)...].contains(true) else { return nil }
        var parts: [AOFSplit<V>] = []
        var split: AOFSplit<V>?
        if let at {
            guard let part = visitor.makeSplitPart() else { return nil }
            split = AOFSplit(inputs[k], from: inputs[k].offset + at, part: part, options: options, name: files[k].path,
                             kind: files[k].kind, isLast: k == n - 1)
            parts.append(split!)
        }
        var wholes: [AOFSplit<V>] = []
        for j in firstWhole..<n {
            guard let part = visitor.makeSplitPart() else { return nil }
            wholes.append(AOFSplit(wholeFile: inputs[j], part: part, options: options, name: files[j].path,
                                   kind: files[j].kind, isLast: j == n - 1))
        }
        parts += wholes
        // Two decoders' pages are resident together: each gives them back twice as often.
        for input in inputs { input.releaseEvery(InputBuffer.releaseStep / 2) }
        guard let reader = AOFPartReader.start(parts) else { return nil }
        return AOFReadAhead(inputs: inputs, cutFile: at == nil ? firstWhole : k, split: split, firstWhole: firstWhole,
                            wholes: wholes, reader: reader)
    }

    /// The second part of file `i`, being read, when the cut falls inside it.
    @inlinable
    func planned(_ i: Int) -> AOFSplit<V>? { i == cutFile ? split : nil }

    /// File `i` taken in from its part once read (its `beginAOFFile`, its commands, its `endAOFFile`), or nil
    /// when this thread reads it: a file before the cut, or one whose part gave up. A part that ended with an
    /// error throws it.
    @inlinable
    func merged(_ i: Int, into visitor: inout V, warnings: inout [String]) throws -> AOFFileSummary? {
        guard i >= firstWhole else { return nil }
        let part = wholes[i - firstWhole]
        let name = part.summary.name, kind = part.summary.kind
        do {
            guard try part.usable(inMulti: false) else { return nil }
            try visitor.beginAOFFile(name: name, kind: kind)
            var file = AOFFileSummary(name: name, kind: kind)
            try part.merge(into: &visitor, dbAtStart: 0, summary: &file, warnings: &warnings)
            try visitor.endAOFFile(name: name, kind: kind)
            return file
        } catch var e as RDBError {
            if e.file == nil { e.file = name }
            throw e
        }
    }

    /// Waits until the other thread has read everything and has ended.
    @inlinable
    func finish() { reader.join() }
}
