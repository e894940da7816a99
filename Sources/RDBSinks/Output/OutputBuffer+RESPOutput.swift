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
