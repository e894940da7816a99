import RDBKit

/// The DUMP / RESTORE payload: `type byte, value (as in an RDB file), le16 RDB version, le64 CRC64` where
/// the CRC (Redis' CRC-64/Jones) covers every byte before it.
///
/// Also the RDB primitives a re-encoded value needs (lengths, strings, binary doubles) and the table of
/// which value types a server of a given RDB version can load.
public enum DumpPayload {
    /// Bytes after the value: 2 of version, 8 of CRC.
    public static let trailerSize = 10

    /// A whole payload for `type` and the value's bytes, stamped with `version`.
    public static func make(type: UInt8, value: UnsafeRawBufferPointer, version: Int) -> [UInt8] {
        var p: [UInt8] = [type]
        p.reserveCapacity(1 + value.count + trailerSize)
        p.append(contentsOf: value)
        p.append(UInt8(truncatingIfNeeded: version))
        p.append(UInt8(truncatingIfNeeded: version >> 8))
        let crc = CRC64.checksum(p)
        withUnsafeBytes(of: crc.littleEndian) { p.append(contentsOf: $0) }
        return p
    }

    public static func make(type: UInt8, value: [UInt8], version: Int) -> [UInt8] {
        value.withUnsafeBytes { make(type: type, value: $0, version: version) }
    }

    /// Splits a payload into type, value, version after checking its length and CRC; nil when invalid.
    public static func parse(_ payload: [UInt8]) -> (type: UInt8, value: [UInt8], version: Int)? {
        guard payload.count >= 1 + trailerSize else { return nil }
        let n = payload.count
        let stored = payload[(n - 8)...].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard CRC64.checksum(Array(payload[..<(n - 8)])) == stored else { return nil }
        let version = Int(payload[n - 10]) | Int(payload[n - 9]) << 8
        return (payload[0], Array(payload[1..<(n - 10)]), version)
    }

    /// Appends the version and the CRC64 of the payload: of the pending bytes from `start` on and the
    /// version, continuing `written` (the checksum of the part already written out) when there is one.
    /// Closes a payload assembled in place.
    static func appendTrailer(_ out: OutputBuffer, payloadStart start: Int, written: CRC64? = nil, version: Int) {
        out.append(UInt8(truncatingIfNeeded: version))
        out.append(UInt8(truncatingIfNeeded: version >> 8))
        let rest = UnsafeRawBufferPointer(rebasing: out.bytes[start...])
        let crc: UInt64
        if var c = written {
            c.update(rest)
            crc = c.value
        } else {
            crc = CRC64.checksum(rest)
        }
        withUnsafeBytes(of: crc.littleEndian) { out.append($0) }
    }

    // MARK: which types a target loads

    /// Whether `v` is the RDB version of some server: Redis numbering from 1 to the newest known, Valkey
    /// numbering from 80 to the newest known.
    public static func isServerVersion(_ v: Int) -> Bool {
        (1...RDBHeader.newestRedisVersion).contains(v) || (80...RDBHeader.newestValkeyVersion).contains(v)
    }

    /// The error for a `--target-version` that is no server's RDB version (nil: it is one).
    public static func targetVersionProblem(_ v: Int?) -> String? {
        guard let v, !isServerVersion(v) else { return nil }
        return "--target-version \(v) is not the RDB version of a server: give 1 to \(RDBHeader.newestRedisVersion) (Redis: 9 = 6.2, 10 = 7.0, 11 = 7.2 and Valkey 7.2-8.1, 12 = 7.4) or \(RDBHeader.newestValkeyVersion) (Valkey 9)"
    }

    /// Whether a server whose own RDB version is `target` loads a value of this encoding: Redis numbering
    /// up to 79 (9 = 6.2, 10 = 7.0, 11 = 7.2 and Valkey 7.2–8.1, 12 = 7.4–8.4, 13 = 8.6, 14 = 8.8), Valkey
    /// numbering from 80 (Valkey 9: the types of 11 plus HASH_2).
    public static func canLoad(_ e: RDBEncoding, target: Int) -> Bool {
        if target >= 80 {
            switch e {
            case .modulePreGA, .hashMetadataPreGA, .hashListpackExPreGA, .hashMetadata, .hashListpackEx,
                .streamListpacks4, .streamListpacks5, .array:
                return false
            default:
                return true
            }
        }
        switch e {
        case .string, .list, .set, .zset, .hash: return target >= 1
        case .hashZipmap, .listZiplist, .setIntset, .zsetZiplist: return target >= 2
        case .hashZiplist: return target >= 4
        case .listQuicklist: return target >= 7
        case .zset2, .module2: return target >= 8
        case .streamListpacks: return target >= 9
        case .hashListpack, .zsetListpack, .listQuicklist2, .streamListpacks2: return target >= 10
        case .setListpack, .streamListpacks3: return target >= 11
        case .hashMetadata, .hashListpackEx: return target >= 12
        case .streamListpacks4: return target >= 13
        case .streamListpacks5, .array: return target >= 14
        // Pre-GA layouts (module type 6, Redis 7.4 release candidates' hash types) and Valkey's HASH_2.
        case .modulePreGA, .hashMetadataPreGA, .hashListpackExPreGA, .valkeyHash2: return false
        }
    }

    // MARK: RDB primitives

    /// Appends an RDB length (§3.1: 1, 2, 5 or 9 bytes).
    @inlinable
    public static func appendLength(_ v: UInt64, to out: OutputBuffer) {
        if v < 64 {
            out.append(UInt8(v))
        } else if v < 16384 {
            out.append(0x40 | UInt8(v >> 8))
            out.append(UInt8(v & 0xFF))
        } else if v <= 0xFFFF_FFFF {
            out.append(0x80)
            withUnsafeBytes(of: UInt32(v).bigEndian) { out.append($0) }
        } else {
            out.append(0x81)
            withUnsafeBytes(of: v.bigEndian) { out.append($0) }
        }
    }

    /// Appends an RDB string: integers that fit 32 bits in the integer encoding, everything else plain.
    @inlinable
    public static func appendString(_ s: RDBString, to out: OutputBuffer) {
        if s.isInteger {
            let v = s.integer
            if let x = Int8(exactly: v) {
                out.append(0xC0)
                out.append(UInt8(bitPattern: x))
                return
            }
            if let x = Int16(exactly: v) {
                out.append(0xC1)
                withUnsafeBytes(of: x.littleEndian) { out.append($0) }
                return
            }
            if let x = Int32(exactly: v) {
                out.append(0xC2)
                withUnsafeBytes(of: x.littleEndian) { out.append($0) }
                return
            }
            appendLength(UInt64(DecimalFormatter.digitCount(v)), to: out)
            out.append(decimal: v)
            return
        }
        appendLength(UInt64(s.bytes.count), to: out)
        out.append(s.bytes)
    }

    /// Appends a binary double (8 bytes little-endian), as ZSET_2 scores are stored.
    @inlinable
    public static func appendDouble(_ d: Double, to out: OutputBuffer) {
        withUnsafeBytes(of: d.bitPattern.littleEndian) { out.append($0) }
    }

    /// Size of the RDB length encoding of `v`.
    @inlinable
    public static func lengthSize(_ v: UInt64) -> Int {
        v < 64 ? 1 : v < 16384 ? 2 : v <= 0xFFFF_FFFF ? 5 : 9
    }
}
