#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RDBKit

/// A sink whose work on a run of records can be done by a sink of its own kind on another thread, with
/// the output written in file order and the reports folded back (see `ParallelDecode`). The output of a
/// parallel decode is byte for byte that of a sequential one.
public protocol ChunkableSink: RDBVisitor {
    /// The buffer this sink writes through; its target receives the chunks' output too.
    var output: OutputBuffer { get }
    /// A sink with this one's settings (and what it learnt from the file's header) and no reports, for one
    /// chunk of records, writing into `out` (a buffer without a target).
    func chunkSink(out: OutputBuffer) -> Self
    /// Folds in a chunk's sink once the chunk's output is written (chunks come in file order).
    mutating func absorb(_ chunk: Self)
    /// For sinks that select databases: the one the target is in after this sink's output (nil: it
    /// selected none). Others: nil.
    var selectedDatabase: Int? { get }
    /// A chunk sink whose output starts with a SELECT: its database and its size in bytes (the runner
    /// leaves it out when the target is in that database already, as a sequential decode would have).
    var leadingSelect: (db: Int, bytes: Int)? { get }

    /// Whether a parallel decode of a file of small records (`ParallelDecode.syncRecordBytes`) into this sink may
    /// cut the file at nominal offsets, each chunk's thread finding its first record (`RDBReader.cutChunks`; a stream
    /// as it is read, `RDBReader.cutStreamedChunks`), rather than after walking every record on the decoding thread:
    /// that walk is a large share of the work for
    /// small records (a string's RESP or RESTORE costs about as much as measuring it), and the threads then share
    /// all of it. The sink takes back what records decoded from a wrong guess did (`dropRecords`).
    var cutsBySync: Bool { get }
    /// With `cutsBySync`: whether a chunk's thread decodes a record larger than a chunk itself, its output held in
    /// the chunk's buffer (the memory report: a row per key), rather than stopping before it for the decoding
    /// thread to decode in place (in pieces, its output written as it goes: `RDBChunk.largeRecordBytes`).
    var keepsLargeRecordsInChunks: Bool { get }
    /// For sinks cut by sync: takes back what the records decoded before `snapshot` (a copy of this sink taken
    /// between records) did to this sink's reports. A chunk decoded from a wrong guess of where its first record
    /// starts soon falls in step with the true records (the framing resynchronizes): its output from there on is
    /// kept (when the sink's database there is the one the target is in), the output and the reports of the
    /// records before are dropped.
    mutating func dropRecords(before snapshot: Self)

    /// Whether this sink takes the value of the key it just began (answering `.decode`) in pieces: its
    /// elements decoded by sinks of `pieceSink` on other threads, then handed to it in order
    /// (`absorbPiece`). Only asked for values of element framing larger than a chunk.
    func splitsValue(_ type: RDBValueType) -> Bool
    /// A sink for the elements of a piece of a value (element events only), writing into `out`; `scratch`
    /// is an empty buffer it may keep what else it needs in (both are reused once the piece is absorbed).
    func pieceSink(out: OutputBuffer, scratch: OutputBuffer) -> Self
    /// Takes a piece's elements as if their events had come to this sink: the same output and state.
    mutating func absorbPiece(_ piece: Self) throws
}

extension ChunkableSink {
    public var selectedDatabase: Int? { nil }
    public var leadingSelect: (db: Int, bytes: Int)? { nil }
    public var cutsBySync: Bool { false }
    public var keepsLargeRecordsInChunks: Bool { false }
    public mutating func dropRecords(before snapshot: Self) { preconditionFailure("dropRecords: this sink's chunks are not cut by sync") }
    public func splitsValue(_ type: RDBValueType) -> Bool { false }
    public func pieceSink(out: OutputBuffer, scratch: OutputBuffer) -> Self { preconditionFailure("pieceSink: this sink does not split values") }
    public mutating func absorbPiece(_ piece: Self) throws { preconditionFailure("absorbPiece: this sink does not split values") }

    /// Decodes an RDB with `threads` threads decoding chunks of about `chunkBytes` (see
    /// `RDBReader.decodeChunked` for a memory-mapped one, `decodeStreamedChunked` for a stream). Inlinable,
    /// like everything the threads run, so that the decoding is specialized for the sink in the caller's
    /// module.
    @inlinable
    public mutating func decodeInParallel(_ input: InputBuffer, options: RDBDecoderOptions, threads: Int,
                                          chunkBytes: Int = ParallelDecode<Self>.defaultChunkBytes,
                                          progress: ProgressReporter? = nil, statistics: ParallelStatistics? = nil) throws -> RDBSummary {
        var runner = ParallelDecode<Self>(options: options, threads: threads)
        runner.inlineChunkBytes = chunkBytes / 2
        runner.progress = progress
        runner.statistics = statistics
        // The threads start with the first chunk or piece (`start`): a file of large values the sink does not
        // split (the memory report of huge-aggregates.rdb) is decoded on this thread alone, and idle threads beside
        // it made that 6–13% slower (medians of 21–31).
        defer { runner.shutdown() }
        if input.isStreaming {
            return try RDBReader.decodeStreamedChunked(input, into: &self, runner: &runner, options: options, chunkBytes: chunkBytes,
                                                       cutBelowRecordBytes: cutsBySync ? ParallelDecode<Self>.syncRecordBytes : 0,
                                                       leavesLargeRecords: !keepsLargeRecordsInChunks)
        }
        return try RDBReader.decodeChunked(input, into: &self, runner: &runner, options: options,
                                           chunkBytes: chunkBytes, maxChunkRecord: chunkBytes,
                                           cutBelowRecordBytes: cutsBySync ? ParallelDecode<Self>.syncRecordBytes : 0,
                                           leavesLargeRecords: !keepsLargeRecordsInChunks)
    }
}

/// What parallel decodes did, counted on the decoding thread.
public final class ParallelStatistics: @unchecked Sendable {
    /// Chunks of records decoded on the threads.
    public var chunks = 0
    /// Values larger than a chunk decoded in pieces on the threads, and their pieces.
    public var valuesSplit = 0
    public var pieces = 0
    /// Chunks cut at nominal offsets (`ChunkableSink.cutsBySync`); of those, the ones whose records decoded
    /// from a wrong guess fell in step with the true ones (kept from there), and the ones decoded again.
    public var cutChunks = 0
    public var fellInStep = 0
    public var decodedAgain = 0
    /// Starts guessed again by a chunk's thread, the records from its guess having failed to decode.
    public var guessedAgain = 0
    /// Times the cutting stopped before a record (a large one, or one running past a streamed chunk's bytes).
    public var cutStops = 0
    /// Threads started: none when no chunk or piece was handed over (every record decoded in place).
    public var threadsStarted = 0
    public init() {}
}

/// Decodes the chunks of a memory-mapped RDB on `threads` threads and writes their output in file order.
///
/// Each chunk gets a sink of its own (`ChunkableSink.chunkSink`) writing into a buffer of its own. Its
/// output is handed to the real target only on its turn (when every chunk before it is written): at the
/// end of the chunk, or between records once it holds `spillBytes` (the worker then waits for its turn),
/// so memory stays bounded by the chunks in flight. A leading SELECT of the database the target is
/// already in is left out. The finished chunk sinks are folded into the main sink in file order.
///
/// On an error in a chunk, the keys before it are written (a key is committed whole) and the chunks
/// after it are abandoned; `drain` throws the error, as a sequential decode would have.
public struct ParallelDecode<Sink: ChunkableSink>: RDBChunkRunner {
    public static var defaultChunkBytes: Int { 1 << 20 }
    /// Records averaging fewer bytes than this (in the first two chunks) are cut by sync for the sinks that
    /// allow it (`cutsBySync`): strings.rdb (56 bytes a record) gains from it, and small-aggregates.rdb (190) does since
    /// the memory report sizes compact values by their blob (149 against 171 ms, medians of 11, at 256 and 128).
    public static var syncRecordBytes: Int { 256 }
    /// Output a chunk may hold before it waits for its turn to write.
    @inlinable static var spillBytes: Int { 4 << 20 }

    @usableFromInline let state: ParallelState<Sink>
    @usableFromInline let threads: Int
    /// A chunk smaller than this (half a chunk) is decoded on the calling thread while no thread has started.
    public var inlineChunkBytes = 0
    /// Told of each chunk as it is cut (on the decoding thread).
    public var progress: ProgressReporter?
    /// Counts the chunks and pieces, if set.
    public var statistics: ParallelStatistics?

    @inlinable
    public init(options: RDBDecoderOptions, threads: Int) {
        state = ParallelState(options: options, maxInFlight: max(2, threads * 2))
        self.threads = max(1, threads)
    }

    @inlinable
    public var releasableOffset: Int { state.monitor.withLock { state.doneOffset } }

    @inlinable
    public var chainEnd: (offset: Int, db: Int)? {
        state.monitor.withLock { state.chainEnd.map { ($0, state.chainDB ?? 0) } }
    }

    @inlinable
    public var cutStopped: Bool {
        get { state.monitor.withLock { state.cutStop } }
        set { state.monitor.withLock { state.cutStop = newValue } }
    }

    @inlinable
    public mutating func resume(from sink: inout Sink) throws {
        try sink.output.flush()
        guard let target = sink.output.target else { preconditionFailure("ParallelDecode: the sink's output has no target") }
        let db = sink.selectedDatabase
        let template = sink
        state.monitor.withLock {
            state.target = target
            state.template = template
            state.db = db
            state.cutStop = false
        }
    }

    /// Starts the threads, once, when the first chunk or piece is handed over (if none can be started, each is
    /// decoded on the calling thread). Inlinable, where the sink's type is known: the threads run code specialized
    /// for it (the reader calls the runner through its protocol, unspecialized, for queueing only).
    @inlinable
    public func start() {
        let s = state
        guard !s.startTried else { return }
        s.startTried = true
        while s.started.count < threads, let t = startThread({ s.work() }) { s.started.append(t) }
        statistics?.threadsStarted = s.started.count
    }

    @inlinable
    public mutating func submit(_ chunk: RDBChunk, region: UnsafeRawBufferPointer, absorbingInto sink: inout Sink) throws {
        statistics?.chunks += 1
        // The chunks written since the last call: their reports now, their buffers freed.
        let (done, keys) = state.monitor.withLock { () -> ([Sink], Int) in
            let f = state.finished
            state.finished.removeAll(keepingCapacity: true)
            defer { state.keysCounted = 0 }
            return (f, state.keysCounted)
        }
        progress?.advance(to: chunk.offsets.upperBound, keys: chunk.keys + keys)
        for chunk in done { sink.absorb(chunk) }
        // A few records before a large one (a file's SELECTDB) are not worth starting the threads for.
        if chunk.end - chunk.start >= inlineChunkBytes { start() }
        if state.started.isEmpty {
            state.monitor.withLock {
                state.queue.append(.chunk(chunk, region))
                state.inFlight += 1
            }
            state.drainQueue()
            return
        }
        state.monitor.withLock {
            state.monitor.wait { state.inFlight < state.maxInFlight || state.failure != nil }
            state.queue.append(.chunk(chunk, region))
            state.inFlight += 1
        }
        state.monitor.broadcast()
    }

    @inlinable
    public mutating func drain(into sink: inout Sink) throws {
        let (finished, failure, keys) = state.monitor.withLock { () -> ([Sink], (any Error)?, Int) in
            state.monitor.wait { state.inFlight == 0 || state.failure != nil }
            let f = state.finished
            state.finished.removeAll()
            defer { state.keysCounted = 0 }
            return (f, state.failure, state.keysCounted)
        }
        if keys > 0 { progress?.advance(to: 0, keys: keys) }
        if let statistics {
            let counts = state.monitor.withLock { state.cutCounts }
            (statistics.cutChunks, statistics.fellInStep, statistics.decodedAgain, statistics.guessedAgain, statistics.cutStops) = counts
        }
        for chunk in finished { sink.absorb(chunk) }
        if let failure {
            if state.monitor.withLock({ state.failureKeptPartOfKey }) { sink.output.notePartOfKeyWrittenElsewhere() }
            shutdown()
            throw failure
        }
    }

    @inlinable
    public func splitsValue(_ sink: Sink, _ type: RDBValueType) -> Bool {
        (!state.startTried || !state.started.isEmpty) && sink.splitsValue(type)
    }

    @inlinable
    public mutating func submitPiece(_ piece: RDBValuePiece, region: UnsafeRawBufferPointer, into sink: inout Sink) throws {
        try handOverPieces(into: &sink, all: false)
        progress?.advance(to: piece.baseOffset + piece.end, keys: 0)  // progress inside a long value too
        statistics?.pieces += 1
        if piece.index == 0 { statistics?.valuesSplit += 1 }
        start()
        state.monitor.withLock {
            state.queue.append(.piece(piece, region))
            state.piecesInFlight += 1
        }
        if state.started.isEmpty { state.drainQueue() } else { state.monitor.broadcast() }
    }

    @inlinable
    public mutating func finishPieces(into sink: inout Sink) throws {
        try handOverPieces(into: &sink, all: true)
        state.monitor.withLock { state.nextPiece = 0 }
    }

    /// Hands the decoded pieces to `sink` in order: all of them (`all`), or those done so far and as many
    /// as it takes to have fewer than `maxInFlight` in flight. After a piece that failed, waits for the
    /// pieces in flight and throws its error.
    @inlinable
    mutating func handOverPieces(into sink: inout Sink, all: Bool) throws {
        while true {
            let next: ParallelState<Sink>.DonePiece? = state.monitor.withLock {
                let mustWait = all ? state.piecesInFlight > 0 : state.piecesInFlight >= state.maxInFlight
                if mustWait { state.monitor.wait { state.donePieces[state.nextPiece] != nil } }
                guard let p = state.donePieces.removeValue(forKey: state.nextPiece) else { return nil }
                state.nextPiece += 1
                state.piecesInFlight -= 1
                return p
            }
            guard let next else { return }
            defer { state.monitor.withLock { state.buffers += [next.out, next.scratch] } }
            // A piece that failed still holds the elements before its error: they go out as in a sequential
            // decode, then the error.
            var failure = next.error
            do { try sink.absorbPiece(next.sink) } catch { if failure == nil { failure = error } }
            if let failure {
                // The pieces after it are not handed over: the queue holds only pieces (the chunks were
                // drained before the value); wait for those being decoded, drop them all.
                state.monitor.withLock {
                    state.queue.removeAll()
                    state.queueHead = 0
                    state.monitor.wait { state.runningPieces == 0 }
                    for (_, p) in state.donePieces { state.buffers += [p.out, p.scratch] }
                    state.donePieces.removeAll()
                    state.piecesInFlight = 0
                    state.nextPiece = 0
                }
                throw failure
            }
        }
    }

    /// Stops the threads (after the chunks in flight, or at once after a failure) and waits for them.
    @inlinable
    public mutating func shutdown() {
        state.monitor.withLock { state.stopping = true }
        state.monitor.broadcast()
        for t in state.started { pthread_join(t, nil) }
        state.started.removeAll()
    }
}

/// What `ParallelDecode`'s threads share, under `monitor`.
@usableFromInline
final class ParallelState<Sink: ChunkableSink>: @unchecked Sendable {
    @usableFromInline let monitor = Monitor()
    @usableFromInline let options: RDBDecoderOptions
    @usableFromInline let maxInFlight: Int
    /// The threads (`ParallelDecode.start`), started and joined by the decoding thread only.
    @usableFromInline var started: [pthread_t] = []
    @usableFromInline var startTried = false
    @usableFromInline var template: Sink?
    @usableFromInline var target: OutputTarget?
    /// Work for the threads, in file order.
    @usableFromInline enum Work {
        case chunk(RDBChunk, UnsafeRawBufferPointer)
        case piece(RDBValuePiece, UnsafeRawBufferPointer)
    }
    @usableFromInline var queue: [Work] = []
    @usableFromInline var queueHead = 0
    /// Chunks submitted and not finished.
    @usableFromInline var inFlight = 0
    /// The chunk whose output goes next.
    @usableFromInline var turn = 0
    /// The database the target is in after the output written so far.
    @usableFromInline var db: Int?
    /// Where the last finished chunk ends (absolute).
    @usableFromInline var doneOffset = 0
    /// For chunks cut at nominal offsets: where the last one written truly ended (absolute), the database
    /// selected there, and the key records of those written since the main sink last looked (for progress).
    @usableFromInline var chainEnd: Int?
    @usableFromInline var chainDB: Int?
    @usableFromInline var keysCounted = 0
    /// A chunk cut at a nominal offset that was written stopped before a record (at `chainEnd`: `Cut.stopped`).
    @usableFromInline var cutStop = false
    @usableFromInline var cutCounts = (chunks: 0, inStep: 0, again: 0, guessedAgain: 0, stops: 0)
    /// Finished chunk sinks, in file order, not yet folded into the main sink.
    @usableFromInline var finished: [Sink] = []
    /// The first error (in file order), set once the output before it is written.
    @usableFromInline var failure: (any Error)?
    /// The output of the chunk that failed ends with part of its key (`OutputBuffer.keepsPartOfKey`).
    @usableFromInline var failureKeptPartOfKey = false
    @usableFromInline var failureIndex = Int.max
    @usableFromInline var stopping = false

    // The pieces of the value being split (while one is, no chunk is in flight).
    /// A decoded piece: its sink and buffer, and the error that stopped it, if one did.
    @usableFromInline struct DonePiece {
        @usableFromInline var sink: Sink
        @usableFromInline var out: OutputBuffer
        @usableFromInline var scratch: OutputBuffer
        @usableFromInline var error: (any Error)?
        @inlinable init(sink: Sink, out: OutputBuffer, scratch: OutputBuffer, error: (any Error)?) {
            self.sink = sink
            self.out = out
            self.scratch = scratch
            self.error = error
        }
    }
    @usableFromInline var donePieces: [Int: DonePiece] = [:]
    /// The piece handed to the main sink next.
    @usableFromInline var nextPiece = 0
    /// Pieces queued or decoding, and not handed over.
    @usableFromInline var piecesInFlight = 0
    /// Pieces a thread is decoding.
    @usableFromInline var runningPieces = 0

    @inlinable
    init(options: RDBDecoderOptions, maxInFlight: Int) {
        self.options = options
        self.maxInFlight = maxInFlight
    }

    /// Output buffers not in use (a chunk takes one, and gives it back once its output is written).
    @usableFromInline var buffers: [OutputBuffer] = []
    /// Finished chunks whose turn has not come: their output waits here, so that their thread goes on.
    @usableFromInline var parked: [Int: Finished] = [:]

    /// A chunk decoded (to its end, or to an error) and not yet written.
    @usableFromInline struct Finished {
        @usableFromInline var chunk: RDBChunk
        @usableFromInline var out: OutputBuffer
        @usableFromInline var sink: Sink
        /// Part of its output was written already (it spilled): its leading SELECT, if any, is out.
        @usableFromInline var started: Bool
        @usableFromInline var error: (any Error)?
        /// A chunk cut at a nominal offset: where it was decoded from (-1: no record start found) and in which
        /// database, where it ended and the database there, its key records, and the region it reads.
        @usableFromInline var cut = Cut()
        @usableFromInline struct Cut {
            @usableFromInline var start = 0, db = 0, end = 0, endDB = 0, keys = 0
            /// It stopped before a record, at `end`: a large one (`RDBChunk.largeRecordBytes`), one that runs past its
            /// region, or where its output reached `spillBytes` (`RDBChunk.regionEndsEarly`, see `limit`).
            @usableFromInline var stopped = false
            /// It holds only the records before one that runs past its region (`limit`).
            @usableFromInline var limited = false
            @usableFromInline var region = UnsafeRawBufferPointer(start: nil, count: 0)
            /// Its first records (`watchedRecords`): where each starts, the database there, the key records and
            /// the output bytes before it, and the sink as it was there.
            @usableFromInline var watched: [(position: Int, db: Int, keys: Int, bytes: Int, sink: Sink)] = []
            /// Output bytes at its start that are not its own (records decoded from a wrong guess).
            @usableFromInline var skip = 0
            @inlinable init() {}
        }

        @inlinable
        init(chunk: RDBChunk, out: OutputBuffer, sink: Sink, started: Bool, error: (any Error)?) {
            self.chunk = chunk
            self.out = out
            self.sink = sink
            self.started = started
            self.error = error
        }
    }

    /// A buffer for a chunk's or a piece's output, with room for what a chunk holds before it spills: it
    /// never grows by copying, and its pages are touched only as they are written (buffers are reused, so
    /// a run touches about `maxInFlight` chunks' output).
    @inlinable
    static func newBuffer() -> OutputBuffer {
        let b = OutputBuffer(target: nil, flushThreshold: 1 << 16)
        b.reserve(ParallelDecode<Sink>.spillBytes)
        return b
    }

    /// A thread: takes chunks in order until told to stop.
    @inlinable
    func work() { take(waiting: true) }

    /// Without threads: decodes the queued chunks on the calling thread.
    @usableFromInline
    func drainQueue() { take(waiting: false) }

    @inlinable
    func take(waiting: Bool) {
        while true {
            let next: (work: Work, template: Sink, out: OutputBuffer)? = monitor.withLock {
                if waiting { monitor.wait { queueHead < queue.count || stopping } }
                guard queueHead < queue.count, let template else { return nil }
                let item = queue[queueHead]
                queueHead += 1
                if queueHead == queue.count {
                    queue.removeAll(keepingCapacity: true)
                    queueHead = 0
                }
                if case .piece = item { runningPieces += 1 }
                return (item, template, buffers.popLast() ?? ParallelState.newBuffer())
            }
            guard let next else { return }
            switch next.work {
            case .chunk(let chunk, let region): run(chunk, region, next.template, next.out)
            case .piece(let piece, let region): run(piece, region, next.template, next.out)
            }
        }
    }

    @usableFromInline struct Abandoned: Error {
        @inlinable init() {}
    }

    /// Decodes one chunk into `out`, then hands it to `finish` (which writes it now if it is its turn, or
    /// parks it for the thread whose turn it is). Only a chunk whose output passes `spillBytes` waits for
    /// its turn, to write what it holds so far.
    @inlinable
    func run(_ chunk: RDBChunk, _ region: UnsafeRawBufferPointer, _ template: Sink, _ out: OutputBuffer) {
        out.reset()
        // A key that fails keeps the part of it one thread would have written (`OutputBuffer.keepsPartOfKey`).
        out.keyChunkThreshold = template.output.keyChunkThreshold
        let abandoned = monitor.withLock { () -> Bool in
            guard turn == Int.max else { return false }  // an earlier chunk failed: nothing after it is written
            inFlight -= 1
            buffers.append(out)
            return true
        }
        if abandoned {
            monitor.broadcast()
            return
        }
        if !chunk.endsAtRecord {
            runCut(chunk, region, template, out)
            return
        }
        var sink = template.chunkSink(out: out)
        var started = false
        do {
            try RDBReader.decodeChunk(chunk, region: region, options: options, into: &sink) { s in
                guard out.pendingCount >= ParallelDecode<Sink>.spillBytes else { return true }
                try waitForTurn(chunk.index)
                try write(out, leadingSelect: started ? nil : s.leadingSelect)
                started = true
                return true
            }
            finish(Finished(chunk: chunk, out: out, sink: sink, started: started, error: nil))
        } catch is Abandoned {
            monitor.withLock {
                inFlight -= 1
                buffers.append(out)
            }
            monitor.broadcast()
        } catch {
            out.rollback()  // the keys before the error are written, then the error
            finish(Finished(chunk: chunk, out: out, sink: sink, started: started, error: error))
        }
    }

    @usableFromInline struct Resync: Error {
        @inlinable init() {}
    }

    /// Decodes a chunk cut at a nominal offset from where its first record seems to start, in the database last
    /// known to be selected (`RDBReader.syncPoint`), and hands it to `finish`, which checks the guess. A chunk
    /// whose output passes `spillBytes` checks it when its turn comes, and is decoded again from the true start
    /// if it was wrong; a streamed one (`RDBChunk.regionEndsEarly`) stops there instead (see `limit`).
    @inlinable
    func runCut(_ chunk: RDBChunk, _ region: UnsafeRawBufferPointer, _ template: Sink, _ out: OutputBuffer) {
        var f = Finished(chunk: chunk, out: out, sink: template.chunkSink(out: out), started: false, error: nil)
        f.cut.region = region
        f.cut.start = chunk.startsAtRecord ? chunk.start : RDBReader.syncPoint(chunk, region: region, options: options) ?? -1
        f.cut.db = chunk.startsAtRecord ? chunk.db : monitor.withLock { chainDB } ?? chunk.db
        let db = f.cut.db
        var started = false
        var watched = f.cut.watched
        if !chunk.startsAtRecord { watched.reserveCapacity(ParallelState.watchedRecords) }
        var guesses = 1
        while true {
            let start = f.cut.start
            do {
                if start >= 0 {
                    let e = try RDBReader.decodeChunk(f.chunk, region: region, options: options, into: &f.sink, from: start, db: db,
                                                      watchedRecords: chunk.startsAtRecord ? 0 : ParallelState.watchedRecords,
                                                      atRecord: { s, position, db, keys in
                                                          watched.append((position, db, keys, out.totalBytes, s))
                                                      }) { s in
                        guard out.pendingCount >= ParallelDecode<Sink>.spillBytes else { return true }
                        if chunk.regionEndsEarly { return false }
                        try waitForTurn(chunk.index)
                        if !started && !monitor.withLock({ startsTrue(chunk, start, db) }) { throw Resync() }
                        try write(out, leadingSelect: started ? nil : s.leadingSelect)
                        started = true
                        return true
                    }
                    (f.cut.end, f.cut.endDB, f.cut.keys, f.cut.stopped) = e
                    f.cut.stopped = f.cut.stopped || f.cut.limited
                }
                f.started = started
                f.cut.watched = watched
                finish(f)
            } catch is Abandoned {
                monitor.withLock {
                    inFlight -= 1
                    buffers.append(out)
                }
                monitor.broadcast()
            } catch is Resync {
                finish(decodeCutAgain(f, template))  // its turn: the chunks before it are written
            } catch {
                // A guessed start whose records fail to decode within the first few (a compact value's header that
                // does not hold, read from bytes inside a value) was wrong: the next plausible start is guessed
                // (a file that is corrupt there fails again from where the chunk before truly ends, see `settle`).
                if !chunk.startsAtRecord && !started && watched.count < ParallelState.watchedRecords
                    && guesses < ParallelState.maxGuesses {
                    guesses += 1
                    monitor.withLock { cutCounts.guessedAgain += 1 }
                    out.reset()
                    f.sink = template.chunkSink(out: out)
                    watched.removeAll(keepingCapacity: true)
                    f.cut.start = RDBReader.syncPoint(chunk, region: region, options: options, after: start) ?? -1
                    continue
                }
                if let overrun = error as? RDBChunkOverrun {
                    limit(&f, at: overrun, template)
                    watched.removeAll(keepingCapacity: true)
                    continue
                }
                out.rollback()
                f.started = started
                f.cut.watched = watched
                f.error = error
                finish(f)
            }
            return
        }
    }

    /// A streamed chunk (`RDBChunk.regionEndsEarly`) whose record runs past its region, to be decoded again
    /// holding only the records before it, and to stop there (`Cut.stopped`: the decoding thread goes on from
    /// there). Its output and reports so far are dropped (the record's are among them; nothing was written: such
    /// a chunk does not spill).
    @inlinable
    func limit(_ f: inout Finished, at overrun: RDBChunkOverrun, _ template: Sink) {
        f.out.reset()
        f.sink = template.chunkSink(out: f.out)
        f.chunk = f.chunk.ending(at: overrun.position)
        f.cut.limited = true
    }

    /// How many starts the thread of a chunk cut at a nominal offset guesses, when the records from one fail to
    /// decode (`runCut`), before it leaves the chunk to `settle`.
    @inlinable static var maxGuesses: Int { 4 }

    /// Records of a chunk cut at a nominal offset whose start, database and output are kept, in case its guess of
    /// where its first record starts was wrong and the true records fall in step with it by one of them.
    @inlinable static var watchedRecords: Int { 16 }

    /// Checks a chunk cut at a nominal offset against where the chunk before it truly ended (the caller holds the
    /// turn): as it is when it started there; from the watched record that starts there (in the same database),
    /// without the output and reports of the records before it; else decoded again from there.
    @inlinable
    func settle(_ f: Finished) -> Finished {
        if f.started || monitor.withLock({ startsTrue(f.chunk, f.cut.start, f.cut.db) }) { return f }
        let (end, db, selected) = monitor.withLock { (chainEnd, chainDB, self.db) }
        // The sink there must be in the database the target is in (or, having written nothing, in none), so that
        // it selects from there on as a sequential decode would have.
        if let end, let db, let w = f.cut.watched.first(where: { $0.position == end - f.chunk.baseOffset && $0.db == db }),
           w.sink.selectedDatabase == selected || (w.bytes == 0 && w.sink.selectedDatabase == nil) {
            var kept = f
            kept.sink.dropRecords(before: w.sink)
            kept.cut.keys -= w.keys
            kept.cut.skip = w.bytes
            kept.cut.start = w.position
            kept.cut.watched = []
            monitor.withLock { cutCounts.inStep += 1 }
            return kept
        }
        return decodeCutAgain(f, monitor.withLock { template! })
    }

    /// Whether a chunk cut at a nominal offset was decoded from where the chunk before it truly ended, in the
    /// database selected there (under `monitor`, once the chunks before it are written). Not when it found no
    /// start (-1; a streamed chunk's region starts after where the chunk before may have ended).
    @inlinable
    func startsTrue(_ chunk: RDBChunk, _ start: Int, _ db: Int) -> Bool {
        chunk.startsAtRecord || (start >= 0 && chainEnd.map { $0 - chunk.baseOffset } == start && chainDB == db)
    }

    /// Decodes a chunk cut at a nominal offset again, from where the chunk before it truly ended (the caller
    /// holds the turn: its spills are written as they come). Empty when that is at or past the chunk's end.
    /// A chunk after one that stopped before a record (`cutStop`) holds nothing: the decoding thread goes on from
    /// there.
    @inlinable
    func decodeCutAgain(_ wrong: Finished, _ template: Sink) -> Finished {
        let (end, db, stopped) = monitor.withLock { () -> (Int, Int, Bool) in
            if !cutStop { cutCounts.again += 1 }
            return (chainEnd!, chainDB ?? wrong.chunk.db, cutStop)
        }
        let out = wrong.out
        out.reset()
        var f = Finished(chunk: wrong.chunk, out: out, sink: template.chunkSink(out: out), started: false, error: nil)
        f.cut.region = wrong.cut.region
        f.cut.limited = wrong.cut.limited  // (its records past one that runs past its region are not its own)
        f.cut.start = end - f.chunk.baseOffset
        f.cut.db = db
        // A streamed chunk's region starts a little before its block: the chain can have ended before it (a chunk
        // before stopped early at an EOF opcode). It holds nothing then, and stops the cutting there, so that the
        // decoding thread goes on from the chain's end (reads that EOF record, and the checksum, as one thread does).
        let before = f.cut.start < 0
        (f.cut.end, f.cut.endDB, f.cut.stopped) = (f.cut.start, db, stopped || f.cut.limited || before)
        guard !stopped && !before && f.cut.start < f.chunk.end else { return f }
        let endsEarly = f.chunk.regionEndsEarly  // (not read from `f` while its sink is being written)
        var started = false
        while true {
            do {
                let e = try RDBReader.decodeChunk(f.chunk, region: f.cut.region, options: options, into: &f.sink, from: f.cut.start,
                                                  db: db) { s in
                    guard out.pendingCount >= ParallelDecode<Sink>.spillBytes else { return true }
                    if endsEarly { return false }
                    try write(out, leadingSelect: started ? nil : s.leadingSelect)
                    started = true
                    return true
                }
                (f.cut.end, f.cut.endDB, f.cut.keys, f.cut.stopped) = e
                f.cut.stopped = f.cut.stopped || f.cut.limited
            } catch let overrun as RDBChunkOverrun {
                limit(&f, at: overrun, template)
                continue
            } catch {
                out.rollback()
                f.error = error
            }
            f.started = started
            return f
        }
    }

    /// Decodes one piece of a large value into `out`, for the main sink to take in order.
    @inlinable
    func run(_ piece: RDBValuePiece, _ region: UnsafeRawBufferPointer, _ template: Sink, _ out: OutputBuffer) {
        out.reset()
        let scratch = monitor.withLock { buffers.popLast() } ?? ParallelState.newBuffer()
        scratch.reset()
        // Room for a few times the piece's bytes up front: no copying while they grow (only the pages
        // written are ever touched).
        let room = min(4 * (piece.end - piece.start), 8 << 20)
        out.reserve(room)
        scratch.reserve(room)
        var sink = template.pieceSink(out: out, scratch: scratch)
        var error: (any Error)?
        do {
            try RDBReader.decodePiece(piece, region: region, options: options, into: &sink)
        } catch let e {
            error = e
        }
        monitor.withLock {
            donePieces[piece.index] = DonePiece(sink: sink, out: out, scratch: scratch, error: error)
            runningPieces -= 1
        }
        monitor.broadcast()
    }

    /// Parks a finished chunk; if it is its turn, writes it and every parked chunk after it, in order.
    @inlinable
    func finish(_ done: Finished) {
        var next: Finished? = monitor.withLock {
            if turn == Int.max {  // an earlier chunk failed: dropped
                buffers.append(done.out)
                inFlight -= 1
                return nil
            }
            parked[done.chunk.index] = done
            guard turn == done.chunk.index else { return nil }
            return parked.removeValue(forKey: turn)
        }
        // This thread holds the turn until it finds no parked chunk to write.
        while var f = next {
            if !f.chunk.endsAtRecord { f = settle(f) }
            var error = f.error
            let keptPartOfKey = error != nil && f.out.keepsPartOfKey
            do {
                try write(f.out, leadingSelect: f.started ? nil : f.sink.leadingSelect, skipping: f.cut.skip)
            } catch let e {
                if error == nil { error = e }
            }
            let selected = f.sink.selectedDatabase
            next = monitor.withLock {
                if let selected { db = selected }
                doneOffset = f.chunk.offsets.upperBound
                if !f.chunk.endsAtRecord {
                    cutCounts.chunks += 1
                    doneOffset = f.chunk.baseOffset + f.cut.end
                    chainEnd = doneOffset
                    chainDB = f.cut.endDB
                    if f.cut.stopped && !cutStop {
                        cutStop = true
                        cutCounts.stops += 1
                    }
                    keysCounted += f.cut.keys
                }
                finished.append(f.sink)
                buffers.append(f.out)
                inFlight -= 1
                if let error {
                    failure = error
                    failureKeptPartOfKey = keptPartOfKey
                    failureIndex = f.chunk.index
                    turn = Int.max  // nothing after this chunk is written
                    // Chunks parked after it are dropped.
                    for (_, p) in parked { buffers.append(p.out); inFlight -= 1 }
                    parked.removeAll()
                    return nil
                }
                turn += 1
                return parked.removeValue(forKey: turn)
            }
        }
        monitor.broadcast()
    }

    /// Writes what `out` holds (the caller holds the turn), without a leading SELECT of the database the
    /// target is in already.
    @inlinable
    func write(_ out: OutputBuffer, leadingSelect lead: (db: Int, bytes: Int)?, skipping bytes: Int = 0) throws {
        var skip = bytes
        if bytes == 0, let lead, lead.db == monitor.withLock({ db }) { skip = lead.bytes }
        try out.handOff(to: target!, skipping: skip)
    }

    @inlinable
    func waitForTurn(_ index: Int) throws {
        let mine = monitor.withLock { () -> Bool in
            monitor.wait { turn >= index }
            return turn == index
        }
        if !mine { throw Abandoned() }
    }
}
