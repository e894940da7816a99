#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CMemoryHints
import RDBKit

/// The keys `AOFKeys` has seen: each (db, key) once, with the commands that named it and whether a preamble
/// holds it, in the order first seen. Keys come to it in batches (`AOFKeyBatches`), each with its hash.
///
/// The keys are entries one after the other in `entries`, in the order first seen: the count (the top bit: held
/// by a preamble), the database and the length in one word (`keyWord`), then the name zero-padded to a word.
/// `index` finds them: open addressing over words that hold the hash's top 24 bits and where the entry is. An
/// entry does not keep its hash: the table hashes its name again (`hash`, seeded) when the index grows or a
/// part is merged in. (Keeping it, with the database and the length in words of their own, took 32 bytes a
/// key against 16: a third of the fresh memory of counting the keys of a large file, whose first touch costs
/// 0.4-2 ms a MiB in this VM.) A key named again
/// costs two cache misses, its index word and its entry, and both are prefetched while the keys before it
/// are counted: the index word `lookahead` keys ahead, the entry `entryLead` keys ahead, once its index word
/// is in the cache. (Slots of a cache line that held the name were one miss, but took 128–256 bytes a key
/// against ~70 here; a `[Key: Int]` dictionary hashed a byte at a time and built an array per command.)
/// Growing the index reads the entries in order, not the old index. The memory is raw, so that counting a
/// key checks no uniqueness and retains nothing.
final class AOFKeyTable {
    static let preambleBit: UInt64 = 1 << 63
    /// In a count word: the entry's key was found in the table it was merged into (see `merge`), which counts
    /// it; the entry stays, without an index word, and is not listed.
    static let deadBit: UInt64 = 1 << 62
    /// Keys counted ahead of the one being counted whose index words are prefetched, and whose entries are.
    static var lookahead: Int { 16 }
    static var entryLead: Int { 8 }
    static var header: Int { 16 }
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
    /// Whether keys of database -1 (a split part's, before its first SELECT) were added, and of known ones.
    var hasUnknownDatabase = false, hasKnownDatabase = false
    static var runKeys: Int { 1 << 13 }
    /// Per process (a table and the parts merged into it share it), so that a file cannot be made of keys that
    /// all collide.
    let seed: UInt64

    init(capacity: Int = 1 << 10, seed: UInt64 = UInt64.random(in: 1...UInt64.max)) {
        self.capacity = capacity
        self.seed = seed
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
    /// counting the keys of a large file: the copy, and zeroing the pages it wrote): at once, or, when it is
    /// several mappings (parts' entries moved in: `adoptEntries`), a huge page at a time (each is within one).
    static func regrown(_ p: UnsafeMutableRawPointer, _ bytes: Int, used: Int, to newBytes: Int) -> UnsafeMutableRawPointer {
        let q = zeroed(newBytes)
        if bytes >= hugePage {
            let size = mappedSize(bytes)
            if rdb_move_mapping(p, size, mappedSize(newBytes), q) != nil { return q }
            var at = 0
            while at < size {
                if rdb_move_mapping(p + at, hugePage, hugePage, q + at) == nil && at < used {
                    (q + at).copyMemory(from: p + at, byteCount: min(hugePage, used - at))
                }
                at += hugePage
            }
            munmap(p, size)
            return q
        }
        q.copyMemory(from: p, byteCount: used)
        free(p, bytes)
        return q
    }

    /// A table with the same keys, counts and order.
    func copy() -> AOFKeyTable {
        let t = AOFKeyTable(capacity: capacity, seed: seed)
        t.index.update(from: index, count: capacity)
        t.reserveEntries(entriesUsed)
        t.entries.copyMemory(from: entries, byteCount: entriesUsed)
        t.entriesUsed = entriesUsed
        t.count = count
        t.runStarts = runStarts
        t.hasUnknownDatabase = hasUnknownDatabase
        t.hasKnownDatabase = hasKnownDatabase
        return t
    }

    /// The bytes a key of `n` bytes takes in a batch: a header of two words (the hash, then the `keyWord`
    /// with the preamble bit), then the name, zero-padded to a word.
    @inline(__always)
    static func recordBytes(_ n: Int) -> Int { 16 &+ ((n &+ 7) & ~7) }

    /// The database and the length of a name in one word, as an entry holds them: the database plus one in the
    /// top half (0 for database -1, a split part's before its first SELECT; databases are at most `Int32.max`),
    /// the length in the bottom half (names are at most 4 GiB: the readers' limits are 512 MiB for a command's
    /// argument, 2 GiB for an RDB string). Its top bit is clear (a batch's record keeps the preamble bit there).
    @inline(__always)
    static func keyWord(_ db: Int, _ n: Int) -> UInt64 {
        precondition(UInt64(truncatingIfNeeded: n) <= UInt64(UInt32.max) && db >= -1 && db <= Int(Int32.max),
                     "AOF keys: a key of 4 GiB or more, or a database out of range")
        return UInt64(truncatingIfNeeded: db &+ 1) &<< 32 | UInt64(truncatingIfNeeded: n)
    }

    /// The database of a `keyWord`.
    @inline(__always)
    static func database(_ word: UInt64) -> Int { Int(truncatingIfNeeded: word &>> 32) &- 1 }

    /// The length of a `keyWord` (or of a batch record's word, the preamble bit ignored).
    @inline(__always)
    static func length(_ word: UInt64) -> Int { Int(truncatingIfNeeded: word & 0xFFFF_FFFF) }

    /// A seeded multiply-mix hash of the database and the name (`n` bytes at `name`, zero-padded to a word),
    /// as `AOFKeyBatches.touch` computes it while it copies the name.
    @inline(__always)
    func hash(_ db: Int, padded name: UnsafeRawPointer, _ n: Int) -> UInt64 {
        var h = Self.mix(seed, UInt64(truncatingIfNeeded: db) &+ UInt64(truncatingIfNeeded: n) &<< 32)
        var i = 0
        while i < n {
            h = Self.mix(h, name.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i &+= 8
        }
        return h
    }

    /// The hash of the entry at `e`.
    @inline(__always)
    func hash(entry e: UnsafeRawPointer) -> UInt64 {
        let w = e.load(fromByteOffset: 8, as: UInt64.self)
        return hash(Self.database(w), padded: e + Self.header, Self.length(w))
    }

    @inline(__always)
    static func mix(_ h: UInt64, _ w: UInt64) -> UInt64 {
        let m = (h ^ w).multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15)
        return m.high ^ m.low
    }

    /// The bytes a key of `n` bytes takes in `entries`: the header, then the name zero-padded to a word.
    @inline(__always)
    static func entryBytes(_ n: Int) -> Int { header &+ ((n &+ 7) & ~7) }

    /// Counts the keys of a batch in order, prefetching the index word of each `lookahead` keys before, and
    /// its entry `entryLead` keys before. `position`: where in the file the reader was at its end (`expect`).
    func countBatch(_ base: UnsafeMutableRawPointer, _ used: Int, upTo position: Int) {
        self.position = position
        @inline(__always) func next(_ at: Int) -> Int {
            at &+ Self.recordBytes(Self.length(base.load(fromByteOffset: at &+ 8, as: UInt64.self)))
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
            let word = q.load(fromByteOffset: 8, as: UInt64.self)
            tally(word & ~Self.preambleBit, q + 16, hash: q.load(as: UInt64.self),
                  adding: word & Self.preambleBit != 0 ? Self.preambleBit : 1)
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

    /// Counts a command naming the name at `p` (zero-padded to a word) whose database and length are `key` (a
    /// `keyWord`), or the preamble holding it, adding the key when it is new; `hash` is its `hash`.
    /// `added` is what to add to its count word: `1` (a command), `preambleBit` (a preamble holds it), or both
    /// a count and the bit (a table merged into this one).
    @inline(__always)
    func tally(_ key: UInt64, _ p: UnsafeRawPointer, hash: UInt64, adding added: UInt64) {
        let mask = capacity &- 1
        let tag = hash &>> Self.offsetBits
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let word = index[i]
            if word == 0 { break }
            if word &>> Self.offsetBits == tag {
                let e = entries + Int(truncatingIfNeeded: (word & Self.offsetMask) &- 1) &* 8
                if Self.holds(e, key, p) {
                    let c = e.load(as: UInt64.self)
                    e.storeBytes(of: Self.counted(c, adding: added), as: UInt64.self)
                    return
                }
            }
            i = (i &+ 1) & mask
        }
        insert(at: i, key, p, hash: hash, adding: added)
    }

    /// A count word (commands, and the preamble bit) with `added`'s commands added and its bit set.
    @inline(__always)
    static func counted(_ c: UInt64, adding added: UInt64) -> UInt64 {
        (c | (added & preambleBit)) &+ (added & ~preambleBit)
    }

    /// Whether the entry at `e` is the key named by the bytes at `name` (zero-padded to a word) whose database
    /// and length are `key` (a `keyWord`).
    @inline(__always)
    static func holds(_ e: UnsafeRawPointer, _ key: UInt64, _ name: UnsafeRawPointer) -> Bool {
        e.load(fromByteOffset: 8, as: UInt64.self) == key && sameName(e + header, name, length(key))
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

    func insert(at i: Int, _ key: UInt64, _ p: UnsafeRawPointer, hash: UInt64, adding added: UInt64) {
        let size = Self.entryBytes(Self.length(key))
        reserveEntries(entriesUsed + size)
        let e = entries + entriesUsed
        e.storeBytes(of: added, as: UInt64.self)
        e.storeBytes(of: key, toByteOffset: 8, as: UInt64.self)
        (e + Self.header).copyMemory(from: p, byteCount: size - Self.header)
        index[i] = Self.indexWord(hash, entriesUsed)
        if count & (Self.runKeys &- 1) == 0 { runStarts.append(entriesUsed) }
        if Self.database(key) < 0 { hasUnknownDatabase = true } else { hasKnownDatabase = true }
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
    /// places every key again), so that at most `quarters`/4 of the words are used (a key counted grows the
    /// index past half). `more` is capped (`maxReserved`): a file's hint may be wrong.
    func reserve(_ more: Int, quarters: Int = 2) {
        var target = capacity
        while (count + min(max(more, 0), Self.maxReserved)) * 4 > target * quarters { target *= 2 }
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

    /// `newCapacity` index words (a larger power of two), each key placed again once.
    ///
    /// A mapped index keeps its pages (moved, `regrown`, and cleared), so that only the added words are fresh
    /// memory: each fresh MiB a run touches costs ~0.5 ms in this VM (2.3-4.8 ms for the 8 MiB index of 300k
    /// keys, against 0.8-2.2 ms now). (Two threads clearing and placing half each, with compare-and-exchange,
    /// were no faster here: 4-8.5 ms against 3-5 ms placing 260k keys.)
    func grow(to newCapacity: Int) {
        let oldBytes = capacity * 8, newBytes = newCapacity * 8
        let kept: Int
        if oldBytes >= Self.hugePage {
            index = Self.regrown(UnsafeMutableRawPointer(index), oldBytes, used: 0, to: newBytes).assumingMemoryBound(to: UInt64.self)
            kept = Self.mappedSize(oldBytes)
        } else {
            Self.free(UnsafeMutableRawPointer(index), oldBytes)
            index = Self.zeroed(newBytes).assumingMemoryBound(to: UInt64.self)
            kept = 0
        }
        capacity = newCapacity
        if kept > 0 { memset(index, 0, kept) }
        if newBytes > kept && newBytes >= Self.hugePage {
            _ = rdb_populate_for_writing(UnsafeMutableRawPointer(index) + kept, Self.mappedSize(newBytes) - kept)
        }
        _ = place(from: 0, to: entriesUsed, merging: false)
    }

    /// Where a run starts near the middle of the entries, when they are worth halving between two threads (at
    /// least two runs, and a second core).
    func middleRun() -> Int? {
        guard runStarts.count >= 2, availableCores() > 1 else { return nil }
        let m = runStarts[runStarts.count / 2]
        return m > 0 && m < entriesUsed ? m : nil
    }

    /// Runs `a` on this thread and `b` on another (or after `a` when no thread can be made); the sum of what
    /// they return.
    static func onTwoThreads(_ a: () -> Int, _ b: @escaping () -> Int) -> Int {
        final class Result: @unchecked Sendable { var value = 0 }
        let result = Result()
        guard let thread = startThread({ result.value = b() }) else { return a() + b() }
        let mine = a()
        pthread_join(thread, nil)
        return mine + result.value
    }

    /// Calls `body` with the offset and hash of each live entry at offsets `from..<to` of `entries`, in order: its
    /// hash computed (`hashOf`) and the word of this table's index it falls on prefetched (for writing, with
    /// `forWriting`) `lookahead` entries before, kept until then in a ring. A dead entry's name is not read (the
    /// gap before adopted entries is one, its pages never backed). The prefetches aim at the index as it was when
    /// the walk began (were it to grow meanwhile, they would only be wasted).
    @inline(__always)
    func forEachLive(_ entries: UnsafeMutableRawPointer, from: Int, to: Int, forWriting: Bool,
                     hash hashOf: (UnsafeMutableRawPointer) -> UInt64, _ body: (Int, UInt64) -> Void) {
        let mask = capacity &- 1, index = index
        @inline(__always) func next(_ offset: Int) -> Int {
            offset &+ Self.entryBytes(Self.length(entries.load(fromByteOffset: offset &+ 8, as: UInt64.self)))
        }
        @inline(__always) func isLive(_ offset: Int) -> Bool {
            entries.load(fromByteOffset: offset, as: UInt64.self) & Self.deadBit == 0
        }
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: Self.lookahead) { ring in
            var ahead = from, aheadSlot = 0
            @inline(__always) func hashAhead() {
                if isLive(ahead) {
                    let h = hashOf(entries + ahead)
                    ring[aheadSlot] = h
                    let word = index + (Int(truncatingIfNeeded: h) & mask)
                    if forWriting { rdb_prefetch_write(word) } else { rdb_prefetch(word) }
                }
                aheadSlot = (aheadSlot &+ 1) & (Self.lookahead &- 1)
                ahead = next(ahead)
            }
            for _ in 0..<Self.lookahead where ahead < to { hashAhead() }
            var offset = from, slot = 0
            while offset < to {
                if isLive(offset) { body(offset, ring[slot]) }
                slot = (slot &+ 1) & (Self.lookahead &- 1)
                offset = next(offset)
                if ahead < to { hashAhead() }
            }
        }
    }

    /// Gives the live entries at offsets `from..<to` index words: each in the first free word from its hash
    /// (`forEachLive`). `merging` (a part's entries, appended):
    /// another thread places other keys in the index at the same time (words are read with acquire and set by
    /// compare-and-exchange), and an entry whose key has a word already (the key of the table the part is
    /// merged into) is folded into it, its count added there, and left dead. Returns the entries placed.
    @inline(__always)
    func place(from: Int, to: Int, merging: Bool) -> Int {
        let mask = capacity &- 1
        let entries = entries, index = index
        var placed = 0
        forEachLive(entries, from: from, to: to, forWriting: true, hash: { hash(entry: $0) }) { offset, h in
            let e = entries + offset
            let c = e.load(as: UInt64.self)
            let word = Self.indexWord(h, offset)
            var i = Int(truncatingIfNeeded: h) & mask
            while true {
                let w = merging ? rdb_load_acquire(index + i) : index[i]
                if w == 0 {
                    if !merging {
                        index[i] = word
                    } else if rdb_compare_exchange(index + i, 0, word) == 0 {
                        continue  // another thread took the word: look at it again
                    }
                    placed &+= 1
                    break
                }
                if merging && w &>> Self.offsetBits == h &>> Self.offsetBits {
                    let f = entries + Int(truncatingIfNeeded: (w & Self.offsetMask) &- 1) &* 8
                    if Self.holds(f, e.load(fromByteOffset: 8, as: UInt64.self), e + Self.header) {
                        f.storeBytes(of: Self.counted(f.load(as: UInt64.self), adding: c), as: UInt64.self)
                        e.storeBytes(of: c | Self.deadBit, as: UInt64.self)
                        break
                    }
                }
                i = (i &+ 1) & mask
            }
        }
        return placed
    }

    /// Counts the keys of `part` (a table with the same seed) after these, in its order: a key in database -1
    /// is in `dbAtStart`. The index is grown once up front.
    ///
    /// When the part's keys are all different keys (not some in database -1 and some in known databases, which
    /// could name the same key), on two cores: its entries are appended as they are, each thread taking half
    /// of them, and each entry either gets an index word or, when this table has its key, is counted there and
    /// left dead (`place`). Else one by one, each key's index word prefetched `lookahead` keys before.
    func merge(_ part: AOFKeyTable, dbAtStart: Int) {
        precondition(part.seed == seed, "AOF keys: a part merged into a table of another seed")
        if !(part.hasUnknownDatabase && part.hasKnownDatabase), let middle = part.middleRun() {
            // Placed on two cores, with prefetching, the part's keys may fill three quarters of the index: the
            // next key counted grows it, if any comes (the last merges of a set were a growth, for a few keys
            // past half, placing every key again: 3.3 of 4.5 ms for the INCR of aof-multipart).
            reserve(part.count, quarters: 3)
            let partBytes = part.entriesUsed
            let moved = adoptEntries(of: part)
            let base = moved ?? entriesUsed
            if moved == nil { reserveEntries(base + partBytes) }
            let fixDatabase = part.hasUnknownDatabase
            let half = { (from: Int, to: Int) -> Int in
                let start = self.entries + base
                if moved == nil { (start + from).copyMemory(from: part.entries + from, byteCount: to - from) }
                var offset = from
                while fixDatabase && offset < to {
                    let e = start + offset
                    let n = Self.length(e.load(fromByteOffset: 8, as: UInt64.self))
                    e.storeBytes(of: Self.keyWord(dbAtStart, n), toByteOffset: 8, as: UInt64.self)
                    offset &+= Self.entryBytes(n)
                }
                return self.place(from: base + from, to: base + to, merging: true)
            }
            count += Self.onTwoThreads({ half(0, middle) }, { half(middle, partBytes) })
            entriesUsed = base + partBytes
            runStarts += part.runStarts.map { base + $0 }
            hasKnownDatabase = true
            return
        }
        reserve(part.count)
        @inline(__always) func key(_ e: UnsafeRawPointer) -> UInt64 {
            let w = e.load(fromByteOffset: 8, as: UInt64.self)
            return Self.database(w) == -1 ? Self.keyWord(dbAtStart, Self.length(w)) : w
        }
        let entries = part.entries
        forEachLive(entries, from: 0, to: part.entriesUsed, forWriting: false, hash: { e in
            let w = key(e)
            return hash(Self.database(w), padded: e + Self.header, Self.length(w))
        }) { offset, h in
            let e = entries + offset
            tally(key(e), e + Self.header, hash: h, adding: e.load(as: UInt64.self))
        }
    }

    /// Parts whose entries were moved in (for tests).
    var adoptedParts = 0

    /// Moves the pages of `part`'s entries to follow these, from the next huge page on, when both are mapped:
    /// neither a copy nor fresh memory (for the 150k keys of an INCR file read ahead, 6 MiB copied into pages
    /// backed for it were most of its merge). The gap before them is one dead entry, whose name is never touched
    /// (nor backed). Returns where they start, the part left without entries; nil when they cannot be moved
    /// (nothing changed but room reserved).
    func adoptEntries(of part: AOFKeyTable) -> Int? {
        guard part.entriesCapacity >= Self.hugePage, entriesCapacity >= Self.hugePage, part.entriesUsed > 0 else { return nil }
        var base = (entriesUsed + Self.hugePage - 1) & ~(Self.hugePage - 1)
        if base > entriesUsed && base - entriesUsed < Self.header { base += Self.hugePage }
        let size = Self.mappedSize(part.entriesUsed)
        reserveEntries(base + size)
        guard rdb_move_mapping(part.entries, size, size, entries + base) != nil else { return nil }
        if base > entriesUsed {
            let gap = entries + entriesUsed
            gap.storeBytes(of: Self.deadBit, as: UInt64.self)
            gap.storeBytes(of: Self.keyWord(0, base - entriesUsed - Self.header), toByteOffset: 8, as: UInt64.self)
        }
        // The part keeps the rest of its mapping's range no longer: nothing of its own is left to free.
        let rest = Self.mappedSize(part.entriesCapacity) - size
        if rest > 0 { munmap(part.entries + size, rest) }
        part.entries = .allocate(byteCount: 64, alignment: 64)
        part.entriesCapacity = 64
        part.entriesUsed = 0
        adoptedParts += 1
        return base
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
            let w = e.load(fromByteOffset: 8, as: UInt64.self), n = Self.length(w)
            let c = e.load(as: UInt64.self)
            if c & Self.deadBit == 0 {
                try body(Self.database(w), UnsafeRawBufferPointer(start: e + Self.header, count: n),
                         Int(c & ~Self.preambleBit), c & Self.preambleBit != 0)
            }
            offset += Self.entryBytes(n)
        }
    }
}
