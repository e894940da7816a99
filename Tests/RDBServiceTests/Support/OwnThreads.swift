import Foundation
import Testing

/// Threads of the service tests' own for their async bodies.
///
/// Nearly every other test in the package is synchronous and holds a cooperative thread for its whole run
/// (servers, imports, child processes); the machine has two, so in a full parallel run an `await` of these
/// tests could wait minutes for one to come free (trivial tests "passed after 128 s"). A lease, a kill timed
/// to a run, a deadline: what these tests time does not survive that. Their jobs run here instead.
final class TestThreads: TaskExecutor, @unchecked Sendable {
    static let shared = TestThreads(count: 8)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var next = 0
    /// The threads' ids (for `isCurrent`).
    private var threads: [pthread_t] = []

    init(count: Int) {
        for i in 0..<count {
            let thread = Thread { [unowned self] in self.run() }
            thread.name = "test-executor-\(i)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Whether the calling thread is one of these.
    static func isCurrent() -> Bool {
        let me = pthread_self()
        return shared.condition.withLock { shared.threads.contains { pthread_equal($0, me) != 0 } }
    }

    private func run() {
        condition.withLock { threads.append(pthread_self()) }
        while true {
            condition.lock()
            while next == jobs.count { condition.wait() }
            let job = jobs[next]
            next += 1
            // Drop what was run once the queue has emptied (jobs is FIFO: an index, not removeFirst).
            if next == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                next = 0
            }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Runs each test of the suite (or the test) with `TestThreads` as its task executor.
struct OwnThreads: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await withTaskExecutorPreference(TestThreads.shared) { try await function() }
    }
}

extension Trait where Self == OwnThreads {
    /// The test's async body runs on threads of the service tests' own (`TestThreads`).
    static var ownThreads: Self { OwnThreads() }
}

@Suite(.ownThreads) struct OwnThreadsTests {
    @Test("An async test body, and what follows its awaits, run on the tests' own threads")
    func bodyRunsOnOwnThreads() async throws {
        #expect(TestThreads.isCurrent())
        try await Task.sleep(for: .milliseconds(5))
        #expect(TestThreads.isCurrent())
        async let inChild = TestThreads.isCurrent()
        #expect(await inChild, "a child task inherits the preference")
    }
}
