/// Which server line wrote a file: the magic decides how version numbers and some bytes are read.
public enum RDBFamily: String, Sendable, Hashable {
    /// `REDIS` + 4 digits: Redis, and Valkey up to RDB 11.
    case redis
    /// `VALKEY` + 3 digits: Valkey ≥ 9.0 (RDB 80 and up).
    case valkey
}

/// The header of an RDB file.
public struct RDBHeader: Sendable, Hashable {
    public var family: RDBFamily
    public var version: Int

    public init(family: RDBFamily, version: Int) {
        self.family = family
        self.version = version
    }

    /// Highest known version per family.
    public static let newestRedisVersion = 14
    public static let newestValkeyVersion = 80

    /// Whether this decoder knows every construct the version can hold.
    public var isKnown: Bool {
        switch family {
        case .redis: return (1...RDBHeader.newestRedisVersion).contains(version)
        case .valkey: return (80...RDBHeader.newestValkeyVersion).contains(version)
        }
    }

    /// The 9 magic bytes this header is written as.
    public var magic: [UInt8] {
        switch family {
        case .redis:
            let d = String(version)
            return Array(("REDIS" + String(repeating: "0", count: max(0, 4 - d.count)) + d).utf8)
        case .valkey:
            let d = String(version)
            return Array(("VALKEY" + String(repeating: "0", count: max(0, 3 - d.count)) + d).utf8)
        }
    }

    /// Parses the 9-byte magic. Returns nil when the bytes are not an RDB header.
    public static func parse(_ b: UnsafeRawBufferPointer) -> RDBHeader? {
        guard b.count >= 9 else { return nil }
        func digits(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                let d = Int(b[i]) - 48
                guard (0...9).contains(d) else { return nil }
                v = v * 10 + d
            }
            return v
        }
        if b[0] == 0x52, b[1] == 0x45, b[2] == 0x44, b[3] == 0x49, b[4] == 0x53 {  // REDIS
            return digits(5..<9).map { RDBHeader(family: .redis, version: $0) }
        }
        if b[0] == 0x56, b[1] == 0x41, b[2] == 0x4C, b[3] == 0x4B, b[4] == 0x45, b[5] == 0x59 {  // VALKEY
            return digits(6..<9).map { RDBHeader(family: .valkey, version: $0) }
        }
        return nil
    }
}

/// A value type id as written in the file (the byte before the key), with its meaning in the file's family.
public struct RDBValueType: Hashable, Sendable, CustomStringConvertible {
    /// The byte in the file.
    public let rawValue: UInt8
    /// What the byte means in this file's family.
    public let encoding: RDBEncoding

    @inlinable
    public init(rawValue: UInt8, encoding: RDBEncoding) {
        self.rawValue = rawValue
        self.encoding = encoding
    }

    /// The data type a user sees (string, list, ...).
    @inlinable public var kind: RDBKind { encoding.kind }

    public var description: String { "\(encoding.name)(\(rawValue))" }
}

/// The data type of a key, as `TYPE` reports it.
public enum RDBKind: UInt8, Sendable, Hashable, CustomStringConvertible {
    case string, list, set, zset, hash, stream, module, array

    public var description: String { staticName.description }

    /// Every kind by its name (`string`, `list`, ...).
    public static let allNames: [String: RDBKind] = [
        "string": .string, "list": .list, "set": .set, "zset": .zset, "hash": .hash, "stream": .stream,
        "module": .module, "array": .array,
    ]

    /// The name as a static string (no allocation when written).
    public var staticName: StaticString {
        switch self {
        case .string: "string"
        case .list: "list"
        case .set: "set"
        case .zset: "zset"
        case .hash: "hash"
        case .stream: "stream"
        case .module: "module"
        case .array: "array"
        }
    }
}

/// Every value layout the decoder knows: one case per (family, type byte) meaning.
///
/// The comment on each case names the server's constant.
public enum RDBEncoding: UInt8, Sendable, Hashable {
    /// `RDB_TYPE_STRING` (0)
    case string
    /// `RDB_TYPE_LIST` (1): linked list
    case list
    /// `RDB_TYPE_SET` (2): hash table
    case set
    /// `RDB_TYPE_ZSET` (3): ASCII scores
    case zset
    /// `RDB_TYPE_HASH` (4)
    case hash
    /// `RDB_TYPE_ZSET_2` (5): binary scores
    case zset2
    /// `RDB_TYPE_MODULE_PRE_GA` (6)
    case modulePreGA
    /// `RDB_TYPE_MODULE_2` (7)
    case module2
    /// `RDB_TYPE_HASH_ZIPMAP` (9)
    case hashZipmap
    /// `RDB_TYPE_LIST_ZIPLIST` (10)
    case listZiplist
    /// `RDB_TYPE_SET_INTSET` (11)
    case setIntset
    /// `RDB_TYPE_ZSET_ZIPLIST` (12)
    case zsetZiplist
    /// `RDB_TYPE_HASH_ZIPLIST` (13)
    case hashZiplist
    /// `RDB_TYPE_LIST_QUICKLIST` (14)
    case listQuicklist
    /// `RDB_TYPE_STREAM_LISTPACKS` (15)
    case streamListpacks
    /// `RDB_TYPE_HASH_LISTPACK` (16)
    case hashListpack
    /// `RDB_TYPE_ZSET_LISTPACK` (17)
    case zsetListpack
    /// `RDB_TYPE_LIST_QUICKLIST_2` (18)
    case listQuicklist2
    /// `RDB_TYPE_STREAM_LISTPACKS_2` (19)
    case streamListpacks2
    /// `RDB_TYPE_SET_LISTPACK` (20)
    case setListpack
    /// `RDB_TYPE_STREAM_LISTPACKS_3` (21)
    case streamListpacks3
    /// Redis `RDB_TYPE_HASH_METADATA_PRE_GA` (22, Redis 7.4 release candidates)
    case hashMetadataPreGA
    /// Redis `RDB_TYPE_HASH_LISTPACK_EX_PRE_GA` (23, Redis 7.4 release candidates)
    case hashListpackExPreGA
    /// Redis `RDB_TYPE_HASH_METADATA` (24)
    case hashMetadata
    /// Redis `RDB_TYPE_HASH_LISTPACK_EX` (25)
    case hashListpackEx
    /// Redis `RDB_TYPE_STREAM_LISTPACKS_4` (26)
    case streamListpacks4
    /// Redis `RDB_TYPE_STREAM_LISTPACKS_5` (27)
    case streamListpacks5
    /// Redis `RDB_TYPE_ARRAY` (28)
    case array
    /// Valkey `RDB_TYPE_HASH_2` (22 in `VALKEY` files)
    case valkeyHash2

    @inlinable
    public var kind: RDBKind {
        switch self {
        case .string: .string
        case .list, .listZiplist, .listQuicklist, .listQuicklist2: .list
        case .set, .setIntset, .setListpack: .set
        case .zset, .zset2, .zsetZiplist, .zsetListpack: .zset
        case .hash, .hashZipmap, .hashZiplist, .hashListpack, .hashMetadataPreGA, .hashListpackExPreGA,
            .hashMetadata, .hashListpackEx, .valkeyHash2:
            .hash
        case .streamListpacks, .streamListpacks2, .streamListpacks3, .streamListpacks4, .streamListpacks5: .stream
        case .modulePreGA, .module2: .module
        case .array: .array
        }
    }

    /// Whether the value is one compact blob (zipmap, ziplist, intset, listpack; `hashListpackEx` after its
    /// minimum field expiry), reported through `RDBVisitor.compactValue`.
    @inlinable
    public var isCompact: Bool {
        switch self {
        case .hashZipmap, .listZiplist, .setIntset, .zsetZiplist, .hashZiplist, .hashListpack, .zsetListpack,
            .setListpack, .hashListpackExPreGA, .hashListpackEx:
            true
        default:
            false
        }
    }

    /// Whether the value is one RDB string: a string, or a single blob (zipmap, ziplist, intset, listpack).
    @inlinable
    public var isOneString: Bool { self == .string || (isCompact && self != .hashListpackEx) }

    /// The in-memory encoding name `OBJECT ENCODING` would give after loading, as reports print it.
    public var name: String { staticName.description }

    /// `name` as a static string (no allocation when written).
    public var staticName: StaticString {
        switch self {
        case .string: "string"
        case .list: "linkedlist"
        case .set: "hashtable"
        case .zset, .zset2: "skiplist"
        case .hash, .hashMetadataPreGA, .hashMetadata, .valkeyHash2: "hashtable"
        case .modulePreGA, .module2: "module"
        case .hashZipmap: "zipmap"
        case .listZiplist, .zsetZiplist, .hashZiplist: "ziplist"
        case .setIntset: "intset"
        case .listQuicklist: "quicklist"
        case .listQuicklist2: "quicklist"
        case .hashListpack, .zsetListpack, .setListpack, .hashListpackExPreGA, .hashListpackEx: "listpack"
        case .streamListpacks, .streamListpacks2, .streamListpacks3, .streamListpacks4, .streamListpacks5: "stream"
        case .array: "array"
        }
    }

    /// Stream "type version" (1 for type 15 … 5 for type 27), 0 for non-streams.
    @inlinable
    public var streamVersion: Int {
        switch self {
        case .streamListpacks: 1
        case .streamListpacks2: 2
        case .streamListpacks3: 3
        case .streamListpacks4: 4
        case .streamListpacks5: 5
        default: 0
        }
    }
}

/// A top-level opcode. Each constant's comment names the server's constant.
public enum RDBOpcode: UInt8, Sendable {
    /// `RDB_OPCODE_EOF` (0xFF)
    case eof
    /// `RDB_OPCODE_SELECTDB` (0xFE)
    case selectDB
    /// `RDB_OPCODE_EXPIRETIME` (0xFD): seconds
    case expireTime
    /// `RDB_OPCODE_EXPIRETIME_MS` (0xFC)
    case expireTimeMilliseconds
    /// `RDB_OPCODE_RESIZEDB` (0xFB)
    case resizeDB
    /// `RDB_OPCODE_AUX` (0xFA)
    case aux
    /// `RDB_OPCODE_FREQ` (0xF9)
    case freq
    /// `RDB_OPCODE_IDLE` (0xF8)
    case idle
    /// `RDB_OPCODE_MODULE_AUX` (0xF7)
    case moduleAux
    /// `RDB_OPCODE_FUNCTION_PRE_GA` (0xF6)
    case functionPreGA
    /// `RDB_OPCODE_FUNCTION2` (0xF5)
    case function2
    /// `RDB_OPCODE_SLOT_INFO` (0xF4, Redis)
    case slotInfo
    /// Redis `RDB_OPCODE_KEY_META` (0xF3, RDB 13+)
    case keyMeta
    /// Valkey `RDB_OPCODE_SLOT_IMPORT` (0xF3, RDB 80+)
    case slotImport

    /// Opcodes that come before a key in its record (expiry, LRU/LFU, key metadata).
    @inlinable
    public var prefixesKey: Bool {
        switch self {
        case .expireTime, .expireTimeMilliseconds, .idle, .freq, .keyMeta: true
        default: false
        }
    }
}

/// What one byte in type/opcode position means for a given file: the one table that maps
/// (family, byte) to a meaning. Built once per file from the header.
public struct RDBDialect: Sendable {
    @usableFromInline
    enum Meaning: Sendable {
        case invalid
        case type(RDBEncoding)
        case opcode(RDBOpcode)
    }

    public let header: RDBHeader
    @usableFromInline let table: [Meaning]

    public init(_ header: RDBHeader) {
        self.header = header
        var t = [Meaning](repeating: .invalid, count: 256)
        let common: [(UInt8, RDBEncoding)] = [
            (0, .string), (1, .list), (2, .set), (3, .zset), (4, .hash), (5, .zset2), (6, .modulePreGA),
            (7, .module2), (9, .hashZipmap), (10, .listZiplist), (11, .setIntset), (12, .zsetZiplist),
            (13, .hashZiplist), (14, .listQuicklist), (15, .streamListpacks), (16, .hashListpack),
            (17, .zsetListpack), (18, .listQuicklist2), (19, .streamListpacks2), (20, .setListpack),
            (21, .streamListpacks3),
        ]
        for (b, e) in common { t[Int(b)] = .type(e) }
        let opcodes: [(UInt8, RDBOpcode)] = [
            (0xFF, .eof), (0xFE, .selectDB), (0xFD, .expireTime), (0xFC, .expireTimeMilliseconds),
            (0xFB, .resizeDB), (0xFA, .aux), (0xF9, .freq), (0xF8, .idle), (0xF7, .moduleAux),
            (0xF6, .functionPreGA), (0xF5, .function2), (0xF4, .slotInfo),
        ]
        for (b, o) in opcodes { t[Int(b)] = .opcode(o) }
        switch header.family {
        case .redis:
            let redisOnly: [(UInt8, RDBEncoding)] = [
                (22, .hashMetadataPreGA), (23, .hashListpackExPreGA), (24, .hashMetadata), (25, .hashListpackEx),
                (26, .streamListpacks4), (27, .streamListpacks5), (28, .array),
            ]
            for (b, e) in redisOnly { t[Int(b)] = .type(e) }
            t[0xF3] = .opcode(.keyMeta)
        case .valkey:
            t[22] = .type(.valkeyHash2)
            t[0xF3] = .opcode(.slotImport)
        }
        self.table = t
    }

    @inlinable
    func meaning(_ byte: UInt8) -> Meaning { table[Int(byte)] }

    /// The value type a byte stands for in this file, if it is one.
    public func valueType(_ byte: UInt8) -> RDBValueType? {
        if case .type(let e) = table[Int(byte)] { return RDBValueType(rawValue: byte, encoding: e) }
        return nil
    }
}
