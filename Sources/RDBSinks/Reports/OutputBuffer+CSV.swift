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
        var quote = false
        for c in b where c == UInt8(ascii: ",") || c == UInt8(ascii: "\"") || c == 0x0A || c == 0x0D {
            quote = true
            break
        }
        if !quote {
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
}
