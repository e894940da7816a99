#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RDBKit

/// Counts what an AOF holds: commands by name (count and bytes in the file), databases, annotations,
/// MULTI blocks, and the keys of RDB preambles. Call `write(to:)` (text) or `writeJSON(to:)` at the end.
public struct AOFStats: AOFVisitor {
    public struct Entry: Sendable, Hashable {
        public var count = 0
        /// Bytes the commands take in the file (RESP framing included).
        public var bytes = 0
    }

    /// Per upper-case command name. At most `maxNames` distinct names are kept; the rest are counted under
    /// `"(other)"` (a corrupt or hostile file cannot make the table grow without bound).
    public var byName: [String: Entry] { Dictionary(uniqueKeysWithValues: zip(names, counted)) }
    public var maxNames = 10_000
    // The names in the order first seen, where each is, and the counts of commands not counted per spelling.
    var names: [String] = []
    var entries: [Entry] = []
    var indexOf: [String: Int] = [:]
    /// The entry of each spelling of a name the file uses.
    @usableFromInline var spellings = AOFSpellings<Int>()
    /// What the commands of each spelling in `spellings` add up to (count, bytes), counted in place: a fixed
    /// block in the sink, so a command costs two additions, with no array to check for uniqueness or bounds.
    /// Added to the entries of their names by `counted`.
    @usableFromInline var tallies = SpellingTallies()
    /// The entry of "(other)" once names past `maxNames` are counted there (-1 before).
    var otherEntry = -1
    /// MULTI commands counted under "(other)".
    var otherMultis = 0

    /// `entries` with the commands counted per spelling added to their names.
    var counted: [Entry] {
        var e = entries
        for (s, spelling) in spellings.entries.enumerated() {
            e[spelling.value].count += tallies.count(s)
            e[spelling.value].bytes += tallies.bytes(s)
        }
        return e
    }
    public var commands: Int { totals.commands }
    public var commandBytes: Int { totals.commandBytes }
    /// Sum of the argument lengths (the payload without RESP framing).
    public var argumentBytes: Int { totals.argumentBytes }
    public var inlineCommands: Int { totals.inlineCommands }
    /// What every command adds to (inlined into the reader's loop with `command`).
    @usableFromInline var totals = Totals()
    @usableFromInline
    struct Totals {
        @usableFromInline var commands = 0
        @usableFromInline var commandBytes = 0
        @usableFromInline var argumentBytes = 0
        @usableFromInline var inlineCommands = 0
        /// The database of the last command (`noDB` before the first), and how many commands in a row ran there.
        @usableFromInline var lastDB = Totals.noDB
        /// No command yet (not -1: the commands of a split file's part carry -1 until its first SELECT).
        @usableFromInline static var noDB: Int { .min }
        @usableFromInline var lastDBCount = 0
        @usableFromInline init() {}
    }
    public private(set) var annotations = 0
    /// MULTI commands (each opens a block).
    public var multiBlocks: Int { (multiEntry >= 0 ? counted[multiEntry].count : 0) + otherMultis }
    /// Commands per database.
    public var commandsByDB: [Int: Int] {
        var d = byDB
        if totals.lastDB != Totals.noDB { d[totals.lastDB, default: 0] += totals.lastDBCount }
        return d
    }
    var byDB: [Int: Int] = [:]
    /// Keys found in RDB preambles / RDB BASE files.
    public private(set) var preambleKeys = 0
    /// The files read, in order.
    public private(set) var files: [(name: String, kind: AOFFileKind)] = []

    public init() {}

    public mutating func beginAOFFile(name: String, kind: AOFFileKind) throws {
        files.append((name, kind))
    }

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        preambleKeys += 1
        return .skip
    }

    public mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws {}

    @inlinable
    public mutating func command(_ command: AOFCommand) throws {
        let size = command.byteCount
        totals.commands &+= 1
        totals.commandBytes &+= size
        totals.argumentBytes &+= command.args.totalBytes
        totals.inlineCommands &+= command.isInline ? 1 : 0
        if _slowPath(command.db != totals.lastDB) { switchDB(command.db) }
        totals.lastDBCount &+= 1
        let s = spellings.index(of: command.args.bytes(0))
        if _fastPath(s >= 0) {
            tallies.add(s, bytes: size)
        } else {
            try countBySpellingOrName(command)
        }
    }

    @usableFromInline
    mutating func switchDB(_ db: Int) {
        if totals.lastDB != Totals.noDB { byDB[totals.lastDB, default: 0] += totals.lastDBCount }
        totals.lastDB = db
        totals.lastDBCount = 0
    }

    /// Counts a command whose spelling is not in `spellings`: under that spelling once it is kept there, else
    /// in its name's entry (names longer than a spelling holds, spellings past its capacity, names counted
    /// under "(other)": those go through here every time, so that a MULTI among them is told by its name).
    @usableFromInline @inline(never)
    mutating func countBySpellingOrName(_ command: AOFCommand) throws {
        let raw = command.args.bytes(0)
        let i = try entryIndex(named: command.upperName)
        if i != otherEntry {
            let s = spellings.insert(raw, i)
            if s >= 0 {
                tallies.add(s, bytes: command.byteCount)
                return
            }
        } else if command.nameEquals("MULTI") {
            otherMultis += 1
        }
        entries[i].count += 1
        entries[i].bytes += command.byteCount
    }

    /// The entry of MULTI, once seen (-1 before; also when it came after `maxNames` other names, and is counted
    /// under "(other)").
    var multiEntry = -1

    /// The entry of a command's upper-case name (or of "(other)", past `maxNames` names; the part of a split
    /// file gives up there instead, see `makeSplitPart`).
    mutating func entryIndex(named name: String) throws -> Int {
        let i: Int
        if let known = indexOf[name] {
            i = known
        } else {
            if isSplitPart && names.count >= maxNames { throw AOFSplitPartGaveUp() }
            let counted = names.count < maxNames ? name : "(other)"
            if let other = indexOf[counted] {
                i = other
            } else {
                i = names.count
                names.append(counted)
                entries.append(Entry())
                indexOf[counted] = i
                if counted == "MULTI" { multiEntry = i }
                if counted == "(other)" { otherEntry = i }
            }
        }
        return i
    }

    public mutating func annotation(_ text: RDBString, offset: Int) throws {
        annotations += 1
    }

    /// Whether this counts the second part of a split file (`makeSplitPart`).
    var isSplitPart = false

    /// A part of a file read on the other core is counted on its own and added to these counts after it
    /// (names in the order first seen, "(other)" past `maxNames`, exactly as read in one pass: a part that
    /// meets more than `maxNames` names gives up, and the file is read on from where it starts).
    public mutating func makeSplitPart() -> AOFStats? {
        var part = AOFStats()
        part.maxNames = maxNames
        part.isSplitPart = true
        return part
    }

    public mutating func mergeSplitPart(_ part: consuming AOFStats, dbAtStart: Int) throws {
        for (name, e) in zip(part.names, part.counted) {
            let i = try entryIndex(named: name)
            entries[i].count += e.count
            entries[i].bytes += e.bytes
            if i == otherEntry && name == "MULTI" { otherMultis += e.count }
        }
        otherMultis += part.otherMultis
        var dbs = commandsByDB
        for (db, n) in part.commandsByDB { dbs[db == -1 ? dbAtStart : db, default: 0] += n }
        byDB = dbs
        totals.lastDB = Totals.noDB
        totals.lastDBCount = 0
        totals.commands += part.totals.commands
        totals.commandBytes += part.totals.commandBytes
        totals.argumentBytes += part.totals.argumentBytes
        totals.inlineCommands += part.totals.inlineCommands
        annotations += part.annotations
        preambleKeys += part.preambleKeys
        mergedParts += 1
    }

    /// Parts merged in (for tests).
    var mergedParts = 0

    /// Names sorted by count (descending), then name.
    public var sortedNames: [(name: String, entry: Entry)] {
        byName.map { ($0.key, $0.value) }.sorted { $0.1.count != $1.1.count ? $0.1.count > $1.1.count : $0.0 < $1.0 }
    }

    /// A text report: totals, then one line per command name.
    public func write(to out: OutputBuffer) throws {
        out.append("files: ")
        out.append(decimal: files.count)
        out.append("\ncommands: ")
        out.append(decimal: commands)
        out.append("\ncommand_bytes: ")
        out.append(decimal: commandBytes)
        out.append("\nargument_bytes: ")
        out.append(decimal: argumentBytes)
        out.append("\ninline_commands: ")
        out.append(decimal: inlineCommands)
        out.append("\nannotations: ")
        out.append(decimal: annotations)
        out.append("\nmulti_blocks: ")
        out.append(decimal: multiBlocks)
        out.append("\npreamble_keys: ")
        out.append(decimal: preambleKeys)
        for (db, n) in commandsByDB.sorted(by: { $0.key < $1.key }) {
            out.append("\ndb")
            out.append(decimal: db)
            out.append(": ")
            out.append(decimal: n)
        }
        out.append("\n")
        for (name, e) in sortedNames {
            out.append(name)
            out.append("\t")
            out.append(decimal: e.count)
            out.append("\t")
            out.append(decimal: e.bytes)
            out.append("\n")
        }
        out.commit()
        try out.flush()
    }

    /// The same as one JSON object.
    public func writeJSON(to out: OutputBuffer) throws {
        out.append("{\"files\":")
        out.append(decimal: files.count)
        out.append(",\"commands\":")
        out.append(decimal: commands)
        out.append(",\"command_bytes\":")
        out.append(decimal: commandBytes)
        out.append(",\"argument_bytes\":")
        out.append(decimal: argumentBytes)
        out.append(",\"inline_commands\":")
        out.append(decimal: inlineCommands)
        out.append(",\"annotations\":")
        out.append(decimal: annotations)
        out.append(",\"multi_blocks\":")
        out.append(decimal: multiBlocks)
        out.append(",\"preamble_keys\":")
        out.append(decimal: preambleKeys)
        out.append(",\"by_db\":{")
        for (i, (db, n)) in commandsByDB.sorted(by: { $0.key < $1.key }).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append("\"")
            out.append(decimal: db)
            out.append("\":")
            out.append(decimal: n)
        }
        out.append("},\"by_command\":{")
        for (i, (name, e)) in sortedNames.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            var s = name
            s.withUTF8 { out.appendJSONString(UnsafeRawBufferPointer($0), mode: .escape) }
            out.append(":{\"count\":")
            out.append(decimal: e.count)
            out.append(",\"bytes\":")
            out.append(decimal: e.bytes)
            out.append("}")
        }
        out.append("}}\n")
        out.commit()
        try out.flush()
    }
}

/// A count and a byte total for each of the `AOFSpellings.capacity` (64) spellings, stored in the struct
/// itself: adding to one is two additions at fixed offsets.
@usableFromInline
struct SpellingTallies {
    @usableFromInline var counts = SIMD64<Int>()
    @usableFromInline var totals = SIMD64<Int>()

    @usableFromInline init() {}

    @inlinable @inline(__always)
    mutating func add(_ s: Int, bytes: Int) {
        precondition(s >= 0 && s < 64)
        withUnsafeMutableBytes(of: &counts) { $0.baseAddress!.assumingMemoryBound(to: Int.self)[s] &+= 1 }
        withUnsafeMutableBytes(of: &totals) { $0.baseAddress!.assumingMemoryBound(to: Int.self)[s] &+= bytes }
    }

    func count(_ s: Int) -> Int { counts[s] }
    func bytes(_ s: Int) -> Int { totals[s] }
}
