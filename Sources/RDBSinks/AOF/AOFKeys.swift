#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
        (0..<seen.count).map { i in
            let k = seen[i]
            return Usage(key: Key(db: k.db, key: Array(arena[k.start..<(k.start + k.count)])), commands: k.commands, inPreamble: k.inPreamble)
        }
    }
    /// A key seen: its name's place in `arena` (all names, one after the other: no array per key).
    struct Seen {
        var start: Int
        var count: Int
        var db: Int
        var commands: Int
        var inPreamble: Bool
    }
    var seen: [Seen] = []
    var arena: [UInt8] = []
    /// Per process, so that a file cannot be made of keys that all collide.
    let seed = UInt64.random(in: 1...UInt64.max)
    public private(set) var unknownCommands: [String: Int] = [:]
    /// (db, key) → index in `seen`: open addressing over `slots`, each the key's hash and index (-1: empty),
    /// so that a probe reads one line. A lookup hashes the command's bytes as they are and compares them in
    /// place: nothing is allocated for a key seen before. (A `[Key: Int]` dictionary hashed keys a byte at a
    /// time and built an array per command: 60% of `rdbcat FILE.aof --format keys`.)
    var slots: [(hash: Int, index: Int)] = Array(repeating: (0, -1), count: 1 << 10)

    public init(binary: BinaryMode = .escape) {
        self.binary = binary
    }

    /// A seeded multiply-mix hash of the database and the name, 8 bytes at a time (SipHash through `Hasher`
    /// was a fifth of the lookups).
    @inline(__always)
    static func hash(_ db: Int, _ b: UnsafeRawBufferPointer, seed: UInt64) -> Int {
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
        return Int(truncatingIfNeeded: h)
    }

    mutating func touch(_ db: Int, _ key: RDBString, preamble: Bool) {
        key.withBytes { b in
            let hash = Self.hash(db, b, seed: seed)
            let mask = slots.count - 1
            var i = hash & mask
            while true {
                let (h, s) = slots[i]
                if s < 0 { break }
                if h == hash {
                    let k = seen[s]
                    if k.db == db && k.count == b.count
                        && arena.withUnsafeBytes({ b.count == 0 || memcmp($0.baseAddress! + k.start, b.baseAddress!, b.count) == 0 })
                    {
                        if preamble { seen[s].inPreamble = true } else { seen[s].commands += 1 }
                        return
                    }
                }
                i = (i &+ 1) & mask
            }
            slots[i] = (hash, seen.count)
            seen.append(Seen(start: arena.count, count: b.count, db: db, commands: preamble ? 0 : 1, inPreamble: preamble))
            arena.append(contentsOf: b)
            if seen.count * 2 > slots.count { grow() }
        }
    }

    /// Twice the slots, every key placed again by its hash.
    mutating func grow() {
        let old = slots
        slots = Array(repeating: (0, -1), count: old.count * 2)
        let mask = slots.count - 1
        for slot in old where slot.index >= 0 {
            var i = slot.hash & mask
            while slots[i].index >= 0 { i = (i &+ 1) & mask }
            slots[i] = slot
        }
    }

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        touch(info.db, key, preamble: true)
        return .skip
    }

    public mutating func command(_ command: AOFCommand) throws {
        let known = command.forEachKey { k in touch(command.db, k, preamble: false) }
        if !known { unknownCommands[command.upperName, default: 0] += 1 }
    }

    public func writeJSONL(to out: OutputBuffer) throws {
        try arena.withUnsafeBytes { names in
            for k in seen {
                out.append("{\"db\":")
                out.append(decimal: k.db)
                out.append(",\"key\":")
                out.appendJSONString(UnsafeRawBufferPointer(rebasing: names[k.start..<(k.start + k.count)]), mode: binary)
                out.append(",\"commands\":")
                out.append(decimal: k.commands)
                out.append(k.inPreamble ? ",\"preamble\":true}\n" : ",\"preamble\":false}\n")
                out.commit()
                try out.flushIfNeeded()
            }
        }
        try out.flush()
    }
}
