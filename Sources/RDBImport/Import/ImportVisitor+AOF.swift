import RDBKit
import RDBSinks
import RedisWire

/// The AOF side of the import: commands pass through (their `SELECT`s become the importer's own, mapped);
/// a `MULTI` … `EXEC` block is one record, sent whole or not at all.
extension ImportVisitor {
    mutating func command(_ command: AOFCommand) throws {
        if ctx.stopRequest.isSet { throw ImportStopped(offset: command.offset) }
        if let hooks = ctx.options.stream {
            // A replication stream: the master's keepalives and acknowledgement requests stay here, and
            // relative expiries become absolute from the moment they arrived.
            if command.nameEquals("SELECT") {
                hooks.onSelect?(command.offset + command.byteCount, command.db)
                return
            }
            if command.nameEquals("PING") { return }
            if command.nameEquals("REPLCONF") {
                if command.argumentCount >= 2, AOFArguments.equalsIgnoringCase(command.args.bytes(1), "GETACK") { hooks.onGetAck?() }
                return
            }
            let now = hooks.arrivalMillis?(command.offset) ?? unixMilliseconds()
            let rewriter = ctx.relativeExpiry
            if try rewriter.rewrite(command, now: now, { try self.apply($0) }) { return }
        }
        try apply(command)
    }

    /// Applies one command of the input (a file's, or the replication stream's after `command` looked at it).
    mutating func apply(_ command: AOFCommand) throws {
        if command.nameEquals("SELECT") { return }  // databases come with each command (mapped)
        ctx.stats.aofCommands += 1
        ctx.commandsSent = true
        ctx.position = command.offset
        guard !ctx.listing, let db = ctx.targetDatabase(command.db) else {
            if inBlock {
                ctx.builder.abandon()
                inBlock = false
            }
            let n = Self.describe(command)
            n.withUnsafeBytes { ctx.notSent($0, db: ctx.options.targetDatabase(command.db), offset: command.offset, isKey: false) }
            return
        }
        if ctx.cluster != nil {
            switch clusterRoute(command, db: db) {
            case .send: break
            case .dropped: return
            case .everyMaster:
                let b = ctx.builder
                let current = b.lane
                for lane in b.lanes.indices {
                    b.use(lane: lane)
                    b.begin(db: db, file: ctx.file)
                    Self.encodeRecord(command, into: b, file: ctx.file)
                }
                b.use(lane: current)
                return
            }
        }
        let b = ctx.builder
        if command.nameEquals("MULTI") && !inBlock {
            inBlock = true
            blockDB = db
            blockOffset = command.offset
            blockFirstKey = nil
            blockCommands = 0
            b.begin(db: db, file: ctx.file)
        } else if inBlock && b.streamDB != db {
            b.appendSelect(db)
        } else if !inBlock {
            b.begin(db: db, file: ctx.file)
        }
        if inBlock && blockFirstKey == nil && !command.nameEquals("MULTI") {
            _ = command.forEachKey { k in if blockFirstKey == nil { blockFirstKey = k.array } }
        }
        if inBlock {
            Self.encode(command, into: b)
            blockCommands += 1
            if command.nameEquals("EXEC") {
                inBlock = false
                var name = Array("MULTI block of \(blockCommands - 2) commands".utf8)
                if let k = blockFirstKey { name += Array(", first key ".utf8) + k }
                let end = command.offset + command.byteCount
                name.withUnsafeBytes { b.end(kind: .aofBlock, name: $0, file: ctx.file, offset: blockOffset, inputEnd: end) }
            }
            return
        }
        Self.encodeRecord(command, into: b, file: ctx.file)
    }

    /// A command outside a MULTI block as its own record (the record begun). One that can block (`mayBlock`)
    /// goes inside MULTI: servers log what a blocking command did (BLPOP as the LPOP that served it), so only a
    /// hand-made log holds one, and sent as it is it would hold the connection until its timeout (0: for ever);
    /// inside MULTI a server runs it without blocking, as it ran when it was logged.
    static func encodeRecord(_ command: AOFCommand, into b: BatchBuilder, file: Int) {
        guard mayBlock(command) else {
            encode(command, into: b)
            endCommand(command, b, file: file)
            return
        }
        Commands.encode(&b.batch.buffer) { $0.command("MULTI") }
        encode(command, into: b)
        Commands.encode(&b.batch.buffer) { $0.command("EXEC") }
        b.recordCommands += 2
        let end = command.offset + command.byteCount
        describe(command).withUnsafeBytes { b.end(kind: .aofBlock, name: $0, file: file, offset: command.offset, inputEnd: end) }
    }

    enum ClusterRoute { case send, everyMaster, dropped }

    /// Cluster targets: routes a command by the slot of its keys (the builder's lane is then that master).
    /// A command without keys goes to every master; one whose keys span slots, or whose keys are unknown,
    /// is reported and not sent. A `MULTI` block goes where its first key does (its record is moved there
    /// once that key is known); a block whose keys span slots is dropped whole, reported, with the rest of
    /// its commands.
    mutating func clusterRoute(_ command: AOFCommand, db: Int) -> ClusterRoute {
        if blockRefused {
            if command.nameEquals("EXEC") || command.nameEquals("DISCARD") { blockRefused = false }
            return .dropped
        }
        if command.nameEquals("MULTI") {
            blockSlot = -1
            return .send
        }
        var slot = -1
        var cross = false
        let known = command.forEachKey { k in
            let s = k.withBytes { HashSlot.of($0) }
            if slot < 0 { slot = s } else if s != slot { cross = true }
        }
        if inBlock {
            if slot >= 0 && !cross {
                if blockSlot < 0 {
                    blockSlot = slot
                    guard let lane = ctx.lane(slot: slot) else { return refuseBlock(command, "not sent: \(ctx.failure ?? "no route")") }
                    ctx.builder.moveOpenRecord(to: lane, file: ctx.file)
                } else if slot != blockSlot {
                    cross = true
                }
            }
            if cross || (!known && !command.nameEquals("EXEC") && !command.nameEquals("DISCARD")) {
                return refuseBlock(command, cross
                    ? "not sent: a MULTI block whose keys are in different cluster slots cannot be applied as one unit on a cluster"
                    : "not sent: a MULTI block with a command whose keys are unknown (\(command.upperName)) cannot be routed on a cluster")
            }
            return .send
        }
        if !known || cross {
            let why = cross
                ? "not sent: its keys are in different cluster slots (a cluster refuses it with CROSSSLOT)"
                : "not sent: its keys are unknown (\(command.upperName)), so it cannot be routed to a cluster node"
            Self.describe(command).withUnsafeBytes {
                ctx.problems.add(.error, file: ctx.file, db: db, key: Array($0), message: why, offset: command.offset)
            }
            return .dropped
        }
        if slot < 0 { return .everyMaster }
        return ctx.route(slot: slot) ? .send : .dropped
    }

    /// Drops the open MULTI block (and the rest of it, up to its EXEC) with a report.
    mutating func refuseBlock(_ command: AOFCommand, _ why: String) -> ClusterRoute {
        ctx.builder.abandon()
        inBlock = false
        blockRefused = !command.nameEquals("EXEC") && !command.nameEquals("DISCARD")
        let name = blockFirstKey ?? Self.describe(command)
        ctx.problems.add(.error, file: ctx.file, db: blockDB, key: name, message: why, offset: blockOffset)
        return .dropped
    }

    /// Closes an AOF command's record, named by its first key (or its name), without copying the key.
    static func endCommand(_ command: AOFCommand, _ b: BatchBuilder, file: Int) {
        var done = false
        let end = command.offset + command.byteCount
        _ = command.forEachKey { k in
            if !done {
                done = true
                k.withBytes { b.end(kind: .aofCommand, name: $0, file: file, offset: command.offset, inputEnd: end) }
            }
        }
        if !done {
            let name = command.args.bytes(0)
            b.end(kind: .aofCommand, name: name, file: file, offset: command.offset, inputEnd: end)
        }
    }

    /// What a problem report names for an AOF command: its first key, or its name.
    static func describe(_ command: AOFCommand) -> [UInt8] {
        var key: [UInt8]?
        _ = command.forEachKey { k in if key == nil { key = k.array } }
        return key ?? Array(command.upperName.utf8)
    }

    /// Whether a command can block its connection (lists', sorted sets' and streams' blocking reads, `WAIT`):
    /// told by its first letter before its name is compared.
    static func mayBlock(_ command: AOFCommand) -> Bool {
        let name = command.args.bytes(0)
        guard name.count >= 4, let first = name.first else { return false }
        switch first | 0x20 {
        case UInt8(ascii: "b"):
            return command.nameEquals("BLPOP") || command.nameEquals("BRPOP") || command.nameEquals("BRPOPLPUSH")
                || command.nameEquals("BLMOVE") || command.nameEquals("BLMPOP") || command.nameEquals("BZPOPMIN")
                || command.nameEquals("BZPOPMAX") || command.nameEquals("BZMPOP")
        case UInt8(ascii: "x"): return command.nameEquals("XREAD") || command.nameEquals("XREADGROUP")
        case UInt8(ascii: "w"): return command.nameEquals("WAIT") || command.nameEquals("WAITAOF")
        default: return false
        }
    }

    static func encode(_ command: AOFCommand, into b: BatchBuilder) {
        Commands.command(&b.batch.buffer, command.args)
        b.recordCommands += 1
    }

    mutating func endAOFFile(name: String, kind: AOFFileKind) throws {
        // A MULTI block cut off by the end of a file is never delivered (the reader drops it), so none is
        // open here; close one defensively if it is.
        if inBlock {
            inBlock = false
            ctx.builder.abandon()
        }
    }
}
