import Foundation
import RDBKit
import Testing

@testable import RDBSinks

/// The word-at-a-time JSON escaper and the score-text shortcut against simple per-byte references.
@Suite struct JSONEscaperTests {
    /// The per-byte escaper `JSONEscaper` replaced: the reference for `.escape`.
    static func referenceEscape(_ b: [UInt8]) -> [UInt8] {
        let hex = Array("0123456789abcdef".utf8)
        var o: [UInt8] = [0x22]
        var i = 0
        while i < b.count {
            let c = b[i]
            if c >= 0x20 && c < 0x80 && c != 0x22 && c != 0x5C {
                o.append(c)
                i += 1
                continue
            }
            if c < 0x80 {
                switch c {
                case 0x22: o += [0x5C, 0x22]
                case 0x5C: o += [0x5C, 0x5C]
                case 0x0A: o += [0x5C, 0x6E]
                case 0x0D: o += [0x5C, 0x72]
                case 0x09: o += [0x5C, 0x74]
                default: o += [0x5C, 0x75, 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 15)]]
                }
                i += 1
                continue
            }
            let len = b.withUnsafeBufferPointer { OutputBuffer.validUTF8SequenceLength($0.baseAddress! + i, b.count - i) }
            if len > 0 {
                o += b[i..<i + len]
                i += len
            } else {
                o += [0x5C, 0x75, 0x64, 0x63, hex[Int(c >> 4)], hex[Int(c & 15)]]
                i += 1
            }
        }
        o.append(0x22)
        return o
    }

    /// Base64 a group of three bytes at a time: the reference for `.base64`.
    static func referenceBase64(_ b: [UInt8]) -> [UInt8] {
        let a = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var o: [UInt8] = [0x22]
        var i = 0
        while i < b.count {
            let n = min(3, b.count - i)
            var v: UInt32 = 0
            for k in 0..<3 { v = v << 8 | (k < n ? UInt32(b[i + k]) : 0) }
            for k in 0..<4 { o.append(k <= n ? a[Int(v >> (18 - 6 * UInt32(k)) & 63)] : UInt8(ascii: "=")) }
            i += 3
        }
        o.append(0x22)
        return o
    }

    static func reference(_ b: [UInt8], _ mode: BinaryMode) -> [UInt8] {
        mode == .base64 ? referenceBase64(b) : referenceEscape(b)
    }

    static func encoded(_ b: [UInt8], _ mode: BinaryMode, after prefix: Int = 0) -> [UInt8] {
        let out = OutputBuffer(target: nil, flushThreshold: 64)
        for _ in 0..<prefix { out.append(UInt8(ascii: "x")) }  // the output at any alignment too
        b.withUnsafeBytes { out.appendJSONString($0, mode: mode) }
        return Array(out.bytes.dropFirst(prefix))
    }

    @Test(arguments: BinaryMode.allCases)
    func everyByteAtEveryPositionOfABlock(mode: BinaryMode) {
        var failures = 0
        for byte in 0...255 {
            for position in 0..<17 {
                for after in [0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 24] {
                    var b = [UInt8](repeating: UInt8(ascii: "a"), count: position + 1 + after)
                    b[position] = UInt8(byte)
                    let got = Self.encoded(b, mode, after: position % 5)
                    if got != Self.reference(b, mode) {
                        failures += 1
                        if failures < 5 { Issue.record("byte \(byte) at \(position) of \(b.count) in \(mode)") }
                    }
                }
            }
        }
        #expect(failures == 0)
    }

    /// Two special bytes in one block, and UTF-8 sequences (valid, cut, overlong, surrogates) across a block's end.
    @Test(arguments: BinaryMode.allCases)
    func sequencesAcrossBlockBoundaries(mode: BinaryMode) {
        let pieces: [[UInt8]] = [
            [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98],
            [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE0, 0x80, 0x80], [0x80], [0xFF],
            [0x22, 0x5C], [0x0A, 0x00, 0x1F], [0x7F, 0x20, 0x7E], [0xC3, 0xA9, 0x22], [0xDF, 0xBF, 0x5C],
        ]
        for piece in pieces {
            for position in 0..<20 {
                for after in 0..<10 {
                    var b = [UInt8](repeating: UInt8(ascii: "z"), count: position)
                    b += piece
                    b += [UInt8](repeating: UInt8(ascii: "z"), count: after)
                    #expect(Self.encoded(b, mode) == Self.reference(b, mode), "\(piece) at \(position)")
                }
            }
        }
    }

    @Test(arguments: BinaryMode.allCases)
    func randomStrings(mode: BinaryMode) {
        var rng = LZFTests.SplitMix(state: 18)
        let alphabet: [UInt8] = Array("abc \"\\\t\n".utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xBF, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0xFF]
        for _ in 0..<20_000 {
            let n = Int(rng.next() % 70)
            let plain = rng.next() % 2 == 0
            let b = (0..<n).map { _ in
                plain && rng.next() % 8 != 0 ? UInt8(0x20 + rng.next() % 0x5F) : alphabet[Int(rng.next() % UInt64(alphabet.count))]
            }
            #expect(Self.encoded(b, mode) == Self.reference(b, mode), "\(b)")
        }
    }

    /// A string longer than one escaping chunk, with sequences cut at every offset around the chunk's end.
    @Test func stringsLongerThanAChunk() {
        let chunk = JSONEscaper.chunk
        for shift in 0..<12 {
            var b = [UInt8](repeating: UInt8(ascii: "q"), count: chunk - 6 + shift)
            b += [0xF0, 0x9F, 0x98, 0x80, 0xE2, 0x82, 0xAC, 0x22, 0xC3]
            b += [UInt8](repeating: 0x01, count: chunk + 3)
            b += [0xE2, 0x82, 0xAC]
            #expect(Self.encoded(b, .escape) == Self.reference(b, .escape), "shift \(shift)")
        }
    }

    /// Integer strings: quoted decimals (escape), base64 of the decimal (base64).
    @Test(arguments: BinaryMode.allCases)
    func integerStrings(mode: BinaryMode) {
        for v: Int64 in [0, 1, -1, 9, 10, -10, 123_456_789, .max, .min, .max - 1, .min + 1] {
            let out = OutputBuffer(target: nil)
            out.appendJSONString(RDBString(integer: v), mode: mode)
            #expect(Array(out.bytes) == Self.reference(Array(String(v).utf8), mode))
        }
    }

    // MARK: score text

    static func scoreBytes(_ s: RDBString, shortcut: Bool) throws -> [UInt8] {
        let out = OutputBuffer(target: nil)
        if shortcut { try out.appendJSONScore(text: s) } else { out.appendJSONScore(try RDBParser.score(s)) }
        return Array(out.bytes)
    }

    static func checkScore(_ text: String) {
        let b = Array(text.utf8)
        b.withUnsafeBytes { raw in
            let s = RDBString(bytes: raw)
            let slow = try? scoreBytes(s, shortcut: false)
            let fast = try? scoreBytes(s, shortcut: true)
            #expect(fast == slow, "score text \(text)")
        }
    }

    @Test func scoreTextIsWrittenAsItsParsedValue() throws {
        let fixed = [
            "0", "-0", "1", "-1", "0.5", "-0.5", "0.1", "0.01", "0.001", "0.0001", "0.00001", "-0.0001", "0.000123",
            "00", "01", "-01", "1.0", "1.50", "1.", ".5", "-", "-.5", "+1", "1e5", "1E5", "1e-5", "inf", "-inf", "nan",
            "265.054", "999999999999999", "1000000000000000", "-999999999999999", "99999999999999.9",
            "9999999999999.99", "0.999999999999999", "0.1234567890123456", "12345678901234.5", "123456789012345.6",
            "0.10000000000000001", "3.14159265358979", "3.141592653589793", " 1", "1 ", "0x10", "1_0", "4.35",
            "9007199254740993", "0.30000000000000004", "2.5e-3", "100.25", "-100.25", "1.7976931348623157e308",
        ]
        for t in fixed { Self.checkScore(t) }
        var rng = LZFTests.SplitMix(state: 7)
        for _ in 0..<100_000 {
            var t = rng.next() % 4 == 0 ? "-" : ""
            let intDigits = Int(rng.next() % 17)
            for k in 0..<intDigits { t += String(k == 0 && rng.next() % 3 != 0 ? rng.next() % 9 + 1 : rng.next() % 10) }
            if rng.next() % 4 != 0 {
                t += "."
                let zeros = rng.next() % 3 == 0 ? Int(rng.next() % 7) : 0
                t += String(repeating: "0", count: zeros)
                for _ in 0..<Int(rng.next() % 17) { t += String(rng.next() % 10) }
            }
            Self.checkScore(t)
        }
        for v: Int64 in [0, 1, -1, 999_999_999_999_999, -999_999_999_999_999, 1_000_000_000_000_000,
            -1_000_000_000_000_000, 9_007_199_254_740_993, .max, .min]
        {
            let s = RDBString(integer: v)
            #expect(try Self.scoreBytes(s, shortcut: true) == Self.scoreBytes(s, shortcut: false), "\(v)")
        }
    }
}

extension JSONEscaperTests {
    static func checkParse(_ text: String) {
        Array(text.utf8).withUnsafeBytes { raw in
            let fast = OutputBuffer.parseDecimalScore(raw)
            let slow = try? RDBParser.score(RDBString(bytes: raw))
            if let fast {
                #expect(fast.bitPattern == slow?.bitPattern, "\(text): \(fast) vs \(String(describing: slow))")
            }
        }
    }

    /// The decimal parser against strtod: long `%.17g` texts, and exact halfway points between doubles.
    @Test func decimalScoresParseAsStrtodDoes() {
        var rng = LZFTests.SplitMix(state: 17)
        for _ in 0..<60_000 {
            let d = Double(bitPattern: rng.next() >> 2 | 0x3F00_0000_0000_0000) * (rng.next() % 2 == 0 ? 1 : 1e6)
            let digits = Int(rng.next() % 18) + 1
            var s = String(format: "%.\(digits)g", d)
            if rng.next() % 2 == 0 { s = "-" + s }
            Self.checkParse(s)
            Self.checkParse(String(format: "%.17g", d))
            // What servers before 7.2 store for a short score: `%.17g` of it (265.054 -> 265.05399999999997).
            let short = Double(Int64(bitPattern: rng.next()) % 100_000_000) / [1.0, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7][Int(rng.next() % 8)]
            for format in ["%.17g", "%.16g", "%.15g"] {
                Self.checkScore(String(format: format, short))
                Self.checkScore(String(format: format, d))
            }
        }
        for t in ["0.99999999999999989", "9.9999999999999982", "99999999999999.984", "0.0099999999999999985",
            "0.001", "0.00099999999999999998", "0.0010000000000000002", "123456789012345.67", "12345678901234.567"]
        {
            Self.checkScore(t)
        }
        // Halfway between two doubles in [2^50, 2^53): x.5, x.25, x.75, x.125 (ties go to even).
        for base in [UInt64(1) << 52, UInt64(1) << 51, UInt64(1) << 50, (UInt64(1) << 53) - 9] {
            for j in UInt64(0)..<40 {
                for frac in ["5", "25", "75", "125", "375", "875", "4999999", "5000001"] {
                    Self.checkParse("\(base + j).\(frac)")
                }
            }
        }
        for t in ["0", "-0", "0.0", "-0.000", "5", "007", "123456789012345678", "12345678901234567.8", "1.", ".5", "1e5",
            "9007199254740993", "9007199254740993.0", "0.1", "594.78499999999997", "-1"]
        {
            Self.checkParse(t)
        }
        #expect(Array("-0.0".utf8).withUnsafeBytes { OutputBuffer.parseDecimalScore($0)?.sign } == .minus)
    }
}
