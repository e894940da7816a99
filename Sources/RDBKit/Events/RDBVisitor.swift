/// What a sink wants done with a key's value, answered at `beginKey`.
public enum RDBKeyAction: Sendable {
    /// Decode the value and deliver its elements.
    case decode
    /// Step over the value without decompressing or parsing it; no further events for this key
    /// (not even `endKey`).
    case skip
    /// Step over the value and deliver its bytes as they are in the file (`rawValue`), then `endKey`.
    /// This is what a RESTORE writer uses to pass values through without re-encoding.
    case raw
}

/// Everything known about a key before its value is read.
public struct RDBKeyInfo: Sendable {
    /// Database index (from the last SELECTDB; 0 before any).
    public var db: Int
    /// The type byte and what it means in this file.
    public var type: RDBValueType
    /// Absolute expiry in Unix milliseconds, if the key has one.
    public var expireAtMs: Int64?
    /// LRU idle time in seconds (IDLE opcode), if present.
    public var idleSeconds: UInt64?
    /// LFU counter (FREQ opcode), if present.
    public var lfuFrequency: UInt8?
    /// Absolute offset of the first byte of the key's record (its first prefix opcode or its type byte).
    public var recordOffset: Int
    /// Absolute offset of the value (right after the key name).
    public var valueOffset: Int
    /// Size of the value in the file, in bytes: known before the value is decoded only when
    /// `RDBDecoderOptions.measureValues` is on (the decoder steps over the value first); nil otherwise.
    public var valueSize: Int?

    @inlinable public var kind: RDBKind { type.kind }

    @inlinable
    public init(
        db: Int, type: RDBValueType, expireAtMs: Int64?, idleSeconds: UInt64?, lfuFrequency: UInt8?,
        recordOffset: Int, valueOffset: Int, valueSize: Int? = nil
    ) {
        self.valueSize = valueSize
        self.db = db
        self.type = type
        self.expireAtMs = expireAtMs
        self.idleSeconds = idleSeconds
        self.lfuFrequency = lfuFrequency
        self.recordOffset = recordOffset
        self.valueOffset = valueOffset
    }
}

/// A stream entry ID (`ms-seq`).
@frozen
public struct StreamID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var ms: UInt64
    public var seq: UInt64

    @inlinable
    public init(ms: UInt64, seq: UInt64) {
        self.ms = ms
        self.seq = seq
    }

    public static func < (a: StreamID, b: StreamID) -> Bool { (a.ms, a.seq) < (b.ms, b.seq) }
    public var description: String { "\(ms)-\(seq)" }
}

/// A stream's own fields, delivered after its entries.
public struct RDBStreamMetadata: Sendable {
    /// Live entries (`XLEN`).
    public var length: UInt64
    public var lastID: StreamID
    /// First live ID (v2+; for v1 derived from the entries, 0-0 when empty).
    public var firstID: StreamID
    /// v2+; 0-0 for v1.
    public var maxDeletedEntryID: StreamID
    /// v2+; equals `length` for v1.
    public var entriesAdded: UInt64
    /// Number of consumer groups that follow.
    public var groupCount: Int
    /// Stream type version 1...5.
    public var version: Int

    @inlinable
    public init(length: UInt64, lastID: StreamID, firstID: StreamID, maxDeletedEntryID: StreamID, entriesAdded: UInt64, groupCount: Int, version: Int) {
        self.length = length
        self.lastID = lastID
        self.firstID = firstID
        self.maxDeletedEntryID = maxDeletedEntryID
        self.entriesAdded = entriesAdded
        self.groupCount = groupCount
        self.version = version
    }
}

/// A consumer group, delivered before its PEL and consumers.
public struct RDBStreamGroup {
    public var name: RDBString
    public var lastDeliveredID: StreamID
    /// v2+; nil when unknown (stored as -1) or in v1 streams.
    public var entriesRead: Int64?
    public var pendingCount: Int

    @inlinable
    public init(name: RDBString, lastDeliveredID: StreamID, entriesRead: Int64?, pendingCount: Int) {
        self.name = name
        self.lastDeliveredID = lastDeliveredID
        self.entriesRead = entriesRead
        self.pendingCount = pendingCount
    }
}

/// One entry of a group's pending entries list.
public struct RDBStreamPendingEntry: Sendable {
    public var id: StreamID
    public var deliveryTimeMs: Int64
    public var deliveryCount: UInt64

    @inlinable
    public init(id: StreamID, deliveryTimeMs: Int64, deliveryCount: UInt64) {
        self.id = id
        self.deliveryTimeMs = deliveryTimeMs
        self.deliveryCount = deliveryCount
    }
}

/// A consumer, delivered before the IDs it owns.
public struct RDBStreamConsumer {
    public var name: RDBString
    public var seenTimeMs: Int64
    /// v3+; equals `seenTimeMs` before.
    public var activeTimeMs: Int64
    public var pendingCount: Int

    @inlinable
    public init(name: RDBString, seenTimeMs: Int64, activeTimeMs: Int64, pendingCount: Int) {
        self.name = name
        self.seenTimeMs = seenTimeMs
        self.activeTimeMs = activeTimeMs
        self.pendingCount = pendingCount
    }
}

/// An element of an array value (type 28).
@frozen
public enum RDBArrayValue {
    case string(RDBString)
    case integer(Int64)
    case double(Double)
}

/// A module type id: 9-character name and encoding version.
public struct RDBModuleID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    static let charset = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public var name: String {
        var s = [UInt8](repeating: 0, count: 9)
        for i in 0..<9 { s[8 - i] = RDBModuleID.charset[Int((rawValue >> (10 + 6 * UInt64(i))) & 63)] }
        return String(decoding: s, as: UTF8.self)
    }

    public var encodingVersion: Int { Int(rawValue & 1023) }
    public var description: String { "\(name)/\(encodingVersion)" }
}

/// How the file's checksum turned out.
public enum RDBChecksumStatus: Sendable, Hashable {
    /// The CRC64 trailer matched.
    case verified(UInt64)
    /// The trailer was 0: the writer did not compute one.
    case notWritten
    /// RDB versions before 5 have no trailer.
    case absent
    /// Verification was turned off and the stored value was not checked.
    case unchecked(UInt64)
    /// Salvage mode only: the trailer did not match (without salvage this is an error).
    case mismatch(stored: UInt64, computed: UInt64)
}

/// How a sink takes string keys (`RDBVisitor.stringDelivery`).
public enum RDBStringDelivery: Sendable {
    /// `beginKey`, then `stringValue` or `rawValue` as it answers, then `endKey`.
    case events
    /// One `stringKey` call with the value read (decompressed, or as an integer).
    case whole
    /// One `stringKey` call with the value's bytes as in the file only.
    case wholeRaw
}

/// The sink side of the decoder: one method per event, in the order the file holds them.
///
/// Every method has a default that does nothing, so a sink implements only what it needs. Views
/// (`RDBString`, raw buffers) are valid during the call only. A sink may throw to stop decoding.
///
/// Per key: `beginKey` (answer `.decode`, `.skip` or `.raw`), then the value's events (`stringValue`,
/// `listElement`, `setMember`, `zsetMember`, `hashField`, the stream events, `arrayElement`,
/// `moduleValue`, or `rawValue`), then `endKey`. A key the server would drop on load because its
/// collection is empty is reported through `droppedEmptyKey` instead, with no other events. A sink that
/// asks for them (`stringDelivery`) gets each string key in one call instead (`stringKey`).
public protocol RDBVisitor {
    /// The header: family and version.
    mutating func beginFile(_ header: RDBHeader) throws
    /// An AUX field (`redis-ver`, `ctime`, ...).
    mutating func auxField(key: RDBString, value: RDBString) throws
    /// A MODULE_AUX record: the module, when it applies (1 before keys, 2 after), and its raw body
    /// (the opcode-tagged items up to and including the EOF marker).
    mutating func moduleAux(_ module: RDBModuleID, when: UInt64, body: UnsafeRawBufferPointer) throws
    /// A function library (FUNCTION2): its whole source, starting with the `#!engine name=lib` line.
    mutating func functionLibrary(_ code: RDBString) throws
    /// A pre-GA function (opcode 0xF6, Redis 7.0 release candidates).
    mutating func functionPreGA(name: RDBString, engine: RDBString, description: RDBString?, code: RDBString) throws
    /// SELECTDB.
    mutating func beginDatabase(_ db: Int) throws
    /// RESIZEDB: size hints for the current database.
    mutating func resizeDatabase(keys: UInt64, expires: UInt64) throws
    /// SLOT_INFO (Redis cluster): size hints for the slot whose keys follow.
    mutating func slotInfo(slot: UInt64, keys: UInt64, expires: UInt64) throws
    /// SLOT_IMPORT (Valkey 9): an atomic slot migration job and its slot ranges.
    mutating func slotImport(job: RDBString, ranges: [ClosedRange<UInt64>]) throws
    /// KEY_META (Redis 8.6): the raw metadata block that precedes the next key.
    mutating func keyMetadata(_ raw: UnsafeRawBufferPointer) throws

    /// A key starts. Answer what to do with its value.
    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction
    /// A key whose collection is empty: the server drops it on load, so no value events follow.
    mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws
    /// The value of a string key.
    mutating func stringValue(_ value: RDBString) throws
    /// A value stored as one compact blob (zipmap, ziplist, intset or listpack; a quicklist's nodes are not
    /// reported): its bytes, decompressed, as the server holds them, before its elements are reported as
    /// usual. A sink that sizes values (the memory report) takes the blob's length here instead of adding up
    /// its elements.
    mutating func compactValue(_ blob: UnsafeRawBufferPointer) throws
    mutating func listElement(_ element: RDBString) throws
    /// The elements of one compact run of a list (a quicklist node's ziplist or listpack, or a small list's
    /// ziplist), in order. The default sends each to `listElement`; a sink that only does arithmetic per
    /// element (the memory report) takes them in one loop, its state in registers rather than stored and
    /// loaded again per event. A forwarding visitor that handles `listElement` itself must handle this too.
    mutating func listElements<R: RDBElementReader>(from reader: inout R) throws
    mutating func setMember(_ member: RDBString) throws
    /// The members of a set stored as a hash table, in order; the default sends each to `setMember` (as
    /// `listElements`: a sink that only does arithmetic per member takes them in one loop). A forwarding visitor
    /// that handles `setMember` itself must handle this too.
    mutating func setMembers(from run: inout RDBStringRun) throws
    mutating func zsetMember(_ member: RDBString, score: Double) throws
    /// The members of a sorted set stored as a skiplist with binary scores (RDB type 5), in order; the default
    /// sends each to `zsetMember(_:score:)`. A forwarding visitor that handles that itself must handle this too.
    mutating func zsetMembers(from run: inout RDBStringRun) throws
    /// A zset member whose score the file stores as text (ziplist/listpack entries, type 3). The default parses
    /// the text (as strtod does) and calls `zsetMember(_:score:)`; a sink that can use the text as it is (a RESP
    /// writer) implements this to skip the parse. An integer-encoded score arrives as an integer `RDBString`.
    mutating func zsetMember(_ member: RDBString, scoreText: RDBString) throws
    /// A hash field. `expireAtMs` is the field's absolute TTL in Unix ms (hash-field expiration), if any.
    mutating func hashField(_ field: RDBString, value: RDBString, expireAtMs: Int64?) throws
    /// The fields of a hash stored as a hash table (without field TTLs), in order; the default sends each to
    /// `hashField`. A forwarding visitor that handles `hashField` itself must handle this too.
    mutating func hashFields(from run: inout RDBStringRun) throws
    /// A live stream entry begins (deleted entries are not reported).
    mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws
    mutating func streamEntryField(_ field: RDBString, value: RDBString) throws
    mutating func endStreamEntry() throws
    /// The stream's own fields, after all entries and before the groups.
    mutating func streamMetadata(_ metadata: RDBStreamMetadata) throws
    mutating func beginStreamGroup(_ group: RDBStreamGroup) throws
    mutating func streamPendingEntry(_ entry: RDBStreamPendingEntry) throws
    mutating func beginStreamConsumer(_ consumer: RDBStreamConsumer) throws
    /// An ID the current consumer owns (it is in the group's PEL).
    mutating func streamConsumerPendingID(_ id: StreamID) throws
    mutating func endStreamConsumer() throws
    /// A PEL entry with no owner (stream v5 NACK zone).
    mutating func streamNackedID(_ id: StreamID) throws
    mutating func endStreamGroup() throws
    /// Stream v4+ idempotency settings.
    mutating func streamIdempotencyConfig(durationSeconds: UInt64, maxEntries: UInt64) throws
    /// Stream v4+: one recorded idempotent ID of a producer.
    mutating func streamIdempotentID(producer: RDBString, iid: RDBString, id: StreamID) throws
    /// Stream v4+ idempotency counters.
    mutating func streamIdempotencyStats(iidsAdded: UInt64, iidsDuplicates: UInt64) throws
    /// An element of an array value (type 28), in ascending index order.
    mutating func arrayElement(index: UInt64, _ value: RDBArrayValue) throws
    /// A module value: the module and the value's raw bytes as in the file (from the module id on).
    mutating func moduleValue(_ module: RDBModuleID, raw: UnsafeRawBufferPointer) throws
    /// The value's bytes as in the file, when `beginKey` answered `.raw`.
    mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws
    /// The key's value is complete.
    mutating func endKey() throws
    /// Salvage mode only: the key's value turned out to be corrupt after `beginKey` (and maybe some elements).
    /// A sink that writes per key must discard what it wrote for this key. `lostRange` is the record's bytes.
    mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws
    /// The EOF opcode and the checksum result.
    mutating func endFile(checksum: RDBChecksumStatus) throws

    /// How the next string key comes (asked before each one, unless in salvage mode, where a corrupt value
    /// must be reported after `beginKey`): as events, or whole through `stringKey`, its value read or not.
    var stringDelivery: RDBStringDelivery { get }
    /// A string key whole: `raw` is its value as in the file and, when `stringDelivery` is `.whole`, `value`
    /// the value read (`.wholeRaw`: empty, the value is not decompressed). It stands for `beginKey` and, as
    /// that would have answered, `stringValue` or `rawValue`, then `endKey`; that is what the default does
    /// (for `.whole`). For the commonest record of most files, one call instead of three, in which a writer
    /// can lay out the whole command at once.
    mutating func stringKey(_ key: RDBString, _ info: RDBKeyInfo, value: RDBString, raw: UnsafeRawBufferPointer) throws
}

extension RDBVisitor {
    @inlinable @inline(__always)
    public mutating func listElements<R: RDBElementReader>(from reader: inout R) throws {
        while let e = try reader.next() { try listElement(e) }
    }
    @inlinable @inline(__always)
    public mutating func setMembers(from run: inout RDBStringRun) throws {
        while let m = try run.next() { try setMember(m) }
    }
    @inlinable @inline(__always)
    public mutating func zsetMembers(from run: inout RDBStringRun) throws {
        while let (m, score) = try run.nextScored() { try zsetMember(m, score: score) }
    }
    @inlinable @inline(__always)
    public mutating func hashFields(from run: inout RDBStringRun) throws {
        while let (f, v) = try run.nextPair() { try hashField(f, value: v, expireAtMs: nil) }
    }
    public mutating func beginFile(_ header: RDBHeader) throws {}
    public mutating func auxField(key: RDBString, value: RDBString) throws {}
    public mutating func moduleAux(_ module: RDBModuleID, when: UInt64, body: UnsafeRawBufferPointer) throws {}
    public mutating func functionLibrary(_ code: RDBString) throws {}
    public mutating func functionPreGA(name: RDBString, engine: RDBString, description: RDBString?, code: RDBString)
        throws
    {}
    public mutating func beginDatabase(_ db: Int) throws {}
    public mutating func resizeDatabase(keys: UInt64, expires: UInt64) throws {}
    public mutating func slotInfo(slot: UInt64, keys: UInt64, expires: UInt64) throws {}
    public mutating func slotImport(job: RDBString, ranges: [ClosedRange<UInt64>]) throws {}
    public mutating func keyMetadata(_ raw: UnsafeRawBufferPointer) throws {}
    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction { .decode }
    @inlinable @inline(__always)
    public mutating func compactValue(_ blob: UnsafeRawBufferPointer) throws {}
    public mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws {}
    public mutating func stringValue(_ value: RDBString) throws {}
    public mutating func listElement(_ element: RDBString) throws {}
    public mutating func setMember(_ member: RDBString) throws {}
    public mutating func zsetMember(_ member: RDBString, score: Double) throws {}
    @inlinable
    public mutating func zsetMember(_ member: RDBString, scoreText: RDBString) throws {
        try zsetMember(member, score: try RDBParser.score(scoreText))
    }
    public mutating func hashField(_ field: RDBString, value: RDBString, expireAtMs: Int64?) throws {}
    public mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws {}
    public mutating func streamEntryField(_ field: RDBString, value: RDBString) throws {}
    public mutating func endStreamEntry() throws {}
    public mutating func streamMetadata(_ metadata: RDBStreamMetadata) throws {}
    public mutating func beginStreamGroup(_ group: RDBStreamGroup) throws {}
    public mutating func streamPendingEntry(_ entry: RDBStreamPendingEntry) throws {}
    public mutating func beginStreamConsumer(_ consumer: RDBStreamConsumer) throws {}
    public mutating func streamConsumerPendingID(_ id: StreamID) throws {}
    public mutating func endStreamConsumer() throws {}
    public mutating func streamNackedID(_ id: StreamID) throws {}
    public mutating func endStreamGroup() throws {}
    public mutating func streamIdempotencyConfig(durationSeconds: UInt64, maxEntries: UInt64) throws {}
    public mutating func streamIdempotentID(producer: RDBString, iid: RDBString, id: StreamID) throws {}
    public mutating func streamIdempotencyStats(iidsAdded: UInt64, iidsDuplicates: UInt64) throws {}
    public mutating func arrayElement(index: UInt64, _ value: RDBArrayValue) throws {}
    public mutating func moduleValue(_ module: RDBModuleID, raw: UnsafeRawBufferPointer) throws {}
    public mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws {}
    public mutating func endKey() throws {}
    public mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws {}
    public mutating func endFile(checksum: RDBChecksumStatus) throws {}
    @inlinable public var stringDelivery: RDBStringDelivery { .events }
    @inlinable
    public mutating func stringKey(_ key: RDBString, _ info: RDBKeyInfo, value: RDBString, raw: UnsafeRawBufferPointer) throws {
        switch try beginKey(key, info) {
        case .decode: try stringValue(value)
        case .skip: return
        case .raw: try rawValue(raw)
        }
        try endKey()
    }
}
