import RDBKit

/// What `StatsCollector` found in one file.
public struct RDBStats {
    /// Key counts and sizes of a group of keys (a type in a database, a database, the file).
    public struct Counts: Hashable, Sendable {
        public var keys = 0
        /// Keys with an expiry.
        public var expiring = 0
        /// Serialized size of the values in the file (from right after the key name to the end of the record).
        public var valueBytes = 0
        /// Size of the whole key records in the file: prefix opcodes (expiry, LRU/LFU, metadata), type byte,
        /// key name and value.
        public var recordBytes = 0

        public init() {}

        mutating func add(_ o: Counts) {
            keys += o.keys
            expiring += o.expiring
            valueBytes += o.valueBytes
            recordBytes += o.recordBytes
        }
    }

    public struct Database: Sendable {
        public var db: Int
        public var total = Counts()
        /// Per data type (only the types that occur).
        public var types: [RDBKind: Counts] = [:]
        /// The RESIZEDB hint of the database, if the file has one.
        public var resizeHint: (keys: UInt64, expires: UInt64)?

        public init(db: Int) { self.db = db }
    }

    public struct ModuleAux: Sendable {
        public var module: RDBModuleID
        /// 1: before the keys, 2: after.
        public var when: UInt64
        /// Size of the record's body in the file.
        public var bytes: Int
    }

    public var header: RDBHeader?
    /// AUX fields in file order.
    public var aux: [(key: [UInt8], value: [UInt8])] = []
    /// Databases in ascending order (those with a SELECTDB record or with keys).
    public var databases: [Database] { byDB.values.sorted { $0.db < $1.db } }
    public var total = Counts()
    /// Keys per in-memory encoding name (`RDBEncoding.name`).
    public var encodings: [String: Int] = [:]
    /// Keys whose collection is empty: the server drops them on load (not counted in `total`).
    public var droppedEmptyKeys = 0
    /// Keys already expired at `StatsCollector.now` (nil when no `now` was given); they are counted in `total`.
    public var expiredKeys: Int?
    public var moduleAux: [ModuleAux] = []
    /// Function library names (FUNCTION2 records and pre-GA functions).
    public var functions: [String] = []
    /// Checksum result (set at the end of the file).
    public var checksum: RDBChecksumStatus?

    var byDB: [Int: Database] = [:]

    public init() {}
}

/// Collects statistics (keys, expiring keys and serialized bytes per database and type, file version, AUX fields,
/// checksum status, empty keys the server would drop, module AUX records, functions) and writes them at the end of
/// each file, as aligned text or, with `json`, as one JSON object on one line.
///
/// Values are not decoded. When the decoder measures values (`RDBDecoderOptions.measureValues`) the size comes
/// from `RDBKeyInfo.valueSize` and the value is skipped; otherwise `beginKey` answers `.raw`, which costs the same
/// as `.skip` (the decoder steps over the value's framing either way, with no decompression or parsing) and hands
/// over the value's bytes as a borrowed view whose `count` is the exact size.
public struct StatsCollector: RDBVisitor {
    public let out: OutputBuffer
    public var json: Bool
    /// Unix ms: when set, keys with an expiry at or before it are counted as already expired.
    public var now: Int64?
    /// The statistics of the current (or last) file.
    public private(set) var stats = RDBStats()

    var selectedDB = 0
    // Per-key tallies, folded into `stats` at the end of the file (`fold`), so that a key costs a few adds
    // and no hashing: counts per (database slot, kind) at `slot * 8 + kind`, the database of each slot and
    // the slot of each database (looked up when the database changes), keys per type byte (with the type
    // the byte stands for in this file), keys already expired.
    var tallies: [RDBStats.Counts] = []
    var slotDBs: [Int] = []
    var slotOf: [Int: Int] = [:]
    @usableFromInline var lastDB = -1
    @usableFromInline var lastSlot = 0
    /// The tally keys are being counted in (`runIndex` of `tallies`, added to it when the database or kind
    /// changes: a run of keys of one kind costs no array access), and likewise keys of one type byte.
    @usableFromInline var run = RDBStats.Counts()
    @usableFromInline var runIndex = -1
    @usableFromInline var runType = -1
    @usableFromInline var runTypeKeys = 0
    var typeKeys = [Int](repeating: 0, count: 256)
    var typeOf = [RDBValueType?](repeating: nil, count: 256)
    var runTypeValue: RDBValueType?
    @usableFromInline var expired = 0

    public init(out: OutputBuffer, json: Bool = false, now: Int64? = nil) {
        self.out = out
        self.json = json
        self.now = now
    }

    public mutating func beginFile(_ header: RDBHeader) throws {
        stats = RDBStats()
        selectedDB = 0
        tallies.removeAll(keepingCapacity: true)
        slotDBs.removeAll(keepingCapacity: true)
        slotOf.removeAll(keepingCapacity: true)
        lastDB = -1
        runIndex = -1
        runType = -1
        for i in 0..<256 { typeKeys[i] = 0 }
        expired = 0
        stats.header = header
        if now != nil { stats.expiredKeys = 0 }
    }

    public mutating func auxField(key: RDBString, value: RDBString) throws {
        stats.aux.append((key.array, value.array))
    }

    public mutating func moduleAux(_ module: RDBModuleID, when: UInt64, body: UnsafeRawBufferPointer) throws {
        stats.moduleAux.append(.init(module: module, when: when, bytes: body.count))
    }

    public mutating func functionLibrary(_ code: RDBString) throws {
        stats.functions.append(StatsCollector.libraryName(code.array))
    }

    public mutating func functionPreGA(name: RDBString, engine: RDBString, description: RDBString?, code: RDBString) throws {
        stats.functions.append(name.string)
    }

    public mutating func beginDatabase(_ db: Int) throws {
        selectedDB = db
        if stats.byDB[db] == nil { stats.byDB[db] = .init(db: db) }
    }

    public mutating func resizeDatabase(keys: UInt64, expires: UInt64) throws {
        // RESIZEDB follows the SELECTDB of its database.
        if stats.byDB[selectedDB] == nil { stats.byDB[selectedDB] = .init(db: selectedDB) }
        stats.byDB[selectedDB]!.resizeHint = (keys, expires)
    }

    // The per-key events are inlinable, so that the decoder specialised for this collector in the caller's
    // module (rdbcat) counts a key in a few adds, with no call and no copy of `RDBKeyInfo`.
    @inlinable @inline(__always)
    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        // Without a measured size the key is counted now and its size added when the raw bytes arrive.
        // (One call of `add`, so that it is inlined once.)
        add(info, valueBytes: info.valueSize ?? 0, recordPrefix: info.valueOffset &- info.recordOffset)
        return info.valueSize == nil ? .raw : .skip
    }

    @inlinable @inline(__always)
    public mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws {
        let n = raw.count
        run.valueBytes &+= n
        run.recordBytes &+= n
    }

    @inlinable @inline(__always)
    public mutating func endKey() throws {}

    public mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws {
        stats.droppedEmptyKeys += 1
    }

    @inlinable @inline(__always)
    mutating func add(_ info: RDBKeyInfo, valueBytes: Int, recordPrefix: Int) {
        if info.db != lastDB { selectSlot(info.db) }
        let i = lastSlot &* 8 &+ Int(info.kind.rawValue)
        if i != runIndex { endRun(next: i) }
        run.keys &+= 1
        if info.expireAtMs != nil { run.expiring &+= 1 }
        run.valueBytes &+= valueBytes
        run.recordBytes &+= recordPrefix &+ valueBytes
        let t = Int(info.type.rawValue)
        if t != runType { endTypeRun(next: info.type) }
        runTypeKeys &+= 1
        if let now, let e = info.expireAtMs, e <= now { expired &+= 1 }
    }

    @usableFromInline @inline(never)
    mutating func endRun(next: Int) {
        if runIndex >= 0 { tallies[runIndex].add(run) }
        run = RDBStats.Counts()
        runIndex = next
    }

    @usableFromInline @inline(never)
    mutating func endTypeRun(next: RDBValueType?) {
        if runType >= 0 {
            if typeKeys[runType] == 0 { typeOf[runType] = runTypeValue }
            typeKeys[runType] += runTypeKeys
        }
        runTypeKeys = 0
        runType = next.map { Int($0.rawValue) } ?? -1
        runTypeValue = next
    }

    @usableFromInline @inline(never)
    mutating func selectSlot(_ db: Int) {
        if let s = slotOf[db] {
            lastSlot = s
        } else {
            lastSlot = slotDBs.count
            slotOf[db] = lastSlot
            slotDBs.append(db)
            tallies.append(contentsOf: repeatElement(RDBStats.Counts(), count: 8))
        }
        lastDB = db
    }

    /// Adds the tallies to `stats` (once, at the end of the file).
    mutating func fold() {
        endRun(next: -1)
        endTypeRun(next: nil)
        for (s, db) in slotDBs.enumerated() {
            if stats.byDB[db] == nil { stats.byDB[db] = .init(db: db) }
            for k in 0..<8 {
                let c = tallies[s * 8 + k]
                guard c.keys > 0, let kind = RDBKind(rawValue: UInt8(k)) else { continue }
                stats.byDB[db]!.types[kind, default: .init()].add(c)
                stats.byDB[db]!.total.add(c)
                stats.total.add(c)
            }
        }
        for t in 0..<256 where typeKeys[t] > 0 {
            stats.encodings[typeOf[t]!.encoding.name, default: 0] += typeKeys[t]
        }
        if now != nil { stats.expiredKeys = expired }
        tallies.removeAll(keepingCapacity: true)
        slotDBs.removeAll(keepingCapacity: true)
        slotOf.removeAll(keepingCapacity: true)
        lastDB = -1
    }

    public mutating func endFile(checksum: RDBChecksumStatus) throws {
        fold()
        stats.checksum = checksum
        if json { writeJSON() } else { writeText() }
        out.commit()
        try out.flush()
    }

    /// The library name of a FUNCTION2 payload: the `name=` argument of its `#!engine name=lib ...` first line.
    public static func libraryName(_ code: [UInt8]) -> String {
        let firstLine = code.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
        for word in firstLine.split(separator: UInt8(ascii: " ")) where word.starts(with: Array("name=".utf8)) {
            return String(decoding: word.dropFirst(5), as: UTF8.self)
        }
        return "?"
    }
}
