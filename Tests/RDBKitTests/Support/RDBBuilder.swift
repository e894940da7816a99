import RDBKit

/// Builds RDB bytes by hand for unit tests of encodings and of corrupt input.
struct RDBBuilder {
    var bytes: [UInt8] = []

    init(version: Int = 10, family: RDBFamily = .redis) {
        bytes = RDBHeader(family: family, version: version).magic
    }

    static func length(_ v: UInt64) -> [UInt8] {
        if v < 64 { return [UInt8(v)] }
        if v < 16384 { return [0x40 | UInt8(v >> 8), UInt8(v & 0xFF)] }
        if v <= 0xFFFF_FFFF { return [0x80] + withUnsafeBytes(of: UInt32(v).bigEndian, Array.init) }
        return [0x81] + withUnsafeBytes(of: v.bigEndian, Array.init)
    }

    static func string(_ s: [UInt8]) -> [UInt8] { length(UInt64(s.count)) + s }
    static func string(_ s: String) -> [UInt8] { string(Array(s.utf8)) }
    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

    /// A listpack of the given entries (strings as strings; use `lpInt` for integers).
    static func listpack(_ entries: [[UInt8]]) -> [UInt8] {
        var body: [UInt8] = []
        for e in entries { body += e }
        let total = 6 + body.count + 1
        return le(UInt32(total)) + le(UInt16(entries.count)) + body + [0xFF]
    }

    static func lpBacklen(_ n: Int) -> [UInt8] {
        // Encoded as the server does: 7 bits per byte, highest address holds the lowest bits.
        if n <= 127 { return [UInt8(n)] }
        if n < 16383 { return [UInt8(n >> 7), UInt8(n & 127) | 128] }
        return [UInt8(n >> 14), UInt8((n >> 7) & 127) | 128, UInt8(n & 127) | 128]
    }

    static func lpString(_ s: String) -> [UInt8] {
        let b = Array(s.utf8)
        let enc: [UInt8]
        if b.count < 64 { enc = [0x80 | UInt8(b.count)] + b } else if b.count < 4096 {
            enc = [0xE0 | UInt8(b.count >> 8), UInt8(b.count & 0xFF)] + b
        } else { enc = [0xF0] + le(UInt32(b.count)) + b }
        return enc + lpBacklen(enc.count)
    }

    static func lpInt(_ v: Int64) -> [UInt8] {
        let enc: [UInt8]
        if (0...127).contains(v) { enc = [UInt8(v)] } else if (-4096...4095).contains(v) {
            let u = UInt16(bitPattern: Int16(v)) & 0x1FFF
            enc = [0xC0 | UInt8(u >> 8), UInt8(u & 0xFF)]
        } else if let x = Int16(exactly: v) { enc = [0xF1] + le(x) } else if (-(1 << 23)...((1 << 23) - 1)).contains(v) {
            let u = UInt32(bitPattern: Int32(v))
            enc = [0xF2, UInt8(u & 0xFF), UInt8((u >> 8) & 0xFF), UInt8((u >> 16) & 0xFF)]
        } else if let x = Int32(exactly: v) { enc = [0xF3] + le(x) } else { enc = [0xF4] + le(v) }
        return enc + lpBacklen(enc.count)
    }

    /// A ziplist of raw entries (each: encoding+data, without prevlen).
    static func ziplist(_ entries: [[UInt8]]) -> [UInt8] {
        var body: [UInt8] = []
        var prev = 0
        var lastStart = 10
        for e in entries {
            lastStart = 10 + body.count
            let pl: [UInt8] = prev < 254 ? [UInt8(prev)] : [0xFE] + le(UInt32(prev))
            body += pl + e
            prev = pl.count + e.count
        }
        let total = 10 + body.count + 1
        return le(UInt32(total)) + le(UInt32(entries.isEmpty ? 10 : lastStart)) + le(UInt16(entries.count)) + body + [0xFF]
    }

    static func zlString(_ s: String) -> [UInt8] {
        let b = Array(s.utf8)
        precondition(b.count < 64)
        return [UInt8(b.count)] + b
    }

    mutating func aux(_ k: String, _ v: String) { bytes += [0xFA] + RDBBuilder.string(k) + RDBBuilder.string(v) }
    mutating func selectDB(_ n: UInt64) { bytes += [0xFE] + RDBBuilder.length(n) }
    mutating func key(type: UInt8, _ k: String, value: [UInt8], expireMs: Int64? = nil) {
        if let e = expireMs { bytes += [0xFC] + RDBBuilder.le(e) }
        bytes += [type] + RDBBuilder.string(k) + value
    }

    /// Appends EOF and the CRC64 trailer (when the version has one).
    func finished(checksum: Bool = true) -> [UInt8] {
        var b = bytes + [0xFF]
        let version = RDBHeader.parse(b.withUnsafeBytes { $0 })?.version ?? 10
        if version >= 5 { b += RDBBuilder.le(checksum ? CRC64.checksum(b) : UInt64(0)) }
        return b
    }
}
