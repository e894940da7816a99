/// Walks a ziplist blob entry by entry (strings borrowed, integers as integers).
///
/// Layout: `le32 zlbytes, le32 zltail, le16 zllen, entry*, 0xFF`; entry = prevlen (1 or 5 bytes),
/// encoding, data. The header size must equal the blob, each entry's prevlen must equal the previous
/// entry's size, zltail must point at the last entry, and a zllen below 65535 must match the count.
@frozen
public struct ZiplistReader {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let size: Int
    @usableFromInline var pos: Int
    @usableFromInline var prevSize: Int = 0
    @usableFromInline var lastEntryStart: Int = 0
    @usableFromInline let tail: Int
    public let blobOffset: Int
    public let declaredCount: Int
    @usableFromInline var _index: Int = 0
    /// Elements returned so far.
    @inlinable public var index: Int { _index }

    @inlinable
    public init(_ blob: UnsafeRawBufferPointer, blobOffset: Int) throws(RDBError) {
        guard blob.count >= 11, let b = blob.baseAddress else {
            throw RDBError.corrupt(at: blobOffset, "ziplist", "blob of \(blob.count) bytes is shorter than a header")
        }
        let total = Int(UInt32(littleEndian: b.loadUnaligned(as: UInt32.self)))
        guard total == blob.count else {
            throw RDBError.corrupt(at: blobOffset, "ziplist", "header says \(total) bytes, blob has \(blob.count)")
        }
        guard b.load(fromByteOffset: blob.count - 1, as: UInt8.self) == 0xFF else {
            throw RDBError.corrupt(at: blobOffset, "ziplist", "missing 0xFF terminator")
        }
        self.base = b
        self.size = blob.count
        self.pos = 10
        self.tail = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        self.blobOffset = blobOffset
        self.declaredCount = Int(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
        guard tail < blob.count else {
            throw RDBError.corrupt(at: blobOffset, "ziplist", "tail offset \(tail) is outside the blob")
        }
    }

    @inlinable
    public var isEmpty: Bool { base.load(fromByteOffset: 10, as: UInt8.self) == 0xFF }

    @inlinable
    func fail(_ detail: String) -> RDBError {
        RDBError.corrupt(at: blobOffset, "ziplist", "\(detail) at blob byte \(pos) (entry \(index))")
    }

    /// Inlined into each caller's loop for what small values mostly are (a 1-byte prevlen, then a string of up
    /// to 63 bytes or an integer); everything else, the end, and every error go through `nextSlow`, which checks
    /// the same things (the prevlen against the previous entry's size, every length against the bytes left).
    @inlinable @inline(__always)
    public mutating func next() throws(RDBError) -> RDBString? {
        let avail = size &- 1 &- pos
        if _fastPath(avail >= 2) {
            let p = base + pos
            let b0 = p.load(as: UInt8.self)
            if _fastPath(Int(b0) == prevSize && b0 < 0xFE) {
                let e = p.load(fromByteOffset: 1, as: UInt8.self)
                if e < 0x40 {
                    let n = Int(e)
                    if _fastPath(n &+ 2 <= avail) {
                        stepFast(n &+ 2)
                        return RDBString(bytes: UnsafeRawBufferPointer(start: p + 2, count: n))
                    }
                } else if e &- 0xF1 < 13 {
                    stepFast(2)
                    return RDBString(integer: Int64(e & 0x0F) &- 1)
                } else if avail >= 10 && (e == 0xC0 || e == 0xD0 || e == 0xE0 || e == 0xF0 || e == 0xFE) {
                    // int16/32/64/24/8: little-endian, sign-extended; with 10 bytes left an 8-byte load after
                    // the encoding byte stays inside the blob.
                    let width = e == 0xC0 ? 2 : e == 0xD0 ? 4 : e == 0xE0 ? 8 : e == 0xF0 ? 3 : 1
                    let shift = UInt64(64 &- 8 &* width)
                    let raw = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
                    stepFast(width &+ 2)
                    return RDBString(integer: Int64(bitPattern: raw << shift) >> shift)
                }
            }
        }
        return try nextSlow()
    }

    /// Past an entry of `entrySize` bytes at `pos`.
    @inlinable @inline(__always)
    mutating func stepFast(_ entrySize: Int) {
        lastEntryStart = pos
        prevSize = entrySize
        pos &+= entrySize
        _index &+= 1
    }

    /// `next` for every entry, the end and the errors.
    @usableFromInline @inline(never)
    mutating func nextSlow() throws(RDBError) -> RDBString? {
        let avail = size - 1 - pos
        if avail <= 0 {
            if declaredCount != 65535 && declaredCount != index {
                throw fail("header counts \(declaredCount) entries, found \(index)")
            }
            let expectedTail = index == 0 ? 10 : lastEntryStart
            if tail != expectedTail { throw fail("tail offset \(tail) does not point at the last entry (\(expectedTail))") }
            return nil
        }
        let start = pos
        let p = base + pos
        var h: Int
        let prevlen: Int
        let b0 = p.load(as: UInt8.self)
        if b0 < 0xFE {
            prevlen = Int(b0)
            h = 1
        } else if b0 == 0xFE {
            guard avail >= 5 else { throw fail("5-byte prevlen runs past the end") }
            prevlen = Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 1, as: UInt32.self)))
            h = 5
        } else {
            throw fail("terminator before the end of the blob")
        }
        guard prevlen == prevSize else { throw fail("prevlen \(prevlen) does not match the previous entry's size \(prevSize)") }
        guard h < avail else { throw fail("entry header runs past the end") }
        let e = p.load(fromByteOffset: h, as: UInt8.self)
        let result: RDBString
        var dataLen: Int
        switch e >> 6 {
        case 0:
            dataLen = Int(e & 0x3F)
            h += 1
            guard dataLen <= avail - h else { throw fail("string runs past the end") }
            result = RDBString(bytes: UnsafeRawBufferPointer(start: p + h, count: dataLen))
        case 1:
            guard avail - h >= 2 else { throw fail("14-bit string header runs past the end") }
            dataLen = Int(e & 0x3F) << 8 | Int(p.load(fromByteOffset: h + 1, as: UInt8.self))
            h += 2
            guard dataLen <= avail - h else { throw fail("string runs past the end") }
            result = RDBString(bytes: UnsafeRawBufferPointer(start: p + h, count: dataLen))
        case 2:
            guard e == 0x80, avail - h >= 5 else { throw fail("invalid 32-bit string header") }
            dataLen = Int(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: h + 1, as: UInt32.self)))
            h += 5
            guard dataLen <= avail - h else { throw fail("string of \(dataLen) bytes runs past the end") }
            result = RDBString(bytes: UnsafeRawBufferPointer(start: p + h, count: dataLen))
        default:
            h += 1
            let q = p + h
            switch e {
            case 0xC0:
                dataLen = 2
                guard avail - h >= 2 else { throw fail("int16 runs past the end") }
                result = RDBString(integer: Int64(Int16(littleEndian: q.loadUnaligned(as: Int16.self))))
            case 0xD0:
                dataLen = 4
                guard avail - h >= 4 else { throw fail("int32 runs past the end") }
                result = RDBString(integer: Int64(Int32(littleEndian: q.loadUnaligned(as: Int32.self))))
            case 0xE0:
                dataLen = 8
                guard avail - h >= 8 else { throw fail("int64 runs past the end") }
                result = RDBString(integer: Int64(littleEndian: q.loadUnaligned(as: Int64.self)))
            case 0xF0:
                dataLen = 3
                guard avail - h >= 3 else { throw fail("int24 runs past the end") }
                let u = UInt32(q.load(as: UInt8.self)) | UInt32(q.load(fromByteOffset: 1, as: UInt8.self)) << 8
                    | UInt32(q.load(fromByteOffset: 2, as: UInt8.self)) << 16
                result = RDBString(integer: Int64(Int32(bitPattern: u << 8) >> 8))
            case 0xFE:
                dataLen = 1
                guard avail - h >= 1 else { throw fail("int8 runs past the end") }
                result = RDBString(integer: Int64(Int8(bitPattern: q.load(as: UInt8.self))))
            case 0xF1...0xFD:
                dataLen = 0
                result = RDBString(integer: Int64(e & 0x0F) - 1)
            default:
                throw fail("invalid encoding byte 0x\(String(e, radix: 16))")
            }
        }
        let entrySize = h + dataLen
        lastEntryStart = start
        prevSize = entrySize
        pos = start + entrySize
        _index += 1
        return result
    }

    @inlinable
    public mutating func nextRequired(_ what: StaticString) throws(RDBError) -> RDBString {
        guard let v = try next() else { throw fail("ends where \(what) was expected") }
        return v
    }
}
