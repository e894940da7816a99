/// A read position over a contiguous window of input bytes.
///
/// The window is either the whole memory-mapped file or the part of a streamed input that the
/// reader has buffered; `baseOffset` is the absolute input offset of the window's first byte, so
/// every error names a position in the input. Each read checks the bounds once and throws
/// `RDBError.truncated` when the window ends first.
@frozen
public struct ByteCursor {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let end: Int
    /// Position inside the window.
    public var position: Int
    /// Absolute input offset of the window's first byte.
    public let baseOffset: Int

    @inlinable
    public init(_ window: UnsafeRawBufferPointer, baseOffset: Int = 0, position: Int = 0) {
        // An empty buffer may have a nil base; any non-null pointer works for a zero-length window.
        assert(position >= 0, "a cursor before its window")  // (reads are checked against the end only)
        self.base = window.baseAddress ?? UnsafeRawPointer(bitPattern: 0x10)!
        self.end = window.count
        self.position = position
        self.baseOffset = baseOffset
    }

    /// Absolute offset of the read position.
    @inlinable public var offset: Int { baseOffset + position }
    /// Bytes left in the window.
    @inlinable public var remaining: Int { end - position }
    @inlinable public var isAtEnd: Bool { position >= end }

    @inlinable @inline(__always)
    func need(_ n: Int, _ what: StaticString) throws(RDBError) {
        if _slowPath(n > end &- position || n < 0) {
            throw RDBError.truncated(at: offset, need: n, have: end - position, what: what)
        }
    }

    @inlinable @inline(__always)
    public mutating func readUInt8(_ what: StaticString = "a byte") throws(RDBError) -> UInt8 {
        try need(1, what)
        let v = base.load(fromByteOffset: position, as: UInt8.self)
        position &+= 1
        return v
    }

    @inlinable
    public func peekUInt8() -> UInt8? {
        position < end ? base.load(fromByteOffset: position, as: UInt8.self) : nil
    }

    @inlinable
    public mutating func readLE<T: FixedWidthInteger>(_: T.Type, _ what: StaticString) throws(RDBError) -> T {
        try need(MemoryLayout<T>.size, what)
        let v = base.loadUnaligned(fromByteOffset: position, as: T.self)
        position &+= MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    @inlinable
    public mutating func readBE<T: FixedWidthInteger>(_: T.Type, _ what: StaticString) throws(RDBError) -> T {
        try need(MemoryLayout<T>.size, what)
        let v = base.loadUnaligned(fromByteOffset: position, as: T.self)
        position &+= MemoryLayout<T>.size
        return T(bigEndian: v)
    }

    @inlinable
    public mutating func readDoubleLE(_ what: StaticString = "a binary double") throws(RDBError) -> Double {
        Double(bitPattern: try readLE(UInt64.self, what))
    }

    /// Borrows `count` bytes and moves past them.
    @inlinable @inline(__always)
    public mutating func readBytes(_ count: Int, _ what: StaticString) throws(RDBError) -> UnsafeRawBufferPointer {
        try need(count, what)
        let p = UnsafeRawBufferPointer(start: base + position, count: count)
        position &+= count
        return p
    }

    @inlinable
    public mutating func skip(_ count: Int, _ what: StaticString) throws(RDBError) {
        try need(count, what)
        position &+= count
    }

    /// The window bytes between two positions.
    @inlinable
    public func bytes(from start: Int, to stop: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + start, count: stop - start)
    }

    // MARK: RDB length encoding

    /// What the first byte(s) of an RDB length field hold.
    @frozen
    public enum LengthOrEncoding {
        case length(UInt64)
        /// A `11eeeeee` byte: special string encoding `e` (0 int8, 1 int16, 2 int32, 3 LZF).
        case encoded(UInt8)
    }

    /// Reads an RDB length field (`00`/`01`/`10` prefixes) or reports a special string encoding.
    @inlinable @inline(__always)
    public mutating func readLengthOrEncoding() throws(RDBError) -> LengthOrEncoding {
        let start = offset
        let b0 = try readUInt8("a length")
        switch b0 >> 6 {
        case 0:
            return .length(UInt64(b0))
        case 1:
            let b1 = try readUInt8("a 14-bit length")
            return .length(UInt64(b0 & 0x3F) << 8 | UInt64(b1))
        case 3:
            return .encoded(b0 & 0x3F)
        default:
            if b0 == 0x80 { return .length(UInt64(try readBE(UInt32.self, "a 32-bit length"))) }
            if b0 == 0x81 { return .length(try readBE(UInt64.self, "a 64-bit length")) }
            throw RDBError.corrupt(at: start, "length", "unknown length prefix byte 0x\(String(b0, radix: 16))")
        }
    }

    /// Reads an RDB length field; a special-encoding byte here is an error.
    ///
    /// Inlined for 6- and 14-bit lengths (nearly every count and size in a file); the 32/64-bit forms,
    /// encodings and errors go through `readLengthSlow`.
    @inlinable @inline(__always)
    public mutating func readLength(_ what: StaticString = "a length") throws(RDBError) -> UInt64 {
        if _fastPath(position < end) {
            let b0 = base.load(fromByteOffset: position, as: UInt8.self)
            if b0 < 0x40 {
                position &+= 1
                return UInt64(b0)
            }
            if b0 < 0x80 && end &- position >= 2 {
                let b1 = base.load(fromByteOffset: position &+ 1, as: UInt8.self)
                position &+= 2
                return UInt64(b0 & 0x3F) << 8 | UInt64(b1)
            }
        }
        return try readLengthSlow(what)
    }

    @usableFromInline @inline(never)
    mutating func readLengthSlow(_ what: StaticString) throws(RDBError) -> UInt64 {
        let start = offset
        switch try readLengthOrEncoding() {
        case .length(let v): return v
        case .encoded(let e):
            throw RDBError.corrupt(at: start, what, "found string-encoding byte 0x\(String(0xC0 | e, radix: 16)) where a length belongs")
        }
    }

    /// Reads a length that counts items of at least `minItemSize` bytes each, and checks it against what can
    /// remain in the window, so that no caller allocates or loops on an impossible count.
    @inlinable
    public mutating func readCount(_ what: StaticString, minItemSize: Int = 1) throws(RDBError) -> Int {
        let start = offset
        let v = try readLength(what)
        let limit = remaining / max(minItemSize, 1)
        if _slowPath(v > UInt64(limit)) {
            throw RDBError.countExceedsInput(at: start, v, what: what, remaining: remaining, minItemSize: minItemSize)
        }
        return Int(v)
    }
}
