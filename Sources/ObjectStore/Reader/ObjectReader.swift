import NIOCore
import NIOPosix
import RDBKit
import Synchronization

/// Counters of one object's read, safe to look at from any thread (progress, the report).
public final class ObjectReadStats: Sendable {
    public let location: String
    public let size: Int
    let read = Atomic<Int>(0)
    let resumeCount = Atomic<Int>(0)
    let lastResume = Atomic<Int>(-1)

    init(location: String, size: Int) {
        self.location = location
        self.size = size
    }

    /// Bytes of the object handed to the decoder so far (compressed bytes for a compressed object).
    public var bytesRead: Int { read.load(ordering: .relaxed) }
    /// Times a range was resumed after a dropped connection or a 5xx.
    public var resumes: Int { resumeCount.load(ordering: .relaxed) }
    /// The object offset the last resume started from (-1: none).
    public var lastResumeOffset: Int { lastResume.load(ordering: .relaxed) }

    func recordResume(at offset: Int) {
        resumeCount.add(1, ordering: .relaxed)
        lastResume.store(offset, ordering: .relaxed)
    }
}

/// Reads an object in a bucket from start to end as sequential ranged GETs, for the decoder's streaming window:
/// the range being decoded and the `readAhead` ranges after it (fetched meanwhile on an event loop, each on
/// a connection of its own) are all it holds, so memory is at most `1 + readAhead` ranges whatever the object's
/// size, and nothing is written to disk.
///
/// A range that fails part-way is resumed at the last byte received (see `RangeFetch`); a 403/404 fails at
/// once, naming the status and the object. The reader is used from one thread (the decoder's); `read` blocks
/// while the next range has not arrived.
public final class ObjectReader: @unchecked Sendable {
    public let client: S3Client
    public let location: S3Location
    public let info: ObjectInfo
    public let stats: ObjectReadStats
    let eventLoop: EventLoop
    /// The range being consumed.
    var current: ByteBuffer?
    /// The ranges being fetched, in order (at most `readAhead`).
    var pending: [RangeFetch] = []
    /// Object offset up to which ranges have been asked for.
    var requestedUpTo = 0
    var position = 0
    /// Whether the ranges after `current` have been asked for. Not after the first range: a reader that only looks
    /// at the first bytes (telling what the object holds) costs one small GET; the decoder, coming back for more,
    /// then waits once for the second range, and from there on the next ones are fetched while it decodes.
    var aheadRequested = true

    init(client: S3Client, location: S3Location, info: ObjectInfo) {
        self.client = client
        self.location = location
        self.info = info
        stats = ObjectReadStats(location: location.description, size: info.size)
        eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        requestNext()
    }

    deinit { for f in pending { f.cancel() } }

    /// Starts fetching the range after the last one asked for (nothing at the object's end).
    func requestNext() {
        guard requestedUpTo < info.size else { return }
        let c = client.configuration
        let want = requestedUpTo == 0 ? max(1, min(c.firstRangeBytes, c.rangeBytes)) : max(1, c.rangeBytes)
        let length = min(want, info.size - requestedUpTo)
        let f = RangeFetch(client: client, location: location, info: info, start: requestedUpTo, length: length, eventLoop: eventLoop, stats: stats)
        requestedUpTo += length
        pending.append(f)
        f.begin()
    }

    /// Copies the next bytes of the object into `buffer`; 0 at its end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            if var c = current, c.readableBytes > 0 {
                if !aheadRequested {
                    aheadRequested = true
                    while pending.count < max(1, client.configuration.readAhead) && requestedUpTo < info.size { requestNext() }
                }
                let n = min(buffer.count, c.readableBytes)
                c.withUnsafeReadableBytes { src in buffer.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: n) }
                c.moveReaderIndex(forwardBy: n)
                current = c.readableBytes > 0 ? c : nil
                position += n
                stats.read.store(position, ordering: .relaxed)
                return n
            }
            current = nil
            if pending.isEmpty { requestNext() }
            guard !pending.isEmpty else { return 0 }
            let f = pending.removeFirst()
            let range = try f.future.wait()
            current = range
            aheadRequested = f.start == 0
        }
    }

    /// The reader as a `ByteStream`.
    public var stream: ObjectByteStream { ObjectByteStream(reader: self) }
}

/// An object as RDBKit's `ByteStream`.
public struct ObjectByteStream: ByteStream {
    public let reader: ObjectReader
    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try reader.read(into: buffer)
    }
}
