import RDBKit

/// Writes the layout of redis-rdb-tools' `rdb --command json`, so scripts written for that tool keep working:
/// one JSON array per input file, holding one object per database (in the order of the file's SELECTDB records,
/// without the database number), each mapping key → value:
///
/// ```
/// [{
/// "key":"value",
/// "list":["a","b"]},{
/// "key_in_db_2":"x"}]
/// ```
///
/// - string → string; list, set → array of strings (in file order); zset → object member → score; hash → object
///   field → value.
/// - Scores are JSON numbers in the shortest form that round-trips (integral scores without a fraction),
///   infinities as the strings `"inf"` / `"-inf"`. (rdbtools writes every score as a string, in whatever form it
///   had: the text stored in the file, or Python's `repr` of the double.)
/// - stream → `{"entries":[{"id":"ms-seq","fields":[f1,v1,...]}],"length":N,"last_id":"ms-seq","groups":[...]}`,
///   each group `{"name","last_delivered_id","entries_read","pending":[{"id","consumer","delivery_count",
///   "delivery_time_ms"}],"consumers":[{"name","seen_time_ms","active_time_ms","pending":[ids]}]}`
///   (rdbtools writes `{}`).
/// - module → `{"module":NAME,"version":N,"raw":BASE64}` (rdbtools writes `{}`); array (type 28) →
///   `[[index, value], ...]`.
/// - Byte strings follow `binary` (see `BinaryMode`; rdbtools instead writes each byte of an invalid UTF-8
///   sequence as the four characters `\xHH`, which is ambiguous with the same text in the data).
/// - Expiries, hash-field TTLs, idle/freq are not part of this layout (use `JSONLWriter`). Keys whose collection
///   is empty (the server drops them on load) are left out; rdbtools writes them (`"k":[]`).
///
/// A database record is opened by `beginDatabase` (so a database whose keys are all filtered out still shows as
/// `{}`, as in rdbtools); keys before any SELECTDB open database 0's object. The array is closed by `endFile`;
/// after an error, `finish()` closes what is open so that the output up to the last complete key is a valid
/// document. Each input file is its own array, ended by a newline. The output is flushed between keys, and within
/// a key only once its output passes `out.keyChunkThreshold` and keys are not kept whole
/// (`OutputBuffer.keepsWholeKeys`); when a key failed after part of it was written out
/// (`out.keepsPartOfKey`), `finish()` cannot make the document valid.
public struct JSONWriter: RDBVisitor {
    public let out: OutputBuffer
    public var binary: BinaryMode

    var arrayOpen = false
    var dbOpen = false
    var firstKeyInDB = true
    var first = true
    var kind: RDBKind = .string
    var stream = StreamJSON(consumerBufferThreshold: 1 << 12)

    public init(out: OutputBuffer, binary: BinaryMode = .escape) {
        self.out = out
        self.binary = binary
    }

    @inline(__always)
    mutating func separator() throws {
        try out.appendJSONSeparator(first: &first)
    }

    mutating func openArray() {
        if !arrayOpen {
            out.append(UInt8(ascii: "["))
            arrayOpen = true
            dbOpen = false
            out.commit()
        }
    }

    public mutating func beginFile(_ header: RDBHeader) throws {
        openArray()
        out.commit()
    }

    public mutating func beginDatabase(_ db: Int) throws {
        openArray()
        out.append(dbOpen ? "},{" : "{")
        dbOpen = true
        firstKeyInDB = true
        out.commit()
    }

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        openArray()
        if !dbOpen {
            out.append(UInt8(ascii: "{"))
            dbOpen = true
            firstKeyInDB = true
            out.commit()  // a rollback of this key keeps the object open, as `dbOpen` says
        }
        if firstKeyInDB { firstKeyInDB = false } else { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\n"))
        out.appendJSONString(key, mode: binary)
        out.append(UInt8(ascii: ":"))
        kind = info.kind
        first = true
        switch kind {
        case .list, .set, .array: out.append(UInt8(ascii: "["))
        case .zset, .hash: out.append(UInt8(ascii: "{"))
        case .stream:
            out.append("{\"entries\":[")
            stream.beginKey()
        case .string, .module: break
        }
        return .decode
    }

    public mutating func stringValue(_ value: RDBString) throws {
        out.appendJSONString(value, mode: binary)
    }

    public mutating func listElement(_ element: RDBString) throws {
        try separator()
        out.appendJSONString(element, mode: binary)
    }

    public mutating func setMember(_ member: RDBString) throws {
        try separator()
        out.appendJSONString(member, mode: binary)
    }

    public mutating func zsetMember(_ member: RDBString, score: Double) throws {
        try separator()
        out.appendJSONString(member, mode: binary)
        out.append(UInt8(ascii: ":"))
        out.appendJSONScore(score)
    }

    /// A score stored as text: copied when it already is what `appendJSONScore` would write.
    public mutating func zsetMember(_ member: RDBString, scoreText: RDBString) throws {
        try separator()
        out.appendJSONString(member, mode: binary)
        out.append(UInt8(ascii: ":"))
        try out.appendJSONScore(text: scoreText)
    }

    public mutating func hashField(_ field: RDBString, value: RDBString, expireAtMs: Int64?) throws {
        try separator()
        out.appendJSONString(field, mode: binary)
        out.append(UInt8(ascii: ":"))
        out.appendJSONString(value, mode: binary)
    }

    public mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws {
        try separator()
        stream.beginEntry(id, out)
    }

    public mutating func streamEntryField(_ field: RDBString, value: RDBString) throws {
        stream.entryField(field, value, out, binary)
    }

    public mutating func endStreamEntry() throws {
        stream.endEntry(out)
    }

    public mutating func streamMetadata(_ m: RDBStreamMetadata) throws {
        out.append("],\"length\":")
        out.append(unsigned: m.length)
        out.append(",\"last_id\":")
        out.appendJSONStreamID(m.lastID)
        out.append(",\"groups\":[")
    }

    public mutating func beginStreamGroup(_ g: RDBStreamGroup) throws {
        stream.beginGroup(g, out, binary)
    }

    public mutating func streamPendingEntry(_ e: RDBStreamPendingEntry) throws {
        stream.pendingEntry(e)
    }

    public mutating func beginStreamConsumer(_ c: RDBStreamConsumer) throws {
        stream.beginConsumer(c, binary)
    }

    public mutating func streamConsumerPendingID(_ id: StreamID) throws {
        stream.consumerPendingID(id)
    }

    public mutating func endStreamConsumer() throws {
        stream.endConsumer()
    }

    public mutating func endStreamGroup() throws {
        stream.endGroup(out, binary)
    }

    public mutating func arrayElement(index: UInt64, _ value: RDBArrayValue) throws {
        try separator()
        out.appendJSONArrayElement(index: index, value, mode: binary)
    }

    public mutating func moduleValue(_ module: RDBModuleID, raw: UnsafeRawBufferPointer) throws {
        out.appendJSONModuleValue(module, raw: raw)
    }

    public mutating func endKey() throws {
        switch kind {
        case .list, .set, .array: out.append(UInt8(ascii: "]"))
        case .zset, .hash: out.append(UInt8(ascii: "}"))
        case .stream: out.append("]}")
        case .string, .module: break
        }
        out.commit()
        try out.flushIfNeeded()
    }

    public mutating func endFile(checksum: RDBChecksumStatus) throws {
        finish()
        try out.flush()
    }

    /// Closes the open database object and the array (after a decoding error: call `out.rollback()` first so
    /// that a partly written key is dropped). Does nothing when nothing is open.
    public mutating func finish() {
        guard arrayOpen else { return }
        if dbOpen { out.append(UInt8(ascii: "}")) }
        out.append("]\n")
        arrayOpen = false
        dbOpen = false
        out.commit()
    }
}
