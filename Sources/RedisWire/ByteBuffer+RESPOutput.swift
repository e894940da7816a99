import NIOCore
import RDBKit

/// `RESPEncoder` writes into a `ByteBuffer` after its writer index: positions are the buffer's byte
/// indices, and it never flushes.
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
        let offset = index - readerIndex
        precondition(offset >= 0 && index + count <= writerIndex)
        withUnsafeMutableReadableBytes { body($0.baseAddress! + offset) }
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

extension ByteBuffer {
    /// Lets `body` encode commands at the end of this buffer. The buffer moves into the encoder and back,
    /// so its storage is not copied.
    @inlinable
    public mutating func writeCommands(_ body: (inout RESPEncoder<ByteBuffer>) -> Void) {
        var encoder = RESPEncoder(out: ByteBuffer())
        swap(&encoder.out, &self)
        body(&encoder)
        swap(&encoder.out, &self)
    }

    /// Writes one command whose arguments are byte strings.
    @inlinable
    public mutating func writeCommand(_ args: [[UInt8]]) {
        writeCommands { e in
            e.begin(maxArguments: args.count)
            for a in args { e.argument(a) }
            e.end()
        }
    }

    /// Writes one command whose arguments are texts (sent as their UTF-8 bytes).
    @inlinable
    public mutating func writeCommand(_ args: [String]) {
        writeCommand(args.map { Array($0.utf8) })
    }
}
