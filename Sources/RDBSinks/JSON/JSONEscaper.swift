/// The JSON string escaper of `BinaryMode.escape`, eight bytes at a time.
///
/// Bytes that JSON or UTF-8 make special (below 0x20, `"`, `\`, and 0x80 and up) are found a word at a time
/// (SWAR); runs of plain ASCII are copied as whole words, and only the special bytes take the per-byte path:
/// `\"`, `\\`, `\n`, `\r`, `\t`, `\u00XX` for the other control characters, a valid UTF-8 sequence as it is,
/// and each byte of an invalid one as `\udcXX` (Python's surrogateescape).
@usableFromInline
enum JSONEscaper {
    /// Input bytes escaped per call of `escape` on the way to the output buffer, so that a huge string does
    /// not reserve six times its size at once.
    @usableFromInline static let chunk = 1 << 16

    /// The output room `escape(... limit:)` may need for `n` input bytes: six bytes for each (`\u00XX`), the
    /// run over `limit` (a word and a UTF-8 sequence), and one word of slack for the last word's store.
    @inlinable
    static func room(_ n: Int) -> Int { (n &+ 12) &* 6 &+ 8 }

    /// The high bit of each byte of `w` (little-endian) that needs more than a copy is set; a bit above the
    /// lowest may be set for a plain byte (borrows), the lowest one is exact.
    @inlinable @inline(__always)
    static func specialMask(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = w ^ (ones &* 0x22)
        let backslash = w ^ (ones &* 0x5C)
        return ((w &- ones &* 0x20) | (quote &- ones) | (backslash &- ones) | w) & (ones &* 0x80)
    }

    /// Escapes `p[start...]` up to at least `limit` (or the end, `n`), into `out`, which has `room(limit -
    /// start)` bytes. It stops at the first byte boundary at or past `limit` where no UTF-8 sequence is cut;
    /// returns where it stopped and the bytes written.
    @usableFromInline
    static func escape(
        _ p: UnsafePointer<UInt8>, count n: Int, from start: Int, limit: Int, into out: UnsafeMutablePointer<UInt8>
    ) -> (end: Int, written: Int) {
        var i = start
        var j = 0  // bytes written
        while i < limit {
            var k: Int
            if n &- i >= 8 {
                let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
                UnsafeMutableRawPointer(out + j).storeBytes(of: w, as: UInt64.self)
                let m = specialMask(w)
                if m == 0 {
                    i &+= 8
                    j &+= 8
                    continue
                }
                k = m.trailingZeroBitCount &>> 3
            } else {
                // The last 1...7 bytes: the rest of the word is spaces (plain), so one test covers them.
                let r = n &- i
                let w: UInt64
                if n >= 8 {
                    let shift = UInt64((8 &- r) &* 8)
                    w = UnsafeRawPointer(p + (n &- 8)).loadUnaligned(as: UInt64.self) &>> shift
                        | 0x2020_2020_2020_2020 &<< (UInt64(r) &* 8)
                } else {
                    w = tailWord(p + i, r)
                }
                UnsafeMutableRawPointer(out + j).storeBytes(of: w, as: UInt64.self)
                let m = specialMask(w)
                if m == 0 {
                    return (n, j &+ r)
                }
                k = m.trailingZeroBitCount &>> 3
            }
            i &+= k
            j &+= k
            let used = escapeOne(p, count: n, at: i, into: out + j)
            i &+= used.read
            j &+= used.written
        }
        return (i, j)
    }

    /// `r` (1...7) bytes at `p` in the low bytes of a word, spaces above them: two overlapping 4-byte loads
    /// (4...7) or three single bytes (1...3), without reading past `p + r`.
    @inlinable @inline(__always)
    static func tailWord(_ p: UnsafePointer<UInt8>, _ r: Int) -> UInt64 {
        let raw = UnsafeRawPointer(p)
        let w: UInt64
        if r >= 4 {
            let lo = UInt64(raw.loadUnaligned(as: UInt32.self))
            let hi = UInt64(raw.loadUnaligned(fromByteOffset: r &- 4, as: UInt32.self))
            w = lo | hi &<< (UInt64(r &- 4) &* 8)
        } else {
            let mid = r &>> 1
            w = UInt64(p[0]) | UInt64(p[mid]) &<< (UInt64(mid) &* 8) | UInt64(p[r &- 1]) &<< (UInt64(r &- 1) &* 8)
        }
        return w | 0x2020_2020_2020_2020 &<< (UInt64(r) &* 8)
    }

    /// Writes the escaped form of the special byte at `p[i]` (with the rest of its UTF-8 sequence when it
    /// starts a valid one).
    @usableFromInline
    static func escapeOne(
        _ p: UnsafePointer<UInt8>, count n: Int, at i: Int, into o: UnsafeMutablePointer<UInt8>
    ) -> (read: Int, written: Int) {
        let c = p[i]
        if c < 0x80 {
            o[0] = 0x5C
            switch c {
            case 0x22: o[1] = 0x22
            case 0x5C: o[1] = 0x5C
            case 0x0A: o[1] = 0x6E
            case 0x0D: o[1] = 0x72
            case 0x09: o[1] = 0x74
            default:
                unicodeEscape(c, high: 0x3030, into: o)  // \u00XX
                return (1, 6)
            }
            return (1, 2)
        }
        let len = OutputBuffer.validUTF8SequenceLength(p + i, n &- i)
        if len > 0 {
            for k in 0..<len { o[k] = p[i &+ k] }
            return (len, len)
        }
        unicodeEscape(c, high: 0x6364, into: o)  // \udcXX: a lone surrogate per invalid byte
        return (1, 6)
    }

    /// Writes `\u`, the two ASCII digits in `high` (first in the low byte), and `c` in lowercase hex.
    @inline(__always)
    static func unicodeEscape(_ c: UInt8, high: UInt16, into o: UnsafeMutablePointer<UInt8>) {
        let hex: StaticString = "0123456789abcdef"
        let h = hex.utf8Start
        let raw = UnsafeMutableRawPointer(o)
        raw.storeBytes(of: 0x755C, as: UInt16.self)  // "\u"
        raw.storeBytes(of: high, toByteOffset: 2, as: UInt16.self)
        o[4] = h[Int(c &>> 4)]
        o[5] = h[Int(c & 15)]
    }
}

extension OutputBuffer {
    /// Appends `b` JSON-escaped between quotes. Strings of at most 16 plain bytes (most keys, fields and
    /// values) take two word loads, one test and two word stores here; others go to `appendJSONEscaped`.
    @inlinable @inline(__always)
    func appendJSONQuoted(_ b: UnsafeRawBufferPointer) {
        let n = b.count
        if n <= 16, n > 0, let base = b.baseAddress {
            let w1: UInt64
            let w2: UInt64
            if n >= 8 {
                w1 = base.loadUnaligned(as: UInt64.self)
                w2 = base.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
            } else {
                w1 = JSONEscaper.tailWord(base.assumingMemoryBound(to: UInt8.self), n)
                w2 = w1
            }
            if JSONEscaper.specialMask(w1) | JSONEscaper.specialMask(w2) == 0 {
                reserve(24)
                let o = storage + count
                o.storeBytes(of: 0x22, as: UInt8.self)
                o.storeBytes(of: w1, toByteOffset: 1, as: UInt64.self)
                if n > 8 { o.storeBytes(of: w2, toByteOffset: n &- 7, as: UInt64.self) }
                o.storeBytes(of: 0x22, toByteOffset: n &+ 1, as: UInt8.self)
                count &+= n &+ 2
                return
            }
        }
        appendJSONEscaped(b, quoted: true)
    }

    /// Appends `b` JSON-escaped (see `JSONEscaper`), between quotes when `quoted`.
    @usableFromInline
    func appendJSONEscaped(_ b: UnsafeRawBufferPointer, quoted: Bool) {
        let n = b.count
        let q = quoted ? 1 : 0
        guard n > 0, let base = b.baseAddress else {
            if quoted { append("\"\"") }
            return
        }
        let p = base.assumingMemoryBound(to: UInt8.self)
        var i = 0
        if quoted {
            reserve(JSONEscaper.room(min(n, JSONEscaper.chunk)) &+ 2)
            storage.storeBytes(of: 0x22, toByteOffset: count, as: UInt8.self)
            count &+= 1
        }
        while true {
            let limit = n &- i <= JSONEscaper.chunk ? n : i &+ JSONEscaper.chunk
            reserve(JSONEscaper.room(limit &- i) &+ q)
            let r = JSONEscaper.escape(
                p, count: n, from: i, limit: limit, into: (storage + count).assumingMemoryBound(to: UInt8.self))
            count &+= r.written
            i = r.end
            if i >= n { break }
        }
        if quoted {
            storage.storeBytes(of: 0x22, toByteOffset: count, as: UInt8.self)
            count &+= 1
        }
    }
}
