#if canImport(Glibc)
import Glibc
#endif
import Logging
import RDBKit
import RDBMigration
import ServiceLifecycle
import Synchronization

/// Runs the store's tasks: claims one whenever fewer than `workers` run here, runs it on a thread of its
/// own, renews its lease (saving progress and checkpoint) every third of the lease, stops it when the API
/// asks, and records how it ended.
///
/// On a graceful shutdown (SIGTERM/SIGINT) running imports stop between keys and every task is released
/// still MIGRATING: the next start (or another service on a shared store) resumes it at once. A service
/// that dies instead leaves its leases to run out; then they are taken over the same way.
public final class TaskWorkers: Service, Sendable {
    let store: any TaskStore
    let factory: ExecutionFactory
    let workers: Int
    let lease: Double
    /// This service's name in the leases it holds.
    public let owner: String
    let metrics: ServiceMetrics
    let logger: Logger
    private let running = Mutex<[String: any TaskExecution]>([:])
    private let shuttingDown = Atomic<Bool>(false)

    init(store: any TaskStore, factory: ExecutionFactory, workers: Int, lease: Double, owner: String,
         metrics: ServiceMetrics, logger: Logger) {
        self.store = store
        self.factory = factory
        self.workers = workers
        self.lease = lease
        self.owner = owner
        self.metrics = metrics
        self.logger = logger
    }

    /// Tasks running here now.
    public var runningCount: Int { running.withLock { $0.count } }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                while !shuttingDown.load(ordering: .acquiring) {
                    if runningCount < workers {
                        do {
                            if let record = try await store.claim(owner: owner, now: now(), lease: lease) {
                                // Counted as running before the next claim is considered.
                                running.withLock { $0[record.id] = PendingExecution() }
                                group.addTask { await self.execute(record) }
                                continue
                            }
                        } catch {
                            logger.error("claiming a task failed: \(error)")
                        }
                    }
                    try? await Task.sleep(for: .milliseconds(250))
                }
                await group.waitForAll()
            }
            do { try await store.release(owner: owner) } catch { logger.error("releasing the tasks failed: \(error)") }
        } onGracefulShutdown: {
            self.shuttingDown.store(true, ordering: .releasing)
            for e in self.running.withLock({ Array($0.values) }) { e.stop(.shutdown) }
        }
    }

    /// Runs one claimed task to its end (or until it is stopped, the lease lost, the service shut down).
    func execute(_ record: TaskRecord) async {
        let id = record.id
        defer { running.withLock { _ = $0.removeValue(forKey: id) } }
        logger.info("task \(id) (\(record.name)): run \(record.attempts) starts")
        let execution: any TaskExecution
        do {
            if record.attempts > factory.config.attemptLimit {
                throw ExecutionFactory.Failure(description: "given up after \(record.attempts - 1) runs that ended with their service (killed or lost) before the task did (max_attempts \(factory.config.attemptLimit))")
            }
            execution = try factory.make(record)
        } catch {
            logger.error("task \(id): cannot start: \(error)")
            _ = try? await store.finish(id: id, owner: owner, status: .failed, report: nil, failure: "\(error)", now: now())
            metrics.finished(.failed)
            return
        }
        running.withLock { $0[id] = execution }
        if shuttingDown.load(ordering: .acquiring) { execution.stop(.shutdown) }
        if record.stopRequested { execution.stop(.requested) }

        let outcome: TaskOutcome = await withTaskGroup(of: TaskOutcome?.self) { group in
            group.addTask { await Self.runOnThread(execution) }
            group.addTask { await self.heartbeat(id, execution); return nil }
            var result: TaskOutcome?
            for await r in group {
                if let r {
                    result = r
                    group.cancelAll()
                }
            }
            return result!
        }
        metrics.remove(task: id)
        let reason = execution.stopReason
        switch reason {
        case .leaseLost?:
            logger.warning("task \(id): this service's lease ran out and another worker holds it: its run here ended without a status")
            return
        case .shutdown? where outcome.status != .failed:
            logger.info("task \(id): stopped for the shutdown; it resumes at the next start")
            return
        default:
            break
        }
        var status = outcome.status
        if reason == .requested && status == .success { status = .terminated }
        let update = execution.snapshot()
        _ = try? await store.renew(id: id, owner: owner, now: now(), lease: lease, update: update)
        do {
            if try await store.finish(id: id, owner: owner, status: status, report: outcome.report, failure: outcome.failure, now: now()) {
                metrics.finished(status)
                logger.info("task \(id): \(status.rawValue)\(outcome.failure.map { ": \($0)" } ?? "")")
            } else {
                logger.warning("task \(id): ended \(status.rawValue), but this service no longer holds it: not recorded")
            }
        } catch {
            logger.error("task \(id): recording its end failed: \(error)")
        }
    }

    /// Renews the lease every third of it, saving progress; passes a stop request or a lost lease on.
    func heartbeat(_ id: String, _ execution: any TaskExecution) async {
        var last = (keys: 0, bytes: 0)
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int(lease * 1000 / 3)))
            if Task.isCancelled { return }
            let t = execution.totals()
            metrics.progressed(task: id, keys: t.keys - last.keys, bytes: t.bytes - last.bytes, lag: t.lagBytes)
            last = (t.keys, t.bytes)
            do {
                switch try await store.renew(id: id, owner: owner, now: now(), lease: lease, update: execution.snapshot()) {
                case nil: execution.stop(.leaseLost); return
                case true?: execution.stop(.requested)
                case false?: break
                }
            } catch {
                if Task.isCancelled { return }  // the run ended while renewing
                logger.warning("task \(id): renewing its lease failed: \(error)")
            }
        }
    }

    static func runOnThread(_ execution: any TaskExecution) async -> TaskOutcome {
        await withCheckedContinuation { (c: CheckedContinuation<TaskOutcome, Never>) in
            if let t = startThread({ c.resume(returning: execution.run()) }) {
                pthread_detach(t)
            } else {
                c.resume(returning: TaskOutcome(status: .failed, report: nil, failure: "no thread could be started for the task"))
            }
        }
    }
}

/// Unix time in seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Holds a claimed task's place among the running ones while its run is made.
final class PendingExecution: TaskExecution {
    func run() -> TaskOutcome { TaskOutcome(status: .failed) }
    func stop(_ reason: StopReason) {}
    func snapshot() -> TaskUpdate { TaskUpdate() }
    func totals() -> (keys: Int, bytes: Int, lagBytes: Int?) { (0, 0, nil) }
    var stopReason: StopReason? { nil }
}
