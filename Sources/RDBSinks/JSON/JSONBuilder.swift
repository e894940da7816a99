/// Writes JSON text with commas handled; byte strings (keys) are escaped losslessly like the JSON sinks.
public struct JSONBuilder {
    let out = OutputBuffer(target: nil, flushThreshold: 1 << 16)
    var first = [true]
    var afterKey = false

    public init() {}

    mutating func separator() {
        if afterKey { afterKey = false; return }
        if first[first.count - 1] { first[first.count - 1] = false } else { out.append(UInt8(ascii: ",")) }
    }

    public mutating func beginObject() { separator(); out.append(UInt8(ascii: "{")); first.append(true) }
    public mutating func endObject() { first.removeLast(); out.append(UInt8(ascii: "}")) }
    public mutating func beginArray() { separator(); out.append(UInt8(ascii: "[")); first.append(true) }
    public mutating func endArray() { first.removeLast(); out.append(UInt8(ascii: "]")) }

    public mutating func key(_ k: String) {
        separator()
        var s = k
        s.withUTF8 { out.appendJSONString(UnsafeRawBufferPointer($0), mode: .escape) }
        out.append(UInt8(ascii: ":"))
        afterKey = true
    }

    public mutating func string(_ v: String) {
        separator()
        var s = v
        s.withUTF8 { out.appendJSONString(UnsafeRawBufferPointer($0), mode: .escape) }
    }

    public mutating func bytes(_ v: [UInt8]) {
        separator()
        v.withUnsafeBytes { out.appendJSONString($0, mode: .escape) }
    }

    public mutating func int(_ v: Int) { separator(); out.append(decimal: v) }
    public mutating func bool(_ v: Bool) { separator(); out.append(v ? "true" : "false") }
    public mutating func null() { separator(); out.append("null") }
    /// A value that is already JSON text (a stored report), written as it is.
    public mutating func raw(_ json: String) { separator(); out.append(json) }

    /// Seconds with millisecond precision.
    public mutating func seconds(_ v: Double) {
        separator()
        let ms = Int((v * 1000).rounded())
        out.append(decimal: ms / 1000)
        out.append(UInt8(ascii: "."))
        let f = ms % 1000
        if f < 100 { out.append(UInt8(ascii: "0")) }
        if f < 10 { out.append(UInt8(ascii: "0")) }
        out.append(decimal: f)
    }

    public mutating func field(_ k: String, _ v: String) { key(k); string(v) }
    public mutating func field(_ k: String, _ v: Int) { key(k); int(v) }
    public mutating func field(_ k: String, _ v: Bool) { key(k); bool(v) }
    public mutating func field(_ k: String, _ v: String?) { key(k); if let v { string(v) } else { null() } }

    public var text: String { String(decoding: out.bytes, as: UTF8.self) }
}
