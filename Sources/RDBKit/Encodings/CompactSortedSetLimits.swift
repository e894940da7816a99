/// Which sorted sets a server keeps compact (a listpack from Redis 7.0 and in Valkey, a ziplist before): those of
/// at most `entries` members (`zset-max-listpack-entries`; `zset-max-ziplist-entries` before 7.0, an alias
/// after) none longer than `value` bytes (`zset-max-listpack-value`). A listpack holds a score as text, and
/// `ZADD` stores a score of -0 into one as "0", as does a server loading a skiplist payload small enough to be
/// made a listpack: the writers use these limits to keep -0 (see `RESPWriter.writeNegativeZeros` and
/// `RestoreWriter.payloadKeepingNegativeZero`).
public struct CompactSortedSetLimits: Sendable, Hashable {
    public var entries: Int
    public var value: Int

    /// The servers' defaults (128 members, 64 bytes).
    public init(entries: Int = 128, value: Int = 64) {
        self.entries = entries
        self.value = value
    }

    /// The limits in the reply to `CONFIG GET zset-max-*` (name and value pairs, as text); nil when it names
    /// neither.
    public init?(config pairs: [(name: String, value: String)]) {
        var entries: Int?, value: Int?
        for (name, text) in pairs where name.hasPrefix("zset-max-") {
            guard let n = Int(text), n >= 0 else { continue }
            if name.hasSuffix("-entries") { entries = max(entries ?? 0, n) }
            if name.hasSuffix("-value") { value = max(value ?? 0, n) }
        }
        guard entries != nil || value != nil else { return nil }
        self.init(entries: entries ?? Self.defaults.entries, value: value ?? Self.defaults.value)
    }

    /// The servers' defaults.
    public static let defaults = CompactSortedSetLimits()

    /// Limits that keep every set compact that either keeps compact (a cluster's masters may differ).
    public func union(_ other: CompactSortedSetLimits) -> CompactSortedSetLimits {
        CompactSortedSetLimits(entries: max(entries, other.entries), value: max(value, other.value))
    }
}
