import NIOConcurrencyHelpers
import RDBKit

/// Opens `s3://bucket/key` inputs for the decoder (an `InputOpener`), and keeps each object's read counters
/// (bytes read against its size, resumes) for progress and the report.
public final class ObjectInputs: @unchecked Sendable {
    public let client: S3Client
    let lock = NIOLock()
    var opened: [String: ObjectReadStats] = [:]
    /// Objects whose version was checked: read as that version (no second HEAD), or not at all.
    var pinned: [String: ObjectInfo] = [:]

    public init(client: S3Client) { self.client = client }

    public convenience init(configuration: S3Configuration) { self.init(client: S3Client(configuration: configuration)) }

    /// An object input that the decoders cannot take.
    public struct Unsupported: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Opens `path` when it is an `s3://` address (HEAD, then the first range to tell what it holds); nil for
    /// any other path.
    public func open(path: String, limit: Int) throws -> OpenedInput? {
        guard S3Location.isObjectPath(path) else { return nil }
        let location = try S3Location.parse(path)
        let reader = try client.open(location, info: lock.withLock { pinned[path] })
        lock.withLock { opened[path] = reader.stats }
        let input = try OpenedInput.open(stream: reader.stream, name: path, size: reader.info.size, limit: limit)
        if input.kind == .aofManifest {
            throw Unsupported(description: "\(path): an AOF manifest names its files relative to its folder, which a bucket does not have: give the AOF files themselves, in order")
        }
        return input
    }

    /// Reads `path` as the version `info` describes (size, ETag) from now on: when the object is replaced
    /// after it was checked, its read fails instead of importing bytes that were not checked.
    public func pin(_ path: String, _ info: ObjectInfo) { lock.withLock { pinned[path] = info } }

    /// This as the decoders' `InputOpener`.
    public var opener: InputOpener { { [self] path, limit in try self.open(path: path, limit: limit) } }

    /// The counters of the last read of `path` (nil when it was never opened).
    public func stats(_ path: String) -> ObjectReadStats? { lock.withLock { opened[path] } }

    /// Resumes over every object opened.
    public var resumes: Int { lock.withLock { opened.values.reduce(0) { $0 + $1.resumes } } }
}

/// What the first bytes of an object say: checked for every file of a task before anything is written.
public struct ObjectSniff: Sendable {
    public var location: S3Location
    public var info: ObjectInfo
    public var kind: InputKind
    public var compression: InputCompression
    /// The RDB header (an RDB, or an AOF with an RDB preamble).
    public var header: RDBHeader?

    /// Opens the object, reads its first range (HEAD, then one GET of `firstRangeBytes`) and tells what it holds.
    public static func sniff(_ location: S3Location, inputs: ObjectInputs) throws -> ObjectSniff {
        let reader = try inputs.client.open(location)
        let input = try InputBuffer.open(stream: reader.stream, name: location.description, limit: 1 << 20)
        let kind = try InputKind.detect(input)
        return ObjectSniff(location: location, info: reader.info, kind: kind, compression: input.compression,
                           header: RDBHeader.parse(input.window))
    }

    /// `RDB version 10 (redis)`, `AOF`, `AOF with an RDB preamble …`, plus `, gzip` when compressed.
    public var summary: String {
        var s: String
        switch kind {
        case .rdb: s = header.map { "RDB version \($0.version) (\($0.family.rawValue))" } ?? "RDB (unreadable header)"
        case .aof: s = "AOF"
        case .aofManifest: s = "AOF manifest"
        case .aofDirectory: s = "folder"
        }
        if compression != .none { s += ", \(compression)" }
        return s
    }
}
