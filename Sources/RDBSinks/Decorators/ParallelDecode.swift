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
}

extension ChunkableSink {
    public var selectedDatabase: Int? { nil }
    public var leadingSelect: (db: Int, bytes: Int)? { nil }

    /// Decodes a memory-mapped RDB with `threads` threads decoding chunks of about `chunkBytes` (see
    /// `RDBReader.decodeChunked`). Inlinable, like everything the threads run, so that the decoding is
    /// specialized for the sink in the caller's module.
    @inlinable
    public mutating func decodeInParallel(_ input: InputBuffer, options: RDBDecoderOptions, threads: Int,
                                          chunkBytes: Int = ParallelDecode<Self>.defaultChunkBytes,
                                          progress: ProgressReporter? = nil) throws -> RDBSummary {
        var runner = ParallelDecode<Self>(options: options, threads: threads)
        runner.progress = progress
        // Started here, where the sink's type is known: the threads run code specialized for it (the
        // reader calls the runner through its protocol, unspecialized, for queueing only).
        runner.start()
        defer { runner.shutdown() }
        return try RDBReader.decodeChunked(input, into: &self, runner: &runner, options: options,
                                           chunkBytes: chunkBytes, maxChunkRecord: chunkBytes)
    }
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
    /// Output a chunk may hold before it waits for its turn to write.
    @inlinable static var spillBytes: Int { 4 << 20 }

    @usableFromInline let state: ParallelState<Sink>
    @usableFromInline let threads: Int
    @usableFromInline var started: [pthread_t] = []
    /// Told of each chunk as it is cut (on the decoding thread).
    public var progress: ProgressReporter?

    @inlinable
    public init(options: RDBDecoderOptions, threads: Int) {
        state = ParallelState(options: options, maxInFlight: max(2, threads * 2))
        self.threads = max(1, threads)
    }

    @inlinable
    public var releasableOffset: Int { state.monitor.withLock { state.doneOffset } }

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
        }
    }

    /// Starts the threads (if none can be started, `submit` decodes each chunk on the calling thread).
    @inlinable
    public mutating func start() {
        let s = state
        while started.count < threads, let t = startThread({ s.work() }) { started.append(t) }
    }

    @inlinable
    public mutating func submit(_ chunk: RDBChunk, region: UnsafeRawBufferPointer) throws {
        progress?.advance(to: chunk.offsets.upperBound, keys: chunk.keys)
        if started.isEmpty {
            state.monitor.withLock {
                state.queue.append((chunk, region))
                state.inFlight += 1
            }
            state.drainQueue()
            return
        }
        state.monitor.withLock {
            state.monitor.wait { state.inFlight < state.maxInFlight || state.failure != nil }
            state.queue.append((chunk, region))
            state.inFlight += 1
        }
        state.monitor.broadcast()
    }

    @inlinable
    public mutating func drain(into sink: inout Sink) throws {
        let (finished, failure) = state.monitor.withLock { () -> ([Sink], (any Error)?) in
            state.monitor.wait { state.inFlight == 0 || state.failure != nil && state.failureWritten }
            let f = state.finished
            state.finished.removeAll()
            return (f, state.failure)
        }
        for chunk in finished { sink.absorb(chunk) }
        if let failure {
            shutdown()
            throw failure
        }
    }

    /// Stops the threads (after the chunks in flight, or at once after a failure) and waits for them.
    @inlinable
    public mutating func shutdown() {
        state.monitor.withLock { state.stopping = true }
        state.monitor.broadcast()
        for t in started { pthread_join(t, nil) }
        started.removeAll()
    }
}

/// What `ParallelDecode`'s threads share, under `monitor`.
@usableFromInline
final class ParallelState<Sink: ChunkableSink>: @unchecked Sendable {
    @usableFromInline let monitor = Monitor()
    @usableFromInline let options: RDBDecoderOptions
    @usableFromInline let maxInFlight: Int
    @usableFromInline var template: Sink?
    @usableFromInline var target: OutputTarget?
    /// Chunks waiting for a thread, in file order.
    @usableFromInline var queue: [(chunk: RDBChunk, region: UnsafeRawBufferPointer)] = []
    @usableFromInline var queueHead = 0
    /// Chunks submitted and not finished.
    @usableFromInline var inFlight = 0
    /// The chunk whose output goes next.
    @usableFromInline var turn = 0
    /// The database the target is in after the output written so far.
    @usableFromInline var db: Int?
    /// Where the last finished chunk ends (absolute).
    @usableFromInline var doneOffset = 0
    /// Finished chunk sinks, in file order, not yet folded into the main sink.
    @usableFromInline var finished: [Sink] = []
    /// The first error (in file order), and whether the output before it is written.
    @usableFromInline var failure: (any Error)?
    @usableFromInline var failureIndex = Int.max
    @usableFromInline var failureWritten = false
    @usableFromInline var stopping = false

    @inlinable
    init(options: RDBDecoderOptions, maxInFlight: Int) {
        self.options = options
        self.maxInFlight = maxInFlight
    }

    /// A thread: takes chunks in order until told to stop. Its output buffer serves all its chunks (a
    /// finished chunk's sink no longer writes to it).
    @inlinable
    func work() { take(waiting: true) }

    /// Without threads: decodes the queued chunks on the calling thread.
    @usableFromInline
    func drainQueue() { take(waiting: false) }

    @inlinable
    func take(waiting: Bool) {
        let out = OutputBuffer(target: nil, flushThreshold: 1 << 16)
        while true {
            let next: (chunk: RDBChunk, region: UnsafeRawBufferPointer, template: Sink)? = monitor.withLock {
                if waiting { monitor.wait { queueHead < queue.count || stopping } }
                guard queueHead < queue.count, let template else { return nil }
                let item = queue[queueHead]
                queueHead += 1
                if queueHead == queue.count {
                    queue.removeAll(keepingCapacity: true)
                    queueHead = 0
                }
                return (item.chunk, item.region, template)
            }
            guard let next else { return }
            run(next.chunk, next.region, next.template, out)
        }
    }

    @usableFromInline struct Abandoned: Error {
        @inlinable init() {}
    }

    /// Decodes one chunk and writes its output on its turn.
    @inlinable
    func run(_ chunk: RDBChunk, _ region: UnsafeRawBufferPointer, _ template: Sink, _ out: OutputBuffer) {
        out.reset()
        if monitor.withLock({ turn == Int.max }) {  // an earlier chunk failed: nothing after it is written
            monitor.withLock { inFlight -= 1 }
            monitor.broadcast()
            return
        }
        var sink = template.chunkSink(out: out)
        var first = true
        /// Writes what `out` holds once it is this chunk's turn (the leading SELECT left out if redundant).
        func handOn(_ sink: Sink) throws {
            try waitForTurn(chunk.index)
            var skip = 0
            if first, let lead = sink.leadingSelect, lead.db == monitor.withLock({ db }) { skip = lead.bytes }
            first = false
            try out.handOff(to: target!, skipping: skip)
        }
        do {
            try RDBReader.decodeChunk(chunk, region: region, options: options, into: &sink) { s in
                if out.pendingCount >= ParallelDecode<Sink>.spillBytes { try handOn(s) }
            }
            try handOn(sink)
            let selected = sink.selectedDatabase
            monitor.withLock {
                if let selected { db = selected }
                doneOffset = chunk.offsets.upperBound
                finished.append(sink)
                turn += 1
                inFlight -= 1
            }
        } catch is Abandoned {
            monitor.withLock { inFlight -= 1 }
        } catch {
            // The keys before the error, then the error; the chunks after it are abandoned.
            out.rollback()
            var written = false
            if (try? handOn(sink)) != nil { written = true }
            let selected = sink.selectedDatabase
            monitor.withLock {
                if written, let selected { db = selected }
                if chunk.index < failureIndex {
                    failure = error
                    failureIndex = chunk.index
                }
                failureWritten = true
                finished.append(sink)
                turn = Int.max  // nothing after this chunk is written
                inFlight -= 1
            }
        }
        monitor.broadcast()
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
