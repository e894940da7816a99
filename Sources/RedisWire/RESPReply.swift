import NIOCore
import RDBKit

/// A server reply (RESP2, plus the RESP3 types a server may send anyway).
public enum RESPReply: Sendable, Equatable, CustomStringConvertible {
    case simple(String)
    case error(String)
    case integer(Int64)
    /// A bulk string; nil is the null bulk.
    case bulk([UInt8]?)
    /// An array; nil is the null array.
    case array([RESPReply]?)

    /// The bulk or simple string as text.
    public var text: String? {
        switch self {
        case .simple(let s): return s
        case .bulk(let b?): return String(decoding: b, as: UTF8.self)
        default: return nil
        }
    }

    public var isError: Bool { if case .error = self { return true } else { return false } }

    /// The error message, if this is an error reply.
    public var errorMessage: String? { if case .error(let m) = self { return m } else { return nil } }

    /// The first error inside an array (an `EXEC` reply), or the reply itself when it is one.
    public var firstNestedError: String? {
        switch self {
        case .error(let m): return m
        case .array(let items?):
            for i in items { if let e = i.firstNestedError { return e } }
            return nil
        default: return nil
        }
    }

    /// The error reply, typed.
    public var serverError: RedisServerError? {
        if case .error(let m) = self { return RedisServerError(m) } else { return nil }
    }

    /// The first error inside an array (an `EXEC` reply), or the reply itself when it is one, typed.
    public var firstNestedServerError: RedisServerError? { firstNestedError.map(RedisServerError.init) }

    public var description: String {
        switch self {
        case .simple(let s): return s
        case .error(let e): return "(error) \(e)"
        case .integer(let i): return "(integer) \(i)"
        case .bulk(nil), .array(nil): return "(nil)"
        case .bulk(let b?): return "\"\(String(decoding: b, as: UTF8.self))\""
        case .array(let a?): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

/// A reply the server sent that is not RESP.
public struct RESPProtocolError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Splits the byte stream from a server into replies, with RDBKit's `RESPTokenizer`.
///
/// Simple strings, errors, integers, bulk strings and (nested) arrays; RESP3 doubles, booleans, nulls,
/// big numbers, verbatim strings, maps, sets and pushes are read too (a server only sends them after
/// `HELLO 3`). An incomplete reply leaves the buffer untouched until more bytes arrive.
///
/// The replies bulk writes get by the million (runs of `+OK`, `:n`) skip the tokenizer and the building
/// of a `RESPReply`: `fastReplies` counts a run of `+OK` in one loop over the bytes and hands it over as a
/// number.
public struct RESPReplyDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = RESPReply

    /// Largest bulk string accepted (a larger length means a broken stream).
    public var maxBulkBytes = 1 << 30
    public var maxDepth = 32

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let (oks, integer, consumed) = buffer.withUnsafeReadableBytes { Self.fastReplies($0) }
        if consumed > 0 {
            buffer.moveReaderIndex(forwardBy: consumed)
            if let integer {
                context.fireChannelRead(Self.wrapInboundOut(.integer(integer)))
            } else {
                for _ in 0..<oks { context.fireChannelRead(Self.wrapInboundOut(.simple("OK"))) }
            }
            return .continue
        }
        guard let reply = try parse(&buffer, depth: 0) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(reply))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// The replies bulk writes mostly get, read without the tokenizer: a run of `+OK` (`oks` of them), or
    /// else one `:n` integer. `consumed` is 0 when the buffer does not start with either.
    @inline(__always)
    static func fastReplies(_ b: UnsafeRawBufferPointer) -> (oks: Int, integer: Int64?, consumed: Int) {
        let n = b.count
        var i = 0
        var oks = 0
        while i &+ 5 <= n, b[i] == UInt8(ascii: "+"), b[i &+ 1] == UInt8(ascii: "O"), b[i &+ 2] == UInt8(ascii: "K"),
            b[i &+ 3] == 0x0D, b[i &+ 4] == 0x0A
        {
            i &+= 5
            oks &+= 1
        }
        if oks > 0 || n < 4 || b[0] != UInt8(ascii: ":") { return (oks, nil, i) }
        var j = 1
        let negative = b[1] == UInt8(ascii: "-")
        if negative { j = 2 }
        let start = j
        var v: Int64 = 0
        while j < n, j &- start < 18, b[j] >= 0x30, b[j] <= 0x39 {
            v = v &* 10 &+ Int64(b[j] &- 0x30)
            j &+= 1
        }
        guard j > start, j &+ 1 < n, b[j] == 0x0D, b[j &+ 1] == 0x0A else { return (0, nil, 0) }
        return (0, negative ? -v : v, j &+ 2)
    }

    /// Parses one reply from the buffer's reader index; nil (the buffer untouched) when more bytes are
    /// needed. Throws `RESPProtocolError` for bytes that are not RESP, a length past the limits, or a reply
    /// nested deeper than `depth + maxDepth` allows.
    public func parse(_ b: inout ByteBuffer, depth: Int) throws -> RESPReply? {
        var limits = RESPLimits()
        limits.maxBulkBytes = maxBulkBytes
        let tokenizer = RESPTokenizer(limits: limits)
        let maxDepth = maxDepth
        let parsed: (reply: RESPReply, end: Int)? = try b.withUnsafeReadableBytes { w in
            do {
                guard case .complete(let end) = try tokenizer.valueEnd(w, at: 0) else { return nil }
                var p = 0
                return (try Self.build(w, &p, tokenizer, depth: depth, maxDepth: maxDepth), end)
            } catch let e as RESPFormatError {
                throw RESPProtocolError(description: e.description)
            }
        }
        guard let parsed else { return nil }
        b.moveReaderIndex(forwardBy: parsed.end)
        return parsed.reply
    }

    /// Builds the whole value at `p` (known to be complete) and moves `p` past it.
    static func build(_ w: UnsafeRawBufferPointer, _ p: inout Int, _ tokenizer: RESPTokenizer, depth: Int, maxDepth: Int) throws -> RESPReply {
        guard depth < maxDepth else { throw RESPProtocolError(description: "reply nested too deep") }
        guard case .token(let t) = try tokenizer.next(w, at: p) else {
            throw RESPProtocolError(description: "reply cut short")  // cannot happen: the value is complete
        }
        p = t.end
        func text() -> String { String(decoding: t.payload(in: w), as: UTF8.self) }
        switch t.kind {
        case .simpleString: return .simple(text())
        case .simpleError, .bulkError: return .error(text())
        case .integer, .boolean: return .integer(t.value)
        case .bulkString, .verbatimString, .double, .bigNumber: return .bulk(Array(t.payload(in: w)))
        case .null: return w[t.start] == UInt8(ascii: "*") ? .array(nil) : .bulk(nil)
        case .array, .set, .push, .map:
            var items: [RESPReply] = []
            items.reserveCapacity(min(t.elementCount, 1024))
            for _ in 0..<t.elementCount { items.append(try build(w, &p, tokenizer, depth: depth + 1, maxDepth: maxDepth)) }
            return .array(items)
        case .attribute:
            // Attributes describe the reply that follows: skipped.
            for _ in 0..<t.elementCount { _ = try build(w, &p, tokenizer, depth: depth + 1, maxDepth: maxDepth) }
            return try build(w, &p, tokenizer, depth: depth, maxDepth: maxDepth)
        }
    }
}
