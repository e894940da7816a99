import NIOCore
import RDBKit

/// Where batches go: one target's pipeline (a single server, or one master of a cluster), the batch
/// being filled for it, and the database its command stream is in.
final class Lane {
    let pipeline: ImportPipeline?
    var batch: Batch
    var streamDB: Int?
    /// Commands and bytes of the records added for it (per-shard counts of a cluster import).
    var commands = 0
    var bytes = 0
    /// A cluster master with replicas: a `WAIT` follows every `BatchBuilder.confirmBytes` of records.
    var confirm = false
    /// Bytes of records since its last `WAIT`.
    var sinceWait = 0

    init(pipeline: ImportPipeline?, batch: Batch) {
        self.pipeline = pipeline
        self.batch = batch
    }
}

/// Gathers records into batches on the decoding thread and hands full batches to the pipeline (which
/// blocks while its window is full). Writes the `SELECT`s the records need.
///
/// A cluster import has a lane per master (`lanes`); `use(lane:)` switches between records, and
/// `batch`/`streamDB` are always the current lane's.
final class BatchBuilder {
    private(set) var lanes: [Lane]
    /// The current lane.
    private(set) var lane = 0
    var pipeline: ImportPipeline? { lanes[lane].pipeline }
    /// Routes keys to lanes (cluster targets; nil for a single server).
    var cluster: ClusterRouting?
    let problems: ProblemLog
    let allocator = ByteBufferAllocator()
    /// A batch is handed over once it holds this many bytes (or `maxCommands` commands).
    let maxBytes: Int
    /// What a batch's buffer is allocated with: the bytes asked for rounded up to a power of two, as NIO
    /// rounds a `ByteBuffer`'s capacity, with room past `maxBytes` for what closes a record. (Asking for
    /// 256 KiB and 4 KiB of room allocated 512 KiB, half of it used: the freed batches' heap stayed resident,
    /// twice the bytes in flight.)
    let batchCapacity: Int
    let maxCommands: Int
    @exclusivity(unchecked) var batch: Batch
    /// The database the target is in after everything added so far.
    @exclusivity(unchecked) var streamDB: Int?
    /// Set when the pipeline refused a batch (the import stopped).
    @exclusivity(unchecked) var stopped = false
    @exclusivity(unchecked) var stats: [DecodeCounters] = []
    @exclusivity(unchecked) var keysSent = 0
    /// Called after each batch handed over.
    var onBatch: (() -> Void)?

    // The open record.
    @exclusivity(unchecked) var recordStart = 0
    @exclusivity(unchecked) var recordCommands = 0
    @exclusivity(unchecked) var recordDB = 0
    @exclusivity(unchecked) var recordOpen = false

    // The open run of plain strings (`addString`): the `key value` arguments of its `MSET`, and the keys'
    // length, offset and name for the report. Closed (into the batch) before anything else is added.
    @exclusivity(unchecked) var run: ByteBuffer
    @exclusivity(unchecked) var runNames: ByteBuffer
    @exclusivity(unchecked) var runKeys = 0
    @exclusivity(unchecked) var runDB = 0
    @exclusivity(unchecked) var runFile = 0
    @exclusivity(unchecked) var runOffset = 0
    /// Most keys, and bytes of arguments, in one `MSET` (0 or 1 keys: every string goes as its own `SET`).
    var maxRunKeys = 0
    var maxRunBytes = 256 << 10

    init(pipeline: ImportPipeline?, problems: ProblemLog, maxBytes: Int, maxCommands: Int) {
        self.problems = problems
        (self.maxBytes, batchCapacity) = Self.sizes(filling: maxBytes)
        self.maxCommands = max(1, maxCommands)
        batch = Batch(allocator: allocator, capacity: batchCapacity)
        lanes = [Lane(pipeline: pipeline, batch: batch)]
        run = allocator.buffer(capacity: 0)
        runNames = allocator.buffer(capacity: 0)
    }

    /// The fill threshold and allocation of batches asked to hold `bytes`: the smallest power of two that holds
    /// them, filled to `bytes` or to 4 KiB short of its end (the room for what closes a record), whichever
    /// is less.
    static func sizes(filling bytes: Int) -> (maxBytes: Int, capacity: Int) {
        let room = 4096
        let wanted = max(bytes, 2 * room)
        let capacity = 1 << (Int.bitWidth - (wanted - 1).leadingZeroBitCount)
        return (min(wanted, capacity - room), capacity)
    }

    /// Adds a lane for another pipeline (a cluster master); returns its index.
    func addLane(_ pipeline: ImportPipeline) -> Int {
        lanes.append(Lane(pipeline: pipeline, batch: Batch(allocator: allocator, capacity: batchCapacity)))
        return lanes.count - 1
    }

    /// Makes `i` the current lane (between records).
    @inline(__always)
    func use(lane i: Int) {
        guard i != lane else { return }
        precondition(!recordOpen, "BatchBuilder: lane switched inside a record")
        closeRun()
        let l = lanes[lane]
        l.batch = batch
        l.streamDB = streamDB
        lane = i
        batch = lanes[i].batch
        streamDB = lanes[i].streamDB
    }

    /// Records between two `WAIT`s on a cluster master with replicas: what a failover may make the import
    /// send again.
    var confirmBytes = 4 << 20
    /// How long a `WAIT` waits for a replica.
    static let waitTimeoutMs = 1000

    /// Appends a `WAIT 1 <ms>` to the current lane (between records).
    func appendWait() {
        closeRun()
        let start = batch.buffer.writerIndex
        Commands.wait(&batch.buffer, replicas: 1, timeoutMs: Self.waitTimeoutMs)
        batch.records.append(Record(
            start: start - batch.buffer.readerIndex, length: batch.buffer.writerIndex - start, commands: 1,
            db: streamDB ?? 0, file: 0, kind: .wait))
        batch.commands += 1
        lanes[lane].sinceWait = 0
    }

    /// Whether a batch holds records not handed to a pipeline yet.
    var holdsRecords: Bool {
        if !batch.records.isEmpty || runKeys > 0 { return true }
        return lanes.indices.contains { $0 != lane && !lanes[$0].batch.records.isEmpty }
    }

    /// Hands every lane's batch to its pipeline.
    func flushAll() {
        let current = lane
        for i in lanes.indices {
            use(lane: i)
            flush()
        }
        use(lane: current)
    }

    /// The target databases records were written to (for a replication stream's resync), and who hears
    /// of each new one.
    var databasesWritten: Set<Int> = []
    var onNewDatabase: ((Int) -> Void)?

    /// Makes the target be in `db` before the next record.
    func select(_ db: Int, file: Int) {
        closeRun()
        guard streamDB != db else { return }
        if databasesWritten.insert(db).inserted { onNewDatabase?(db) }
        let start = batch.buffer.writerIndex
        Commands.select(&batch.buffer, db)
        batch.records.append(Record(start: start, length: batch.buffer.writerIndex - start, commands: 1, db: db, file: file, kind: .select))
        batch.commands += 1
        streamDB = db
        batch.endDB = db
    }

    /// Opens a record that runs in `db`.
    func begin(db: Int, file: Int) {
        select(db, file: file)  // (closes the open run first)
        recordStart = batch.buffer.writerIndex
        recordCommands = 0
        recordDB = db
        recordOpen = true
    }

    /// Moves the open record, as written so far, to lane `i` (an AOF `MULTI` block whose slot is known once
    /// its first key is).
    func moveOpenRecord(to i: Int, file: Int) {
        guard i != lane, recordOpen else { return }
        let written = batch.buffer.getSlice(at: recordStart, length: batch.buffer.writerIndex - recordStart) ?? ByteBuffer()
        let db = recordDB
        let commands = recordCommands
        abandon()
        use(lane: i)
        begin(db: db, file: file)
        batch.buffer.writeImmutableBuffer(written)
        recordCommands = commands
    }

    /// Drops the open record (an AOF block the import cannot finish).
    func abandon() {
        guard recordOpen else { return }
        recordOpen = false
        batch.buffer.moveWriterIndex(to: recordStart)
        recordCommands = 0
    }

    /// Appends commands to the open record.
    func append(_ bytes: UnsafeRawBufferPointer, commands: Int) {
        batch.buffer.writeBytes(bytes)
        recordCommands += commands
    }

    /// A `SELECT` inside the open record (an AOF `MULTI` block that changes database).
    func appendSelect(_ db: Int) {
        if databasesWritten.insert(db).inserted { onNewDatabase?(db) }
        Commands.select(&batch.buffer, db)
        recordCommands += 1
        streamDB = db
        batch.endDB = db
    }

    /// Closes the open record.
    func end(
        kind: RecordKind, name: UnsafeRawBufferPointer, file: Int, offset: Int, existsReply: Int = -1, temporary: Bool = false,
        deleteOnResend: Bool = false, part: KeyPart = .whole, hops: UInt8 = 0, tryAgainSince: Double = 0, inputEnd: Int = 0,
        keys: Int = 1
    ) {
        recordOpen = false
        let nameStart = batch.names.writerIndex - batch.names.readerIndex
        batch.names.writeBytes(name)
        let length = batch.buffer.writerIndex - recordStart
        batch.records.append(Record(
            start: recordStart - batch.buffer.readerIndex, length: length, commands: recordCommands, existsReply: existsReply,
            nameStart: nameStart, nameLength: name.count, keys: Int32(keys), db: recordDB, file: file, offset: offset, kind: kind,
            temporary: temporary, deleteOnResend: deleteOnResend, part: part, hops: hops, tryAgainSince: tryAgainSince,
            inputEnd: inputEnd))
        batch.commands += kind == .strings ? keys : recordCommands  // (the window's count: `Record.windowCommands`)
        if (kind == .key && !part.continues) || kind == .strings {
            batch.keys += keys
            keysSent += keys
        }
        stats[file].commandsSent += recordCommands
        stats[file].bytesSent += length
        if cluster != nil {
            let l = lanes[lane]
            l.commands += recordCommands
            l.bytes += length
            if l.confirm {
                l.sinceWait += length
                if l.sinceWait >= confirmBytes { appendWait() }
            }
        }
        if batch.buffer.readableBytes >= maxBytes || batch.commands >= maxCommands { flush() }
    }

    /// Adds one key: `[DEL key]`, the writer's commands, and for a key written under a temporary name
    /// `RENAMENX tmp key` (0 = the key exists) and `DEL tmp`. `deleteOnResend`: the key goes without a
    /// guard, and gets `DEL key` if it is resent.
    func addKey(
        _ bytes: UnsafeRawBufferPointer, commands: Int, name: [UInt8], db: Int, file: Int, offset: Int,
        deleteFirst: Bool, deleteOnResend: Bool = false, existsReply: Int, temporaryPrefix: [UInt8]?
    ) {
        begin(db: db, file: file)
        name.withUnsafeBytes { key in
            if deleteFirst {
                Commands.del(&batch.buffer, key)
                recordCommands += 1
            }
            append(bytes, commands: commands)
            var exists = existsReply
            if let prefix = temporaryPrefix {
                exists = recordCommands
                Commands.renameNX(&batch.buffer, key, tmpPrefix: prefix)
                Commands.del(&batch.buffer, key, prefix: prefix)
                recordCommands += 2
            }
            end(kind: .key, name: key, file: file, offset: offset, existsReply: exists, temporary: temporaryPrefix != nil,
                deleteOnResend: deleteOnResend)
        }
    }

    /// Adds a string written as a plain `SET key value` (`pair`: its `key` and `value` arguments, as RESP
    /// bulk strings) to the open run of such strings, which goes as one `MSET key value key value ...`: the
    /// server dispatches one command for the run instead of one per key, and a string store costs it little
    /// more than the dispatch. Only for keys whose `SET` overwrites with nothing else attached (no expiry,
    /// no `NX`, no guard, no temporary name): `MSET` does exactly that for each, and is as idempotent as the
    /// `SET`s when resent whole. A run is one database and one input file, and at most `maxRunKeys` keys or
    /// `maxRunBytes` bytes.
    func addString(_ pair: UnsafeRawBufferPointer, name: [UInt8], db: Int, file: Int, offset: Int) {
        if runKeys > 0 && (runDB != db || runFile != file) { closeRun() }
        if runKeys == 0 {
            runDB = db
            runFile = file
            runOffset = offset
        }
        run.writeBytes(pair)
        runNames.writeInteger(UInt32(name.count))
        runNames.writeInteger(Int64(offset))
        runNames.writeBytes(name)
        runKeys += 1
        if runKeys >= maxRunKeys || run.readableBytes >= maxRunBytes { closeRun() }
    }

    /// Adds the open run to the batch as one record: `MSET` (kind `.strings`), or `SET` for a run of one key.
    func closeRun() {
        guard runKeys > 0 else { return }
        let n = runKeys
        runKeys = 0  // (`begin` below would close it again)
        begin(db: runDB, file: runFile)
        if n == 1 {
            batch.buffer.writeStaticString("*3\r\n$3\r\nSET\r\n")
            batch.buffer.writeBuffer(&run)
            recordCommands = 1
            let length = Int(runNames.readInteger(as: UInt32.self)!)
            runNames.moveReaderIndex(forwardBy: 8)
            runNames.readWithUnsafeReadableBytes { names in
                end(kind: .key, name: UnsafeRawBufferPointer(rebasing: names.prefix(length)), file: runFile, offset: runOffset)
                return length
            }
        } else {
            batch.buffer.writeString("*\(2 * n + 1)\r\n$4\r\nMSET\r\n")
            batch.buffer.writeBuffer(&run)
            recordCommands = 1
            runNames.readWithUnsafeReadableBytes { names in
                end(kind: .strings, name: names, file: runFile, offset: runOffset, keys: n)
                return names.count
            }
        }
        run.clear()
        runNames.clear()
    }

    /// Hands the current batch to the pipeline.
    func flush() {
        closeRun()
        guard !batch.isEmpty else { return }
        let b = batch
        batch = Batch(allocator: allocator, capacity: batchCapacity)
        batch.endDB = nil
        if let pipeline {
            if stopped || !pipeline.submit(b) {
                stopped = true
                notSent(b)
            }
        }
        if let cluster, !recordOpen { cluster.drain() }
        onBatch?()
    }

    /// Reports the records of a batch that was not sent.
    func notSent(_ b: Batch) {
        for r in b.records where r.kind != .select {
            stats[r.file].commandsSent -= r.commands
            stats[r.file].bytesSent -= r.length
            guard r.isReported else { continue }
            if r.kind == .key || r.kind == .strings {
                stats[r.file].keysNotArrived += Int(r.keys)
                keysSent -= Int(r.keys)
            }
            for k in b.reportedKeys(of: r) {
                problems.add(.notSent, file: r.file, db: r.db, key: k.name, message: "not sent: the import stopped before it", offset: k.offset)
            }
        }
    }
}
