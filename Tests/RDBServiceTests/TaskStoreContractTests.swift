import Foundation
import RDBMigration
import RDBService
import Testing

/// What every `TaskStore` promises, checked against SQLite and a real PostgreSQL.
@Suite(.ownThreads) struct TaskStoreContractTests {
    @Test(arguments: StoreKind.allCases)
    func insertGetAndListWithPagingNameFilterAndCount(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let names = ["a", "b", "a", "c", "a"]
            for (i, name) in names.enumerated() {
                try await store.insert(makeTask("t\(i + 1)", name: name, createdAt: Double(i + 1)))
            }
            try await store.insert(makeTask("other", project: "p2", createdAt: 9))
            let full = TaskRecord(id: "full", projectID: "p3", name: "n", request: "{}", sealedSecrets: "v1:abc", target: "x",
                                  status: .failed, phase: "done", createdAt: 1.5, updatedAt: 2.25, startedAt: 1.75,
                                  finishedAt: 2.25, progress: #"{"keys":1}"#, checkpoint: #"{"offset":7}"#,
                                  report: #"{"ok":false}"#, failure: "boom", stopRequested: true, owner: nil,
                                  leaseUntil: nil, attempts: 3)
            try await store.insert(full)
            #expect(try await store.task(project: "p3", id: "full") == full)
            #expect(try await store.task(project: "p1", id: "t2") == makeTask("t2", name: "b", createdAt: 2))
            #expect(try await store.task(project: "p2", id: "t2") == nil)
            #expect(try await store.task(project: "p1", id: "nope") == nil)

            func page(_ name: String?, _ offset: Int, _ limit: Int) async throws -> (Int, [String]) {
                let (count, tasks) = try await store.list(project: "p1", name: name, offset: offset, limit: limit)
                return (count, tasks.map(\.id))
            }
            #expect(try await page(nil, 0, 2) == (5, ["t5", "t4"]))
            #expect(try await page(nil, 2, 2) == (5, ["t3", "t2"]))
            #expect(try await page(nil, 4, 2) == (5, ["t1"]))
            #expect(try await page(nil, 6, 2) == (5, []))
            #expect(try await page("a", 0, 10) == (3, ["t5", "t3", "t1"]))
            #expect(try await page("zzz", 0, 10) == (0, []))
            #expect(try await store.list(project: "p2", name: nil, offset: 0, limit: 10).count == 1)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func deleteOnlyWhatIsNoLongerMigrating(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.insert(makeTask("running", createdAt: 1))
            try await store.insert(TaskRecord(id: "done", projectID: "p1", name: "n", request: "{}", sealedSecrets: nil,
                                              target: "x", status: .success, phase: "done", createdAt: 2))
            #expect(try await store.delete(project: "p1", id: "done") == .deleted)
            #expect(try await store.task(project: "p1", id: "done") == nil)
            #expect(try await store.delete(project: "p1", id: "running") == .running)
            #expect(try await store.task(project: "p1", id: "running") != nil)
            #expect(try await store.delete(project: "p1", id: "unknown") == .notFound)
            #expect(try await store.delete(project: "p2", id: "running") == .notFound)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func stopEndsAnUnclaimedTaskAtOnceAndFlagsAClaimedOne(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.insert(makeTask("idle", target: "a", createdAt: 1))
            let stopped = try #require(try await store.requestStop(project: "p1", id: "idle", now: 50))
            #expect(stopped.status == .terminated)
            #expect(stopped.finishedAt == 50)
            #expect(stopped.phase == "done")
            #expect(stopped.owner == nil)
            #expect(try await store.claim(owner: "A", now: 51, lease: 10) == nil)

            try await store.insert(makeTask("busy", target: "b", createdAt: 2))
            #expect(try await store.claim(owner: "A", now: 60, lease: 10)?.id == "busy")
            #expect(try await store.renew(id: "busy", owner: "A", now: 61, lease: 10, update: TaskUpdate()) == false)
            let flagged = try #require(try await store.requestStop(project: "p1", id: "busy", now: 62))
            #expect(flagged.status == .migrating)
            #expect(flagged.stopRequested)
            #expect(flagged.owner == "A")
            #expect(try await store.renew(id: "busy", owner: "A", now: 63, lease: 10, update: TaskUpdate()) == true)
            #expect(try await store.finish(id: "busy", owner: "A", status: .terminated, report: nil, failure: "stopped", now: 64))

            let finished = try #require(try await store.requestStop(project: "p1", id: "busy", now: 70))
            #expect(finished.status == .terminated)
            #expect(finished.finishedAt == 64)
            #expect(try await store.requestStop(project: "p1", id: "missing", now: 70) == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func claimsTakeTheOldestFirst(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            for (id, created) in [("c", 3.0), ("a", 1.0), ("b", 2.0)] {
                try await store.insert(makeTask(id, target: "target-\(id)", createdAt: created))
            }
            var order: [String] = []
            while let task = try await store.claim(owner: "W", now: 100, lease: 30) {
                #expect(task.owner == "W")
                #expect(task.leaseUntil == 130)
                #expect(task.startedAt == 100)
                #expect(task.attempts == 1)
                order.append(task.id)
            }
            #expect(order == ["a", "b", "c"])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aTargetRunsOneTaskAtATime(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.insert(makeTask("first", target: "X", createdAt: 1))
            try await store.insert(makeTask("second", target: "X", createdAt: 2))
            #expect(try await store.claim(owner: "A", now: 100, lease: 30)?.id == "first")
            #expect(try await store.claim(owner: "B", now: 101, lease: 30) == nil)
            #expect(try await store.finish(id: "first", owner: "A", status: .success, report: #"{"keys":3}"#, failure: nil, now: 102))
            let second = try #require(try await store.claim(owner: "B", now: 103, lease: 30))
            #expect(second.id == "second")
            let first = try #require(try await store.task(project: "p1", id: "first"))
            #expect(first.status == .success)
            #expect(first.phase == "done")
            #expect(first.report == #"{"keys":3}"#)
            #expect(first.owner == nil && first.leaseUntil == nil)
            #expect(first.finishedAt == 102)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func anExpiredLeaseIsTakenOverAndTheOldOwnerLosesIt(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.insert(makeTask("job", target: "X", createdAt: 1))
            #expect(try await store.claim(owner: "A", now: 100, lease: 10)?.attempts == 1)
            #expect(try await store.renew(id: "job", owner: "A", now: 105, lease: 10,
                                          update: TaskUpdate(phase: "importing", progress: #"{"keys":5}"#)) == false)
            #expect(try await store.claim(owner: "B", now: 114, lease: 10) == nil)
            let taken = try #require(try await store.claim(owner: "B", now: 116, lease: 10))
            #expect(taken.id == "job")
            #expect(taken.owner == "B")
            #expect(taken.attempts == 2)
            #expect(taken.startedAt == 100)
            #expect(taken.phase == "importing")
            #expect(taken.progress == #"{"keys":5}"#)
            #expect(try await store.renew(id: "job", owner: "A", now: 117, lease: 10, update: TaskUpdate(phase: "lost")) == nil)
            #expect(try await store.finish(id: "job", owner: "A", status: .failed, report: nil, failure: "x", now: 117) == false)
            #expect(try await store.renew(id: "job", owner: "B", now: 118, lease: 10, update: TaskUpdate(checkpoint: "{}")) == false)
            let held = try #require(try await store.task(project: "p1", id: "job"))
            #expect(held.owner == "B" && held.leaseUntil == 128 && held.status == .migrating)
            #expect(held.phase == "importing" && held.checkpoint == "{}" && held.progress == #"{"keys":5}"#)
        }
    }

    /// A claim of a task its owner runs already is taken back: the attempt it counted is undone, its lease stays.
    @Test(arguments: StoreKind.allCases)
    func aClaimTakenBackDoesNotCountAsAnAttempt(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.insert(makeTask("job", target: "X", createdAt: 1))
            #expect(try await store.claim(owner: "A", now: 100, lease: 10)?.attempts == 1)
            #expect(try await store.claim(owner: "A", now: 111, lease: 10)?.attempts == 2)
            try await store.takeBack(id: "job", owner: "A")
            let held = try #require(try await store.task(project: "p1", id: "job"))
            #expect(held.attempts == 1 && held.owner == "A" && held.leaseUntil == 121)
            try await store.takeBack(id: "job", owner: "B")  // not B's: nothing changes
            try await store.takeBack(id: "job", owner: "A")  // never below the run that holds it
            #expect(try await store.task(project: "p1", id: "job")?.attempts == 1)
            #expect(try await store.claim(owner: "B", now: 122, lease: 10)?.attempts == 2)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aLateRenewalNeverMakesASecondLiveLeaseOnATarget(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.insert(makeTask("late", target: "X", createdAt: 5))
            #expect(try await store.claim(owner: "A", now: 100, lease: 10)?.id == "late")
            // ran out, nobody took it: the owner may still renew
            #expect(try await store.renew(id: "late", owner: "A", now: 111, lease: 10, update: TaskUpdate()) == false)
            // ran out again; an older task of the same target is claimed meanwhile
            try await store.insert(makeTask("older", target: "X", createdAt: 1))
            #expect(try await store.claim(owner: "B", now: 125, lease: 10)?.id == "older")
            #expect(try await store.renew(id: "late", owner: "A", now: 126, lease: 10, update: TaskUpdate()) == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func releaseMakesTasksClaimableAtOnce(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.insert(makeTask("one", target: "X", createdAt: 1))
            try await store.insert(makeTask("two", target: "Y", createdAt: 2))
            try await store.insert(makeTask("three", target: "Z", createdAt: 3))
            #expect(try await store.claim(owner: "A", now: 100, lease: 60)?.id == "one")
            #expect(try await store.claim(owner: "A", now: 100, lease: 60)?.id == "two")
            #expect(try await store.claim(owner: "C", now: 100, lease: 60)?.id == "three")
            #expect(try await store.claim(owner: "B", now: 101, lease: 60) == nil)
            try await store.release(owner: "A")
            #expect(try await store.claim(owner: "B", now: 102, lease: 60)?.id == "one")
            #expect(try await store.claim(owner: "B", now: 102, lease: 60)?.attempts == 2)
            #expect(try await store.task(project: "p1", id: "three")?.owner == "C")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func countsTasksByStatus(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.countByStatus() == [:])
            let statuses: [TaskStatus] = [.migrating, .migrating, .success, .failed, .failed, .failed, .terminated]
            for (i, status) in statuses.enumerated() {
                try await store.insert(TaskRecord(id: "s\(i)", projectID: "p\(i % 2)", name: "n", request: "{}", sealedSecrets: nil,
                                                  target: "t\(i)", status: status, createdAt: Double(i)))
            }
            #expect(try await store.countByStatus() == [.migrating: 2, .success: 1, .failed: 3, .terminated: 1])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aCorruptRowIsAnErrorNamingTheTaskAndColumn(kind: StoreKind) async throws {
        try await withStore(kind) { store, location in
            try await store.insert(makeTask("bad", createdAt: 1))
            try location.execute("UPDATE migration_tasks SET status = 'SLEEPING' WHERE id = 'bad'")
            let error = await #expect(throws: TaskStoreError.self) { try await store.task(project: "p1", id: "bad") }
            #expect(error?.description.contains("task bad") == true)
            #expect(error?.description.contains("SLEEPING") == true)
            await #expect(throws: TaskStoreError.self) { try await store.countByStatus() }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func finishingWithMigratingIsRefused(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.insert(makeTask("job", createdAt: 1))
            _ = try await store.claim(owner: "A", now: 1, lease: 10)
            await #expect(throws: TaskStoreError.self) {
                try await store.finish(id: "job", owner: "A", status: .migrating, report: nil, failure: nil, now: 2)
            }
        }
    }
}
