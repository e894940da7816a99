#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A multi-part AOF manifest (Redis ≥ 7.0, Valkey): which BASE and INCR files make up the data set.
///
/// Parsed like the server's loader does: one file per line as space-separated key/value pairs
/// (`file <name> seq <n> type <b|h|i>`, keys in any case and order, values quoted like redis-cli
/// arguments), `#` lines are comments, unknown keys are ignored, a line is at most 1024 bytes. On top
/// of what the server checks, a BASE must be the first file line and no file may be listed twice.
/// HISTORY files (`type h`) are kept in `history` but never loaded.
public struct AOFManifest: Sendable, Hashable {
    public enum FileType: String, Sendable, Hashable {
        case base = "b"
        case history = "h"
        case incr = "i"
    }

    public struct Entry: Sendable, Hashable {
        /// The file name (a bare name in the manifest's folder).
        public var name: String
        public var seq: Int64
        public var type: FileType
        /// 1-based line number in the manifest.
        public var line: Int
    }

    /// Every file line, in manifest order.
    public var entries: [Entry] = []
    public var base: Entry?
    public var incrs: [Entry] = []
    public var history: [Entry] = []

    /// The files to load, in order: the BASE (if any), then the INCR files as listed.
    public var loadOrder: [Entry] { (base.map { [$0] } ?? []) + incrs }

    /// Longest manifest line, line ending included.
    public static let maxLineBytes = 1024

    public init() {}

    /// Parses a manifest's text. `name` is used in errors.
    public static func parse(_ text: UnsafeRawBufferPointer, name: String = "manifest", options: AOFOptions = .init()) throws -> AOFManifest {
        var m = AOFManifest()
        var splitter = AOFLineSplitter()
        var seen = Set<String>()
        var maxIncrSeq: Int64 = 0
        var pos = 0
        var lineNo = 0
        let n = text.count
        func fail(_ at: Int, _ message: String) -> RDBError {
            RDBError(.aofFormat, offset: at, "manifest line \(lineNo): \(message)", file: name)
        }
        while pos < n {
            lineNo += 1
            let lineStart = pos
            var end = pos
            while end < n && text[end] != 0x0A { end += 1 }
            // The ending is optional on the last line only (the server always writes it).
            let lineBytes = end - lineStart + (end < n ? 1 : 0)
            if lineBytes > maxLineBytes {
                throw fail(lineStart, "longer than \(maxLineBytes) bytes")
            }
            pos = end < n ? end + 1 : end
            if text[lineStart] == 0x23 { continue }  // '#': comment
            // Trim " \t\r\n" like the server.
            var a = lineStart
            var b = end
            while a < b && (text[a] == 0x20 || text[a] == 0x09 || text[a] == 0x0D) { a += 1 }
            while b > a && (text[b - 1] == 0x20 || text[b - 1] == 0x09 || text[b - 1] == 0x0D) { b -= 1 }
            if a == b { throw fail(lineStart, "empty line (the server refuses it)") }
            let argc: Int
            do {
                argc = try splitter.split(UnsafeRawBufferPointer(rebasing: text[a..<b]))
            } catch {
                throw fail(a + error.position, error.message)
            }
            if argc < 6 || argc % 2 != 0 {
                throw fail(lineStart, "expected key/value pairs `file <name> seq <n> type <b|h|i>`, found \(argc) words")
            }
            var fileName: [UInt8]?
            var seqText: [UInt8]?
            var typeText: [UInt8]?
            for i in stride(from: 0, to: argc, by: 2) {
                let key = String(decoding: splitter.argument(i), as: UTF8.self).lowercased()
                switch key {
                case "file": fileName = splitter.argument(i + 1)
                case "seq": seqText = splitter.argument(i + 1)
                case "type": typeText = splitter.argument(i + 1)
                default: break  // e.g. startoffset / endoffset (Redis 8): ignored
                }
            }
            guard let fileName else { throw fail(lineStart, "no `file` key") }
            guard let seqText else { throw fail(lineStart, "no `seq` key") }
            guard let typeText else { throw fail(lineStart, "no `type` key") }
            guard let fileString = String(validating: fileName, as: UTF8.self) else {
                throw fail(lineStart, "the file name \(RDBError.printable(fileName)) is not valid UTF-8")
            }
            if fileName.isEmpty || fileString == "." || fileString == ".."
                || fileName.contains(0x2F) || fileName.contains(0x5C) || fileName.contains(0)
            {
                throw fail(lineStart, "the file name \(RDBError.printable(fileName)) must be a bare file name, not a path")
            }
            let seq = seqText.withUnsafeBytes { DecimalFormatter.parseCanonical($0) }
            guard let seq, seq > 0 else {
                throw fail(lineStart, "seq \(RDBError.printable(seqText)) is not a positive integer")
            }
            guard typeText.count == 1, let type = FileType(rawValue: String(UnicodeScalar(typeText[0]))) else {
                throw fail(lineStart, "unknown file type \(RDBError.printable(typeText)) (expected b, h or i)")
            }
            if !seen.insert(fileString).inserted {
                throw fail(lineStart, "the file \(fileString) is listed twice")
            }
            if m.entries.count >= options.maxManifestFiles {
                throw RDBError(.limitExceeded, offset: lineStart,
                               "manifest line \(lineNo): the manifest lists more than \(options.maxManifestFiles) files", file: name)
            }
            let entry = Entry(name: fileString, seq: seq, type: type, line: lineNo)
            switch type {
            case .base:
                if let b = m.base {
                    throw fail(lineStart, "a second BASE file (\(fileString)); the first is \(b.name) on line \(b.line)")
                }
                if !m.entries.isEmpty {
                    throw fail(lineStart, "the BASE file \(fileString) must be the first file listed")
                }
                m.base = entry
            case .history:
                m.history.append(entry)
            case .incr:
                if seq <= maxIncrSeq {
                    throw fail(lineStart, "INCR seq \(seq) does not increase (previous INCR seq \(maxIncrSeq))")
                }
                maxIncrSeq = seq
                m.incrs.append(entry)
            }
            m.entries.append(entry)
        }
        if m.entries.isEmpty {
            throw RDBError(.aofFormat, offset: 0, "the manifest lists no file (the server refuses an empty manifest)", file: name)
        }
        return m
    }

    /// Parses a manifest held in an array.
    public static func parse(_ bytes: [UInt8], name: String = "manifest", options: AOFOptions = .init()) throws -> AOFManifest {
        try bytes.withUnsafeBytes { try parse($0, name: name, options: options) }
    }

    /// Whether the first bytes of an input look like a manifest rather than an AOF: after any `#` comment
    /// lines, the first line starts with a `file`, `seq` or `type` key (what `redis-check-aof` looks at).
    public static func looksLikeManifest(_ head: UnsafeRawBufferPointer) -> Bool {
        var pos = 0
        let n = head.count
        while pos < n {
            let c = head[pos]
            if c == 0x23 {  // comment: skip the line
                while pos < n && head[pos] != 0x0A { pos += 1 }
                pos += 1
                continue
            }
            var a = pos
            while a < n && (head[a] == 0x20 || head[a] == 0x09) { a += 1 }
            var word: [UInt8] = []
            while a < n && word.count < 5, head[a] != 0x20, head[a] != 0x09 {
                var ch = head[a]
                if ch >= 0x41 && ch <= 0x5A { ch += 0x20 }
                word.append(ch)
                a += 1
            }
            guard a < n, head[a] == 0x20 || head[a] == 0x09 else { return false }
            return word == Array("file".utf8) || word == Array("seq".utf8) || word == Array("type".utf8)
        }
        return false
    }
}

extension AOFReader {
    /// Decodes an AOF given by path: an `appendonlydir` folder (its single `*.manifest` is used), a
    /// manifest file, or a single AOF file (with or without RDB preamble; a plain RDB file reads as an AOF
    /// made only of a preamble). Files are told apart by content, not by name; `-` is standard input.
    ///
    /// For a manifest, the BASE (RDB or RESP, by content) and then the INCR files are read in order from
    /// the manifest's folder; a torn tail is tolerated only in the last file. With a second core and a sink that
    /// takes parts, the files after the middle of the set are read on the other core meanwhile (`AOFReadAhead`).
    @inlinable
    public static func decode<V: AOFVisitor>(
        path: String, into visitor: inout V, options: AOFOptions = .init()
    ) throws -> AOFSummary {
        let (first, plan, manifest) = try plan(path: path, options: options)
        var summary = AOFSummary()
        summary.manifest = manifest
        let ahead = try AOFReadAhead.start(first, plan, into: &visitor, options: options)
        defer { ahead?.finish() }
        for (i, item) in plan.enumerated() {
            if let file = try ahead?.merged(i, into: &visitor, options: options, warnings: &summary.warnings) {
                summary.files.append(file)
                continue
            }
            let input = try ahead?.inputs[i] ?? (i == 0 ? first : InputBuffer.open(path: item.path))
            let file = try decodeFile(input, name: item.path, kind: item.kind, isLast: i == plan.count - 1,
                                      into: &visitor, options: options, warnings: &summary.warnings,
                                      planned: ahead?.planned(i), mayReadInTwoParts: ahead == nil,
                                      moreBytes: ahead?.bytesMerged(after: i) ?? 0)
            summary.files.append(file)
        }
        return summary
    }

    /// The files `path` stands for, in load order, with the first one opened (standard input cannot be
    /// opened twice): a single AOF, or the files of a manifest (each checked to exist first, so that a
    /// missing INCR is reported before anything is delivered).
    @usableFromInline
    static func plan(path: String, options: AOFOptions) throws -> (InputBuffer, [(path: String, kind: AOFFileKind)], AOFManifest?) {
        var manifestInput: InputBuffer
        var manifestPath = path
        var directory: String
        if InputKind.isDirectory(path) {
            manifestPath = try findManifest(inDirectory: path)
            manifestInput = try InputBuffer.open(path: manifestPath)
            directory = path
        } else {
            let input = try InputBuffer.open(path: path)
            guard try isManifest(input) else { return (input, [(path, .single)], nil) }
            manifestInput = input
            directory = directoryName(path)
        }
        try readWhole(manifestInput, limit: manifestByteLimit(options), name: manifestPath)
        let manifest = try AOFManifest.parse(manifestInput.window, name: manifestPath, options: options)
        var items: [(path: String, kind: AOFFileKind)] = []
        for e in manifest.loadOrder {
            let p = directory == "." && !manifestPath.hasPrefix("./") ? e.name : directory + "/" + e.name
            var st = stat()
            if stat(p, &st) != 0 {
                throw RDBError(.io, offset: 0,
                               "\(e.name), listed on line \(e.line) of the manifest as \(e.type == .base ? "BASE" : "INCR") seq \(e.seq), cannot be read: \(String(cString: strerror(errno)))",
                               file: manifestPath)
            }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                throw RDBError(.io, offset: 0, "\(e.name), listed on line \(e.line) of the manifest, is a folder", file: manifestPath)
            }
            items.append((p, e.type == .base ? .base : .incr))
        }
        guard let first = items.first else { return (manifestInput, [], manifest) }
        return (try InputBuffer.open(path: first.path), items, manifest)
    }

    /// Reads and parses the manifest at `path` (a file, or a folder holding one `*.manifest`).
    public static func loadManifest(path: String, options: AOFOptions = .init()) throws -> AOFManifest {
        let p = InputKind.isDirectory(path) ? try findManifest(inDirectory: path) : path
        let input = try InputBuffer.open(path: p)
        try readWhole(input, limit: manifestByteLimit(options), name: p)
        return try AOFManifest.parse(input.window, name: p, options: options)
    }

    static func manifestByteLimit(_ options: AOFOptions) -> Int {
        (options.maxManifestFiles + 64) * AOFManifest.maxLineBytes
    }

    /// Whether the input (at its position) holds a manifest rather than an AOF.
    static func isManifest(_ input: InputBuffer) throws -> Bool {
        try InputKind.detect(input) == .aofManifest
    }

    /// Loads the whole input into the window (bounded by `limit`).
    static func readWhole(_ input: InputBuffer, limit: Int, name: String) throws {
        while input.isStreaming {
            if input.window.count > limit {
                throw RDBError(.limitExceeded, offset: 0, "the manifest is larger than \(limit) bytes", file: name)
            }
            _ = try input.fillMore()
        }
        if input.window.count > limit {
            throw RDBError(.limitExceeded, offset: 0, "the manifest is larger than \(limit) bytes", file: name)
        }
    }

    static func directoryName(_ path: String) -> String {
        if path == "-" { return "." }
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// The single `*.manifest` in a folder (temporary `temp-*` manifests of an unfinished rewrite are ignored).
    static func findManifest(inDirectory dir: String) throws -> String {
        guard let d = opendir(dir) else {
            throw RDBError(.io, offset: 0, "cannot list the folder: \(String(cString: strerror(errno)))", file: dir)
        }
        defer { closedir(d) }
        var found: [String] = []
        while let ent = readdir(d) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw -> String in
                let bytes = raw.prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            guard name.hasSuffix(".manifest"), !name.hasPrefix("temp-") else { continue }
            let p = dir.hasSuffix("/") ? dir + name : dir + "/" + name
            var st = stat()
            if stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG { found.append(p) }
        }
        found.sort()
        if found.isEmpty {
            throw RDBError(.aofFormat, offset: 0, "the folder holds no *.manifest file (not an appendonlydir)", file: dir)
        }
        if found.count > 1 {
            throw RDBError(.aofFormat, offset: 0, "the folder holds several manifests: \(found.joined(separator: ", "))", file: dir)
        }
        return found[0]
    }
}
