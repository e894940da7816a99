import RDBKit

/// Lists the keys an AOF touches: the keys of its RDB preambles and the key arguments of its commands,
/// where the command's key positions are known (`AOFKeySpec`). Each (db, key) is listed once, in the
/// order first seen, with the number of commands that touch it.
///
/// Commands with unknown key positions are counted in `unknownCommands` by name. Call `writeJSONL(to:)`
/// at the end: one line per key, `{"db":N,"key":K,"commands":N,"preamble":true|false}`.
public struct AOFKeys: AOFVisitor {
    public struct Key: Hashable, Sendable {
        public var db: Int
        public var key: [UInt8]
    }

    public struct Usage: Sendable {
        public var key: Key
        /// Commands that name the key.
        public var commands: Int
        /// Whether an RDB preamble / RDB BASE holds the key.
        public var inPreamble: Bool
    }

    public var binary: BinaryMode
    /// The keys in the order first seen.
    public var keys: [Usage] {
        mutating get {
            touchPending()
            return listed
        }
    }

    var listed: [Usage] {
        var out: [Usage] = []
        forEachEntry { db, name, commands, inPreamble in
            out.append(Usage(key: Key(db: db, key: Array(name)), commands: commands, inPreamble: inPreamble))
        }
        return out
    }

    /// The keys, and those named but not counted yet (a class for its raw memory and its thread; copied
    /// before a copy of this sink counts, see `own`).
    var batches = AOFKeyBatches()
    public private(set) var unknownCommands: [String: Int] = [:]

    /// Whether the keys may be counted, and the lines formatted, on a second core as well (`rdbcat --threads 1`:
    /// not).
    public let otherCore: Bool

    public init(binary: BinaryMode = .escape, otherCore: Bool = true) {
        self.binary = binary
        self.otherCore = otherCore
        batches.mayStartWorker = otherCore
    }

    /// Makes `batches` this sink's own before it changes (`AOFKeys` is a value).
    @inline(__always)
    mutating func own() {
        if !isKnownUniquelyReferenced(&batches) { batches = batches.copy() }
    }

    /// Counts every batched key, in the order they were named.
    mutating func touchPending() {
        own()
        batches.countPending()
    }

    /// Calls `body` with each key in the order first seen: database, name, commands, whether a preamble holds it.
    func forEachEntry(_ body: (Int, UnsafeRawBufferPointer, Int, Bool) throws -> Void) rethrows {
        try batches.table.forEachEntry(body)
    }

    /// Room for the keys a preamble's database says it holds, made before they come.
    public mutating func resizeDatabase(keys: UInt64, expires: UInt64) throws {
        own()
        batches.reserve(Int(truncatingIfNeeded: min(keys, UInt64(Int.max))))
    }

    /// The table grows by the rate at which keys come in these bytes (`AOFKeyTable.expect`).
    public mutating func commandBytes(from start: Int, to end: Int) {
        touchPending()
        batches.table.expect(from: start, to: end)
    }

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        own()
        let t = batches
        key.withBytes { t.touch(info.db, $0, preamble: true) }
        return .skip
    }

    /// The key positions of each spelling of a command name the file uses (nil: unknown).
    var keySpecs = AOFSpellings<AOFKeySpec?>()

    public mutating func command(_ command: AOFCommand) throws {
        let args = command.args
        let name = args.bytes(0)
        let spec: AOFKeySpec?
        if let known = keySpecs.lookup(name) {
            spec = known
        } else {
            spec = command.keySpec
            keySpecs.insert(name, spec)
        }
        guard let spec else {
            unknownCommands[command.upperName, default: 0] += 1
            return
        }
        own()
        let t = batches
        t.position = command.offset
        let db = command.db
        let n = args.count
        // The specs most commands have, walked here without a call per key; the rest by `forEachKey`. (Making
        // `forEachKey` inlinable instead, so the closure is inlined into it, was 12% slower on aof-plain.)
        switch spec {
        case .none:
            return
        case .at(let i):
            if i >= 1 && i < n { t.touch(db, args.bytes(i), preamble: false) }
        case .firstTwo:
            if n > 1 { t.touch(db, args.bytes(1), preamble: false) }
            if n > 2 { t.touch(db, args.bytes(2), preamble: false) }
        case .all(let from):
            var i = max(from, 1)
            while i < n {
                t.touch(db, args.bytes(i), preamble: false)
                i &+= 1
            }
        default:
            command.forEachKey(spec) { k in k.withBytes { t.touch(db, $0, preamble: false) } }
        }
    }

    public mutating func endAOFFile(name: String, kind: AOFFileKind) throws {
        touchPending()
        batches.mayStartWorker = otherCore  // off while a file is read in two parts, also when the part was not used
    }

    /// Parts merged in (for tests).
    var mergedParts = 0

    /// A part of a file read on the other core counts its keys in a table of its own, merged in after this
    /// sink's: each of the two readers counts on its own core, without a worker thread.
    public mutating func makeSplitPart() -> AOFKeys? {
        own()
        batches.mayStartWorker = false
        var part = AOFKeys(binary: binary, otherCore: otherCore)
        part.batches = batches.partBatches()
        return part
    }

    public mutating func mergeSplitPart(_ part: consuming AOFKeys, dbAtStart: Int) throws {
        own()
        batches.merge(part.batches, dbAtStart: dbAtStart)
        mergedParts += 1
        for (name, n) in part.unknownCommands { unknownCommands[name, default: 0] += n }
    }

    /// `{"db":D,"key":K,"commands":N,"preamble":B}` and a newline, the text around the name written in two
    /// steps of stores into reserved room (seven appends, each reserving and counting, were a third of it).
    @inline(__always)
    static func appendLine(_ out: OutputBuffer, db: Int, name: UnsafeRawBufferPointer, commands: Int, inPreamble: Bool,
                           binary: BinaryMode) {
        out.reserve(32)
        var s = out.storage, at = out.count
        @inline(__always) func put(_ t: StaticString) {
            OutputBuffer.copy(s + at, t.utf8Start, t.utf8CodeUnitCount)
            at &+= t.utf8CodeUnitCount
        }
        put("{\"db\":")
        at &+= DecimalFormatter.write(Int64(db), into: s + at)
        put(",\"key\":")
        out.count = at
        out.appendJSONString(name, mode: binary)
        out.reserve(56)
        s = out.storage
        at = out.count
        put(",\"commands\":")
        at &+= DecimalFormatter.write(unsigned: UInt64(commands), into: s + at)
        if inPreamble { put(",\"preamble\":true}\n") } else { put(",\"preamble\":false}\n") }
        out.count = at
    }

    public mutating func writeJSONL(to out: OutputBuffer) throws {
        touchPending()
        let table = batches.table, binary = binary
        // A run of keys at a time, on two cores (the lines of a large file took a tenth of the time, on one).
        try OutputRuns.write(runs: table.runStarts.count, to: out, onTwoCores: otherCore) { r, out in
            try table.forEachEntry(inRun: r) { db, name, commands, inPreamble in
                Self.appendLine(out, db: db, name: name, commands: commands, inPreamble: inPreamble, binary: binary)
                out.commit()
                try out.flushIfNeeded()
            }
        }
        try out.flush()
    }
}
