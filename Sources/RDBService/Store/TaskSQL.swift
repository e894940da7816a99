import RDBMigration

/// A store failure that names what failed. Never carries a password or a key.
public struct TaskStoreError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// A value bound to a statement parameter, in a form both stores translate to their driver's.
enum SQLValue: Sendable {
    case text(String?)
    case real(Double?)
    case integer(Int)
    case bool(Bool)
}

/// One statement: SQL whose parameters are written `$1`, `$2`, … (PostgreSQL's form; SQLite gets `?1`, `?2`,
/// which it numbers the same way), and their values.
struct SQLStatement: Sendable {
    let sql: String
    let binds: [SQLValue]

    init(_ sql: String, _ binds: [SQLValue] = []) {
        self.sql = sql
        self.binds = binds
    }

    /// The SQL with `$N` parameters written `?N` (SQLite numbers `$N` by first appearance, `?N` by N).
    var sqliteSQL: String { sql.replacingOccurrences(of: "$", with: "?") }
}

/// The statements both stores run: one table, `migration_tasks`, a column per `TaskRecord` field. The store
/// methods differ only in how they run them (GRDB's write blocks, postgres-nio transactions).
enum TaskSQL {
    /// The columns in `TaskRecord`'s order (`TaskRecord(reading:)` reads them by position).
    static let columns = [
        "id", "project_id", "name", "request", "sealed_secrets", "target", "status", "phase", "created_at",
        "updated_at", "started_at", "finished_at", "progress", "checkpoint", "report", "failure", "stop_requested",
        "owner", "lease_until", "attempts",
    ]
    static let columnList = columns.joined(separator: ", ")

    /// The indexes both stores create (their names, then the indexed columns).
    static let indexes = [
        ("migration_tasks_project_created", "project_id, created_at"),
        ("migration_tasks_status", "status"),
        ("migration_tasks_target", "target"),
    ]

    /// A task `t` with a live lease, written for a subquery correlated on `target` and `id` with the outer
    /// row `outer`: another MIGRATING task of the same target that a worker holds at `$now`.
    static func otherLiveLease(outer: String, now: String) -> String {
        """
        EXISTS (SELECT 1 FROM migration_tasks o WHERE o.target = \(outer).target AND o.id <> \(outer).id \
        AND o.status = 'MIGRATING' AND o.owner IS NOT NULL AND o.lease_until >= \(now))
        """
    }

    static func insert(_ t: TaskRecord) -> SQLStatement {
        let params = (1...columns.count).map { "$\($0)" }.joined(separator: ", ")
        return SQLStatement("INSERT INTO migration_tasks (\(columnList)) VALUES (\(params))", [
            .text(t.id), .text(t.projectID), .text(t.name), .text(t.request), .text(t.sealedSecrets), .text(t.target),
            .text(t.status.rawValue), .text(t.phase), .real(t.createdAt), .real(t.updatedAt), .real(t.startedAt),
            .real(t.finishedAt), .text(t.progress), .text(t.checkpoint), .text(t.report), .text(t.failure),
            .bool(t.stopRequested), .text(t.owner), .real(t.leaseUntil), .integer(t.attempts),
        ])
    }

    static func task(project: String, id: String) -> SQLStatement {
        SQLStatement("SELECT \(columnList) FROM migration_tasks WHERE project_id = $1 AND id = $2", [.text(project), .text(id)])
    }

    private static func listFilter(project: String, name: String?) -> (String, [SQLValue]) {
        guard let name else { return ("project_id = $1", [.text(project)]) }
        return ("project_id = $1 AND name = $2", [.text(project), .text(name)])
    }

    static func listCount(project: String, name: String?) -> SQLStatement {
        let (filter, binds) = listFilter(project: project, name: name)
        return SQLStatement("SELECT COUNT(*) FROM migration_tasks WHERE \(filter)", binds)
    }

    static func listPage(project: String, name: String?, offset: Int, limit: Int) -> SQLStatement {
        let (filter, binds) = listFilter(project: project, name: name)
        let n = binds.count
        return SQLStatement("""
            SELECT \(columnList) FROM migration_tasks WHERE \(filter) ORDER BY created_at DESC, id DESC \
            LIMIT $\(n + 1) OFFSET $\(n + 2)
            """, binds + [.integer(max(0, limit)), .integer(max(0, offset))])
    }

    static func deleteFinished(project: String, id: String) -> SQLStatement {
        SQLStatement("""
            DELETE FROM migration_tasks WHERE project_id = $1 AND id = $2 AND status <> 'MIGRATING' RETURNING id
            """, [.text(project), .text(id)])
    }

    /// Ends a MIGRATING task no live lease holds: TERMINATED at once.
    static func terminateUnheld(project: String, id: String, now: Double) -> SQLStatement {
        SQLStatement("""
            UPDATE migration_tasks SET status = 'TERMINATED', phase = 'done', stop_requested = TRUE, finished_at = $3, \
            updated_at = $3, failure = 'stopped on request', owner = NULL, lease_until = NULL \
            WHERE project_id = $1 AND id = $2 AND status = 'MIGRATING' AND (owner IS NULL OR lease_until < $3)
            """, [.text(project), .text(id), .real(now)])
    }

    /// Flags a task that is still MIGRATING (run after `terminateUnheld`: a worker holds it).
    static func flagStop(project: String, id: String, now: Double) -> SQLStatement {
        SQLStatement("""
            UPDATE migration_tasks SET stop_requested = TRUE, updated_at = $3 \
            WHERE project_id = $1 AND id = $2 AND status = 'MIGRATING'
            """, [.text(project), .text(id), .real(now)])
    }

    /// Claims the oldest claimable task in one statement, returning it. The outer conditions are checked
    /// again on the row actually updated (PostgreSQL re-evaluates them after waiting for a row lock).
    static func claim(owner: String, now: Double, lease: Double) -> SQLStatement {
        SQLStatement("""
            UPDATE migration_tasks SET owner = $2, lease_until = $1 + $3, attempts = attempts + 1, \
            started_at = COALESCE(started_at, $1), updated_at = $1 \
            WHERE status = 'MIGRATING' AND (owner IS NULL OR lease_until < $1) AND id = (\
            SELECT t.id FROM migration_tasks t WHERE t.status = 'MIGRATING' AND (t.owner IS NULL OR t.lease_until < $1) \
            AND NOT \(otherLiveLease(outer: "t", now: "$1")) ORDER BY t.created_at, t.id LIMIT 1) \
            RETURNING \(columnList)
            """, [.real(now), .text(owner), .real(lease)])
    }

    /// The attempt of a claim taken back (`TaskStore.takeBack`) no longer counts.
    static func takeBack(id: String, owner: String) -> SQLStatement {
        SQLStatement("""
            UPDATE migration_tasks SET attempts = attempts - 1 \
            WHERE id = $1 AND owner = $2 AND status = 'MIGRATING' AND attempts > 1
            """, [.text(id), .text(owner)])
    }

    /// Extends `owner`'s lease: while it is live, or (it ran out, nobody took the task) when no other task of
    /// the target holds a live lease, so a late renewal never makes two live leases on one target.
    static func renew(id: String, owner: String, now: Double, lease: Double, update: TaskUpdate) -> SQLStatement {
        SQLStatement("""
            UPDATE migration_tasks SET lease_until = $3 + $4, updated_at = $3, phase = COALESCE($5, phase), \
            progress = COALESCE($6, progress), checkpoint = COALESCE($7, checkpoint) \
            WHERE id = $1 AND owner = $2 AND status = 'MIGRATING' \
            AND (lease_until >= $3 OR NOT \(otherLiveLease(outer: "migration_tasks", now: "$3"))) \
            RETURNING stop_requested
            """, [.text(id), .text(owner), .real(now), .real(lease), .text(update.phase), .text(update.progress), .text(update.checkpoint)])
    }

    static func finish(id: String, owner: String, status: TaskStatus, report: String?, failure: String?, now: Double) throws -> SQLStatement {
        guard status != .migrating else {
            throw TaskStoreError("finish of task \(id): the final status must be SUCCESS, FAILED or TERMINATED, not MIGRATING")
        }
        return SQLStatement("""
            UPDATE migration_tasks SET status = $3, report = $4, failure = $5, finished_at = $6, updated_at = $6, \
            phase = 'done', owner = NULL, lease_until = NULL WHERE id = $1 AND owner = $2 AND status = 'MIGRATING' \
            RETURNING id
            """, [.text(id), .text(owner), .text(status.rawValue), .text(report), .text(failure), .real(now)])
    }

    static func release(owner: String) -> SQLStatement {
        SQLStatement("UPDATE migration_tasks SET owner = NULL, lease_until = NULL WHERE owner = $1", [.text(owner)])
    }

    static let countByStatus = SQLStatement("SELECT status, COUNT(*) FROM migration_tasks GROUP BY status")

    /// A status as stored; an unknown one is an error naming the task (or the count) it was found in.
    static func status(_ text: String, in place: String) throws -> TaskStatus {
        guard let s = TaskStatus(rawValue: text) else {
            throw TaskStoreError("migration_tasks: \(place) has an unknown status \"\(text.prefix(40))\"")
        }
        return s
    }
}
