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
    private let running = Mutex<[String: ExecutionSlot]>([:])
    private let shuttingDown = Atomic<Bool>(false)
    /// Set when a task was created here: the next claim is tried at once, not at the next poll.
    private let woken = Atomic<Bool>(false)

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

    /// A task was created (or a slot freed): try to claim now. Tasks created through another service of a
    /// shared store are found by the poll (every `pollInterval`).
    public func wake() { woken.store(true, ordering: .releasing) }

    static let pollInterval = Duration.milliseconds(500)

    /// Stops a task this service runs now, at once (a stop asked through another service of a shared store
    /// reaches its worker with the next lease renewal).
    public func stop(task id: String) {
        running.withLock { $0[id] }?.stop(.requested)
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                while !shuttingDown.load(ordering: .acquiring) {
                    if runningCount < workers {
                        do {
                            // Given up on a shutdown: with the store unreachable, a claim waits for a connection
                            // until the pool gives up (about a minute), and the service with it.
                            let at = now()
                            let claimed = try await StoreCall.run({ [self] in try await store.claim(owner: owner, now: at, lease: lease) },
                                                             givingUpWhen: { [self] in shuttingDown.load(ordering: .acquiring) })
                            if let record = claimed {
                                // Counted as running before the next claim is considered.
                                let slot = ExecutionSlot()
                                let runsHere = running.withLock { r in
                                    if r[record.id] != nil { return true }
                                    r[record.id] = slot
                                    return false
                                }
                                // Its lease ran out while its run here went on (the store answered late): the claim
                                // made the lease live again, and that run keeps it. A second run would write to
                                // the same target beside it. The claim's attempt does not count (a store that is
                                // late again and again would use up the task's max_attempts otherwise).
                                if runsHere {
                                    logger.warning("task \(record.id): its lease ran out while it runs here (the store answered late); taken back, the run goes on")
                                    do {
                                        try await store.takeBack(id: record.id, owner: owner)
                                    } catch {
                                        logger.error("task \(record.id): taking back its claim failed, the attempt counts: \(error)")
                                    }
                                    continue
                                }
                                if shuttingDown.load(ordering: .acquiring) { slot.stop(.shutdown) }
                                group.addTask { await self.execute(record, slot) }
                                continue
                            }
                        } catch {
                            if !shuttingDown.load(ordering: .acquiring) { logger.error("claiming a task failed: \(error)") }
                        }
                    }
                    // Until the next poll, or sooner when woken.
                    let until = ContinuousClock.now + Self.pollInterval
                    while ContinuousClock.now < until && !woken.exchange(false, ordering: .acquiringAndReleasing)
                            && !shuttingDown.load(ordering: .acquiring) {
                        try? await Task.sleep(for: .milliseconds(10))
                    }
                }
                await group.waitForAll()
            }
            // Within `releaseLimit`: a store that does not answer leaves the leases to run out (another service, or
            // the next start, takes the tasks over then).
            do {
                try await StoreCall.within(Self.releaseLimit) { [self] in try await store.release(owner: owner) }
            } catch {
                logger.error("releasing the tasks failed (their leases run out within \(Int(lease)) s): \(error)")
            }
        } onGracefulShutdown: {
            self.shuttingDown.store(true, ordering: .releasing)
            let slots = self.running.withLock { Array($0.values) }
            self.logger.info("shutting down: \(slots.count) running task\(slots.count == 1 ? "" : "s") stop\(slots.count == 1 ? "s" : ""), to resume at the next start")
            for slot in slots { slot.stop(.shutdown) }
        }
    }

    /// How long the release of this service's tasks at shutdown may take.
    static let releaseLimit = Duration.seconds(10)

    /// Runs one claimed task to its end (or until it is stopped, the lease lost, the service shut down).
    func execute(_ record: TaskRecord, _ slot: ExecutionSlot) async {
        let id = record.id
        defer {
            running.withLock { _ = $0.removeValue(forKey: id) }
            wake()  // a slot is free, and a task may have waited for this target
        }
        logger.info("task \(id) (\(record.name)): run \(record.attempts) starts")
        if record.stopRequested { slot.stop(.requested) }
        let factory = self.factory
        let outcome: TaskOutcome = await withTaskGroup(of: TaskOutcome?.self) { group in
            // The run is made on its thread too: checking the files of an S3 bucket makes network calls.
            group.addTask {
                await Self.onThread {
                    do {
                        if record.attempts > factory.config.attemptLimit {
                            throw ExecutionFactory.Failure(description: "given up after \(record.attempts - 1) runs that ended with their service (killed or lost) before the task did (max_attempts \(factory.config.attemptLimit))")
                        }
                        let execution = try factory.make(record)
                        slot.set(execution)
                        return execution.run()
                    } catch {
                        return TaskOutcome(status: .failed, report: nil, failure: "\(error)")
                    }
                }
            }
            group.addTask { await self.heartbeat(id, slot); return nil }
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
        let reason = slot.stopReason
        switch reason {
        case .leaseLost?:
            logger.warning("task \(id): this service's lease ran out and another worker holds it: its run here ended without a status")
            return
        case .shutdown? where outcome.status == .terminated:
            logger.info("task \(id): stopped for the shutdown; it resumes at the next start")
            return
        default:
            break
        }
        var status = outcome.status
        if reason == .requested && status == .success { status = .terminated }
        if let update = slot.snapshot() {
            _ = try? await store.renew(id: id, owner: owner, now: now(), lease: lease, update: update)
        }
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

    /// Renews the lease every third of it, saving progress; passes a stop request or a lost lease on. A lease
    /// not renewed for a whole lease (the store unreachable or stuck) counts as lost: another service may claim
    /// the task by then, and two runs must not write to one target.
    func heartbeat(_ id: String, _ slot: ExecutionSlot) async {
        var last = (keys: 0, bytes: 0)
        var renewed = now()
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int(lease * 1000 / 3)))
            if Task.isCancelled { return }
            if let t = slot.totals() {
                metrics.progressed(task: id, keys: t.keys - last.keys, bytes: t.bytes - last.bytes, lag: t.lagBytes)
                last = (t.keys, t.bytes)
            }
            do {
                // Within a lease: a renewal answered later would extend a lease already run out (it counts from
                // `at`), and one left waiting (a store that does not answer: the pool retries for about a minute)
                // would keep the run going after another service may have claimed the task.
                let (at, update) = (now(), slot.snapshot() ?? TaskUpdate())
                let answer = try await StoreCall.within(.milliseconds(max(1000, Int(lease * 1000)))) { [self] in
                    try await store.renew(id: id, owner: owner, now: at, lease: lease, update: update)
                }
                switch answer {
                case nil: slot.stop(.leaseLost); return
                case true?: slot.stop(.requested)
                case false?: break
                }
                renewed = now()
            } catch {
                if Task.isCancelled { return }  // the run ended while renewing
                logger.warning("task \(id): renewing its lease failed: \(error)")
                if now() - renewed > lease {
                    logger.error("task \(id): its lease was not renewed for \(Int(lease)) s: its run here stops (another service may hold it now)")
                    slot.stop(.leaseLost)
                    return
                }
            }
        }
    }

    /// Runs `body` on a thread of its own (a run blocks: decoding, sending, waiting for replies).
    static func onThread(_ body: @escaping @Sendable () -> TaskOutcome) async -> TaskOutcome {
        await withCheckedContinuation { (c: CheckedContinuation<TaskOutcome, Never>) in
            if let t = startThread({ c.resume(returning: body()) }) {
                pthread_detach(t)
            } else {
                c.resume(returning: TaskOutcome(status: .failed, report: nil, failure: "no thread could be started for the task"))
            }
        }
    }
}

/// A claimed task's run as the worker sees it: empty until the run is made on its thread; a stop asked
/// before is passed on when it is.
final class ExecutionSlot: Sendable {
    private let state = Mutex<(execution: (any TaskExecution)?, stop: StopReason?)>((nil, nil))

    func set(_ e: any TaskExecution) {
        let pending = state.withLock { s -> StopReason? in
            s.execution = e
            return s.stop
        }
        if let pending { e.stop(pending) }
    }

    func stop(_ reason: StopReason) {
        let e = state.withLock { s -> (any TaskExecution)? in
            if s.stop == nil { s.stop = reason }
            return s.execution
        }
        e?.stop(reason)
    }

    var stopReason: StopReason? { state.withLock { $0.execution?.stopReason ?? $0.stop } }
    func snapshot() -> TaskUpdate? { state.withLock { $0.execution }?.snapshot() }
    func totals() -> (keys: Int, bytes: Int, lagBytes: Int?)? { state.withLock { $0.execution }?.totals() }
}

/// Unix time in seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
