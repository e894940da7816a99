import RDBKit
import RDBSinks
import RedisWire

/// The key being decoded, and the target of the importer's `OutputBuffer`: a key whose rendered output
/// passes `ImportOptions.keyChunkBytes` is handed over by the writer in chunks while it is decoded (the
/// writers' within-key flushes), and goes out as parts, one record per batch, so that the server works
/// while the decoder goes on and a huge key does not sit whole in memory. A key below the threshold
/// never gets here: `ImportVisitor.endKey` adds it as one record (`BatchBuilder.addKey`).
///
/// The first part carries what makes the key safe to rebuild: `DEL key` first in replace mode for keys
/// written as commands, the temporary name otherwise (RESTORE carries REPLACE), or for an unguarded key
/// (`ImportContext.unguarded`) nothing, and `DEL key` only when it is resent; the last part carries
/// `RENAMENX tmp key` and `DEL tmp` for a temporary key. A chunk may end inside a command (a big RESTORE
/// payload is written through in pieces): `counter` counts only the commands a part completes, so each
/// reply is matched to the part its command ends in.
final class KeyParts: OutputTarget {
    let builder: BatchBuilder
    let replace: Bool
    let temporaryPrefix: [UInt8]
    /// The current key's temporary-name prefix (`TemporaryName.prefix`).
    @exclusivity(unchecked) var prefix: [UInt8] = []

    // The current key (set by `ImportVisitor.beginKey`).
    @exclusivity(unchecked) var name: [UInt8] = []
    @exclusivity(unchecked) var db = 0
    @exclusivity(unchecked) var file = 0
    @exclusivity(unchecked) var offset = 0
    @exclusivity(unchecked) var kind = RDBKind.string
    @exclusivity(unchecked) var temporary = false
    /// Written without a guard (`ImportContext.unguarded`): `DEL key` only if the key is resent or aborted.
    @exclusivity(unchecked) var unguarded = false
    /// The key's database is the import's own (`ImportContext.unguarded` said so): nothing but this import
    /// can have written the key's name there.
    @exclusivity(unchecked) var owned = false
    /// The writer writes the key as one RESTORE (its `KeyPlan`).
    @exclusivity(unchecked) var restore = false
    /// The writer is rendering the key (chunks may come).
    @exclusivity(unchecked) var armed = false
    /// Part of the key has been handed over: the key ends with `finish` or `abort`.
    @exclusivity(unchecked) private(set) var started = false
    /// The open record is the key's first part.
    @exclusivity(unchecked) var first = true
    @exclusivity(unchecked) var counter = RESPCommandCounter()
    /// Keys sent in parts (for tests).
    @exclusivity(unchecked) private(set) var keysInParts = 0
    /// The input being decoded (nil: several, e.g. a multi-part AOF): the pages of a mapped file that a big
    /// value passed through was copied from are given back as its parts are made (`InputBuffer.releaseCopied`).
    @exclusivity(unchecked) var input: InputBuffer?

    init(builder: BatchBuilder, replace: Bool, temporaryPrefix: [UInt8]) {
        self.builder = builder
        self.replace = replace
        self.temporaryPrefix = temporaryPrefix
    }

    /// Whether the key's output starts with `DEL key`: in replace mode, for a key written as commands (a
    /// RESTORE carries REPLACE; SET overwrites), unless the key goes unguarded.
    func deletesFirst(restore: Bool) -> Bool {
        replace && !restore && kind != .string && !unguarded
    }

    /// Whether a resend of the key starts with `DEL key`: for a key written without its guard, and, without
    /// `replace`, for every key of a database the import owns. There the existence check (`SET ... NX`,
    /// `RESTORE` without `REPLACE`) can only find the key this import wrote itself on an attempt whose
    /// replies a lost connection took: the server applied (and logged) it, the resend would find it and
    /// report it as existing instead of imported. Not in replace mode: `SET` and `RESTORE ... REPLACE`
    /// overwrite.
    var deletesOnResend: Bool { unguarded || (owned && !replace) }

    /// A chunk of the armed key's output.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard armed else {
            throw RDBError(.io, offset: offset, "internal error: output outside a key reached the import connection")
        }
        if !started { start(restore: restore) }
        append(bytes)
    }

    func start(restore: Bool) {
        started = true
        first = true
        counter = RESPCommandCounter()
        keysInParts += 1
        builder.begin(db: db, file: file)
        if deletesFirst(restore: restore) {
            name.withUnsafeBytes { Commands.del(&builder.batch.buffer, $0) }
            builder.recordCommands += 1
        }
    }

    /// Appends to the open part; a full batch closes the part and goes to the pipeline. Batches are filled
    /// to `maxBytes` exactly (no buffer grows while the key's batches are kept), so a part may end inside a
    /// command.
    func append(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while true {
            let room = max(1, builder.maxBytes - builder.batch.buffer.readableBytes)
            let piece = UnsafeRawBufferPointer(rebasing: rest.prefix(room))
            builder.append(piece, commands: counter.feed(piece))
            input?.releaseCopied(piece)
            rest = UnsafeRawBufferPointer(rebasing: rest[piece.count...])
            if builder.batch.buffer.readableBytes >= builder.maxBytes || builder.batch.commands + builder.recordCommands >= builder.maxCommands {
                closePart()
            }
            if rest.isEmpty { return }
        }
    }

    /// Ends the open part as the first or a middle part, hands the batch over and opens the next part.
    func closePart() {
        name.withUnsafeBytes {
            builder.end(kind: .key, name: $0, file: file, offset: offset, temporary: first && temporary,
                        deleteOnResend: first && deletesOnResend, part: first ? .first : .middle)
        }
        builder.flush()
        first = false
        builder.begin(db: db, file: file)
    }

    /// The key's last bytes (what the writer had not handed over): closes the key's last part.
    func finish(_ rest: UnsafeRawBufferPointer) {
        append(rest)
        started = false
        var exists = -1
        if temporary {
            exists = builder.recordCommands
            name.withUnsafeBytes { key in
                Commands.renameNX(&builder.batch.buffer, key, tmpPrefix: prefix)
                Commands.del(&builder.batch.buffer, key, prefix: prefix)
            }
            builder.recordCommands += 2
        }
        name.withUnsafeBytes {
            builder.end(kind: .key, name: $0, file: file, offset: offset, existsReply: exists, temporary: first && temporary,
                        deleteOnResend: first && deletesOnResend, part: first ? .whole : .last)
        }
    }

    /// Decoding failed inside a key of which parts were handed over: ends the command left open, deletes
    /// what the parts wrote (`DEL key` in replace mode, `DEL tmp` for a temporary key; a RESTORE without
    /// REPLACE fails on its padded payload and leaves the target as it was) and reports the key as failed.
    /// Returns false when no part was handed over (nothing was sent).
    func abort(_ why: String) -> Bool {
        guard started else { return false }
        started = false
        armed = false
        builder.recordCommands += counter.complete(&builder.batch.buffer)
        name.withUnsafeBytes { key in
            if replace || unguarded {
                Commands.del(&builder.batch.buffer, key)
                builder.recordCommands += 1
            } else if temporary {
                Commands.del(&builder.batch.buffer, key, prefix: prefix)
                builder.recordCommands += 1
            }
            builder.end(kind: .abortedKey, name: key, file: file, offset: offset, temporary: first && temporary,
                        deleteOnResend: first && deletesOnResend, part: first ? .whole : .last)
        }
        builder.stats[file].keysFailed += 1
        let undo = replace || unguarded ? "deleted it (DEL key)" : temporary ? "deleted its temporary copy" : "left the target as it was (the RESTORE was cut and fails)"
        builder.problems.add(
            .error, file: file, db: db, key: name,
            message: "\(decodingFailed) after part of it was sent: \(why); the import \(undo)",
            offset: offset)
        return true
    }

    /// Decoding failed inside the armed key and the import stops: what went out of it is undone (`abort`), and
    /// the key is reported failed either way (one of which nothing was sent was read, and written nowhere).
    func fail(_ why: String) {
        defer { armed = false }
        guard !abort(why), armed else { return }
        builder.stats[file].keysFailed += 1
        builder.problems.add(.error, file: file, db: db, key: name, message: "\(decodingFailed) before any of it was sent: \(why)", offset: offset)
    }

    /// How a key's problem starts when its decoding failed.
    var decodingFailed: String {
        "decoding failed in the middle of the key (\(builder.problems.fileName(file)), record at byte offset \(offset))"
    }
}

/// Temporary key names: the import's prefix (`rdbcat:tmp:<random>:`) then the key. On a cluster the name
/// starts with the key's hash tag (`{tag}` or `{key}`), so that it is in the key's slot and `RENAMENX`
/// does not span slots; a key hashed whole that holds a `}` gets no tag (its `RENAMENX` is refused with
/// `CROSSSLOT` and the key reported).
enum TemporaryName {
    static func prefix(_ base: [UInt8], key: UnsafeRawBufferPointer, tagged: Bool) -> [UInt8] {
        guard tagged, let tag = HashSlot.tag(sameSlotAs: key) else { return base }
        return tag + base
    }
}
