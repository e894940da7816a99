import CCRC64Fold

/// CRC-64/Jones as Redis uses it: reflected polynomial 0x95ac9329ac4bc9b5, initial value 0, no final XOR.
///
/// One implementation serves the file trailer check and the DUMP payload writer (whose payloads are
/// mostly short). Inputs of 32 bytes or more are folded with carry-less multiplication where the CPU has
/// it (x86-64 PCLMULQDQ, in the CCRC64Fold C target: 64 bytes per step from 64 bytes on, else 16), which
/// leaves a 16-byte block and a tail of under 16 bytes; those, and everything on other CPUs, go eight
/// bytes per step through eight lookup tables (slicing-by-8, then one four-byte step). Check value: `crc64("123456789") == 0xe9c6d914c4b8d9ca`.
public struct CRC64: Sendable {
    public private(set) var value: UInt64

    public init(_ value: UInt64 = 0) { self.value = value }

    /// Eight tables of 256 entries: `tables[k * 256 + b]` is the CRC of byte `b` followed by `k` zero bytes.
    /// A pointer rather than an array, so the hot loops touch no reference count.
    nonisolated(unsafe) static let tables: UnsafePointer<UInt64> = {
        let poly: UInt64 = 0x95ac_9329_ac4b_c9b5
        let t = UnsafeMutablePointer<UInt64>.allocate(capacity: 8 * 256)
        for i in 0..<256 {
            var crc = UInt64(i)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ poly : crc >> 1 }
            t[i] = crc
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
            }
        }
        return UnsafePointer(t)
    }()

    /// With carry-less multiplication from 16 bytes on (`rdb_crc64_pclmul`; 512-bit registers from 256
    /// bytes on where the CPU has them), with the tables below that and on CPUs without it.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { update(bytes, wide: true) }

    /// `update`, with (`wide`) or without 512-bit folding (both are tested against the tables).
    public mutating func update(_ bytes: UnsafeRawBufferPointer, wide: Bool) {
        guard let p = bytes.baseAddress, bytes.count > 0 else { return }
        if bytes.count >= 16 {
            var result: UInt64 = 0
            if rdb_crc64_pclmul(value, p, bytes.count, wide ? 1 : 0, &result) != 0 {
                value = result
                return
            }
        }
        updateWithTables(p, bytes.count)
    }

    /// Whether this CPU folds with 512-bit registers (VPCLMULQDQ and AVX-512F).
    public static var hasWideFolding: Bool { rdb_crc64_has_wide() != 0 }

    /// Slicing-by-8 (the reference, and the whole path on CPUs without carry-less multiplication), with
    /// a four-byte step for the tail.
    public mutating func updateWithTables(_ bytes: UnsafeRawBufferPointer) {
        guard let p = bytes.baseAddress else { return }
        updateWithTables(p, bytes.count)
    }

    mutating func updateWithTables(_ start: UnsafeRawPointer, _ count: Int) {
        guard count > 0 else { return }
        var p = start
        var n = count
        var crc = value
        let t = CRC64.tables
        while n >= 8 {
            let w = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)) ^ crc
            crc = t[7 * 256 + Int(w & 0xFF)] ^ t[6 * 256 + Int((w >> 8) & 0xFF)]
                ^ t[5 * 256 + Int((w >> 16) & 0xFF)] ^ t[4 * 256 + Int((w >> 24) & 0xFF)]
                ^ t[3 * 256 + Int((w >> 32) & 0xFF)] ^ t[2 * 256 + Int((w >> 40) & 0xFF)]
                ^ t[1 * 256 + Int((w >> 48) & 0xFF)] ^ t[Int(w >> 56)]
            p += 8
            n -= 8
        }
        if n >= 4 {
            // The same tables, four bytes at a time: the low half of the CRC meets them, the high half
            // moves down.
            let w = UInt64(UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))) ^ (crc & 0xFFFF_FFFF)
            crc = (crc >> 32) ^ t[3 * 256 + Int(w & 0xFF)] ^ t[2 * 256 + Int((w >> 8) & 0xFF)]
                ^ t[1 * 256 + Int((w >> 16) & 0xFF)] ^ t[Int(w >> 24)]
            p += 4
            n -= 4
        }
        while n > 0 {
            crc = t[Int((crc ^ UInt64(p.load(as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
            p += 1
            n -= 1
        }
        value = crc
    }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var c = CRC64()
        c.update(bytes)
        return c.value
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
