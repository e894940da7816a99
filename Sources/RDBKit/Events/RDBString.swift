/// A borrowed byte string from the input, or an integer that the file stores in integer form.
///
/// Keys, members, fields and values reach a sink as `RDBString`. When the file holds the string as
/// bytes (raw, or LZF-decompressed into a reused scratch buffer), `bytes` borrows them: the view is
/// valid only for the duration of the callback, and a sink that keeps it must copy it. When the file
/// stores the string as an integer (int-encoded strings, intset members, ziplist/listpack integers),
/// `isInteger` is true and `integer` holds it: its text is the canonical decimal form.
@frozen
public struct RDBString {
    /// The bytes, when not an integer (empty for integers).
    public let bytes: UnsafeRawBufferPointer
    /// The integer, when `isInteger`.
    public let integer: Int64
    public let isInteger: Bool

    @inlinable
    public init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.integer = 0
        self.isInteger = false
    }

    @inlinable
    public init(integer: Int64) {
        self.bytes = UnsafeRawBufferPointer(start: nil, count: 0)
        self.integer = integer
        self.isInteger = true
    }

    /// Length of the string's text in bytes.
    @inlinable
    public var count: Int { isInteger ? DecimalFormatter.digitCount(integer) : bytes.count }

    /// Calls `body` with the string's bytes; an integer is formatted into a stack buffer first.
    @inlinable
    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        if !isInteger { return try body(bytes) }
        var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: enough for 20 digits and a sign
        return try withUnsafeMutableBytes(of: &buffer) { (raw: UnsafeMutableRawBufferPointer) throws(E) -> R in
            let n = DecimalFormatter.write(integer, into: raw.baseAddress!)
            return try body(UnsafeRawBufferPointer(start: raw.baseAddress!, count: n))
        }
    }

    /// A copy of the bytes (integers as decimal text).
    public var array: [UInt8] { withBytes { Array($0) } }

    /// The bytes decoded as UTF-8 (invalid sequences repaired), for display and tests.
    public var string: String { withBytes { String(decoding: $0, as: UTF8.self) } }

    /// The value as an integer if its text is a canonical decimal int64 (what Redis would store as one).
    public var integerValue: Int64? {
        if isInteger { return integer }
        return DecimalFormatter.parseCanonical(bytes)
    }
}

/// Integer ⇄ decimal text without Foundation.
public enum DecimalFormatter {
    /// "00" "01" … "99": two digits per table step.
    public static let pairs: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    @inlinable
    public static func digitCount(_ v: Int64) -> Int {
        (v < 0 ? 1 : 0) &+ digitCount(unsigned: v.magnitude)
    }

    /// Without a loop or a branch on the value (integers of mixed lengths kept mispredicting the loop of
    /// divisions this replaced): floor(log10 v) is the bit length times log10(2) (1233/4096), or one more,
    /// which one compare with 10^that settles. (`v | 1` counts 0 as one digit and changes no count.)
    @inlinable @inline(__always)
    public static func digitCount(unsigned v: UInt64) -> Int {
        let w = v | 1
        let t = ((64 &- w.leadingZeroBitCount) &* 1233) >> 12
        // A literal: the optimizer makes it a constant object (no lazy global, no retain).
        let powersOf10: [UInt64] = [
            1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000,
            10_000_000_000, 100_000_000_000, 1_000_000_000_000, 10_000_000_000_000, 100_000_000_000_000,
            1_000_000_000_000_000, 10_000_000_000_000_000, 100_000_000_000_000_000, 1_000_000_000_000_000_000,
            10_000_000_000_000_000_000,
        ]
        return t &+ (w >= powersOf10[t] ? 1 : 0)
    }

    /// Writes the decimal form of `v` at `out` (at least 20 bytes) and returns its length.
    @inlinable
    public static func write(_ v: Int64, into out: UnsafeMutableRawPointer) -> Int {
        write(v, digits: digitCount(v), into: out)
    }

    /// Writes the decimal form of `v`, `digits` characters long (`digitCount(v)`, the sign included), at `out`
    /// and returns `digits`: for a caller that needed the length first (a RESP bulk header).
    @inlinable
    public static func write(_ v: Int64, digits: Int, into out: UnsafeMutableRawPointer) -> Int {
        if v < 0 {
            out.storeBytes(of: 0x2D, as: UInt8.self)
            write(unsigned: v.magnitude, digits: digits &- 1, into: out + 1)
        } else {
            write(unsigned: UInt64(v), digits: digits, into: out)
        }
        return digits
    }

    /// Writes the decimal form of an unsigned value at `out` (at least 20 bytes) and returns its length.
    @inlinable
    public static func write(unsigned v: UInt64, into out: UnsafeMutableRawPointer) -> Int {
        if v < 10 {
            out.storeBytes(of: UInt8(truncatingIfNeeded: v) &+ 0x30, as: UInt8.self)
            return 1
        }
        let len = digitCount(unsigned: v)
        write(unsigned: v, digits: len, into: out)
        return len
    }

    /// `write(unsigned:into:)` inlined for values below 10 000 (one or two steps of the pairs table), the
    /// general path for larger ones: for columns of mostly small numbers (sizes, counts).
    @inlinable @inline(__always)
    public static func writeMostlySmall(_ v: UInt64, into out: UnsafeMutableRawPointer) -> Int {
        let table = UnsafeRawPointer(pairs.utf8Start)
        @inline(__always) func pair(_ x: UInt64, _ at: Int) {
            out.storeBytes(of: table.loadUnaligned(fromByteOffset: Int(x) &* 2, as: UInt16.self), toByteOffset: at, as: UInt16.self)
        }
        if v < 100 {
            if v < 10 {
                out.storeBytes(of: UInt8(truncatingIfNeeded: v) &+ 0x30, as: UInt8.self)
                return 1
            }
            pair(v, 0)
            return 2
        }
        if v < 10_000 {
            let hi = v / 100
            if hi < 10 {
                out.storeBytes(of: UInt8(truncatingIfNeeded: hi) &+ 0x30, as: UInt8.self)
                pair(v &- hi &* 100, 1)
                return 3
            }
            pair(hi, 0)
            pair(v &- hi &* 100, 2)
            return 4
        }
        return write(unsigned: v, into: out)
    }

    /// Writes the `digits` (`digitCount(unsigned: v)`) decimal characters of `v` at `out`, from the last one.
    /// Eight digits at a time: one division by 10^8 per step, then four independent pairs from the table.
    @inlinable
    public static func write(unsigned v: UInt64, digits len: Int, into out: UnsafeMutableRawPointer) {
        let table = UnsafeRawPointer(pairs.utf8Start)
        @inline(__always) func pair(_ x: UInt32, _ at: Int) {
            out.storeBytes(of: table.loadUnaligned(fromByteOffset: Int(x) &* 2, as: UInt16.self), toByteOffset: at, as: UInt16.self)
        }
        var m = v
        var i = len
        while m >= 100_000_000 {
            let q = m / 100_000_000
            let r = UInt32(truncatingIfNeeded: m &- q &* 100_000_000)
            let hi = r / 10_000
            let lo = r &- hi &* 10_000
            let h1 = hi / 100
            let l1 = lo / 100
            pair(lo &- l1 &* 100, i &- 2)
            pair(l1, i &- 4)
            pair(hi &- h1 &* 100, i &- 6)
            pair(h1, i &- 8)
            i &-= 8
            m = q
        }
        var r = UInt32(truncatingIfNeeded: m)
        while r >= 100 {
            let q = r / 100
            pair(r &- q &* 100, i &- 2)
            i &-= 2
            r = q
        }
        if r >= 10 {
            pair(r, i &- 2)
        } else {
            out.storeBytes(of: UInt8(truncatingIfNeeded: r) &+ 0x30, toByteOffset: i &- 1, as: UInt8.self)
        }
    }

    /// Parses the canonical decimal form of an int64 (no sign `+`, no leading zeros, no `-0`).
    public static func parseCanonical(_ b: UnsafeRawBufferPointer) -> Int64? {
        let n = b.count
        if n == 0 || n > 20 { return nil }
        var i = 0
        var negative = false
        if b[0] == 0x2D {
            negative = true
            i = 1
            if n == 1 { return nil }
        }
        if b[i] == 0x30 { return (n == 1) ? 0 : nil }
        var m: UInt64 = 0
        while i < n {
            let d = b[i] &- 0x30
            if d > 9 { return nil }
            let (x, o1) = m.multipliedReportingOverflow(by: 10)
            let (y, o2) = x.addingReportingOverflow(UInt64(d))
            if o1 || o2 { return nil }
            m = y
            i += 1
        }
        if negative {
            if m > UInt64(Int64.max) + 1 { return nil }
            return m == UInt64(Int64.max) + 1 ? Int64.min : -Int64(m)
        }
        return m > UInt64(Int64.max) ? nil : Int64(m)
    }
}
