/// Walks an intset blob: `le32 width (2, 4 or 8), le32 count, count × signed LE integers`, ascending and unique.
@frozen
public struct IntsetReader {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let width: Int
    public let count: Int
    public let blobOffset: Int
    @usableFromInline var _index: Int = 0
    /// Elements returned so far.
    @inlinable public var index: Int { _index }
    @usableFromInline var previous: Int64 = .min

    @inlinable
    public init(_ blob: UnsafeRawBufferPointer, blobOffset: Int) throws(RDBError) {
        guard blob.count >= 8, let b = blob.baseAddress else {
            throw RDBError.corrupt(at: blobOffset, "intset", "blob of \(blob.count) bytes is shorter than a header")
        }
        let w = Int(UInt32(littleEndian: b.loadUnaligned(as: UInt32.self)))
        guard w == 2 || w == 4 || w == 8 else {
            throw RDBError.corrupt(at: blobOffset, "intset", "element width \(w) is not 2, 4 or 8")
        }
        let n = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        guard n.multipliedReportingOverflow(by: w).partialValue + 8 == blob.count else {
            throw RDBError.corrupt(at: blobOffset, "intset", "\(n) elements of \(w) bytes do not fill \(blob.count) bytes")
        }
        self.base = b + 8
        self.width = w
        self.count = n
        self.blobOffset = blobOffset
    }

    /// The next member, or nil after the last; members must be strictly increasing (as the server keeps them).
    @inlinable @inline(__always)
    public mutating func next() throws(RDBError) -> Int64? {
        guard _index < count else { return nil }
        let v: Int64
        switch width {
        case 2: v = Int64(Int16(littleEndian: base.loadUnaligned(fromByteOffset: _index &* 2, as: Int16.self)))
        case 4: v = Int64(Int32(littleEndian: base.loadUnaligned(fromByteOffset: _index &* 4, as: Int32.self)))
        default: v = Int64(littleEndian: base.loadUnaligned(fromByteOffset: _index &* 8, as: Int64.self))
        }
        if _slowPath(_index > 0 && v <= previous) { throw notIncreasing(v) }
        previous = v
        _index &+= 1
        return v
    }

    @usableFromInline @inline(never)
    func notIncreasing(_ v: Int64) -> RDBError {
        RDBError.corrupt(at: blobOffset, "intset", "element \(_index) (\(v)) is not above the previous (\(previous))")
    }
}

/// Walks a zipmap blob (Redis 2.4 hashes): `u8 count, (len key, len value, u8 free, value, free bytes)*, 0xFF`.
@frozen
public struct ZipmapReader {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let size: Int
    @usableFromInline var pos: Int = 1
    public let blobOffset: Int
    public let declaredCount: Int
    @usableFromInline var _index: Int = 0
    /// Elements returned so far.
    @inlinable public var index: Int { _index }

    @inlinable
    public init(_ blob: UnsafeRawBufferPointer, blobOffset: Int) throws(RDBError) {
        guard blob.count >= 2, let b = blob.baseAddress else {
            throw RDBError.corrupt(at: blobOffset, "zipmap", "blob of \(blob.count) bytes is too short")
        }
        self.base = b
        self.size = blob.count
        self.blobOffset = blobOffset
        self.declaredCount = Int(b.load(as: UInt8.self))
    }

    @inlinable
    func fail(_ detail: String) -> RDBError {
        RDBError.corrupt(at: blobOffset, "zipmap", "\(detail) at blob byte \(pos) (pair \(index))")
    }

    @inlinable
    mutating func readLen() throws(RDBError) -> Int? {
        guard pos < size else { throw fail("runs past the end") }
        let b = base.load(fromByteOffset: pos, as: UInt8.self)
        if b == 0xFF { return nil }
        if b < 0xFE {
            pos += 1
            return Int(b)
        }
        guard size - pos >= 5 else { throw fail("5-byte length runs past the end") }
        let v = Int(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: pos + 1, as: UInt32.self)))
        pos += 5
        return v
    }

    /// The next field/value pair, or nil at the end marker.
    @inlinable
    public mutating func next() throws(RDBError) -> (field: RDBString, value: RDBString)? {
        guard let kl = try readLen() else {
            if pos != size - 1 { throw fail("end marker before the end of the blob") }
            if declaredCount != 254 && declaredCount != index { throw fail("header counts \(declaredCount) pairs, found \(index)") }
            return nil
        }
        guard kl <= size - pos else { throw fail("field runs past the end") }
        let field = UnsafeRawBufferPointer(start: base + pos, count: kl)
        pos += kl
        guard let vl = try readLen() else { throw fail("end marker where a value length was expected") }
        guard pos < size else { throw fail("free byte runs past the end") }
        let free = Int(base.load(fromByteOffset: pos, as: UInt8.self))
        pos += 1
        guard vl <= size - pos, free <= size - pos - vl else { throw fail("value runs past the end") }
        let value = UnsafeRawBufferPointer(start: base + pos, count: vl)
        pos += vl + free
        _index += 1
        return (RDBString(bytes: field), RDBString(bytes: value))
    }
}
