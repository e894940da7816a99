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
    var lastDB = -1
    var lastSlot = 0
    /// The tally of the key whose raw value is coming.
    var pending = 0
    var typeKeys = [Int](repeating: 0, count: 256)
    var typeOf = [RDBValueType?](repeating: nil, count: 256)
    var expired = 0

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

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        let prefix = info.valueOffset - info.recordOffset
        if let size = info.valueSize {
            add(info, valueBytes: size, recordPrefix: prefix)
            return .skip
        }
        // Counted now; the size is added when the raw bytes arrive.
        add(info, valueBytes: 0, recordPrefix: prefix)
        return .raw
    }

    public mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws {
        let n = raw.count
        tallies[pending].valueBytes += n
        tallies[pending].recordBytes += n
    }

    public mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws {
        stats.droppedEmptyKeys += 1
    }

    @inline(__always)
    mutating func add(_ info: RDBKeyInfo, valueBytes: Int, recordPrefix: Int) {
        if info.db != lastDB { selectSlot(info.db) }
        let i = lastSlot &* 8 &+ Int(info.kind.rawValue)
        pending = i
        tallies[i].keys += 1
        if info.expireAtMs != nil { tallies[i].expiring += 1 }
        tallies[i].valueBytes += valueBytes
        tallies[i].recordBytes += recordPrefix + valueBytes
        let t = Int(info.type.rawValue)
        if typeKeys[t] == 0 { typeOf[t] = info.type }
        typeKeys[t] += 1
        if let now, let e = info.expireAtMs, e <= now { expired += 1 }
    }

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
    static func libraryName(_ code: [UInt8]) -> String {
        let firstLine = code.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
        for word in firstLine.split(separator: UInt8(ascii: " ")) where word.starts(with: Array("name=".utf8)) {
            return String(decoding: word.dropFirst(5), as: UTF8.self)
        }
        return "?"
    }

    // MARK: output

    static let kinds: [RDBKind] = [.string, .list, .set, .zset, .hash, .stream, .module, .array]

    func checksumText(_ c: RDBChecksumStatus?) -> (status: String, value: String?, computed: String?) {
        switch c {
        case .verified(let v): ("verified", hex(v), nil)
        case .notWritten: ("not-written", nil, nil)
        case .absent: ("absent", nil, nil)
        case .unchecked(let v): ("unchecked", hex(v), nil)
        case .mismatch(let stored, let computed): ("mismatch", hex(stored), hex(computed))
        case nil: ("unknown", nil, nil)
        }
    }

    func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: 16 - s.count) + s
    }

    /// Text layout:
    ///
    /// ```
    /// file: redis RDB 9
    /// checksum: verified 0x4d5f1c3b0a9e8f21
    /// aux: redis-ver=7.0.15
    /// aux: redis-bits=64
    /// db  type    keys  expiring  value_bytes  record_bytes
    /// 0   string     3         1           18            45
    /// 0   (all)      3         1           18            45
    /// all (all)      3         1           18            45
    /// resizedb hint: db 0: 3 keys, 1 expires
    /// encodings: string 3
    /// dropped empty keys: 0
    /// expired keys: 0                       (only when `now` is set)
    /// module aux: ReJSON-RL/3 when=2, 10 bytes    (or: none)
    /// functions: mylib                            (or: none)
    /// ```
    mutating func writeText() {
        var lines: [String] = []
        if let h = stats.header { lines.append("file: \(h.family.rawValue) RDB \(h.version)") }
        let c = checksumText(stats.checksum)
        lines.append("checksum: \(c.status)" + (c.value.map { " " + $0 } ?? "") + (c.computed.map { " (computed \($0))" } ?? ""))
        for (k, v) in stats.aux { lines.append("aux: \(escaped(k))=\(escaped(v))") }
        var rows: [[String]] = [["db", "type", "keys", "expiring", "value_bytes", "record_bytes"]]
        func row(_ db: String, _ type: String, _ c: RDBStats.Counts) -> [String] {
            [db, type, String(c.keys), String(c.expiring), String(c.valueBytes), String(c.recordBytes)]
        }
        let dbs = stats.databases
        for d in dbs {
            for k in StatsCollector.kinds { if let c = d.types[k] { rows.append(row(String(d.db), k.description, c)) } }
            rows.append(row(String(d.db), "(all)", d.total))
        }
        rows.append(row("all", "(all)", stats.total))
        var widths = [Int](repeating: 0, count: 6)
        for r in rows { for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) } }
        for r in rows {
            var line = ""
            for (i, cell) in r.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                if i < 2 { line += cell + pad + "  " } else { line += pad + cell + (i < 5 ? "  " : "") }
            }
            lines.append(line)
        }
        for d in dbs { if let h = d.resizeHint { lines.append("resizedb hint: db \(d.db): \(h.keys) keys, \(h.expires) expires") } }
        let enc = stats.encodings.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        lines.append("encodings: " + (enc.isEmpty ? "none" : enc.joined(separator: ", ")))
        lines.append("dropped empty keys: \(stats.droppedEmptyKeys)")
        if let e = stats.expiredKeys { lines.append("expired keys: \(e)") }
        let mods = stats.moduleAux.map { "\($0.module) when=\($0.when), \($0.bytes) bytes" }
        lines.append("module aux: " + (mods.isEmpty ? "none" : mods.joined(separator: "; ")))
        lines.append("functions: " + (stats.functions.isEmpty ? "none" : stats.functions.joined(separator: ", ")))
        for l in lines {
            out.append(l)
            out.append(UInt8(ascii: "\n"))
        }
    }

    func escaped(_ b: [UInt8]) -> String {
        let o = OutputBuffer(target: nil, flushThreshold: 256)
        b.withUnsafeBytes { o.appendLineEscaped($0) }
        return String(decoding: o.take(), as: UTF8.self)
    }

    /// JSON layout (one line):
    /// `{"family":"redis","version":9,"checksum":{"status":"verified","crc64":"0x…"},"aux":{"redis-ver":"7.0.15"},`
    /// `"databases":[{"db":0,"keys":3,"expiring":1,"value_bytes":18,"record_bytes":45,`
    /// `"resize_hint":{"keys":3,"expires":1},"types":{"string":{"keys":3,"expiring":1,"value_bytes":18,`
    /// `"record_bytes":45}}}],"total":{…},"encodings":{"string":3},"dropped_empty_keys":0,"expired_keys":0,`
    /// `"module_aux":[{"module":"ReJSON-RL","version":3,"when":2,"bytes":10}],"functions":["mylib"]}`.
    /// `crc64` is present for verified, unchecked and mismatched checksums (with `computed` for a mismatch), `resize_hint` when the file has one, `expired_keys`
    /// when `now` is set. Status is one of verified, not-written, absent, unchecked, mismatch (salvage mode).
    mutating func writeJSON() {
        func counts(_ c: RDBStats.Counts) {
            out.append("\"keys\":")
            out.append(decimal: c.keys)
            out.append(",\"expiring\":")
            out.append(decimal: c.expiring)
            out.append(",\"value_bytes\":")
            out.append(decimal: c.valueBytes)
            out.append(",\"record_bytes\":")
            out.append(decimal: c.recordBytes)
        }
        out.append(UInt8(ascii: "{"))
        if let h = stats.header {
            out.append("\"family\":\"")
            out.append(h.family.rawValue)
            out.append("\",\"version\":")
            out.append(decimal: h.version)
            out.append(UInt8(ascii: ","))
        }
        let c = checksumText(stats.checksum)
        out.append("\"checksum\":{\"status\":\"")
        out.append(c.status)
        out.append(UInt8(ascii: "\""))
        if let v = c.value {
            out.append(",\"crc64\":\"")
            out.append(v)
            out.append(UInt8(ascii: "\""))
        }
        if let v = c.computed {
            out.append(",\"computed\":\"")
            out.append(v)
            out.append(UInt8(ascii: "\""))
        }
        out.append("},\"aux\":{")
        for (i, (k, v)) in stats.aux.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            k.withUnsafeBytes { out.appendJSONString($0, mode: .escape) }
            out.append(UInt8(ascii: ":"))
            v.withUnsafeBytes { out.appendJSONString($0, mode: .escape) }
        }
        out.append("},\"databases\":[")
        for (i, d) in stats.databases.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append("{\"db\":")
            out.append(decimal: d.db)
            out.append(UInt8(ascii: ","))
            counts(d.total)
            if let h = d.resizeHint {
                out.append(",\"resize_hint\":{\"keys\":")
                out.append(unsigned: h.keys)
                out.append(",\"expires\":")
                out.append(unsigned: h.expires)
                out.append(UInt8(ascii: "}"))
            }
            out.append(",\"types\":{")
            var first = true
            for k in StatsCollector.kinds {
                guard let c = d.types[k] else { continue }
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                out.append(UInt8(ascii: "\""))
                out.append(k.staticName)
                out.append("\":{")
                counts(c)
                out.append(UInt8(ascii: "}"))
            }
            out.append("}}")
        }
        out.append("],\"total\":{")
        counts(stats.total)
        out.append("},\"encodings\":{")
        for (i, (name, n)) in stats.encodings.sorted(by: { $0.key < $1.key }).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            out.append(name)
            out.append("\":")
            out.append(decimal: n)
        }
        out.append("},\"dropped_empty_keys\":")
        out.append(decimal: stats.droppedEmptyKeys)
        if let e = stats.expiredKeys {
            out.append(",\"expired_keys\":")
            out.append(decimal: e)
        }
        out.append(",\"module_aux\":[")
        for (i, m) in stats.moduleAux.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append("{\"module\":\"")
            out.append(m.module.name)
            out.append("\",\"version\":")
            out.append(decimal: m.module.encodingVersion)
            out.append(",\"when\":")
            out.append(unsigned: m.when)
            out.append(",\"bytes\":")
            out.append(decimal: m.bytes)
            out.append(UInt8(ascii: "}"))
        }
        out.append("],\"functions\":[")
        for (i, f) in stats.functions.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            var f = f
            f.withUTF8 { out.appendJSONString(UnsafeRawBufferPointer($0), mode: .escape) }
        }
        out.append("]}\n")
    }
}
