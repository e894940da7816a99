import RDBKit

/// Listpack nodes of a stream, estimated from its live entries (see `MemoryReportWriter`).
struct StreamEstimate {
    var nodes = 0
    var nodesBytes = 0  // malloc-rounded
    var largestNode = 0
    var nodeBytes = 0
    var nodeEntries = 0
    var master = StreamID(ms: 0, seq: 0)
    var masterFields: [[UInt8]] = []
    var newNode = false
    var fieldIndex = 0
    var sameFields = true
    var fieldsBytes = 0
    var valuesBytes = 0
    var entryID = StreamID(ms: 0, seq: 0)

    static let maxEntries = 100
    static let maxBytes = 4096

    mutating func closeNode() {
        guard nodeEntries > 0 else { return }
        nodes += 1
        nodesBytes += MemoryModel.malloc(nodeBytes)
        largestNode = max(largestNode, nodeBytes)
        nodeEntries = 0
        nodeBytes = 0
    }

    mutating func beginEntry(_ id: StreamID, fieldCount: Int) {
        if nodeEntries >= StreamEstimate.maxEntries || nodeBytes >= StreamEstimate.maxBytes { closeNode() }
        newNode = nodeEntries == 0
        if newNode {
            master = id
            masterFields.removeAll(keepingCapacity: true)
        }
        entryID = id
        fieldIndex = 0
        sameFields = newNode || fieldCount == masterFields.count
        fieldsBytes = 0
        valuesBytes = 0
    }

    mutating func field(_ f: RDBString, _ v: RDBString) {
        if newNode {
            masterFields.append(f.array)
        } else if sameFields {
            sameFields = fieldIndex < masterFields.count && f.withBytes { b in masterFields[fieldIndex].elementsEqual(b) }
        }
        fieldIndex += 1
        fieldsBytes += MemoryModel.listpackEntry(.init(f))
        valuesBytes += MemoryModel.listpackEntry(.init(v))
    }

    mutating func endEntry() {
        func lpInt(_ v: Int64) -> Int { MemoryModel.listpackEntry(.integer(v)) }
        if newNode {
            // header + end, master entry: count, deleted, field count, fields, terminator
            nodeBytes = 7 + lpInt(1) + lpInt(0) + lpInt(Int64(fieldIndex)) + fieldsBytes + lpInt(0)
        }
        let msDiff = Int64(bitPattern: entryID.ms &- master.ms)
        let seqDiff = Int64(bitPattern: entryID.seq &- master.seq)
        var n = lpInt(2) + lpInt(msDiff) + lpInt(seqDiff) + valuesBytes
        if sameFields {
            n += lpInt(Int64(fieldIndex) + 3)
        } else {
            n += lpInt(Int64(fieldIndex)) + fieldsBytes + lpInt(Int64(2 * fieldIndex) + 4)
        }
        nodeBytes += n
        nodeEntries += 1
    }
}

/// The size arithmetic of `MemoryReportWriter` (64-bit, jemalloc).
@usableFromInline
enum MemoryModel {
    /// An element of a compact encoding: an integer (stored as one) or a byte string of some length.
    @usableFromInline
    enum Entry {
        case integer(Int64)
        case string(Int)

        @inlinable @inline(__always)
        init(_ s: RDBString) {
            if s.isInteger {
                self = .integer(s.integer)
            } else if let v = MemoryModel.integerText(s.bytes) {
                self = .integer(v)  // the server stores canonical integer text as an integer
            } else {
                self = .string(s.bytes.count)
            }
        }
    }

    @usableFromInline static let dictEntry = 24
    static let robj = 16
    @usableFromInline static let skiplistNode = 24 + 16 + 8  // dict entry, node pointers, backward pointer (+ levels, at the end)
    @usableFromInline static let quicklistNodeBytes = 8192

    static func typeName(_ k: RDBKind) -> StaticString {
        switch k {
        case .zset: "sortedset"
        default: k.staticName
        }
    }

    /// jemalloc's size class for `n` bytes.
    @inlinable @inline(__always)
    static func malloc(_ n: Int) -> Int {
        if n <= 8 { return 8 }
        if n <= 64 { return (n + 7) & ~7 }
        // The power of two p with p < n <= 2p, in steps of p/4.
        let step = 1 << (61 &- (n &- 1).leadingZeroBitCount)
        return (n &+ step &- 1) & ~(step &- 1)
    }

    @inlinable @inline(__always)
    static func sizeofString(_ s: RDBString) -> Int {
        if s.isInteger { return 0 }
        let b = s.bytes
        // Text that cannot be an integer's is sized here; the rest after the digit test, out of line (so the
        // common case inlines small).
        return mayBeIntegerText(b) ? sizeofDigits(b) : sizeofText(b.count)
    }

    /// `elementLength(s)` and `sizeofString(s)` from one test of the string's form, its length computed once: a
    /// hash table's elements are measured with this (each of the two on its own tested and computed them again: a
    /// hash field took three times the instructions of decoding it).
    @inlinable @inline(__always)
    static func lengthAndSize(_ s: RDBString) -> (length: Int, size: Int) {
        if s.isInteger { return (8, 0) }
        let n = s.bytes.count
        // `mayBeIntegerText` as two compares, the first byte's in one (`-`, `.`, `/` or a digit: `.` and `/` are rare,
        // and `sizeofDigits` sizes them as text): as one compare, the compiler then tested whether the string is an
        // integer on its own again, and a hash's values mispredicted. A string of 1–20 bytes has a base address.
        if UInt(bitPattern: n &- 1) < 20 && s.bytes.baseAddress.unsafelyUnwrapped.load(as: UInt8.self) &- UInt8(ascii: "-") < 13 {
            return (n, sizeofDigits(s.bytes))
        }
        return (n, sizeofText(n))
    }

    /// The size of text of 1–20 bytes (so with a base address) whose first byte is `-`, `.`, `/` or a digit.
    @usableFromInline @inline(never)
    static func sizeofDigits(_ b: UnsafeRawBufferPointer) -> Int {
        isIntegerText(b.baseAddress.unsafelyUnwrapped, count: b.count) ? 0 : sizeofText(b.count)
    }

    /// Whether `b` may be an integer's text: 1–20 bytes, the first a digit or `-` (the test that tells most text
    /// apart, before `integerText` and `isIntegerText` read the digits).
    @inlinable @inline(__always)
    static func mayBeIntegerText(_ b: UnsafeRawBufferPointer) -> Bool {
        guard UInt(bitPattern: b.count &- 1) < 20, let p = b.baseAddress else { return false }
        let c = p.load(as: UInt8.self)
        return c &- 0x30 < 10 || c == UInt8(ascii: "-")
    }

    /// Whether `integerText(b)` is not nil, without its value: the digits are tested 8 at a time (a table's
    /// members of 10–19 digits were a digit loop each, most of a set's time in the report), and 19 digits
    /// against int64's bound as text.
    @inline(__always)
    static func isIntegerText(_ b: UnsafeRawBufferPointer) -> Bool {
        guard mayBeIntegerText(b), let p = b.baseAddress else { return false }
        return isIntegerText(p, count: b.count)
    }

    /// `isIntegerText` of the `n` bytes at `p`, 1–20 of them whose first is `-`, `.`, `/` or a digit (`sizeofDigits`
    /// has them so, and tested them again: a fifth of its instructions).
    @inline(__always)
    static func isIntegerText(_ p: UnsafeRawPointer, count n: Int) -> Bool {
        let negative = p.load(as: UInt8.self) == UInt8(ascii: "-")
        let i = negative ? 1 : 0
        let digits = n &- i
        guard digits > 0, digits <= 19 else { return false }  // "-"; 20 digits exceed int64
        if p.load(fromByteOffset: i, as: UInt8.self) == UInt8(ascii: "0") { return n == 1 }  // no "01", no "-0"
        if digits < 8 {
            var j = i
            while j < n {
                guard p.load(fromByteOffset: j, as: UInt8.self) &- 0x30 < 10 else { return false }
                j &+= 1
            }
            return true
        }
        // 8...19 digits: the first 8, the last 8 and the 8 after the first (overlapping, within the text).
        guard allDigits(p.loadUnaligned(fromByteOffset: i, as: UInt64.self)),
              allDigits(p.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)),
              digits <= 16 || allDigits(p.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self))
        else { return false }
        return digits < 19 || notAbove(p + i, negative ? int64MinDigits : int64MaxDigits)
    }

    static let int64MaxDigits: StaticString = "9223372036854775807"
    static let int64MinDigits: StaticString = "9223372036854775808"

    /// Whether the 19 digits at `p` are at most `bound`'s (as numbers: same length, so as text).
    static func notAbove(_ p: UnsafeRawPointer, _ bound: StaticString) -> Bool {
        let q = bound.utf8Start
        for k in 0..<19 {
            let a = p.load(fromByteOffset: k, as: UInt8.self), b = q[k]
            if a != b { return a < b }
        }
        return true
    }

    /// Whether each byte of `w` is an ASCII digit: every high nibble is 3, and stays 3 once 6 is added to
    /// each byte (0x3A–0x3F would carry into it; no byte of 0x3_ carries into the next).
    @inline(__always)
    static func allDigits(_ w: UInt64) -> Bool {
        let high: UInt64 = 0xF0F0_F0F0_F0F0_F0F0, threes: UInt64 = 0x3030_3030_3030_3030
        return w & high == threes && (w &+ 0x0606_0606_0606_0606) & high == threes
    }

    /// The int64 whose canonical form `b` is, if it is one (what the server would store as an integer). Most
    /// text is told apart by its length and first byte; up to 18 digits cannot overflow and are read here,
    /// longer text by `DecimalFormatter.parseCanonical`.
    @inlinable @inline(__always)
    static func integerText(_ b: UnsafeRawBufferPointer) -> Int64? {
        guard mayBeIntegerText(b), let p = b.baseAddress else { return nil }
        let n = b.count
        if n > 18 { return DecimalFormatter.parseCanonical(b) }
        let negative = p.load(as: UInt8.self) == UInt8(ascii: "-")
        var i = negative ? 1 : 0
        guard i < n else { return nil }  // "-"
        let first = p.load(fromByteOffset: i, as: UInt8.self)
        if first == UInt8(ascii: "0") { return n == 1 ? 0 : nil }  // no leading zeros, no "-0"
        var v: Int64 = 0
        while i < n {
            let d = p.load(fromByteOffset: i, as: UInt8.self) &- 0x30
            guard d < 10 else { return nil }
            v = v &* 10 &+ Int64(d)
            i &+= 1
        }
        return negative ? -v : v
    }

    /// An sds string of `l` bytes that is not an integer's text.
    @inlinable @inline(__always)
    static func sizeofText(_ l: Int) -> Int {
        if l < 59 {
            // The common case without a branch on the length: header 2 or 4 (bit 5 of the length, doubled), at
            // most 64 bytes in all (a multiple of 8, at least 8 since the header is).
            return (l &+ 9 &+ ((l >> 4) & 2)) & ~7
        }
        let header: Int
        switch l {
        case ..<(1 << 5): header = 2
        case ..<(1 << 8): header = 4
        case ..<(1 << 16): header = 6
        case ..<(1 << 32): header = 10
        default: header = 18
        }
        return malloc(l + header)
    }

    @inlinable @inline(__always)
    static func elementLength(_ s: RDBString) -> Int { s.isInteger ? 8 : s.bytes.count }

    @inline(__always)
    static func keyOverhead(_ key: RDBString, expires: Bool) -> Int {
        dictEntry + sizeofString(key) + robj + (expires ? dictEntry + 8 : 0)
    }

    /// Smallest power of two greater than n.
    static func nextPower(_ n: Int) -> Int {
        var p = 1
        while p <= n { p <<= 1 }
        return p
    }

    /// A dict with n entries: the struct and 1.5 bucket arrays (rdbtools' model of a table being rehashed).
    static func hashTable(_ n: Int) -> Int { 4 + 7 * 8 + 4 * 8 + nextPower(n) * 12 }

    static func radixTree(_ n: Int) -> Int {
        let nodes = n * 5 / 2
        return 16 * n + nodes * 4 + nodes * 30 * 8
    }

    /// Bytes of a ziplist entry after an entry of `previous` bytes.
    @inlinable @inline(__always)
    static func ziplistEntry(_ e: Entry, previous: Int) -> Int {
        let body: Int
        switch e {
        case .integer(let v):
            // 0...12 in the encoding byte; else int8, int16, int24, int32 or int64 after it: the body for 1...8 bytes
            // read from a table in a constant (`bytes > 4 ? 9 : bytes + 1` was a branch on the width, which integers of
            // random widths mispredicted a quarter of the time).
            let widths: UInt64 = 0x0909_0909_0504_0302
            let wide = Int(truncatingIfNeeded: (widths >> UInt64(truncatingIfNeeded: (twosComplementBytes(v) &- 1) &* 8)) & 0xFF)
            body = UInt64(bitPattern: v) <= 12 ? 1 : wide
        case .string(let l):
            body = l &+ (l <= 63 ? 1 : l <= 16383 ? 2 : 5)
        }
        return body &+ (previous < 254 ? 1 : 5)
    }

    /// The bits of `v` after its sign bit that are not copies of it (0 for 0 and -1): the integer encodings are
    /// chosen from this without a branch per width (a list's integers of random widths mispredicted each).
    @inlinable @inline(__always)
    static func magnitudeBits(_ v: Int64) -> Int { 64 &- UInt64(bitPattern: v ^ (v >> 63)).leadingZeroBitCount }

    /// The fewest bytes that hold `v` in two's complement (1...8).
    @inlinable @inline(__always)
    static func twosComplementBytes(_ v: Int64) -> Int { (magnitudeBits(v) &+ 8) >> 3 }

    /// Bytes of a listpack entry (encoding, data, back-length).
    @inlinable @inline(__always)
    static func listpackEntry(_ e: Entry) -> Int {
        let body: Int
        switch e {
        case .integer(let v):
            // 0...127 in the encoding byte, 13 bits in it and the next; else int16, int24, int32 or int64 after it.
            let bytes = twosComplementBytes(v)
            let wide = bytes > 4 ? 9 : bytes &+ 1
            body = UInt64(bitPattern: v) <= 127 ? 1 : magnitudeBits(v) < 13 ? 2 : wide
        case .string(let l):
            body = l + (l < 64 ? 1 : l < 4096 ? 2 : 5)
        }
        return body &+ ListpackReader.backlenSize(body)
    }

    /// The most bytes `writeISODate` writes.
    static var isoDateBytes: Int { 40 }

    /// Writes at `p` the UTC time as Python's `datetime.isoformat()` writes it (`YYYY-MM-DDTHH:MM:SS[.ffffff]`),
    /// clamped like rdbtools at 221925052800 s; returns its length.
    static func writeISODate(ms: Int64, into p: UnsafeMutableRawPointer) -> Int {
        var secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000)
        let millis = ms - secs * 1000
        secs = min(secs, 221_925_052_800)
        var days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400)
        let rem = secs - days * 86400
        // Civil date from days since 1970-01-01 (proleptic Gregorian, 400-year eras).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        var at = 0
        /// `v` in decimal (with its sign) after as many zeros as make it `w` characters.
        func pad(_ v: Int64, _ w: Int) {
            let length = DecimalFormatter.digitCount(v)
            for _ in length..<max(w, length) {
                p.storeBytes(of: UInt8(ascii: "0"), toByteOffset: at, as: UInt8.self)
                at += 1
            }
            at += DecimalFormatter.write(v, digits: length, into: p + at)
        }
        func put(_ c: Unicode.Scalar) {
            p.storeBytes(of: UInt8(ascii: c), toByteOffset: at, as: UInt8.self)
            at += 1
        }
        pad(year, 4); put("-"); pad(month, 2); put("-"); pad(day, 2); put("T")
        pad(rem / 3600, 2); put(":"); pad(rem / 60 % 60, 2); put(":"); pad(rem % 60, 2)
        if millis != 0 {
            put(".")
            pad(millis * 1000, 6)
        }
        return at
    }
}
