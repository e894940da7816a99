import RDBKit

/// Settings of `RESPWriter`.
public struct RESPWriterOptions: Sendable {
    /// Most collection elements (list elements, members, field-value pairs) in one command.
    public var maxElementsPerCommand = 512
    /// A command is closed before an element would take it past this many bytes (a single element larger
    /// than this still gets a command of its own).
    public var maxBytesPerCommand = 1 << 20
    /// Leave out key expiries (PEXPIREAT) and hash-field TTLs (HPEXPIREAT).
    public var dropTTL = false
    /// RDB version of the server the commands are for: 9 = Redis 6.2, 10 = Redis 7.0, 11 = Redis 7.2 and
    /// Valkey 7.2–8.1, 12 = Redis 7.4+, 80 = Valkey 9. nil = the version of the file being read (the newest
    /// for AOF commands outside an RDB preamble), so that a dump replays into a server of its own kind. It
    /// decides which command forms
    /// may be used: `XSETID ... ENTRIESADDED n MAXDELETEDID id` and `XGROUP CREATE ... ENTRIESREAD n`
    /// (10+), `FUNCTION LOAD` (10+), `HPEXPIREAT` for hash-field TTLs (12+, Valkey 80+).
    public var targetVersion: Int?
    /// Write `SELECT db` before the first key and whenever the database changes.
    public var emitSelect = true
    /// Write `FUNCTION LOAD REPLACE` for the function libraries of the file (targets 10+).
    public var emitFunctions = true
    /// Write strings as `SET key value NX`: an existing key is left as it is (the reply is nil).
    public var setIfAbsent = false
    /// Give strings their expiry in the `SET` (`PXAT`, Redis 6.2+) instead of a `PEXPIREAT` after it.
    public var inlineExpiry = false
    /// Which sorted sets the target keeps compact (its `zset-max-listpack-*`): a set with a score of -0 is made
    /// a skiplist by a member longer than `value` before its -0 members are added (`writeNegativeZeros`).
    public var compactSortedSets = CompactSortedSetLimits()

    public init(
        maxElementsPerCommand: Int = 512, maxBytesPerCommand: Int = 1 << 20, dropTTL: Bool = false,
        targetVersion: Int? = nil, emitSelect: Bool = true, emitFunctions: Bool = true
    ) {
        self.maxElementsPerCommand = maxElementsPerCommand
        self.maxBytesPerCommand = maxBytesPerCommand
        self.dropTTL = dropTTL
        self.targetVersion = targetVersion
        self.emitSelect = emitSelect
        self.emitFunctions = emitFunctions
    }
}

/// A key a replay writer did not write, or wrote without something the target cannot hold.
public struct SkippedKey: Sendable, Hashable {
    public var db: Int
    /// The key's bytes.
    public var key: [UInt8]
    /// The value type as in the file.
    public var type: RDBValueType
    /// Why, in a few words ("module value (ReJSON-RL/3) cannot be written as commands").
    public var reason: String

    public init(db: Int, key: [UInt8], type: RDBValueType, reason: String) {
        self.db = db
        self.key = key
        self.type = type
        self.reason = reason
    }
}

/// Writes the RESP commands that rebuild the data set in a live server (`redis-cli --pipe`).
///
/// `SELECT` on database change (and before the first key); per key `SET`, `RPUSH`, `SADD`, `ZADD`, `HSET`
/// or, for streams, `XADD` per entry with its ID, `XSETID`, `XGROUP CREATE` per group, `XCLAIM ... FORCE
/// JUSTID` per pending entry (with its consumer, delivery time and count) and `XGROUP CREATECONSUMER` for
/// consumers without pending entries; then `HPEXPIREAT` for hash-field TTLs and `PEXPIREAT` for the key's
/// absolute expiry. Collections are split into commands of at most `maxElementsPerCommand` elements and
/// about `maxBytesPerCommand` bytes. Module and array values cannot be written as commands: they are left
/// out and listed in `skippedKeys`; keys written without something the target cannot express (field TTLs
/// for a target before 7.4, stream PEL entries without a consumer or of entries the stream no longer holds,
/// stream idempotency records, a stream length that does not match its entries, Redis 8.6 key metadata) are
/// listed in `lossyKeys`.
///
/// The buffer is committed at the end of each key and flushed between keys; within a key it is flushed
/// only between commands, once the key's output passes `out.keyChunkThreshold` (see
/// `OutputBuffer.keepsWholeKeys`). After an error, `out.rollback()` drops what is pending of the partial
/// key: all of it when keys are kept whole or its commands before the error come to less than
/// `out.keyChunkThreshold`; else what follows its last whole command (`OutputBuffer.keepsPartOfKey`: the output
/// then ends with the same commands however many threads decoded it).
/// What a writer keeps of the key being written: the fields of `RDBKeyInfo` it needs, copied one by one.
/// (Copying the whole 73-byte struct right after the decoder built it stalled on store forwarding: the
/// wide loads of the copy span the decoder's narrower stores. A tenth of a writer's time per key on
/// strings.)
struct OpenKey {
    var db: Int
    var type: RDBValueType
    var expireAtMs: Int64?
    var kind: RDBKind { type.kind }

    init(_ info: RDBKeyInfo) {
        db = info.db
        type = info.type
        expireAtMs = info.expireAtMs
    }
}

public struct RESPWriter: RDBVisitor {
    public let out: OutputBuffer
    public let options: RESPWriterOptions
    /// Keys left out, with the reason.
    public internal(set) var skippedKeys: [SkippedKey] = []
    /// Keys written without some of their data, with what was left out.
    public internal(set) var lossyKeys: [SkippedKey] = []
    /// `lossyKeys.count`.
    @inlinable public var lossyCount: Int { lossyKeys.count }
    /// The names of the function libraries left out (the target version has no functions:
    /// `functionsNeedVersion10`).
    public internal(set) var skippedLibraries: [String] = []
    /// Keys written.
    public internal(set) var keysWritten = 0
    /// Commands written.
    public internal(set) var commandsWritten = 0
    /// What was written for the last key (see `KeyPlan`).
    public private(set) var keyPlan = KeyPlan(form: .commands, needsGuard: false)
    /// Written before the name of each coming key (a temporary name, renamed by the caller); reports
    /// (`lossyKeys`) name the key as in the file.
    public var keyPrefix: [UInt8] = []

    var enc: RESPEncoder<OutputBuffer>
    /// `enc.commandsEnded` where the current key's commands began.
    var keyCommandMark = 0
    /// Bytes of `keyPrefix` at the start of `keyBuffer`.
    var keyPrefixCount = 0
    /// The database the target is in after the committed output (nil before the first SELECT).
    var committedDB: Int? = nil
    /// The SELECT this writer's output starts with, if it does (see `ChunkableSink`).
    public internal(set) var leadingSelect: (db: Int, bytes: Int)? = nil
    var pendingDB: Int? = nil
    let maxElements: Int
    let maxBytes: Int
    /// The target's RDB version: `options.targetVersion`, or the file's (see `beginFile`).
    var target: Int
    var streamMetadataArgs: Bool { target >= 10 }
    var fieldTTLCommands: Bool { target >= 12 }
    var functionCommands: Bool { target >= 10 }

    // The current key.
    let keyBuffer = OutputBuffer(target: nil, flushThreshold: 1024)
    var info: OpenKey? = nil
    var chunkElements = 0
    var lossy: String? = nil
    /// A KEY_META block (Redis 8.6 module metadata) preceded the coming key.
    var sawKeyMetadata = false

    // Sorted-set members of score -0, written by one trailing ZADD (see `zsetMember`): their bytes, the
    // end offset of each; the key's longest member.
    let negativeZeros = OutputBuffer(target: nil, flushThreshold: 1 << 12)
    var negativeZeroEnds: [Int] = []
    var zsetLongest = 0

    // A piece of a value (`pieceSink`): its elements are encoded as arguments, and `pieceIndex` holds for
    // each where it starts in `out` and the size `element` weighs it with; the main writer makes the
    // commands (`absorbPiece`).
    // (Not an optional: unwrapping one retained the buffer for every element.)
    let isPiece: Bool
    let pieceIndex: OutputBuffer

    // Hash-field TTLs of the current key: field bytes in `fieldTTLBytes`, (end offset, expiry) here.
    let fieldTTLBytes = OutputBuffer(target: nil, flushThreshold: 1 << 12)
    var fieldTTLs: [(end: Int, at: Int64)] = []

    // Streams: the metadata, and the current group (PEL entries come before the consumers that own them).
    var stream: RDBStreamMetadata? = nil
    var entryCount: UInt64 = 0
    var group: RDBStreamGroup? = nil
    let groupName = OutputBuffer(target: nil, flushThreshold: 1024)
    var pel: [RDBStreamPendingEntry] = []
    var pelIndex: [StreamID: Int] = [:]
    var owner: [Int] = []  // consumer index per PEL entry, -1 = none
    let consumerNames = OutputBuffer(target: nil, flushThreshold: 1 << 12)
    var consumerEnds: [Int] = []
    /// The stream's live entries' IDs, in order (`LiveStreamIDs`): PEL entries are checked against them.
    let liveIDs = LiveStreamIDs()

    public init(out: OutputBuffer, options: RESPWriterOptions = .init()) {
        self.init(out: out, options: options, pieceIndex: nil)
    }

    init(out: OutputBuffer, options: RESPWriterOptions, pieceIndex: OutputBuffer?) {
        isPiece = pieceIndex != nil
        self.pieceIndex = pieceIndex ?? out
        self.out = out
        self.options = options
        enc = RESPEncoder(out: out)
        maxElements = min(max(1, options.maxElementsPerCommand), 1 << 24)
        maxBytes = max(64, options.maxBytesPerCommand)
        target = options.targetVersion ?? Int.max
    }

    // MARK: file-level events

    public mutating func beginFile(_ header: RDBHeader) throws {
        if options.targetVersion == nil { target = header.version }
    }

    /// Why a function library is not written for a target before RDB 10.
    public static let functionsNeedVersion10 = "function libraries need a target of RDB version 10 (Redis 7.0) or newer"

    public mutating func functionLibrary(_ code: RDBString) throws {
        guard options.emitFunctions else { return }
        guard functionCommands else {
            skippedLibraries.append(StatsCollector.libraryName(code.array))
            return
        }
        enc.cancel()
        out.rollback()
        enc.begin(maxArguments: 4)
        enc.argument("FUNCTION")
        enc.argument("LOAD")
        enc.argument("REPLACE")
        enc.argument(code)
        enc.end()
        commandsWritten += 1
        out.commit()
        try out.flushIfNeeded()
    }

    public mutating func endFile(checksum: RDBChecksumStatus) throws {
        try out.flush()
    }

    // MARK: keys

    public mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        switch info.kind {
        case .module:
            sawKeyMetadata = false
            let what = info.type.encoding == .modulePreGA ? "pre-GA module value" : "module value"
            skippedKeys.append(SkippedKey(db: info.db, key: key.array, type: info.type, reason: "\(what) cannot be written as commands"))
            return .skip
        case .array:
            sawKeyMetadata = false
            skippedKeys.append(SkippedKey(db: info.db, key: key.array, type: info.type, reason: "array value cannot be written as commands"))
            return .skip
        default:
            break
        }
        startKey(key, info)
        switch info.kind {
        case .hash:
            fieldTTLs.removeAll(keepingCapacity: true)
            fieldTTLBytes.truncate(to: 0)
        case .stream:
            stream = nil
            entryCount = 0
            liveIDs.removeAll()
        case .zset:
            negativeZeros.truncate(to: 0)
            negativeZeroEnds.removeAll(keepingCapacity: true)
            zsetLongest = 0
        default: break
        }
        return .decode
    }

    public mutating func keyMetadata(_ raw: UnsafeRawBufferPointer) throws {
        sawKeyMetadata = true
    }

    public mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws {
        sawKeyMetadata = false
    }

    /// Remembers the key and writes the SELECT it needs.
    mutating func startKey(_ key: RDBString, _ info: RDBKeyInfo) {
        // Anything left of a key that failed half-way (nothing in normal operation).
        enc.cancel()
        out.rollback()
        self.info = OpenKey(info)
        keyBuffer.truncate(to: 0)
        if !keyPrefix.isEmpty { keyBuffer.append(keyPrefix) }
        keyPrefixCount = keyPrefix.count
        keyBuffer.append(key)
        chunkElements = 0
        if sawKeyMetadata || lossy != nil {
            lossy = sawKeyMetadata ? "key metadata (KEY_META) cannot be written as commands" : nil
        }
        sawKeyMetadata = false
        pendingDB = committedDB
        if options.emitSelect && committedDB != info.db {
            enc.select(info.db, noting: &leadingSelect)
            commandsWritten += 1
            pendingDB = info.db
        }
        // (Not `plan(of:)`: a call per key that passes the whole RDBKeyInfo; module and array keys never get here.)
        keyPlan = KeyPlan(form: .commands, needsGuard: needsGuard(info.kind, expireAtMs: info.expireAtMs))
        keyCommandMark = enc.commandsEnded
    }

    /// How a key will be written (its commands not counted yet), nil when it cannot be (module and array
    /// values). Only a string written as one `SET` needs no guard.
    @inlinable
    public func plan(of info: RDBKeyInfo) -> KeyPlan? {
        if info.kind == .module || info.kind == .array { return nil }
        return KeyPlan(form: .commands, needsGuard: needsGuard(info.kind, expireAtMs: info.expireAtMs))
    }

    @inline(__always)
    @inlinable
    func needsGuard(_ kind: RDBKind, expireAtMs: Int64?) -> Bool {
        !(kind == .string && (options.inlineExpiry || options.dropTTL || expireAtMs == nil))
    }

    /// The expiry a string gets in its `SET` (`inlineExpiry`), if any.
    var inlineExpiryAt: Int64? {
        guard options.inlineExpiry, !options.dropTTL, let info, info.kind == .string else { return nil }
        return info.expireAtMs
    }

    public mutating func stringValue(_ value: RDBString) throws {
        let at = inlineExpiryAt
        enc.begin(arguments: 3 &+ (options.setIfAbsent ? 1 : 0) &+ (at == nil ? 0 : 2))
        enc.append(encoded: RESPWriter.setWord, arguments: 1)
        enc.argument(keyBuffer.bytes)
        enc.argument(value)
        if options.setIfAbsent { enc.argument("NX") }
        if let at {
            enc.argument("PXAT")
            enc.argument(max(at, 1))
        }
        enc.end()
        commandsWritten += 1
    }

    /// String keys come whole (`stringKey`) unless keys get a prefix (written through `keyBuffer`).
    @inlinable
    public var stringDelivery: RDBStringDelivery { keyPrefix.isEmpty ? .whole : .events }

    /// A string key in one go: the same bytes and counts as `beginKey`, `stringValue` and `endKey`, with the
    /// `SET` (and its `PEXPIREAT`) laid out after one capacity check, the key copied once.
    public mutating func stringKey(_ key: RDBString, _ info: RDBKeyInfo, value: RDBString, raw: UnsafeRawBufferPointer) throws {
        guard _fastPath(!sawKeyMetadata && lossy == nil && !enc.isOpen && keyPrefix.isEmpty) else {
            _ = try beginKey(key, info)  // a string is always decoded
            try stringValue(value)
            try endKey()
            return
        }
        out.rollback()  // anything left of a key that failed half-way (nothing in normal operation)
        if options.emitSelect && committedDB != info.db {
            enc.select(info.db, noting: &leadingSelect)
            commandsWritten += 1
            committedDB = info.db
        }
        let at = options.dropTTL ? nil : info.expireAtMs
        let inline = options.inlineExpiry && at != nil
        let nx = options.setIfAbsent
        let keyRoom = OutputBuffer.bulkRoom(key)
        out.reserve(2 &* keyRoom &+ OutputBuffer.bulkRoom(value) &+ 112)
        let storage = out.storage
        var p = storage + out.count
        p = OutputBuffer.storeCommandHeader(arguments: 3 &+ (nx ? 1 : 0) &+ (inline ? 2 : 0), at: p)
        p = OutputBuffer.store(RESPWriter.setWord, at: p)
        p = OutputBuffer.storeBulk(key, at: p)
        p = OutputBuffer.storeBulk(value, at: p)
        if nx { p = OutputBuffer.store("$2\r\nNX\r\n", at: p) }
        var commands = 1
        if let at {
            if inline {
                p = OutputBuffer.store("$4\r\nPXAT\r\n", at: p)
                p = OutputBuffer.storeBulk(RDBString(integer: max(at, 1)), at: p)
            } else {
                p = OutputBuffer.store("*3\r\n$9\r\nPEXPIREAT\r\n", at: p)
                p = OutputBuffer.storeBulk(key, at: p)
                p = OutputBuffer.storeBulk(RDBString(integer: at), at: p)
                commands = 2
            }
        }
        out.count = p - storage
        enc.noteCommands(commands)
        commandsWritten &+= commands
        keyPlan = KeyPlan(form: .commands, needsGuard: needsGuard(.string, expireAtMs: info.expireAtMs))
        keyPlan.commands = commands
        keysWritten &+= 1
        out.commit()
        try out.flushIfNeeded()
    }

    static func bulkSize(_ n: Int) -> Int { n + 16 }

    /// `SET` as an encoded argument (a string's command: one copy, no length to format).
    static var setWord: UnsafeRawBufferPointer {
        let s: StaticString = "$3\r\nSET\r\n"
        return UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
    }

    /// Opens a command for the next element, closing the current one first when it is full. The common case
    /// (a piece's index entry, or room in the open command) is inlined into the element events; opening a
    /// command is not.
    @inline(__always)
    mutating func element(_ command: StaticString, argsPerElement: Int, size: Int) throws {
        if isPiece {
            pieceIndex.append(word: out.pendingCount, size)
            return
        }
        if _fastPath(enc.isOpen && chunkElements < maxElements && enc.commandBytes &+ size <= maxBytes) {
            chunkElements &+= 1
            return
        }
        try openElementCommand(command, argsPerElement: argsPerElement)
    }

    @inline(never)
    mutating func openElementCommand(_ command: StaticString, argsPerElement: Int) throws {
        if enc.isOpen {
            enc.end()
            commandsWritten += 1
        }
        try out.flushWithinKeyIfNeeded()
        enc.begin(maxArguments: 2 + argsPerElement * maxElements)
        enc.argument(command)
        enc.argument(keyBuffer.bytes)
        chunkElements = 1
    }

    /// An element of one argument (a list element, a set member): an integer's length is counted once, for
    /// its weight and its bulk header.
    @inline(__always)
    mutating func singleArgumentElement(_ command: StaticString, _ e: RDBString) throws {
        guard e.isInteger else {
            try element(command, argsPerElement: 1, size: RESPWriter.bulkSize(e.bytes.count))
            enc.argument(e.bytes)
            return
        }
        // (Formatting it into a stack buffer first, to weigh it, made copying it stall: its bytes were still
        // on their way to memory.)
        let n = DecimalFormatter.digitCount(e.integer)
        try element(command, argsPerElement: 1, size: RESPWriter.bulkSize(n))
        enc.argument(e.integer, digits: n)
    }

    public mutating func listElement(_ element: RDBString) throws {
        try singleArgumentElement("RPUSH", element)
    }

    public mutating func setMember(_ member: RDBString) throws {
        try singleArgumentElement("SADD", member)
    }

    public mutating func hashField(_ field: RDBString, value: RDBString, expireAtMs: Int64?) throws {
        try element("HSET", argsPerElement: 2, size: RESPWriter.bulkSize(field.count) + RESPWriter.bulkSize(value.count))
        enc.argument(field)
        enc.argument(value)
        if let at = expireAtMs, !options.dropTTL {
            if fieldTTLCommands {
                fieldTTLBytes.append(field)
                fieldTTLs.append((fieldTTLBytes.pendingCount, at))
            } else {
                lossy = "hash-field TTLs left out (the target version cannot hold them)"
            }
        }
    }

    // MARK: end of key

    mutating func closeChunk() {
        if enc.isOpen {
            enc.end()
            commandsWritten += 1
        }
    }

    public mutating func endKey() throws {
        closeChunk()
        guard let info else { return }
        if info.kind == .zset { try writeNegativeZeros() }
        if !fieldTTLs.isEmpty {
            // One HPEXPIREAT per run of fields with the same expiry (the server keeps listpack fields
            // ordered by TTL, so equal TTLs come together), at most maxElements fields each.
            var i = 0
            var fieldStart = 0
            while i < fieldTTLs.count {
                let at = fieldTTLs[i].at
                var j = i
                while j < fieldTTLs.count && fieldTTLs[j].at == at && j - i < maxElements { j += 1 }
                enc.begin(maxArguments: 5 + (j - i))
                enc.argument("HPEXPIREAT")
                enc.argument(keyBuffer.bytes)
                enc.argument(at)
                enc.argument("FIELDS")
                enc.argument(j - i)
                for k in i..<j {
                    let end = fieldTTLs[k].end
                    enc.argument(UnsafeRawBufferPointer(rebasing: fieldTTLBytes.bytes[fieldStart..<end]))
                    fieldStart = end
                }
                enc.end()
                commandsWritten += 1
                try out.flushWithinKeyIfNeeded()
                i = j
            }
            fieldTTLs.removeAll(keepingCapacity: true)
        }
        if let at = info.expireAtMs, !options.dropTTL, inlineExpiryAt == nil {
            enc.begin(arguments: 3)
            enc.argument("PEXPIREAT")
            enc.argument(keyBuffer.bytes)
            enc.argument(at)
            enc.end()
            commandsWritten += 1
        }
        if let l = lossy {
            lossyKeys.append(SkippedKey(db: info.db, key: Array(keyBuffer.bytes[keyPrefixCount...]), type: info.type, reason: l))
        }
        keyPlan.commands = enc.commandsEnded &- keyCommandMark
        self.info = nil
        keysWritten += 1
        committedDB = pendingDB
        out.commit()
        try out.flushIfNeeded()
    }
}
