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

/// A store call with an end: given up (its task cancelled) when a condition holds or a time limit passes. A
/// call waiting for a connection to a store that does not answer then ends at once (PostgreSQL's pool would
/// retry for about a minute); one already running its statement goes on to its answer (the session's
/// `statement_timeout` ends it).
enum StoreCall {
    /// Runs `op`, cancelled once `giveUp()` holds (checked every 10 ms): what `op` gives after that, usually
    /// `CancellationError`; one answered all the same returns what it got.
    static func run<T: Sendable>(_ op: @escaping @Sendable () async throws -> T,
                                 givingUpWhen giveUp: @escaping @Sendable () -> Bool) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await op() }
            group.addTask {
                while !giveUp() { try await Task.sleep(for: .milliseconds(10)) }
                return nil
            }
            while let result = try await group.next() {
                if let result {
                    group.cancelAll()
                    return result
                }
                group.cancelAll()  // given up: `op` ends with what the cancellation makes of it
            }
            throw CancellationError()
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
}

/// A store call given up after its time limit (`StoreCall.within`).
struct TaskStoreTimeout: Error, CustomStringConvertible {
    let limit: Duration
    var description: String { "the task store did not answer within \(limit.components.seconds) s" }
}

