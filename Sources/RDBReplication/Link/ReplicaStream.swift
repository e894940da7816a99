import RDBKit

/// The decoder's view of one segment of the replication: a `ByteStream` over the queue that returns the
/// snapshot's bytes, then the command stream's, and ends (returns 0) when the segment does. It keeps what
/// maps its input offsets to the source's offsets (where the stream starts) and when its bytes arrived.
///
/// Read on the decoding thread only. Before it waits for bytes it calls `onIdle` (the importer hands over
/// what it gathered, and publishes what was applied), and it ends the decode with an error when
/// `stopReason` says the import cannot go on.
public final class SegmentReader {
    let queue: ReplicaQueue
    public let start: SegmentStart
    /// Input offset of the next byte.
    public private(set) var served = 0
    /// Input offset where the command stream starts, once known, and the source's offset there.
    public private(set) var streamStartInput: Int?
    public private(set) var streamStartOffset: Int64 = 0
    /// Why the segment ended (nil while it goes on).
    public private(set) var ended: SegmentEnd?
    public var onIdle: (() -> Void)?
    /// The command stream starts: (input offset, source offset).
    public var onStreamStart: ((Int, Int64) -> Void)?
    public var stopReason: (() -> String?)?
    /// (input end, arrival ms) of the chunks served and not yet passed by the decoder.
    var arrivals: [(end: Int, ms: Int64)] = []
    var arrivalsHead = 0

    init(queue: ReplicaQueue, start: SegmentStart) {
        self.queue = queue
        self.start = start
    }

    /// The source's offset at input offset `input` (nil inside the snapshot).
    public func sourceOffset(input: Int) -> Int64? {
        guard let s = streamStartInput, input >= s else { return nil }
        return streamStartOffset + Int64(input - s)
    }

    /// When the byte at `input` arrived (unix ms; the decoder asks in increasing order).
    public func arrival(of input: Int) -> Int64 {
        while arrivalsHead < arrivals.count && arrivals[arrivalsHead].end <= input { arrivalsHead += 1 }
        if arrivalsHead > 4096 {
            arrivals.removeFirst(arrivalsHead)
            arrivalsHead = 0
        }
        if arrivalsHead < arrivals.count { return arrivals[arrivalsHead].ms }
        return arrivals.last?.ms ?? unixMillis()
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if ended != nil || buffer.isEmpty { return 0 }
        var waited = false
        while true {
            if let why = stopReason?() {
                throw RDBError(.io, offset: served, "the replication stream was not read further: \(why)")
            }
            switch try queue.take(into: buffer, timeout: waited ? 0.2 : 0) {
            case .bytes(let n, let t):
                served += n
                // One entry per 10 ms of arrivals (bounded by time, not by reads; a TTL made absolute
                // from an entry is at most 10 ms early).
                if let last = arrivals.last, t - last.ms < 10, arrivals.count > arrivalsHead {
                    arrivals[arrivals.count - 1].end = served
                } else {
                    arrivals.append((served, t))
                }
                return n
            case .streamStart(let o):
                streamStartInput = served
                streamStartOffset = o
                onStreamStart?(served, o)
            case .end(let e):
                ended = e
                return 0
            case .begin:
                ended = .failed("a segment began inside another (internal error)")
                return 0
            case .empty:
                onIdle?()
                waited = true
            }
        }
    }
}

/// `SegmentReader` as a `ByteStream` (the window holds it).
struct SegmentStream: ByteStream {
    let reader: SegmentReader
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try reader.read(into: buffer)
    }
    var hasReadyBytes: Bool { reader.ended == nil && reader.queue.hasItems }
}

extension ReplicaQueue {
    /// Waits for the next segment to begin, or for the end of the replication (a failure, a refusal, a
    /// stop before any segment).
    func nextSegment() throws -> Result<SegmentStart, SegmentEnd> {
        var scratch = [UInt8](repeating: 0, count: 64 << 10)  // what is left of an abandoned segment is skipped
        while true {
            let t = try scratch.withUnsafeMutableBytes { try take(into: $0, timeout: 0.5) }
            switch t {
            case .begin(let s): return .success(s)
            case .end(let e):
                switch e {
                case .stopped, .failed, .psyncRefused: return .failure(e)
                case .resync, .broken: continue  // a segment's end that its reader did not see
                }
            case .bytes, .streamStart, .empty: continue
            }
        }
    }
}

extension SegmentEnd: Error {}
