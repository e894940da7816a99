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
    public private(set) var keys: [Usage] = []
    public private(set) var unknownCommands: [String: Int] = [:]
    /// (db, key) → index in `keys`: open addressing over `slots`, each the key's hash and index (-1: empty),
    /// so that a probe reads one line. A lookup hashes the command's bytes as they are and compares them in
    /// place: nothing is allocated for a key seen before. (A `[Key: Int]` dictionary hashed keys a byte at a
    /// time and built an array per command: 60% of `rdbcat FILE.aof --format keys`.)
    var slots: [(hash: Int, index: Int)] = Array(repeating: (0, -1), count: 1 << 10)

    public init(binary: BinaryMode = .escape) {
        self.binary = binary
    }

    mutating func touch(_ db: Int, _ key: RDBString, preamble: Bool) {
        key.withBytes { b in
            var hasher = Hasher()
            hasher.combine(db)
            hasher.combine(bytes: b)
            let hash = hasher.finalize()
            let mask = slots.count - 1
            var i = hash & mask
            while true {
                let (h, s) = slots[i]
                if s < 0 { break }
                if h == hash && keys[s].key.db == db && Self.equal(keys[s].key.key, b) {
                    if preamble { keys[s].inPreamble = true } else { keys[s].commands += 1 }
                    return
                }
                i = (i &+ 1) & mask
            }
            slots[i] = (hash, keys.count)
            keys.append(Usage(key: Key(db: db, key: Array(b)), commands: preamble ? 0 : 1, inPreamble: preamble))
            if keys.count * 2 > slots.count { grow() }
        }
    }

    static func equal(_ a: [UInt8], _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && a.withUnsafeBytes { a in a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
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
        for u in keys {
            out.append("{\"db\":")
            out.append(decimal: u.key.db)
            out.append(",\"key\":")
            u.key.key.withUnsafeBytes { out.appendJSONString($0, mode: binary) }
            out.append(",\"commands\":")
            out.append(decimal: u.commands)
            out.append(u.inPreamble ? ",\"preamble\":true}\n" : ",\"preamble\":false}\n")
            out.commit()
            try out.flushIfNeeded()
        }
        try out.flush()
    }
}
