#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CMemoryHints

/// The keys `AOFKeys` has seen: each (db, key) once, with the commands that named it and whether a preamble
/// holds it, in the order first seen.
///
/// Open addressing over slots of one cache line each: the key's hash, its database, its count (the top bit:
/// held by a preamble), its length, and its name (up to `inline` bytes, zero-padded) or, when longer, where
/// the name is in `arena`. A key named again is found and counted in its slot alone: one cache line, which
/// `touch` prefetches when the key is named and `lookahead` keys before it is counted. (Slots of hash and
/// offset with entries in a separate arena missed the cache twice a key; a `[Key: Int]` dictionary hashed a
/// byte at a time and built an array per command.) A queued name is copied, zero-padded, into its place in
/// the queue (the command's bytes are gone by the time it is counted); a name too long for that place counts
/// the queue first, then itself from the command's bytes.
///
/// The memory is raw, so that counting a key checks no uniqueness and retains nothing; `AOFKeys` copies the
/// table (`copy`) before a copy of the sink changes it.
final class AOFKeyTable {
    static var slotBytes: Int { 64 }
    /// Bytes of a name kept in its slot.
    static var inline: Int { 32 }
    static let preambleBit: UInt64 = 1 << 63

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
    /// Per process, so that a file cannot be made of keys that all collide.
    let seed: UInt64

    // Keys named but not counted yet, oldest first: a ring of `lookahead` places of `queueBytes` each (the
    // hash, the database, the length with the preamble bit, then the name, zero-padded).
    static var lookahead: Int { 16 }
    /// How far ahead `grow` and `forEachEntry` prefetch the slots they read.
    static var readAhead: Int { 8 }
    static var queueBytes: Int { 128 }
    static var queueName: Int { queueBytes - 24 }
    var queue: UnsafeMutableRawPointer
    var head = 0
    var queued = 0

    init(capacity: Int = 1 << 10, seed: UInt64 = UInt64.random(in: 1...UInt64.max)) {
        self.capacity = capacity
        self.seed = seed
        slots = Self.zeroed(capacity * Self.slotBytes)
        orderCapacity = capacity / 2
        order = .allocate(capacity: orderCapacity)
        queue = .allocate(byteCount: Self.lookahead * Self.queueBytes, alignment: 64)
    }

    deinit {
        Self.free(slots, capacity * Self.slotBytes)
        order.deallocate()
        arena?.deallocate()
        queue.deallocate()
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

    /// A table with the same keys, counts, order and queue.
    func copy() -> AOFKeyTable {
        let t = AOFKeyTable(capacity: capacity, seed: seed)
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
        t.queue.copyMemory(from: queue, byteCount: Self.lookahead * Self.queueBytes)
        t.head = head
        t.queued = queued
        return t
    }

    /// A seeded multiply-mix hash of the database and the name, 8 bytes at a time, the last word zero-padded
    /// (SipHash through `Hasher` was a fifth of the lookups). `padded`: `p` is readable and zero from `n` up to
    /// the next multiple of 8.
    @inline(__always)
    func hash(_ db: Int, _ p: UnsafeRawPointer, _ n: Int, padded: Bool) -> UInt64 {
        @inline(__always) func mix(_ h: UInt64, _ w: UInt64) -> UInt64 {
            let m = (h ^ w).multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15)
            return m.high ^ m.low
        }
        var h = mix(seed, UInt64(truncatingIfNeeded: db) &+ UInt64(truncatingIfNeeded: n) &<< 32)
        var i = 0
        while n &- i >= 8 {
            h = mix(h, p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i &+= 8
        }
        if i < n {
            var tail: UInt64 = 0
            if padded {
                tail = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            } else {
                var shift: UInt64 = 0
                while i < n {
                    tail |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) &<< shift
                    shift &+= 8
                    i &+= 1
                }
            }
            h = mix(h, tail)
        }
        return h
    }

    /// Queues a key named by a command (or held by a preamble), counting the oldest queued key when the queue
    /// is full; its slot is prefetched now.
    @inline(__always)
    func touch(_ db: Int, _ b: UnsafeRawBufferPointer, preamble: Bool) {
        let n = b.count
        guard n <= Self.queueName else {
            // Too long to queue: counted at once, after the keys before it.
            countPending()
            tally(db, b.baseAddress!, n, hash: hash(db, b.baseAddress!, n, padded: false), preamble: preamble)
            return
        }
        if queued == Self.lookahead { countOldest() }
        let q = queue + ((head &+ queued) & (Self.lookahead &- 1)) &* Self.queueBytes
        let name = q + 24
        // Zero the words the name ends in, then copy it: the inline compare and the hash read whole words.
        let words = (n &+ 7) &>> 3
        for w in 0..<max(words, Self.inline / 8) { name.storeBytes(of: UInt64(0), toByteOffset: w &* 8, as: UInt64.self) }
        if n > 0 { name.copyMemory(from: b.baseAddress!, byteCount: n) }
        let h = hash(db, name, n, padded: true)
        rdb_prefetch(slots + (Int(truncatingIfNeeded: h) & (capacity &- 1)) &* Self.slotBytes)
        q.storeBytes(of: h, as: UInt64.self)
        q.storeBytes(of: db, toByteOffset: 8, as: Int.self)
        q.storeBytes(of: UInt64(n) | (preamble ? Self.preambleBit : 0), toByteOffset: 16, as: UInt64.self)
        queued &+= 1
    }

    /// Counts the oldest queued key.
    @inline(__always)
    func countOldest() {
        let q = queue + head &* Self.queueBytes
        let lengthWord = q.load(fromByteOffset: 16, as: UInt64.self)
        tally(q.load(fromByteOffset: 8, as: Int.self), q + 24, Int(lengthWord & ~Self.preambleBit),
              hash: q.load(as: UInt64.self), preamble: lengthWord & Self.preambleBit != 0)
        head = (head &+ 1) & (Self.lookahead &- 1)
        queued &-= 1
    }

    /// Counts every queued key, in the order they were named.
    func countPending() {
        while queued > 0 { countOldest() }
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
