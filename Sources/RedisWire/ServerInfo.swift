import RDBKit

/// What the target is.
public struct ServerInfo: Sendable, Hashable {
    /// `redis` or `valkey`.
    public var name = "redis"
    /// Server version (valkey_version for Valkey).
    public var version = ""
    /// redis_version (Valkey reports a compatible Redis version here).
    public var redisVersion = ""
    public var runID = ""
    public var role = ""
    /// `databases` (from CONFIG GET), when the server lets us read it.
    public var databases: Int?
    /// Keys per database when the import connected first (`INFO keyspace`; a database not listed is
    /// empty); nil when unknown.
    public var keyspace: [Int: Int]?
    /// Which sorted sets the server keeps compact (`CONFIG GET zset-max-*`), when it lets us read them.
    public var compactSortedSets: CompactSortedSetLimits?

    public init() {}

    /// Parses the text of `INFO keyspace` (`db3:keys=10,expires=0,avg_ttl=0`).
    public static func keyspace(info: String) -> [Int: Int] {
        var out: [Int: Int] = [:]
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("db") {
            guard let colon = line.firstIndex(of: ":"), let db = Int(line[line.index(line.startIndex, offsetBy: 2)..<colon]) else { continue }
            let fields = line[line.index(after: colon)...].split(separator: ",")
            guard let keys = fields.first(where: { $0.hasPrefix("keys=") }).flatMap({ Int($0.dropFirst(5)) }) else { continue }
            out[db] = keys
        }
        return out
    }

    /// Parses the text of `INFO server` (and `INFO replication` lines if present).
    public init(info: String) {
        for line in info.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let k = line[..<colon]
            let v = String(line[line.index(after: colon)...])
            switch k {
            case "redis_version": redisVersion = v
            case "valkey_version": version = v
            case "server_name": name = v
            case "run_id": runID = v
            case "role": role = v
            default: break
            }
        }
        if version.isEmpty { version = redisVersion } else { name = "valkey" }
    }

    /// The RDB version the server writes, which is what its RESTORE accepts and which command forms it
    /// knows: Redis 6.2 = 9, 7.0 = 10, 7.2 = 11, 7.4–8.4 = 12, 8.6 = 13, 8.8+ = 14; Valkey 7.2–8.x = 11,
    /// Valkey 9+ = 80. nil when the version is unknown.
    public var rdbVersion: Int? {
        let parts = version.split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2 else { return nil }
        let (major, minor) = (parts[0], parts[1])
        if name == "valkey" {
            return major >= 9 ? 80 : 11
        }
        switch (major, minor) {
        case (..<2, _): return nil
        case (2, ..<6): return 5
        case (2, _): return 6
        case (3, ..<2): return 7
        case (3, _): return 8
        case (4, _): return 8
        case (5, _): return 9
        case (6, _): return 9
        case (7, 0): return 10
        case (7, 2): return 11
        case (7, _): return 12
        case (8, ..<6): return 12
        case (8, ..<8): return 13
        default: return 14
        }
    }
}
