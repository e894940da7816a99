import ObjectStore
import RDBImport
import RDBMigration
import RDBReplication
import RDBSinks
import Synchronization

/// How a run ended, as the store records it.
struct TaskOutcome: Sendable {
    var status: TaskStatus
    var report: String?
    var failure: String?
}

/// Why a run was asked to stop: the API (the task ends TERMINATED), the service shutting down or the lease
/// lost (the task stays MIGRATING, to be resumed).
enum StopReason: Sendable, Equatable {
    case requested, shutdown, leaseLost
}

/// One run of a task: blocks in `run()` on a thread of its own; `snapshot()` and `stop(_:)` come from the
/// worker's heartbeat on other threads.
protocol TaskExecution: AnyObject, Sendable {
    func run() -> TaskOutcome
    func stop(_ reason: StopReason)
    /// Phase, progress and checkpoint to save with the next lease renewal.
    func snapshot() -> TaskUpdate
    /// Totals for the metrics: keys written, bytes sent, and the replication lag (online migrations).
    func totals() -> (keys: Int, bytes: Int, lagBytes: Int?)
    /// Why it was asked to stop (nil: it was not).
    var stopReason: StopReason? { get }
}

/// What every execution keeps under a lock: the progress the heartbeat reads.
struct ExecutionState {
    var phase = "checking"
    var progress: String?
    var checkpoint: String?
    var keys = 0
    var bytes = 0
    var lag: Int?
    var stop: StopReason?
}

/// A `backupfile_import` task: the files in order, from a folder or an S3-compatible bucket. A resumed
/// run starts at the first file not known to be wholly acknowledged and writes with replace semantics, so
/// nothing doubles.
final class ImportExecution: TaskExecution, @unchecked Sendable {
    let runner: MigrationRunner
    let first: Int
    private let state = Mutex(ExecutionState())
    /// Keys read when each file was first seen (an upper bound of the keys read before it).
    private var keysAtFileStart: [Int: Int] = [:]

    init(runner: MigrationRunner, firstFile: Int) {
        self.runner = runner
        first = min(firstFile, runner.files.count)
        runner.firstFile = first
        state.withLock {
            $0.checkpoint = Self.checkpoint(filesDone: first)
            $0.phase = "importing"
        }
        runner.onProgress = { [unowned self] p in self.progressed(p) }
    }

    static func checkpoint(filesDone: Int) -> String { "{\"files_done\":\(filesDone)}" }

    /// The files a checkpoint says were imported whole.
    static func filesDone(_ checkpoint: String?) -> Int {
        guard let c = checkpoint, let r = c.range(of: "\"files_done\":") else { return 0 }
        return Int(c[r.upperBound...].prefix(while: \.isNumber)) ?? 0
    }

    func progressed(_ p: ImportProgress) {
        let index = first + p.fileIndex
        if keysAtFileStart[index] == nil { keysAtFileStart[index] = p.keysRead }
        // The importer settles at each file boundary (`settleEachFile`): the files before are wholly in.
        let done = first + p.filesAcknowledged
        var j = JSONBuilder()
        j.beginObject()
        j.field("phase", "importing")
        j.field("files_total", runner.files.count)
        j.field("files_done", done)
        j.field("resumed_past", first)
        j.key("files")
        j.beginArray()
        for (i, f) in runner.files.enumerated() {
            j.beginObject()
            j.field("file_name", f.file.fileName)
            j.field("state", i < done ? "done" : i == index ? "importing" : i < index ? "acknowledging" : "pending")
            if i == index {
                // For an object: bytes of the object read (compressed bytes for a compressed one).
                let stats = runner.objects?.stats(p.file)
                j.field("bytes_read", stats?.bytesRead ?? p.inputOffset)
                j.field("size", stats?.size ?? p.inputSize ?? f.size)
                j.field("keys_read", p.keysRead - (keysAtFileStart[i] ?? 0))
            } else if i < index, i >= first, let a = keysAtFileStart[i], let b = keysAtFileStart[i + 1] {
                j.field("keys_read", b - a)
                j.field("size", f.size)
            } else {
                j.field("size", f.size)
            }
            j.endObject()
        }
        j.endArray()
        j.field("keys_read", p.keysRead)
        j.field("keys_acknowledged", p.keysAcknowledged)
        j.field("bytes_sent", p.bytesSent)
        j.field("problems", p.problems)
        j.key("seconds")
        j.seconds(p.seconds)
        j.endObject()
        let text = j.text
        state.withLock {
            $0.progress = text
            $0.checkpoint = Self.checkpoint(filesDone: done)
            $0.keys = p.keysAcknowledged
            $0.bytes = p.bytesSent
        }
    }

    func run() -> TaskOutcome {
        let (report, json) = runner.run()
        let status = MigrationRunner.taskStatus(report)
        return TaskOutcome(status: status, report: json, failure: status == .success ? nil : report.failure ?? report.status.rawValue)
    }

    func stop(_ reason: StopReason) {
        state.withLock { if $0.stop == nil { $0.stop = reason } }
        runner.stop()
    }

    func snapshot() -> TaskUpdate {
        state.withLock { TaskUpdate(phase: $0.stop == nil ? $0.phase : "stopping", progress: $0.progress, checkpoint: $0.checkpoint) }
    }

    func totals() -> (keys: Int, bytes: Int, lagBytes: Int?) { state.withLock { ($0.keys, $0.bytes, nil) } }

    var stopReason: StopReason? { state.withLock { $0.stop } }
}

/// An `online_migration` task: the sync engine as a replica of the source. Its replication checkpoint is
/// a file in the service's state folder, copied into the store with each renewal, so that a run resumed
/// anywhere (another service of a shared store) continues from it.
final class OnlineExecution: TaskExecution, @unchecked Sendable {
    let runner: OnlineMigrationRunner
    let checkpointPath: String?
    private let state = Mutex(ExecutionState())

    init(runner: OnlineMigrationRunner, checkpointPath: String?) {
        self.runner = runner
        self.checkpointPath = checkpointPath
        state.withLock { $0.phase = "full_sync" }
        runner.engine.onStatus = { [unowned self] s in self.progressed(s) }
    }

    func progressed(_ s: SyncStatus) {
        let checkpoint = checkpointPath.flatMap { readSmallFile($0, limit: 1 << 20) }
        state.withLock {
            $0.phase = s.phase == .snapshot ? "full_sync" : "incremental"
            var j = JSONBuilder()
            j.beginObject()
            j.field("phase", $0.phase)
            j.field("source_offset", Int(s.sourceOffset))
            j.field("applied_offset", Int(s.appliedOffset))
            j.field("lag_bytes", Int(s.lagBytes))
            j.field("keys", s.keys)
            j.field("commands", s.commands)
            j.endObject()
            $0.progress = j.text
            if let checkpoint { $0.checkpoint = checkpoint }
            $0.keys = s.keys + s.commands
            $0.lag = Int(s.lagBytes)
        }
    }

    func run() -> TaskOutcome {
        let (report, json) = runner.run()
        let requested = state.withLock { $0.stop } == .requested
        if report.status == .failed {
            return TaskOutcome(status: .failed, report: json, failure: report.failure ?? "the sync failed")
        }
        // A stop asked through the API ends the task TERMINATED (an incremental migration stops cleanly:
        // what was received is applied first).
        return TaskOutcome(status: requested ? .terminated : .success, report: json, failure: requested ? "stopped on request" : nil)
    }

    func stop(_ reason: StopReason) {
        state.withLock { if $0.stop == nil { $0.stop = reason } }
        runner.stop()
    }

    func snapshot() -> TaskUpdate {
        state.withLock { TaskUpdate(phase: $0.stop == nil ? $0.phase : "stopping", progress: $0.progress, checkpoint: $0.checkpoint) }
    }

    func totals() -> (keys: Int, bytes: Int, lagBytes: Int?) { state.withLock { ($0.keys, $0.bytes, $0.lag) } }

    var stopReason: StopReason? { state.withLock { $0.stop } }
}
