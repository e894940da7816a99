import NIOCore

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

/// Splits the byte stream from a server into replies.
///
/// Simple strings, errors, integers, bulk strings and (nested) arrays; RESP3 doubles, booleans, nulls,
/// big numbers, verbatim strings, maps, sets and pushes are read too (a server only sends them after
/// `HELLO 3`). An incomplete reply leaves the buffer untouched until more bytes arrive.
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
        var copy = buffer
        guard let reply = try parse(&copy, depth: 0) else { return .needMoreData }
        buffer = copy
        context.fireChannelRead(Self.wrapInboundOut(reply))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// The replies bulk writes mostly get, read without the general parser: a run of `+OK` (`oks` of
    /// them), or else one `:n` integer. `consumed` is 0 when the buffer does not start with either.
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

    /// Parses one reply from the buffer's reader index; nil when more bytes are needed.
    public func parse(_ b: inout ByteBuffer, depth: Int) throws -> RESPReply? {
        guard depth < maxDepth else { throw RESPProtocolError(description: "reply nested too deep") }
        guard let type = b.readInteger(as: UInt8.self) else { return nil }
        guard let line = try readLine(&b) else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            return .simple(line)
        case UInt8(ascii: "-"):
            return .error(line)
        case UInt8(ascii: ":"):
            guard let v = Int64(line) else { throw RESPProtocolError(description: "bad integer reply") }
            return .integer(v)
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            guard let n = Int(line), n >= -1, n <= maxBulkBytes else { throw RESPProtocolError(description: "bad bulk length") }
            if n < 0 { return .bulk(nil) }
            guard b.readableBytes >= n + 2, let data = b.readBytes(length: n) else { return nil }
            b.moveReaderIndex(forwardBy: 2)
            if type == UInt8(ascii: "!") { return .error(String(decoding: data, as: UTF8.self)) }
            return .bulk(data)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard var n = Int(line), n >= -1, n <= 1 << 31 else { throw RESPProtocolError(description: "bad array length") }
            if n < 0 { return .array(nil) }
            if type == UInt8(ascii: "%") || type == UInt8(ascii: "|") { n *= 2 }
            var items: [RESPReply] = []
            items.reserveCapacity(min(n, 1024))
            for _ in 0..<n {
                guard let item = try parse(&b, depth: depth + 1) else { return nil }
                items.append(item)
            }
            if type == UInt8(ascii: "|") { return try parse(&b, depth: depth) }  // attribute: the reply follows
            return .array(items)
        case UInt8(ascii: "_"):
            return .bulk(nil)
        case UInt8(ascii: "#"):
            return .integer(line == "t" ? 1 : 0)
        case UInt8(ascii: ","), UInt8(ascii: "("):
            return .bulk(Array(line.utf8))
        default:
            throw RESPProtocolError(description: "unexpected reply type byte 0x\(String(type, radix: 16))")
        }
    }

    func readLine(_ b: inout ByteBuffer) throws -> String? {
        let view = b.readableBytesView
        guard let cr = view.firstIndex(of: 0x0D) else {
            if view.count > 1 << 20 { throw RESPProtocolError(description: "reply line longer than 1 MiB") }
            return nil
        }
        guard cr + 1 < view.endIndex else { return nil }
        let s = b.readString(length: cr - view.startIndex) ?? ""
        b.moveReaderIndex(forwardBy: 2)
        return s
    }
}
