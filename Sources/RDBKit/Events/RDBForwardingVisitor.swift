/// A visitor that wraps another and forwards every event to it.
///
/// Conform, store the wrapped sink in `inner`, and implement only the events you want to change
/// (filters, progress, counters): everything else reaches `inner` unchanged.
public protocol RDBForwardingVisitor: RDBVisitor {
    associatedtype Inner: RDBVisitor
    var inner: Inner { get set }
}

extension RDBForwardingVisitor {
    @inlinable public mutating func beginFile(_ h: RDBHeader) throws { try inner.beginFile(h) }
    @inlinable public mutating func auxField(key: RDBString, value: RDBString) throws { try inner.auxField(key: key, value: value) }
    @inlinable public mutating func moduleAux(_ m: RDBModuleID, when: UInt64, body: UnsafeRawBufferPointer) throws { try inner.moduleAux(m, when: when, body: body) }
    @inlinable public mutating func functionLibrary(_ code: RDBString) throws { try inner.functionLibrary(code) }
    @inlinable public mutating func functionPreGA(name: RDBString, engine: RDBString, description: RDBString?, code: RDBString) throws {
        try inner.functionPreGA(name: name, engine: engine, description: description, code: code)
    }
    @inlinable public mutating func beginDatabase(_ db: Int) throws { try inner.beginDatabase(db) }
    @inlinable public mutating func resizeDatabase(keys: UInt64, expires: UInt64) throws { try inner.resizeDatabase(keys: keys, expires: expires) }
    @inlinable public mutating func slotInfo(slot: UInt64, keys: UInt64, expires: UInt64) throws { try inner.slotInfo(slot: slot, keys: keys, expires: expires) }
    @inlinable public mutating func slotImport(job: RDBString, ranges: [ClosedRange<UInt64>]) throws { try inner.slotImport(job: job, ranges: ranges) }
    @inlinable public mutating func keyMetadata(_ raw: UnsafeRawBufferPointer) throws { try inner.keyMetadata(raw) }
    @inlinable public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction { try inner.beginKey(key, info) }
    @inlinable public mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws { try inner.droppedEmptyKey(key, info) }
    @inlinable public mutating func stringValue(_ v: RDBString) throws { try inner.stringValue(v) }
    @inlinable @inline(__always) public mutating func compactValue(_ blob: UnsafeRawBufferPointer) throws { try inner.compactValue(blob) }
    @inlinable @inline(__always) public mutating func listElement(_ e: RDBString) throws { try inner.listElement(e) }
    @inlinable @inline(__always) public mutating func listElements<R: RDBElementReader>(from reader: inout R) throws {
        try inner.listElements(from: &reader)
    }
    @inlinable @inline(__always) public mutating func setMember(_ m: RDBString) throws { try inner.setMember(m) }
    @inlinable @inline(__always) public mutating func setMembers(from run: inout RDBStringRun) throws { try inner.setMembers(from: &run) }
    @inlinable @inline(__always) public mutating func zsetMember(_ m: RDBString, score: Double) throws { try inner.zsetMember(m, score: score) }
    @inlinable @inline(__always) public mutating func zsetMembers(from run: inout RDBStringRun) throws { try inner.zsetMembers(from: &run) }
    @inlinable @inline(__always) public mutating func zsetMember(_ m: RDBString, scoreText: RDBString) throws { try inner.zsetMember(m, scoreText: scoreText) }
    @inlinable @inline(__always) public mutating func hashField(_ f: RDBString, value: RDBString, expireAtMs: Int64?) throws { try inner.hashField(f, value: value, expireAtMs: expireAtMs) }
    @inlinable @inline(__always) public mutating func hashFields(from run: inout RDBStringRun) throws { try inner.hashFields(from: &run) }
    @inlinable public mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws { try inner.beginStreamEntry(id: id, fieldCount: fieldCount) }
    @inlinable public mutating func streamEntryField(_ f: RDBString, value: RDBString) throws { try inner.streamEntryField(f, value: value) }
    @inlinable public mutating func endStreamEntry() throws { try inner.endStreamEntry() }
    @inlinable public mutating func streamMetadata(_ m: RDBStreamMetadata) throws { try inner.streamMetadata(m) }
    @inlinable public mutating func beginStreamGroup(_ g: RDBStreamGroup) throws { try inner.beginStreamGroup(g) }
    @inlinable public mutating func streamPendingEntry(_ e: RDBStreamPendingEntry) throws { try inner.streamPendingEntry(e) }
    @inlinable public mutating func beginStreamConsumer(_ c: RDBStreamConsumer) throws { try inner.beginStreamConsumer(c) }
    @inlinable public mutating func streamConsumerPendingID(_ id: StreamID) throws { try inner.streamConsumerPendingID(id) }
    @inlinable public mutating func endStreamConsumer() throws { try inner.endStreamConsumer() }
    @inlinable public mutating func streamNackedID(_ id: StreamID) throws { try inner.streamNackedID(id) }
    @inlinable public mutating func endStreamGroup() throws { try inner.endStreamGroup() }
    @inlinable public mutating func streamIdempotencyConfig(durationSeconds: UInt64, maxEntries: UInt64) throws {
        try inner.streamIdempotencyConfig(durationSeconds: durationSeconds, maxEntries: maxEntries)
    }
    @inlinable public mutating func streamIdempotentID(producer: RDBString, iid: RDBString, id: StreamID) throws {
        try inner.streamIdempotentID(producer: producer, iid: iid, id: id)
    }
    @inlinable public mutating func streamIdempotencyStats(iidsAdded: UInt64, iidsDuplicates: UInt64) throws {
        try inner.streamIdempotencyStats(iidsAdded: iidsAdded, iidsDuplicates: iidsDuplicates)
    }
    @inlinable public mutating func arrayElement(index: UInt64, _ value: RDBArrayValue) throws { try inner.arrayElement(index: index, value) }
    @inlinable public mutating func moduleValue(_ m: RDBModuleID, raw: UnsafeRawBufferPointer) throws { try inner.moduleValue(m, raw: raw) }
    @inlinable public mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws { try inner.rawValue(raw) }
    @inlinable public mutating func endKey() throws { try inner.endKey() }
    @inlinable public mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws {
        try inner.abortKey(key, info, error: error, lostRange: lostRange)
    }
    @inlinable public mutating func endFile(checksum: RDBChecksumStatus) throws { try inner.endFile(checksum: checksum) }
}
