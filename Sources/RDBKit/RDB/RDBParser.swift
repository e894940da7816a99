#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Limits and policies of the decoder. Defaults are safe for untrusted input.
public struct RDBDecoderOptions: Sendable {
    /// Verify the CRC64 trailer (a stored 0 always means "not written" and is not checked).
    public var verifyChecksum = true
    /// Try versions newer than the newest known one instead of failing on the header.
    public var allowNewerVersions = false
    /// Largest single decompressed string (LZF) accepted.
    public var maxStringBytes = 1 << 31
    /// Largest single record (one key with its value) a streamed input may buffer.
    public var maxRecordBytes = 1 << 33
    /// Step over each value before reporting its key so that `RDBKeyInfo.valueSize` is known at `beginKey`
    /// (size filters need it). Costs one extra walk of the value's framing (no decompression).
    public var measureValues = false
    /// Keep going after a key whose value content is corrupt (a bad ziplist/listpack/intset/zipmap, stream node
    /// or LZF block) when its framing is intact: the key is reported through `abortKey` and decoding resumes at
    /// the next record. Errors in framing (lengths, types, opcodes, truncation) still stop the run: an RDB file
    /// has no record markers to resynchronise on.
    public var salvage = false
    /// Decompress the nodes of long quicklists and streams on a second thread, a few nodes ahead of the
    /// decoder (see `LZFAhead`). The events are the same either way.
    public var decompressAhead = true

    public init() {}
}

/// What one call of `RDBParser.parseRecord` consumed.
public enum RDBRecordResult: Sendable {
    /// One record (a key with its prefixes, or one opcode).
    case record
    /// The EOF opcode (the checksum, if any, follows and is not consumed).
    case endOfFile
}

/// Reused buffers for LZF-decompressed strings, one per simultaneously live string.
@usableFromInline
final class ScratchBuffers {
    @exclusivity(unchecked) @usableFromInline var pointers: [UnsafeMutableRawPointer?]
    @exclusivity(unchecked) @usableFromInline var capacities: [Int]

    @usableFromInline
    init(slots: Int) {
        pointers = Array(repeating: nil, count: slots)
        capacities = Array(repeating: 0, count: slots)
    }

    deinit {
        for p in pointers { free(p) }
        ahead?.shutdown()
    }

    /// The LZF worker for long quicklists and streams, started on first use (nil when no thread can be
    /// started).
    @exclusivity(unchecked) @usableFromInline var ahead: LZFAhead?
    @exclusivity(unchecked) @usableFromInline var aheadUnavailable = false

    @usableFromInline
    func lookahead() -> LZFAhead? {
        if let ahead { return ahead }
        if aheadUnavailable { return nil }
        ahead = LZFAhead()
        aheadUnavailable = ahead == nil
        return ahead
    }

    /// Bytes allocated past what a buffer is asked for, so that LZF can copy in wide steps to the end.
    @usableFromInline static let slack = 64

    /// A buffer of `count` bytes in `slot`, or nil when it cannot be allocated (malloc/free rather than
    /// allocate/deallocate, so that a hostile size under an address-space limit is an error, not a trap).
    @inlinable
    func buffer(_ slot: Int, count: Int) -> UnsafeMutableRawBufferPointer? {
        if _slowPath(capacities[slot] < count) { guard grow(slot, count) else { return nil } }
        return UnsafeMutableRawBufferPointer(start: pointers[slot], count: count)
    }

    @usableFromInline @inline(never)
    func grow(_ slot: Int, _ count: Int) -> Bool {
        free(pointers[slot])
        var cap = max(4096, capacities[slot])  // room for LZF's fast loop on short strings
        let want = count > Int.max - ScratchBuffers.slack ? count : count + ScratchBuffers.slack
        while cap < want { cap = cap > Int.max / 2 ? want : cap * 2 }
        var p = malloc(cap)
        if p == nil && cap > count {
            cap = count
            p = malloc(cap)
        }
        pointers[slot] = p
        capacities[slot] = p == nil ? 0 : cap
        return p != nil
    }
}

/// Scratch slots: the key stays valid while its value is decoded; values use the others.
@usableFromInline enum Slot {
    @usableFromInline static let key = 0
    @usableFromInline static let a = 1
    @usableFromInline static let b = 2
    @usableFromInline static let c = 3
    @usableFromInline static let d = 4
    @usableFromInline static let count = 5
}

/// The RDB record decoder: reads one top-level record at a time from a `ByteCursor` and reports it to a
/// visitor. It keeps the state that spans records (header, dialect, current database). The drivers in
/// `RDBReader` feed it windows of input, verify the checksum and handle streamed inputs.
public struct RDBParser {
    public var options: RDBDecoderOptions
    public private(set) var header: RDBHeader?
    @usableFromInline var dialect: RDBDialect?
    @usableFromInline var _db: Int = 0
    /// The current database (last SELECTDB).
    public var db: Int { _db }
    @usableFromInline let scratch = ScratchBuffers(slots: Slot.count)
    @usableFromInline var masterFields: [RDBString] = []

    public init(options: RDBDecoderOptions = .init()) {
        self.options = options
        masterFields.reserveCapacity(16)
    }

    /// A parser for records in the middle of a file whose header was read elsewhere (a chunk decoded on
    /// another thread): the header's dialect, `db` selected, scratch buffers of its own.
    public init(options: RDBDecoderOptions, header: RDBHeader, db: Int) {
        self.init(options: options)
        self.header = header
        dialect = RDBDialect(header)
        _db = db
    }

    /// The opcode the record at the cursor starts with, if it starts with one (nil for a key, at the end
    /// of the window, or before the header).
    @inlinable
    func opcode(at c: ByteCursor) -> RDBOpcode? {
        guard let dialect, c.position < c.end else { return nil }
        if case .opcode(let o) = dialect.meaning(c.base.load(fromByteOffset: c.position, as: UInt8.self)) { return o }
        return nil
    }

    // MARK: header

    /// Reads and checks the 9-byte header, then tells the visitor.
    public mutating func parseHeader<V: RDBVisitor>(_ c: inout ByteCursor, _ v: inout V) throws {
        let start = c.offset
        let magic = try c.readBytes(9, "the RDB header")
        guard let h = RDBHeader.parse(magic) else {
            throw RDBError(.badMagic, offset: start, "not an RDB file: the first bytes are not REDIS0nnn or VALKEYnnn")
        }
        if h.family == .valkey && h.version < 80 {
            throw RDBError(.unsupportedVersion, offset: start + 6, "VALKEY header with version \(h.version): Valkey numbers its own format from 80")
        }
        if h.family == .redis && (h.version < 1 || h.version >= 80) {
            throw RDBError(.unsupportedVersion, offset: start + 5, "REDIS header with version \(h.version) is outside the Redis range 1...\(RDBHeader.newestRedisVersion)")
        }
        if !h.isKnown && !options.allowNewerVersions {
            let newest = h.family == .redis ? RDBHeader.newestRedisVersion : RDBHeader.newestValkeyVersion
            throw RDBError(.unsupportedVersion, offset: start + 5, "RDB version \(h.version) (\(h.family.rawValue)) is newer than this decoder knows (\(newest)); allow newer versions to try anyway")
        }
        header = h
        dialect = RDBDialect(h)
        _db = 0
        try v.beginFile(h)
    }

    // MARK: records

    /// Parses one top-level record. A key record includes its prefix opcodes (expiry, LRU/LFU, metadata).
    @inlinable
    public mutating func parseRecord<V: RDBVisitor>(_ c: inout ByteCursor, _ v: inout V) throws -> RDBRecordResult {
        try parseRecord(&c, &v, knownEnd: UnknownRecordEnd())
    }

    /// Parses one top-level record whose end is already known: `end` is the cursor position right after it,
    /// as `recordEnd` measured it on the same window (-1: not known). A key whose value the visitor skips
    /// (`.skip`, `.raw`, an empty collection) then moves to the end without walking the value a second time.
    @inlinable
    public mutating func parseRecord<V: RDBVisitor>(_ c: inout ByteCursor, _ v: inout V, end: Int) throws -> RDBRecordResult {
        try parseRecord(&c, &v, knownEnd: MeasuredRecordEnd(end))
    }

    @inlinable
    mutating func parseRecord<V: RDBVisitor, E: RecordEndHint>(_ c: inout ByteCursor, _ v: inout V, knownEnd: E) throws -> RDBRecordResult {
        guard let dialect else { throw RDBError.invalid(at: c.offset, "parseRecord before parseHeader") }
        let recordStart = c.offset
        var expireAt: Int64? = nil
        var idle: UInt64? = nil
        var freq: UInt8? = nil
        while true {
            let typeOffset = c.offset
            let b = try c.readUInt8("a type or opcode")
            switch dialect.meaning(b) {
            case .type(let enc):
                try parseKey(&c, &v, RDBValueType(rawValue: b, encoding: enc), recordStart: recordStart,
                             expireAt: expireAt, idle: idle, freq: freq, valueEnd: knownEnd)
                return .record
            case .opcode(let op):
                let isPrefix: Bool
                switch op {
                case .expireTimeMilliseconds:
                    expireAt = try c.readLE(Int64.self, "an expire time (ms)")
                    isPrefix = true
                case .expireTime:
                    expireAt = Int64(try c.readLE(Int32.self, "an expire time (s)")) * 1000
                    isPrefix = true
                case .idle:
                    idle = try c.readLength("an LRU idle time")
                    isPrefix = true
                case .freq:
                    freq = try c.readUInt8("an LFU frequency")
                    isPrefix = true
                case .keyMeta:
                    let s = c.position
                    try skipKeyMetadata(&c)
                    try v.keyMetadata(c.bytes(from: s, to: c.position))
                    isPrefix = true
                default:
                    isPrefix = false
                }
                if isPrefix { continue }
                if expireAt != nil || idle != nil || freq != nil {
                    throw RDBError.invalid(at: typeOffset, "opcode 0x\(String(b, radix: 16)) follows a key prefix (expiry/LRU/LFU) instead of a key")
                }
                return try parseOpcode(op, &c, &v)
            case .invalid:
                throw RDBError(.unknownType, offset: typeOffset, "byte 0x\(String(b, radix: 16)) (\(b)) is neither a value type nor an opcode in \(dialect.header.family.rawValue) RDB \(dialect.header.version)")
            }
        }
    }

    @inlinable
    mutating func parseOpcode<V: RDBVisitor>(_ op: RDBOpcode, _ c: inout ByteCursor, _ v: inout V) throws -> RDBRecordResult {
        switch op {
        case .eof:
            return .endOfFile
        case .selectDB:
            let start = c.offset
            let n = try c.readLength("a database number")
            guard n <= UInt64(Int32.max) else { throw RDBError.invalidLength(at: start, n, what: "database number", limit: Int(Int32.max)) }
            _db = Int(n)
            try v.beginDatabase(_db)
        case .resizeDB:
            let keys = try c.readLength("a RESIZEDB key count")
            let expires = try c.readLength("a RESIZEDB expires count")
            try v.resizeDatabase(keys: keys, expires: expires)
        case .aux:
            let key = try readString(&c, slot: Slot.a)
            let value = try readString(&c, slot: Slot.b)
            try v.auxField(key: key, value: value)
        case .moduleAux:
            let start = c.offset
            let id = try c.readLength("a module id")
            let opc = try c.readLength("a MODULE_AUX opcode")
            guard opc == 2 else { throw RDBError.corrupt(at: start, "MODULE_AUX", "expected the UINT opcode (2) before 'when', found \(opc)") }
            let when = try c.readLength("MODULE_AUX when")
            let s = c.position
            try skipModuleItems(&c)
            try v.moduleAux(RDBModuleID(rawValue: id), when: when, body: c.bytes(from: s, to: c.position))
        case .function2:
            let code = try readString(&c, slot: Slot.a)
            try v.functionLibrary(code)
        case .functionPreGA:
            let name = try readString(&c, slot: Slot.a)
            let engine = try readString(&c, slot: Slot.b)
            let hasDesc = try c.readLength("a function description flag")
            let desc = hasDesc != 0 ? try readString(&c, slot: Slot.c) : nil
            let code = try readString(&c, slot: Slot.d)
            try v.functionPreGA(name: name, engine: engine, description: desc, code: code)
        case .slotInfo:
            let slot = try c.readLength("a slot number")
            let keys = try c.readLength("a slot key count")
            let expires = try c.readLength("a slot expires count")
            try v.slotInfo(slot: slot, keys: keys, expires: expires)
        case .slotImport:
            let job = try readString(&c, slot: Slot.a)
            let n = try c.readCount("slot range count", minItemSize: 2)
            var ranges: [ClosedRange<UInt64>] = []
            ranges.reserveCapacity(min(n, 1024))  // n is only bounded by the input size
            for _ in 0..<n {
                let at = c.offset
                let lo = try c.readLength("a slot range start")
                let hi = try c.readLength("a slot range end")
                guard lo <= hi else { throw RDBError.invalid(at: at, "slot range \(lo)-\(hi) is reversed") }
                ranges.append(lo...hi)
            }
            try v.slotImport(job: job, ranges: ranges)
        case .expireTime, .expireTimeMilliseconds, .idle, .freq, .keyMeta:
            break  // handled as prefixes by parseRecord
        }
        return .record
    }

    // MARK: keys

    @inlinable
    mutating func parseKey<V: RDBVisitor, E: RecordEndHint>(
        _ c: inout ByteCursor, _ v: inout V, _ type: RDBValueType, recordStart: Int,
        expireAt: Int64?, idle: UInt64?, freq: UInt8?, valueEnd end: E
    ) throws {
        let valueEnd = end.position
        let key = try readString(&c, slot: Slot.key)
        // Errors name the key (caught here rather than the key kept in the parser: no store per record).
        do {
            var info = RDBKeyInfo(db: db, type: type, expireAtMs: expireAt, idleSeconds: idle, lfuFrequency: freq,
                                  recordOffset: recordStart, valueOffset: c.offset)
            if options.measureValues {
                if valueEnd >= 0 {
                    info.valueSize = valueEnd - c.position
                } else {
                    var m = c
                    try skipValue(&m, type.encoding)
                    info.valueSize = m.position - c.position
                }
            }
            if type.encoding != .string, try isEmptyValue(c, type.encoding) {
                try skipValue(&c, type.encoding, end: valueEnd)
                try v.droppedEmptyKey(key, info)
                return
            }
            if type.encoding == .string && !options.salvage {
                let delivery = v.stringDelivery
                if delivery != .events {
                    let s = c.position
                    var value = RDBString(bytes: UnsafeRawBufferPointer(start: nil, count: 0))
                    if delivery == .whole {
                        value = try readString(&c, slot: Slot.a)
                    } else {
                        try skipStringInline(&c)
                    }
                    try v.stringKey(key, info, value: value, raw: c.bytes(from: s, to: c.position))
                    return
                }
            }
            switch try v.beginKey(key, info) {
            case .decode:
                if options.salvage {
                    let valueStart = c
                    do {
                        try parseValue(&c, &v, type.encoding)
                    } catch let e as RDBError where RDBParser.isContentError(e) {
                        // The value's content is corrupt but its framing (lengths) may be intact: if the value can
                        // be stepped over, the next record starts right after it and decoding can go on.
                        c = valueStart
                        do { try skipValue(&c, type.encoding) } catch { throw e }
                        var lost = e
                        lost.key = key.array
                        try v.abortKey(key, info, error: lost, lostRange: recordStart..<c.offset)
                        return
                    }
                } else {
                    try parseValue(&c, &v, type.encoding)
                }
            case .skip:
                try skipValue(&c, type.encoding, end: end.position)  // read again: it may be learnt by now
                return
            case .raw:
                let s = c.position
                try skipValue(&c, type.encoding, end: valueEnd)
                try v.rawValue(c.bytes(from: s, to: c.position))
            }
            try v.endKey()
        } catch var e as RDBError {
            if e.key == nil { e.key = key.array }
            throw e
        }
    }

    // MARK: strings

    /// Errors inside a value whose outer framing may still be intact.
    @inlinable
    static func isContentError(_ e: RDBError) -> Bool {
        e.code == .corruptEncoding || e.code == .lzf || e.code == .invalidValue
    }

    /// Reads an RDB string: raw bytes (borrowed), an int-encoded integer, or LZF (decompressed into `slot`).
    ///
    /// Inlined for the common cases, a string of up to 63 bytes (one length byte) or an int-encoded
    /// string, all in the window; every other form (LZF among them) and every error go through
    /// `readStringSlow`.
    @inlinable @inline(__always)
    public mutating func readString(_ c: inout ByteCursor, slot: Int) throws -> RDBString {
        if _fastPath(c.position < c.end) {
            let b0 = Int(c.base.load(fromByteOffset: c.position, as: UInt8.self))
            if b0 < 0x40 && b0 < c.end &- c.position {
                let p = c.base + (c.position &+ 1)
                c.position &+= 1 &+ b0
                return RDBString(bytes: UnsafeRawBufferPointer(start: p, count: b0))
            }
            // Integers stored as 1, 2 or 4 little-endian bytes (0xC0, 0xC1, 0xC2).
            if b0 >= 0xC0 && b0 <= 0xC2 {
                let width = 1 << (b0 &- 0xC0)
                if width < c.end &- c.position {
                    let p = c.base + (c.position &+ 1)
                    c.position &+= 1 &+ width
                    return RDBParser.intString(p, width: width)
                }
            }
        }
        return try readStringSlow(&c, slot: slot)
    }

    /// The integer of an int-encoded string (0xC0, 0xC1, 0xC2): `width` (1, 2 or 4) little-endian bytes at `p`.
    @inlinable @inline(__always)
    static func intString(_ p: UnsafeRawPointer, width: Int) -> RDBString {
        switch width {
        case 1: return RDBString(integer: Int64(p.load(as: Int8.self)))
        case 2: return RDBString(integer: Int64(Int16(littleEndian: p.loadUnaligned(as: Int16.self))))
        default: return RDBString(integer: Int64(Int32(littleEndian: p.loadUnaligned(as: Int32.self))))
        }
    }

    @usableFromInline @inline(never)
    mutating func readStringSlow(_ c: inout ByteCursor, slot: Int) throws -> RDBString {
        // The common cases without the general length reader: a raw string of 64 bytes to 16 KiB (a
        // 14-bit length) and LZF with 6- or 14-bit lengths. Anything else, including every bad case,
        // takes the general path below, which reports it.
        if c.end &- c.position >= 5 {
            let p = c.base + c.position
            let b0 = Int(p.load(as: UInt8.self))
            if b0 >> 6 == 1 {
                var i = 0
                let n = RDBParser.shortLength(p, &i)
                if n <= c.end &- c.position &- i {
                    c.position &+= i &+ n
                    return RDBString(bytes: UnsafeRawBufferPointer(start: p + i, count: n))
                }
            } else if b0 == 0xC3 {
                var i = 1
                let clen = RDBParser.shortLength(p, &i)
                let ulen = RDBParser.shortLength(p, &i)
                let remaining = c.end &- c.position &- i
                if clen >= 0, ulen >= 0, clen <= remaining, lzfSizesPlausible(UInt64(clen), UInt64(ulen)) {
                    let start = c.offset
                    c.position &+= i &+ clen
                    return RDBString(bytes: try inflate(
                        UnsafeRawBufferPointer(start: p + i, count: clen), readable: remaining, count: ulen, slot: slot, start: start))
                }
            }
        }
        let start = c.offset
        switch try c.readLengthOrEncoding() {
        case .length(let n):
            guard n <= UInt64(c.remaining) else {
                throw RDBError.truncated(at: start, need: n > UInt64(Int.max) ? Int.max : Int(n), have: c.remaining, what: "a string")
            }
            return RDBString(bytes: try c.readBytes(Int(n), "a string"))
        case .encoded(let e):
            switch e {
            case 0: return RDBString(integer: Int64(Int8(bitPattern: try c.readUInt8("an int8 string"))))
            case 1: return RDBString(integer: Int64(try c.readLE(Int16.self, "an int16 string")))
            case 2: return RDBString(integer: Int64(try c.readLE(Int32.self, "an int32 string")))
            case 3: return RDBString(bytes: try readLZF(&c, slot: slot, start: start))
            default:
                throw RDBError.invalid(at: start, "unknown string encoding 0x\(String(0xC0 | e, radix: 16))")
            }
        }
    }

    /// A 6- or 14-bit length at `p + i` (advancing `i`), or -1 for any other form. Reads at most 2 bytes.
    @inlinable @inline(__always)
    static func shortLength(_ p: UnsafeRawPointer, _ i: inout Int) -> Int {
        let b = Int(p.load(fromByteOffset: i, as: UInt8.self))
        switch b >> 6 {
        case 0:
            i &+= 1
            return b
        case 1:
            let n = (b & 0x3F) << 8 | Int(p.load(fromByteOffset: i &+ 1, as: UInt8.self))
            i &+= 2
            return n
        default:
            return -1
        }
    }

    @usableFromInline
    mutating func readLZF(_ c: inout ByteCursor, slot: Int, start: Int) throws -> UnsafeRawBufferPointer {
        let (input, readable, ulen) = try lzfHeader(&c, start: start)
        return try inflate(input, readable: readable, count: ulen, slot: slot, start: start)
    }

    /// Whether an LZF string's declared size can be right: not empty, within the string limit, and no more
    /// than LZF can expand `clen` bytes to.
    @inlinable
    func lzfSizesPlausible(_ clen: UInt64, _ ulen: UInt64) -> Bool {
        ulen > 0 && ulen <= UInt64(options.maxStringBytes) && ulen <= clen &* UInt64(LZF.maxExpansion) &+ 64
    }

    /// Reads an LZF string's lengths (after its `0xC3` byte) and checks them; returns the compressed
    /// bytes, how many bytes from their start may be read (LZF's slack), and the declared size.
    @usableFromInline
    func lzfHeader(_ c: inout ByteCursor, start: Int) throws -> (input: UnsafeRawBufferPointer, readable: Int, count: Int) {
        let clen = try c.readLength("an LZF compressed length")
        let ulen = try c.readLength("an LZF uncompressed length")
        guard clen <= UInt64(c.remaining) else {
            throw RDBError.truncated(at: start, need: clen > UInt64(Int.max) ? Int.max : Int(clen), have: c.remaining, what: "LZF data")
        }
        guard lzfSizesPlausible(clen, ulen) else {
            throw RDBError(ulen > UInt64(options.maxStringBytes) ? .limitExceeded : .lzf, offset: start,
                           "LZF string declares \(ulen) bytes from \(clen) compressed bytes (limit \(options.maxStringBytes))")
        }
        let readable = c.remaining
        return (try c.readBytes(Int(clen), "LZF data"), readable, Int(ulen))
    }

    /// Decompresses an LZF string (see `lzfHeader`) into a scratch slot.
    @usableFromInline
    func inflate(_ input: UnsafeRawBufferPointer, readable: Int, count: Int, slot: Int, start: Int) throws -> UnsafeRawBufferPointer {
        guard let out = scratch.buffer(slot, count: count) else {
            throw RDBError(.limitExceeded, offset: start, "cannot allocate \(count) bytes for an LZF string")
        }
        guard LZF.decompress(input, readable: readable, into: out, writable: scratch.capacities[slot]) else {
            throw RDBParser.lzfCorrupt(at: start, input.count, count)
        }
        return UnsafeRawBufferPointer(out)
    }

    /// The error of LZF data at `start` that does not decompress to its declared size.
    public static func lzfCorrupt(at start: Int, _ clen: Int, _ ulen: Int) -> RDBError {
        RDBError(.lzf, offset: start, "LZF data (\(clen) bytes) does not decompress to its declared \(ulen) bytes")
    }

    /// A string as the file holds it, read without decompressing: `raw` is one RDB string from its encoding byte
    /// on, framed already (what `stringKey` gets as `raw` under `.wholeRaw`). Plain and int-encoded strings come
    /// back as the `RDBString` `readString` would give; an LZF string as its declared length and compressed
    /// bytes (`string` nil). Nil when `raw` is not one whole string.
    /// (The common forms inline; every other form, and every bad one, out of line.)
    @inlinable @inline(__always)
    public static func peekString(_ raw: UnsafeRawBufferPointer)
        -> (string: RDBString?, count: Int, compressed: UnsafeRawBufferPointer)?
    {
        guard let base = raw.baseAddress, raw.count > 0 else { return nil }
        let b0 = Int(base.load(as: UInt8.self))
        // The commonest: a 6-bit length, then a 14-bit one (64 bytes to 16 KiB that did not compress).
        if b0 < 0x40 || (b0 < 0x80 && raw.count >= 2) {
            var i = 0
            let n = RDBParser.shortLength(base, &i)
            guard raw.count == i &+ n else { return nil }
            return (RDBString(bytes: UnsafeRawBufferPointer(start: base + i, count: n)), n, .init(start: nil, count: 0))
        }
        if b0 >= 0xC0 && b0 <= 0xC2 {  // an integer
            let width = 1 << (b0 &- 0xC0)
            guard raw.count == 1 &+ width else { return nil }
            let s = RDBParser.intString(base + 1, width: width)
            return (s, s.count, .init(start: nil, count: 0))
        }
        if b0 == 0xC3 && raw.count >= 5 {  // LZF with 6- or 14-bit lengths (most LZF strings), without a cursor
            var i = 1
            let clen = RDBParser.shortLength(base, &i)  // reads bytes 1-2
            if clen >= 0 {
                let ulen = RDBParser.shortLength(base, &i)  // reads at most bytes 3-4
                if ulen >= 0 {
                    guard clen == raw.count &- i else { return nil }
                    return (nil, ulen, UnsafeRawBufferPointer(start: base + i, count: clen))
                }
            }
        }
        return peekStringSlow(raw)
    }

    @usableFromInline @inline(never)
    static func peekStringSlow(_ raw: UnsafeRawBufferPointer) -> (string: RDBString?, count: Int, compressed: UnsafeRawBufferPointer)? {
        var c = ByteCursor(raw)
        do {
            switch try c.readLengthOrEncoding() {
            case .length(let n):
                guard n == UInt64(c.remaining) else { return nil }
                let s = RDBString(bytes: try c.readBytes(Int(n), "a string"))
                return (s, s.bytes.count, .init(start: nil, count: 0))
            case .encoded(let e):
                let s: RDBString
                switch e {
                case 0: s = RDBString(integer: Int64(Int8(bitPattern: try c.readUInt8("an int8 string"))))
                case 1: s = RDBString(integer: Int64(try c.readLE(Int16.self, "an int16 string")))
                case 2: s = RDBString(integer: Int64(try c.readLE(Int32.self, "an int32 string")))
                case 3:
                    let clen = try c.readLength("an LZF compressed length")
                    let ulen = try c.readLength("an LZF uncompressed length")
                    guard clen == UInt64(c.remaining), ulen <= UInt64(Int.max) else { return nil }
                    return (nil, Int(ulen), try c.readBytes(Int(clen), "LZF data"))
                default: return nil
                }
                guard c.remaining == 0 else { return nil }
                return (s, s.count, .init(start: nil, count: 0))
            }
        } catch {
            return nil
        }
    }

    /// Steps over an RDB string without decompressing it.
    @inlinable
    func skipString(_ c: inout ByteCursor) throws {
        let start = c.offset
        switch try c.readLengthOrEncoding() {
        case .length(let n):
            guard n <= UInt64(c.remaining) else {
                throw RDBError.truncated(at: start, need: n > UInt64(Int.max) ? Int.max : Int(n), have: c.remaining, what: "a string")
            }
            c.position += Int(n)
        case .encoded(let e):
            switch e {
            case 0: try c.skip(1, "an int8 string")
            case 1: try c.skip(2, "an int16 string")
            case 2: try c.skip(4, "an int32 string")
            case 3:
                let clen = try c.readLength("an LZF compressed length")
                _ = try c.readLength("an LZF uncompressed length")
                guard clen <= UInt64(c.remaining) else {
                    throw RDBError.truncated(at: start, need: clen > UInt64(Int.max) ? Int.max : Int(clen), have: c.remaining, what: "LZF data")
                }
                c.position += Int(clen)
            default:
                throw RDBError.invalid(at: start, "unknown string encoding 0x\(String(0xC0 | e, radix: 16))")
            }
        }
    }

    /// Reads a string that holds a blob (ziplist, listpack, intset, zipmap): integers are invalid there.
    @inlinable
    mutating func readBlob(_ c: inout ByteCursor, slot: Int, _ what: StaticString) throws -> UnsafeRawBufferPointer {
        let start = c.offset
        let s = try readString(&c, slot: slot)
        if s.isInteger { throw RDBError.corrupt(at: start, what, "blob is an integer-encoded string") }
        return s.bytes
    }

    /// The blob of a value in a compact encoding, reported to the sink (`RDBVisitor.compactValue`) before its
    /// elements.
    @inlinable @inline(__always)
    mutating func readValueBlob<V: RDBVisitor>(_ c: inout ByteCursor, _ v: inout V, _ what: StaticString) throws -> UnsafeRawBufferPointer {
        let blob = try readBlob(&c, slot: Slot.a, what)
        try v.compactValue(blob)
        return blob
    }

    // MARK: scores

    /// Parses a score stored as text (what strtod accepts, the whole string; NaN is refused).
    @inlinable
    public static func score(_ s: RDBString) throws -> Double {
        if s.isInteger { return Double(s.integer) }
        guard let d = parseDouble(s.bytes) else {
            throw RDBError.invalid(at: -1, "score '\(String(decoding: s.bytes.prefix(40), as: UTF8.self))' is not a number")
        }
        return d
    }

    @usableFromInline
    static func parseDouble(_ b: UnsafeRawBufferPointer) -> Double? {
        guard b.count > 0, b.count < 128 else { return nil }
        var buf: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &buf) { raw -> Double? in
            raw.copyMemory(from: b)
            raw[b.count] = 0
            let p = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>? = nil
            let d = strtod(p, &end)
            guard let end, end - p == b.count else { return nil }
            if b[0] == 0x20 || b[0] == 0x09 || b[0] == 0x0A { return nil }  // strtod skips leading spaces
            return d.isNaN ? nil : d
        }
    }

    // MARK: module items

    /// Steps over opcode-tagged module items up to and including their EOF (0).
    @usableFromInline
    func skipModuleItems(_ c: inout ByteCursor) throws {
        while true {
            let at = c.offset
            switch try c.readLength("a module item opcode") {
            case 0: return
            case 1, 2: _ = try c.readLength("a module integer")
            case 3: try c.skip(4, "a module float")
            case 4: try c.skip(8, "a module double")
            case 5: try skipString(&c)
            case let op: throw RDBError.corrupt(at: at, "module value", "unknown module item opcode \(op)")
            }
        }
    }

    @usableFromInline
    func skipKeyMetadata(_ c: inout ByteCursor) throws {
        let at = c.offset
        let n = try c.readLength("a key metadata class count")
        guard (1...7).contains(n) else { throw RDBError.corrupt(at: at, "KEY_META", "\(n) metadata classes (must be 1...7)") }
        for _ in 0..<n {
            try c.skip(4, "a key metadata class spec")
            try skipModuleItems(&c)
        }
    }
}
