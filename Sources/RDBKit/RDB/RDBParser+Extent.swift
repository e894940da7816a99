extension RDBParser {
    // MARK: record extent (streamed inputs)

    /// Where the record at `c0` ends (the cursor position right after it) when all of it is inside the
    /// cursor's window; -1 when it is cut off by the window's end, when it does not parse, or when it is a
    /// record this does not measure (a prefix followed by an opcode, module and function opcodes, slot info,
    /// key metadata). Events are not reported and no string is decompressed: this is the framing walk of
    /// `skipString`/`skipValue` only, O(1) for strings and every single-blob encoding (listpack, ziplist,
    /// intset, zipmap), one length per element for the others.
    ///
    /// The streamed decode measures a record with this before decoding it from the window (a streamed record
    /// may only be reported once it is whole), then hands the end to `parseRecord(_:_:end:)`, so that a value
    /// the visitor skips is not walked again. On -1 the caller takes the slow path (`RDBReader.ensureRecord`),
    /// which grows the window until the record is whole and lets the decode report what does not parse.
    /// The parser's state is not changed (the stream walk of `skipValue` only reuses its scratch arrays).
    @usableFromInline @inline(never)
    mutating func recordEnd(_ c0: ByteCursor) -> Int {
        var c = c0
        do {
            switch try recordStart(&c) {
            case .key(let enc):
                switch enc {
                case .string, .hashZipmap, .listZiplist, .setIntset, .zsetZiplist, .hashZiplist, .hashListpack,
                    .zsetListpack, .setListpack, .hashListpackExPreGA:
                    try skipStringInline(&c)
                default:
                    try skipValue(&c, enc)
                }
            case .opcode(let op):
                switch op {
                case .eof:
                    break
                case .selectDB:
                    _ = try c.readLength("a database number")
                case .resizeDB:
                    _ = try c.readLength("a RESIZEDB key count")
                    _ = try c.readLength("a RESIZEDB expires count")
                case .aux:
                    try skipString(&c)
                    try skipString(&c)
                default:
                    return -1
                }
            case .other:
                return -1
            }
            return c.position
        } catch {
            return -1
        }
    }

    /// What a record starts with, read by `recordStart`.
    @usableFromInline
    enum RecordStart {
        /// A key: the cursor is at its value.
        case key(RDBEncoding)
        /// An opcode without prefixes: the cursor is after it.
        case opcode(RDBOpcode)
        /// Anything else (a prefix followed by an opcode, an invalid byte, no header yet): the decode reports it.
        case other
    }

    /// Steps over the start of the record at `c`: its prefixes (expiry, LRU idle time, LFU frequency), its type
    /// byte and its key; or its opcode. Throws when the window ends first (a truncation error).
    @usableFromInline
    func recordStart(_ c: inout ByteCursor) throws -> RecordStart {
        guard let dialect else { return .other }
        switch try Self.afterPrefixes(&c, dialect) {
        case (.type(let enc), _):
            try skipStringInline(&c)  // the key
            return .key(enc)
        case (.opcode(let op), false):
            return .opcode(op)
        default:
            return .other
        }
    }

    /// Steps over the prefixes of the record at `c` (expiry, LRU idle time, LFU frequency) and the byte after them:
    /// what that byte means, and whether there were prefixes.
    @inlinable @inline(__always)
    static func afterPrefixes(_ c: inout ByteCursor, _ dialect: RDBDialect) throws -> (RDBDialect.Meaning, prefixed: Bool) {
        var prefixed = false
        while true {
            let m = dialect.meaning(try c.readUInt8("a type or opcode"))
            guard case .opcode(let op) = m else { return (m, prefixed) }
            switch op {
            case .expireTimeMilliseconds: try c.skip(8, "an expire time (ms)")
            case .expireTime: try c.skip(4, "an expire time (s)")
            case .idle: _ = try c.readLength("an LRU idle time")
            case .freq: try c.skip(1, "an LFU frequency")
            default: return (m, prefixed)
            }
            prefixed = true
        }
    }

    /// The key of the key record at `c` (its prefixes stepped over), for an error met before the record's key was
    /// read (nil when it is not a key record, or its key is not whole in the window). Cold.
    @usableFromInline @inline(never)
    func keyOfRecord(_ c: ByteCursor) -> [UInt8]? {
        guard let dialect else { return nil }
        var c = c
        var parser = self  // (a copy: reading an LZF key decompresses into its scratch)
        do {
            guard case .type = try Self.afterPrefixes(&c, dialect).0 else { return nil }
            return try parser.readString(&c, slot: Slot.key).array
        } catch {
            return nil
        }
    }

    /// `recordEnd` with the commonest records measured inline: an optional millisecond expiry, then a string
    /// or single-blob value (a type byte of 0, 9...13, 16, 17 or 20: the same value type in every version and
    /// family) whose key and value have 6- or 14-bit lengths, are integers, or are LZF with such lengths.
    /// Anything else, and every record cut off by the window's end, goes through `recordEnd`.
    @inlinable @inline(__always)
    mutating func recordEndInline(_ c: ByteCursor) -> Int {
        let p = c.base
        var i = c.position
        let end = c.end
        if _fastPath(end &- i >= 4) {
            if RDBParser.isSingleBlobType(RDBParser.typeByte(p, &i, end)) {
                i &+= 1
                i = RDBParser.shortStringEnd(p, i, end)
                if i >= 0 { i = RDBParser.shortStringEnd(p, i, end) }
                if i >= 0 { return i }
            }
        }
        return recordEnd(c)
    }

    /// The byte at `i` (at least one before `end`), or after it when it is a millisecond expiry followed by
    /// enough bytes for a type and a key's length (RDB_OPCODE_EXPIRETIME_MS): a key's type byte; `i` is moved to it.
    @inlinable @inline(__always)
    static func typeByte(_ p: UnsafeRawPointer, _ i: inout Int, _ end: Int) -> Int {
        var t = Int(p.load(fromByteOffset: i, as: UInt8.self))
        if t == 0xFC && end &- i >= 13 {
            i &+= 9
            t = Int(p.load(fromByteOffset: i, as: UInt8.self))
        }
        return t
    }

    /// Whether `t` is the type byte of a string or single-blob value (0, 9...13, 16, 17, 20: the same value type
    /// in every version and family).
    @inlinable @inline(__always)
    static func isSingleBlobType(_ t: Int) -> Bool { t < 32 && (0x13_3E01 >> t) & 1 != 0 }

    /// The end of a string at `i` with a 6- or 14-bit length, an integer, or LZF with 6- or 14-bit lengths,
    /// when it is whole before `end`; -1 otherwise (another form, or cut off).
    @inlinable @inline(__always)
    static func shortStringEnd(_ p: UnsafeRawPointer, _ i: Int, _ end: Int) -> Int {
        guard end &- i >= 3 else { return -1 }
        let b0 = Int(p.load(fromByteOffset: i, as: UInt8.self))
        var n: Int
        // Compares rather than a switch on the top two bits (which compiled to an indirect jump that keys
        // and values of different encodings kept mispredicting).
        if b0 < 0x40 {
            n = 1 &+ b0
        } else if b0 < 0x80 {
            n = 2 &+ ((b0 & 0x3F) << 8 | Int(p.load(fromByteOffset: i &+ 1, as: UInt8.self)))
        } else if b0 >= 0xC0 && b0 <= 0xC2 {
            n = 1 &+ (1 << (b0 &- 0xC0))
        } else if b0 == 0xC3 {
            var j = i &+ 1
            let clen = RDBParser.shortLength(p, &j)  // reads at most 2 bytes: j + 1 < end checked below
            guard clen >= 0, end &- j >= 2 else { return -1 }
            guard RDBParser.shortLength(p, &j) >= 0 else { return -1 }
            n = j &- i &+ clen
        } else {
            return -1
        }
        return n <= end &- i ? i &+ n : -1
    }

    /// `skipString` with the common forms inline (raw strings with 6- or 14-bit lengths, integers, LZF with
    /// short lengths, whole in the window).
    @inlinable @inline(__always)
    func skipStringInline(_ c: inout ByteCursor) throws {
        let i = RDBParser.shortStringEnd(c.base, c.position, c.end)
        if _fastPath(i >= 0) {
            c.position = i
        } else {
            try skipString(&c)
        }
    }

    /// Steps over an RDB string inside the window (the framing of `skipString`): inline for raw strings with
    /// 6- or 14-bit lengths and integer-encoded ones; everything else through `skipString`. False when the
    /// string is cut off by the window's end or does not parse.
    @inlinable @inline(__always)
    func skipShortString(_ c: inout ByteCursor) -> Bool {
        let left = c.end &- c.position
        if _fastPath(left >= 2) {
            let p = c.base + c.position
            let b0 = Int(p.load(as: UInt8.self))
            var n = -1
            if b0 < 0x40 {
                n = 1 &+ b0
            } else if b0 < 0x80 {
                n = 2 &+ ((b0 & 0x3F) << 8 | Int(p.load(fromByteOffset: 1, as: UInt8.self)))
            } else if b0 >= 0xC0 && b0 <= 0xC2 {
                n = 1 &+ (1 << (b0 &- 0xC0))
            }
            if n >= 0 {
                guard n <= left else { return false }
                c.position &+= n
                return true
            }
        }
        do {
            try skipString(&c)
            return true
        } catch {
            return false
        }
    }
}

/// Where the record being parsed ends, when it was measured before (`RDBParser.recordEnd`). A type parameter
/// rather than an argument, so that the mapped decode's specialisation (`UnknownRecordEnd`) has no trace of it.
@usableFromInline
protocol RecordEndHint {
    /// The cursor position right after the record; -1 when not known.
    var position: Int { get }
}

@usableFromInline
struct UnknownRecordEnd: RecordEndHint {
    @inlinable init() {}
    @inlinable var position: Int { -1 }
}

/// A record end learnt while the record is parsed (`ValueSplitter` measures the value it splits), before
/// the parser steps over the value.
@usableFromInline
final class LearntRecordEnd: RecordEndHint {
    @usableFromInline var position = -1
    @inlinable init() {}
}

@usableFromInline
struct MeasuredRecordEnd: RecordEndHint {
    @usableFromInline let position: Int
    @inlinable init(_ position: Int) { self.position = position }
}
