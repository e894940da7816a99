import Foundation
import RDBKit
import RDBSinks

/// Locates the repository's `testdata/` folder from this source file.
enum Fixtures {
    static let root: URL = {
        var u = URL(fileURLWithPath: #filePath)
        while u.path != "/" {
            u.deleteLastPathComponent()
            let t = u.appendingPathComponent("testdata")
            if FileManager.default.fileExists(atPath: t.path) { return t }
        }
        fatalError("testdata/ not found above \(#filePath)")
    }()

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    static func bytes(_ relative: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(relative)))
    }

    /// Every file under testdata/ whose name ends with `suffix`, as paths relative to testdata/.
    static func files(endingWith suffix: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: root.path) else { return [] }
        var out: [String] = []
        for case let p as String in e where p.hasSuffix(suffix) { out.append(p) }
        return out.sorted()
    }
}

/// Decodes with the JSONL writer in base64 mode and returns one parsed object per key.
func decodeToJSONObjects(
    _ bytes: [UInt8], options: RDBDecoderOptions = .init()
) throws -> (objects: [[String: Any]], summary: RDBSummary) {
    let out = OutputBuffer(target: nil)
    var w = JSONLWriter(out: out, binary: .base64)
    let summary = try RDBReader.decode(bytes: bytes, into: &w, options: options)
    let text = out.take()
    var objects: [[String: Any]] = []
    for line in text.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
        let o = try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any]
        objects.append(o)
    }
    return (objects, summary)
}

/// Canonical comparable forms of key objects: expected files use the Latin-1 mapping of bytes, our
/// output base64; both become hex. Unordered collections are sorted; optional stream fields are compared
/// only when the expected object has them.
enum Canonical {
    enum Strings { case latin1, base64 }

    static func bytes(_ v: Any, _ mode: Strings) -> String {
        guard let s = v as? String else { return "<not a string: \(v)>" }
        let b: [UInt8]
        switch mode {
        case .latin1: b = s.unicodeScalars.map { $0.value < 256 ? UInt8($0.value) : 0x3F }
        case .base64: b = [UInt8](Data(base64Encoded: s) ?? Data("<bad base64>".utf8))
        }
        return b.map { String(format: "%02x", $0) }.joined()
    }

    static func score(_ v: Any) -> String {
        if let s = v as? String { return s }
        // -0.0 and 0.0 are the same score for Redis (ZADD treats them as equal); peers print both as 0.
        if let d = v as? Double { return (d == 0 ? 0.0 : d).description }
        if let n = v as? NSNumber { return (n.doubleValue == 0 ? 0.0 : n.doubleValue).description }
        return "\(v)"
    }

    static func present(_ v: Any?) -> Bool { v != nil && !(v is NSNull) }

    static func id(_ v: Any?) -> String { (v as? String) ?? "nil" }

    /// The canonical text of one key object. `like` restricts optional fields to those the expected object has.
    static func key(_ o: [String: Any], _ m: Strings, like e: [String: Any]? = nil) -> String {
        var parts: [String] = []
        parts.append("db=\(o["db"] ?? "nil")")
        parts.append("key=\(bytes(o["key"] ?? "", m))")
        let type = o["type"] as? String ?? "?"
        parts.append("type=\(type)")
        parts.append("expire=\((o["expire_at_ms"] as? NSNumber)?.int64Value.description ?? "null")")
        let v = o["value"] as Any
        switch type {
        case "string":
            parts.append("value=\(bytes(v, m))")
        case "list":
            parts.append("value=" + ((v as? [Any]) ?? []).map { bytes($0, m) }.joined(separator: ","))
        case "set":
            parts.append("value=" + ((v as? [Any]) ?? []).map { bytes($0, m) }.sorted().joined(separator: ","))
        case "zset":
            let pairs = ((v as? [[Any]]) ?? []).map { "\(bytes($0[0], m)):\(score($0[1]))" }
            parts.append("value=" + pairs.sorted().joined(separator: ","))
        case "hash":
            let d = (v as? [String: Any]) ?? [:]
            parts.append("value=" + d.map { "\(bytes($0.key, m))=\(bytes($0.value, m))" }.sorted().joined(separator: ","))
            let t = (o["field_expire_at_ms"] as? [String: Any]) ?? [:]
            parts.append("ttl=" + t.map { "\(bytes($0.key, m))=\(($0.value as? NSNumber)?.int64Value ?? -1)" }.sorted().joined(separator: ","))
        case "stream":
            parts.append(stream(v as? [String: Any] ?? [:], m, like: e?["value"] as? [String: Any]))
        case "module":
            let d = (v as? [String: Any]) ?? [:]
            parts.append("module=\(d["module"] ?? "")/\(d["version"] ?? "")")
        default:
            parts.append("value=\(v)")
        }
        return parts.joined(separator: " ")
    }

    static func stream(_ s: [String: Any], _ m: Strings, like e: [String: Any]?) -> String {
        var parts: [String] = []
        let entries = (s["entries"] as? [[String: Any]]) ?? []
        parts.append("entries=" + entries.map { en in
            id(en["id"]) + "{" + ((en["fields"] as? [Any]) ?? []).map { bytes($0, m) }.joined(separator: ",") + "}"
        }.joined(separator: ";"))
        parts.append("length=\(s["length"] ?? "nil") last=\(id(s["last_id"]))")
        for opt in ["first_id", "max_deleted_entry_id", "entries_added"] where e == nil || present(e?[opt]) {
            parts.append("\(opt)=\(s[opt] ?? "nil")")
        }
        let eg = (e?["groups"] as? [[String: Any]]) ?? []
        let groups = ((s["groups"] as? [[String: Any]]) ?? []).map { g -> String in
            let like = eg.first { ($0["name"] as? String).map { bytes($0, .latin1) } == bytes(g["name"] ?? "", m) }
            var gp = ["group=\(bytes(g["name"] ?? "", m)) last=\(id(g["last_delivered_id"])) read=\(g["entries_read"] ?? "nil")"]
            let likePending = (like?["pending"] as? [[String: Any]])?.first
            let pending = ((g["pending"] as? [[String: Any]]) ?? []).map { p -> String in
                var x = "\(id(p["id"]))@\(p["consumer"].map { ($0 is NSNull) ? "null" : bytes($0, m) } ?? "null")#\(p["delivery_count"] ?? "")"
                if like == nil || present(likePending?["delivery_time_ms"]) { x += "t\(p["delivery_time_ms"] ?? "")" }
                return x
            }.sorted()
            gp.append("pel=" + pending.joined(separator: ","))
            let likeConsumer = (like?["consumers"] as? [[String: Any]])?.first
            let consumers = ((g["consumers"] as? [[String: Any]]) ?? []).map { c -> String in
                var x = bytes(c["name"] ?? "", m) + ":" + ((c["pending"] as? [String]) ?? []).sorted().joined(separator: ",")
                for opt in ["seen_time_ms", "active_time_ms"] where like == nil || present(likeConsumer?[opt]) {
                    x += " \(opt)=\(c[opt] ?? "nil")"
                }
                return x
            }.sorted()
            gp.append("consumers=" + consumers.joined(separator: ";"))
            return gp.joined(separator: " ")
        }.sorted()
        parts.append("groups=[" + groups.joined(separator: " | ") + "]")
        return parts.joined(separator: " ")
    }

    /// Index key objects by (db, key bytes).
    static func index(_ objects: [[String: Any]], _ m: Strings) -> [String: [String: Any]] {
        var d: [String: [String: Any]] = [:]
        for o in objects { d["\(o["db"] ?? "")/\(bytes(o["key"] ?? "", m))"] = o }
        return d
    }
}

/// Parses an expected `.jsonl` file (Latin-1 mapped strings).
func readExpected(_ relative: String) throws -> [[String: Any]] {
    let text = try String(contentsOf: Fixtures.url(relative), encoding: .utf8)
    return try text.split(separator: "\n").filter { !$0.isEmpty }.map {
        try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
}
