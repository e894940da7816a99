import Synchronization
import RDBMigration

/// One migration task as a store keeps it: the request (passwords taken out and sealed apart), where it
/// stands, and which worker holds it until when.
///
/// Times are Unix seconds (`Double`). JSON columns (`request`, `progress`, `checkpoint`, `report`) are text
/// the store keeps as given.
public struct TaskRecord: Sendable, Equatable {
    /// 32 hex digits.
    public var id: String
    public var projectID: String
    /// `task_name`.
    public var name: String
    /// The request body as given, with every password removed (JSON text).
    public var request: String
    /// The request's passwords, sealed with the service's key (`SecretBox`); nil when it had none.
    public var sealedSecrets: String?
    /// What two running tasks must not share: the target instance's id.
    public var target: String
    public var status: TaskStatus
    /// Where a MIGRATING task is: `queued` (waiting for a worker or for its target), then the runner's
    /// phases (`checking`, `importing`, `full_sync`, `incremental`, `stopping`); `done` at the end.
    public var phase: String
    public var createdAt: Double
    public var updatedAt: Double
    public var startedAt: Double?
    public var finishedAt: Double?
    /// The runner's progress (JSON text), saved with each lease renewal.
    public var progress: String?
    /// Where a resumed run continues (JSON text, the runner's own form).
    public var checkpoint: String?
    /// The final report (JSON text).
    public var report: String?
    /// Why it failed (or was terminated).
    public var failure: String?
    /// A stop was asked while a worker held it: the worker stops the run and ends it TERMINATED.
    public var stopRequested: Bool
    /// The worker holding the task, and until when; a task whose lease ran out is taken over.
    public var owner: String?
    public var leaseUntil: Double?
    /// How many times a worker has claimed it (a resume is a claim after the first).
    public var attempts: Int

    public init(id: String, projectID: String, name: String, request: String, sealedSecrets: String?, target: String,
                status: TaskStatus = .migrating, phase: String = "queued", createdAt: Double, updatedAt: Double? = nil,
                startedAt: Double? = nil, finishedAt: Double? = nil, progress: String? = nil, checkpoint: String? = nil,
                report: String? = nil, failure: String? = nil, stopRequested: Bool = false, owner: String? = nil,
                leaseUntil: Double? = nil, attempts: Int = 0) {
        self.id = id
        self.projectID = projectID
        self.name = name
        self.request = request
        self.sealedSecrets = sealedSecrets
        self.target = target
        self.status = status
        self.phase = phase
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.progress = progress
        self.checkpoint = checkpoint
        self.report = report
        self.failure = failure
        self.stopRequested = stopRequested
        self.owner = owner
        self.leaseUntil = leaseUntil
        self.attempts = attempts
    }
}

/// What a worker saves with a lease renewal (nil: unchanged).
public struct TaskUpdate: Sendable, Equatable {
    public var phase: String?
    public var progress: String?
    public var checkpoint: String?

    public init(phase: String? = nil, progress: String? = nil, checkpoint: String? = nil) {
        self.phase = phase
        self.progress = progress
        self.checkpoint = checkpoint
    }
}

/// What `TaskStore.delete` did.
public enum TaskDeletion: Sendable, Equatable {
    case deleted
    case notFound
    /// The task is still MIGRATING: stop it first.
    case running
}

/// Where tasks live: an embedded SQLite file (one service) or PostgreSQL (several services sharing tasks).
///
/// Every method is one atomic step. A task is run by the worker that `claim`ed it, for as long as it renews
/// its lease; a task whose lease ran out (its worker died, its service was killed) is claimable again, and
/// its new run continues from its `checkpoint`. Two tasks with the same `target` never hold live leases at
/// the same time.
public protocol TaskStore: Sendable {
    /// Creates or upgrades the tables.
    func prepare() async throws
    func insert(_ task: TaskRecord) async throws
    func task(project: String, id: String) async throws -> TaskRecord?
    /// A project's tasks, newest first, `name` (when given) matched exactly; and how many match in all.
    func list(project: String, name: String?, offset: Int, limit: Int) async throws -> (count: Int, tasks: [TaskRecord])
    /// Deletes a task that is no longer MIGRATING.
    func delete(project: String, id: String) async throws -> TaskDeletion
    /// Asks a task to stop. A MIGRATING task no live lease holds ends TERMINATED at once; one that a worker
    /// holds gets `stopRequested` (its worker stops the run and ends it). A finished task is left as it
    /// is. Returns the task as it is afterwards; nil when there is none.
    func requestStop(project: String, id: String, now: Double) async throws -> TaskRecord?
    /// Claims the oldest MIGRATING task (by `createdAt`) that no live lease holds and whose target no other
    /// live lease holds: sets `owner`, `leaseUntil = now + lease`, `attempts += 1`, `startedAt` if unset.
    func claim(owner: String, now: Double, lease: Double) async throws -> TaskRecord?
    /// Undoes the attempt a claim counted, when `owner` claimed a task it runs already (its lease had run out
    /// while the run went on): the lease the claim made live stays with the run, the attempts are as before.
    func takeBack(id: String, owner: String) async throws
    /// Extends `owner`'s lease on a task and saves `update`. Nil when `owner` no longer holds it (the lease
    /// ran out and another worker took it, or it was deleted); else whether a stop was asked.
    func renew(id: String, owner: String, now: Double, lease: Double, update: TaskUpdate) async throws -> Bool?
    /// Ends a task `owner` holds: its final status, report and reason; the lease is cleared, `phase` is
    /// `done`. False when `owner` no longer holds it (nothing is changed then).
    func finish(id: String, owner: String, status: TaskStatus, report: String?, failure: String?, now: Double) async throws -> Bool
    /// Lets go of every task `owner` holds, leaving them MIGRATING (a graceful shutdown: they are claimed
    /// again at once, by this service's next start or another service).
    func release(owner: String) async throws
    /// How many tasks there are in each status (for /metrics).
    func countByStatus() async throws -> [TaskStatus: Int]
    /// Closes connections.
    func close() async throws
}

/// A store call with an end: given up when a condition holds or a time limit passes, or when the calling task is
/// cancelled. Given up, the call is cancelled and left behind: what it gives later is dropped. (Waiting for it to
/// end once cancelled was not enough: in one CI run a claim or release waiting for a connection to a stopped
/// PostgreSQL did not end on its cancellation, and the pool went on retrying it for a minute.)
enum StoreCall {
    /// Runs `op`; `CancellationError` once `giveUp()` holds (checked every 10 ms while it runs) or the caller is
    /// cancelled, before `op` has answered.
    static func run<T: Sendable>(_ op: @escaping @Sendable () async throws -> T,
                                 givingUpWhen giveUp: @escaping @Sendable () -> Bool) async throws -> T {
        let call = Call<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
                call.start(c, Task {
                    do { call.end(.success(try await op())) } catch { call.end(.failure(error)) }
                })
                Task {
                    while !call.isEnded && !giveUp() { try? await Task.sleep(for: .milliseconds(10)) }
                    call.end(.failure(CancellationError()))
                }
            }
        } onCancel: {
            call.end(.failure(CancellationError()))
        }
    }

    /// Runs `op` for at most `limit`: `TaskStoreTimeout` when it was given up then.
    static func within<T: Sendable>(_ limit: Duration, _ op: @escaping @Sendable () async throws -> T) async throws -> T {
        let end = ContinuousClock.now + limit
        do {
            return try await run(op, givingUpWhen: { ContinuousClock.now >= end })
        } catch where ContinuousClock.now >= end {
            throw TaskStoreTimeout(limit: limit)
        }
    }

    /// One call: the caller's continuation, resumed once (by the call's answer, the give-up watcher or the
    /// caller's cancellation, whichever comes first), and the call's task, cancelled when it did not answer first.
    final class Call<T: Sendable>: Sendable {
        private let state = Mutex<(waiter: CheckedContinuation<T, any Error>?, work: Task<Void, Never>?, ended: Bool, early: Result<T, any Error>?)>(
            (nil, nil, false, nil))

        var isEnded: Bool { state.withLock { $0.ended } }

        func start(_ waiter: CheckedContinuation<T, any Error>, _ work: Task<Void, Never>) {
            let early: Result<T, any Error>? = state.withLock { s in
                s.work = work
                if s.ended { return s.early ?? .failure(CancellationError()) }
                s.waiter = waiter
                return nil
            }
            if let early {
                work.cancel()
                waiter.resume(with: early)
            }
        }

        func end(_ result: Result<T, any Error>) {
            let (waiter, work): (CheckedContinuation<T, any Error>?, Task<Void, Never>?) = state.withLock { s in
                guard !s.ended else { return (nil, nil) }
                s.ended = true
                if s.waiter == nil { s.early = result }  // (cancelled before the continuation was made)
                defer { s.waiter = nil }
                return (s.waiter, s.work)
            }
            guard let waiter else { return }
            if case .failure = result { work?.cancel() }
            waiter.resume(with: result)
        }
    }
}

/// A store call given up after its time limit (`StoreCall.within`).
struct TaskStoreTimeout: Error, CustomStringConvertible {
    let limit: Duration
    var description: String { "the task store did not answer within \(limit.components.seconds) s" }
}

