#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RDBKit

/// `RESPEncoder` writes into the pending bytes: positions are offsets in them.
extension OutputBuffer: RESPOutput {
    @inlinable public var position: Int { count }

    @inlinable
    public func append(decimal v: Int64) {
        reserve(20)
        count &+= DecimalFormatter.write(v, into: storage + count)
    }

    /// `$<count>\r\n<bytes>\r\n` with one capacity check.
    @inlinable
    public func appendBulk(_ b: UnsafeRawBufferPointer) {
        reserve(b.count &+ 25)
        count = Self.storeBulk(b, at: storage + count) - storage
    }

    /// The decimal text of `v` as one bulk string, with one capacity check.
    @inlinable
    public func appendBulk(decimal v: Int64) {
        appendBulk(decimal: v, digits: DecimalFormatter.digitCount(v))
    }

    /// The decimal text of `v`, `digits` (`DecimalFormatter.digitCount(v)`) characters, as one bulk string.
    @inlinable
    public func appendBulk(decimal v: Int64, digits: Int) {
        reserve(48)
        count = Self.storeBulk(decimal: v, digits: digits, at: storage + count) - storage
    }

    /// Room `storeBulk` needs for `s`.
    @inlinable
    static func bulkRoom(_ s: RDBString) -> Int { s.bytes.count &+ 27 }  // an integer: 20 characters at most

    /// Stores `s` as one bulk string (an integer as its decimal text) at `start`, which has `bulkRoom(s)`
    /// bytes of room; returns where the next byte goes.
    @inlinable @inline(__always)
    static func storeBulk(_ s: RDBString, at start: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        s.isInteger ? storeBulk(decimal: s.integer, at: start) : storeBulk(s.bytes, at: start)
    }

    /// `$<count>\r\n<bytes>\r\n` at `start` (`b.count + 25` bytes of room); returns where the next byte goes.
    @inlinable @inline(__always)
    static func storeBulk(_ b: UnsafeRawBufferPointer, at start: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        let n = b.count
        var p = storeBulkHeader(n, at: start)
        if n > 0 {
            copy(p, b.baseAddress!, n)
            p += n
        }
        p.storeBytes(of: UInt16(0x0A0D).littleEndian, as: UInt16.self)  // CR LF
        return p + 2
    }

    /// The decimal text of `v` as one bulk string at `start` (48 bytes of room); returns where the next byte goes.
    @inlinable @inline(__always)
    static func storeBulk(decimal v: Int64, at start: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        storeBulk(decimal: v, digits: DecimalFormatter.digitCount(v), at: start)
    }

    /// `storeBulk(decimal:at:)` of a value whose `DecimalFormatter.digitCount` the caller has.
    @inlinable @inline(__always)
    static func storeBulk(decimal v: Int64, digits: Int, at start: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        var p = storeBulkHeader(digits, at: start)
        p += DecimalFormatter.write(v, digits: digits, into: p)
        p.storeBytes(of: UInt16(0x0A0D).littleEndian, as: UInt16.self)  // CR LF
        return p + 2
    }

    /// Stores `*<arguments>\r\n`, for 1 to 9 arguments, at `p` (room checked by the caller); returns where the
    /// first argument goes.
    @inlinable @inline(__always)
    static func storeCommandHeader(arguments n: Int, at p: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        p.storeBytes(of: UInt32(0x0A0D_302A).littleEndian &+ UInt32(truncatingIfNeeded: n) &<< 8, as: UInt32.self)  // "*0\r\n" + n
        return p + 4
    }

    /// Stores encoded bytes (a fixed argument such as `$3\r\nSET\r\n`) at `p`; returns where the next byte goes.
    @inlinable @inline(__always)
    static func store(_ word: UnsafeRawBufferPointer, at p: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        p.copyMemory(from: word.baseAddress!, byteCount: word.count)
        return p + word.count
    }

    @inlinable @inline(__always)
    static func store(_ word: StaticString, at p: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        store(UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount), at: p)
    }

    /// Stores `$<length>\r\n` at `p` (room checked by the caller); returns where the bytes go.
    @inlinable
    static func storeBulkHeader(_ length: Int, at start: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        var p = start
        p.storeBytes(of: UInt8(ascii: "$"), as: UInt8.self)
        p += 1
        if length < 10 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 &+ length), as: UInt8.self)
            p += 1
        } else if length < 100 {
            let table = UnsafeRawPointer(DecimalFormatter.pairs.utf8Start)
            p.storeBytes(of: table.loadUnaligned(fromByteOffset: length &* 2, as: UInt16.self), as: UInt16.self)
            p += 2
        } else {
            p += DecimalFormatter.write(unsigned: UInt64(length), into: p)
        }
        p.storeBytes(of: UInt16(0x0A0D).littleEndian, as: UInt16.self)  // CR LF
        return p + 2
    }

    @inlinable
    public func appendGap(_ n: Int) {
        reserve(n)
        count &+= n
    }

    @inlinable
    public func withBytes(at index: Int, count n: Int, _ body: (UnsafeMutableRawPointer) -> Void) {
        precondition(index >= 0 && index + n <= count)
        body(storage + index)
    }

    @inlinable
    public func resizeGap(at index: Int, from oldCount: Int, to newCount: Int) {
        let tail = count - index - oldCount
        if newCount > oldCount { reserve(newCount - oldCount) }
        memmove(storage + index + newCount, storage + index + oldCount, tail)
        count = index + newCount + tail
    }
}
