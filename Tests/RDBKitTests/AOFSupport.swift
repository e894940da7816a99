import Foundation
import RDBKit
import RDBSinks

/// Records AOF events as short strings (arguments printed with `\xHH` for non-printable bytes).
struct AOFRecorder: AOFVisitor {
    var events: [String] = []
    var commands: [[[UInt8]]] = []
    var annotations = 0
    var keys = 0

    static func show(_ b: UnsafeRawBufferPointer) -> String {
        var s = ""
        for c in b {
            if c > 0x20 && c < 0x7F && c != 0x5C { s.unicodeScalars.append(Unicode.Scalar(c)) } else {
                s += "\\x" + (c < 16 ? "0" : "") + String(c, radix: 16)
            }
        }
        return s
    }

    mutating func beginAOFFile(name: String, kind: AOFFileKind) throws {
        events.append("file \((name as NSString).lastPathComponent) \(kind)")
    }
    mutating func endAOFFile(name: String, kind: AOFFileKind) throws { events.append("end \((name as NSString).lastPathComponent)") }
    mutating func beginFile(_ h: RDBHeader) throws { events.append("rdb \(h.version)") }
    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        keys += 1
        events.append("key db=\(info.db) \(key.string)")
        return .decode
    }
    mutating func stringValue(_ value: RDBString) throws { events.append("value \(value.string)") }
    mutating func endFile(checksum: RDBChecksumStatus) throws { events.append("rdb-end") }
    mutating func command(_ c: AOFCommand) throws {
        if delay > 0 { usleep(delay) }
        commands.append(c.arrays)
        events.append("db=\(c.db) @\(c.offset)+\(c.byteCount)\(c.isInline ? " inline" : "") " + c.args.map { AOFRecorder.show($0.bytes) }.joined(separator: " "))
    }
    mutating func annotation(_ text: RDBString, offset: Int) throws {
        annotations += 1
        events.append("ann @\(offset) \(AOFRecorder.show(text.bytes))")
    }

    /// Whether it takes the second part of a file read on another thread (`AOFOptions.splitMinimumBytes`), and
    /// how many parts were made and merged.
    var takesParts = false
    var parts = 0
    var merges = 0
    /// The sizing hints given (`commandBytes`), kept out of `events`.
    var hints: [Range<Int>] = []
    mutating func commandBytes(from start: Int, to end: Int) { hints.append(start..<end) }
    /// Microseconds each command of a part takes (a slow reader on the other thread).
    var partDelay: UInt32 = 0
    var delay: UInt32 = 0

    mutating func makeSplitPart() -> AOFRecorder? {
        guard takesParts else { return nil }
        parts += 1
        var part = AOFRecorder()
        part.delay = partDelay
        return part
    }

    mutating func mergeSplitPart(_ part: consuming AOFRecorder, dbAtStart: Int) throws {
        merges += 1
        events += part.events.map { $0.hasPrefix("db=-1 ") ? "db=\(dbAtStart) " + $0.dropFirst(6) : $0 }
        commands += part.commands
        annotations += part.annotations
    }
}

/// RESP encoding of one command.
func resp(_ args: [String]) -> [UInt8] { respBytes(args.map { Array($0.utf8) }) }

func respBytes(_ args: [[UInt8]]) -> [UInt8] {
    var b = Array("*\(args.count)\r\n".utf8)
    for a in args {
        b += Array("$\(a.count)\r\n".utf8)
        b += a
        b += [13, 10]
    }
    return b
}

func respAll(_ commands: [[String]]) -> [UInt8] { commands.flatMap(resp) }

/// Decodes `bytes` from memory and from a stream cut in chunks of `chunk` bytes; both must agree.
func recordAOF(_ bytes: [UInt8], options: AOFOptions = .init(), chunk: Int? = nil) throws -> (AOFRecorder, AOFSummary) {
    var r = AOFRecorder()
    let s: AOFSummary
    if let chunk {
        let input = InputBuffer(stream: ChunkedArrayStream(bytes, chunk: chunk), chunkSize: 64, name: "-")
        s = try AOFReader.decode(input, into: &r, options: options)
    } else {
        s = try AOFReader.decode(bytes: bytes, into: &r, options: options)
    }
    return (r, s)
}

/// The error of a decode, or nil.
func aofError(_ bytes: [UInt8], options: AOFOptions = .init(), chunk: Int? = nil) -> RDBError? {
    do {
        _ = try recordAOF(bytes, options: options, chunk: chunk)
        return nil
    } catch let e as RDBError {
        return e
    } catch {
        return RDBError(.io, offset: -1, "unexpected error type \(error)")
    }
}

/// A temporary folder removed at the end of the test.
final class TempDir {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "aoftest-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String { try write(name, Array(text.utf8)) }
}
