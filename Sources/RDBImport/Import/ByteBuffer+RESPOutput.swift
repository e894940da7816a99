import NIOCore
import RDBKit

/// `RESPEncoder` writes into a `ByteBuffer` after its writer index: positions are byte indices of the
/// buffer, it never flushes. (Moves to the connection layer with it.)
extension ByteBuffer: RESPOutput {
    @inlinable public var position: Int { writerIndex }
    @inlinable public var flushedBytes: Int { 0 }

    @inlinable
    public mutating func reserve(_ n: Int) { reserveCapacity(minimumWritableBytes: n) }

    @inlinable
    public mutating func append(_ byte: UInt8) { writeInteger(byte) }

    @inlinable
    public mutating func append(_ bytes: UnsafeRawBufferPointer) { writeBytes(bytes) }

    @inlinable
    public mutating func append(decimal v: Int64) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 20) { DecimalFormatter.write(v, into: $0.baseAddress!) }
    }

    @inlinable
    public mutating func append(unsigned v: UInt64) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 20) { DecimalFormatter.write(unsigned: v, into: $0.baseAddress!) }
    }

    @inlinable
    public mutating func appendGap(_ n: Int) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: n) { _ in n }
    }

    @inlinable
    public mutating func withBytes(at index: Int, count: Int, _ body: (UnsafeMutableRawPointer) -> Void) {
        let from = index - readerIndex
        precondition(from >= 0 && index + count <= writerIndex)
        withUnsafeMutableReadableBytes { body($0.baseAddress! + from) }
    }

    @inlinable
    public mutating func resizeGap(at index: Int, from oldCount: Int, to newCount: Int) {
        let tailStart = index + oldCount
        let tail = writerIndex - tailStart
        if newCount > oldCount { appendGap(newCount - oldCount) }
        try! copyBytes(at: tailStart, to: index + newCount, length: tail)
        moveWriterIndex(to: index + newCount + tail)
    }

    @inlinable
    public mutating func truncate(to index: Int) { moveWriterIndex(to: index) }
}
