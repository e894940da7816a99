/// Walks a listpack blob element by element (strings borrowed, integers as integers).
///
/// Layout: `le32 total_bytes, le16 num_elements, element*, 0xFF`. Each element is encoding+data followed
/// by a 1–5 byte back-length that a forward walk steps over. Every step is bounds-checked against the blob;
/// the header's total must equal the blob size and the walk must end exactly on the terminator.
@frozen
public struct ListpackReader {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let size: Int
    @usableFromInline var pos: Int
    /// Absolute input offset of the string that holds the blob (for errors).
    public let blobOffset: Int
    /// The header's element count (65535 = unknown).
    public let declaredCount: Int
    /// Elements returned so far.
    @usableFromInline var _index: Int = 0
    /// Elements returned so far.
    @inlinable public var index: Int { _index }

    @inlinable
    public init(_ blob: UnsafeRawBufferPointer, blobOffset: Int) throws(RDBError) {
        guard blob.count >= 7, let b = blob.baseAddress else {
            throw RDBError.corrupt(at: blobOffset, "listpack", "blob of \(blob.count) bytes is shorter than a header")
        }
        let total = Int(UInt32(littleEndian: b.loadUnaligned(as: UInt32.self)))
        guard total == blob.count else {
            throw RDBError.corrupt(at: blobOffset, "listpack", "header says \(total) bytes, blob has \(blob.count)")
        }
        guard b.load(fromByteOffset: blob.count - 1, as: UInt8.self) == 0xFF else {
            throw RDBError.corrupt(at: blobOffset, "listpack", "missing 0xFF terminator")
        }
        self.base = b
        self.size = blob.count
        self.pos = 6
        self.blobOffset = blobOffset
        self.declaredCount = Int(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt16.self)))
    }

    @inlinable
    public var isEmpty: Bool { base.load(fromByteOffset: 6, as: UInt8.self) == 0xFF }

    @inlinable
    func fail(_ detail: String) -> RDBError {
        RDBError.corrupt(at: blobOffset, "listpack", "\(detail) at blob byte \(pos) (element \(index))")
    }

    /// Bytes of the back-length field after an entry of `l` bytes (encoding and data).
    @inlinable
    public static func backlenSize(_ l: Int) -> Int {
        l <= 127 ? 1 : l < 16383 ? 2 : l < 2_097_151 ? 3 : l < 268_435_455 ? 4 : 5
    }

    /// The next element, or nil at the terminator.
    ///
    /// Inlined into each caller's loop for the two encodings small values mostly use (7-bit integers
    /// and strings of up to 63 bytes, each with a 1-byte back-length); everything else, the terminator
    /// and every error go through `nextSlow`, which checks the same bounds.
    @inlinable @inline(__always)
    public mutating func next() throws(RDBError) -> RDBString? {
        let avail = size &- 1 &- pos
        if _fastPath(avail >= 2) {
            let p = base + pos
            let b0 = p.load(as: UInt8.self)
            if b0 < 0x80 {
                pos &+= 2
                _index &+= 1
                return RDBString(integer: Int64(b0))
            }
            if b0 < 0xC0 {
                let n = Int(b0 & 0x3F)
                if _fastPath(n &+ 2 <= avail) {
                    pos &+= n &+ 2
                    _index &+= 1
                    return RDBString(bytes: UnsafeRawBufferPointer(start: p + 1, count: n))
                }
            } else if b0 < 0xE0 {
                if avail >= 3 {
                    let u = Int(b0 & 0x1F) << 8 | Int(p.load(fromByteOffset: 1, as: UInt8.self))
                    pos &+= 3
                    _index &+= 1
                    return RDBString(integer: Int64(u >= 4096 ? u - 8192 : u))
                }
            } else if b0 &- 0xF1 < 4 && avail >= 10 {
                // int16/24/32/64: 2, 3, 4 or 8 little-endian bytes, sign-extended; with 10 bytes left
                // an 8-byte load after the encoding byte stays inside the blob.
                let width = b0 == 0xF4 ? 8 : Int(b0 &- 0xEF)
                let shift = UInt64(64 &- 8 &* width)
                let raw = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 1, as: UInt64.self))
                pos &+= width &+ 2
                _index &+= 1
                return RDBString(integer: Int64(bitPattern: raw << shift) >> shift)
            }
        }
        return try nextSlow()
    }

    /// `next` for every encoding, the terminator and the errors.
    @usableFromInline @inline(never)
    mutating func nextSlow() throws(RDBError) -> RDBString? {
        // The terminator is the last byte, so while pos < size - 1 at least one byte of element is present.
        let avail = size - 1 - pos
        if avail <= 0 {
            if declaredCount != 65535 && declaredCount != index { throw fail("header counts \(declaredCount) elements, found \(index)") }
            return nil
        }
        let p = base + pos
        let b0 = p.load(as: UInt8.self)
        let result: RDBString
        let encLen: Int
        if b0 & 0x80 == 0 {
            result = RDBString(integer: Int64(b0))
            encLen = 1
        } else if b0 & 0xC0 == 0x80 {
            let n = Int(b0 & 0x3F)
            encLen = 1 + n
            guard encLen <= avail else { throw fail("string runs past the end") }
            result = RDBString(bytes: UnsafeRawBufferPointer(start: p + 1, count: n))
        } else if b0 & 0xE0 == 0xC0 {
            guard avail >= 2 else { throw fail("13-bit integer runs past the end") }
            let u = Int(b0 & 0x1F) << 8 | Int(p.load(fromByteOffset: 1, as: UInt8.self))
            result = RDBString(integer: Int64(u >= 4096 ? u - 8192 : u))
            encLen = 2
        } else if b0 & 0xF0 == 0xE0 {
            guard avail >= 2 else { throw fail("12-bit string header runs past the end") }
            let n = Int(b0 & 0x0F) << 8 | Int(p.load(fromByteOffset: 1, as: UInt8.self))
            encLen = 2 + n
            guard encLen <= avail else { throw fail("string runs past the end") }
            result = RDBString(bytes: UnsafeRawBufferPointer(start: p + 2, count: n))
        } else {
            switch b0 {
            case 0xF0:
                guard avail >= 5 else { throw fail("32-bit string header runs past the end") }
                let n = Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 1, as: UInt32.self)))
                guard n <= avail - 5 else { throw fail("string of \(n) bytes runs past the end") }
                encLen = 5 + n
                result = RDBString(bytes: UnsafeRawBufferPointer(start: p + 5, count: n))
            case 0xF1:
                guard avail >= 3 else { throw fail("int16 runs past the end") }
                result = RDBString(integer: Int64(Int16(littleEndian: p.loadUnaligned(fromByteOffset: 1, as: Int16.self))))
                encLen = 3
            case 0xF2:
                guard avail >= 4 else { throw fail("int24 runs past the end") }
                let u = UInt32(p.load(fromByteOffset: 1, as: UInt8.self)) | UInt32(p.load(fromByteOffset: 2, as: UInt8.self)) << 8
                    | UInt32(p.load(fromByteOffset: 3, as: UInt8.self)) << 16
                result = RDBString(integer: Int64(Int32(bitPattern: u << 8) >> 8))
                encLen = 4
            case 0xF3:
                guard avail >= 5 else { throw fail("int32 runs past the end") }
                result = RDBString(integer: Int64(Int32(littleEndian: p.loadUnaligned(fromByteOffset: 1, as: Int32.self))))
                encLen = 5
            case 0xF4:
                guard avail >= 9 else { throw fail("int64 runs past the end") }
                result = RDBString(integer: Int64(littleEndian: p.loadUnaligned(fromByteOffset: 1, as: Int64.self)))
                encLen = 9
            case 0xFF:
                throw fail("terminator before the end of the blob")
            default:
                throw fail("invalid encoding byte 0x\(String(b0, radix: 16))")
            }
        }
        let step = encLen + ListpackReader.backlenSize(encLen)
        guard step <= avail else { throw fail("back-length runs past the end") }
        pos += step
        _index += 1
        return result
    }

    /// The next element, which must exist.
    @inlinable @inline(__always)
    public mutating func nextRequired(_ what: StaticString) throws(RDBError) -> RDBString {
        guard let v = try next() else { throw fail("ends where \(what) was expected") }
        return v
    }

    /// The next element as an integer (stream listpacks store their metadata as integers).
    @inlinable
    public mutating func nextInteger(_ what: StaticString) throws(RDBError) -> Int64 {
        let v = try nextRequired(what)
        if v.isInteger { return v.integer }
        guard let i = DecimalFormatter.parseCanonical(v.bytes) else { throw fail("\(what) is not an integer") }
        return i
    }
}

/// A walk over a compact blob's elements in order (`ListpackReader`, `ZiplistReader`): what
/// `RDBVisitor.listElements(from:)` is given.
public protocol RDBElementReader {
    /// The next element, nil after the last; an error names the blob and the offset.
    mutating func next() throws(RDBError) -> RDBString?
}

extension ListpackReader: RDBElementReader {}
extension ZiplistReader: RDBElementReader {}
