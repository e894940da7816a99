import Foundation
import RDBMigration
import RDBService
import RDBTestSupport
import Testing

/// Several service processes share one PostgreSQL: two stores (two clients, two connection pools) claim
/// from the same tasks at once.
@Suite(.ownThreads) struct PostgresClaimRaceTests {
    @Test func concurrentClaimsNeverShareATaskOrATarget() async throws {
        try await withTwoStores { stores, location in try await race(stores, location) }
    }

    /// Claims are serialised, so one that finds nothing means there was nothing: workers asking at once
    /// (each once) get one task each, none a spurious nil from losing a race for the same row.
    @Test func concurrentSingleClaimsEachGetATask() async throws {
        try await withTwoStores { stores, _ in
            for i in 0..<10 { try await stores[0].insert(makeTask("single\(i)", target: "target-\(i)", createdAt: Double(i))) }
            let claimed = try await withThrowingTaskGroup(of: TaskRecord?.self) { group in
                for w in 0..<10 {
                    group.addTask { try await stores[w % 2].claim(owner: "worker-\(w)", now: 100, lease: 60) }
                }
                var all: [TaskRecord?] = []
                for try await one in group { all.append(one) }
                return all
            }
            let tasks = claimed.compactMap { $0 }
            #expect(tasks.count == 10, "\(10 - tasks.count) of 10 claims found nothing")
            #expect(Set(tasks.map(\.id)).count == tasks.count)
        }
    }

    /// Two stores (two clients) on one fresh database, both prepared at once (the table is created once,
    /// under an advisory lock); closed at the end.
    private func withTwoStores(_ body: ([any TaskStore], StoreLocation) async throws -> Void) async throws {
        let location = try StoreLocation(.postgres)
        async let first = location.open()
        async let second = location.open()
        let stores = try await [first, second]
        do {
            try await body(stores, location)
        } catch {
            for store in stores { try? await store.close() }
            throw error
        }
        for store in stores { try await store.close() }
    }

    private func race(_ stores: [any TaskStore], _ location: StoreLocation) async throws {
        let targets = 5
        for i in 0..<20 {
            try await stores[i % 2].insert(makeTask(String(format: "task%02d", i), target: "target-\(i % targets)", createdAt: Double(i)))
        }
        var claimedEver: [String: String] = [:]
        var now = 1000.0
        for round in 0..<4 {
            now += 1
            let claimed = try await claimAll(stores, workers: 12, now: now)
            // each round: one task per target (the oldest of each), none claimed twice
            #expect(claimed.count == targets, "round \(round): \(claimed)")
            #expect(Set(claimed.map(\.id)).count == claimed.count, "round \(round): a task claimed twice: \(claimed)")
            #expect(Set(claimed.map(\.target)).count == claimed.count, "round \(round): two live leases on a target: \(claimed)")
            for task in claimed {
                #expect(claimedEver[task.id] == nil, "\(task.id) claimed again")
                claimedEver[task.id] = task.owner
                #expect(task.attempts == 1)
            }
            let live = try location.liveLeasesPerTarget(now: now)
            #expect(live.values.allSatisfy { $0 == 1 } && live.count == targets, "round \(round): live leases per target \(live)")
            for (i, task) in claimed.enumerated() {
                let owner = try #require(task.owner)
                #expect(try await stores[i % 2].finish(id: task.id, owner: owner, status: .success, report: nil, failure: nil, now: now))
            }
        }
        #expect(claimedEver.count == 20)
        #expect(try await stores[0].countByStatus() == [.success: 20])
    }

    /// `workers` claimers, alternating between the stores, each claiming until nothing is left for it.
    private func claimAll(_ stores: [any TaskStore], workers: Int, now: Double) async throws -> [TaskRecord] {
        try await withThrowingTaskGroup(of: [TaskRecord].self) { group in
            for w in 0..<workers {
                let store = stores[w % stores.count]
                group.addTask {
                    var mine: [TaskRecord] = []
                    while let task = try await store.claim(owner: "worker-\(w)", now: now, lease: 60) { mine.append(task) }
                    return mine
                }
            }
            var all: [TaskRecord] = []
            for try await some in group { all += some }
            return all
        }
    }
}

extension StoreLocation {
    /// How many live leases each target has at `now`, read by psql (not through a store).
    func liveLeasesPerTarget(now: Double) throws -> [String: Int] {
        let out = try PostgresServer.shared().psql(name, """
            SELECT target, COUNT(*) FROM migration_tasks WHERE owner IS NOT NULL AND lease_until >= \(now) GROUP BY target
            """)
        var counts: [String: Int] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: "|")
            if parts.count == 2 { counts[String(parts[0])] = Int(parts[1]) }
        }
        return counts
    }
}
