#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Appends RESP multibulk commands (`*N\r\n$len\r\narg\r\n...`) to a `RESPOutput` sink: the one
/// encoder of the package (decoded keys, the importer's own commands, AOF commands passed through).
///
/// A command is opened with `begin(maxArguments:)`, filled with `argument(...)` calls and closed with
/// `end()`, which writes the real argument count into the header. The header is reserved with as many
/// digits as `maxArguments` needs, so a command that reaches its bound (the common case for the chunks
/// of a large collection) is closed without moving anything; a shorter one has its body moved down by
/// the few bytes the count needs less (RESP does not allow leading zeros in the count). Arguments are
/// written straight into the sink: no allocation per argument. Integers are formatted without
/// Foundation; doubles in the shortest form that reads back as the same value.
///
/// The sink must not be flushed while a command is open (writers flush between keys, and within a key
/// only between commands), unless its header was written with `writeHeader(arguments:)`.
///
/// Everything is `@inlinable` so that the encoder is specialized for its sink in the caller's module.
public struct RESPEncoder<Output: RESPOutput> {
    public var out: Output
    @usableFromInline var start = 0
    @usableFromInline var width = 0
    @usableFromInline var argc = 0
    @usableFromInline var open = false
    /// The argument count of the open command once `writeHeader(arguments:)` wrote it, else -1.
    @usableFromInline var fixedCount = -1
    /// `flushedBytes + position` where the open command starts, set by `writeHeader(arguments:)` (`start`
    /// no longer holds after a flush).
    @usableFromInline var startTotal = 0
    /// Commands closed by `end()` so far.
    @inlinable public var commandsEnded: Int { ended }
    @usableFromInline var ended = 0
    /// Whether a command is open.
    @inlinable public var isOpen: Bool { open }
    /// Counts `n` whole commands the caller wrote into the sink itself (between commands of this encoder).
    @inlinable public mutating func noteCommands(_ n: Int) { ended &+= n }

    @inlinable
    public init(out: Output) { self.out = out }

    /// Arguments written to the open command so far.
    @inlinable public var argumentCount: Int { argc }

    /// Bytes of the open command so far (header included).
    @inlinable public var commandBytes: Int { isOpen ? out.position - start : 0 }

    /// Opens a command that will have at most `maxArguments` arguments (more still works, at the cost of
    /// moving the command's bytes once).
    @inlinable
    public mutating func begin(maxArguments: Int) {
        precondition(!open, "RESPEncoder: a command is already open")
        open = true
        argc = 0
        start = out.position
        width = DecimalFormatter.digitCount(unsigned: UInt64(max(1, maxArguments)))
        out.appendGap(width &+ 3)  // '*', digits, CR LF: written by end()
    }

    /// Opens a command of exactly `arguments` arguments and writes its header at once: nothing is
    /// patched at `end()` (which checks the count), and the sink may be flushed before it as after
    /// `writeHeader(arguments:)`. For commands whose arity is known up front (`SET`, `PEXPIREAT`, `SELECT`).
    @inlinable
    public mutating func begin(arguments n: Int) {
        precondition(!open, "RESPEncoder: a command is already open")
        open = true
        argc = 0
        start = out.position
        startTotal = out.flushedBytes &+ start
        fixedCount = n
        out.reserve(24)
        out.append(UInt8(ascii: "*"))
        if n < 10 {
            out.append(UInt8(truncatingIfNeeded: 0x30 &+ n))
        } else {
            out.append(decimal: Int64(n))
        }
        out.append(0x0D)
        out.append(0x0A)
    }

    /// Writes the header of the open command now, for exactly `arguments` arguments (with as many digits
    /// as the `maxArguments` it was opened with): the sink may then be flushed before `end()`, between its
    /// arguments and inside a payload (`OutputBuffer.appendWithinKey`). `end()` checks the count.
    @inlinable
    public mutating func writeHeader(arguments: Int) {
        precondition(open && fixedCount < 0, "RESPEncoder: no command is open, or its header is written")
        precondition(DecimalFormatter.digitCount(unsigned: UInt64(arguments)) == width, "RESPEncoder: \(arguments) arguments do not fit the header")
        fixedCount = arguments
        startTotal = out.flushedBytes &+ start
        storeHeader(count: arguments, digits: width)
    }

    /// Closes the open command, writing its argument count.
    @inlinable
    public mutating func end() {
        precondition(open, "RESPEncoder: no command is open")
        open = false
        ended &+= 1
        if fixedCount >= 0 {
            precondition(argc == fixedCount, "RESPEncoder: \(argc) arguments written, \(fixedCount) announced")
            fixedCount = -1
            return
        }
        let d = DecimalFormatter.digitCount(unsigned: UInt64(argc))
        if _slowPath(d != width) { out.resizeGap(at: start, from: width &+ 3, to: d &+ 3) }
        storeHeader(count: argc, digits: d)
    }

    /// `*count CR LF` at `start`.
    @inlinable
    mutating func storeHeader(count: Int, digits d: Int) {
        out.withBytes(at: start, count: d &+ 3) { p in
            p.storeBytes(of: UInt8(ascii: "*"), as: UInt8.self)
            _ = DecimalFormatter.write(unsigned: UInt64(count), into: p + 1)
            p.storeBytes(of: 0x0D, toByteOffset: d &+ 1, as: UInt8.self)
            p.storeBytes(of: 0x0A, toByteOffset: d &+ 2, as: UInt8.self)
        }
    }

    /// Drops the open command (what is left of it in the sink: after `writeHeader(arguments:)` it may
    /// have been partly written out).
    @inlinable
    public mutating func cancel() {
        guard open else { return }
        open = false
        if fixedCount >= 0 {
            fixedCount = -1
            out.truncate(to: max(0, startTotal &- out.flushedBytes))
        } else {
            out.truncate(to: start)
        }
    }

    /// Writes a whole command whose arguments are all static strings (`MULTI`, `SELECT 0` and such).
    @inlinable
    public mutating func command(_ args: StaticString...) {
        begin(maxArguments: args.count)
        for a in args { argument(a) }
        end()
    }

    /// Writes `SELECT db`.
    @inlinable
    public mutating func select(_ db: Int) {
        begin(arguments: 2)
        argument("SELECT")
        argument(db)
        end()
    }

    /// Writes a command read from an AOF (or any command stream) as it is.
    @inlinable
    public mutating func command(_ args: AOFArguments) {
        begin(maxArguments: args.count)
        for i in 0..<args.count { argument(args.bytes(i)) }
        end()
    }

    // MARK: arguments

    @inlinable
    mutating func bulkHeader(_ n: Int, extra: Int) {
        argc &+= 1
        out.reserve(n &+ extra &+ 26)
        out.append(UInt8(ascii: "$"))
        out.append(decimal: Int64(n))
        out.append(0x0D)
        out.append(0x0A)
    }

    @inlinable
    mutating func crlf() {
        out.append(0x0D)
        out.append(0x0A)
    }

    /// Starts an argument of `length` bytes that the caller appends to `out` itself, then closes with
    /// `endArgument()` (for payloads assembled in place).
    @inlinable
    public mutating func beginArgument(length: Int) {
        bulkHeader(length, extra: 2)
    }

    /// Closes an argument started with `beginArgument(length:)`.
    @inlinable
    public mutating func endArgument() { crlf() }

    /// A byte string argument.
    @inlinable
    public mutating func argument(_ b: UnsafeRawBufferPointer) {
        argc &+= 1
        out.appendBulk(b)
    }

    /// One argument made of two byte strings, `prefix` then `b` (a temporary key name).
    @inlinable
    public mutating func argument(prefix: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) {
        bulkHeader(prefix.count &+ b.count, extra: 2)
        out.append(prefix)
        out.append(b)
        crlf()
    }

    /// A string from the decoder (an integer is written as its decimal text).
    @inlinable
    public mutating func argument(_ s: RDBString) {
        if s.isInteger { argument(s.integer) } else { argument(s.bytes) }
    }

    /// Arguments encoded already (by another encoder: a part of a value encoded on another thread), `count`
    /// of them, as they are.
    @inlinable
    public mutating func append(encoded b: UnsafeRawBufferPointer, arguments count: Int) {
        argc &+= count
        out.append(b)
    }

    /// A static text argument (command names, option keywords).
    @inlinable
    public mutating func argument(_ s: StaticString) {
        argument(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// An array of bytes.
    @inlinable
    public mutating func argument(_ a: [UInt8]) {
        a.withUnsafeBytes { argument($0) }
    }

    /// A signed integer as decimal text.
    @inlinable
    public mutating func argument(_ v: Int64) {
        argc &+= 1
        out.appendBulk(decimal: v)
    }

    /// An integer whose `DecimalFormatter.digitCount` the caller has (it weighed the argument first).
    @inlinable
    public mutating func argument(_ v: Int64, digits: Int) {
        argc &+= 1
        out.appendBulk(decimal: v, digits: digits)
    }

    @inlinable
    public mutating func argument(_ v: Int) { argument(Int64(v)) }

    /// An unsigned integer as decimal text.
    @inlinable
    public mutating func argument(unsigned v: UInt64) {
        bulkHeader(DecimalFormatter.digitCount(unsigned: v), extra: 22)
        out.append(unsigned: v)
        crlf()
    }

    /// A stream ID as `ms-seq`.
    @inlinable
    public mutating func argument(_ id: StreamID) {
        bulkHeader(DecimalFormatter.digitCount(unsigned: id.ms) &+ 1 &+ DecimalFormatter.digitCount(unsigned: id.seq), extra: 44)
        out.append(unsigned: id.ms)
        out.append(UInt8(ascii: "-"))
        out.append(unsigned: id.seq)
        crlf()
    }

    /// A score: integral values as integers, others in the shortest decimal form that reads back as the
    /// same double (what `strtod` in the server parses), infinities as `inf` / `-inf`.
    @inlinable
    public mutating func argument(score d: Double) {
        var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)  // 40 bytes
        withUnsafeMutableBytes(of: &buffer) { raw in
            let n = RESPScore.format(d, into: raw.baseAddress!)
            argument(UnsafeRawBufferPointer(start: raw.baseAddress!, count: n))
        }
    }
}

/// The text of a score (a sorted set member's, a GEO or a `ZADD` argument).
public enum RESPScore {

    /// Writes the text of a score at `p` (at least 40 bytes) and returns its length. Integral values
    /// below 2^63 in magnitude are written as integers (`-0` keeps the sign of negative zero), others in
    /// the shortest round-trip form of the standard library (no allocation), infinities as `inf`/`-inf`.
    public static func format(_ d: Double, into p: UnsafeMutableRawPointer) -> Int {
        if d.isInfinite {
            let s: StaticString = d < 0 ? "-inf" : "inf"
            p.copyMemory(from: s.utf8Start, byteCount: s.utf8CodeUnitCount)
            return s.utf8CodeUnitCount
        }
        if d.isNaN {
            let s: StaticString = "nan"
            p.copyMemory(from: s.utf8Start, byteCount: 3)
            return 3
        }
        if d == 0 {
            if d.sign == .minus {
                p.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
                p.storeBytes(of: UInt8(ascii: "0"), toByteOffset: 1, as: UInt8.self)
                return 2
            }
            p.storeBytes(of: UInt8(ascii: "0"), as: UInt8.self)
            return 1
        }
        if d.rounded(.towardZero) == d, d.magnitude < 9.2e18 {
            return DecimalFormatter.write(Int64(d), into: p)
        }
        if let n = writeShortDecimal(d, into: p) { return n }
        var sink = ScoreTextSink(base: p)
        d.write(to: &sink)
        return sink.count
    }
}

extension RESPScore {
    /// A score of at most 8 decimals and no exponent (most scores people store, and every "%.3f" one) as
    /// `digits(d·10^k)` with a point k digits from the right, for the least k whose decimal gives `d` back;
    /// nil for anything else. This is the text of the shortest round trip (`description`) without its
    /// digit search, a fifth of the cost: the division by an exact 10^k is correctly rounded, so it equals
    /// `d` exactly when the decimal parses back to `d`; and with `ulp(d)·10^k < 1` no other decimal of k
    /// digits (nor any with fewer, tried first) rounds to `d`, so this is the only shortest one.
    @inline(__always)
    static func writeShortDecimal(_ d: Double, into p: UnsafeMutableRawPointer) -> Int? {
        let m = d.magnitude
        guard m >= 1e-3, m < 1e15 else { return nil }  // `description` writes an exponent outside
        let ulp = m.ulp
        var scale = 1.0
        for _ in 0..<8 {
            scale *= 10  // exact
            let scaled = m * scale
            guard scaled < 9_007_199_254_740_992, ulp * scale < 1 else { return nil }  // 2^53
            let r = scaled.rounded()
            // Most k fail by far (a fraction left of ~0.1-0.5): rejected without the division. A k that
            // works leaves at most ulp·10^k/2 + ulp(scaled)/2 ≤ 1.5·ulp·10^k, inside this bound.
            guard (scaled - r).magnitude <= 4 * ulp * scale, r / scale == m else { continue }
            let digits = UInt64(r)
            let pk = UInt64(scale)
            var at = 0
            if d < 0 {
                p.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
                at = 1
            }
            at += DecimalFormatter.write(unsigned: digits / pk, into: p + at)
            // 10^k + the fraction: a "1" then exactly k digits, leading zeros kept; the "1" becomes the point.
            let n = DecimalFormatter.write(unsigned: pk + digits % pk, into: p + at)
            p.storeBytes(of: UInt8(ascii: "."), toByteOffset: at, as: UInt8.self)
            return at + n
        }
        return nil
    }
}

/// Receives the standard library's shortest round-trip text of a double without building a `String`.
struct ScoreTextSink: TextOutputStream {
    let base: UnsafeMutableRawPointer
    var count = 0

    init(base: UnsafeMutableRawPointer) { self.base = base }

    mutating func put(_ b: UnsafeRawBufferPointer) {
        let n = min(b.count, 40 - count)
        guard n > 0, let src = b.baseAddress else { return }
        (base + count).copyMemory(from: src, byteCount: n)
        count += n
    }

    mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) { put(UnsafeRawBufferPointer(buffer)) }

    mutating func write(_ string: String) {
        var s = string
        s.withUTF8 { put(UnsafeRawBufferPointer($0)) }
    }
}
