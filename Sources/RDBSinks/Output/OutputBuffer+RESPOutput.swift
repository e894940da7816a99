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
        let n = b.count
        reserve(n &+ 25)
        var p = storage + count
        p.storeBytes(of: UInt8(ascii: "$"), as: UInt8.self)
        p += 1
        if n < 10 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 &+ n), as: UInt8.self)
            p += 1
        } else {
            p += DecimalFormatter.write(unsigned: UInt64(n), into: p)
        }
        p.storeBytes(of: UInt16(0x0A0D).littleEndian, as: UInt16.self)  // CR LF
        p += 2
        if n > 0 {
            p.copyMemory(from: b.baseAddress!, byteCount: n)
            p += n
        }
        p.storeBytes(of: UInt16(0x0A0D).littleEndian, as: UInt16.self)  // CR LF
        count = p - storage &+ 2
    }

    /// The decimal text of `v` as one bulk string, with one capacity check.
    @inlinable
    public func appendBulk(decimal v: Int64) {
        reserve(48)
        let digits = DecimalFormatter.digitCount(v)
        var p = storage + count
        p.storeBytes(of: UInt8(ascii: "$"), as: UInt8.self)
        p += 1
        if digits < 10 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 &+ digits), as: UInt8.self)
            p += 1
        } else {
            p += DecimalFormatter.write(unsigned: UInt64(digits), into: p)
        }
        p.storeBytes(of: UInt16(0x0A0D).littleEndian, as: UInt16.self)  // CR LF
        p += 2
        p += DecimalFormatter.write(v, into: p)
        p.storeBytes(of: UInt16(0x0A0D).littleEndian, as: UInt16.self)  // CR LF
        count = p - storage &+ 2
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
