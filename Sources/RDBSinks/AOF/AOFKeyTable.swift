#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CMemoryHints

/// The keys `AOFKeys` has seen: each (db, key) once, with the commands that named it and whether a preamble
/// holds it, in the order first seen. Keys come to it in batches (`AOFKeyBatches`), each with its hash.
///
/// The keys are entries one after the other in `entries`, in the order first seen: the hash, the database,
/// the count (the top bit: held by a preamble), the length, then the name zero-padded to a word. `index` finds
/// them: open addressing over words that hold the hash's top 24 bits and where the entry is. A key named again
/// costs two cache misses, its index word and its entry, and both are prefetched while the keys before it
/// are counted: the index word `lookahead` keys ahead, the entry `entryLead` keys ahead, once its index word
/// is in the cache. (Slots of a cache line that held the name were one miss, but took 128–256 bytes a key
/// against ~70 here; a `[Key: Int]` dictionary hashed a byte at a time and built an array per command.)
/// Growing the index reads the entries in order, not the old index. The memory is raw, so that counting a
/// key checks no uniqueness and retains nothing.
final class AOFKeyTable {
    static let preambleBit: UInt64 = 1 << 63
    /// Keys counted ahead of the one being counted whose index words are prefetched, and whose entries are.
    static var lookahead: Int { 16 }
    static var entryLead: Int { 8 }
    static var header: Int { 32 }
    /// An index word: the hash's top 24 bits, then the entry's offset in words plus one (0: empty).
    static var offsetBits: UInt64 { 40 }
    static var offsetMask: UInt64 { (1 << offsetBits) - 1 }

    var index: UnsafeMutablePointer<UInt64>
    /// Index words (a power of two).
    var capacity: Int
    private(set) var count = 0
    var entries: UnsafeMutableRawPointer
    var entriesUsed = 0
    var entriesCapacity: Int
    /// Where every `runKeys`-th entry starts, the first at 0: the keys in runs, for output formatted on two
    /// cores (`OutputRuns`).
    private(set) var runStarts: [Int] = []
    static var runKeys: Int { 1 << 13 }

    init(capacity: Int = 1 << 10) {
        self.capacity = capacity
        index = Self.zeroed(capacity * 8, populate: true).assumingMemoryBound(to: UInt64.self)
        entriesCapacity = 1 << 16
        entries = Self.zeroed(entriesCapacity)
    }

    deinit {
        Self.free(UnsafeMutableRawPointer(index), capacity * 8)
        Self.free(entries, entriesCapacity)
    }

    /// Zeroed memory of `bytes`: from 2 MiB, mapped (zero pages, backed as they are touched) and
    /// asked for huge pages (a probe of a table of millions of slots otherwise misses the TLB as well as the
    /// cache, which a prefetch does not hide).
    /// With `populate`, the pages are backed up front (for the index, whose words are read before they are
    /// written: each huge page would otherwise be faulted in twice).
    static func zeroed(_ bytes: Int, populate: Bool = false) -> UnsafeMutableRawPointer {
        if bytes >= Self.hugePage {
            let size = mappedSize(bytes)
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
                if populate { _ = rdb_populate_for_writing(p, size) }
                return p
            }
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        return p
    }

    static var hugePage: Int { 2 << 20 }

    /// The bytes mapped for `bytes` (from `hugePage` on): whole huge pages.
    static func mappedSize(_ bytes: Int) -> Int { (bytes + hugePage - 1) & ~(hugePage - 1) }

    static func free(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        if bytes >= hugePage {
            munmap(p, mappedSize(bytes))
        } else {
            p.deallocate()
        }
    }

    /// `p` (`bytes`, of which `used` hold data) grown to `newBytes`, the rest zero; `p` is gone. Mapped memory
    /// has its pages moved to the new place (`rdb_move_mapping`) instead of copied (a copy was a tenth of
    /// counting the keys of a large file: the copy, and zeroing the pages it wrote).
    static func regrown(_ p: UnsafeMutableRawPointer, _ bytes: Int, used: Int, to newBytes: Int) -> UnsafeMutableRawPointer {
        let q = zeroed(newBytes)
        if bytes >= hugePage, rdb_move_mapping(p, mappedSize(bytes), mappedSize(newBytes), q) != nil { return q }
        q.copyMemory(from: p, byteCount: used)
        free(p, bytes)
        return q
    }

    /// A table with the same keys, counts and order.
    func copy() -> AOFKeyTable {
        let t = AOFKeyTable(capacity: capacity)
        t.index.update(from: index, count: capacity)
        t.reserveEntries(entriesUsed)
        t.entries.copyMemory(from: entries, byteCount: entriesUsed)
        t.entriesUsed = entriesUsed
        t.count = count
        t.runStarts = runStarts
        return t
    }

    /// The bytes a key of `n` bytes takes in a batch: a header of three words (the hash, the database, the
    /// length with the preamble bit), then the name, zero-padded to a word.
    @inline(__always)
    static func recordBytes(_ n: Int) -> Int { 24 &+ ((n &+ 7) & ~7) }

    /// The bytes a key of `n` bytes takes in `entries`: the header, then the name zero-padded to a word.
    @inline(__always)
    static func entryBytes(_ n: Int) -> Int { header &+ ((n &+ 7) & ~7) }

    /// Counts the keys of a batch in order, prefetching the index word of each `lookahead` keys before, and
    /// its entry `entryLead` keys before. `position`: where in the file the reader was at its end (`expect`).
    func countBatch(_ base: UnsafeMutableRawPointer, _ used: Int, upTo position: Int) {
        self.position = position
        @inline(__always) func next(_ at: Int) -> Int {
            at &+ Self.recordBytes(Int(base.load(fromByteOffset: at &+ 16, as: UInt64.self) & ~Self.preambleBit))
        }
        @inline(__always) func hash(_ at: Int) -> UInt64 { base.load(fromByteOffset: at, as: UInt64.self) }
        var ahead = 0, lead = 0
        for _ in 0..<Self.lookahead where ahead < used {
            rdb_prefetch(index + (Int(truncatingIfNeeded: hash(ahead)) & (capacity &- 1)))
            ahead = next(ahead)
        }
        // `lead` trails `ahead` by `lookahead - entryLead` keys.
        for _ in 0..<(Self.lookahead &- Self.entryLead) where lead < used { lead = next(lead) }
        var at = 0
        while at < used {
            let q = base + at
            let lengthWord = q.load(fromByteOffset: 16, as: UInt64.self)
            tally(q.load(fromByteOffset: 8, as: Int.self), q + 24, Int(lengthWord & ~Self.preambleBit),
                  hash: q.load(as: UInt64.self), adding: lengthWord & Self.preambleBit != 0 ? Self.preambleBit : 1)
            at = next(at)
            if lead < used {
                let h = hash(lead)
                let word = index[Int(truncatingIfNeeded: h) & (capacity &- 1)]
                if word != 0 && word &>> Self.offsetBits == h &>> Self.offsetBits {
                    rdb_prefetch(entries + Int(truncatingIfNeeded: (word & Self.offsetMask) &- 1) &* 8)
                }
                lead = next(lead)
            }
            if ahead < used {
                rdb_prefetch(index + (Int(truncatingIfNeeded: hash(ahead)) & (capacity &- 1)))
                ahead = next(ahead)
            }
        }
    }

    /// Counts a command naming the `n` bytes at `p` in `db` (or the preamble holding it), adding the key when it
    /// is new. `p` is zero-padded to a word.
    /// `added` is what to add to its count word: `1` (a command), `preambleBit` (a preamble holds it), or both
    /// a count and the bit (a table merged into this one).
    @inline(__always)
    func tally(_ db: Int, _ p: UnsafeRawPointer, _ n: Int, hash: UInt64, adding added: UInt64) {
        let mask = capacity &- 1
        let tag = hash &>> Self.offsetBits
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let word = index[i]
            if word == 0 { break }
            if word &>> Self.offsetBits == tag {
                let e = entries + Int(truncatingIfNeeded: (word & Self.offsetMask) &- 1) &* 8
                if e.load(fromByteOffset: 8, as: Int.self) == db && e.load(fromByteOffset: 24, as: Int.self) == n
                    && Self.sameName(e + Self.header, p, n) {
                    let c = e.load(fromByteOffset: 16, as: UInt64.self)
                    e.storeBytes(of: Self.counted(c, adding: added), toByteOffset: 16, as: UInt64.self)
                    return
                }
            }
            i = (i &+ 1) & mask
        }
        insert(at: i, db, p, n, hash: hash, adding: added)
    }

    /// A count word (commands, and the preamble bit) with `added`'s commands added and its bit set.
    @inline(__always)
    static func counted(_ c: UInt64, adding added: UInt64) -> UInt64 {
        (c | (added & preambleBit)) &+ (added & ~preambleBit)
    }

    /// Whether two names of `n` bytes, each zero-padded to a word, are the same.
    @inline(__always)
    static func sameName(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
        guard n <= 64 else { return memcmp(a, b, n) == 0 }
        var i = 0
        while i < n {
            if a.load(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i &+= 8
        }
        return true
    }

    func insert(at i: Int, _ db: Int, _ p: UnsafeRawPointer, _ n: Int, hash: UInt64, adding added: UInt64) {
        let size = Self.entryBytes(n)
        reserveEntries(entriesUsed + size)
        let e = entries + entriesUsed
        e.storeBytes(of: hash, as: UInt64.self)
        e.storeBytes(of: db, toByteOffset: 8, as: Int.self)
        e.storeBytes(of: added, toByteOffset: 16, as: UInt64.self)
        e.storeBytes(of: n, toByteOffset: 24, as: Int.self)
        (e + Self.header).copyMemory(from: p, byteCount: size - Self.header)
        index[i] = Self.indexWord(hash, entriesUsed)
        if count & (Self.runKeys &- 1) == 0 { runStarts.append(entriesUsed) }
        entriesUsed += size
        count += 1
        if count * 2 > capacity { grow() }
    }

    @inline(__always)
    static func indexWord(_ hash: UInt64, _ offset: Int) -> UInt64 {
        (hash &>> offsetBits) &<< offsetBits | (UInt64(offset / 8) + 1)
    }

    /// Room for `bytes` of entries (twice as much each time; the old ones moved once).
    func reserveEntries(_ bytes: Int) {
        guard bytes > entriesCapacity else { return }
        precondition(bytes / 8 < Int(Self.offsetMask), "AOF keys: more than 8 TiB of key names")
        let grown = max(bytes, entriesCapacity * 2)
        entries = Self.regrown(entries, entriesCapacity, used: entriesUsed, to: grown)
        entriesCapacity = grown
    }

    /// Index words for `more` keys than it has, grown at once rather than doubling as they come (each growth
    /// places every key again). `more` is capped (`maxReserved`): a file's hint may be wrong.
    func reserve(_ more: Int) {
        var target = capacity
        while (count + min(max(more, 0), Self.maxReserved)) * 2 > target { target *= 2 }
        if target > capacity { grow(to: target) }
    }

    static var maxReserved: Int { 1 << 22 }

    /// The bytes of the file whose commands are being counted (`expect`), the keys there were when they began,
    /// and where the reader has got to in them (`countBatch`).
    var rangeStart = 0, rangeEnd = 0, keysAtRangeStart = 0, position = 0

    /// The commands to come lie between the offsets `start` and `end` of the file: the index grows by the rate
    /// at which new keys come in them.
    func expect(from start: Int, to end: Int) {
        rangeStart = start
        rangeEnd = end
        keysAtRangeStart = count
        position = start
    }

    /// Grows the index: to twice its words, or, when keys come at a rate that fills more by the end of the
    /// range (`expect`), to what that rate says, at most 8 times the words (and `maxReserved` more keys) at a
    /// time. A file of one command per key (an AOF rewrite) grows its index three or four times instead of a
    /// dozen, each placing every key again.
    func grow() {
        var target = capacity * 2
        let done = position - rangeStart, total = rangeEnd - rangeStart
        if done > 0 && total > done {
            let rate = Double(count - keysAtRangeStart) / Double(done)
            let projected = Double(count) + min(rate * Double(total - done), Double(Self.maxReserved))
            while Double(target) < projected * 2 && target < capacity * 8 { target *= 2 }
        }
        grow(to: target)
    }

    /// `newCapacity` index words (a larger power of two), each key placed again once, its index word
    /// prefetched (for writing) `lookahead` keys before.
    func grow(to newCapacity: Int) {
        Self.free(UnsafeMutableRawPointer(index), capacity * 8)
        capacity = newCapacity
        index = Self.zeroed(capacity * 8, populate: true).assumingMemoryBound(to: UInt64.self)
        let mask = capacity &- 1
        let entries = entries, used = entriesUsed, index = index
        @inline(__always) func next(_ offset: Int) -> Int {
            offset &+ Self.entryBytes(entries.load(fromByteOffset: offset &+ 24, as: Int.self))
        }
        @inline(__always) func home(_ offset: Int) -> Int {
            Int(truncatingIfNeeded: entries.load(fromByteOffset: offset, as: UInt64.self)) & mask
        }
        var ahead = 0
        for _ in 0..<Self.lookahead where ahead < used {
            rdb_prefetch_write(index + home(ahead))
            ahead = next(ahead)
        }
        var offset = 0
        while offset < used {
            var i = home(offset)
            while index[i] != 0 { i = (i &+ 1) & mask }
            index[i] = Self.indexWord(entries.load(fromByteOffset: offset, as: UInt64.self), offset)
            offset = next(offset)
            if ahead < used {
                rdb_prefetch_write(index + home(ahead))
                ahead = next(ahead)
            }
        }
    }

    /// Counts the keys of `part` (a table hashing with the same seed) after these, in its order: a key in
    /// database -1 is in `dbAtStart`, hashed again by `rehash` (given the name, zero-padded to a word, and its
    /// length). The index is grown once up front, and each key's index word is prefetched `lookahead` keys
    /// before it is counted.
    func merge(_ part: AOFKeyTable, dbAtStart: Int, rehash: (UnsafeRawPointer, Int) -> UInt64) {
        @inline(__always) func db(_ e: UnsafeRawPointer) -> Int { e.load(fromByteOffset: 8, as: Int.self) }
        @inline(__always) func hash(_ offset: Int) -> UInt64 {
            let e = UnsafeRawPointer(part.entries + offset)
            return db(e) == -1 ? rehash(e + Self.header, e.load(fromByteOffset: 24, as: Int.self)) : e.load(as: UInt64.self)
        }
        @inline(__always) func next(_ offset: Int) -> Int {
            offset &+ Self.entryBytes(part.entries.load(fromByteOffset: offset &+ 24, as: Int.self))
        }
        var ahead = 0
        for _ in 0..<Self.lookahead where ahead < part.entriesUsed {
            rdb_prefetch(index + (Int(truncatingIfNeeded: hash(ahead)) & (capacity &- 1)))
            ahead = next(ahead)
        }
        var offset = 0
        while offset < part.entriesUsed {
            let e = UnsafeRawPointer(part.entries + offset)
            let n = e.load(fromByteOffset: 24, as: Int.self)
            let d = db(e)
            tally(d == -1 ? dbAtStart : d, e + Self.header, n, hash: hash(offset), adding: e.load(fromByteOffset: 16, as: UInt64.self))
            offset = next(offset)
            if ahead < part.entriesUsed {
                rdb_prefetch(index + (Int(truncatingIfNeeded: hash(ahead)) & (capacity &- 1)))
                ahead = next(ahead)
            }
        }
    }

    /// Calls `body` with each key in the order first seen: database, name, commands, whether a preamble holds it.
    /// (Each name is followed by its zero padding to a whole number of words.)
    func forEachEntry(_ body: (Int, UnsafeRawBufferPointer, Int, Bool) throws -> Void) rethrows {
        for r in runStarts.indices { try forEachEntry(inRun: r, body) }
    }

    /// `forEachEntry` for the keys of run `r` (see `runStarts`).
    func forEachEntry(inRun r: Int, _ body: (Int, UnsafeRawBufferPointer, Int, Bool) throws -> Void) rethrows {
        var offset = runStarts[r]
        let end = r &+ 1 < runStarts.count ? runStarts[r &+ 1] : entriesUsed
        while offset < end {
            let e = entries + offset
            let n = e.load(fromByteOffset: 24, as: Int.self)
            let c = e.load(fromByteOffset: 16, as: UInt64.self)
            try body(e.load(fromByteOffset: 8, as: Int.self), UnsafeRawBufferPointer(start: e + Self.header, count: n),
                     Int(c & ~Self.preambleBit), c & Self.preambleBit != 0)
            offset += Self.entryBytes(n)
        }
    }
}
