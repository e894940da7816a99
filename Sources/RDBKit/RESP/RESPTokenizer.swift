#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Malformed or oversized RESP: where (a position in the window that was read) and what was expected.
public struct RESPFormatError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// Bytes that are not RESP.
        case malformed
        /// A length or count past the tokenizer's limits (`RESPLimits`).
        case tooLarge
    }

    public var kind: Kind
    /// Window position of the offending byte (for `.tooLarge`, of the length's type byte).
    public var position: Int
    public var message: String

    public init(_ kind: Kind, at position: Int, _ message: String) {
        self.kind = kind
        self.position = position
        self.message = message
    }

    public var description: String { "\(message) (at byte \(position))" }
}

/// Bounds a tokenizer checks before it trusts a length.
public struct RESPLimits: Sendable {
    /// Largest bulk string (the server's `proto-max-bulk-len` default).
    public var maxBulkBytes = 512 << 20
    /// Largest element count of an array, set, push or map (pairs for a map).
    public var maxAggregateCount = 1 << 32
    /// Longest line of a simple string, error, integer, double, boolean or big number, CRLF included.
    public var maxLineBytes = 1 << 20

    public init() {}
}

/// What a RESP token is (RESP2, and the RESP3 types a server sends after `HELLO 3`).
public enum RESPTokenKind: UInt8, Sendable {
    /// `+text`
    case simpleString
    /// `-CODE message`
    case simpleError
    /// `:n` (`value`)
    case integer
    /// `$len` and its bytes
    case bulkString
    /// `!len` and its bytes (RESP3)
    case bulkError
    /// `=len` and `fmt:text` (RESP3; the payload includes the `fmt:` prefix)
    case verbatimString
    /// `$-1`, `*-1` (RESP2) or `_` (RESP3)
    case null
    /// `*count`; `value` is the count, the elements follow
    case array
    /// `%pairs` (RESP3); `value` is the number of pairs, keys and values follow
    case map
    /// `~count` (RESP3)
    case set
    /// `>count` (RESP3): an out-of-band message
    case push
    /// `|pairs` (RESP3): attributes, then the value they describe
    case attribute
    /// `,text` (RESP3; the payload is the text)
    case double
    /// `#t` / `#f` (RESP3; `value` 1 or 0)
    case boolean
    /// `(digits` (RESP3; the payload is the text)
    case bigNumber

    /// Whether elements follow the token.
    @inlinable public var isAggregate: Bool {
        switch self {
        case .array, .map, .set, .push, .attribute: true
        default: false
        }
    }
}

/// One token read from a window: a whole scalar, or the header of an aggregate.
public struct RESPToken: Sendable, Equatable {
    public var kind: RESPTokenKind
    /// Window position of the type byte.
    public var start: Int
    /// Window position just after the token (for an aggregate: after its header line).
    public var end: Int
    /// The payload's window range (the text of a line, the bytes of a bulk string); empty otherwise.
    public var payloadStart: Int
    public var payloadCount: Int
    /// The integer, the boolean (1/0), or an aggregate's element count (pairs for a map or attribute).
    public var value: Int64

    @inlinable
    public init(kind: RESPTokenKind, start: Int, end: Int, payloadStart: Int = 0, payloadCount: Int = 0, value: Int64 = 0) {
        self.kind = kind
        self.start = start
        self.end = end
        self.payloadStart = payloadStart
        self.payloadCount = payloadCount
        self.value = value
    }

    /// The payload bytes in `window` (the one the token was read from).
    @inlinable
    public func payload(in window: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: window[payloadStart..<(payloadStart &+ payloadCount)])
    }

    /// Elements that follow an aggregate's header (keys and values of a map or attribute), else 0.
    @inlinable
    public var elementCount: Int {
        switch kind {
        case .array, .set, .push: Int(value)
        case .map, .attribute: Int(value) &* 2
        default: 0
        }
    }
}

/// What reading at a position found.
public enum RESPStep: Sendable, Equatable {
    case token(RESPToken)
    /// The window ends inside the token: read again once it holds at least this many bytes (window
    /// positions; a bulk string names its whole length, other tokens one byte more than there is).
    case needMore(atLeast: Int)
}

/// What reading a whole value found.
public enum RESPValueStep: Sendable, Equatable {
    /// A complete value (an aggregate with all its elements) ends at this window position.
    case complete(end: Int)
    case needMore(atLeast: Int)
}

/// Reads RESP from a byte window without copying: one token at a time (`next(_:at:)`), or a whole value
/// (`valueEnd(_:at:)`), reporting a frame cut short as `needMore` and bad bytes as `RESPFormatError`. It
/// keeps no state: the caller keeps the window and the position, and calls again with more bytes.
///
/// Lengths and counts are checked against `limits` before anything relies on them; line tokens are
/// searched for their CRLF no further than `limits.maxLineBytes`.
public struct RESPTokenizer: Sendable {
    public var limits: RESPLimits

    public init(limits: RESPLimits = RESPLimits()) { self.limits = limits }

    /// Reads the token at window position `pos`.
    public func next(_ w: UnsafeRawBufferPointer, at pos: Int) throws(RESPFormatError) -> RESPStep {
        let n = w.count
        guard pos < n, let base = w.baseAddress else { return .needMore(atLeast: pos &+ 1) }
        let type = base.load(fromByteOffset: pos, as: UInt8.self)
        switch type {
        case 0x24, 0x21, 0x3D:  // '$' '!' '='
            switch try RESPTokenizer.readBulk(base, n, pos, maxBytes: limits.maxBulkBytes, allowsNull: type == 0x24, { "a bulk string" }) {
            case .bytes(let q, let len, let end):
                let kind: RESPTokenKind = type == 0x24 ? .bulkString : type == 0x21 ? .bulkError : .verbatimString
                return .token(RESPToken(kind: kind, start: pos, end: end, payloadStart: q, payloadCount: len))
            case .null(let end):
                return .token(RESPToken(kind: .null, start: pos, end: end))
            case .needMore(let k):
                return .needMore(atLeast: k)
            }
        case 0x2A, 0x25, 0x7E, 0x3E, 0x7C:  // '*' '%' '~' '>' '|'
            switch RESPTokenizer.readLength(base, n, pos, what: "element count", allowsNull: type == 0x2A) {
            case .ok(let v, let nx):
                if v < 0 { return .token(RESPToken(kind: .null, start: pos, end: nx)) }
                if v > limits.maxAggregateCount {
                    throw RESPFormatError(.tooLarge, at: pos, "an aggregate claims \(v) elements (at most \(limits.maxAggregateCount) allowed)")
                }
                let kind: RESPTokenKind = switch type {
                case 0x2A: .array
                case 0x25: .map
                case 0x7E: .set
                case 0x3E: .push
                default: .attribute
                }
                return .token(RESPToken(kind: kind, start: pos, end: nx, value: Int64(v)))
            case .needMore:
                return .needMore(atLeast: n &+ 1)
            case .bad(let at, let message):
                throw RESPFormatError(.malformed, at: at, message)
            }
        case 0x2B, 0x2D, 0x3A, 0x2C, 0x28, 0x23, 0x5F:  // '+' '-' ':' ',' '(' '#' '_'
            let limit = min(n, pos &+ limits.maxLineBytes)
            guard limit > pos &+ 1, let p = memchr(base + (pos &+ 1), 0x0A, limit &- pos &- 1) else {
                if n &- pos >= limits.maxLineBytes {
                    throw RESPFormatError(.tooLarge, at: pos, "a line longer than \(limits.maxLineBytes) bytes (no line ending)")
                }
                return .needMore(atLeast: n &+ 1)
            }
            let lf = UnsafeRawPointer(p) - base
            guard lf > pos &+ 1, base.load(fromByteOffset: lf &- 1, as: UInt8.self) == 0x0D else {
                throw RESPFormatError(.malformed, at: lf, "expected CRLF at the end of the line, found a bare LF")
            }
            let textStart = pos &+ 1
            let textCount = lf &- 1 &- textStart
            if let cr = memchr(base + textStart, 0x0D, textCount) {
                throw RESPFormatError(.malformed, at: UnsafeRawPointer(cr) - base, "a CR inside a line")
            }
            var token = RESPToken(kind: .simpleString, start: pos, end: lf &+ 1, payloadStart: textStart, payloadCount: textCount)
            let text = UnsafeRawBufferPointer(start: base + textStart, count: textCount)
            switch type {
            case 0x2B: break
            case 0x2D: token.kind = .simpleError
            case 0x3A:
                guard let v = RESPTokenizer.parseInteger(text) else {
                    throw RESPFormatError(.malformed, at: textStart, "an integer reply is not a 64-bit decimal number")
                }
                token.kind = .integer
                token.value = v
            case 0x2C: token.kind = .double
            case 0x28:
                token.kind = .bigNumber
                var digits = text
                if digits.first == 0x2D || digits.first == 0x2B { digits = UnsafeRawBufferPointer(rebasing: digits.dropFirst()) }
                if digits.isEmpty || digits.contains(where: { $0 &- 0x30 > 9 }) {
                    throw RESPFormatError(.malformed, at: textStart, "a big number is not a decimal number")
                }
            case 0x23:
                guard textCount == 1, text[0] == 0x74 || text[0] == 0x66 else {
                    throw RESPFormatError(.malformed, at: textStart, "a boolean is not 't' or 'f'")
                }
                token.kind = .boolean
                token.value = text[0] == 0x74 ? 1 : 0
            default:
                guard textCount == 0 else { throw RESPFormatError(.malformed, at: textStart, "a null ('_') has text") }
                token.kind = .null
            }
            return .token(token)
        default:
            throw RESPFormatError(.malformed, at: pos, "expected a RESP type byte, found \(RESPTokenizer.describe(type))")
        }
    }

    /// Finds the end of the whole value at `pos` (an aggregate with all its elements, at any depth, an
    /// attribute with the value it describes) without building it: no recursion, no allocation.
    public func valueEnd(_ w: UnsafeRawBufferPointer, at pos: Int) throws(RESPFormatError) -> RESPValueStep {
        var p = pos
        var remaining = 1
        while remaining > 0 {
            switch try next(w, at: p) {
            case .needMore(let k):
                return .needMore(atLeast: k)
            case .token(let t):
                remaining &+= t.elementCount &- (t.kind == .attribute ? 0 : 1)
                p = t.end
            }
        }
        return .complete(end: p)
    }

    // MARK: lines

    /// What reading a bulk string found.
    enum Bulk {
        case bytes(start: Int, count: Int, end: Int)
        case null(end: Int)
        case needMore(Int)
    }

    /// Reads `$len\r\n` + `len` bytes + `\r\n` at `pos` (the type byte is checked by the caller), checking
    /// `len` against `maxBytes` before the bytes are there; `name` says what it is in messages.
    @inline(__always)
    static func readBulk(
        _ base: UnsafeRawPointer, _ n: Int, _ pos: Int, maxBytes: Int, allowsNull: Bool, _ name: () -> String
    ) throws(RESPFormatError) -> Bulk {
        let len: Int
        let q: Int
        switch readLength(base, n, pos, what: "bulk length", allowsNull: allowsNull) {
        case .ok(let v, let nx):
            len = v
            q = nx
        case .needMore:
            return .needMore(n &+ 1)
        case .bad(let at, let message):
            throw RESPFormatError(.malformed, at: at, message)
        }
        if len < 0 { return .null(end: q) }
        if len > maxBytes {
            throw RESPFormatError(.tooLarge, at: pos, "\(name()) claims \(len) bytes (at most \(maxBytes) allowed)")
        }
        let end = q &+ len &+ 2
        if end > n { return .needMore(end) }
        if base.load(fromByteOffset: q &+ len, as: UInt8.self) != 0x0D || base.load(fromByteOffset: q &+ len &+ 1, as: UInt8.self) != 0x0A {
            throw RESPFormatError(.malformed, at: q &+ len, "\(name()) of \(len) bytes is not followed by CRLF")
        }
        return .bytes(start: q, count: len, end: end)
    }

    /// What reading `<type><decimal>\r\n` found.
    @usableFromInline
    enum LengthLine {
        case ok(value: Int, next: Int)
        case needMore
        /// Malformed: the byte position (window-relative) and what is wrong.
        case bad(at: Int, String)
    }

    /// Reads `<type><decimal>\r\n` at `pos` (the type byte itself is checked by the caller); `-1` is read
    /// when `allowsNull`.
    @inline(__always)
    static func readLength(_ base: UnsafeRawPointer, _ n: Int, _ pos: Int, what: StaticString, allowsNull: Bool = false) -> LengthLine {
        var i = pos &+ 1
        var v = 0
        let digitsStart = i
        while true {
            if i >= n { return .needMore }
            let c = base.load(fromByteOffset: i, as: UInt8.self)
            let d = c &- 0x30
            if d <= 9 {
                if i &- digitsStart >= 18 { return .bad(at: pos, "\(what) has more than 18 digits") }
                v = v &* 10 &+ Int(d)
                i &+= 1
                continue
            }
            if c == 0x0D && i > digitsStart { break }
            if i == digitsStart && c == 0x2D {
                if allowsNull {
                    if i &+ 3 >= n { return .needMore }
                    if base.load(fromByteOffset: i &+ 1, as: UInt8.self) == 0x31, base.load(fromByteOffset: i &+ 2, as: UInt8.self) == 0x0D,
                       base.load(fromByteOffset: i &+ 3, as: UInt8.self) == 0x0A
                    {
                        return .ok(value: -1, next: i &+ 4)
                    }
                }
                return .bad(at: i, "negative \(what)")
            }
            if c == 0x0A { return .bad(at: i, "expected CRLF after the \(what), found a bare LF") }
            return .bad(at: i, "\(what) is not a decimal number (found \(describe(c)))")
        }
        if i &+ 1 >= n { return .needMore }
        if base.load(fromByteOffset: i &+ 1, as: UInt8.self) != 0x0A {
            return .bad(at: i &+ 1, "expected CRLF after the \(what)")
        }
        return .ok(value: v, next: i &+ 2)
    }

    /// A signed 64-bit decimal (optional sign, no spaces), nil when it is not one or overflows.
    static func parseInteger(_ t: UnsafeRawBufferPointer) -> Int64? {
        var i = 0
        var negative = false
        if let f = t.first, f == 0x2D || f == 0x2B {
            negative = f == 0x2D
            i = 1
        }
        guard i < t.count else { return nil }
        var v: UInt64 = 0
        while i < t.count {
            let d = t[i] &- 0x30
            guard d <= 9 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            if o1 || o2 { return nil }
            v = s
            i &+= 1
        }
        if negative { return v <= UInt64(Int64.max) &+ 1 ? Int64(truncatingIfNeeded: 0 &- v) : nil }
        return v <= UInt64(Int64.max) ? Int64(v) : nil
    }

    /// A byte for an error message: `'x' (0x78)` when printable.
    public static func describe(_ c: UInt8) -> String {
        if c >= 0x21 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))' (0x\(hex(c)))" }
        return "byte 0x\(hex(c))"
    }

    static func hex(_ c: UInt8) -> String {
        let s = String(c, radix: 16)
        return s.count == 1 ? "0" + s : s
    }
}
