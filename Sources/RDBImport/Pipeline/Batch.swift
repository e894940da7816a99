import NIOCore

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
    /// Where the key name (or a description) is in the batch's `names`.
    var nameStart: Int = 0
    var nameLength: Int = 0
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
    /// This attempt starts with `DEL temporary-name` (one more reply).
    var resendPrefix = false
    /// It has been resent after a reconnect at least once.
    var resent = false

    var repliesThisAttempt: Int { commands + (resendPrefix ? 1 : 0) }
}

/// Records sent together: one buffer written with one system call, kept until every record in it is
/// acknowledged (so it can be resent after a reconnect).
final class Batch: @unchecked Sendable {
    var buffer: ByteBuffer
    var names: ByteBuffer
    var records: [Record] = []
    /// First record not yet acknowledged (event loop only).
    var next = 0
    /// Written on some connection (event loop only).
    var written = false
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
}

/// RESP encoding of the few commands the importer writes itself.
enum Commands {
    static func bulk(_ b: inout ByteBuffer, _ s: StaticString) {
        b.writeString("$\(s.utf8CodeUnitCount)\r\n")
        b.writeStaticString(s)
        b.writeStaticString("\r\n")
    }

    static func bulk(_ b: inout ByteBuffer, _ v: UnsafeRawBufferPointer) {
        b.writeString("$\(v.count)\r\n")
        b.writeBytes(v)
        b.writeStaticString("\r\n")
    }

    static func bulk(_ b: inout ByteBuffer, prefix: [UInt8], _ v: UnsafeRawBufferPointer) {
        b.writeString("$\(prefix.count + v.count)\r\n")
        b.writeBytes(prefix)
        b.writeBytes(v)
        b.writeStaticString("\r\n")
    }

    static func select(_ b: inout ByteBuffer, _ db: Int) {
        let s = String(db)
        b.writeString("*2\r\n$6\r\nSELECT\r\n$\(s.utf8.count)\r\n\(s)\r\n")
    }

    /// `DEL key`.
    static func del(_ b: inout ByteBuffer, _ key: UnsafeRawBufferPointer, prefix: [UInt8] = []) {
        b.writeStaticString("*2\r\n")
        bulk(&b, "DEL")
        bulk(&b, prefix: prefix, key)
    }

    /// `RENAMENX tmp key`.
    static func renameNX(_ b: inout ByteBuffer, _ key: UnsafeRawBufferPointer, tmpPrefix: [UInt8]) {
        b.writeStaticString("*3\r\n")
        bulk(&b, "RENAMENX")
        bulk(&b, prefix: tmpPrefix, key)
        bulk(&b, key)
    }

    /// Counts the RESP arrays in `bytes` (well-formed output of our writers) and tells whether the first
    /// one is a `RESTORE`.
    static func scan(_ bytes: UnsafeRawBufferPointer) -> (commands: Int, firstIsRestore: Bool) {
        var i = 0
        var n = 0
        var restore = false
        let c = bytes.count
        @inline(__always) func number(_ i: inout Int) -> Int {
            var v = 0
            while i < c, bytes[i] != 0x0D {
                v = v * 10 + Int(bytes[i] &- 0x30)
                i += 1
            }
            i += 2
            return v
        }
        while i < c, bytes[i] == UInt8(ascii: "*") {
            i += 1
            let args = number(&i)
            for a in 0..<args {
                guard i < c, bytes[i] == UInt8(ascii: "$") else { return (n + 1, restore) }
                i += 1
                let len = number(&i)
                if n == 0 && a == 0 && len == 7 && i + 7 <= c {
                    var upper = [UInt8](repeating: 0, count: 7)
                    for k in 0..<7 { upper[k] = bytes[i + k] & 0xDF }
                    restore = upper == Array("RESTORE".utf8)
                }
                i += len + 2
            }
            n += 1
        }
        return (n, restore)
    }
}
