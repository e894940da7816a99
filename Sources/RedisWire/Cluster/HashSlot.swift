import RDBKit

/// The cluster hash slot of a key, computed exactly as the server's `keyHashSlot` does: CRC16-XMODEM
/// (polynomial 0x1021, initial value 0, no reflection) of the key, masked to 14 bits. When the key has a
/// hash tag (the bytes between its first `{` and the first `}` after that, if there is at least one byte
/// between them) only the tag is hashed; `{}` and an unclosed `{` leave the whole key hashed.
///
/// Table-driven and allocation-free: it reads the key's bytes in place.
public enum HashSlot {
    /// Slots in a cluster (0 ..< 16384).
    public static let count = 16384

    /// The slot of `key`.
    @inlinable
    public static func of(_ key: UnsafeRawBufferPointer) -> Int { slot(key) }

    /// The slot of a decoded string (an int-encoded string hashes as its decimal text).
    @inlinable
    public static func of(_ key: RDBString) -> Int { key.withBytes { slot($0) } }

    /// The slot of any byte collection (contiguous storage is read in place, others element by element;
    /// no copy either way).
    @inlinable
    public static func of<C: Collection>(bytes key: C) -> Int where C.Element == UInt8 {
        key.withContiguousStorageIfAvailable { slot(UnsafeRawBufferPointer($0)) } ?? slot(key)
    }

    /// The slot of a string's UTF-8 bytes.
    @inlinable
    public static func of(_ key: String) -> Int {
        var k = key
        return k.withUTF8 { slot(UnsafeRawBufferPointer($0)) }
    }

    @inlinable
    static func slot<C: Collection>(_ key: C) -> Int where C.Element == UInt8 {
        Int(crc16(key[hashedRange(key)]) & 0x3FFF)
    }

    /// The part of the key that is hashed: the tag when there is a non-empty one, else the whole key.
    @inlinable
    static func hashedRange<C: Collection>(_ key: C) -> Range<C.Index> where C.Element == UInt8 {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key.startIndex..<key.endIndex }
        let tagStart = key.index(after: open)
        guard let close = key[tagStart...].firstIndex(of: UInt8(ascii: "}")), close != tagStart else {
            return key.startIndex..<key.endIndex
        }
        return tagStart..<close
    }

    /// A `{tag}` to put in front of another name so that it lands in the slot of `key` (a temporary name
    /// for the key): the key's hashed part between braces. Nil when that part holds a `}` (only a key
    /// hashed whole, like `{}x`, can), which no tag can carry.
    public static func tag(sameSlotAs key: UnsafeRawBufferPointer) -> [UInt8]? {
        let hashed = key[hashedRange(key)]
        if hashed.contains(UInt8(ascii: "}")) { return nil }
        return [UInt8(ascii: "{")] + hashed + [UInt8(ascii: "}")]
    }

    /// CRC16-XMODEM of `bytes`.
    @inlinable
    public static func crc16<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        crc16Table.withUnsafeBufferPointer { t in
            var crc: UInt16 = 0
            for b in bytes { crc = (crc &<< 8) ^ t[Int(UInt8(truncatingIfNeeded: crc &>> 8) ^ b)] }
            return crc
        }
    }

    /// `crc16Table[i]` = CRC of the byte `i` (one step of the MSB-first shift register, 8 bits at a time).
    @usableFromInline
    static let crc16Table: [UInt16] = (0..<256).map { (i: Int) -> UInt16 in
        var c = UInt16(i) &<< 8
        for _ in 0..<8 { c = c & 0x8000 != 0 ? (c &<< 1) ^ 0x1021 : c &<< 1 }
        return c
    }
}
