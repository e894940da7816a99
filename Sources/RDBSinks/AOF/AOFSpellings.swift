import RDBKit

/// Command names as a file spells them (any case), each with what a sink worked out once from its upper-case
/// name (its entry in a report, its key positions). A file uses a few spellings, so a command is then placed
/// by comparing its first argument with them, without building its upper-case name and hashing it: names of
/// up to 16 bytes as two words (`words`), two compares per spelling, nothing allocated, retained or called.
/// (Arrays of bytes compared with memcmp, or an upper-case `String` looked up in a dictionary per command,
/// were a third of `stats` and a tenth of `keys` on an AOF.)
@usableFromInline
struct AOFSpellings<Value> {
    @usableFromInline var entries: [(words: (UInt64, UInt64), count: Int, value: Value)] = []
    @inlinable static var capacity: Int { 64 }

    /// Where each spelling is, by its hash (`bucket`): its index in `entries` plus one (0: no spelling has that
    /// hash). A spelling whose bucket was taken when it was first seen is found by a scan of `entries`.
    @usableFromInline var buckets = [UInt8](repeating: 0, count: 64)

    @usableFromInline init() {}

    @inlinable @inline(__always)
    static func bucket(_ w: (UInt64, UInt64), _ count: Int) -> Int {
        Int(truncatingIfNeeded: ((w.0 &+ w.1 &* 31 &+ UInt64(truncatingIfNeeded: count)) &* 0x9E37_79B9_7F4A_7C15) &>> 58)
    }

    /// The value of a spelling seen before, if `name` is one.
    @inline(__always)
    func lookup(_ name: UnsafeRawBufferPointer) -> Value? {
        let i = index(of: name)
        return i < 0 ? nil : entries[i].value
    }

    /// Where `name` is in `entries` if it is a spelling seen before, else -1 (always below `capacity`, so a
    /// sink can keep something per spelling in a fixed block).
    @inlinable @inline(__always)
    func index(of name: UnsafeRawBufferPointer) -> Int {
        guard name.count <= 16 else { return -1 }
        let w = Self.words(name)
        let b = Int(buckets[Self.bucket(w, name.count)]) &- 1
        if b < 0 { return -1 }
        let e = entries[b]
        if e.words.0 == w.0 && e.words.1 == w.1 && e.count == name.count { return b }
        for (i, e) in entries.enumerated() where e.words.0 == w.0 && e.words.1 == w.1 && e.count == name.count { return i }
        return -1
    }

    /// Remembers `name`'s value and returns its index in `entries`; names longer than 16 bytes, and spellings
    /// past `capacity`, are not kept (-1).
    @discardableResult
    mutating func insert(_ name: UnsafeRawBufferPointer, _ value: Value) -> Int {
        guard name.count <= 16, entries.count < Self.capacity else { return -1 }
        let w = Self.words(name)
        entries.append((w, name.count, value))
        let b = Self.bucket(w, name.count)
        if buckets[b] == 0 { buckets[b] = UInt8(entries.count) }
        return entries.count &- 1
    }

    /// A name of up to 16 bytes as two words: its first and last 8 bytes (overlapping), or, when shorter, bytes
    /// that with the length tell it apart from any other name of its length.
    @inlinable @inline(__always)
    static func words(_ raw: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        let n = raw.count
        guard let p = raw.baseAddress, n > 0 else { return (0, 0) }
        if n >= 8 { return (p.loadUnaligned(as: UInt64.self), p.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)) }
        // Shorter: its first and last four bytes, or its first, middle and last byte (overlapping, without a
        // loop; with the length, still one pair of words per name).
        if n >= 4 {
            return (UInt64(p.loadUnaligned(as: UInt32.self)) | UInt64(p.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)) &<< 32, 0)
        }
        let b0 = UInt64(p.load(as: UInt8.self))
        let b1 = UInt64(p.load(fromByteOffset: n >> 1, as: UInt8.self))
        let b2 = UInt64(p.load(fromByteOffset: n &- 1, as: UInt8.self))
        return (b0 | b1 &<< 8 | b2 &<< 16, 0)
    }
}
