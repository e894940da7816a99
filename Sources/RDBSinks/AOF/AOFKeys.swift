#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CMemoryHints
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

    /// Every key seen, one entry after the other in the order first seen: a header of three words (the
    /// database, the commands, the name's length with the preamble flag in the top bit), then the name, padded
    /// to a word. A command naming a key seen before reads its slot, then its entry (the header and the name
    /// side by side), and adds to the count there: two cache lines. (Slots of hash and index, entries in an
    /// array of structs and names in a third place made three misses a command on 126k keys.)
    var arena: [UInt8] = []
    var count = 0
    static let header = 24
    static let preambleBit: UInt64 = 1 << 63
    /// Per process, so that a file cannot be made of keys that all collide.
    let seed = UInt64.random(in: 1...UInt64.max)
    public private(set) var unknownCommands: [String: Int] = [:]
    /// (db, key) → its entry: open addressing over `slots`, each the key's hash and the entry's offset in
    /// `arena` (-1: empty). A lookup hashes the command's bytes as they are and compares them in place:
    /// nothing is allocated for a key seen before. (A `[Key: Int]` dictionary hashed keys a byte at a time and
    /// built an array per command: 60% of `rdbcat FILE.aof --format keys`.)
    var slots: [(hash: UInt64, offset: Int)] = Array(repeating: (0, -1), count: 1 << 10)

    public init(binary: BinaryMode = .escape) {
        self.binary = binary
    }

    /// A seeded multiply-mix hash of the database and the name, 8 bytes at a time (SipHash through `Hasher`
    /// was a fifth of the lookups).
    @inline(__always)
    static func hash(_ db: Int, _ b: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        @inline(__always) func mix(_ h: UInt64, _ w: UInt64) -> UInt64 {
            let m = (h ^ w).multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15)
            return m.high ^ m.low
        }
        var h = mix(seed, UInt64(truncatingIfNeeded: db) &+ UInt64(truncatingIfNeeded: b.count) << 32)
        var i = 0
        let n = b.count
        if let p = b.baseAddress {
            while n - i >= 8 {
                h = mix(h, p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                i += 8
            }
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                tail |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << shift
                shift += 8
                i += 1
            }
            h = mix(h, tail ^ 0xA076_1D64_78BD_642F)
        }
        return h
    }

    // Keys named but not counted yet, oldest first (a ring of `lookahead`). A key's slot is prefetched when it
    // is named, its entry (if the slot holds one of the same hash) `entryLead` keys later, and it is counted
    // `lookahead` keys later, by then in the cache. (A lookup that waited for its slot, then for its entry,
    // missed the cache twice in a row per command: 45% of `keys` on an AOF of 126k keys.) A queued key's name
    // is copied into `queueBytes` (the command's bytes are gone by the time it is counted).
    static var lookahead: Int { 16 }
    static var entryLead: Int { 6 }
    var queue = Array(repeating: (db: 0, hash: UInt64(0), preamble: false, start: 0, end: 0), count: AOFKeys.lookahead)
    var head = 0
    var queued = 0
    var queueBytes: [UInt8] = []

    mutating func touch(_ db: Int, _ key: RDBString, preamble: Bool) {
        if queued == Self.lookahead { countOldest() }
        if queueBytes.count > 1 << 16 { compactQueueBytes() }
        key.withBytes { b in
            let hash = Self.hash(db, b, seed: seed)
            slots.withUnsafeBufferPointer { rdb_prefetch($0.baseAddress! + (Int(truncatingIfNeeded: hash) & ($0.count - 1))) }
            let start = queueBytes.count
            queueBytes.append(contentsOf: b)
            queue[(head &+ queued) & (Self.lookahead - 1)] = (db, hash, preamble, start, queueBytes.count)
            queued += 1
        }
        if queued > Self.entryLead {
            let hash = queue[(head &+ queued &- 1 &- Self.entryLead) & (Self.lookahead - 1)].hash
            let slot = slots[Int(truncatingIfNeeded: hash) & (slots.count - 1)]
            if slot.offset >= 0 && slot.hash == hash { arena.withUnsafeBytes { rdb_prefetch($0.baseAddress! + slot.offset) } }
        }
    }

    /// Counts the oldest queued key.
    mutating func countOldest() {
        let k = queue[head]
        queueBytes.withUnsafeBytes { b in
            tally(k.db, UnsafeRawBufferPointer(rebasing: b[k.start..<k.end]), hash: k.hash, preamble: k.preamble)
        }
        head = (head &+ 1) & (Self.lookahead - 1)
        queued -= 1
    }

    /// Moves the names of the queued keys to the front of `queueBytes`.
    mutating func compactQueueBytes() {
        let from = queued > 0 ? queue[head].start : queueBytes.count
        queueBytes.removeSubrange(0..<from)
        for i in 0..<queued {
            let j = (head &+ i) & (Self.lookahead - 1)
            queue[j].start -= from
            queue[j].end -= from
        }
    }

    /// Counts every queued key, in the order they were named.
    mutating func touchPending() {
        while queued > 0 { countOldest() }
        queueBytes.removeAll(keepingCapacity: true)
    }

    /// Counts a command naming `b` in `db` (or the preamble holding it), adding the key when it is new.
    mutating func tally(_ db: Int, _ b: UnsafeRawBufferPointer, hash: UInt64, preamble: Bool) {
        let n = b.count
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let (h, offset) = slots[i]
            if offset < 0 { break }
            if h == hash {
                let found = arena.withUnsafeMutableBytes { a -> Bool in
                    let e = a.baseAddress! + offset
                    let lengthWord = e.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
                    guard e.loadUnaligned(as: Int.self) == db, Int(lengthWord & ~Self.preambleBit) == n,
                          n == 0 || memcmp(e + Self.header, b.baseAddress!, n) == 0 else { return false }
                    if preamble {
                        e.storeBytes(of: lengthWord | Self.preambleBit, toByteOffset: 16, as: UInt64.self)
                    } else {
                        e.storeBytes(of: e.loadUnaligned(fromByteOffset: 8, as: Int.self) &+ 1, toByteOffset: 8, as: Int.self)
                    }
                    return true
                }
                if found { return }
            }
            i = (i &+ 1) & mask
        }
        let offset = arena.count
        slots[i] = (hash, offset)
        count += 1
        let padded = (n + 7) & ~7
        arena.append(contentsOf: repeatElement(0, count: Self.header + padded))
        arena.withUnsafeMutableBytes { a in
            let e = a.baseAddress! + offset
            e.storeBytes(of: db, as: Int.self)
            e.storeBytes(of: preamble ? 0 : 1, toByteOffset: 8, as: Int.self)
            e.storeBytes(of: UInt64(n) | (preamble ? Self.preambleBit : 0), toByteOffset: 16, as: UInt64.self)
            if n > 0 { (e + Self.header).copyMemory(from: b.baseAddress!, byteCount: n) }
        }
        if count * 2 > slots.count { grow() }
    }

    /// Twice the slots, every key placed again by its hash.
    mutating func grow() {
        let old = slots
        slots = Array(repeating: (0, -1), count: old.count * 2)
        let mask = slots.count - 1
        for slot in old where slot.offset >= 0 {
            var i = Int(truncatingIfNeeded: slot.hash) & mask
            while slots[i].offset >= 0 { i = (i &+ 1) & mask }
            slots[i] = slot
        }
    }

    /// Calls `body` with each key in the order first seen: database, name, commands, whether a preamble holds it.
    func forEachEntry(_ body: (Int, UnsafeRawBufferPointer, Int, Bool) throws -> Void) rethrows {
        try arena.withUnsafeBytes { a in
            var offset = 0
            while offset < a.count {
                let e = a.baseAddress! + offset
                let lengthWord = e.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
                let n = Int(lengthWord & ~Self.preambleBit)
                try body(e.loadUnaligned(as: Int.self), UnsafeRawBufferPointer(start: e + Self.header, count: n),
                         e.loadUnaligned(fromByteOffset: 8, as: Int.self), lengthWord & Self.preambleBit != 0)
                offset += Self.header + ((n + 7) & ~7)
            }
        }
    }

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        touch(info.db, key, preamble: true)
        return .skip
    }

    /// The key positions of each spelling of a command name the file uses (nil: unknown).
    var keySpecs = AOFSpellings<AOFKeySpec?>()

    public mutating func command(_ command: AOFCommand) throws {
        let name = command.args.bytes(0)
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
        command.forEachKey(spec) { k in touch(command.db, k, preamble: false) }
    }

    public mutating func endAOFFile(name: String, kind: AOFFileKind) throws { touchPending() }

    public mutating func writeJSONL(to out: OutputBuffer) throws {
        touchPending()
        try forEachEntry { db, name, commands, inPreamble in
            out.append("{\"db\":")
            out.append(decimal: db)
            out.append(",\"key\":")
            out.appendJSONString(name, mode: binary)
            out.append(",\"commands\":")
            out.append(decimal: commands)
            out.append(inPreamble ? ",\"preamble\":true}\n" : ",\"preamble\":false}\n")
            out.commit()
            try out.flushIfNeeded()
        }
        try out.flush()
    }
}
