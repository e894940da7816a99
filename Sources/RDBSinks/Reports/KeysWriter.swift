import RDBKit

/// Lists keys, one per line: `db<TAB>type<TAB>key<LF>`, e.g. `0	hash	user:1`.
///
/// `type` is `string`, `list`, `set`, `zset`, `hash`, `stream`, `module` or `array`. The key is written so that a
/// line is always exactly one key (see `OutputBuffer.appendLineEscaped`): valid UTF-8 text passes through; a
/// backslash is written `\\`, a tab `\t`, a line feed `\n`, and every other control byte (0x00-0x1F, 0x7F, the
/// C1 controls U+0080-U+009F) and every byte of an invalid UTF-8 sequence as `\xHH` (two lowercase hex digits).
/// To read a key back, replace `\\`, `\t`, `\n` and `\xHH` by the byte they stand for; every other character
/// is literal.
///
/// Values are never decoded: `beginKey` answers `.skip`, so the decoder only steps over them. Keys the server
/// drops on load (empty collections) are not listed.
public struct KeysWriter: RDBVisitor {
    public let out: OutputBuffer
    /// `db<TAB>type<TAB>` of the last key, for `prefixDB` and `prefixKind`: keys come in runs of one database
    /// (and often one type), so most lines start with one copy.
    let prefix = OutputBuffer(target: nil, flushThreshold: 64)
    var prefixDB = -1
    var prefixKind = RDBKind.string

    public init(out: OutputBuffer) {
        self.out = out
    }

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        if info.db != prefixDB || info.kind != prefixKind {
            prefixDB = info.db
            prefixKind = info.kind
            prefix.truncate(to: 0)
            prefix.append(decimal: info.db)
            prefix.append(UInt8(ascii: "\t"))
            prefix.append(info.kind.staticName)
            prefix.append(UInt8(ascii: "\t"))
        }
        out.append(prefix.bytes)
        out.appendLineEscaped(key)
        out.append(UInt8(ascii: "\n"))
        out.commit()
        try out.flushIfNeeded()
        return .skip
    }

    public mutating func endFile(checksum: RDBChecksumStatus) throws {
        try out.flush()
    }
}

extension OutputBuffer {
    /// Appends a byte string so that it stays on one line and within one tab-separated column: `\\`, `\t`, `\n`
    /// for backslash, tab and line feed; `\xHH` for other control bytes (C0, DEL, C1) and for each byte of an
    /// invalid UTF-8 sequence; everything else (printable ASCII, valid UTF-8) as it is. Integers as decimal text.
    public func appendLineEscaped(_ s: RDBString) {
        if s.isInteger {
            append(decimal: s.integer)
        } else {
            appendLineEscaped(s.bytes)
        }
    }

    public func appendLineEscaped(_ b: UnsafeRawBufferPointer) {
        let n = b.count
        guard n > 0, let p = b.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var clean = true
        for i in 0..<n {
            let c = p[i]
            if c < 0x20 || c >= 0x7F || c == 0x5C {
                clean = false
                break
            }
        }
        if clean {
            append(b)
            return
        }
        var i = 0
        while i < n {
            let c = p[i]
            if c >= 0x20 && c < 0x7F {
                if c == 0x5C { append("\\\\") } else { append(c) }
                i += 1
            } else if c == 0x09 {
                append("\\t")
                i += 1
            } else if c == 0x0A {
                append("\\n")
                i += 1
            } else if c < 0x80 {
                appendHexEscape(c)
                i += 1
            } else {
                let len = OutputBuffer.validUTF8SequenceLength(p + i, n - i)
                if len == 0 || (c == 0xC2 && p[i + 1] < 0xA0) {  // invalid, or a C1 control character
                    for k in 0..<max(len, 1) { appendHexEscape(p[i + k]) }
                    i += max(len, 1)
                } else {
                    append(UnsafeRawBufferPointer(start: p + i, count: len))
                    i += len
                }
            }
        }
    }

    @inline(__always)
    func appendHexEscape(_ c: UInt8) {
        append("\\x")
        appendHexByte(c)
    }
}
