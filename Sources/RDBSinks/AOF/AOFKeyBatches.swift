#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RDBKit

/// The keys named but not counted yet, in batches, for an `AOFKeyTable`: `touch` copies the key's name
/// (zero-padded to a word) with its hash, database and length into the batch being filled (the command's bytes are gone by the
/// time it is counted), and a full batch is counted by a worker thread while the next one fills, so that the
/// table's cache misses overlap the parsing of the file (on one core, or without a thread, a batch is counted
/// in place). `countPending` counts what is batched and waits for the worker: the table is read after it.
///
/// Its own object, apart from the table's: the fields written per key here and those the worker writes per
/// key there are on different cache lines (one object made the two threads take turns at its lines, and was
/// no faster than one thread). `AOFKeys` copies it (`copy`) before a copy of the sink changes it.
final class AOFKeyBatches {
    let table: AOFKeyTable
    static var batchBytes: Int { 1 << 16 }
    /// The batch being filled, and the other one (counted by the worker, or free).
    var fill: UnsafeMutableRawPointer
    var fillUsed = 0
    var fillCapacity: Int
    var spare: UnsafeMutableRawPointer
    var spareCapacity: Int
    /// Counts full batches, once a first batch is full and a second core is there.
    var worker: Worker?
    /// Where the reader is in the file: the offset of the command whose keys are being batched.
    var position = 0
    /// Whether a worker may be started (not when the file is read in two parts, each counting its own keys on
    /// one of the cores).
    var mayStartWorker = true

    init(table: AOFKeyTable = AOFKeyTable()) {
        self.table = table
        fillCapacity = Self.batchBytes
        fill = .allocate(byteCount: fillCapacity, alignment: 64)
        spareCapacity = Self.batchBytes
        spare = .allocate(byteCount: spareCapacity, alignment: 64)
    }

    deinit {
        worker?.stop()
        fill.deallocate()
        spare.deallocate()
    }

    /// The same keys, counted (nothing batched), with a table of its own.
    func copy() -> AOFKeyBatches {
        countPending()
        let b = AOFKeyBatches(table: table.copy())
        b.mayStartWorker = mayStartWorker
        return b
    }

    /// Batches a key named by a command (or held by a preamble), handing the batch over when it is full. The name
    /// is copied a word at a time, each word mixed into the table's seeded hash (`AOFKeyTable.hash`) of the
    /// database and the name as it goes (the last word zero-padded; SipHash through `Hasher` was a fifth of the
    /// lookups, and hashing the copy after `memcpy` waited on its stores).
    @inline(__always)
    func touch(_ db: Int, _ b: UnsafeRawBufferPointer, preamble: Bool) {
        let n = b.count
        let size = AOFKeyTable.recordBytes(n)
        if fillUsed &+ size > fillCapacity { makeRoom(size) }
        let q = fill + fillUsed
        let name = q + 16
        var h = AOFKeyTable.mix(table.seed, UInt64(truncatingIfNeeded: db) &+ UInt64(truncatingIfNeeded: n) &<< 32)
        var i = 0
        if let p = b.baseAddress {
            while n &- i >= 8 {
                let w = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                name.storeBytes(of: w, toByteOffset: i, as: UInt64.self)
                h = AOFKeyTable.mix(h, w)
                i &+= 8
            }
            let rest = n &- i
            if rest > 0 {
                // The last bytes as a zero-padded word, read without a loop: the word ending at the name's end,
                // shifted, or (under 8 bytes in all) overlapping loads whose common bytes agree.
                let w: UInt64
                if n >= 8 {
                    w = p.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self) &>> UInt64((8 &- rest) &* 8)
                } else if rest >= 4 {
                    w = UInt64(p.loadUnaligned(as: UInt32.self))
                        | UInt64(p.loadUnaligned(fromByteOffset: rest &- 4, as: UInt32.self)) &<< UInt64((rest &- 4) &* 8)
                } else {
                    w = UInt64(p.load(as: UInt8.self)) | UInt64(p.load(fromByteOffset: rest &>> 1, as: UInt8.self)) &<< UInt64((rest &>> 1) &* 8)
                        | UInt64(p.load(fromByteOffset: rest &- 1, as: UInt8.self)) &<< UInt64((rest &- 1) &* 8)
                }
                name.storeBytes(of: w, toByteOffset: i, as: UInt64.self)
                h = AOFKeyTable.mix(h, w)
            }
        }
        q.storeBytes(of: h, as: UInt64.self)
        q.storeBytes(of: AOFKeyTable.keyWord(db, n) | (preamble ? AOFKeyTable.preambleBit : 0), toByteOffset: 8, as: UInt64.self)
        fillUsed &+= size
    }

    /// Counts what `part` counted (its batches counted first) after what this has, in the order first seen,
    /// keys in database -1 being in `dbAtStart`. The part's table has the same seed (`partBatches`).
    func merge(_ part: AOFKeyBatches, dbAtStart: Int) {
        countPending()
        part.countPending()
        table.merge(part.table, dbAtStart: dbAtStart)
    }

    /// Room in the table for `keys` more keys (the keys an RDB preamble says a database holds), once what is
    /// batched is counted.
    func reserve(_ keys: Int) {
        countPending()
        table.reserve(keys)
    }

    /// Batches for the part of a split file: the same seed, so that the part's hashes hold in this table.
    func partBatches() -> AOFKeyBatches {
        let part = AOFKeyBatches(table: AOFKeyTable(seed: table.seed))
        part.mayStartWorker = false
        return part
    }

    /// Hands the batch over, and grows the next one if a key of `size` bytes does not fit it.
    func makeRoom(_ size: Int) {
        handOver()
        if size > fillCapacity {
            fill.deallocate()
            fillCapacity = size
            fill = .allocate(byteCount: fillCapacity, alignment: 64)
        }
    }

    /// Has the batch counted: by the worker (started at the first full batch when there is a second core),
    /// while the other batch fills; else here (also the last batch of an input too small to fill one).
    func handOver(last: Bool = false) {
        guard fillUsed > 0 else { return }
        if worker == nil && !last && mayStartWorker && availableCores() > 1 { worker = Worker(table) }
        if let worker, worker.take(fill, fillUsed, upTo: position) {
            swap(&fill, &spare)
            swap(&fillCapacity, &spareCapacity)
        } else {
            worker = nil
            table.countBatch(fill, fillUsed, upTo: position)
        }
        fillUsed = 0
    }

    /// Counts every batched key, in the order they were named, and waits until the worker is done.
    func countPending() {
        handOver(last: true)
        worker?.waitUntilIdle()
    }

    /// A thread that counts the batches handed to it, one at a time, in order.
    final class Worker {
        let monitor = Monitor()
        var batch: (UnsafeMutableRawPointer, Int, Int)?
        var busy = false
        var stopping = false
        var thread: pthread_t?

        /// Starts the thread (stopped by `stop`); nil when no thread can be made.
        init?(_ table: AOFKeyTable) {
            let thread = startThread { [self] in
                while true {
                    var job: (UnsafeMutableRawPointer, Int, Int)?
                    monitor.withLock {
                        monitor.wait { batch != nil || stopping }
                        job = batch
                        batch = nil
                        busy = job != nil
                    }
                    guard let (base, used, position) = job else { return }
                    table.countBatch(base, used, upTo: position)
                    monitor.withLock { busy = false }
                    monitor.broadcast()
                }
            }
            guard let thread else { return nil }
            self.thread = thread
        }

        /// Hands a batch over once the one before is counted (false: the thread is gone).
        func take(_ base: UnsafeMutableRawPointer, _ used: Int, upTo position: Int) -> Bool {
            let taken = monitor.withLock {
                monitor.wait { (batch == nil && !busy) || stopping }
                if stopping { return false }
                batch = (base, used, position)
                return true
            }
            monitor.broadcast()
            return taken
        }

        func waitUntilIdle() {
            monitor.withLock { monitor.wait { batch == nil && !busy } }
        }

        /// Counts what it holds, then ends the thread.
        func stop() {
            monitor.withLock {
                monitor.wait { batch == nil && !busy }
                stopping = true
            }
            monitor.broadcast()
            if let thread { pthread_join(thread, nil) }
            self.thread = nil
        }
    }

}
