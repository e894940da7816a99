import RDBKit

/// The text and JSON layouts of `StatsCollector` (written at the end of each file).
extension StatsCollector {
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
