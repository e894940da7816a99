#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an input holds, told by content (a folder by the file system): the one place that decides it.
///
/// A zstd or gzip input is recognised when it is opened (`InputBuffer.open`, `InputCompression`) and its
/// kind is then told from the decompressed bytes, so a compressed RDB, AOF or manifest is each of these.
public enum InputKind: String, Sendable, Hashable, CustomStringConvertible {
    /// Starts with `REDIS` or `VALKEY`: an RDB file, or an AOF with an RDB preamble (commands may follow).
    case rdb
    /// Commands (RESP or inline), possibly none.
    case aof
    /// A multi-part AOF manifest (`file … seq … type …` lines).
    case aofManifest
    /// A folder: an `appendonlydir` holding one `*.manifest`.
    case aofDirectory

    public var description: String { rawValue }

    /// Bytes looked at to tell a manifest from an AOF.
    public static let sniffBytes = 4096

    /// The kind of the input at its position (loads up to `sniffBytes` into the window; consumes nothing).
    public static func detect(_ input: InputBuffer) throws -> InputKind {
        try input.fill(atLeast: sniffBytes)
        return detect(head: input.window)
    }

    /// The kind of an input from its first bytes.
    public static func detect(head w: UnsafeRawBufferPointer) -> InputKind {
        if startsWithRDBMagic(w) { return .rdb }
        if !w.isEmpty, w[0] != UInt8(ascii: "*"), AOFManifest.looksLikeManifest(w) { return .aofManifest }
        return .aof
    }

    /// Whether the bytes start with `REDIS` or `VALKEY`.
    public static func startsWithRDBMagic(_ w: UnsafeRawBufferPointer) -> Bool {
        func has(_ magic: StaticString) -> Bool {
            let n = magic.utf8CodeUnitCount
            guard w.count >= n else { return false }
            for i in 0..<n where w[i] != magic.utf8Start[i] { return false }
            return true
        }
        return has("REDIS") || has("VALKEY")
    }

    /// Whether `path` names a folder (`-`, standard input, never does).
    public static func isDirectory(_ path: String) -> Bool {
        guard path != "-" else { return false }
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The kind of the input at `path` (opens and sniffs it; `-` is read from standard input, so prefer
    /// `OpenedInput.open` when the input is decoded next).
    public static func detect(path: String) throws -> InputKind {
        try OpenedInput.open(path: path, limit: 1 << 20).kind
    }
}

/// An input opened and told apart, ready for a decoder: `DecodeDriver` (RDBSinks) takes it.
public struct OpenedInput {
    public var path: String
    public var kind: InputKind
    /// The opened bytes (positioned at the start); nil for a folder.
    public var input: InputBuffer?
    /// The size on disk of a regular file (compressed size for a compressed one); nil for streams and folders.
    public var fileSize: Int?

    public init(path: String, kind: InputKind, input: InputBuffer?, fileSize: Int?) {
        self.path = path
        self.kind = kind
        self.input = input
        self.fileSize = fileSize
    }

    /// Whether the bytes come through a stream (standard input, a pipe, a decompressor).
    public var isStreaming: Bool { input?.isStreaming ?? false }

    /// How many bytes the decoder will read, when known before it starts: a mapped file's size, or the size of
    /// an uncompressed stream whose size is known (an object in a bucket); nil for pipes and compressed inputs.
    public var uncompressedSize: Int? {
        guard let input, input.compression == .none else { return nil }
        return input.isStreaming ? fileSize : input.window.count
    }

    /// Opens a stream that is not a local file (an object in a bucket) and tells its kind.
    /// - Parameter size: the source's size (compressed size for a compressed one), when known.
    public static func open(stream: some ByteStream, name: String, size: Int?, limit: Int) throws -> OpenedInput {
        let input = try InputBuffer.open(stream: stream, name: name, limit: limit)
        return OpenedInput(path: name, kind: try InputKind.detect(input), input: input, fileSize: size)
    }

    /// Opens `path` (`-` is standard input) and tells its kind.
    public static func open(path: String, limit: Int) throws -> OpenedInput {
        var st = stat()
        if path != "-", stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { return OpenedInput(path: path, kind: .aofDirectory, input: nil, fileSize: nil) }
        }
        let isRegular = path != "-" && (st.st_mode & S_IFMT) == S_IFREG
        let input = try InputBuffer.open(path: path, limit: limit)
        return OpenedInput(path: path, kind: try InputKind.detect(input), input: input, fileSize: isRegular ? Int(st.st_size) : nil)
    }
}

/// Opens inputs that are not local paths (`s3://bucket/key`): returns nil for a path it does not handle, which
/// is then opened as a local file. The CLI hands one to `DecodeDriver`, the importer and the migration runner.
public typealias InputOpener = (_ path: String, _ limit: Int) throws -> OpenedInput?
