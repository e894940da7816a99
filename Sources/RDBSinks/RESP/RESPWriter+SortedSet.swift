import RDBKit

extension RESPWriter {
    /// A member of score -0 waits for the key's last command, `ZADD key -0 m ...`: ZADD does not change a
    /// member's 0 to -0 (they compare equal), and stores -0 as 0 into a listpack (Redis 7.0+, Valkey), but
    /// keeps it in a skiplist and in a 6.2 ziplist. Added last, once the set is made a skiplist
    /// (`writeNegativeZeros`), the members keep their -0 whatever the set's size (a server that loads a small
    /// skiplist from a file makes it a listpack, and its -0 a 0: the RESTORE writer sends such a set as a
    /// listpack payload holding "-0"). `commandsMayLose` tells the importer to RESTORE compact sets all the
    /// same: their payload keeps "-0" whatever the target's limits.
    public mutating func zsetMember(_ member: RDBString, score: Double) throws {
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
    /// newest) where its payload would: a compact sorted set (its "-0" scores, see `zsetMember`: commands keep
    /// them only while the target's zset-max-listpack-value is under 1 MiB), a stream (PEL entries of entries it no longer holds
    /// cannot be claimed, see `endStreamGroup`; consumers' seen and active times are not set by commands).
    public static func commandsMayLose(_ info: RDBKeyInfo, target: Int?) -> Bool {
        let e = info.type.encoding
        return ((e == .zsetZiplist || e == .zsetListpack) && (target ?? Int.max) >= 10) || info.kind == .stream
    }

    /// A member longer than a listpack member may be (zset-max-listpack-value, 64 by default), so that adding
    /// it makes a set a skiplist: 1 KiB, or one byte more than a target's larger limit (`skiplistMaker(for:)`).
    public static let skiplistMaker: [UInt8] = skiplistMaker(length: 1024)

    static func skiplistMaker(length: Int) -> [UInt8] {
        Array("rdbcat:skiplist:".utf8) + [UInt8](repeating: UInt8(ascii: "-"), count: length - 16)
    }

    /// The longest member made to turn a set into a skiplist: a target whose zset-max-listpack-value is this or
    /// more keeps every set of few members a listpack, and its -0 scores are written as 0 (the key is lossy).
    static var longestSkiplistMaker: Int { 1 << 20 }

    /// The maker for a target keeping sets of members up to `limits.value` bytes compact; nil when it would be
    /// longer than `longestSkiplistMaker`.
    static func skiplistMaker(for limits: CompactSortedSetLimits) -> [UInt8]? {
        if limits.value < skiplistMaker.count { return skiplistMaker }
        return limits.value < longestSkiplistMaker ? skiplistMaker(length: limits.value + 1) : nil
    }

    /// The trailing `ZADD key -0 member ...` of the members of score -0 (none: nothing). The set is made a
    /// skiplist first, by a member too long for a listpack (`ZADD key 0 <skiplistMaker>`, removed after with
    /// `ZREM`), 1 KiB or longer than the target's zset-max-listpack-value (`options.compactSortedSets`): a
    /// skiplist keeps -0, and no server turns it back into a listpack as members go. Also for targets before
    /// RDB 10, whose ziplists keep -0: the same commands then keep it when replayed into a newer server. (A set
    /// with a member that long is a skiplist already, and the maker could be one of its members: not needed, not
    /// sent.) A target that keeps members of 1 MiB in listpacks gets no maker, and the key is counted lossy.
    mutating func writeNegativeZeros() throws {
        guard !negativeZeroEnds.isEmpty else { return }
        let maker = Self.skiplistMaker(for: options.compactSortedSets)
        let viaSkiplist = maker.map { zsetLongest < $0.count } ?? false
        if maker == nil && zsetLongest <= options.compactSortedSets.value && target >= 10 {
            lossy = "scores of -0 written as 0: the target keeps sorted sets of members up to \(options.compactSortedSets.value) bytes as listpacks (zset-max-listpack-value)"
        }
        if viaSkiplist, let maker { writeSkiplistMaker(maker, add: true) }
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
        if viaSkiplist, let maker { writeSkiplistMaker(maker, add: false) }
    }

    /// `ZADD key 0 <maker>` (`add`) or `ZREM key <maker>`.
    mutating func writeSkiplistMaker(_ maker: [UInt8], add: Bool) {
        enc.begin(maxArguments: add ? 4 : 3)
        enc.argument(add ? "ZADD" : "ZREM")
        enc.argument(keyBuffer.bytes)
        if add { enc.argument("0") }
        enc.argument(maker)
        enc.end()
        commandsWritten += 1
    }

    /// A score stored as text (ziplist/listpack zsets) goes out as that text when it is a plain finite
    /// decimal (ZADD parses it with strtod as the loader did, so the stored double is the same): no
    /// parse and no reformatting. Anything else (inf, a negative zero, hex, corrupt text) takes the
    /// Double path, which checks it.
    public mutating func zsetMember(_ member: RDBString, scoreText: RDBString) throws {
        guard scoreText.isInteger || RESPWriter.isPlainDecimal(scoreText.bytes) else {
            return try zsetMember(member, score: try RDBParser.score(scoreText))
        }
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
