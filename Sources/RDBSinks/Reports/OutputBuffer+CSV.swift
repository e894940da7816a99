import RDBKit

extension OutputBuffer {
    /// Appends a byte string as a CSV field: as it is, or quoted (RFC 4180: `"…"` with inner quotes doubled)
    /// when it holds a comma, a quote, CR or LF.
    public func appendCSVField(_ s: RDBString) {
        if s.isInteger {
            append(decimal: s.integer)
            return
        }
        let b = s.bytes
        if OutputBuffer.isPlainCSV(b) {
            append(b)
            return
        }
        append(UInt8(ascii: "\""))
        for c in b {
            if c == UInt8(ascii: "\"") { append(UInt8(ascii: "\"")) }
            append(c)
        }
        append(UInt8(ascii: "\""))
    }

    /// Whether a field goes into CSV as it is: no comma, quote, CR or LF (eight bytes at a time).
    @inlinable @inline(__always)
    public static func isPlainCSV(_ b: UnsafeRawBufferPointer) -> Bool {
        noWord(of: b) { w in
            let ones: UInt64 = 0x0101_0101_0101_0101
            @inline(__always) func zeros(_ t: UInt64) -> UInt64 { (t &- ones) & ~t }  // exact: some byte is 0
            return (zeros(w ^ (ones &* 0x2C)) | zeros(w ^ (ones &* 0x22)) | zeros(w ^ (ones &* 0x0A))
                | zeros(w ^ (ones &* 0x0D))) & (ones &* 0x80)
        }
    }
}
