import RDBKit

/// Sorted sets in a skiplist type (3, 5) that hold a score of -0.
///
/// Such a set, small enough to be a listpack on a Redis 7.0+ or Valkey server, becomes one when the server
/// loads its payload (RESTORE, or the file at start-up), and the listpack stores its -0 as 0 (a score goes
/// into a listpack as text, -0 as "0"). A listpack payload that holds the text "-0" keeps it (the loader takes
/// the blob as it is, or turns a listpack too large for the target's limits into a skiplist by parsing each
/// score), and so does a ziplist payload (a 7.0 server turns it into a listpack entry by entry, text as it
/// is). So the RestoreWriter sends such a set as a listpack payload (targets of RDB 10+) or a ziplist one
/// (older targets: 6.2 keeps -0 either way, and the payload keeps it when a newer server loads it too) of
/// its members in order, scores as text; every other set's payload passes through as it is.
extension RestoreWriter {
    /// The type byte and value of a payload keeping -0 (a listpack, type 17, for a target of RDB 10+; else a
    /// ziplist, type 12; the blob as an RDB string) for a skiplist sorted set's value `raw` (type `type`, 3 or
    /// 5) when it holds a score of -0 and has at most `limits.entries` members (sets with more are skiplists on
    /// the target, which keep -0: their payloads are not looked into); nil otherwise (the value passes through).
    static func payloadKeepingNegativeZero(_ raw: UnsafeRawBufferPointer, type: UInt8, target: Int,
                                           limits: CompactSortedSetLimits) throws -> (type: UInt8, value: [UInt8])? {
        var cursor = ByteCursor(raw)
        guard let count = try? cursor.readLength("a sorted set's size"), count > 0, count <= UInt64(max(0, limits.entries)) else { return nil }
        // The value decoded as the only key of a small RDB of its own.
        var file = RDBHeader(family: .redis, version: 11).magic
        file += [type, 1, UInt8(ascii: "z")]
        file += raw
        file.append(0xFF)
        file += [UInt8](repeating: 0, count: 8)
        var members = ScoredMembers()
        var options = RDBDecoderOptions()
        options.verifyChecksum = false
        _ = try RDBReader.decode(bytes: file, into: &members, options: options)
        guard members.hasNegativeZero else { return nil }
        // Listpack order: by score, then by member bytes (-0 and 0 compare equal, as in the server).
        let sorted = members.all.sorted { a, b in
            a.score != b.score ? a.score < b.score : a.member.lexicographicallyPrecedes(b.member)
        }
        var entries: [[UInt8]] = []
        entries.reserveCapacity(2 * sorted.count)
        for m in sorted {
            entries.append(m.member)
            entries.append(Array(scoreText(m.score).utf8))
        }
        let compact = target >= 10 ? (type: UInt8(17), blob: listpack(entries)) : (type: UInt8(12), blob: ziplist(entries))
        let value = OutputBuffer(target: nil, flushThreshold: compact.blob.count + 16)
        DumpPayload.appendLength(UInt64(compact.blob.count), to: value)  // the blob as an RDB string
        value.append(compact.blob)
        return (compact.type, value.take())
    }

    /// A score as a listpack holds it: -0 as "-0", an integral score as its integer, others as `%.17g` would
    /// (the shortest text that parses back to the same double does too).
    static func scoreText(_ d: Double) -> String {
        if d == 0 { return d.sign == .minus ? "-0" : "0" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == d.rounded(), abs(d) < 1e17 { return String(Int64(d)) }
        return d.description
    }

    /// A listpack of string entries (a string that reads as an integer is kept as a string entry: the server
    /// compares and reads either kind).
    static func listpack(_ entries: [[UInt8]]) -> [UInt8] {
        var body: [UInt8] = []
        for e in entries {
            let n = e.count
            let start = body.count
            if n < 64 {
                body.append(0x80 | UInt8(n))
            } else if n < 4096 {
                body += [0xE0 | UInt8(n >> 8), UInt8(n & 0xFF)]
            } else {
                body.append(0xF0)
                body += le(UInt32(n))
            }
            body += e
            // The back-length: the entry's size, 7 bits a byte, its highest bits first; every byte but the first
            // has its top bit set.
            var size = body.count - start
            var groups: [UInt8] = []
            repeat {
                groups.append(UInt8(size & 127))
                size >>= 7
            } while size > 0
            for (i, g) in groups.reversed().enumerated() { body.append(i == 0 ? g : g | 128) }
        }
        let total = 6 + body.count + 1
        var lp = le(UInt32(total))
        lp += le(UInt16(min(entries.count, 65535)))
        lp += body
        lp.append(0xFF)
        return lp
    }

    /// A ziplist of string entries: each after the length of the one before (1 byte, or 0xFE and 4), its
    /// string header (6, 14 or 32 bits of length) and bytes.
    static func ziplist(_ entries: [[UInt8]]) -> [UInt8] {
        var body: [UInt8] = []
        var previous = 0
        var last = 10
        for e in entries {
            last = 10 + body.count
            let start = body.count
            if previous < 254 {
                body.append(UInt8(previous))
            } else {
                body.append(0xFE)
                body += le(UInt32(previous))
            }
            let n = e.count
            if n < 64 {
                body.append(UInt8(n))
            } else if n < 16384 {
                body += [0x40 | UInt8(n >> 8), UInt8(n & 0xFF)]
            } else {
                body.append(0x80)
                body += withUnsafeBytes(of: UInt32(n).bigEndian, Array.init)
            }
            body += e
            previous = body.count - start
        }
        var zl = le(UInt32(10 + body.count + 1))
        zl += le(UInt32(last))
        zl += le(UInt16(min(entries.count, 65535)))
        zl += body
        zl.append(0xFF)
        return zl
    }

    /// `v`'s bytes, little-endian.
    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

    /// Collects a sorted set's members and scores.
    struct ScoredMembers: RDBVisitor {
        var all: [(member: [UInt8], score: Double)] = []
        var hasNegativeZero = false

        mutating func zsetMember(_ member: RDBString, score: Double) throws {
            all.append((member.array, score))
            if score == 0 && score.sign == .minus { hasNegativeZero = true }
        }
    }
}
