import RDBKit

/// Writes one JSON object per key, one per line:
/// `{"db":0,"key":K,"type":T,"expire_at_ms":N|null,"value":V}`.
///
/// V is a string (string), an array of strings (list, set), an array of `[member, score]` (zset), an object
/// field → value (hash, with an extra top-level `"field_expire_at_ms"` object when fields have TTLs), an
/// object with `"entries"`, `"length"`, `"last_id"`, `"first_id"`, `"max_deleted_entry_id"`,
/// `"entries_added"` and `"groups"` (stream), `[[index, value], ...]` (array), or
/// `{"module":NAME,"version":N,"raw":BASE64}` (module). The output is flushed between keys, and within a
/// key (part of its line) only once the key's output passes `out.keyChunkThreshold` and keys are not kept
/// whole (`OutputBuffer.keepsWholeKeys`): `abortKey` drops a failed key whole when they are.
public struct JSONLWriter: RDBVisitor {
    public let out: OutputBuffer
    public var binary: BinaryMode
    /// Add `"encoding"`, `"idle"` and `"freq"` fields.
    public var includeMetadata: Bool

    var first = true
    var kind: RDBKind = .string
    var keyStart = 0
    let fieldTTLs = OutputBuffer(target: nil, flushThreshold: 1 << 16)
    var hasFieldTTLs = false
    var stream = StreamJSON(consumerBufferThreshold: 1 << 16)

    public init(out: OutputBuffer, binary: BinaryMode = .escape, includeMetadata: Bool = false) {
        self.out = out
        self.binary = binary
        self.includeMetadata = includeMetadata
    }

    @inline(__always)
    mutating func separator() throws {
        try out.appendJSONSeparator(first: &first)
    }

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        keyStart = out.pendingCount
        kind = info.kind
        first = true
        out.append("{\"db\":")
        out.append(decimal: info.db)
        out.append(",\"key\":")
        out.appendJSONString(key, mode: binary)
        out.append(",\"type\":\"")
        out.append(info.kind.staticName)
        out.append("\",\"expire_at_ms\":")
        if let e = info.expireAtMs { out.append(decimal: e) } else { out.append("null") }
        if includeMetadata {
            out.append(",\"encoding\":\"")
            out.append(info.type.encoding.name)
            out.append("\"")
            if let i = info.idleSeconds {
                out.append(",\"idle\":")
                out.append(unsigned: i)
            }
            if let f = info.lfuFrequency {
                out.append(",\"freq\":")
                out.append(decimal: Int64(f))
            }
        }
        out.append(",\"value\":")
        switch info.kind {
        case .list, .set, .zset, .array: out.append(UInt8(ascii: "["))
        case .hash:
            out.append(UInt8(ascii: "{"))
            hasFieldTTLs = false
            _ = fieldTTLs.take()
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
        out.append(UInt8(ascii: "["))
        out.appendJSONString(member, mode: binary)
        out.append(UInt8(ascii: ","))
        out.appendJSONScore(score)
        out.append(UInt8(ascii: "]"))
    }

    /// A score stored as text: copied when it already is what `appendJSONScore` would write.
    public mutating func zsetMember(_ member: RDBString, scoreText: RDBString) throws {
        try separator()
        out.append(UInt8(ascii: "["))
        out.appendJSONString(member, mode: binary)
        out.append(UInt8(ascii: ","))
        try out.appendJSONScore(text: scoreText)
        out.append(UInt8(ascii: "]"))
    }

    public mutating func hashField(_ field: RDBString, value: RDBString, expireAtMs: Int64?) throws {
        try separator()
        out.appendJSONString(field, mode: binary)
        out.append(UInt8(ascii: ":"))
        out.appendJSONString(value, mode: binary)
        if let e = expireAtMs {
            if hasFieldTTLs { fieldTTLs.append(UInt8(ascii: ",")) }
            hasFieldTTLs = true
            fieldTTLs.appendJSONString(field, mode: binary)
            fieldTTLs.append(UInt8(ascii: ":"))
            fieldTTLs.append(decimal: e)
        }
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
        out.append(",\"first_id\":")
        out.appendJSONStreamID(m.firstID)
        out.append(",\"max_deleted_entry_id\":")
        out.appendJSONStreamID(m.maxDeletedEntryID)
        out.append(",\"entries_added\":")
        out.append(unsigned: m.entriesAdded)
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
        case .list, .set, .zset, .array: out.append(UInt8(ascii: "]"))
        case .hash:
            out.append(UInt8(ascii: "}"))
            if hasFieldTTLs {
                out.append(",\"field_expire_at_ms\":{")
                out.append(fieldTTLs.bytes)
                out.append(UInt8(ascii: "}"))
            }
        case .stream:
            out.append("]}")
        case .string, .module: break
        }
        out.append("}\n")
        out.commit()
        try out.flushIfNeeded()
    }

    public mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws {
        out.rollback()
    }

    public mutating func endFile(checksum: RDBChecksumStatus) throws {
        try out.flush()
    }
}
