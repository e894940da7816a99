import RDBKit

/// How byte strings become JSON strings.
public enum BinaryMode: String, Sendable, CaseIterable {
    /// Valid UTF-8 is written as it is (JSON-escaped); each byte of an invalid sequence becomes a lone
    /// surrogate `\udc80`...`\udcff` (Python's surrogateescape: lossless).
    case escape
    /// Every key, field, member and value is base64 of its bytes.
    case base64
}

extension OutputBuffer {
    /// `[index,value]`: one element of an array value (strings, integers, doubles).
    func appendJSONArrayElement(index: UInt64, _ value: RDBArrayValue, mode: BinaryMode) {
        append(UInt8(ascii: "["))
        append(unsigned: index)
        append(UInt8(ascii: ","))
        switch value {
        case .string(let s): appendJSONString(s, mode: mode)
        case .integer(let i): append(decimal: i)
        case .double(let d): appendJSONScore(d)
        }
        append(UInt8(ascii: "]"))
    }

    /// `{"module":NAME,"version":N,"raw":BASE64}`: a module value, its payload as stored.
    func appendJSONModuleValue(_ module: RDBModuleID, raw: UnsafeRawBufferPointer) {
        append("{\"module\":\"")
        append(module.name)  // 9 characters of [A-Za-z0-9-_]
        append("\",\"version\":")
        append(decimal: module.encodingVersion)
        append(",\"raw\":\"")
        appendBase64(raw)
        append("\"}")
    }

    /// The comma before each element of a JSON value but the first (`first` turns false). Between elements
    /// is where a huge key's output may be written out in parts (`flushWithinKeyIfNeeded`).
    @inline(__always)
    func appendJSONSeparator(first: inout Bool) throws {
        if first {
            first = false
        } else {
            try flushWithinKeyIfNeeded()
            append(UInt8(ascii: ","))
        }
    }

    /// Appends `bytes` as a quoted JSON string in the given mode.
    @inlinable @inline(__always)
    public func appendJSONString(_ s: RDBString, mode: BinaryMode) {
        if s.isInteger {
            if mode == .base64 {
                append(UInt8(ascii: "\""))
                s.withBytes { appendBase64($0) }
                append(UInt8(ascii: "\""))
            } else {
                reserve(22)
                storage.storeBytes(of: 0x22, toByteOffset: count, as: UInt8.self)
                let n = DecimalFormatter.write(s.integer, into: storage + (count &+ 1))
                storage.storeBytes(of: 0x22, toByteOffset: count &+ 1 &+ n, as: UInt8.self)
                count &+= n &+ 2
            }
            return
        }
        appendJSONString(s.bytes, mode: mode)
    }

    @inlinable @inline(__always)
    public func appendJSONString(_ b: UnsafeRawBufferPointer, mode: BinaryMode) {
        if mode == .base64 {
            append(UInt8(ascii: "\""))
            appendBase64(b)
            append(UInt8(ascii: "\""))
        } else {
            appendJSONQuoted(b)
        }
    }

    /// Appends text that is known to be plain ASCII without quotes or backslashes, quoted.
    @inlinable
    public func appendJSONPlain(_ s: StaticString) {
        append(UInt8(ascii: "\""))
        append(s)
        append(UInt8(ascii: "\""))
    }

    /// JSON-escapes bytes: UTF-8 passes through, control characters and quotes are escaped, and bytes
    /// of invalid UTF-8 sequences become `\udcXX` (see `JSONEscaper`).
    public func appendJSONEscaped(_ b: UnsafeRawBufferPointer) {
        appendJSONEscaped(b, quoted: false)
    }

    @inlinable
    func appendHexByte(_ c: UInt8) {
        let digits: StaticString = "0123456789abcdef"
        let d = digits.utf8Start
        append(d[Int(c >> 4)])
        append(d[Int(c & 15)])
    }

    /// Length of the valid UTF-8 sequence starting at `p` (a byte ≥ 0x80), or 0 when it is invalid.
    static func validUTF8SequenceLength(_ p: UnsafePointer<UInt8>, _ avail: Int) -> Int {
        let c = p[0]
        func cont(_ i: Int) -> Bool { i < avail && p[i] & 0xC0 == 0x80 }
        switch c {
        case 0xC2...0xDF:
            return cont(1) ? 2 : 0
        case 0xE0:
            return avail > 1 && (0xA0...0xBF).contains(p[1]) && cont(2) ? 3 : 0
        case 0xE1...0xEC, 0xEE...0xEF:
            return cont(1) && cont(2) ? 3 : 0
        case 0xED:
            return avail > 1 && (0x80...0x9F).contains(p[1]) && cont(2) ? 3 : 0
        case 0xF0:
            return avail > 1 && (0x90...0xBF).contains(p[1]) && cont(2) && cont(3) ? 4 : 0
        case 0xF1...0xF3:
            return cont(1) && cont(2) && cont(3) ? 4 : 0
        case 0xF4:
            return avail > 1 && (0x80...0x8F).contains(p[1]) && cont(2) && cont(3) ? 4 : 0
        default:
            return 0
        }
    }

    /// Appends standard base64 (with padding).
    public func appendBase64(_ b: UnsafeRawBufferPointer) {
        let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        let a = alphabet.utf8Start
        let n = b.count
        reserve((n + 2) / 3 * 4)
        var i = 0
        while i + 3 <= n {
            let v = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2])
            append(a[Int(v >> 18)])
            append(a[Int((v >> 12) & 63)])
            append(a[Int((v >> 6) & 63)])
            append(a[Int(v & 63)])
            i += 3
        }
        let rest = n - i
        if rest == 1 {
            let v = UInt32(b[i]) << 16
            append(a[Int(v >> 18)])
            append(a[Int((v >> 12) & 63)])
            append("==")
        } else if rest == 2 {
            let v = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8
            append(a[Int(v >> 18)])
            append(a[Int((v >> 12) & 63)])
            append(a[Int((v >> 6) & 63)])
            append(UInt8(ascii: "="))
        }
    }

    /// Appends a score as a JSON number in the shortest form that round-trips; infinities as strings.
    public func appendJSONScore(_ d: Double) {
        if d == .infinity {
            append("\"inf\"")
        } else if d == -.infinity {
            append("\"-inf\"")
        } else if d.isNaN {
            append("\"nan\"")
        } else if d == 0 && d.sign == .minus {
            append("-0.0")
        } else if d == d.rounded(), abs(d) < 1e15 {
            // Integral scores print as integers (what most tools show), exact below 2^53.
            append(decimal: Int64(d))
        } else if d == d.rounded() {
            append(d.description)  // integral beyond 1e15: the exponent form ("1e+15")
        } else {
            // The shortest round-trip text (what `description` gives), without building a String.
            reserve(40)
            count &+= RESPScore.format(d, into: storage + count)
        }
    }

    /// Appends a stream ID as `"ms-seq"`.
    public func appendJSONStreamID(_ id: StreamID) {
        append(UInt8(ascii: "\""))
        append(unsigned: id.ms)
        append(UInt8(ascii: "-"))
        append(unsigned: id.seq)
        append(UInt8(ascii: "\""))
    }
}
