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
/// Values are never decoded: `beginKey` answers `.raw`, so the decoder only steps over them (and string keys
/// come whole, their values not read). A key's line is committed once its record has been read to its end, so
/// that a record cut short or corrupt is not listed. Keys the server drops on load (empty collections) are not
/// listed.
public struct KeysWriter: RDBVisitor {
    public let out: OutputBuffer
    /// `db<TAB>type<TAB>` of the last key (at most 10 + 1 + 6 + 1 bytes), for `prefixDB` and `prefixKind`:
    /// keys come in runs of one database (and often one type), so most lines start with one copy of it.
    @usableFromInline var prefix: SIMD32<UInt8> = .zero
    @usableFromInline var prefixCount = 0
    @usableFromInline var prefixDB = -1
    @usableFromInline var prefixKind = RDBKind.string

    public init(out: OutputBuffer) {
        self.out = out
    }

    // Inlined into the decoder specialised for this writer in the caller's module (rdbcat): a line costs a
    // capacity check and three copies, with no call and no copy of `RDBKeyInfo`.
    @inlinable @inline(__always)
    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        if info.db != prefixDB || info.kind != prefixKind { setPrefix(db: info.db, kind: info.kind) }
        if !key.isInteger && key.bytes.count <= 64 && OutputBuffer.isPrintableASCII(key.bytes) {
            // The prefix (32 bytes stored, `prefixCount` kept), the key as it is, a line feed.
            let n = key.bytes.count
            out.reserve(32 &+ 64 &+ 1)
            let p = out.storage + out.count
            p.storeBytes(of: prefix, as: SIMD32<UInt8>.self)
            if n > 0 { OutputBuffer.copy(p + prefixCount, key.bytes.baseAddress!, n) }
            p.storeBytes(of: UInt8(ascii: "\n"), toByteOffset: prefixCount &+ n, as: UInt8.self)
            out.count &+= prefixCount &+ n &+ 1
        } else {
            writeLine(key)
        }
        return .raw
    }

    /// Salvage mode: the key's value was given up on; its line goes.
    public mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws {
        out.rollback()
    }

    /// The record was read to its end: the line stands.
    @inlinable @inline(__always)
    public mutating func endKey() throws {
        out.commit()
        try out.flushIfNeeded()
    }

    /// A line whose key is an integer, long, or not printable ASCII.
    /// A string's line, its value not read.
    @inlinable
    public var stringDelivery: RDBStringDelivery { .wholeRaw }

    @inlinable @inline(__always)
    public mutating func stringKey(_ key: RDBString, _ info: RDBKeyInfo, value: RDBString, raw: UnsafeRawBufferPointer) throws {
        _ = try beginKey(key, info)
        try endKey()
    }

    @usableFromInline @inline(never)
    func writeLine(_ key: RDBString) {
        withUnsafeBytes(of: prefix) { out.append(UnsafeRawBufferPointer(rebasing: $0[0..<prefixCount])) }
        out.appendLineEscaped(key)
        out.append(UInt8(ascii: "\n"))
    }

    @usableFromInline @inline(never)
    mutating func setPrefix(db: Int, kind: RDBKind) {
        prefixDB = db
        prefixKind = kind
        // At most 20 digits and a sign, a tab, 6 letters and a tab: 29 bytes (a database number has at most 10).
        var p: SIMD32<UInt8> = .zero
        let n = withUnsafeMutableBytes(of: &p) { b in
            var n = DecimalFormatter.write(Int64(db), into: b.baseAddress!)
            b[n] = UInt8(ascii: "\t")
            n += 1
            kind.staticName.withUTF8Buffer { name in
                for c in name {
                    b[n] = c
                    n += 1
                }
            }
            b[n] = UInt8(ascii: "\t")
            return n + 1
        }
        prefix = p
        prefixCount = n
    }

    public mutating func endFile(checksum: RDBChecksumStatus) throws {
        try out.flush()
    }
}

extension OutputBuffer {
    /// Appends a byte string so that it stays on one line and within one tab-separated column: `\\`, `\t`, `\n`
    /// for backslash, tab and line feed; `\xHH` for other control bytes (C0, DEL, C1) and for each byte of an
    /// invalid UTF-8 sequence; everything else (printable ASCII, valid UTF-8) as it is. Integers as decimal text.
    @inlinable
    public func appendLineEscaped(_ s: RDBString) {
        if s.isInteger {
            append(decimal: s.integer)
        } else {
            appendLineEscaped(s.bytes)
        }
    }

    /// Printable ASCII (the commonest key) is copied as it is, found eight bytes at a time; anything else
    /// takes `appendLineEscapedSlow`.
    @inlinable
    public func appendLineEscaped(_ b: UnsafeRawBufferPointer) {
        if OutputBuffer.isPrintableASCII(b) {
            append(b)
        } else {
            appendLineEscapedSlow(b)
        }
    }

    /// The high bit of each byte of `w` that is not printable ASCII or is a backslash (below 0x20, 0x5C,
    /// 0x7F, 0x80 and up) is set; a bit above the lowest may be set for a plain byte (borrows), so the mask is
    /// zero exactly when every byte is plain.
    @inlinable @inline(__always)
    static func lineSpecialMask(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let backslash = w ^ (ones &* 0x5C)
        let del = w ^ (ones &* 0x7F)
        return ((w &- ones &* 0x20) | (backslash &- ones) | (del &- ones) | w) & (ones &* 0x80)
    }

    /// Whether every byte is printable ASCII other than a backslash (0x20...0x7E, not 0x5C); true when empty.
    @inlinable @inline(__always)
    static func isPrintableASCII(_ b: UnsafeRawBufferPointer) -> Bool {
        noWord(of: b, hits: lineSpecialMask)
    }

    /// Whether `hits` is zero for every 8 bytes of `b` (true when empty): a mask of a word's special bytes,
    /// given spaces for the bytes past the end of a short string, and words that overlap at the end.
    @inlinable @inline(__always)
    static func noWord(of b: UnsafeRawBufferPointer, hits mask: (UInt64) -> UInt64) -> Bool {
        let n = b.count
        guard n > 0, let base = b.baseAddress else { return true }
        if n < 8 {
            return mask(JSONEscaper.tailWord(base.assumingMemoryBound(to: UInt8.self), n)) == 0
        }
        var acc: UInt64 = 0
        var i = 0
        while i &+ 8 < n {
            acc |= mask(base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i &+= 8
        }
        // The last word ends at the last byte (it may overlap the one before).
        acc |= mask(base.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self))
        return acc == 0
    }

    @usableFromInline
    func appendLineEscapedSlow(_ b: UnsafeRawBufferPointer) {
        let n = b.count
        guard n > 0, let p = b.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
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
