/// A byte sink that `RESPEncoder` writes commands into (`OutputBuffer` in RDBSinks, NIO's `ByteBuffer` in
/// the connection layer).
///
/// Positions are indices that only the sink interprets: `position` is where the next byte goes, and
/// `withBytes(at:count:_:)`, `resizeGap(at:from:to:)` and `truncate(to:)` take positions the encoder read
/// from it earlier, while no flush happened in between. The encoder is generic over its sink and every
/// requirement is meant to be implemented `@inlinable`, so a specialized encoder writes straight into the
/// sink's memory (no existential, no allocation per argument).
public protocol RESPOutput {
    /// Where the next appended byte goes.
    var position: Int { get }
    /// Bytes written out (flushed) so far: `flushedBytes + position` only grows while bytes are appended.
    /// Sinks that never flush return 0.
    var flushedBytes: Int { get }
    /// Makes room for at least `n` more bytes (a hint: appends still grow the sink when needed).
    mutating func reserve(_ n: Int)
    mutating func append(_ byte: UInt8)
    mutating func append(_ bytes: UnsafeRawBufferPointer)
    /// Appends the decimal text of `v`.
    mutating func append(decimal v: Int64)
    /// Appends the decimal text of `v`.
    mutating func append(unsigned v: UInt64)
    /// Appends `n` bytes whose content the caller stores later with `withBytes(at:count:_:)`.
    mutating func appendGap(_ n: Int)
    /// Lets `body` store `count` bytes at `index` (written earlier, not flushed since).
    mutating func withBytes(at index: Int, count: Int, _ body: (UnsafeMutableRawPointer) -> Void)
    /// Replaces the `oldCount` bytes at `index` by `newCount` bytes of unspecified content, moving the
    /// bytes after them.
    mutating func resizeGap(at index: Int, from oldCount: Int, to newCount: Int)
    /// Drops the bytes from `index` on.
    mutating func truncate(to index: Int)
    /// Appends one bulk string, `$<count>\r\n<bytes>\r\n` (a sink may write it with one capacity check).
    mutating func appendBulk(_ b: UnsafeRawBufferPointer)
    /// Appends the decimal text of `v` as one bulk string.
    mutating func appendBulk(decimal v: Int64)
    /// Appends the decimal text of `v`, `digits` (`DecimalFormatter.digitCount(v)`) characters, as one bulk
    /// string.
    mutating func appendBulk(decimal v: Int64, digits: Int)
}

extension RESPOutput {
    @inlinable
    public mutating func appendBulk(_ b: UnsafeRawBufferPointer) {
        reserve(b.count &+ 25)
        append(UInt8(ascii: "$"))
        append(decimal: Int64(b.count))
        append(0x0D)
        append(0x0A)
        append(b)
        append(0x0D)
        append(0x0A)
    }

    @inlinable
    public mutating func appendBulk(decimal v: Int64, digits: Int) { appendBulk(decimal: v) }

    @inlinable
    public mutating func appendBulk(decimal v: Int64) {
        reserve(48)
        append(UInt8(ascii: "$"))
        append(decimal: Int64(DecimalFormatter.digitCount(v)))
        append(0x0D)
        append(0x0A)
        append(decimal: v)
        append(0x0D)
        append(0x0A)
    }
}
