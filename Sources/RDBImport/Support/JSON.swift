import RDBKit
import RDBSinks

/// A parsed JSON value (for task bodies): small, exact, no Foundation.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's text as written (so `"size": 12` and big integers are not rounded).
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in file order (duplicates kept; lookups take the last, like most parsers).
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// A member of an object (the last one with that name).
    public subscript(_ name: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.0 == name })?.1
    }

    /// The JSON type name, for messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public let offset: Int
        public let message: String
        public var description: String { "invalid JSON at byte \(offset): \(message)" }
    }

    /// Parses a whole document (surrounding white space allowed).
    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var p = Parser(b: bytes)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        if p.i != bytes.count { throw ParseError(offset: p.i, message: "unexpected data after the document") }
        return v
    }

    struct Parser {
        let b: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }

        func fail(_ m: String) -> ParseError { ParseError(offset: i, message: m) }

        mutating func value(depth: Int) throws -> JSONValue {
            guard depth < 64 else { throw fail("nesting too deep") }
            guard i < b.count else { throw fail("unexpected end of input") }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var members: [(String, JSONValue)] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
                    let k = try string()
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    i += 1
                    skipSpace()
                    members.append((k, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < b.count else { throw fail("unexpected end of input") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [JSONValue] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < b.count else { throw fail("unexpected end of input") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default:
                return .number(try number())
            }
        }

        mutating func literal(_ s: StaticString) throws {
            let n = s.utf8CodeUnitCount
            guard i + n <= b.count else { throw fail("unexpected end of input") }
            for k in 0..<n where b[i + k] != s.utf8Start[k] { throw fail("invalid literal") }
            i += n
        }

        mutating func number() throws -> String {
            let s = i
            if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            func digits(_ p: inout Parser) -> Int {
                let s = p.i
                while p.i < p.b.count, p.b[p.i] >= 0x30, p.b[p.i] <= 0x39 { p.i += 1 }
                return p.i - s
            }
            guard digits(&self) > 0 else { throw fail("invalid value") }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                guard digits(&self) > 0 else { throw fail("invalid number") }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                guard digits(&self) > 0 else { throw fail("invalid number") }
            }
            return String(decoding: b[s..<i], as: UTF8.self)
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= b.count else { throw fail("truncated \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw fail("invalid \\u escape")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        mutating func string() throws -> String {
            i += 1  // opening quote
            var out: [UInt8] = []
            while true {
                guard i < b.count else { throw fail("unterminated string") }
                let c = b[i]
                if c == UInt8(ascii: "\"") { i += 1; break }
                if c < 0x20 { throw fail("control character in string") }
                if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
                i += 1
                guard i < b.count else { throw fail("unterminated string") }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var u = try hex4()
                    if u >= 0xD800 && u < 0xDC00, i + 6 <= b.count, b[i] == 0x5C, b[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let lo = try hex4()
                        if lo >= 0xDC00 && lo < 0xE000 { u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00) } else { u = 0xFFFD }
                    }
                    let scalar = Unicode.Scalar(u) ?? "\u{FFFD}"
                    out.append(contentsOf: Array(String(scalar).utf8))
                default: throw fail("invalid escape")
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }
}

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
