import NIOCore
import RDBKit
import RedisWire

/// What a record of the command stream is.
enum RecordKind: UInt8 {
    /// All commands of one key (written whole or not at all).
    case key
    /// `SELECT db` between keys.
    case select
    /// `FUNCTION LOAD REPLACE` of a library.
    case function
    /// One AOF command, passed through.
    case aofCommand
    /// A `MULTI` … `EXEC` block of an AOF, passed through as one unit.
    case aofBlock
    /// The end of a key sent in parts whose decoding failed: completes the command left open and deletes
    /// what the parts wrote. Its replies are not counted (the decoder reported the key).
    case abortedKey
    /// `WAIT 1 <ms>` on a cluster master with replicas: once a replica confirms it, the records before it
    /// are delivered for good (see `ReplyMatcher`'s confirmed segments).
    case wait
    /// Several plain strings as one `MSET` (`BatchBuilder.addString`): each key is reported, and its reply
    /// (`+OK`, or an error) stands for every one of them. Resent whole, like a key: `MSET` overwrites.
    case strings
}

/// Which part of a key a record is: keys larger than `ImportOptions.keyChunkBytes` are sent in parts, one
/// record per batch, while they are decoded.
///
/// Acknowledging a part does not make it final: until the key's last part is acknowledged, the pipeline
/// keeps every batch from the key's first part on, and after a reconnect it resends the key from its first
/// part (with that part's `DEL tmp` / `DEL key` / `REPLACE`), since a list push sent twice is not a no-op.
enum KeyPart: UInt8 {
    /// A whole record (every record that is not a part).
    case whole
    /// The key's first part: starts the key (`DEL key` in replace mode, a temporary name otherwise).
    case first
    case middle
    /// The key's last part: its replies decide how the key is reported.
    case last

    /// More parts of the key follow.
    var continues: Bool { self == .first || self == .middle }
}

/// One unit of the command stream: it is acknowledged when every one of its replies has arrived, and
/// resent whole after a reconnect if it was not.
struct Record {
    /// Where its bytes are in the batch buffer.
    var start: Int
    var length: Int
    /// Replies it expects on its first attempt (one per command).
    var commands: Int
    /// Index of the reply whose `:0` means "the key already exists" (RENAMENX), or -1.
    var existsReply: Int = -1
    /// Where the key name (or a description) is in the batch's `names`; for `.strings`, the names and
    /// offsets of its keys (`Batch.reportedKeys(of:)`).
    var nameStart: Int = 0
    var nameLength: Int = 0
    /// The keys it stands for in the report (more than one for `.strings`).
    var keys: Int32 = 1
    /// What it takes of the in-flight window's commands: a `MSET` of a run of strings counts each key, as the
    /// `SET`s it replaces did, so that runs do not let 128 times more keys (and bytes) into flight.
    var windowCommands: Int { kind == .strings ? Int(keys) : commands }
    /// The database the record runs in (for `select`: the one it selects).
    var db: Int
    /// Index of the input file (see `ProblemLog.fileNames`).
    var file: Int
    /// Offset of the key or command in its input file.
    var offset: Int = 0
    var kind: RecordKind
    /// Written under a temporary name and renamed by its last commands: a resend first deletes the
    /// temporary key (whatever a lost connection left of it).
    var temporary = false
    /// Written without its `DEL key` guard (into a database that was empty: `ImportContext.unguarded`), or
    /// with an existence check that, in such a database, could only find this import's own earlier attempt
    /// (`KeyParts.deletesOnResend`): a resend first deletes whatever a lost connection left of it.
    var deleteOnResend = false
    /// This attempt starts with `DEL temporary-name` or `DEL key` (one more reply).
    var resendPrefix = false
    /// It has been resent after a reconnect at least once.
    var resent = false
    /// Which part of its key it is (`.whole` unless the key was sent in parts).
    var part = KeyPart.whole
    /// Cluster redirects (`MOVED`/`ASK`) followed so far to get here.
    var hops: UInt8 = 0
    /// Cluster targets: when the first `TRYAGAIN` for it came (monotonic seconds; 0: none yet).
    var tryAgainSince = 0.0
    /// Counted in the report already (acknowledged once, then resent from an unconfirmed segment).
    var counted = false
    /// An AOF command acknowledged before a failover: not resent (it is not idempotent), reported.
    var skipOnResend = false
    /// Where the AOF command (or MULTI block) ends in its input (0: not an AOF record); a replication
    /// stream maps it to the source's offset once the record is acknowledged.
    var inputEnd = 0

    var repliesThisAttempt: Int { skipOnResend ? 0 : commands + (resendPrefix ? 1 : 0) }

    /// Whether the record stands for a key, AOF command or function in the report (parts other than the
    /// last and aborted keys do not: their key is reported once).
    var isReported: Bool {
        switch kind {
        case .select, .abortedKey, .wait: false
        case .key: !part.continues
        case .function, .aofCommand, .aofBlock, .strings: true
        }
    }
}

/// Counts the commands a stream of RESP arrays completes, fed in pieces cut anywhere (the parts of a
/// key: a big RESTORE payload is cut in the middle of its command).
struct RESPCommandCounter {
    enum Phase: UInt8 {
        /// Between commands.
        case start
        /// In the `*n` or `$n` line.
        case arrayLength, bulkLength
        /// Before an argument's `$`.
        case bulkStart
        /// In an argument's bytes (`remaining` with the CRLF).
        case body
    }

    private(set) var phase = Phase.start
    var number = 0
    var digits = 0
    var sawCR = false
    var arguments = 0
    var remaining = 0

    /// Whether everything fed so far ends with a complete command.
    var atBoundary: Bool { phase == .start }

    /// Feeds the next bytes; returns the commands they complete.
    mutating func feed(_ b: UnsafeRawBufferPointer) -> Int {
        var i = 0
        var n = 0
        let c = b.count
        while i < c {
            switch phase {
            case .start, .bulkStart:
                phase = phase == .start ? .arrayLength : .bulkLength
                number = 0
                digits = 0
                sawCR = false
                i += 1
            case .arrayLength, .bulkLength:
                let x = b[i]
                i += 1
                if x == 0x0D {
                    sawCR = true
                } else if x == 0x0A {
                    if phase == .arrayLength {
                        arguments = number
                        phase = number > 0 ? .bulkStart : .start  // `*0`: no command, no reply
                    } else {
                        remaining = number + 2
                        phase = .body
                    }
                } else {
                    number = number &* 10 &+ Int(x &- 0x30)
                    digits += 1
                }
            case .body:
                let k = min(remaining, c - i)
                i += k
                remaining -= k
                if remaining == 0 {
                    arguments -= 1
                    if arguments == 0 {
                        n += 1
                        phase = .start
                    } else {
                        phase = .bulkStart
                    }
                }
            }
        }
        return n
    }

    /// Appends the bytes that end the open command with one reply and without effect beyond the bytes already
    /// sent: zero bytes for the rest of the argument (a RESTORE payload then fails its checksum), empty strings
    /// (written by `RESPEncoder`) for the missing arguments. Returns the commands completed (0 at a boundary).
    mutating func complete(_ b: inout ByteBuffer) -> Int {
        var completed = 0
        while phase != .start {
            let from = b.readableBytes
            switch phase {
            case .start: break
            case .arrayLength, .bulkLength:
                if digits == 0 && !sawCR { b.writeInteger(phase == .arrayLength ? UInt8(ascii: "1") : UInt8(ascii: "0")) }
                if !sawCR { b.writeInteger(UInt8(0x0D)) }
                b.writeInteger(UInt8(0x0A))
            case .bulkStart:
                Commands.encode(&b) { $0.argument(UnsafeRawBufferPointer(start: nil, count: 0)) }
            case .body:
                b.writeRepeatingByte(0, count: max(0, remaining - 2))
                if remaining >= 2 { b.writeInteger(UInt8(0x0D)) }
                b.writeInteger(UInt8(0x0A))
            }
            completed += b.withUnsafeReadableBytes { feed(UnsafeRawBufferPointer(rebasing: $0[from...])) }
        }
        return completed
    }

    /// The bytes `complete(_:)` appends (for tests).
    func completion() -> [UInt8] {
        var copy = self
        var b = ByteBuffer()
        _ = copy.complete(&b)
        return Array(b.readableBytesView)
    }
}

/// Records sent together: one buffer written with one system call, kept until every record in it is
/// acknowledged (so it can be resent after a reconnect).
final class Batch: @unchecked Sendable {
    var buffer: ByteBuffer
    var names: ByteBuffer
    @exclusivity(unchecked) var records: [Record] = []
    /// First record not yet acknowledged (event loop only).
    @exclusivity(unchecked) var next = 0
    /// Written on some connection (event loop only).
    @exclusivity(unchecked) var written = false
    /// Replies expected on the first attempt, and bytes, for the window accounting.
    var commands = 0
    /// Keys in it (for progress).
    var keys = 0
    /// The database the stream is in after this batch.
    var endDB: Int?

    init(allocator: ByteBufferAllocator, capacity: Int) {
        buffer = allocator.buffer(capacity: capacity)
        names = allocator.buffer(capacity: 1024)
    }

    var bytes: Int { buffer.readableBytes }
    var isEmpty: Bool { records.isEmpty }

    func name(of r: Record) -> [UInt8] {
        names.getBytes(at: names.readerIndex + r.nameStart, length: r.nameLength) ?? []
    }

    /// The keys a record stands for in the report, with their offsets in the input: its own name, or for
    /// `.strings` each of its keys (stored as length, offset, name).
    func reportedKeys(of r: Record) -> [(name: [UInt8], offset: Int)] {
        guard r.kind == .strings else { return [(name(of: r), r.offset)] }
        var out: [(name: [UInt8], offset: Int)] = []
        out.reserveCapacity(Int(r.keys))
        var at = names.readerIndex + r.nameStart
        let end = at + r.nameLength
        while at < end, let n = names.getInteger(at: at, as: UInt32.self), let o = names.getInteger(at: at + 4, as: Int64.self) {
            out.append((names.getBytes(at: at + 12, length: Int(n)) ?? [], Int(o)))
            at += 12 + Int(n)
        }
        return out
    }
}

/// The few commands the importer writes itself, through `RESPEncoder`.
enum Commands {
    /// Runs `body` with an encoder that writes into `b` (which it holds meanwhile, uniquely).
    @inline(__always)
    static func encode(_ b: inout ByteBuffer, _ body: (inout RESPEncoder<ByteBuffer>) -> Void) {
        var e = RESPEncoder(out: consume b)
        body(&e)
        b = e.out
    }

    static func select(_ b: inout ByteBuffer, _ db: Int) {
        encode(&b) { $0.select(db) }
    }

    /// `DEL key`.
    static func del(_ b: inout ByteBuffer, _ key: UnsafeRawBufferPointer, prefix: [UInt8] = []) {
        encode(&b) { e in
            e.begin(maxArguments: 2)
            e.argument("DEL")
            prefix.withUnsafeBytes { e.argument(prefix: $0, key) }
            e.end()
        }
    }

    /// `RENAMENX tmp key`.
    static func renameNX(_ b: inout ByteBuffer, _ key: UnsafeRawBufferPointer, tmpPrefix: [UInt8]) {
        encode(&b) { e in
            e.begin(maxArguments: 3)
            e.argument("RENAMENX")
            tmpPrefix.withUnsafeBytes { e.argument(prefix: $0, key) }
            e.argument(key)
            e.end()
        }
    }

    /// `WAIT replicas timeout`.
    static func wait(_ b: inout ByteBuffer, replicas: Int, timeoutMs: Int) {
        encode(&b) { e in
            e.begin(maxArguments: 3)
            e.argument("WAIT")
            e.argument(replicas)
            e.argument(timeoutMs)
            e.end()
        }
    }

    /// `ASKING`: the next command may run on a node that is importing its slot.
    static func asking(_ b: inout ByteBuffer) {
        encode(&b) { $0.command("ASKING") }
    }

    /// The commands in `commands` (whole RESP commands), each after an `ASKING`; returns how many there
    /// were (the replies double).
    static func interleaveAsking(_ commands: ByteBuffer, into b: inout ByteBuffer) -> Int {
        let tokenizer = RESPTokenizer()
        var n = 0
        commands.withUnsafeReadableBytes { w in
            var pos = 0
            while pos < w.count {
                guard case .complete(let end)? = try? tokenizer.valueEnd(w, at: pos) else {
                    b.writeBytes(UnsafeRawBufferPointer(rebasing: w[pos...]))  // cannot happen: our own bytes
                    return
                }
                asking(&b)
                b.writeBytes(UnsafeRawBufferPointer(rebasing: w[pos..<end]))
                n += 1
                pos = end
            }
        }
        return n
    }

    /// A command read from an AOF, as it is.
    static func command(_ b: inout ByteBuffer, _ args: AOFArguments) {
        encode(&b) { $0.command(args) }
    }
}
