import RDBKit

/// Settings of `RestoreWriter`.
public struct RestoreWriterOptions: Sendable {
    /// RDB version stamped into the payloads, which the target server must be able to read: 9 = Redis 6.2,
    /// 10 = Redis 7.0, 11 = Redis 7.2 and Valkey 7.2–8.1, 12 = Redis 7.4–8.4, 80 = Valkey 9. Values whose
    /// type the target loads pass through untouched; others are re-encoded or written as commands. nil =
    /// the version of the file being read (REDIS or VALKEY numbering), so that a dump restores into a
    /// server of its own kind.
    public var targetVersion: Int?
    /// Add `REPLACE` (overwrite existing keys instead of failing on them).
    public var replace = true
    /// Leave out expiries (ttl 0) and hash-field TTLs.
    public var dropTTL = false
    /// Write `SELECT db` before the first key and whenever the database changes.
    public var emitSelect = true
    /// Limits of the keys written as plain commands (see `RESPWriterOptions`).
    public var maxElementsPerCommand = 512
    public var maxBytesPerCommand = 1 << 20
    /// Which sorted sets the target keeps compact (its `zset-max-listpack-*`): a skiplist set of at most
    /// `entries` members holding a score of -0 goes as a compact payload holding the text "-0"
    /// (`payloadKeepingNegativeZero`).
    public var compactSortedSets = CompactSortedSetLimits()

    public init(targetVersion: Int? = nil, replace: Bool = true, dropTTL: Bool = false, emitSelect: Bool = true) {
        self.targetVersion = targetVersion
        self.replace = replace
        self.dropTTL = dropTTL
        self.emitSelect = emitSelect
    }
}

/// How a `RestoreWriter` wrote the keys.
public struct RestoreStats: Sendable, Hashable {
    /// RESTORE with the value's bytes from the file.
    public var passedThrough = 0
    /// RESTORE with a value re-encoded into a type the target loads.
    public var reencoded = 0
    /// Written as plain commands (see `RESPWriter`).
    public var asCommands = 0
    /// Left out (see `skippedKeys`).
    public var skipped = 0

    public init() {}
}

/// Writes `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s | FREQ f]` commands (RESP, for
/// `redis-cli --pipe`), the payload being the DUMP serialization of the value for the target version.
///
/// * A value whose type byte the target loads passes through as it is in the file (no decoding).
/// * A list, set, sorted set or hash in a newer compact type is re-encoded as a plain type every version
///   loads: list 1, set 2, sorted set 5 (binary scores), hash 4.
/// * A stream or a hash with field TTLs in a type the target cannot load is written as the commands of
///   `RESPWriter` (XADD/XSETID/XGROUP/XCLAIM, HSET/HPEXPIREAT).
/// * Module values pass through (the target needs the module); array values for a target before RDB 14,
///   and pre-GA module values, are left out and listed in `skippedKeys`.
///
/// `ttl` is the key's absolute expiry in Unix ms with `ABSTTL`, or 0 without expiry. Unless the buffer keeps
/// keys whole (`OutputBuffer.keepsWholeKeys`), a payload value larger than `out.keyChunkThreshold` goes to
/// the target as it is (from the input, or the re-encoded value) rather than through a copy in the buffer,
/// and keys written as commands are flushed in parts like `RESPWriter`.
public struct RestoreWriter: RDBVisitor {
    public let out: OutputBuffer
    public let options: RestoreWriterOptions
    public internal(set) var stats = RestoreStats()
    /// The RDB version payloads are written for: `options.targetVersion`, or the file's (see `beginFile`).
    public internal(set) var target: Int

    var enc: RESPEncoder<OutputBuffer>
    @usableFromInline var commands: RESPWriter
    var ownSkipped: [SkippedKey] = []
    @usableFromInline var ownLossy: [SkippedKey] = []
    /// KEY_META blocks (0xF3 + block) of the coming key: they lead its payload on targets 13+.
    let keyMeta = OutputBuffer(target: nil, flushThreshold: 1024)
    var committedDB: Int? = nil
    var pendingDB: Int? = nil
    /// The SELECT this writer's output starts with, if it does (see `ChunkableSink`).
    public internal(set) var leadingSelect: (db: Int, bytes: Int)? = nil

    /// `rewritten`: a value that came raw, sent as another payload (`payloadKeepingNegativeZero`).
    @usableFromInline enum Mode { case raw, reencode, rewritten, commands }
    @usableFromInline var mode = Mode.raw
    /// A key is open (between `beginKey` and `endKey`), with its LFU frequency or LRU idle time. Kept as
    /// fields rather than the whole `RDBKeyInfo`: copying that 73-byte struct right after the decoder built it
    /// stalled on store forwarding (a tenth of this writer's time per key on strings).
    var inKey = false
    var keyFrequency: UInt8? = nil
    var keyIdle: UInt64? = nil
    var typeByte: UInt8 = 0
    /// The key is a sorted set in a skiplist type passed through: its payload is looked into for -0 scores
    /// (`payloadKeepingNegativeZero`).
    var skiplistZset = false
    // Re-encoded value: the elements in `body`, their count in `count`.
    let body = OutputBuffer(target: nil, flushThreshold: 1 << 16)
    var count: UInt64 = 0
    var ttl: Int64 = 0

    /// Keys left out, with the reason.
    public var skippedKeys: [SkippedKey] { ownSkipped + commands.skippedKeys }
    /// Keys written as commands without something the target cannot hold.
    public var lossyKeys: [SkippedKey] { ownLossy + commands.lossyKeys }
    /// `lossyKeys.count`, without building the list.
    @inlinable public var lossyCount: Int { ownLossy.count + commands.lossyKeys.count }
    /// The function libraries left out (see `RESPWriter.skippedLibraries`).
    public var skippedLibraries: [String] { commands.skippedLibraries }

    public init(out: OutputBuffer, options: RestoreWriterOptions = .init()) {
        self.out = out
        self.options = options
        enc = RESPEncoder(out: out)
        target = options.targetVersion ?? 10
        var o = RESPWriterOptions(
            maxElementsPerCommand: options.maxElementsPerCommand, maxBytesPerCommand: options.maxBytesPerCommand,
            dropTTL: options.dropTTL, targetVersion: options.targetVersion, emitSelect: false)
        o.compactSortedSets = options.compactSortedSets
        commands = RESPWriter(out: out, options: o)
    }

    public mutating func beginFile(_ header: RDBHeader) throws {
        if options.targetVersion == nil { target = header.version }
        try commands.beginFile(header)
    }

    public mutating func keyMetadata(_ raw: UnsafeRawBufferPointer) throws {
        keyMeta.append(0xF3)
        keyMeta.append(raw)
    }

    public mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws {
        keyMeta.truncate(to: 0)
    }

    /// Whether payloads may start with KEY_META blocks (Redis 8.6+, RDB 13..79).
    var targetLoadsKeyMetadata: Bool { (13..<80).contains(target) }

    public mutating func functionLibrary(_ code: RDBString) throws {
        try commands.functionLibrary(code)
    }

    public mutating func endFile(checksum: RDBChecksumStatus) throws {
        try out.flush()
    }

    // MARK: keys

    /// How a key will be written: RESTORE (its type loads on the target, or is re-encoded into one that
    /// does), commands (streams, hashes with field TTLs: see `RESPWriter.plan(of:)`), nil (left out).
    public func plan(of info: RDBKeyInfo) -> KeyPlan? {
        switch Self.mode(of: info, target: target) {
        case nil: nil
        case .commands: commands.plan(of: info)
        case .raw, .reencode, .rewritten: KeyPlan(form: .restore, commands: 1, needsGuard: false)
        }
    }

    // The fixed arguments of RESTORE, encoded.
    static var restoreWord: UnsafeRawBufferPointer { Self.encoded("$7\r\nRESTORE\r\n") }
    static var zeroWord: UnsafeRawBufferPointer { Self.encoded("$1\r\n0\r\n") }
    static var replaceWord: UnsafeRawBufferPointer { Self.encoded("$7\r\nREPLACE\r\n") }
    static var absTTLWord: UnsafeRawBufferPointer { Self.encoded("$6\r\nABSTTL\r\n") }
    @inline(__always)
    static func encoded(_ s: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
    }

    static func mode(of info: RDBKeyInfo, target: Int) -> Mode? {
        let e = info.type.encoding
        if DumpPayload.canLoad(e, target: target) { return .raw }
        switch info.kind {
        case .list, .set, .zset, .string:
            return .reencode
        case .hash:
            switch e {
            case .hash, .hashZipmap, .hashZiplist, .hashListpack: return .reencode
            default: return .commands  // field TTLs: HSET + HPEXPIREAT
            }
        case .stream:
            return .commands
        case .module, .array:
            return nil
        }
    }

    /// What was written for the last key (see `KeyPlan`).
    /// (Inlinable, like the importer's other questions per key: an opaque getter copied the whole writer.)
    @inlinable public var keyPlan: KeyPlan {
        mode == .commands ? commands.keyPlan : KeyPlan(form: .restore, commands: 1, needsGuard: false)
    }

    /// Written before the name of each coming key (a temporary name, renamed by the caller); reports name
    /// the key as in the file.
    public var keyPrefix: [UInt8] {
        get { commands.keyPrefix }
        set { commands.keyPrefix = newValue }
    }

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        enc.cancel()
        out.rollback()
        skiplistZset = false
        let e = info.type.encoding
        if let m = Self.mode(of: info, target: target) {
            mode = m
        } else {
            let what = e == .modulePreGA ? "pre-GA module value (type 6)" : info.kind == .module ? "module value" : "array value"
            ownSkipped.append(SkippedKey(db: info.db, key: key.array, type: info.type,
                                         reason: "\(what) cannot be restored into RDB version \(target) nor written as commands"))
            stats.skipped += 1
            keyMeta.truncate(to: 0)
            return .skip
        }
        inKey = true
        keyFrequency = info.lfuFrequency
        keyIdle = info.idleSeconds
        if mode == .commands {
            commands.sawKeyMetadata = keyMeta.pendingCount > 0  // reported as lossy by the writer
            keyMeta.truncate(to: 0)
            _ = try commands.beginKey(key, info)
        } else if keyMeta.pendingCount > 0 && !targetLoadsKeyMetadata {
            ownLossy.append(SkippedKey(db: info.db, key: key.array, type: info.type,
                                       reason: "key metadata (KEY_META) left out: RDB version \(target) cannot load it"))
            keyMeta.truncate(to: 0)
        }
        pendingDB = committedDB
        if options.emitSelect && committedDB != info.db {
            enc.select(info.db, noting: &leadingSelect)
            pendingDB = info.db
        }
        if mode == .commands { return .decode }

        // RESTORE key ttl payload [REPLACE] [ABSTTL] [FREQ f | IDLETIME s], as `endKey` ends it: the count is
        // known, so the header goes out at once (nothing to patch), and the fixed words pre-encoded.
        ttl = 0
        if let at = info.expireAtMs, !options.dropTTL { ttl = max(at, 1) }  // 0 would mean "no expiry"
        var arguments = 4
        if options.replace { arguments += 1 }
        if ttl != 0 { arguments += 1 }
        if keyFrequency != nil || keyIdle != nil { arguments += 2 }
        enc.begin(arguments: arguments)
        enc.append(encoded: Self.restoreWord, arguments: 1)
        if keyPrefix.isEmpty {
            enc.argument(key)
        } else {
            let prefix = keyPrefix
            key.withBytes { k in prefix.withUnsafeBytes { enc.argument(prefix: $0, k) } }
        }
        if ttl == 0 { enc.append(encoded: Self.zeroWord, arguments: 1) } else { enc.argument(ttl) }
        if mode == .raw {
            typeByte = info.type.rawValue
            skiplistZset = target >= 2 && (e == .zset || e == .zset2)
            return .raw
        }
        body.truncate(to: 0)
        count = 0
        switch info.kind {
        case .list: typeByte = 1
        case .set: typeByte = 2
        case .zset: typeByte = 5
        case .hash: typeByte = 4
        default: typeByte = 0
        }
        return .decode
    }

    /// String keys come whole, their values not read (a string's payload is its bytes as in the file),
    /// unless keys get a prefix.
    /// (Inlinable: the parser asks it for every string key, and an opaque call made it copy the whole sink
    /// first, ~900 bytes, a tenth of `restore` of small strings.)
    @inlinable public var stringDelivery: RDBStringDelivery { keyPrefix.isEmpty ? .wholeRaw : .events }

    /// A string key in one go: the same bytes and counts as `beginKey`, `rawValue` and `endKey`, the whole
    /// `RESTORE` laid out after one capacity check. Keys with KEY_META, an LRU or LFU hint, or a value large
    /// enough to go to the target on its own take those calls.
    public mutating func stringKey(_ key: RDBString, _ info: RDBKeyInfo, value: RDBString, raw: UnsafeRawBufferPointer) throws {
        guard _fastPath(keyMeta.pendingCount == 0 && info.lfuFrequency == nil && info.idleSeconds == nil && !enc.isOpen
                        && keyPrefix.isEmpty && !out.writesThrough(raw.count) && DumpPayload.canLoad(.string, target: target))
        else {
            let action = try beginKey(key, info)
            precondition(action != .decode, "RestoreWriter: a string is restored from its bytes")
            if action == .raw { try rawValue(raw) }
            try endKey()
            return
        }
        out.rollback()  // anything left of a key that failed half-way (nothing in normal operation)
        if options.emitSelect && committedDB != info.db {
            enc.select(info.db, noting: &leadingSelect)
            committedDB = info.db
        }
        mode = .raw
        var ttl: Int64 = 0
        if let at = info.expireAtMs, !options.dropTTL { ttl = max(at, 1) }  // 0 would mean "no expiry"
        let replace = options.replace
        let payload = 1 &+ raw.count &+ DumpPayload.trailerSize
        out.reserve(OutputBuffer.bulkRoom(key) &+ payload &+ 112)
        let storage = out.storage
        var p = storage + out.count
        // RESTORE key ttl payload [REPLACE] [ABSTTL]
        p = OutputBuffer.storeCommandHeader(arguments: 4 &+ (replace ? 1 : 0) &+ (ttl != 0 ? 1 : 0), at: p)
        p = OutputBuffer.store(Self.restoreWord, at: p)
        p = OutputBuffer.storeBulk(key, at: p)
        p = ttl == 0 ? OutputBuffer.store(Self.zeroWord, at: p) : OutputBuffer.storeBulk(RDBString(integer: ttl), at: p)
        p = OutputBuffer.storeBulkHeader(payload, at: p)
        p = Self.storePayload(type: 0, raw, version: target, at: p)
        p.storeBytes(of: UInt16(0x0A0D).littleEndian, as: UInt16.self)  // CR LF
        p += 2
        if replace { p = OutputBuffer.store(Self.replaceWord, at: p) }
        if ttl != 0 { p = OutputBuffer.store(Self.absTTLWord, at: p) }
        out.count = p - storage
        enc.noteCommands(1)
        stats.passedThrough &+= 1
        out.commit()
        try out.flushIfNeeded()
    }

    /// Stores a DUMP payload at `p`: the type byte, the value as in the file, the version and the CRC-64 of all
    /// three (`2 + value.count + trailerSize` bytes of room); returns where the next byte goes.
    @inline(__always)
    static func storePayload(type: UInt8, _ value: UnsafeRawBufferPointer, version: Int, at p: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        p.storeBytes(of: type, as: UInt8.self)
        if value.count > 0 { OutputBuffer.copy(p + 1, value.baseAddress!, value.count) }
        let trailer = p + 1 + value.count
        trailer.storeBytes(of: UInt16(truncatingIfNeeded: version).littleEndian, as: UInt16.self)
        let crc = CRC64.checksum(UnsafeRawBufferPointer(start: p, count: 3 &+ value.count))
        (trailer + 2).storeBytes(of: crc.littleEndian, as: UInt64.self)
        return trailer + 10
    }

    public mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws {
        guard inKey else { return }
        if skiplistZset, let payload = try Self.payloadKeepingNegativeZero(raw, type: typeByte, target: target, limits: options.compactSortedSets) {
            typeByte = payload.type
            mode = .rewritten
            return try payload.value.withUnsafeBytes { try rawPayload($0) }
        }
        try rawPayload(raw)
    }

    /// The payload argument of the value `raw` with the type byte `typeByte`.
    mutating func rawPayload(_ raw: UnsafeRawBufferPointer) throws {
        let size = keyMeta.pendingCount + 1 + raw.count + DumpPayload.trailerSize
        enc.beginArgument(length: size)
        if keyMeta.pendingCount == 0, !out.writesThrough(raw.count) {
            // The common payload, the type byte and the value as in the file, then the trailer: written and
            // checksummed in place after one capacity check (the appends one by one were ~8% of a restore of
            // small strings).
            out.reserve(size + 2)
            out.count = Self.storePayload(type: typeByte, raw, version: target, at: out.storage + out.count) - out.storage
            enc.endArgument()
            return
        }
        let start = out.pendingCount
        out.append(keyMeta.bytes)
        keyMeta.truncate(to: 0)
        out.append(typeByte)
        try appendPayload(raw, head: start)
        enc.endArgument()
    }

    public mutating func stringValue(_ value: RDBString) throws {
        switch mode {
        case .commands: try commands.stringValue(value)
        default: DumpPayload.appendString(value, to: body)
        }
    }

    public mutating func listElement(_ element: RDBString) throws {
        if mode == .commands { return try commands.listElement(element) }
        DumpPayload.appendString(element, to: body)
        count += 1
    }

    public mutating func setMember(_ member: RDBString) throws {
        if mode == .commands { return try commands.setMember(member) }
        DumpPayload.appendString(member, to: body)
        count += 1
    }

    public mutating func zsetMember(_ member: RDBString, score: Double) throws {
        if mode == .commands { return try commands.zsetMember(member, score: score) }
        DumpPayload.appendString(member, to: body)
        DumpPayload.appendDouble(score, to: body)
        count += 1
    }

    public mutating func hashField(_ field: RDBString, value: RDBString, expireAtMs: Int64?) throws {
        if mode == .commands { return try commands.hashField(field, value: value, expireAtMs: expireAtMs) }
        // Only types without field TTLs are re-encoded, so `expireAtMs` is nil here.
        DumpPayload.appendString(field, to: body)
        DumpPayload.appendString(value, to: body)
        count += 1
    }

    // Streams are either passed through or written as commands.
    public mutating func beginStreamEntry(id: StreamID, fieldCount: Int) throws {
        try commands.beginStreamEntry(id: id, fieldCount: fieldCount)
    }
    public mutating func streamEntryField(_ field: RDBString, value: RDBString) throws {
        try commands.streamEntryField(field, value: value)
    }
    public mutating func endStreamEntry() throws { try commands.endStreamEntry() }
    public mutating func streamMetadata(_ metadata: RDBStreamMetadata) throws { try commands.streamMetadata(metadata) }
    public mutating func beginStreamGroup(_ group: RDBStreamGroup) throws { try commands.beginStreamGroup(group) }
    public mutating func streamPendingEntry(_ entry: RDBStreamPendingEntry) throws { try commands.streamPendingEntry(entry) }
    public mutating func beginStreamConsumer(_ consumer: RDBStreamConsumer) throws { try commands.beginStreamConsumer(consumer) }
    public mutating func streamConsumerPendingID(_ id: StreamID) throws { try commands.streamConsumerPendingID(id) }
    public mutating func endStreamConsumer() throws { try commands.endStreamConsumer() }
    public mutating func streamNackedID(_ id: StreamID) throws { try commands.streamNackedID(id) }
    public mutating func endStreamGroup() throws { try commands.endStreamGroup() }
    public mutating func streamIdempotencyConfig(durationSeconds: UInt64, maxEntries: UInt64) throws {
        try commands.streamIdempotencyConfig(durationSeconds: durationSeconds, maxEntries: maxEntries)
    }
    public mutating func streamIdempotentID(producer: RDBString, iid: RDBString, id: StreamID) throws {
        try commands.streamIdempotentID(producer: producer, iid: iid, id: id)
    }
    public mutating func streamIdempotencyStats(iidsAdded: UInt64, iidsDuplicates: UInt64) throws {
        try commands.streamIdempotencyStats(iidsAdded: iidsAdded, iidsDuplicates: iidsDuplicates)
    }

    /// Appends the value bytes of a payload whose head (KEY_META, type, count) was appended from the pending
    /// offset `head` on, then the version and CRC64 trailer. A large value may go to the target directly.
    mutating func appendPayload(_ value: UnsafeRawBufferPointer, head: Int) throws {
        guard out.writesThrough(value.count) else {
            out.append(value)
            return DumpPayload.appendTrailer(out, payloadStart: head, version: target)
        }
        // The command's start (its header written by `beginKey`), the head and the value leave the buffer:
        // the checksum of the head first.
        var crc = CRC64()
        crc.update(UnsafeRawBufferPointer(rebasing: out.bytes[head...]))
        crc.update(value)
        try out.appendWithinKey(value)
        DumpPayload.appendTrailer(out, payloadStart: out.pendingCount, written: crc, version: target)
    }

    public mutating func endKey() throws {
        guard inKey else { return }
        inKey = false
        switch mode {
        case .commands:
            try commands.endKey()  // commits and flushes
            stats.asCommands += 1
            committedDB = pendingDB
            return
        case .rewritten:
            stats.reencoded += 1
        case .reencode:
            let withCount = typeByte != 0
            let size = keyMeta.pendingCount + 1 + (withCount ? DumpPayload.lengthSize(count) : 0) + body.pendingCount + DumpPayload.trailerSize
            enc.beginArgument(length: size)
            let start = out.pendingCount
            out.append(keyMeta.bytes)
            keyMeta.truncate(to: 0)
            out.append(typeByte)
            if withCount { DumpPayload.appendLength(count, to: out) }
            try appendPayload(body.bytes, head: start)
            enc.endArgument()
            stats.reencoded += 1
        case .raw:
            stats.passedThrough += 1
        }
        if options.replace { enc.append(encoded: Self.replaceWord, arguments: 1) }
        if ttl != 0 { enc.append(encoded: Self.absTTLWord, arguments: 1) }
        if let f = keyFrequency {
            enc.argument("FREQ")
            enc.argument(Int64(f))
        } else if let idle = keyIdle {
            enc.argument("IDLETIME")
            enc.argument(unsigned: idle)
        }
        enc.end()
        committedDB = pendingDB
        out.commit()
        try out.flushIfNeeded()
    }
}
