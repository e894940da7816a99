import RDBKit

extension OutputBuffer {
    /// Appends a score the file stores as text (ziplist/listpack entries) as `appendJSONScore` writes it,
    /// without parsing and formatting it when the text already is that output: an integer below 10^15, or a
    /// plain decimal (`-?D+(.D*[1-9])?`, no leading zeros, at least 0.001 in magnitude) of at most 15 digits.
    /// Such a text round-trips through a Double (15 digits always do, and no other decimal of at most 15
    /// digits reaches the same Double, so it is also the shortest round-trip form), and `appendJSONScore`
    /// writes that form in plain notation. Anything else is parsed and formatted as before.
    @inlinable
    public func appendJSONScore(text s: RDBString) throws {
        if s.isInteger {
            let i = s.integer
            if i > -1_000_000_000_000_000 && i < 1_000_000_000_000_000 {
                reserve(20)
                count &+= DecimalFormatter.write(i, into: storage + count)
            } else {
                appendJSONScore(Double(i))
            }
            return
        }
        if OutputBuffer.isCanonicalScoreText(s.bytes) {
            append(s.bytes)
        } else if let t = OutputBuffer.scanDecimal(s.bytes) {
            if !appendShortenedScore(s.bytes, t) { appendJSONScore(OutputBuffer.decimalValue(t)) }
        } else {
            appendJSONScore(try RDBParser.score(s))
        }
    }

    /// A plain decimal `-?D+(.D+)?` of at most 18 digits as `m / p` (p = 10^fraction digits), or nil for
    /// any other text (left to strtod). Servers before 7.2 store scores as `%.17g` text (`594.78499999999997`).
    @usableFromInline
    static func scanDecimal(_ b: UnsafeRawBufferPointer) -> (m: UInt64, p: UInt64, negative: Bool)? {
        let n = b.count
        guard n > 0, n <= 20 else { return nil }
        var i = 0
        let negative = b[0] == UInt8(ascii: "-")
        if negative { i = 1 }
        var m: UInt64 = 0
        var digits = 0
        while i < n, case let d = b[i] &- 0x30, d < 10 {
            m = m &* 10 &+ UInt64(d)
            digits &+= 1
            i &+= 1
        }
        guard digits > 0 else { return nil }
        var p: UInt64 = 1  // 10^(fraction digits)
        if i < n {
            guard b[i] == UInt8(ascii: "."), i &+ 1 < n else { return nil }
            i &+= 1
            while i < n, case let d = b[i] &- 0x30, d < 10 {
                m = m &* 10 &+ UInt64(d)
                p = p &* 10
                digits &+= 1
                i &+= 1
            }
            guard i == n else { return nil }
        }
        guard digits <= 18 else { return nil }  // m < 10^18 < 2^60, p <= 10^17
        return (m, p, negative)
    }

    /// The value of a plain decimal (see `scanDecimal`), correctly rounded (what strtod gives), or nil.
    @usableFromInline
    static func parseDecimalScore(_ b: UnsafeRawBufferPointer) -> Double? {
        scanDecimal(b).map(decimalValue)
    }

    /// `m / p` correctly rounded, negated when `negative`.
    @usableFromInline
    static func decimalValue(_ t: (m: UInt64, p: UInt64, negative: Bool)) -> Double {
        let (m, p, negative) = t
        let v: Double
        if p == 1 {
            v = Double(m)  // an integer: one correctly rounded conversion
        } else if m <= 1 << 53 {
            v = Double(m) / Double(p)  // both exact: one correctly rounded division
        } else {
            // m / p to 53 bits: Q = m * 2^s / p with 56 or 57 bits, rounded half to even with the remainder.
            let s = 56 &- (64 &- m.leadingZeroBitCount) &+ (64 &- p.leadingZeroBitCount)  // 0...62
            let (q, r) = p.dividingFullWidth((high: m >> (64 &- s), low: m << s))
            let extra = (64 &- q.leadingZeroBitCount) &- 53
            var mant = q >> extra
            let dropped = q & ((1 << extra) &- 1)
            let half: UInt64 = 1 << (extra &- 1)
            if dropped > half || (dropped == half && (r != 0 || mant & 1 == 1)) { mant &+= 1 }
            v = Double(sign: .plus, exponent: extra &- s, significand: Double(mant))
        }
        return negative ? -v : v
    }

    /// Whether `b` is a plain decimal that `appendJSONScore(text:)` may copy (see there).
    @usableFromInline
    static func isCanonicalScoreText(_ b: UnsafeRawBufferPointer) -> Bool {
        let n = b.count
        guard n > 0, n <= 17 else { return false }
        var i = 0
        if b[0] == UInt8(ascii: "-") { i = 1 }
        guard i < n else { return false }
        var digits = 0
        let zeroInteger = b[i] == UInt8(ascii: "0")
        // The integer part: "0", or digits without a leading zero.
        if zeroInteger {
            i += 1
        } else {
            while i < n, b[i] &- 0x30 < 10 {
                i += 1
                digits += 1
            }
            if digits == 0 { return false }
        }
        if i == n {
            return digits <= 15 && !(zeroInteger && b[0] == UInt8(ascii: "-"))  // "-0" is written "-0.0"
        }
        guard b[i] == UInt8(ascii: "."), i + 1 < n else { return false }
        i += 1
        let fractionStart = i
        while i < n, b[i] &- 0x30 < 10 {
            i += 1
            digits += 1
        }
        guard i == n, digits <= 15, b[n - 1] != UInt8(ascii: "0") else { return false }
        if zeroInteger {
            // 0.001 and up print in plain notation; smaller ones (1e-05, ...) in the exponent form.
            var zeros = 0
            var k = fractionStart
            while b[k] == UInt8(ascii: "0") {
                zeros += 1
                k += 1
            }
            return zeros <= 2
        }
        return true
    }

    /// A long plain decimal (`%.17g` text: `265.05399999999997`) whose value `d` has a form of at most 15
    /// digits: the text rounded to 15 significant digits, when that reads back as `d` and is canonical (see
    /// `appendJSONScore(text:)`), is what `appendJSONScore(d)` writes; it is appended and true returned.
    @usableFromInline
    func appendShortenedScore(_ b: UnsafeRawBufferPointer, _ value: (m: UInt64, p: UInt64, negative: Bool)) -> Bool {
        let n = b.count
        guard n <= 24 else { return false }
        var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &buffer) { t -> Bool in
            t.copyMemory(from: b)
            var i = 0
            while i < n, t[i] == UInt8(ascii: "-") || t[i] == UInt8(ascii: "0") || t[i] == UInt8(ascii: ".") { i += 1 }
            let first = i  // the first significant digit
            var digits = 0
            while i < n, digits < 15 {
                if t[i] != UInt8(ascii: ".") { digits += 1 }
                i += 1
            }
            guard digits == 15, i < n, let dot = t[0..<n].firstIndex(of: UInt8(ascii: ".")), dot < i else { return false }
            var cut = i
            if t[cut] == UInt8(ascii: ".") { return false }
            if t[cut] >= UInt8(ascii: "5") {  // round up, carrying over nines (never past the first digit)
                var k = cut - 1
                while true {
                    if t[k] == UInt8(ascii: ".") {
                        k -= 1
                        continue
                    }
                    if t[k] != UInt8(ascii: "9") {
                        t[k] += 1
                        break
                    }
                    t[k] = UInt8(ascii: "0")
                    if k <= first { return false }
                    k -= 1
                }
            }
            while cut > dot + 1, t[cut - 1] == UInt8(ascii: "0") { cut -= 1 }
            guard cut > dot + 1 else { return false }  // integral: left to the formatter
            let c = UnsafeRawBufferPointer(rebasing: t[0..<cut])
            guard OutputBuffer.isCanonicalScoreText(c), let d = OutputBuffer.parseDecimalScore(c),
                OutputBuffer.roundsTo(value.m, value.p, d.magnitude)
            else { return false }
            append(c)
            return true
        }
    }

    /// Whether `m / p` is strictly nearer to `d` (positive, normal, below 2^53) than to either neighbour,
    /// so that it reads back as `d`: |m/p - M*2^E| < 2^(E-1), in integers |m*2^(1-E) - 2*M*p| < p. Ties, the
    /// bottom of a binade (uneven neighbours) and exponents out of range answer false.
    @usableFromInline
    static func roundsTo(_ m: UInt64, _ p: UInt64, _ d: Double) -> Bool {
        guard d.isNormal, d.significandBitPattern != 0 else { return false }
        let e = Int(d.exponent) &- 52  // d = M * 2^e
        let shift = 1 &- e
        guard e < 0, shift &+ (64 &- m.leadingZeroBitCount) <= 127 else { return false }
        let big = UInt128(m) << shift
        let mant = UInt128(d.significandBitPattern | 1 << 52)
        let twice = mant &* UInt128(p) << 1
        let diff = big > twice ? big &- twice : twice &- big
        return diff < UInt128(p)
    }
}
