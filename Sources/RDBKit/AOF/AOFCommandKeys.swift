/// Where a command's key arguments are, for the commands whose key positions are fixed by their syntax.
///
/// Covers the write commands an AOF holds (what servers propagate and what an AOF rewrite emits) and
/// the common read commands. Commands not in the table are "unknown": `AOFCommand.forEachKey` returns
/// false for them rather than guessing.
public enum AOFKeySpec: Sendable, Hashable {
    /// The command touches no key (SELECT, MULTI, FLUSHALL, FUNCTION, ...).
    case none
    /// One key at this argument index.
    case at(Int)
    /// Keys at the first two arguments (RENAME, LMOVE, SMOVE, COPY, ...).
    case firstTwo
    /// Every argument from this index on (DEL, EXISTS, MGET, SINTERSTORE, ...).
    case all(from: Int)
    /// Every argument from index 1 except the last one (blocking pops: the last is the timeout).
    case allButLast
    /// Every other argument from index 1 (MSET, MSETNX).
    case everyOther
    /// A key count at `countAt` followed by that many keys; plus a destination key at `dest` (ZUNIONSTORE,
    /// EVAL, LMPOP, ...).
    case numkeys(countAt: Int, dest: Int?)
    /// The first argument, plus the argument after a `STORE` / `STOREDIST` option (SORT, GEORADIUS).
    case firstAndStore
    /// Keys after `STREAMS`: the first half of what follows (XREAD, XREADGROUP).
    case streams

    /// The spec of a command by upper-case name, nil when unknown.
    public static func lookup(_ upperName: String) -> AOFKeySpec? { table[upperName] }

    static let table: [String: AOFKeySpec] = {
        var t: [String: AOFKeySpec] = [:]
        let first = [
            // strings
            "SET", "SETNX", "SETEX", "PSETEX", "GET", "GETSET", "GETDEL", "GETEX", "APPEND", "INCR", "DECR", "INCRBY",
            "DECRBY", "INCRBYFLOAT", "SETRANGE", "GETRANGE", "SUBSTR", "SETBIT", "GETBIT", "BITCOUNT", "BITPOS",
            "BITFIELD", "BITFIELD_RO", "STRLEN", "LCS",
            // generic
            "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST", "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "TYPE",
            "DUMP", "RESTORE", "RESTORE-ASKING", "MOVE",
            // lists
            "LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LPOP", "RPOP", "LSET", "LREM", "LTRIM", "LINSERT", "LINDEX",
            "LRANGE", "LLEN", "LPOS",
            // sets
            "SADD", "SREM", "SPOP", "SCARD", "SISMEMBER", "SMISMEMBER", "SMEMBERS", "SRANDMEMBER", "SSCAN",
            // sorted sets
            "ZADD", "ZREM", "ZINCRBY", "ZREMRANGEBYSCORE", "ZREMRANGEBYRANK", "ZREMRANGEBYLEX", "ZPOPMIN", "ZPOPMAX",
            "ZCARD", "ZCOUNT", "ZLEXCOUNT", "ZSCORE", "ZMSCORE", "ZRANK", "ZREVRANK", "ZRANGE", "ZREVRANGE",
            "ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZRANDMEMBER", "ZSCAN",
            // hashes
            "HSET", "HMSET", "HSETNX", "HDEL", "HINCRBY", "HINCRBYFLOAT", "HGET", "HMGET", "HGETALL", "HKEYS", "HVALS",
            "HLEN", "HEXISTS", "HSTRLEN", "HRANDFIELD", "HSCAN", "HEXPIRE", "HPEXPIRE", "HEXPIREAT", "HPEXPIREAT",
            "HPERSIST", "HTTL", "HPTTL", "HEXPIRETIME", "HPEXPIRETIME", "HGETDEL", "HGETEX", "HSETEX",
            // streams
            "XADD", "XDEL", "XTRIM", "XSETID", "XCLAIM", "XAUTOCLAIM", "XACK", "XLEN", "XRANGE", "XREVRANGE",
            "XPENDING", "XCFGSET", "XIDMPRECORD", "XNACK", "XACKDEL", "XDELEX",
            // hyperloglog, geo
            "PFADD", "GEOADD", "GEODIST", "GEOHASH", "GEOPOS", "GEOSEARCH",
        ]
        for n in first { t[n] = .at(1) }
        for n in ["DEL", "UNLINK", "EXISTS", "TOUCH", "WATCH", "MGET", "PFCOUNT", "PFMERGE", "SDIFF", "SINTER",
                  "SUNION", "SDIFFSTORE", "SINTERSTORE", "SUNIONSTORE"] { t[n] = .all(from: 1) }
        t["BITOP"] = .all(from: 2)
        for n in ["MSET", "MSETNX"] { t[n] = .everyOther }
        for n in ["RENAME", "RENAMENX", "LMOVE", "BLMOVE", "RPOPLPUSH", "BRPOPLPUSH", "SMOVE", "COPY", "ZRANGESTORE",
                  "GEOSEARCHSTORE"] { t[n] = .firstTwo }
        for n in ["BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX"] { t[n] = .allButLast }
        for n in ["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"] { t[n] = .numkeys(countAt: 2, dest: 1) }
        for n in ["ZUNION", "ZINTER", "ZDIFF", "ZINTERCARD", "SINTERCARD", "LMPOP", "ZMPOP"] { t[n] = .numkeys(countAt: 1, dest: nil) }
        for n in ["BLMPOP", "BZMPOP", "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"] { t[n] = .numkeys(countAt: 2, dest: nil) }
        for n in ["SORT", "SORT_RO", "GEORADIUS", "GEORADIUSBYMEMBER", "GEORADIUS_RO", "GEORADIUSBYMEMBER_RO"] { t[n] = .firstAndStore }
        for n in ["XREAD", "XREADGROUP"] { t[n] = .streams }
        t["XGROUP"] = .at(2)
        t["XINFO"] = .at(2)
        t["OBJECT"] = .at(2)
        for n in ["SELECT", "MULTI", "EXEC", "DISCARD", "FLUSHALL", "FLUSHDB", "SWAPDB", "FUNCTION", "SCRIPT", "PING",
                  "ECHO", "PUBLISH", "SPUBLISH", "DBSIZE", "INFO", "UNWATCH", "RANDOMKEY", "SCAN", "KEYS", "CONFIG", "CLIENT",
                  "TIME", "LASTSAVE", "SAVE", "BGSAVE", "BGREWRITEAOF"] { t[n] = AOFKeySpec.none }
        return t
    }()
}

extension AOFCommand {
    /// The key-position spec of this command, nil when unknown.
    public var keySpec: AOFKeySpec? { AOFKeySpec.lookup(upperName) }

    /// Calls `body` with each key the command touches (in argument order; a key given twice is reported
    /// twice). Returns false, without calling `body`, when the command's key positions are unknown.
    @discardableResult
    public func forEachKey(_ body: (RDBString) throws -> Void) rethrows -> Bool {
        guard let spec = keySpec else { return false }
        try forEachKey(spec, body)
        return true
    }

    /// `forEachKey` with the command's spec known already (`keySpec`, looked up once per spelling).
    public func forEachKey(_ spec: AOFKeySpec, _ body: (RDBString) throws -> Void) rethrows {
        let n = args.count
        func key(_ i: Int) throws { if i >= 1 && i < n { try body(args[i]) } }
        switch spec {
        case .none: break
        case .at(let i): try key(i)
        case .firstTwo:
            try key(1)
            try key(2)
        case .all(let from):
            if from < n { for i in from..<n { try key(i) } }
        case .allButLast:
            if n > 2 { for i in 1..<(n - 1) { try key(i) } }
        case .everyOther:
            for i in stride(from: 1, to: n, by: 2) { try key(i) }
        case .numkeys(let countAt, let dest):
            if let dest { try key(dest) }
            if countAt < n, let k = DecimalFormatter.parseCanonical(args.bytes(countAt)), k > 0 {
                let last = min(n - 1, countAt + Int(min(k, Int64(n))))
                if countAt + 1 <= last { for i in (countAt + 1)...last { try key(i) } }
            }
        case .firstAndStore:
            try key(1)
            var i = 2
            while i < n - 1 {
                let a = args.bytes(i)
                if AOFArguments.equalsIgnoringCase(a, "STORE") || AOFArguments.equalsIgnoringCase(a, "STOREDIST") {
                    try key(i + 1)
                    i += 1
                }
                i += 1
            }
        case .streams:
            var i = 1
            while i < n {
                if AOFArguments.equalsIgnoringCase(args.bytes(i), "STREAMS") { break }
                i += 1
            }
            let rest = n - (i + 1)
            if i < n && rest > 0 && rest % 2 == 0 {
                for j in (i + 1)..<(i + 1 + rest / 2) { try key(j) }
            }
        }
    }
}
