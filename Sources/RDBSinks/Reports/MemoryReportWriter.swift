import RDBKit

/// Writes one CSV row per key in the layout of redis-rdb-tools' memory report (`rdb --command memory`):
///
/// ```
/// database,type,key,size_in_bytes,encoding,num_elements,len_largest_element,expiry
/// 0,string,greeting,72,string,11,11,
/// 0,hash,user:1,105,ziplist,3,8,2022-12-25T10:11:12.573000
/// ```
///
/// Columns, as rdbtools prints them:
/// - `type`: `string`, `list`, `set`, `sortedset`, `hash`, `stream`, `module` (and `array` for type 28).
/// - `key`: the key's bytes as they are (integers as decimal text), quoted as in RFC 4180 (`"…"`, inner quotes
///   doubled) when the key holds a comma, a quote, CR or LF (rdbtools 0.1.15 writes such keys unquoted, which
///   breaks the columns).
/// - `encoding`: for sets, sorted sets and hashes the file's encoding (`hashtable`, `intset`, `listpack`,
///   `skiplist`, `ziplist`, `zipmap`); lists are always `quicklist` (rdbtools predicts the encoding of a server
///   ≥ 3.2, whatever the file holds); streams `listpack`; modules the module's name (e.g. `ReJSON-RL`);
///   strings `string`.
/// - `num_elements`: string: its length (8 when the file stores it as an integer); list/set/zset/hash: element
///   count; stream: entry count (rdbtools prints a constant 1); module: 1.
/// - `len_largest_element`: the longest element, member or hash field/value (8 for integers stored as
///   integers); string: its length; stream: the largest estimated listpack node; module: the size.
/// - `expiry`: UTC, as Python's `datetime.isoformat()` writes it: `2022-12-25T10:11:12.573000`, without the
///   fraction when the expiry is a whole second; empty without expiry.
///
/// ## The memory model (rdbtools' defaults: a 64-bit Redis ≥ 4.0 with jemalloc)
/// - `malloc(n)`: n rounded up to a jemalloc size class (multiples of 8 up to 64, then 4 classes per power of 2).
/// - string `s`: 0 when its text is a canonical int64 (the server keeps it in the object); else
///   `malloc(len + h)` with the sds header+NUL h = 2, 4, 6, 10, 18 for len < 2^5, 2^8, 2^16, 2^32, more.
/// - every key: dict entry 24 + key string + robj 16, + 32 with an expiry (expires dict entry + the int64).
/// - hash table of n entries: 92 + 12 × (the smallest power of 2 > n) (both tables during a rehash, as rdbtools);
///   each hash field: 24 + field + value; each set member: 24 + member.
/// - skiplist zset: 48 + table(n), each member 8 + member + 48 + 16 × level, with the level's expected value
///   4/3 (rdbtools draws a random level per member, so its own numbers vary from run to run).
/// - compact encodings of sets, sorted sets and hashes (ziplist, listpack, intset, zipmap): the blob's length
///   (decompressed: `RDBVisitor.compactValue`), as rdbtools reads it, slack inside the blob included.
/// - list: a quicklist of ziplist nodes of at most 8 KiB: 32 + 48 per node + 11 per node + the ziplist
///   entries (rdbtools' model for servers ≥ 3.2).
/// - stream: 64 + the listpack nodes (estimated from the entries: a new node every 100 entries or 4 KiB, master
///   entry with the first entry's fields, entries with the same fields store only their values), each
///   malloc-rounded, + radix tree (16 n + 2.5 n × 244) for n nodes, + per group 32 + tree(PEL) + 24 per PEL
///   entry, per consumer 24 + name + tree(its pending IDs). rdbtools measures the node listpacks in the file
///   (deleted entries included), so streams differ most.
/// - module: key + 9 + the serialized module value (as rdbtools). array: key + 16 per element + strings.
///
/// On the redis-rdb-tools fixtures that rdbtools reads, every column but `size_in_bytes` (and streams'
/// `num_elements`) is identical, and so are most sizes. The others: skiplists (rdbtools' random levels,
/// ±0.5%), and lists of integers (rdbtools sizes a list's integers with its own rule — 0 bytes below 12,
/// negatives included; we use the ziplist integer encodings). Checked by `ReportsRdbtoolsTests`.
public struct MemoryReportWriter: RDBVisitor {
    public let out: OutputBuffer
    var headerWritten = false

    @usableFromInline var info = RDBKeyInfo(db: 0, type: RDBValueType(rawValue: 0, encoding: .string), expireAtMs: nil, idleSeconds: nil,
                          lfuFrequency: nil, recordOffset: 0, valueOffset: 0)
    @usableFromInline var size = 0  // running total
    @usableFromInline var count = 0
    @usableFromInline var largest = 0
    @usableFromInline var prevZipEntry = 0
    /// The key's set, sorted set or hash is in a compact encoding (ziplist, listpack, intset, zipmap): it is
    /// sized by its blob's length (`compactValue`), its elements are counted only.
    @usableFromInline var compact = false
    // quicklist
    @usableFromInline var nodes = 0
    @usableFromInline var nodeBytes = 0
    // stream
    var stream = StreamEstimate()
    var moduleName = ""
    /// Whether the decoder checks the file's CRC64 trailer (`RDBDecoderOptions.verifyChecksum`).
    let checksumVerified: Bool
    /// Whether an LZF string value longer than an integer's text has its compressed bytes checked here (they
    /// do not change its row: its length is in its header). Not when the file has a CRC64 trailer that is
    /// checked (RDB 5 and later, `checksumVerified`): that covers them, as it covers the values `stats` and
    /// `keys` step over, and checking them again was a tenth of the report of strings.rdb.
    @usableFromInline var checksCompressed = true

    /// `checksumVerified`: see `checksCompressed`.
    public init(out: OutputBuffer, checksumVerified: Bool = true) {
        self.out = out
        self.checksumVerified = checksumVerified
    }

    public mutating func beginFile(_ header: RDBHeader) throws {
        checksCompressed = !checksumVerified || header.version < 5
        if !headerWritten {
            out.append("database,type,key,size_in_bytes,encoding,num_elements,len_largest_element,expiry\n")
            headerWritten = true
            out.commit()
        }
    }

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        self.info = info
        Self.writeRowStart(key, db: info.db, kind: info.kind, into: out)
        size = MemoryModel.keyOverhead(key, expires: info.expireAtMs != nil)
        count = 0
        largest = 0
        prevZipEntry = 0
        nodes = 0
        nodeBytes = 0
        compact = info.kind != .list && info.type.encoding.isCompact
        if info.kind == .stream { stream = StreamEstimate() }
        return .decode
    }

    /// `db,type,key,` in one reserved run of stores (each append reserving on its own, and counting its digits
    /// first, were a fifth of the report); a key that needs quotes or is long goes on its own. (Static, as
    /// `writeRowEnd`: as methods, each call from a mutating one copied the writer's 296 bytes first, a tenth
    /// of the report of strings.)
    @inline(__always)
    static func writeRowStart(_ key: RDBString, db: Int, kind: RDBKind, into out: OutputBuffer) {
        out.reserve(rowStartRoom)
        let at = putRowPrefix(db: db, type: MemoryModel.typeName(kind), out.storage, out.count)
        if isPlainKey(key) {
            out.count = putPlainKey(key.bytes, out.storage, at)
        } else {
            out.count = at
            out.appendCSVField(key)
            out.append(UInt8(ascii: ","))
        }
    }

    /// `size,encoding,num_elements,len_largest_element,expiry` and the line's end, in one reserved run (the
    /// encoding is a static name of at most 9 bytes, or a module's name); the row is committed.
    @inline(__always)
    static func writeRowEnd(size: Int, encoding: StaticString, module: String? = nil, count: Int, largest: Int, expireAtMs: Int64?,
                            into out: OutputBuffer) throws {
        out.reserve(rowEndRoom)
        out.count = putSizeAndEncoding(size, encoding, out.storage, out.count)  // (a module's: "")
        if let module {
            out.append(module)
            out.reserve(rowEndRoom)
        }
        out.count = putRowTail(count: count, largest: largest, expireAtMs: expireAtMs, out.storage, out.count)
        out.commit()
        try out.flushIfNeeded()
    }

    // The row's parts, stored at `at` in room reserved before (`rowStartRoom`, `rowEndRoom`); each returns
    // where it ends.

    static var rowStartRoom: Int { 48 &+ 64 }
    static var rowEndRoom: Int { 96 &+ MemoryModel.isoDateBytes }

    /// Whether the key goes into a row as its bytes are (`putPlainKey`): text of at most 64 bytes that needs no
    /// quotes.
    @inline(__always)
    static func isPlainKey(_ key: RDBString) -> Bool {
        !key.isInteger && key.bytes.count <= 64 && OutputBuffer.isPlainCSV(key.bytes)
    }

    /// `db,type,`
    @inline(__always)
    static func putRowPrefix(db: Int, type: StaticString, _ s: UnsafeMutableRawPointer, _ at: Int) -> Int {
        var at = at
        at &+= db >= 0 ? DecimalFormatter.writeMostlySmall(UInt64(db), into: s + at) : DecimalFormatter.write(Int64(db), into: s + at)
        s.storeBytes(of: UInt8(ascii: ","), toByteOffset: at, as: UInt8.self)
        OutputBuffer.copy(s + (at &+ 1), type.utf8Start, type.utf8CodeUnitCount)
        at &+= 1 &+ type.utf8CodeUnitCount
        s.storeBytes(of: UInt8(ascii: ","), toByteOffset: at, as: UInt8.self)
        return at &+ 1
    }

    /// `key,` for a key `isPlainKey` lets through.
    @inline(__always)
    static func putPlainKey(_ key: UnsafeRawBufferPointer, _ s: UnsafeMutableRawPointer, _ at: Int) -> Int {
        let k = key.count
        if k > 0 { OutputBuffer.copy(s + at, key.baseAddress!, k) }
        s.storeBytes(of: UInt8(ascii: ","), toByteOffset: at &+ k, as: UInt8.self)
        return at &+ k &+ 1
    }

    /// `size,encoding` (a static name of at most 9 bytes).
    @inline(__always)
    static func putSizeAndEncoding(_ size: Int, _ encoding: StaticString, _ s: UnsafeMutableRawPointer, _ at: Int) -> Int {
        var at = at
        at &+= DecimalFormatter.writeMostlySmall(UInt64(truncatingIfNeeded: size), into: s + at)
        s.storeBytes(of: UInt8(ascii: ","), toByteOffset: at, as: UInt8.self)
        OutputBuffer.copy(s + (at &+ 1), encoding.utf8Start, encoding.utf8CodeUnitCount)
        return at &+ 1 &+ encoding.utf8CodeUnitCount
    }

    /// `,num_elements,len_largest_element,expiry` and the line's end.
    @inline(__always)
    static func putRowTail(count: Int, largest: Int, expireAtMs: Int64?, _ t: UnsafeMutableRawPointer, _ at: Int) -> Int {
        var at = at
        t.storeBytes(of: UInt8(ascii: ","), toByteOffset: at, as: UInt8.self)
        at &+= 1 &+ DecimalFormatter.writeMostlySmall(UInt64(truncatingIfNeeded: count), into: t + (at &+ 1))
        t.storeBytes(of: UInt8(ascii: ","), toByteOffset: at, as: UInt8.self)
        at &+= 1 &+ DecimalFormatter.writeMostlySmall(UInt64(truncatingIfNeeded: largest), into: t + (at &+ 1))
        t.storeBytes(of: UInt8(ascii: ","), toByteOffset: at, as: UInt8.self)
        at &+= 1
        if let e = expireAtMs { at &+= MemoryModel.writeISODate(ms: e, into: t + at) }
        t.storeBytes(of: UInt8(ascii: "\n"), toByteOffset: at, as: UInt8.self)
        return at &+ 1
    }

    /// A set's, sorted set's or hash's blob: its length is the value's size (a list's is not: lists are sized
    /// as the quicklist a server would build, `quicklistEntry`).
    public mutating func compactValue(_ blob: UnsafeRawBufferPointer) throws {
        if compact { size &+= blob.count }
    }

    @inlinable @inline(__always)
    mutating func element(_ s: RDBString) {
        count &+= 1
        largest = max(largest, MemoryModel.elementLength(s))
    }

    public mutating func stringValue(_ value: RDBString) throws {
        size += MemoryModel.sizeofString(value)
        count = MemoryModel.elementLength(value)
        largest = count
    }

    /// String keys come whole and undecompressed: an LZF string's size is in its header (its data checked only
    /// when no checksum covers it: `checksCompressed`), and only a string short enough to be an integer's text
    /// (20 bytes) is inflated.
    public var stringDelivery: RDBStringDelivery { .wholeRaw }

    public mutating func stringKey(_ key: RDBString, _ info: RDBKeyInfo, value: RDBString, raw: UnsafeRawBufferPointer) throws {
        guard let v = RDBParser.peekString(raw) else {
            throw RDBError(.corruptEncoding, offset: info.valueOffset, "string value is not one whole RDB string", key: key.array)
        }
        // The row without the state a value of elements needs (as `stringValue` would size it).
        var size = MemoryModel.keyOverhead(key, expires: info.expireAtMs != nil)
        var length = v.count
        if let s = v.string {
            size &+= MemoryModel.sizeofString(s)
            length = MemoryModel.elementLength(s)
        } else if length > 20 {
            if checksCompressed {
                guard LZF.isValid(v.compressed, count: length) else { throw Self.lzfCorrupt(key, info, v.compressed.count, length) }
            }
            size &+= MemoryModel.sizeofText(length)
        } else {
            var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)
            let inflated = withUnsafeMutableBytes(of: &buffer) { b in
                let text = UnsafeMutableRawBufferPointer(rebasing: b[0..<length])
                return LZF.decompress(v.compressed, into: text) ? MemoryModel.sizeofString(RDBString(bytes: UnsafeRawBufferPointer(text))) : nil
            }
            guard let inflated else { throw Self.lzfCorrupt(key, info, v.compressed.count, length) }
            size &+= inflated
        }
        if _fastPath(Self.isPlainKey(key)) {  // the row in one run of stores
            out.reserve(Self.rowStartRoom &+ Self.rowEndRoom)
            let s = out.storage
            var at = Self.putRowPrefix(db: info.db, type: "string", s, out.count)
            at = Self.putPlainKey(key.bytes, s, at)
            at = Self.putSizeAndEncoding(size, "string", s, at)
            out.count = Self.putRowTail(count: length, largest: length, expireAtMs: info.expireAtMs, s, at)
            out.commit()
            try out.flushIfNeeded()
        } else {
            Self.writeRowStart(key, db: info.db, kind: .string, into: out)
            try Self.writeRowEnd(size: size, encoding: "string", count: length, largest: length, expireAtMs: info.expireAtMs, into: out)
        }
    }

    static func lzfCorrupt(_ key: RDBString, _ info: RDBKeyInfo, _ clen: Int, _ ulen: Int) -> RDBError {
        var e = RDBParser.lzfCorrupt(at: info.valueOffset, clen, ulen)
        e.key = key.array
        return e
    }

    @inlinable @inline(__always)
    public mutating func listElement(_ e: RDBString) throws {
        Self.quicklistEntry(e, count: &count, largest: &largest, size: &size, previous: &prevZipEntry, nodes: &nodes,
                            nodeBytes: &nodeBytes)
    }

    /// A node's elements in one loop, the model's state in locals (stored back once per node, not per element).
    @inlinable
    public mutating func listElements<R: RDBElementReader>(from reader: inout R) throws {
        var count = self.count, largest = self.largest, size = self.size
        var previous = prevZipEntry, nodes = self.nodes, nodeBytes = self.nodeBytes
        var elements = reader  // (its position in registers, not stored and loaded again per element)
        defer {
            reader = elements
            self.count = count
            self.largest = largest
            self.size = size
            prevZipEntry = previous
            self.nodes = nodes
            self.nodeBytes = nodeBytes
        }
        while let e = try elements.next() {
            Self.quicklistEntry(e, count: &count, largest: &largest, size: &size, previous: &previous, nodes: &nodes,
                                nodeBytes: &nodeBytes)
        }
    }

    /// A list element in rdbtools' quicklist model: a ziplist entry after the previous one, in ziplist nodes of
    /// at most `quicklistNodeBytes`.
    @inlinable @inline(__always)
    static func quicklistEntry(_ e: RDBString, count: inout Int, largest: inout Int, size: inout Int, previous: inout Int,
                               nodes: inout Int, nodeBytes: inout Int) {
        count &+= 1
        largest = max(largest, MemoryModel.elementLength(e))
        let entry = MemoryModel.ziplistEntry(.init(e), previous: previous)
        if nodes == 0 || nodeBytes &+ entry > MemoryModel.quicklistNodeBytes {
            nodes &+= 1
            nodeBytes = 0
        }
        nodeBytes &+= entry
        previous = entry
        size &+= entry
    }

    @inlinable @inline(__always)
    public mutating func setMember(_ m: RDBString) throws {
        element(m)
        if _fastPath(!compact) { size &+= MemoryModel.dictEntry &+ MemoryModel.sizeofString(m) }
    }

    /// A hash table's members in one loop (`tally`).
    @inlinable
    public mutating func setMembers(from run: inout RDBStringRun) throws {
        try tally(&run) { run, count, largest, size in
            while let m = try run.next() {
                count &+= 1
                let (l, s) = MemoryModel.lengthAndSize(m)
                largest = max(largest, l)
                size &+= MemoryModel.dictEntry &+ s
            }
        }
    }

    /// Runs `body` over the elements of a hash table's value with the model's count, largest and size, and the
    /// run's cursor, in locals (registers, rather than stored and loaded again per element), stored back once.
    /// (Hash-table encodings only, never `compact`.)
    @inlinable @inline(__always)
    mutating func tally(_ run: inout RDBStringRun,
                        _ body: (inout RDBStringRun, inout Int, inout Int, inout Int) throws -> Void) rethrows {
        var count = self.count, largest = self.largest, size = self.size
        var elements = run
        defer {
            run = elements
            self.count = count
            self.largest = largest
            self.size = size
        }
        try body(&elements, &count, &largest, &size)
    }

    /// A score the file stores as text (ziplist/listpack) is in the blob's length: not parsed.
    @inlinable
    public mutating func zsetMember(_ m: RDBString, scoreText: RDBString) throws {
        zsetEntry(m)
    }

    @inlinable @inline(__always)
    public mutating func zsetMember(_ m: RDBString, score: Double) throws {
        zsetEntry(m)
    }

    /// A member (the scores do not count: a skiplist's are in its nodes, a compact encoding's in its blob).
    @inlinable @inline(__always)
    mutating func zsetEntry(_ m: RDBString) {
        element(m)
        if _fastPath(!compact) { size &+= 8 &+ MemoryModel.sizeofString(m) &+ MemoryModel.skiplistNode }
    }

    /// A skiplist's members in one loop (`tally`; the scores do not count).
    @inlinable
    public mutating func zsetMembers(from run: inout RDBStringRun) throws {
        try tally(&run) { run, count, largest, size in
            while let (m, _) = try run.nextScored() {
                count &+= 1
                let (l, s) = MemoryModel.lengthAndSize(m)
                largest = max(largest, l)
                size &+= 8 &+ s &+ MemoryModel.skiplistNode
            }
        }
    }

    @inlinable @inline(__always)
    public mutating func hashField(_ f: RDBString, value: RDBString, expireAtMs: Int64?) throws {
        count &+= 1
        // Two-argument `max`s: the three-argument one is variadic (an array per call).
        largest = max(largest, max(MemoryModel.elementLength(f), MemoryModel.elementLength(value)))
        if _fastPath(!compact) {
            size &+= MemoryModel.dictEntry &+ MemoryModel.sizeofString(f) &+ MemoryModel.sizeofString(value)
        } else if info.type.encoding == .hashZipmap {
            zipmapField(f, value: value)
        }
    }

    /// A hash table's fields in one loop (`tally`).
    @inlinable
    public mutating func hashFields(from run: inout RDBStringRun) throws {
        try tally(&run) { run, count, largest, size in
            while let (f, v) = try run.nextPair() {
                count &+= 1
                let (fl, fs) = MemoryModel.lengthAndSize(f)
                let (vl, vs) = MemoryModel.lengthAndSize(v)
                largest = max(largest, max(fl, vl))
                size &+= MemoryModel.dictEntry &+ fs &+ vs
            }
        }
    }

    /// As rdbtools: numbers in a zipmap count as integers (the server turns zipmaps into ziplists, which store
    /// them as such).
    @usableFromInline @inline(never)
    mutating func zipmapField(_ f: RDBString, value: RDBString) {
        if f.integerValue != nil || value.integerValue != nil { largest = max(largest, 8) }
    }

    public mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws {
        stream.beginEntry(id, fieldCount: fieldCount)
    }

    public mutating func streamEntryField(_ field: RDBString, value: RDBString) throws {
        stream.field(field, value)
    }

    public mutating func endStreamEntry() throws {
        stream.endEntry()
    }

    public mutating func streamMetadata(_ m: RDBStreamMetadata) throws {
        stream.closeNode()
        count = Int(clamping: m.length)
        largest = stream.largestNode
        size += 64 + stream.nodesBytes + MemoryModel.radixTree(stream.nodes)
    }

    public mutating func beginStreamGroup(_ g: RDBStreamGroup) throws {
        size += 32 + MemoryModel.radixTree(g.pendingCount) + 24 * g.pendingCount
    }

    public mutating func beginStreamConsumer(_ c: RDBStreamConsumer) throws {
        size += 24 + MemoryModel.sizeofString(c.name) + MemoryModel.radixTree(c.pendingCount)
    }

    public mutating func arrayElement(index: UInt64, _ value: RDBArrayValue) throws {
        count += 1
        size += 16
        switch value {
        case .string(let s):
            size += MemoryModel.sizeofString(s)
            largest = max(largest, MemoryModel.elementLength(s))
        case .integer, .double:
            largest = max(largest, 8)
        }
    }

    public mutating func moduleValue(_ module: RDBModuleID, raw: UnsafeRawBufferPointer) throws {
        size += 9 + raw.count
        moduleName = module.name
        count = 1
        largest = size
    }

    public mutating func endKey() throws {
        let encoding: StaticString
        switch info.kind {
        case .list:
            encoding = "quicklist"
            size += (32 + 48 * nodes) + 11 * nodes
        case .stream:
            encoding = "listpack"
        case .module:
            encoding = ""  // the module's name instead (`writeRowEnd`)
        default:
            encoding = info.type.encoding.staticName
        }
        switch info.type.encoding {
        case .set, .hash, .hashMetadata, .hashMetadataPreGA, .valkeyHash2:
            size += MemoryModel.hashTable(count)
        case .zset, .zset2:
            size += 48 + MemoryModel.hashTable(count) + (64 * count) / 3
        default:
            break
        }
        try Self.writeRowEnd(size: size, encoding: encoding, module: info.kind == .module ? moduleName : nil, count: count,
                             largest: largest, expireAtMs: info.expireAtMs, into: out)
    }

    /// Salvage mode: the key's value was given up on; its row goes.
    public mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws {
        out.rollback()
    }

    public mutating func endFile(checksum: RDBChecksumStatus) throws {
        try out.flush()
    }
}
