import RDBKit
import RDBSinks
import RedisWire

/// A writer the importer can drive: RESP commands or RESTORE payloads.
public protocol ReplayWriter: RDBVisitor {
    var out: OutputBuffer { get }
    /// Keys the writer left out, with the reason.
    var skippedKeys: [SkippedKey] { get }
    /// Keys written without something the target cannot hold.
    var lossyKeys: [SkippedKey] { get }
    /// How many (asked after every key: cheap, unlike the list).
    var lossyCount: Int { get }
    /// How the writer will write a key, before it does (nil: it leaves it out).
    func plan(of info: RDBKeyInfo) -> KeyPlan?
    /// What it wrote for the last key: form and guard after `beginKey`, commands after `endKey`.
    var keyPlan: KeyPlan { get }
    /// Written before the coming keys' names (the temporary name).
    var keyPrefix: [UInt8] { get set }
}

extension RESPWriter: ReplayWriter {}
extension RestoreWriter: ReplayWriter {}

/// State shared by the visitor and the importer on the decoding thread.
final class ImportContext {
    let options: ImportOptions
    let builder: BatchBuilder
    let problems: ProblemLog
    let targetVersion: Int?
    /// Which sorted sets the target keeps compact (its `zset-max-listpack-*`; the defaults when unknown).
    var compactSortedSets = CompactSortedSetLimits()
    /// Databases of the target, when known.
    let databases: Int?
    /// Prefix of temporary key names.
    let temporaryPrefix: [UInt8]
    /// The key being decoded; the target of the writer's buffer (big keys go out in parts).
    let parts: KeyParts
    let nowMs = unixMilliseconds()
    /// Set by `Importer.stop()` from any thread; looked at before each key and command.
    let stopRequest: StopRequest
    /// Rewrites a replication stream's relative expiries (`ImportOptions.stream`).
    let relativeExpiry = RelativeExpiry()
    @exclusivity(unchecked) var file = 0
    /// Offset of the last key or command read in the current input (progress of mapped inputs).
    @exclusivity(unchecked) var position = 0
    /// Why the import stopped on the decoding side (a database the target does not have, ...).
    @exclusivity(unchecked) var failure: String?
    /// Nothing more is sent: keys are only listed as not arrived.
    var listing: Bool { failure != nil || builder.stopped }

    /// Keys per database of the target before the import (nil: unknown, every key is guarded).
    let keyspaceAtStart: [Int: Int]?
    /// Per target database, the one stream of keys (input file, database of the file) that may write to it
    /// unguarded; -1 once anything else has written to it.
    @exclusivity(unchecked) var owner: [Int: (file: Int, db: Int)] = [:]
    /// An AOF command has been sent: from then on every key is guarded.
    @exclusivity(unchecked) var commandsSent = false
    /// The previous key's stream and answer (`unguarded` asks the dictionaries once per stream).
    @exclusivity(unchecked) var lastAnswer: (file: Int, target: Int, source: Int, free: Bool)?

    init(options: ImportOptions, builder: BatchBuilder, problems: ProblemLog, targetVersion: Int?, databases: Int?,
         temporaryPrefix: [UInt8], keyspaceAtStart: [Int: Int]? = nil, stopRequest: StopRequest = StopRequest()) {
        self.stopRequest = stopRequest
        self.keyspaceAtStart = options.guardEveryKey ? nil : keyspaceAtStart
        self.options = options
        self.builder = builder
        self.problems = problems
        self.targetVersion = targetVersion
        self.databases = databases
        self.temporaryPrefix = temporaryPrefix
        parts = KeyParts(builder: builder, replace: options.replace, temporaryPrefix: temporaryPrefix)
    }

    /// Whether a key of database `source` of the current file can go to database `target` without its
    /// guard (`DEL key` first, or a temporary name): nothing can have written that name there before.
    /// True when the target database was empty when the import began and only this file's database
    /// `source` has written to it since (a server never saves a key twice in one database). Anything else
    /// writing there (another file, another database merged into it, an AOF command) ends it for good.
    func unguarded(target: Int, source: Int) -> Bool {
        // The same stream as the previous key (nothing else can have written in between): the same answer.
        if let l = lastAnswer, l.file == file, l.target == target, l.source == source, !commandsSent { return l.free }
        let free = decideUnguarded(target: target, source: source)
        lastAnswer = (file, target, source, free)
        return free
    }

    func decideUnguarded(target: Int, source: Int) -> Bool {
        guard let ks = keyspaceAtStart, ks[target] == nil, !commandsSent else { return false }
        if let o = owner[target] {
            if o.file == file && o.db == source { return true }
            owner[target] = (-1, -1)
            return false
        }
        owner[target] = (file, source)
        return true
    }

    /// The routing of a cluster target (nil: a single server).
    var cluster: ClusterRouting? { builder.cluster }

    /// Cluster targets: makes the builder write to the master of `key`'s slot. False (the import stops,
    /// the reason in `failure`) when that master cannot be had.
    @inline(__always)
    func route(_ key: UnsafeRawBufferPointer) -> Bool { route(slot: HashSlot.of(key)) }

    /// `route(_:)` by slot.
    func route(slot: Int) -> Bool {
        guard let l = lane(slot: slot) else { return false }
        builder.use(lane: l)
        return true
    }

    /// The builder lane of the master of `slot`; nil (the import stops) when it cannot be had.
    func lane(slot: Int) -> Int? {
        guard let c = cluster else { return builder.lane }
        do {
            return try c.lane(slot: slot)
        } catch {
            if failure == nil { failure = "\(error)" }
            return nil
        }
    }

    var stats: DecodeCounters {
        get { builder.stats[file] }
        _modify { yield &builder.stats[file] }
    }

    /// Maps a database of the file; nil (and the import stops) when the target does not have it.
    func targetDatabase(_ db: Int) -> Int? {
        let t = options.targetDatabase(db)
        if let n = databases, t >= n {
            if failure == nil {
                failure = "database \(t) (db \(db) of \(problems.fileName(file))) does not exist on the target, which has \(n) databases: map it with --db-map or --db"
            }
            return nil
        }
        return t
    }

    func notSent(_ key: UnsafeRawBufferPointer, db: Int, offset: Int, isKey: Bool) {
        if isKey { stats.keysNotArrived += 1 }
        problems.add(.notSent, file: file, db: db, key: Array(key), message: "not sent: the import stopped before it", offset: offset)
    }
}

/// Wraps a replay writer: the writer encodes each key into its buffer, and at the end of the key this
/// visitor moves the bytes into the current batch as one record (a key larger than `keyChunkBytes` has
/// gone out in parts by then: see `KeyParts`), with what makes the record safe to resend and exact about
/// existing keys:
///
/// * Into a database that was empty when the import began, a key that nothing in this import can have
///   written before goes without the guards below, and gets `DEL key` only if it is resent after a
///   reconnect (`ImportContext.unguarded`; `ImportOptions.guardEveryKey` turns this off).
/// * `replace`: a key written as commands starts with `DEL key` (strings need none: SET overwrites);
///   RESTORE carries `REPLACE`.
/// * no `replace`: RESTORE without REPLACE (the server answers BUSYKEY for an existing key); a key written
///   as commands is built under a temporary name and moved with `RENAMENX tmp key` (0 = the key exists:
///   reported, and the temporary deleted by the `DEL tmp` that follows). The check is atomic and needs no
///   round trip, unlike `EXISTS` before writing.
///
/// AOF commands pass through (their `SELECT`s become the importer's own, mapped); a `MULTI` … `EXEC` block
/// is one record.
struct ImportVisitor<W: ReplayWriter>: RDBForwardingVisitor, AOFVisitor {
    var inner: W
    let out: OutputBuffer
    let ctx: ImportContext

    // The current key (its name, database, ... are in `parts`).
    var inKey = false
    let parts: KeyParts
    var lossyCount = 0
    /// Commands mode: a key that commands may not rebuild exactly (`RESPWriter.commandsMayLose`) goes as
    /// RESTORE through this writer when the target loads its payload (`viaPayload`: the current key does).
    var payloads: RestoreWriter?
    var viaPayload = false
    var sawKeyMetadata = false
    /// The current key came with key metadata (`KEY_META`).
    var keyMetadata = false
    /// Plain strings go as runs of `MSET` (`BatchBuilder.addString`): in replace mode (without it each
    /// string's `SET NX` reports an existing key, which `MSET` cannot) into a single server (a cluster
    /// routes each key to its slot's master), with strings written as commands (not `--restore`).
    let stringRuns: Bool

    // An AOF MULTI block being gathered.
    var inBlock = false
    var blockDB = 0
    var blockOffset = 0
    var blockFirstKey: [UInt8]?
    var blockCommands = 0
    /// Cluster targets: the slot of the open block's keys (-1: none yet), and a block being dropped.
    var blockSlot = -1
    var blockRefused = false

    init(writer: W, ctx: ImportContext) {
        inner = writer
        out = writer.out
        self.ctx = ctx
        parts = ctx.parts
        stringRuns = ctx.options.replace && ctx.options.mode != .restore && ctx.cluster == nil && ctx.builder.maxRunKeys > 1
        if ctx.options.mode != .restore {
            var o = RestoreWriterOptions(targetVersion: ctx.targetVersion, replace: ctx.options.replace, dropTTL: ctx.options.dropTTL,
                                         emitSelect: false)
            o.compactSortedSets = ctx.compactSortedSets
            payloads = RestoreWriter(out: writer.out, options: o)
        }
    }

    mutating func beginFile(_ header: RDBHeader) throws {
        try inner.beginFile(header)
        try payloads?.beginFile(header)
    }

    mutating func keyMetadata(_ raw: UnsafeRawBufferPointer) throws {
        sawKeyMetadata = true  // KEY_META goes to the commands writer (which reports it lost)
        try inner.keyMetadata(raw)
    }

    /// Whether the key goes as RESTORE in commands or auto mode (see `payloads`): in auto mode every value
    /// but a string (one `SET` is cheaper than a payload) when the target version is known, in commands mode
    /// those that commands may not rebuild exactly; either only when the target loads the payload.
    func goesAsPayload(_ info: RDBKeyInfo, keyMetadata: Bool) -> Bool {
        // (`payloads?.target`, not `let p = payloads`: that copied the whole writer for every key.)
        guard !keyMetadata, let target = payloads?.target else { return false }
        let wanted = (ctx.options.mode == .auto && ctx.targetVersion != nil && info.kind != .string)
            || RESPWriter.commandsMayLose(info, target: target)
        return wanted && DumpPayload.canLoad(info.type.encoding, target: target)
    }

    // MARK: keys

    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        if ctx.stopRequest.isSet { throw ImportStopped(offset: info.recordOffset) }
        ctx.stats.keysRead += 1
        ctx.position = info.recordOffset
        let hadKeyMetadata = sawKeyMetadata
        sawKeyMetadata = false
        keyMetadata = hadKeyMetadata
        guard !ctx.listing, let db = ctx.targetDatabase(info.db) else {
            key.withBytes { ctx.notSent($0, db: ctx.options.targetDatabase(info.db), offset: info.recordOffset, isKey: true) }
            return .skip
        }
        if ctx.options.skipExpired, let at = info.expireAtMs, at <= ctx.nowMs {
            ctx.stats.keysExpired += 1
            return .skip
        }
        if ctx.cluster != nil, !key.withBytes({ ctx.route($0) }) {
            key.withBytes { ctx.notSent($0, db: db, offset: info.recordOffset, isKey: true) }
            return .skip
        }
        viaPayload = goesAsPayload(info, keyMetadata: hadKeyMetadata)
        copyBytes(key, into: &parts.name)
        parts.db = db
        parts.file = ctx.file
        parts.offset = info.recordOffset
        parts.kind = info.kind
        // A key rebuilt by commands that add to it needs a guard (a temporary name, or `DEL key` first in
        // replace mode) unless nothing can have written its name before. A string written as one `SET`
        // needs none: it replaces, or with NX (the existence check) leaves an existing key as it is.
        let needsGuard = viaPayload ? false : (inner.plan(of: info)?.needsGuard ?? false)
        // Every key written counts for the database's owner, strings too.
        let free = ctx.unguarded(target: db, source: info.db)
        parts.unguarded = needsGuard && free
        parts.owned = free
        parts.temporary = needsGuard && !free && !ctx.options.replace
        if parts.temporary {
            parts.prefix = parts.name.withUnsafeBytes { TemporaryName.prefix(ctx.temporaryPrefix, key: $0, tagged: ctx.cluster != nil) }
        }
        var mapped = info
        mapped.db = db
        parts.armed = true
        let action: RDBKeyAction
        if viaPayload {
            action = try payloads!.beginKey(key, mapped)
            parts.restore = true
        } else {
            inner.keyPrefix = parts.temporary ? parts.prefix : []
            action = try inner.beginKey(key, mapped)
            parts.restore = inner.keyPlan.form == .restore
        }
        if case .skip = action {
            parts.armed = false
            ctx.stats.keysSkipped += 1
            let reason = inner.skippedKeys.last?.reason ?? "the writer cannot express this value"
            ctx.problems.add(.skipped, file: ctx.file, db: db, key: parts.name, message: reason, offset: parts.offset)
            return .skip
        }
        inKey = true
        return action
    }

    mutating func endKey() throws {
        let plan: KeyPlan
        if viaPayload {
            viaPayload = false
            try payloads!.endKey()
            plan = payloads!.keyPlan
        } else {
            try inner.endKey()
            plan = inner.keyPlan
        }
        guard inKey else { return }
        inKey = false
        parts.armed = false
        let bytes = out.bytes
        if parts.started {
            parts.finish(bytes)  // the key went out in parts: this is the last one
        } else if stringRuns, parts.kind == .string, plan.form == .commands, plan.commands == 1, !keyMetadata, !parts.unguarded,
            bytes.count < ctx.builder.maxRunBytes,  // (a big value would be copied once more for nothing)
            let pair = Self.setArguments(bytes)
        {
            ctx.builder.addString(pair, name: parts.name, db: parts.db, file: ctx.file, offset: parts.offset)
        } else {
            let isRestore = plan.form == .restore
            let replace = ctx.options.replace
            ctx.builder.addKey(
                bytes, commands: plan.commands, name: parts.name, db: parts.db, file: ctx.file, offset: parts.offset,
                deleteFirst: parts.deletesFirst(restore: isRestore),
                deleteOnResend: parts.deletesOnResend,
                existsReply: !replace && parts.kind == .string && !isRestore && !parts.temporary ? 0 : -1,  // SET ... NX: nil = exists
                temporaryPrefix: parts.temporary ? parts.prefix : nil)
        }
        out.truncate(to: 0)
        out.commit()
        if inner.lossyCount > lossyCount {
            let lossy = inner.lossyKeys
            for k in lossy[lossyCount...] {
                ctx.problems.add(.lossy, file: ctx.file, db: k.db, key: k.key, message: k.reason, offset: parts.offset)
            }
            lossyCount = lossy.count
        }
    }

    /// Salvage mode: the key's value is corrupt in the file. Nothing of it is sent, or, when parts of it
    /// went out already, they are undone (`KeyParts.abort`); the key is reported either way.
    mutating func abortKey(_ key: RDBString, _ info: RDBKeyInfo, error: RDBError, lostRange: Range<Int>) throws {
        try inner.abortKey(key, info, error: error, lostRange: lostRange)
        viaPayload = false
        guard inKey else { return }
        inKey = false
        if !parts.abort("\(error)") {
            parts.armed = false
            ctx.stats.keysSkipped += 1
            ctx.problems.add(.skipped, file: ctx.file, db: parts.db, key: parts.name, message: "corrupt in the file, not sent: \(error)", offset: parts.offset)
        }
        // What the writer has pending of the key (maybe inside an open command) is dropped by the writer at
        // its next key; until then strings go through the writer too (see `beginKey`).
    }

    mutating func rawValue(_ raw: UnsafeRawBufferPointer) throws {
        if viaPayload { try payloads!.rawValue(raw) } else { try inner.rawValue(raw) }
    }

    mutating func droppedEmptyKey(_ key: RDBString, _ info: RDBKeyInfo) throws {
        sawKeyMetadata = false
        ctx.stats.keysRead += 1
        ctx.stats.keysEmpty += 1
    }

    mutating func functionLibrary(_ code: RDBString) throws {
        let name = Self.libraryName(code)
        guard !ctx.listing else {
            name.withUnsafeBytes { ctx.notSent($0, db: 0, offset: 0, isKey: false) }
            return
        }
        try inner.functionLibrary(code)
        let bytes = out.bytes
        if bytes.isEmpty {
            ctx.problems.add(.function, file: ctx.file, db: 0, key: name,
                             message: RESPWriter.functionsNeedVersion10 + "; not sent")
            return
        }
        // On a cluster, to every master.
        let b = ctx.builder
        let current = b.lane
        for lane in ctx.cluster == nil ? [current] : Array(b.lanes.indices) {
            b.use(lane: lane)
            b.begin(db: b.streamDB ?? 0, file: ctx.file)
            b.append(bytes, commands: 1)  // FUNCTION LOAD REPLACE
            name.withUnsafeBytes { b.end(kind: .function, name: $0, file: ctx.file, offset: 0) }
        }
        b.use(lane: current)
        out.truncate(to: 0)
        out.commit()
    }

    /// The `key value` arguments of a key written as exactly `SET key value` (three arguments: no expiry, no
    /// `NX`), nil for anything else.
    @inline(__always)
    static func setArguments(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let n = setHead.count
        guard bytes.count > n, bytes.prefix(n).elementsEqual(setHead) else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[n...])
    }

    /// `function library <name>` from the `#!engine name=<name>` line.
    static func libraryName(_ code: RDBString) -> [UInt8] {
        Array("function library \(StatsCollector.libraryName(code.array))".utf8)
    }
}

/// How the writer starts a key written as `SET key value` (see `ImportVisitor.setArguments`).
let setHead: [UInt8] = Array("*3\r\n$3\r\nSET\r\n".utf8)

/// Copies a key's bytes (outside the generic visitor: no closure specialised per writer type).
func copyBytes(_ s: RDBString, into a: inout [UInt8]) {
    a.removeAll(keepingCapacity: true)
    if s.isInteger {
        a.append(contentsOf: String(s.integer).utf8)
    } else {
        a.append(contentsOf: s.bytes)
    }
}
