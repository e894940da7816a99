#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CMemoryHints

/// The keys `AOFKeys` has seen: each (db, key) once, with the commands that named it and whether a preamble
/// holds it, in the order first seen. Keys come to it in batches (`AOFKeyBatches`), each with its hash.
///
/// Open addressing over slots of one cache line each: the key's hash, its database, its count (the top bit:
/// held by a preamble), its length, and its name (up to `inline` bytes, zero-padded) or, when longer, where
/// the name is in `arena`. A key named again is found and counted in its slot alone: one cache line, which is
/// prefetched `lookahead` keys before it is counted. (Slots of hash and offset with entries in a separate
/// arena missed the cache twice a key; a `[Key: Int]` dictionary hashed a byte at a time and built an array
/// per command.) The memory is raw, so that counting a key checks no uniqueness and retains nothing.
final class AOFKeyTable {
    static var slotBytes: Int { 64 }
    /// Bytes of a name kept in its slot.
    static var inline: Int { 32 }
    static let preambleBit: UInt64 = 1 << 63
    /// Keys counted ahead of the one being counted: their slots are prefetched.
    static var lookahead: Int { 16 }
    /// How far ahead `grow` and `forEachEntry` prefetch the slots they read.
    static var readAhead: Int { 8 }

    /// `capacity` slots (a power of two); a slot whose length word (at byte 24) is 0 is empty, else it is
    /// `length << 1 | 1`.
    var slots: UnsafeMutableRawPointer
    var capacity: Int
    private(set) var count = 0
    /// The slot of each key, in the order first seen.
    var order: UnsafeMutablePointer<Int>
    var orderCapacity: Int
    /// Names longer than `inline`, one after the other.
    var arena: UnsafeMutableRawPointer?
    var arenaUsed = 0
    var arenaCapacity = 0

    init(capacity: Int = 1 << 10) {
        self.capacity = capacity
        slots = Self.zeroed(capacity * Self.slotBytes)
        orderCapacity = capacity / 2
        order = .allocate(capacity: orderCapacity)
    }

    deinit {
        Self.free(slots, capacity * Self.slotBytes)
        order.deallocate()
        arena?.deallocate()
    }

    /// Zeroed memory for `bytes` of slots: from 2 MiB, mapped (zero pages, backed as they are touched) and
    /// asked for huge pages (a probe of a table of millions of slots otherwise misses the TLB as well as the
    /// cache, which a prefetch does not hide).
    static func zeroed(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes >= Self.hugePage {
            let size = (bytes + Self.hugePage - 1) & ~(Self.hugePage - 1)
            if let m = mmap(nil, size + Self.hugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED {
                // Aligned to a huge page, the slack before and after unmapped.
                let start = (Int(bitPattern: m) + Self.hugePage - 1) & ~(Self.hugePage - 1)
                let lead = start - Int(bitPattern: m)
                if lead > 0 { munmap(m, lead) }
                if Self.hugePage - lead > 0 { munmap(UnsafeMutableRawPointer(bitPattern: start + size), Self.hugePage - lead) }
                let p = UnsafeMutableRawPointer(bitPattern: start)!
                #if canImport(Glibc)
                madvise(p, size, MADV_HUGEPAGE)
                #endif
                return p
            }
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        return p
    }

    static var hugePage: Int { 2 << 20 }

    static func free(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        if bytes >= hugePage {
            munmap(p, (bytes + hugePage - 1) & ~(hugePage - 1))
        } else {
            p.deallocate()
        }
    }

    /// A table with the same keys, counts and order.
    func copy() -> AOFKeyTable {
        let t = AOFKeyTable(capacity: capacity)
        t.slots.copyMemory(from: slots, byteCount: capacity * Self.slotBytes)
        t.reserveOrder(count)
        t.order.update(from: order, count: count)
        t.count = count
        if let arena {
            t.arena = .allocate(byteCount: arenaCapacity, alignment: 8)
            t.arena!.copyMemory(from: arena, byteCount: arenaUsed)
            t.arenaUsed = arenaUsed
            t.arenaCapacity = arenaCapacity
        }
        return t
    }

    /// The bytes a key of `n` bytes takes in a batch: a header of three words (the hash, the database, the
    /// length with the preamble bit), then the name, zero-padded to a word and to at least `inline` bytes.
    @inline(__always)
    static func recordBytes(_ n: Int) -> Int { 24 &+ max(inline, (n &+ 7) & ~7) }

    /// Counts the keys of a batch in order, the slot of each prefetched `lookahead` keys before.
    func countBatch(_ base: UnsafeMutableRawPointer, _ used: Int) {
        @inline(__always) func next(_ at: Int) -> Int {
            at &+ Self.recordBytes(Int(base.load(fromByteOffset: at &+ 16, as: UInt64.self) & ~Self.preambleBit))
        }
        @inline(__always) func prefetch(_ at: Int) {
            rdb_prefetch(slots + (Int(truncatingIfNeeded: base.load(fromByteOffset: at, as: UInt64.self)) & (capacity &- 1)) &* Self.slotBytes)
        }
        var ahead = 0
        for _ in 0..<Self.lookahead where ahead < used {
            prefetch(ahead)
            ahead = next(ahead)
        }
        var at = 0
        while at < used {
            let q = base + at
            let lengthWord = q.load(fromByteOffset: 16, as: UInt64.self)
            tally(q.load(fromByteOffset: 8, as: Int.self), q + 24, Int(lengthWord & ~Self.preambleBit),
                  hash: q.load(as: UInt64.self), preamble: lengthWord & Self.preambleBit != 0)
            at = next(at)
            if ahead < used {
                prefetch(ahead)
                ahead = next(ahead)
            }
        }
    }

    /// Counts a command naming the `n` bytes at `p` in `db` (or the preamble holding it), adding the key when it
    /// is new. For names of up to `inline` bytes, `p` is zero-padded to `inline`.
    @inline(__always)
    func tally(_ db: Int, _ p: UnsafeRawPointer, _ n: Int, hash: UInt64, preamble: Bool) {
        let mask = capacity &- 1
        let lengthWord = UInt64(truncatingIfNeeded: n) &<< 1 | 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let s = slots + i &* Self.slotBytes
            let stored = s.load(fromByteOffset: 24, as: UInt64.self)
            if stored == 0 { break }
            if stored == lengthWord && s.load(as: UInt64.self) == hash && s.load(fromByteOffset: 8, as: Int.self) == db
                && sameName(s, p, n) {
                let c = s.load(fromByteOffset: 16, as: UInt64.self)
                s.storeBytes(of: preamble ? c | Self.preambleBit : c &+ 1, toByteOffset: 16, as: UInt64.self)
                return
            }
            i = (i &+ 1) & mask
        }
        insert(at: i, db, p, n, hash: hash, preamble: preamble)
    }

    /// Whether slot `s` holds the name of `n` bytes at `p` (its length already equal).
    @inline(__always)
    func sameName(_ s: UnsafeMutableRawPointer, _ p: UnsafeRawPointer, _ n: Int) -> Bool {
        if n <= Self.inline {
            let a = s + 32
            return a.load(as: UInt64.self) == p.loadUnaligned(as: UInt64.self)
                && a.load(fromByteOffset: 8, as: UInt64.self) == p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                && a.load(fromByteOffset: 16, as: UInt64.self) == p.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
                && a.load(fromByteOffset: 24, as: UInt64.self) == p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        }
        return memcmp(arena! + s.load(fromByteOffset: 32, as: Int.self), p, n) == 0
    }

    func insert(at i: Int, _ db: Int, _ p: UnsafeRawPointer, _ n: Int, hash: UInt64, preamble: Bool) {
        let s = slots + i &* Self.slotBytes
        s.storeBytes(of: hash, as: UInt64.self)
        s.storeBytes(of: db, toByteOffset: 8, as: Int.self)
        s.storeBytes(of: preamble ? Self.preambleBit : 1, toByteOffset: 16, as: UInt64.self)
        s.storeBytes(of: UInt64(truncatingIfNeeded: n) &<< 1 | 1, toByteOffset: 24, as: UInt64.self)
        if n <= Self.inline {
            (s + 32).copyMemory(from: p, byteCount: Self.inline)
        } else {
            if arenaUsed + n > arenaCapacity {
                let grown = max(arenaCapacity * 2, arenaUsed + n, 1 << 16)
                let a = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 8)
                if let arena {
                    a.copyMemory(from: arena, byteCount: arenaUsed)
                    arena.deallocate()
                }
                arena = a
                arenaCapacity = grown
            }
            (arena! + arenaUsed).copyMemory(from: p, byteCount: n)
            s.storeBytes(of: arenaUsed, toByteOffset: 32, as: Int.self)
            arenaUsed += n
        }
        reserveOrder(count + 1)
        order[count] = i
        count += 1
        if count * 2 > capacity { grow() }
    }

    func reserveOrder(_ n: Int) {
        guard n > orderCapacity else { return }
        let grown = max(n, orderCapacity * 2)
        let o = UnsafeMutablePointer<Int>.allocate(capacity: grown)
        o.update(from: order, count: count)
        order.deallocate()
        order = o
        orderCapacity = grown
    }

    /// Twice the slots, every key placed again by its hash (in the order first seen).
    func grow() {
        let old = slots
        let oldBytes = capacity * Self.slotBytes
        capacity *= 2
        slots = Self.zeroed(capacity * Self.slotBytes)
        let mask = capacity - 1
        for k in 0..<count {
            // Slots are read in the order first seen, not where they are: each a few keys ahead is prefetched.
            if k &+ Self.readAhead < count { rdb_prefetch(old + order[k &+ Self.readAhead] &* Self.slotBytes) }
            let from = old + order[k] * Self.slotBytes
            var i = Int(truncatingIfNeeded: from.load(as: UInt64.self)) & mask
            while (slots + i * Self.slotBytes).load(fromByteOffset: 24, as: UInt64.self) != 0 { i = (i &+ 1) & mask }
            (slots + i * Self.slotBytes).copyMemory(from: from, byteCount: Self.slotBytes)
            order[k] = i
        }
        Self.free(old, oldBytes)
    }

    /// Calls `body` with each key in the order first seen: database, name, commands, whether a preamble holds it.
    func forEachEntry(_ body: (Int, UnsafeRawBufferPointer, Int, Bool) throws -> Void) rethrows {
        for k in 0..<count {
            if k &+ Self.readAhead < count { rdb_prefetch(slots + order[k &+ Self.readAhead] &* Self.slotBytes) }
            let s = slots + order[k] * Self.slotBytes
            let n = Int(s.load(fromByteOffset: 24, as: UInt64.self) >> 1)
            let name = n <= Self.inline ? UnsafeRawPointer(s + 32) : UnsafeRawPointer(arena! + s.load(fromByteOffset: 32, as: Int.self))
            let c = s.load(fromByteOffset: 16, as: UInt64.self)
            try body(s.load(fromByteOffset: 8, as: Int.self), UnsafeRawBufferPointer(start: name, count: n),
                     Int(c & ~Self.preambleBit), c & Self.preambleBit != 0)
        }
    }
}
