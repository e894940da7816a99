import RDBKit
import RDBSinks
#if canImport(Glibc)
import Glibc
#endif

/// The in-process modes, run one per child process (`rdbbench --child MODE FILE`) so that each has its
/// own peak RSS.
enum ChildMode: String, CaseIterable {
    /// RDBReader / AOFReader into a counting sink, the file memory-mapped.
    case decode
    /// The same from standard input (the streaming window instead of the map).
    case decodeStdin = "decode-stdin"
    /// JSONLWriter to /dev/null.
    case jsonl
    /// RESPWriter to /dev/null.
    case resp
    /// RestoreWriter to /dev/null.
    case restore

    /// Modes this build can run on this input.
    static func available(isAOF: Bool, isDirectory: Bool) -> [ChildMode] {
        var modes: [ChildMode] = [.decode]
        if !isDirectory { modes.append(.decodeStdin) }
        modes.append(.jsonl)
        if !isAOF || RESPWriter.self is any AOFVisitor.Type { modes.append(.resp) }
        if restoreWriterAvailable && !isAOF { modes.append(.restore) }
        return modes
    }
}

/// What a child reports on its standard output, one line: `RESULT key=value ...`.
struct ChildResult {
    var keys = 0
    var elements = 0
    var commands = 0
    var outputBytes = 0
    var seconds = 0.0

    var line: String {
        "RESULT keys=\(keys) elements=\(elements) commands=\(commands) out=\(outputBytes) seconds=\(seconds)"
    }

    init() {}

    init?(line: String) {
        guard let l = line.split(separator: "\n").first(where: { $0.hasPrefix("RESULT ") }) else { return nil }
        for pair in l.split(separator: " ").dropFirst() {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            switch kv[0] {
            case "keys": keys = Int(kv[1]) ?? 0
            case "elements": elements = Int(kv[1]) ?? 0
            case "commands": commands = Int(kv[1]) ?? 0
            case "out": outputBytes = Int(kv[1]) ?? 0
            case "seconds": seconds = Double(kv[1]) ?? 0
            default: break
            }
        }
    }
}

/// Whether a path is read as an AOF: a folder, a manifest or a `.aof` file (an `.aof` may start with an
/// RDB preamble, which only the AOF reader follows past).
func looksLikeAOF(_ path: String) -> Bool {
    isDirectory(path) || path.hasSuffix(".aof") || path.hasSuffix(".manifest")
}

enum Child {
    static func run(mode: String, path: String) -> Int32 {
        guard let m = ChildMode(rawValue: mode) else {
            writeStderr("rdbbench: unknown mode \(mode); expected \(ChildMode.allCases.map(\.rawValue).joined(separator: ", "))\n")
            return 64
        }
        do {
            let r = try run(m, path: path)
            print(r.line)
            return 0
        } catch {
            writeStderr("rdbbench --child \(mode) \(path): \(error)\n")
            return 1
        }
    }

    static func run(_ mode: ChildMode, path: String) throws -> ChildResult {
        let isAOF = looksLikeAOF(path)
        let source = mode == .decodeStdin ? "-" : path
        if mode == .decodeStdin {
            // Standard input is the file itself (the parent redirects it), read through the stream window.
            guard !isDirectory(path) else { throw SpawnError(description: "decode-stdin needs a single file") }
        }
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(devNull) }
        let out = OutputBuffer(target: FileDescriptorTarget(fd: devNull), flushThreshold: 1 << 20)
        var result = ChildResult()
        let t0 = monotonicNow()
        switch mode {
        case .decode, .decodeStdin:
            var sink = CountingSink()
            try decode(source, isAOF: isAOF, into: &sink)
            result.keys = sink.keys
            result.elements = sink.elements
            result.commands = sink.commands
        case .jsonl:
            var sink = Counted(JSONLWriter(out: out))
            try decode(source, isAOF: isAOF, into: &sink)
            result.keys = sink.keys
            result.commands = sink.commands
        case .resp:
            var sink = Counted(RESPWriter(out: out))
            try decode(source, isAOF: isAOF, into: &sink)
            result.keys = sink.keys
            result.commands = sink.commands
        case .restore:
            try runRestore(source, isAOF: isAOF, out: out, result: &result)
        }
        try out.flush()
        result.seconds = monotonicNow() - t0
        result.outputBytes = out.totalBytes
        return result
    }

    /// RDB inputs go through `RDBReader` (generic, specialised here); AOF inputs through `AOFReader` when
    /// the sink is an `AOFVisitor`.
    static func decode<V: RDBVisitor>(_ path: String, isAOF: Bool, into sink: inout V) throws {
        if isAOF {
            guard var aof = sink as? any AOFVisitor else {
                throw SpawnError(description: "\(V.self) does not read AOF input")
            }
            try decodeAOF(path, &aof)
            sink = aof as! V
        } else {
            let input = try InputBuffer.open(path: path)
            _ = try RDBReader.decode(input, into: &sink)
        }
    }

    static func decodeAOF<A: AOFVisitor>(_ path: String, _ sink: inout A) throws {
        _ = try AOFReader.decode(path: path, into: &sink)
    }
}

/// Wraps a writer to count keys and AOF commands; every other event goes to the writer unchanged.
struct Counted<Inner: RDBVisitor>: RDBForwardingVisitor {
    var inner: Inner
    var keys = 0
    var commands = 0
    init(_ inner: Inner) { self.inner = inner }

    @inline(__always)
    mutating func beginKey(_ key: RDBString, _ info: RDBKeyInfo) throws -> RDBKeyAction {
        keys &+= 1
        return try inner.beginKey(key, info)
    }
}

extension Counted: AOFVisitor where Inner: AOFVisitor {
    mutating func beginAOFFile(name: String, kind: AOFFileKind) throws { try inner.beginAOFFile(name: name, kind: kind) }
    mutating func command(_ command: AOFCommand) throws {
        commands &+= 1
        try inner.command(command)
    }
    mutating func annotation(_ text: RDBString, offset: Int) throws { try inner.annotation(text, offset: offset) }
    mutating func endAOFFile(name: String, kind: AOFFileKind) throws { try inner.endAOFFile(name: name, kind: kind) }
}

func writeStderr(_ s: String) {
    var s = s
    s.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Writes a line to standard output at once (no stdio buffering: progress shows up in a log as it happens).
func say(_ s: String) {
    var line = s + "\n"
    line.withUTF8 { buf in
        var off = 0
        while off < buf.count {
            let n = write(1, buf.baseAddress! + off, buf.count - off)
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
            off += n
        }
    }
}
