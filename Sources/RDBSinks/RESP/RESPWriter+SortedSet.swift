import RDBKit

extension RESPWriter {
    /// A member of score -0 waits for the key's last command, `ZADD key -0 m ...`: ZADD does not change a
    /// member's 0 to -0 (they compare equal), and stores -0 as 0 into a listpack (Redis 7.0+, Valkey), but
    /// keeps it in a skiplist and in a 6.2 ziplist. Added last, the members land in the set as the target
    /// ends up encoding it, as when a server loads the file: a skiplist in the file small enough to be a
    /// listpack is one on load (its -0 become 0 there too). Only a compact set of the file holding the text
    /// "-0" that stays compact on a listpack target keeps a -0 that commands cannot rebuild (lossy;
    /// `commandsMayLose` tells the importer to RESTORE such keys).
    public mutating func zsetMember(_ member: RDBString, score: Double) throws {
        zsetMembers += 1
        zsetLongest = max(zsetLongest, member.count)
        if score == 0 && score.sign == .minus {
            negativeZeros.append(member)
            negativeZeroEnds.append(negativeZeros.pendingCount)
            return
        }
        try element("ZADD", argsPerElement: 2, size: RESPWriter.bulkSize(member.count) + 48)
        enc.argument(score: score)
        enc.argument(member)
    }

    /// Whether commands may not rebuild this key exactly on a server of RDB version `target` (nil: the
    /// newest) where its payload would: a compact sorted set (its "-0" scores, see `zsetMember`).
    public static func commandsMayLose(_ info: RDBKeyInfo, target: Int?) -> Bool {
        let e = info.type.encoding
        return (e == .zsetZiplist || e == .zsetListpack) && (target ?? Int.max) >= 10
    }

    /// The trailing `ZADD key -0 member ...` of the members of score -0 (none: nothing).
    mutating func writeNegativeZeros() throws {
        guard !negativeZeroEnds.isEmpty else { return }
        // Default server limits (zset-max-listpack-entries 128, -value 64): a set within them stays compact.
        if zsetCompact && target >= 10 && zsetMembers <= 128 && zsetLongest <= 64 {
            lossy = "score -0 becomes 0 (ZADD stores negative zero as 0 in a listpack)"
        }
        var start = 0
        var i = 0
        while i < negativeZeroEnds.count {
            let n = min(maxElements, negativeZeroEnds.count - i)
            enc.begin(maxArguments: 2 + 2 * n)
            enc.argument("ZADD")
            enc.argument(keyBuffer.bytes)
            for end in negativeZeroEnds[i..<(i + n)] {
                enc.argument("-0")
                enc.argument(UnsafeRawBufferPointer(rebasing: negativeZeros.bytes[start..<end]))
                start = end
            }
            enc.end()
            commandsWritten += 1
            try out.flushWithinKeyIfNeeded()
            i += n
        }
        negativeZeroEnds.removeAll(keepingCapacity: true)
    }

    /// A score stored as text (ziplist/listpack zsets) goes out as that text when it is a plain finite
    /// decimal (ZADD parses it with strtod as the loader did, so the stored double is the same): no
    /// parse and no reformatting. Anything else (inf, a negative zero, hex, corrupt text) takes the
    /// Double path, which checks it.
    public mutating func zsetMember(_ member: RDBString, scoreText: RDBString) throws {
        guard scoreText.isInteger || RESPWriter.isPlainDecimal(scoreText.bytes) else {
            return try zsetMember(member, score: try RDBParser.score(scoreText))
        }
        zsetMembers += 1
        zsetLongest = max(zsetLongest, member.count)
        try element("ZADD", argsPerElement: 2, size: RESPWriter.bulkSize(member.count) + RESPWriter.bulkSize(scoreText.count))
        enc.argument(scoreText)
        enc.argument(member)
    }

    /// `-?[0-9]+(\.[0-9]+)?`, at most 40 bytes, and not a negative zero.
    @inlinable
    static func isPlainDecimal(_ b: UnsafeRawBufferPointer) -> Bool {
        let n = b.count
        guard n > 0, n <= 40 else { return false }
        var i = 0
        var nonZero = false
        func digits(_ i: inout Int) -> Bool {
            let s = i
            while i < n, b[i] &- 0x30 < 10 {
                if b[i] != 0x30 { nonZero = true }
                i += 1
            }
            return i > s
        }
        let negative = b[0] == 0x2D
        if negative { i = 1 }
        guard digits(&i) else { return false }
        if i < n, b[i] == 0x2E {
            i += 1
            guard digits(&i) else { return false }
        }
        // An exponent could overflow or underflow (ZADD refuses what strtod flags ERANGE): Double path.
        return i == n && (nonZero || !negative)
    }
}
