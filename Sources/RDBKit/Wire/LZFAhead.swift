#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Decompresses LZF blocks a few steps ahead of the decoder, on a second thread.
///
/// A long list is saved as thousands of small LZF-compressed quicklist nodes (a long stream likewise as
/// node listpacks), and decompressing them was more than half of the decoder's time on such files, while
/// the second core sat idle. The decoder posts
/// the next `depth` nodes to a ring of slots and walks node i while the worker decompresses the following
/// ones. Whoever gets to a posted block first decompresses it: when the decoder reaches a block the worker
/// has not started, it claims the block and decompresses it itself, so the two threads share the work and
/// the decoder never waits for a worker that is busy elsewhere (or not scheduled at all).
///
/// Protocol: slot k of the ring holds node `k mod depth`'s job. The decoder fills a slot's fields, then
/// stores `pending` (release) and bumps `posted`; a claim is a compare-exchange from `pending` to `worker`
/// or `main`, so each block is decompressed exactly once; the worker stores `done` (release) after it.
/// The decoder reuses a slot only once it has consumed the slot's node, and before it leaves a value it
/// `drain()`s: pending jobs are withdrawn and running ones waited for, so no job outlives the input it
/// points into. When there is nothing to do the worker spins briefly, then sleeps on a condition variable.
@usableFromInline
final class LZFAhead: @unchecked Sendable {
    /// Slots in the ring: how far ahead of the decoder the worker may run.
    @usableFromInline static let depth = 8
    /// Blocks up to this size are handed over; larger ones are decompressed by the decoder into its own
    /// scratch buffer, so the ring's buffers never hold more than `depth` small blocks.
    @usableFromInline static let maxBlock = 1 << 20
    /// Lists of fewer nodes than this are decoded without the worker (the hand-over is not worth it).
    @usableFromInline static let minimumNodes = 16

    @usableFromInline static let empty = 0
    @usableFromInline static let pending = 1
    @usableFromInline static let claimedByWorker = 2
    @usableFromInline static let claimedByDecoder = 3
    @usableFromInline static let done = 4

    /// One slot of the ring. `state` and, once claimed, `ok` are shared; the rest is written by the decoder
    /// before it publishes the slot. The fields skip dynamic exclusivity checks: `state`'s atomics order
    /// every access (a claimed slot has one owner).
    @usableFromInline
    final class Job: @unchecked Sendable {
        @usableFromInline let state = Atomic<Int>(0)
        @exclusivity(unchecked) @usableFromInline var source: UnsafeRawPointer?
        @exclusivity(unchecked) @usableFromInline var sourceCount = 0
        @exclusivity(unchecked) @usableFromInline var readable = 0
        @exclusivity(unchecked) @usableFromInline var output: UnsafeMutableRawPointer?
        @exclusivity(unchecked) @usableFromInline var capacity = 0
        @exclusivity(unchecked) @usableFromInline var outputCount = 0
        @exclusivity(unchecked) @usableFromInline var ok = false

        // Decoder-only: what the node is, for the decoder to consume it in order.
        @exclusivity(unchecked) @usableFromInline var kind = JobKind.block
        @exclusivity(unchecked) @usableFromInline var string = RDBString(integer: 0)
        @exclusivity(unchecked) @usableFromInline var nodeOffset = 0
        @exclusivity(unchecked) @usableFromInline var blobOffset = 0
        @exclusivity(unchecked) @usableFromInline var container: UInt64 = 0
        @exclusivity(unchecked) @usableFromInline var master = StreamID(ms: 0, seq: 0)
        @exclusivity(unchecked) @usableFromInline var error: (any Error)?

        init() {}
        deinit { free(output) }

        /// Makes room for `count` bytes (plus LZF's slack); false when memory is short.
        @usableFromInline
        func reserve(_ count: Int) -> Bool {
            if capacity >= count + ScratchBuffers.slack { return true }
            free(output)
            let cap = max(16 << 10, (count + ScratchBuffers.slack) * 2)
            output = malloc(cap)
            capacity = output == nil ? 0 : cap
            return output != nil
        }

        @usableFromInline
        func run() -> Bool {
            guard let source, let output else { return false }
            return LZF.decompress(
                UnsafeRawBufferPointer(start: source, count: sourceCount), readable: readable,
                into: UnsafeMutableRawBufferPointer(start: output, count: outputCount), writable: capacity)
        }

        /// The decompressed bytes.
        @usableFromInline var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: output, count: outputCount) }
    }

    @usableFromInline
    enum JobKind {
        /// An LZF block of at most `maxBlock` bytes, handed to the ring.
        case block
        /// A string the decoder already has (uncompressed in the input, or an integer).
        case string
        /// A large LZF block, decompressed by the decoder when it gets there.
        case large
        /// The node's framing is bad: `error` is thrown when the decoder gets there.
        case failed
    }

    @usableFromInline let jobs: [Job]
    /// Jobs posted so far (the worker takes slot `k mod depth` for the k-th).
    @usableFromInline let posted = Atomic<Int>(0)
    @usableFromInline let sleeping = Atomic<Bool>(false)
    let stop = Atomic<Bool>(false)
    let mutex: UnsafeMutablePointer<pthread_mutex_t>
    let cond: UnsafeMutablePointer<pthread_cond_t>
    var thread = pthread_t()

    /// Starts the worker; nil when no thread can be created (the decoder then decompresses inline).
    @usableFromInline
    init?() {
        jobs = (0..<LZFAhead.depth).map { _ in Job() }
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        guard let t = startThread({ [self] in work() }) else { return nil }
        thread = t
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Stops the worker thread (it holds a reference to this object until it returns).
    func shutdown() {
        stop.store(true, ordering: .sequentiallyConsistent)
        wake()
        pthread_join(thread, nil)
    }

    func work() {
        var taken = 0
        while true {
            if taken < posted.load(ordering: .sequentiallyConsistent) {
                let job = jobs[taken % LZFAhead.depth]
                if job.state.compareExchange(expected: LZFAhead.pending, desired: LZFAhead.claimedByWorker, ordering: .acquiring).exchanged {
                    job.ok = job.run()
                    job.state.store(LZFAhead.done, ordering: .releasing)
                }
                taken += 1
                continue
            }
            if stop.load(ordering: .sequentiallyConsistent) { return }
            // Idle: the decoder usually posts again within microseconds while it walks a list.
            var spins = 0
            while spins < 20_000 && taken == posted.load(ordering: .relaxed) && !stop.load(ordering: .relaxed) {
                if spins >= 16_000 { sched_yield() }
                spins += 1
            }
            if taken < posted.load(ordering: .sequentiallyConsistent) { continue }
            pthread_mutex_lock(mutex)
            sleeping.store(true, ordering: .sequentiallyConsistent)
            while taken == posted.load(ordering: .sequentiallyConsistent) && !stop.load(ordering: .sequentiallyConsistent) {
                pthread_cond_wait(cond, mutex)
            }
            sleeping.store(false, ordering: .sequentiallyConsistent)
            pthread_mutex_unlock(mutex)
        }
    }

    // MARK: decoder side

    /// Publishes a slot whose fields are filled: a `block` as pending work, anything else as already
    /// the decoder's (the worker skips it).
    @usableFromInline
    func post(_ job: Job) {
        job.state.store(job.kind == .block ? LZFAhead.pending : LZFAhead.claimedByDecoder, ordering: .releasing)
        posted.add(1, ordering: .sequentiallyConsistent)
        if sleeping.load(ordering: .sequentiallyConsistent) { wake() }
    }

    @usableFromInline @inline(never)
    func wake() {
        pthread_mutex_lock(mutex)
        pthread_cond_signal(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Makes a posted block's bytes available: decompresses it here if the worker has not started it;
    /// otherwise, while the worker finishes it, decompresses the newest blocks still pending (the worker
    /// takes them oldest first), so that the decoder shares the work instead of waiting. `ahead` are the
    /// posting numbers of the nodes after this one. Returns false when the data is corrupt.
    @usableFromInline
    func finish(_ job: Job, ahead: Range<Int>) -> Bool {
        if job.state.compareExchange(expected: LZFAhead.pending, desired: LZFAhead.claimedByDecoder, ordering: .acquiring).exchanged {
            job.ok = job.run()
            return job.ok
        }
        var spins = 0
        var helping = true
        while job.state.load(ordering: .acquiring) != LZFAhead.done {
            if helping {
                helping = false
                for k in ahead.reversed() {
                    let other = jobs[k % LZFAhead.depth]
                    if other.state.compareExchange(expected: LZFAhead.pending, desired: LZFAhead.claimedByDecoder, ordering: .acquiring).exchanged {
                        other.ok = other.run()
                        other.state.store(LZFAhead.done, ordering: .relaxed)
                        helping = true
                        break
                    }
                }
                continue
            }
            // The worker is a few microseconds from done: spin rather than give the core away.
            spins += 1
            if spins > 100_000 { sched_yield() }
        }
        return job.ok
    }

    /// Jobs posted so far: the next post goes to slot `postedCount mod depth` (the decoder is the only
    /// thread that posts).
    @usableFromInline var postedCount: Int { posted.load(ordering: .relaxed) }

    /// The decoder is done with a slot's node.
    @usableFromInline
    func release(_ job: Job) { job.state.store(LZFAhead.empty, ordering: .relaxed) }

    /// Withdraws what is still posted and waits for what the worker is running (before the decoder
    /// leaves a value, normally or by an error); every slot is empty afterwards.
    @usableFromInline
    func drain() {
        for job in jobs {
            if job.state.compareExchange(expected: LZFAhead.pending, desired: LZFAhead.empty, ordering: .acquiring).exchanged { continue }
            while job.state.load(ordering: .acquiring) == LZFAhead.claimedByWorker { sched_yield() }
            job.state.store(LZFAhead.empty, ordering: .relaxed)
            job.error = nil
        }
    }
}
